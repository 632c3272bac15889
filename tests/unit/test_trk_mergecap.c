/*
 * test_trk_mergecap.c -- a merged record never goes past the cap its
 * decoder enforces (tracker/trk_view.c, the join of an envelope into an
 * application value).
 *
 * Purpose: two trackers add group members, group file names and node
 * sessions at the same time, each staying within the cap; their merge
 * holds more than the cap.  The view must still decode, be the same
 * in either merge order, and keep the documented elements (earliest
 * members and names, latest sessions).
 *
 * Locking: single-threaded, memory only.  Crash behaviour: nothing
 * persistent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "ts_config.h"
#include "trk_codec.h"
#include "trk_merge.h"


static trk_stamp_t
stamp(uint64_t h, uint8_t o)
{
    trk_stamp_t s;

    s.hlc = h;
    s.origin = o;
    return s;
}


/* A group value of nm members named pfx0000.. (owner first). */
static void
big_group_val(ts_wbuf_t *b, const char *owner, const char *pfx, uint32_t nm)
{
    trk_group_t   g;
    trk_member_t *m;
    uint32_t      i;

    m = calloc(nm + 1, sizeof(*m));
    assert_non_null(m);
    memset(&g, 0, sizeof(g));
    snprintf(g.owner, sizeof(g.owner), "%s", owner);
    snprintf(m[0].user, sizeof(m[0].user), "%s", owner);
    m[0].seq = 1;
    for (i = 0; i < nm; i++) {
        snprintf(m[i + 1].user, sizeof(m[i + 1].user), "%s%04u", pfx, i);
        m[i + 1].seq = i + 2;
    }
    g.nmembers = nm + 1;
    g.members = m;
    g.next_join_seq = nm + 2;
    ts_wbuf_reset(b);
    trk_group_encode(b, &g);
    free(m);
}


/* Two trackers each fill a record towards its cap at the same time; the
 * merge holds more live elements than the record's decoder accepts.  The
 * merged view must still decode (capped), be the same in both merge
 * orders, and keep the documented ones: the earliest members and file
 * names, the latest sessions. */
