/*
 * test_rate.c -- the shared token bucket (shm/ts_rate.h): grants and
 * waits on a virtual clock, debt and refunds, run-time changes, and
 * processes hammering one bucket in a MAP_SHARED page at once.
 *
 * Locking: the concurrency test is the point; each child has its own
 * result slot.  Crash behaviour: children are reaped by the parent; the
 * mapping is anonymous and goes with the process.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_rate.h"

#define KIB  1024ull
#define MIB  (1024ull * 1024ull)
#define NS   1000000000LL


/* A zeroed bucket set to rate and burst; the clock at the set. */
static int64_t
test_bucket(ts_rate_sh_t *b, uint64_t rate, uint64_t burst)
{
    memset(b, 0, sizeof(*b));
    ts_rate_set(b, rate, burst);
    return ts_rate_now_ns();
}


static void
test_unlimited(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      g;

    (void) test_bucket(&b, 0, 0);
    assert_int_equal(ts_rate_take(&b, 512 * KIB, 512 * KIB, 0, &g), 0);
    assert_int_equal(g, 512 * KIB);
    ts_rate_charge(&b, 100, 0);
    assert_int_equal(atomic_load(&b.taken_B), 512 * KIB + 100);
}


/* Starts empty; after 1 s at 1 MiB/s a full bucket (the burst) is
 * there, never more; a short bucket says how long to wait. */
static void
test_grant_and_wait(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      g;
    int64_t       t0, w;

    t0 = test_bucket(&b, MIB, 256 * KIB);
    assert_int_equal(atomic_load(&b.burst_B), 256 * KIB);

    /* empty at set: 64 KiB takes 1/16 s */
    w = ts_rate_take(&b, 64 * KIB, 64 * KIB, t0, &g);
    assert_int_equal(g, 0);
    assert_true(w > NS / 16 - NS / 100 && w <= NS / 16 + NS / 100);

    /* 10 s later: the burst and no more, even when asked for 1 MiB */
    w = ts_rate_take(&b, MIB, 1, t0 + 10 * NS, &g);
    assert_int_equal(w, 0);
    assert_true(g >= 256 * KIB - 1 && g <= 256 * KIB);
    w = ts_rate_take(&b, 1024, 1024, t0 + 10 * NS, &g);
    assert_true(w > 0 && g == 0);
    /* 1024 bytes at 1 MiB/s: ~977 us */
    assert_true(w > 900000 && w < 1100000);

    /* min above the burst is capped at it, so it can be granted */
    w = ts_rate_take(&b, 4 * MIB, 4 * MIB, t0 + 20 * NS, &g);
    assert_int_equal(w, 0);
    assert_true(g >= 256 * KIB - 1 && g <= 256 * KIB);
}


/* Over a long virtual run the grants are rate * T (+ the burst at most),
 * whatever the request sizes. */
static void
test_long_run_exact(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      g, total = 0, rate = 3 * MIB + 12345;
    int64_t       t0, t, w, end;
    uint64_t      sizes[] = { 1, 1500, 64 * KIB, 512 * KIB, 7 };
    int           i = 0;

    t0 = test_bucket(&b, rate, 0);
    end = t0 + 20 * NS;
    for (t = t0; t < end; ) {
        w = ts_rate_take(&b, sizes[i % 5], sizes[i % 5], t, &g);
        if (w > 0) {
            t += w;
        } else {
            total += g;
        }
        i++;
    }
    /* 20 s at rate, started empty: within one request of rate * 20 */
    assert_true(total <= rate * 20 + 1);
    assert_true(total + 512 * KIB + 1 >= rate * 20);
}


/* A charge (bytes sent without asking) puts the bucket into debt; a
 * refund gives unused bytes back. */
/* Reservations: served in the order asked, each due when the bucket
 * covers it; a waiter that wakes late still has its bytes, so taker
 * after taker at random late times never gets more, or less, than the
 * rate over the run plus one bucket. */
static void
test_reserve_order(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      n, at, total = 0;
    int64_t       t0, now, due, d1, d2, d3;
    int           i;

    t0 = test_bucket(&b, MIB, 64 * KIB);
    /* empty at set: three 64 KiB slices are due at 1/16, 2/16, 3/16 s */
    n = 64 * KIB;
    d1 = ts_rate_reserve(&b, &n, t0, &at);
    assert_int_equal(n, 64 * KIB);
    assert_int_equal(at, MIB);
    d2 = ts_rate_reserve(&b, &n, t0, &at);
    d3 = ts_rate_reserve(&b, &n, t0 + NS / 32, &at);
    assert_true(d1 > NS / 16 - NS / 100 && d1 <= NS / 16 + NS / 100);
    assert_true(d2 > 2 * NS / 16 - NS / 100 && d2 <= 2 * NS / 16 + NS / 100);
    /* asked 1/32 s later, due at 3/16 s all the same: the order holds */
    assert_true(t0 + NS / 32 + d3 > t0 + 3 * NS / 16 - NS / 100
                && t0 + NS / 32 + d3 <= t0 + 3 * NS / 16 + NS / 100);
    /* more than the bucket is capped at the bucket */
    n = MIB;
    (void) ts_rate_reserve(&b, &n, t0, &at);
    assert_int_equal(n, 64 * KIB);

    /* 10 s of takers that each wake up to 40 ms after their due time */
    t0 = test_bucket(&b, MIB, 64 * KIB);
    now = t0;
    srand(7);
    for (i = 0; now < t0 + 10 * NS; i++) {
        n = 32 * KIB;
        due = now + ts_rate_reserve(&b, &n, now, &at);
        total += n;
        now = due + (rand() % 40) * (NS / 1000);
    }
    /* what was reserved by t0 + 10 s: 10 s of the rate (the bucket
     * starts empty), give or take the last slice */
    assert_true(total >= 10 * MIB && total <= 10 * MIB + 64 * KIB);
    assert_int_equal(atomic_load(&b.taken_B), total);
    /* unlimited: at once */
    t0 = test_bucket(&b, 0, 0);
    n = 5 * MIB;
    assert_int_equal(ts_rate_reserve(&b, &n, t0, &at), 0);
    assert_int_equal(n, 5 * MIB);
    assert_int_equal(at, 0);
}


