/*
 * tdb_bench.c -- the tracker's tdb settings measured apart from the
 * tracker: fills a fresh tdb with N records shaped like the tracker's
 * (keys of ~40 bytes, values of ~200), then times small transactions (3
 * new keys + 1 rewrite, as a CREATE_GROUP), fetches of existing keys,
 * and a full read traverse -- for a given hash size and flags.  Used to
 * choose TS_TRK_TDB_HASH_N (docs: bench/scale.sh's header).
 *
 * Usage: tdb_bench PATH N HASH_SIZE [sync|nosync] [mmap|nommap] [TXNS]
 *
 * Locking: single process, one tdb handle.  Crash behaviour: PATH is
 * created anew and left behind (the caller removes it).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <tdb.h>

static double
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


static int
dcmp(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return x < y ? -1 : x > y;
}


static void
put(struct tdb_context *tdb, const char *prefix, long i)
{
    char     k[64], v[200];
    TDB_DATA kk, vv;

    snprintf(k, sizeof(k), "%s/%08lx%024ld", prefix, i * 2654435761u, i);
    memset(v, (int) (i & 0x7f), sizeof(v));
    kk.dptr = (unsigned char *) k;
    kk.dsize = strlen(k);
    vv.dptr = (unsigned char *) v;
    vv.dsize = sizeof(v);
    if (tdb_store(tdb, kk, vv, TDB_REPLACE) != 0) {
        fprintf(stderr, "store: %s\n", tdb_errorstr(tdb));
        exit(1);
    }
}


static int
count_fn(struct tdb_context *t, TDB_DATA k, TDB_DATA v, void *arg)
{
    (void) t;
    (void) k;
    (void) v;
    ++*(long *) arg;
    return 0;
}


int
main(int argc, char **argv)
{
    struct tdb_context *tdb;
    long                n, i, txns, j, cnt = 0;
    int                 hash, flags = TDB_DEFAULT;
    double             *lat, t0, fetch_ms, trav_ms;
    char                k[64];
    TDB_DATA            kk, v;

    if (argc < 4) {
        fprintf(stderr, "usage: tdb_bench PATH N HASH_SIZE [sync|nosync] "
                "[mmap|nommap] [TXNS]\n");
        return 2;
    }
    n = atol(argv[2]);
    hash = atoi(argv[3]);
    if (argc > 4 && strcmp(argv[4], "nosync") == 0) {
        flags |= TDB_NOSYNC;
    }
    if (argc > 5 && strcmp(argv[5], "nommap") == 0) {
        flags |= TDB_NOMMAP;
    }
    txns = argc > 6 ? atol(argv[6]) : 200;
    unlink(argv[1]);
    tdb = tdb_open(argv[1], hash, flags, O_RDWR | O_CREAT, 0600);
    if (tdb == NULL) {
        perror("tdb_open");
        return 1;
    }
    t0 = now_ms();
    for (i = 0; i < n; i += 1000) {
        tdb_transaction_start(tdb);
        for (j = i; j < i + 1000 && j < n; j++) {
            put(tdb, "u", j);
        }
        tdb_transaction_commit(tdb);
    }
    printf("fill %ld records: %.0f ms\n", n, now_ms() - t0);
    lat = calloc((size_t) txns, sizeof(*lat));
    for (i = 0; i < txns; i++) {
        t0 = now_ms();
        tdb_transaction_start(tdb);
        put(tdb, "g", n + 3 * i);
        put(tdb, "r", n + 3 * i + 1);
        put(tdb, "o", n + 3 * i + 2);
        put(tdb, "u", i % (n ? n : 1));
        tdb_transaction_commit(tdb);
        lat[i] = now_ms() - t0;
    }
    qsort(lat, (size_t) txns, sizeof(*lat), dcmp);
    t0 = now_ms();
    for (i = 0; i < 10000 && n > 0; i++) {
        snprintf(k, sizeof(k), "u/%08lx%024ld", (i % n) * 2654435761u,
                 i % n);
        kk.dptr = (unsigned char *) k;
        kk.dsize = strlen(k);
        v = tdb_fetch(tdb, kk);
        free(v.dptr);
    }
    fetch_ms = (now_ms() - t0) / 10000;
    t0 = now_ms();
    tdb_traverse_read(tdb, count_fn, &cnt);
    trav_ms = now_ms() - t0;
    printf("hash %d %s %s: txn p50 %.3f ms p99 %.3f ms; fetch %.4f ms; "
           "traverse of %ld: %.0f ms\n", hash,
           flags & TDB_NOSYNC ? "nosync" : "sync",
           flags & TDB_NOMMAP ? "nommap" : "mmap", lat[txns / 2],
           lat[txns * 99 / 100], fetch_ms, cnt, trav_ms);
    free(lat);
    tdb_close(tdb);
    return 0;
}