static void
test_merge_respects_caps(void **state)
{
    trk_rec_t     base, a, b, m1, m2;
    ts_wbuf_t     v, o1, o2;
    trk_group_t   g;
    trk_strlist_t l;
    ts_rbuf_t     rb;
    char          name[32];
    uint32_t      i, nb;
    int           found_a = 0, found_b = 0;

    (void) state;
    ts_wbuf_init(&v);
    ts_wbuf_init(&o1);
    ts_wbuf_init(&o2);

    /* groups: 3000 members added on each side, cap 4096 */
    trk_rec_init(&base);
    big_group_val(&v, "own", "x", 0);
    assert_int_equal(trk_rec_put(&base, "g/t", 3, v.data, v.len,
                                 stamp(10, 1)), 0);
    assert_int_equal(trk_rec_copy(&a, &base), 0);
    assert_int_equal(trk_rec_copy(&b, &base), 0);
    big_group_val(&v, "own", "a", 3000);
    assert_int_equal(trk_rec_put(&a, "g/t", 3, v.data, v.len,
                                 stamp(20, 1)), 0);
    big_group_val(&v, "own", "b", 3000);
    assert_int_equal(trk_rec_put(&b, "g/t", 3, v.data, v.len,
                                 stamp(21, 2)), 0);
    assert_int_equal(trk_rec_copy(&m1, &a), 0);
    assert_int_equal(trk_rec_copy(&m2, &b), 0);
    assert_true(trk_rec_merge(&m1, &b) > 0);
    assert_true(trk_rec_merge(&m2, &a) > 0);
    assert_int_equal(trk_rec_view(&m1, "g/t", 3, &o1), 0);
    assert_int_equal(trk_rec_view(&m2, "g/t", 3, &o2), 0);
    assert_int_equal(o1.len, o2.len);
    assert_memory_equal(o1.data, o2.data, o1.len);
    assert_int_equal(trk_group_decode(o1.data, o1.len, &g), 0);
    assert_int_equal(g.nmembers, TS_GROUP_MEMBERS_MAX_N);
    assert_string_equal(g.owner, "own");
    for (i = 0; i < g.nmembers; i++) {
        found_a += g.members[i].user[0] == 'a';
        found_b += g.members[i].user[0] == 'b';
    }
    assert_int_equal(found_a, 3000);            /* the earlier side whole */
    assert_int_equal(found_b, TS_GROUP_MEMBERS_MAX_N - 3001);
    trk_group_free(&g);
    trk_rec_free(&base);
    trk_rec_free(&a);
    trk_rec_free(&b);
    trk_rec_free(&m1);
    trk_rec_free(&m2);

    /* a group's file list: 6000 names on each side, cap 10000 */
    trk_rec_init(&a);
    trk_rec_init(&b);
    for (nb = 0; nb < 2; nb++) {
        memset(&l, 0, sizeof(l));
        for (i = 0; i < 6000; i++) {
            snprintf(name, sizeof(name), "%c%05u", nb ? 'b' : 'a', i);
            assert_int_equal(trk_strlist_add(&l, name), 1);
        }
        ts_wbuf_reset(&v);
        trk_strlist_encode(&v, TRK_REC_LIST, &l);
        trk_strlist_free(&l);
        assert_int_equal(trk_rec_put(nb ? &b : &a, "l/t", 3, v.data, v.len,
                                     stamp(30 + nb, (uint8_t) (1 + nb))), 0);
    }
    assert_true(trk_rec_merge(&a, &b) > 0);
    assert_int_equal(trk_rec_view(&a, "l/t", 3, &o1), 0);
    assert_int_equal(trk_strlist_decode(o1.data, o1.len, TRK_REC_LIST,
                                        TS_TRK_GROUP_FILES_MAX_N, &l), 0);
    assert_int_equal(l.n, TS_TRK_GROUP_FILES_MAX_N);
    assert_int_equal(trk_strlist_find(&l, "a05999", &i), 1);
    trk_strlist_free(&l);
    trk_rec_free(&a);
    trk_rec_free(&b);

    /* a node's sessions: 40 on each side, cap 64, the latest kept */
    trk_rec_init(&a);
    trk_rec_init(&b);
    for (nb = 0; nb < 2; nb++) {
        ts_wbuf_reset(&v);
        trk_codec_put_head(&v, TRK_REC_NODE);
        ts_put_u32(&v, 40);
        for (i = 0; i < 40; i++) {
            uint8_t h[32];

            memset(h, (int) (nb * 64 + i), sizeof(h));
            ts_put_raw(&v, h, sizeof(h));
        }
        assert_int_equal(trk_rec_put(nb ? &b : &a, "n/u/x", 5, v.data,
                                     v.len, stamp(40 + nb,
                                                  (uint8_t) (1 + nb))), 0);
    }
    assert_true(trk_rec_merge(&a, &b) > 0);
    assert_int_equal(trk_rec_view(&a, "n/u/x", 5, &o1), 0);
    ts_rbuf_init(&rb, o1.data, o1.len);
    assert_int_equal(trk_codec_get_head(&rb, TRK_REC_NODE), 0);
    assert_int_equal(ts_get_u32(&rb), TS_TRK_NODE_SESSIONS_MAX_N);
    assert_int_equal(ts_rbuf_left(&rb), TS_TRK_NODE_SESSIONS_MAX_N * 32);
    found_b = 0;
    for (i = 0; i < TS_TRK_NODE_SESSIONS_MAX_N; i++) {
        uint8_t h[32];

        ts_get_raw(&rb, h, sizeof(h));
        found_b += h[0] >= 64;
    }
    assert_int_equal(found_b, 40);              /* the later side whole */
    trk_rec_free(&a);
    trk_rec_free(&b);
    ts_wbuf_free(&v);
    ts_wbuf_free(&o1);
    ts_wbuf_free(&o2);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_respects_caps),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
