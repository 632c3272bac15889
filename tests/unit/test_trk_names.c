/*
 * test_trk_names.c -- cmocka tests of the tracker's rule for the names of
 * new files (trk_do_upload with ts_valid_new_filename) and of the names
 * stored before it, on a real tdb file in a fresh temp directory.
 *
 * Covers: a new file whose name holds a C1 control (U+009B, or the raw
 * byte 0x9B), a bidirectional control, a line separator or invalid UTF-8
 * is refused with BADREQ and a message naming the character; printable
 * UTF-8 names (accents, CJK, spaces) are accepted as before.  Files
 * already stored under such names (the placeholder names of uploaded
 * files rewritten in every record of the tdb, as a tracker without the
 * rule would have written them) are listed, described, get new sources
 * (same content), refuse other content, take HAVE_CHUNKS and are
 * removed by their last STOP_SHARE, like any other file.
 *
 * Locking: single-threaded; writes in one transaction each, like the
 * dispatcher.  Crash behaviour: none (temp files removed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>
#include <tdb.h>

#include "ts_buf.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "trk_store.h"
#include "trk_files.h"
#include "ts_ticket.h"
#include "ts_tls.h"

#include "trk_fixture.h"


static int
setup(void **state)
{
    return fx_setup(state, "/tmp/test_trk_names.XXXXXX");
}


static void
test_new_names_refused(void **state)
{
    static const struct { const char *name, *why; } bad[] = {
        { "a\xc2\x9b[2J", "U+009B (a C1 control character) at byte 1" },
        { "b\x9b[2J", "byte 0x9b (invalid UTF-8) at byte 1" },
        { "evil\xe2\x80\xaetxt.exe",
          "U+202E (a bidirectional control) at byte 4" },
        { "\xe2\x81\xa6x", "U+2066 (a bidirectional control) at byte 0" },
        { "x\xe2\x80\x8e", "U+200E (a bidirectional control) at byte 1" },
        { "l\xe2\x80\xa8l", "U+2028 (a line separator) at byte 1" },
        { "caf\xe9", "byte 0xe9 (invalid UTF-8) at byte 3" },
        { "\xed\xa0\x80", "byte 0xed (invalid UTF-8) at byte 0" },
    };
    static const char *const good[] = {
        "r\xc3\xa9sum\xc3\xa9.pdf", "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80",
        "my file (1).tar.gz", "a\\b",
    };
    fx_t    *fx = *state;
    uint8_t  h[32];
    char     want[TRK_MSG_B];
    size_t   i;
    int      src;

    fx_mkgroup(fx, "g1", "alice", NULL, NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, h);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1",
                                   bad[i].name, 10, 1, 1), TS_ERR_BADREQ);
        snprintf(want, sizeof(want), "invalid file name: %s; a new file "
                 "name must be printable UTF-8", bad[i].why);
        assert_string_equal(msg, want);
    }
    /* what was refused before keeps its message */
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1",
                               "x\x1b[2J", 10, 1, 1), TS_ERR_BADREQ);
    assert_string_equal(msg, "invalid file name");
    assert_int_equal(fx_list(fx, "alice", "127.0.0.1:7001", "g1", NULL, &src),
                     0);
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1",
                                   good[i], 10, 1, 1), TS_OK);
    }
    assert_int_equal(fx_list(fx, "alice", "127.0.0.1:7001", "g1", good[0],
                             &src), 4);
    assert_int_equal(src, 1);
}


/* n bytes at p with every from (fl bytes) replaced by to; returns hits */
static int
swap_bytes(uint8_t *p, size_t n, const char *from, const char *to, size_t fl)
{
    size_t  i;
    int     hits = 0;

    for (i = 0; i + fl <= n; i++) {
        if (memcmp(p + i, from, fl) == 0) {
            memcpy(p + i, to, fl);
            hits++;
        }
    }
    return hits;
}


/* every occurrence of from in the records of the tdb at path becomes to
 * (the same length), keys and values alike: the keys are listed first,
 * then each record is rewritten */
