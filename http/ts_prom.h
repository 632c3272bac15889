/*
 * ts_prom.h -- a writer of the Prometheus text exposition format
 * (version 0.0.4): metric families with their # HELP and # TYPE lines,
 * samples with escaped label values, histograms with cumulative
 * buckets, _sum and _count.
 *
 * The text grows in one malloc'd buffer up to a cap; past it (or out of
 * memory) the writer only remembers the failure (ts_prom_take returns
 * NULL), so callers write without checking each call.
 *
 * Locking: none; a writer belongs to its caller.
 * Crash behaviour: memory only.
 */
#ifndef TS_PROM_H_INCLUDED
#define TS_PROM_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char    *p;
    size_t   len, cap, max;
    int      err;
} ts_prom_t;

#define TS_PROM_CTYPE  "text/plain; version=0.0.4; charset=utf-8"

void ts_prom_init(ts_prom_t *b, size_t max_b);
/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void ts_prom_family(ts_prom_t *b, const char *name, const char *type,
                    const char *help);
/* labels: "" or a list made by ts_prom_label ('k="v",k2="v2"'). */
void ts_prom_u64(ts_prom_t *b, const char *name, const char *labels,
                 uint64_t v);
void ts_prom_num(ts_prom_t *b, const char *name, const char *labels,
                 double v);
/* Appends k="v" (v escaped) to the label list in buf (bufsz bytes,
 * buf[0] = '\0' to start).  0, or -1 if it does not fit. */
int  ts_prom_label(char *buf, size_t bufsz, const char *k, const char *v);
/* A histogram sample set: per-bucket counts (not cumulative) counts[i]
 * of values <= le[i] (and above le[i-1]), nb buckets, plus the values
 * above the last bound in over; sum in the histogram's unit. */
void ts_prom_histogram(ts_prom_t *b, const char *name, const char *labels,
                       const double *le, const uint64_t *counts, int nb,
                       uint64_t over, double sum);
/* The text (NUL-terminated, the caller frees) and its length, or NULL
 * if it overflowed; the writer is empty afterwards. */
char *ts_prom_take(ts_prom_t *b, size_t *len);
void  ts_prom_free(ts_prom_t *b);

#endif