static void
test_charge_refund(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      g;
    int64_t       t0, w;

    t0 = test_bucket(&b, MIB, 64 * KIB) + 10 * NS;   /* full by then */
    ts_rate_charge(&b, MIB + 64 * KIB, t0);   /* the bucket and 1 s more */
    w = ts_rate_take(&b, 1024, 1024, t0, &g);
    assert_true(w > NS && w < NS + NS / 50);
    w = ts_rate_take(&b, 32 * KIB, 32 * KIB, t0 + 2 * NS, &g);
    assert_int_equal(w, 0);
    assert_int_equal(g, 32 * KIB);
    /* the other 32 KiB of the bucket, then empty; a refund refills */
    assert_int_equal(ts_rate_take(&b, 32 * KIB, 32 * KIB, t0 + 2 * NS, &g),
                     0);
    assert_true(ts_rate_take(&b, 16 * KIB, 16 * KIB, t0 + 2 * NS, &g) > 0);
    ts_rate_refund(&b, 16 * KIB);
    assert_int_equal(ts_rate_take(&b, 16 * KIB, 16 * KIB, t0 + 2 * NS, &g),
                     0);
    assert_int_equal(g, 16 * KIB);
}


/* A change takes effect at once: the bucket is empty at the new rate. */
static void
test_change(void **state)
{
    ts_rate_sh_t  b;
    uint64_t      g;
    int64_t       t0, w;

    (void) test_bucket(&b, MIB, 0);
    assert_int_equal(atomic_load(&b.burst_B), TS_RATE_BURST_B);
    ts_rate_set(&b, 64 * MIB, 0);
    assert_int_equal(atomic_load(&b.burst_B), 16 * MIB);   /* 250 ms */
    t0 = ts_rate_now_ns();
    w = ts_rate_take(&b, 64 * KIB, 64 * KIB, t0, &g);
    /* 64 KiB at 64 MiB/s: ~1 ms (the bucket is empty) */
    assert_true(w > 0 && w < 2000000);
    ts_rate_set(&b, 0, 0);
    assert_int_equal(ts_rate_take(&b, 64 * KIB, 64 * KIB, t0, &g), 0);
    assert_int_equal(g, 64 * KIB);
}


#define KIDS_N  6
#define RUN_NS  (2 * NS)

/* KIDS_N processes take slices of 11 to 64 KiB (or parts of them) from
 * one bucket in a shared page for RUN_NS, sleeping the wait they are
 * told: the total is within 2 % of rate * T (1 % on an idle machine),
 * never above it (it starts empty), and every process gets a fair part
 * of it, whatever its request size. */
static void
test_processes(void **state)
{
    struct shared {
        ts_rate_sh_t  b;
        int64_t       start;
        uint64_t      got[KIDS_N];
    } *sh;
    uint64_t          rate = 8 * MIB, total = 0, g;
    int64_t           now, w;
    struct timespec   ts;
    pid_t             pids[KIDS_N];
    int               i, st;

    sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof(*sh));
    /* the default depth (250 ms of the rate): a child the scheduler
     * delays by less loses nothing, as in the workers */
    ts_rate_set(&sh->b, rate, 0);
    sh->start = ts_rate_now_ns();
    for (i = 0; i < KIDS_N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            uint64_t want = (uint64_t) (i + 1) * 10923;  /* odd sizes */

            for (;;) {
                now = ts_rate_now_ns();
                if (now >= sh->start + RUN_NS) {
                    break;
                }
                /* as the workers ask: a slice, a part of it at least */
                w = ts_rate_take(&sh->b, want, TS_RATE_SLICE_MIN_B, now, &g);
                if (w > 0) {
                    ts.tv_sec = w / NS;
                    ts.tv_nsec = w % NS;
                    nanosleep(&ts, NULL);
                } else {
                    sh->got[i] += g;
                }
            }
            _exit(0);
        }
    }
    for (i = 0; i < KIDS_N; i++) {
        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        total += sh->got[i];
    }
    print_message("%d processes, %.1f s at %llu B/s: granted %llu "
                  "(%.3f of rate * T)\n", KIDS_N, (double) RUN_NS / NS,
                  (unsigned long long) rate, (unsigned long long) total,
                  (double) total / (double) (rate * 2));
    for (i = 0; i < KIDS_N; i++) {
        /* nobody starved: a fifth of a fair share at least */
        print_message("  child %d (asks %d): %llu\n", i, (i + 1) * 10923,
                      (unsigned long long) sh->got[i]);
        assert_true(sh->got[i] * KIDS_N * 5 >= total);
    }
    assert_true(total <= rate * 2 + KIDS_N);
    assert_true((double) total >= 0.98 * (double) (rate * 2));
    munmap(sh, sizeof(*sh));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unlimited),
        cmocka_unit_test(test_grant_and_wait),
        cmocka_unit_test(test_long_run_exact),
        cmocka_unit_test(test_reserve_order),
        cmocka_unit_test(test_charge_refund),
        cmocka_unit_test(test_change),
        cmocka_unit_test(test_processes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