static void
rename_in_tdb(const char *path, const char *from, const char *to)
{
    TDB_CONTEXT  *tdb;
    TDB_DATA      keys[256], k, v;
    size_t        fl = strlen(from), nk = 0, i;
    int           hits = 0, h;

    assert_int_equal(strlen(to), fl);
    tdb = tdb_open(path, 0, TDB_DEFAULT, O_RDWR, 0600);
    assert_non_null(tdb);
    /* tdb_firstkey / tdb_nextkey return malloc'd keys: kept, freed below */
    for (k = tdb_firstkey(tdb); k.dptr != NULL;
         k = tdb_nextkey(tdb, keys[nk - 1]))
    {
        assert_true(nk < sizeof(keys) / sizeof(keys[0]));
        keys[nk++] = k;
    }
    for (i = 0; i < nk; i++) {
        v = tdb_fetch(tdb, keys[i]);
        assert_non_null(v.dptr);
        h = swap_bytes(v.dptr, v.dsize, from, to, fl);
        k.dsize = keys[i].dsize;
        k.dptr = malloc(k.dsize ? k.dsize : 1);
        memcpy(k.dptr, keys[i].dptr, k.dsize);
        if (swap_bytes(k.dptr, k.dsize, from, to, fl) > 0) {
            assert_int_equal(tdb_delete(tdb, keys[i]), 0);
            h++;
        }
        if (h > 0) {
            assert_int_equal(tdb_store(tdb, k, v, TDB_REPLACE), 0);
        }
        hits += h;
        free(k.dptr);
        free(v.dptr);
        free(keys[i].dptr);
    }
    tdb_close(tdb);
    assert_true(hits >= 3);     /* f/, p/, l/ at least */
}


static void
test_stored_names_work(void **state)
{
    static const char  hostile[] = "evil\xe2\x80\xaetxt.exe";
    fx_t              *fx = *state;
    uint8_t            ha[32], hb[32], bm[1] = { 1 };
    char               ph[sizeof(hostile)], err[256];
    info_t             in;
    int                src;

    fx_mkgroup(fx, "g1", "alice", "bob", NULL);
    fx_login(fx, "alice", "127.0.0.1:7001", 1, ha);
    fx_login(fx, "bob", "127.0.0.1:7002", 2, hb);
    memset(ph, 'Q', sizeof(ph) - 1);
    ph[0] = 'e';
    ph[sizeof(ph) - 1] = '\0';
    assert_int_equal(fx_upload(fx, "alice", "127.0.0.1:7001", "g1", ph, SZ2,
                               2, 7), TS_OK);
    trk_store_close(fx->st);
    rename_in_tdb(fx->path, ph, hostile);
    fx->st = trk_store_open(fx->path, 0, 1, err, sizeof(err));
    assert_non_null(fx->st);

    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                             &src), 1);
    assert_int_equal(src, 1);
    assert_int_equal(fx_info(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                             &in), TS_OK);
    assert_int_equal(in.n, 1);
    /* bob downloads: partial, then a complete source (same content) */
    assert_int_equal(fx_have(fx, "bob", "127.0.0.1:7002", "g1", hostile, 0,
                             bm, 1), TS_OK);
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                               SZ2, 2, 7), TS_OK);
    fx_list(fx, "bob", "127.0.0.1:7002", "g1", hostile, &src);
    assert_int_equal(src, 2);
    /* other content under the stored name: refused as for any name */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                               SZ2, 2, 9), TS_ERR_EXISTS);
    /* both stop: the file goes */
    assert_int_equal(fx_stop(fx, "alice", "127.0.0.1:7001", "g1", hostile),
                     TS_OK);
    assert_int_equal(fx_stop(fx, "bob", "127.0.0.1:7002", "g1", hostile),
                     TS_OK);
    assert_int_equal(fx_list(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                             &src), 0);
    /* and the name cannot be made again */
    assert_int_equal(fx_upload(fx, "bob", "127.0.0.1:7002", "g1", hostile,
                               SZ2, 2, 7), TS_ERR_BADREQ);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_names_refused, setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_stored_names_work, setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
