/*
 * test_cli_srcdead.c -- cmocka tests of the agent's source memory
 * (client/cli_srcdead.c) over a download entry in plain memory: a source
 * with TS_CLI_SRC_DEAD_ERRORS_N failures in a row becomes dead (GONE in
 * shm, left out of the tracker's next list, named in FILE_INFO's
 * exclusion tail) for a backoff that doubles when it dies again, and is
 * forgiven once it serves; the served-by tail names each source whose
 * verified-chunk count grew, once.
 *
 * Locking: single-threaded.  Crash behaviour: none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ts_buf.h"
#include "node_shm.h"
#include "cli_finfo.h"
#include "cli_srcdead.h"


static void
src(node_dl_sh_t *d, int j, const char *addr, uint8_t fpb)
{
    snprintf(d->src[j].addr, sizeof(d->src[j].addr), "%s", addr);
    memset(d->src[j].fp, fpb, TS_FP_B);
    atomic_store(&d->src[j].state, NODE_SRC_LIVE);
}


static uint32_t
tail_n(const ts_wbuf_t *b)
{
    ts_rbuf_t r;

    if (b->len == 0) {
        return 0;
    }
    ts_rbuf_init(&r, b->data, b->len);
    return ts_get_u32(&r);
}


static void
test_dead_backoff(void **state)
{
    node_dl_sh_t *d = calloc(1, sizeof(*d));
    cli_srcmem_t *m = NULL;
    cli_finfo_t   fi;
    ts_wbuf_t     b;
    int64_t       now = 1000000;

    (void) state;
    src(d, 0, "127.0.0.1:1", 1);
    src(d, 1, "127.0.0.1:2", 2);
    atomic_store(&d->src[0].errors, TS_CLI_SRC_DEAD_ERRORS_N - 1);
    assert_int_equal(cli_srcdead_scan(&m, d, now), 0);
    assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_LIVE);

    atomic_store(&d->src[0].errors, TS_CLI_SRC_DEAD_ERRORS_N);
    assert_int_equal(cli_srcdead_scan(&m, d, now), 1);
    assert_int_equal(atomic_load(&d->src[0].state), NODE_SRC_GONE);
    assert_int_equal(atomic_load(&d->src[1].state), NODE_SRC_LIVE);

    /* named in the exclusion tail, left out of the next list */
    ts_wbuf_init(&b);
    cli_srcdead_put_excl(m, &b, now);
    assert_int_equal(tail_n(&b), 1);
    memset(&fi, 0, sizeof(fi));
    fi.nsrc = 2;
    snprintf(fi.src[0].addr, sizeof(fi.src[0].addr), "127.0.0.1:1");
    memset(fi.src[0].fp, 1, TS_FP_B);
    snprintf(fi.src[1].addr, sizeof(fi.src[1].addr), "127.0.0.1:2");
    memset(fi.src[1].fp, 2, TS_FP_B);
    cli_srcdead_filter(m, &fi, now + TS_CLI_SRC_DEAD_MIN_MS - 1);
    assert_int_equal(fi.nsrc, 1);
    assert_string_equal(fi.src[0].addr, "127.0.0.1:2");

    /* the same address with another identity is another source */
    fi.nsrc = 1;
    snprintf(fi.src[0].addr, sizeof(fi.src[0].addr), "127.0.0.1:1");
    memset(fi.src[0].fp, 9, TS_FP_B);
    cli_srcdead_filter(m, &fi, now);
    assert_int_equal(fi.nsrc, 1);

    /* after the backoff it is back; dying again doubles it */
    ts_wbuf_reset(&b);
    cli_srcdead_put_excl(m, &b, now + TS_CLI_SRC_DEAD_MIN_MS);
    assert_int_equal(b.len, 0);
    now += TS_CLI_SRC_DEAD_MIN_MS;
    atomic_store(&d->src[0].state, NODE_SRC_LIVE);
    assert_int_equal(cli_srcdead_scan(&m, d, now), 1);
    ts_wbuf_reset(&b);
    cli_srcdead_put_excl(m, &b, now + 2 * TS_CLI_SRC_DEAD_MIN_MS - 1);
    assert_int_equal(tail_n(&b), 1);

    /* it serves: forgiven at once */
    atomic_store(&d->src[0].state, NODE_SRC_LIVE);
    atomic_store(&d->src[0].errors, 0);
    atomic_store(&d->src[0].chunks, 1);
    assert_int_equal(cli_srcdead_scan(&m, d, now), 0);
    ts_wbuf_reset(&b);
    cli_srcdead_put_excl(m, &b, now);
    assert_int_equal(b.len, 0);

    ts_wbuf_free(&b);
    free(m);
    free(d);
}


static void
test_served(void **state)
{
    node_dl_sh_t *d = calloc(1, sizeof(*d));
    cli_srcmem_t *m = NULL;
    ts_wbuf_t     b;
    ts_rbuf_t     r;
    char          addr[64];
    uint8_t       fp[TS_FP_B];

    (void) state;
    src(d, 0, "127.0.0.1:1", 1);
    src(d, 3, "127.0.0.1:4", 4);
    ts_wbuf_init(&b);
    cli_srcdead_put_served(&m, d, &b);
    assert_int_equal(b.len, 0);                 /* nobody served yet */

    atomic_store(&d->src[3].chunks, 2);
    cli_srcdead_put_served(&m, d, &b);
    ts_rbuf_init(&r, b.data, b.len);
    assert_int_equal(ts_get_u32(&r), 1);
    assert_int_equal(ts_get_str(&r, addr, sizeof(addr)), 0);
    assert_string_equal(addr, "127.0.0.1:4");
    ts_get_raw(&r, fp, TS_FP_B);
    assert_int_equal(fp[0], 4);
    assert_int_equal(ts_rbuf_end(&r), 0);

    /* once per growth */
    ts_wbuf_reset(&b);
    cli_srcdead_put_served(&m, d, &b);
    assert_int_equal(b.len, 0);
    /* a bad-data source is never reported */
    atomic_store(&d->src[0].chunks, 5);
    atomic_store(&d->src[0].state, NODE_SRC_DROPPED);
    cli_srcdead_put_served(&m, d, &b);
    assert_int_equal(b.len, 0);

    ts_wbuf_free(&b);
    free(m);
    free(d);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_backoff),
        cmocka_unit_test(test_served),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
