/*
 * ts_prom.c -- the Prometheus text format writer (see ts_prom.h).
 *
 * Numbers: integers are printed exactly ("%llu"); other values with
 * "%.17g", which reads back to the same double; the bucket bounds with
 * "%g" (short, exact for the bounds used).  Label values escape \, "
 * and newline as the format asks.
 *
 * Locking: none.  Crash behaviour: memory only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_prom.h"


void
ts_prom_init(ts_prom_t *b, size_t max_b)
{
    memset(b, 0, sizeof(*b));
    b->max = max_b;
}


static void
put(ts_prom_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
put(ts_prom_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;
    size_t   want;
    char    *np;

    if (b->err) {
        return;
    }
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->p != NULL ? b->p + b->len : NULL,
                      b->p != NULL ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->err = 1;
            return;
        }
        if (b->p != NULL && b->len + (size_t) n < b->cap) {
            b->len += (size_t) n;
            return;
        }
        want = b->cap ? b->cap * 2 : 8192;
        while (want < b->len + (size_t) n + 1) {
            want *= 2;
        }
        if (want > b->max) {
            want = b->max;
        }
        if (want < b->len + (size_t) n + 1
            || (np = realloc(b->p, want)) == NULL)
        {
            b->err = 1;
            return;
        }
        b->p = np;
        b->cap = want;
    }
}


void
ts_prom_family(ts_prom_t *b, const char *name, const char *type,
               const char *help)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}


static const char *
braced(const char *labels, char *buf, size_t bufsz)
{
    if (labels == NULL || labels[0] == '\0') {
        return "";
    }
    snprintf(buf, bufsz, "{%s}", labels);
    return buf;
}


void
ts_prom_u64(ts_prom_t *b, const char *name, const char *labels, uint64_t v)
{
    char lb[512];

    put(b, "%s%s %llu\n", name, braced(labels, lb, sizeof(lb)),
        (unsigned long long) v);
}


void
ts_prom_num(ts_prom_t *b, const char *name, const char *labels, double v)
{
    char lb[512];

    put(b, "%s%s %.17g\n", name, braced(labels, lb, sizeof(lb)), v);
}


int
ts_prom_label(char *buf, size_t bufsz, const char *k, const char *v)
{
    size_t n = strlen(buf);

    if (n > 0) {
        if (n + 1 >= bufsz) {
            return -1;
        }
        buf[n++] = ',';
    }
    if (n + strlen(k) + 2 >= bufsz) {
        return -1;
    }
    n += (size_t) sprintf(buf + n, "%s=\"", k);
    for (; *v != '\0'; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\""
                          : *v == '\n' ? "\\n" : NULL;
        size_t      l = esc != NULL ? 2 : 1;

        if (n + l + 2 >= bufsz) {
            return -1;
        }
        if (esc != NULL) {
            memcpy(buf + n, esc, 2);
        } else {
            buf[n] = *v;
        }
        n += l;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return 0;
}


void
ts_prom_histogram(ts_prom_t *b, const char *name, const char *labels,
                  const double *le, const uint64_t *counts, int nb,
                  uint64_t over, double sum)
{
    char      lb[512], bound[32];
    uint64_t  cum = 0;
    int       i;

    for (i = 0; i <= nb; i++) {
        lb[0] = '\0';
        if (labels != NULL && labels[0] != '\0') {
            snprintf(lb, sizeof(lb), "%s", labels);
        }
        if (i < nb) {
            cum += counts[i];
            snprintf(bound, sizeof(bound), "%g", le[i]);
        } else {
            cum += over;
            snprintf(bound, sizeof(bound), "+Inf");
        }
        if (ts_prom_label(lb, sizeof(lb), "le", bound) != 0) {
            b->err = 1;
            return;
        }
        put(b, "%s_bucket{%s} %llu\n", name, lb, (unsigned long long) cum);
    }
    put(b, "%s_sum%s%s%s %.17g\n", name, labels && labels[0] ? "{" : "",
        labels ? labels : "", labels && labels[0] ? "}" : "", sum);
    put(b, "%s_count%s%s%s %llu\n", name, labels && labels[0] ? "{" : "",
        labels ? labels : "", labels && labels[0] ? "}" : "",
        (unsigned long long) cum);
}


char *
ts_prom_take(ts_prom_t *b, size_t *len)
{
    char *p = b->p;

    if (b->err || p == NULL) {
        ts_prom_free(b);
        return NULL;
    }
    *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}


void
ts_prom_free(ts_prom_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}
