/*
 * test_cli_dlsm.c -- cmocka tests of the rules of a download's life as
 * the user steers it (client/cli_dlsm.c): every operation from every
 * state (what it becomes, or which failure class refuses it), and the
 * no-source clock (stopped while held, restarted by progress, firing
 * only after the whole timeout of running time).
 *
 * Locking: single-threaded.  Crash behaviour: none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "node_shm.h"
#include "cli_rec.h"
#include "cli_exit.h"
#include "cli_dlsm.h"


/* Every operation from every state: what it becomes, or which class
 * refuses it (and then the record stays as it was). */
static void
test_ops(void **state)
{
    enum { A = CLI_DL_ACTIVE, P = CLI_DL_PAUSED, F = CLI_DL_FAILED,
           D = CLI_DL_DONE };
    static const struct {
        uint32_t    st, nst;
        cli_dlop_t  op;
        int         cls;
        uint32_t    next;
    } cases[] = {
        /* cancel: running, paused, failed, out of the table -> gone */
        { A, NODE_DL_ACTIVE, CLI_DLOP_CANCEL, CLI_EXIT_OK, 0 },
        { P, NODE_DL_PAUSED, CLI_DLOP_CANCEL, CLI_EXIT_OK, 0 },
        { F, NODE_DL_FAILED, CLI_DLOP_CANCEL, CLI_EXIT_OK, 0 },
        { A, NODE_DL_FREE, CLI_DLOP_CANCEL, CLI_EXIT_OK, 0 },
        /* being renamed into place: not now */
        { A, NODE_DL_FINALIZING, CLI_DLOP_CANCEL, CLI_EXIT_CONFLICT, A },
        { A, NODE_DL_DONE, CLI_DLOP_CANCEL, CLI_EXIT_CONFLICT, A },
        /* complete: a share now, not a download */
        { D, NODE_DL_DONE, CLI_DLOP_CANCEL, CLI_EXIT_EXISTS, D },

        { A, NODE_DL_ACTIVE, CLI_DLOP_PAUSE, CLI_EXIT_OK, P },
        /* held by a logout: still pausable (stays paused after login) */
        { A, NODE_DL_PAUSED, CLI_DLOP_PAUSE, CLI_EXIT_OK, P },
        /* already paused: nothing to do, no error */
        { P, NODE_DL_PAUSED, CLI_DLOP_PAUSE, CLI_EXIT_OK, P },
        { A, NODE_DL_FINALIZING, CLI_DLOP_PAUSE, CLI_EXIT_CONFLICT, A },
        { F, NODE_DL_FAILED, CLI_DLOP_PAUSE, CLI_EXIT_FAILURE, F },
        { D, NODE_DL_FREE, CLI_DLOP_PAUSE, CLI_EXIT_EXISTS, D },

        { P, NODE_DL_PAUSED, CLI_DLOP_RESUME, CLI_EXIT_OK, A },
        /* evicted from the node's table while paused: resumes anyway */
        { P, NODE_DL_FREE, CLI_DLOP_RESUME, CLI_EXIT_OK, A },
        { A, NODE_DL_ACTIVE, CLI_DLOP_RESUME, CLI_EXIT_OK, A },
        { F, NODE_DL_FAILED, CLI_DLOP_RESUME, CLI_EXIT_FAILURE, F },
        { D, NODE_DL_DONE, CLI_DLOP_RESUME, CLI_EXIT_EXISTS, D },

        { F, NODE_DL_FAILED, CLI_DLOP_RETRY, CLI_EXIT_OK, A },
        { F, NODE_DL_FREE, CLI_DLOP_RETRY, CLI_EXIT_OK, A },
        { A, NODE_DL_ACTIVE, CLI_DLOP_RETRY, CLI_EXIT_FAILURE, A },
        { P, NODE_DL_PAUSED, CLI_DLOP_RETRY, CLI_EXIT_FAILURE, P },
        { D, NODE_DL_DONE, CLI_DLOP_RETRY, CLI_EXIT_EXISTS, D },

        /* a state node.tdb cannot hold, an operation that does not exist */
        { 99, NODE_DL_FREE, CLI_DLOP_RETRY, CLI_EXIT_FAILURE, 99 },
        { A, NODE_DL_ACTIVE, (cli_dlop_t) 77, CLI_EXIT_USAGE, A },
    };
    const char  *why;
    uint32_t     next;
    size_t       i;
    int          cls;

    (void) state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        why = NULL;
        cls = cli_dlsm_op(cases[i].st, cases[i].nst, cases[i].op, &next,
                          &why);
        if (cls != cases[i].cls || next != cases[i].next) {
            fail_msg("case %zu: class %d next %u, want %d and %u", i, cls,
                     next, cases[i].cls, cases[i].next);
        }
        /* a refusal always says why; a success never does */
        if (cls != CLI_EXIT_OK) {
            assert_non_null(why);
            assert_true(strlen(why) > 0);
        } else {
            assert_null(why);
        }
    }
}


static void
test_stall_clock(void **state)
{
    int64_t   since = 0;
    uint64_t  seen = 0;

    (void) state;
    /* the first look starts the clock */
    assert_false(cli_dlsm_stalled(&since, &seen, 0, 0, 1000, 5000));
    assert_int_equal(since, 1000);
    assert_false(cli_dlsm_stalled(&since, &seen, 0, 0, 5999, 5000));
    /* progress restarts it */
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 5999, 5000));
    assert_int_equal(since, 5999);
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 10998, 5000));
    assert_true(cli_dlsm_stalled(&since, &seen, 100, 0, 10999, 5000));
    /* held (paused, logged out): the time does not count */
    since = 0;
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 20000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 1, 24000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 1, 90000, 5000));
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 94999, 5000));
    assert_true(cli_dlsm_stalled(&since, &seen, 100, 0, 95000, 5000));
    /* no timeout: never */
    since = 1;
    assert_false(cli_dlsm_stalled(&since, &seen, 100, 0, 1LL << 40, 0));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_stall_clock),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
