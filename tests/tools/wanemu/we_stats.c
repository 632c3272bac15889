/*
 * we_stats.c -- the WAN emulator's counters as JSON lines (jansson):
 * one per host, one per pair that carried traffic, and a summary with
 * the process's CPU time and peak packet memory.
 *
 * Locking: none; called from the event loop (SIGUSR1 via signalfd) and
 * once at exit.
 *
 * Crash behaviour: appends to the stats file (opened per dump, so a
 * reader sees whole dumps); falls back to stderr if it cannot be opened.
 */
#include "we.h"


uint64_t
we_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * WE_NS + (uint64_t) ts.tv_nsec;
}


static void
we_emit(FILE *f, json_t *o)
{
    if (o != NULL) {
        json_dumpf(o, f, JSON_COMPACT);
        fputc('\n', f);
        json_decref(o);
    }
}


void
we_stats(int exiting)
{
    FILE           *f = stderr;
    struct rusage   ru;

    if (we.stats_path && (f = fopen(we.stats_path, "a")) == NULL)
        f = stderr;
    for (int i = 0; i < we.nhosts; i++) {
        we_host_t  *h = &we.hosts[i];

        we_emit(f, json_pack("{s:s,s:i,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                             "s:I,s:I,s:I,s:I,s:I,s:I}",
                 "ev", "host", "host", i, "ns", h->ns,
                 "up_bps", (json_int_t) h->up.rate_bps,
                 "down_bps", (json_int_t) h->down.rate_bps,
                 "queue_bytes", (json_int_t) h->up.limit,
                 "rx_pkts", (json_int_t) h->rx_pkts,
                 "rx_bytes", (json_int_t) h->rx_bytes,
                 "tx_pkts", (json_int_t) h->tx_pkts,
                 "tx_bytes", (json_int_t) h->tx_bytes,
                 "drop_up", (json_int_t) h->drop_up,
                 "drop_down", (json_int_t) h->drop_down,
                 "drop_loss", (json_int_t) h->drop_loss,
                 "drop_noroute", (json_int_t) h->drop_noroute,
                 "drop_mem", (json_int_t) h->drop_mem,
                 "drop_other", (json_int_t) h->drop_other));
    }
    for (int a = 0; a < we.nhosts; a++)
        for (int b = 0; b < we.nhosts; b++) {
            we_link_t  *l = &we.links[a][b];

            if (l->pkts)
                we_emit(f, json_pack("{s:s,s:i,s:i,s:I,s:I}", "ev", "link",
                                     "src", a, "dst", b,
                                     "pkts", (json_int_t) l->pkts,
                                     "lost", (json_int_t) l->lost));
        }
    getrusage(RUSAGE_SELF, &ru);
    we_emit(f, json_pack("{s:s,s:f,s:f,s:f,s:I,s:b}", "ev", "summary",
             "wall_s", (double) (we_now() - we.start_ns) / 1e9,
             "cpu_user_s", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
             "cpu_sys_s", ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6,
             "mem_peak", (json_int_t) we.mem_peak, "exiting", exiting));
    fflush(f);
    if (f != stderr)
        fclose(f);
}

