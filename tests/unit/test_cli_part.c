/*
 * test_cli_part.c -- unit tests of a download's files on disk
 * (client/cli_part.c): the .part is made exclusively and never through
 * a symlink, removed and reopened only while it is the download's own
 * inode, and a finished file is recognised by its identity and SHA1.
 *
 * Locking: none (single-threaded).  Crash behaviour: each test works in
 * its own mkdtemp directory, removed afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "ts_crypto.h"
#include "cli_part.h"

typedef struct {
    char  dir[64];
    char  part[128];
    char  dest[128];
} fx_t;


static int
setup(void **state)
{
    fx_t  *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/tsr-cli-part-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->dest, sizeof(f->dest), "%s/out.bin", f->dir);
    snprintf(f->part, sizeof(f->part), "%s/out.bin.part", f->dir);
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    fx_t  *f = *state;
    char   other[160];

    (void) unlink(f->part);
    (void) unlink(f->dest);
    snprintf(other, sizeof(other), "%s/other", f->dir);
    (void) unlink(other);
    (void) rmdir(f->dir);
    free(f);
    return 0;
}


static void
write_file(const char *path, const char *text)
{
    FILE  *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}


/* Puts another file (made while ours still exists, so never with our
 * inode number) under path. */
static void
replace_file(const fx_t *f, const char *path)
{
    char  other[160];

    snprintf(other, sizeof(other), "%s/other", f->dir);
    write_file(other, "theirs");
    assert_int_equal(rename(other, path), 0);
}


static void
test_create_exclusive(void **state)
{
    fx_t        *f = *state;
    node_fid_t   id;
    char         err[256];
    struct stat  sb;

    assert_int_equal(cli_part_create(f->part, &id, err, sizeof(err)), 0);
    assert_int_equal(stat(f->part, &sb), 0);
    assert_int_equal(sb.st_size, 0);
    /* a second time: refused, the file is left alone */
    assert_int_equal(cli_part_create(f->part, &id, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already exists"));
    assert_int_equal(stat(f->part, &sb), 0);
}


static void
test_create_never_through_symlink(void **state)
{
    fx_t        *f = *state;
    node_fid_t   id;
    char         err[256], other[160];
    struct stat  sb;

    snprintf(other, sizeof(other), "%s/other", f->dir);
    assert_int_equal(symlink(other, f->part), 0);
    assert_int_equal(cli_part_create(f->part, &id, err, sizeof(err)), -1);
    assert_int_not_equal(lstat(other, &sb), 0);
}


static void
test_unlink_only_own_file(void **state)
{
    fx_t        *f = *state;
    node_fid_t   id;
    char         err[256];
    struct stat  sb;

    assert_int_equal(cli_part_create(f->part, &id, err, sizeof(err)), 0);
    /* someone else's file took the name: not ours to remove */
    replace_file(f, f->part);
    cli_part_unlink(f->part, &id);
    assert_int_equal(stat(f->part, &sb), 0);
    assert_int_equal(unlink(f->part), 0);

    assert_int_equal(cli_part_create(f->part, &id, err, sizeof(err)), 0);
    cli_part_unlink(f->part, &id);
    assert_int_not_equal(stat(f->part, &sb), 0);
}


static void
test_reopen(void **state)
{
    fx_t          *f = *state;
    cli_dl_rec_t   r;
    uint64_t       have;
    int            dirty = 0;
    char           why[512];

    memset(&r, 0, sizeof(r));
    snprintf(r.part, sizeof(r.part), "%s", f->part);
    /* missing: made anew (and pinned) */
    assert_int_equal(cli_part_reopen(&r, &have, &dirty, why, sizeof(why)),
                     0);
    assert_int_equal(dirty, 1);
    assert_int_equal(have, 0);
    /* there and ours: its size */
    write_file(f->part, "12345");
    dirty = 0;
    assert_int_equal(cli_part_reopen(&r, &have, &dirty, why, sizeof(why)),
                     1);
    assert_int_equal(have, 5);
    assert_int_equal(dirty, 0);
    /* another file under the name: refused, not adopted */
    replace_file(f, f->part);
    assert_int_equal(cli_part_reopen(&r, &have, &dirty, why, sizeof(why)),
                     -1);
    assert_non_null(strstr(why, "not adopted"));
}


static void
test_dest_is_done(void **state)
{
    fx_t          *f = *state;
    cli_dl_rec_t   r;
    ts_sha1_t     *h;
    char           err[256];

    memset(&r, 0, sizeof(r));
    snprintf(r.dest, sizeof(r.dest), "%s", f->dest);
    assert_int_equal(cli_part_create(f->part, &r.part_id, err, sizeof(err)),
                     0);
    write_file(f->part, "hello");
    assert_int_equal(rename(f->part, f->dest), 0);
    r.size = 5;
    h = ts_sha1_new();
    assert_non_null(h);
    ts_sha1_update(h, "hello", 5);
    ts_sha1_final(h, r.sha1);
    ts_sha1_free(h);
    assert_int_equal(cli_part_dest_is_done(&r), 1);
    r.sha1[0] ^= 1;
    assert_int_equal(cli_part_dest_is_done(&r), 0);
    r.sha1[0] ^= 1;
    r.size = 6;
    assert_int_equal(cli_part_dest_is_done(&r), 0);
}


static void
test_part_of(void **state)
{
    (void) state;
    assert_int_equal(cli_part_of("/a/b", "/a/b.part"), 1);
    assert_int_equal(cli_part_of("/a/b", "/a/b"), 0);
    assert_int_equal(cli_part_of("/a/b", "/a/bc.part"), 0);
    assert_int_equal(cli_part_of("/a/b", "/a/b.partx"), 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_create_exclusive, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_create_never_through_symlink,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlink_only_own_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dest_is_done, setup, teardown),
        cmocka_unit_test(test_part_of),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
