/*
 * test_cli_parse.c -- unit tests of the client's line splitter
 * (client/cli_parse.c): quoting, escapes, comments, limits.
 *
 * Locking: none (single-threaded).  Crash behaviour: none; pure tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli_parse.h"

static cli_args_t  a;
static char        err[128];


static int
parse(const char *line)
{
    err[0] = '\0';
    return cli_parse_line(line, &a, err, sizeof(err));
}


static void
test_plain_words(void **state)
{
    (void) state;
    assert_int_equal(parse("login alice secret"), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[0], "login");
    assert_string_equal(a.argv[1], "alice");
    assert_string_equal(a.argv[2], "secret");
    assert_null(a.argv[3]);
}


static void
test_blanks_and_tabs(void **state)
{
    (void) state;
    assert_int_equal(parse("  \t create_group\t\tg1   \t"), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "create_group");
    assert_string_equal(a.argv[1], "g1");

    assert_int_equal(parse("list_groups\r\n"), 0);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "list_groups");

    assert_int_equal(parse("help\n"), 0);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "help");
}


static void
test_empty_blank_comment(void **state)
{
    (void) state;
    assert_int_equal(parse(""), 0);
    assert_int_equal(a.argc, 0);
    assert_null(a.argv[0]);
    assert_int_equal(parse("   \t  "), 0);
    assert_int_equal(a.argc, 0);
    assert_int_equal(parse("\n"), 0);
    assert_int_equal(a.argc, 0);
    assert_int_equal(parse("# a comment 'with an open quote"), 0);
    assert_int_equal(a.argc, 0);
    assert_int_equal(parse("   # indented comment"), 0);
    assert_int_equal(a.argc, 0);
    assert_int_equal(cli_parse_line(NULL, &a, err, sizeof(err)), 0);
    assert_int_equal(a.argc, 0);
    /* a '#' inside a line is an ordinary character */
    assert_int_equal(parse("login a#b pw#"), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[1], "a#b");
    assert_string_equal(a.argv[2], "pw#");
}


static void
test_single_quotes(void **state)
{
    (void) state;
    assert_int_equal(parse("login bob 'pass word \\n \"x\"'"), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[2], "pass word \\n \"x\"");

    assert_int_equal(parse("x '' y"), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[1], "");
    assert_string_equal(a.argv[2], "y");
}


static void
test_double_quotes_escapes(void **state)
{
    (void) state;
    assert_int_equal(parse("a \"say \\\"hi\\\" \\\\ there\\n\" b"), 0);
    assert_int_equal(a.argc, 3);
    assert_string_equal(a.argv[1], "say \"hi\" \\ there\n");
    assert_string_equal(a.argv[2], "b");

    /* unknown escapes stay as typed */
    assert_int_equal(parse("\"a\\tb\""), 0);
    assert_int_equal(a.argc, 1);
    assert_string_equal(a.argv[0], "a\\tb");

    /* a single quote inside double quotes is literal, and vice versa */
    assert_int_equal(parse("\"it's\" 'say \"x\"'"), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "it's");
    assert_string_equal(a.argv[1], "say \"x\"");

    /* a tab inside quotes is kept */
    assert_int_equal(parse("'a\tb'"), 0);
    assert_string_equal(a.argv[0], "a\tb");
}


static void
test_adjacent_pieces_join(void **state)
{
    (void) state;
    assert_int_equal(parse("ab'c d'\"e\"f g"), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "abc def");
    assert_string_equal(a.argv[1], "g");
}


static void
test_backslash_outside_quotes_literal(void **state)
{
    (void) state;
    assert_int_equal(parse("a\\b c\\"), 0);
    assert_int_equal(a.argc, 2);
    assert_string_equal(a.argv[0], "a\\b");
    assert_string_equal(a.argv[1], "c\\");
}


static void
test_unterminated_quote(void **state)
{
    (void) state;
    assert_int_equal(parse("login 'alice"), -1);
    assert_string_equal(err, "unterminated quote");
    assert_int_equal(a.argc, 0);

    assert_int_equal(parse("login \"alice\\\""), -1);
    assert_string_equal(err, "unterminated quote");

    assert_int_equal(parse("\""), -1);
    assert_string_equal(err, "unterminated quote");

    /* a NULL err buffer is allowed */
    assert_int_equal(cli_parse_line("'x", &a, NULL, 0), -1);
}


static void
test_arg_limit(void **state)
{
    char  line[256];
    int   i;

    (void) state;
    line[0] = '\0';
    for (i = 0; i < TS_CLI_ARGS_MAX_N; i++) {
        strcat(line, "a ");
    }
    assert_int_equal(parse(line), 0);
    assert_int_equal(a.argc, TS_CLI_ARGS_MAX_N);
    assert_null(a.argv[TS_CLI_ARGS_MAX_N]);

    strcat(line, "b");
    assert_int_equal(parse(line), -1);
    assert_non_null(strstr(err, "too many arguments"));
    assert_int_equal(a.argc, 0);

    /* blanks after the 16th argument are fine */
    line[strlen(line) - 1] = ' ';
    assert_int_equal(parse(line), 0);
    assert_int_equal(a.argc, TS_CLI_ARGS_MAX_N);
}


static void
test_line_limit(void **state)
{
    static char  line[TS_CLI_LINE_MAX_B + 8];

    (void) state;
    memset(line, 'x', TS_CLI_LINE_MAX_B);
    line[TS_CLI_LINE_MAX_B] = '\0';
    assert_int_equal(parse(line), 0);
    assert_int_equal(a.argc, 1);
    assert_int_equal(strlen(a.argv[0]), TS_CLI_LINE_MAX_B);

    /* the terminator does not count */
    line[TS_CLI_LINE_MAX_B] = '\n';
    line[TS_CLI_LINE_MAX_B + 1] = '\0';
    assert_int_equal(parse(line), 0);

    line[TS_CLI_LINE_MAX_B] = 'x';
    assert_int_equal(parse(line), -1);
    assert_non_null(strstr(err, "line too long"));
}


static void
test_worst_case_fill(void **state)
{
    static char  line[TS_CLI_LINE_MAX_B + 1];
    int          i;

    (void) state;
    /* 16 arguments filling the whole line: the buffer must hold them all
     * with their terminators */
    memset(line, 'y', TS_CLI_LINE_MAX_B);
    line[TS_CLI_LINE_MAX_B] = '\0';
    for (i = 1; i < TS_CLI_ARGS_MAX_N; i++) {
        line[i * (TS_CLI_LINE_MAX_B / TS_CLI_ARGS_MAX_N)] = ' ';
    }
    assert_int_equal(parse(line), 0);
    assert_int_equal(a.argc, TS_CLI_ARGS_MAX_N);
    assert_int_equal(strlen(a.argv[TS_CLI_ARGS_MAX_N - 1]),
                     TS_CLI_LINE_MAX_B / TS_CLI_ARGS_MAX_N - 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_plain_words),
        cmocka_unit_test(test_blanks_and_tabs),
        cmocka_unit_test(test_empty_blank_comment),
        cmocka_unit_test(test_single_quotes),
        cmocka_unit_test(test_double_quotes_escapes),
        cmocka_unit_test(test_adjacent_pieces_join),
        cmocka_unit_test(test_backslash_outside_quotes_literal),
        cmocka_unit_test(test_unterminated_quote),
        cmocka_unit_test(test_arg_limit),
        cmocka_unit_test(test_line_limit),
        cmocka_unit_test(test_worst_case_fill),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
