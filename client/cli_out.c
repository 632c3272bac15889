/*
 * cli_out.c -- the client's output helpers (see cli_out.h for the
 * output rules every command follows).
 *
 * Locking: none; callers print from the main thread.
 * Crash behaviour: nothing persistent.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli_out.h"


int
cli_out_error(const char *fmt, ...)
{
    va_list  ap;

    fputs("error: ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    return -1;
}


void
cli_out_empty(cli_ctx_t *ctx)
{
    if (ctx->tty) {
        puts("(none)");
    }
}


void
cli_out_quote(const char *name, char *out, size_t outsz)
{
    size_t       o = 0;
    const char  *p;

    if (outsz == 0) {
        return;
    }
    if (name[0] != '\0' && strpbrk(name, " \t\"'\\") == NULL) {
        snprintf(out, outsz, "%s", name);
        return;
    }
    /* worst case 2 bytes per char + quotes + NUL */
    if (outsz < 3) {
        out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (p = name; *p != '\0' && o + 3 < outsz; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
        }
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
}


void
cli_out_rate(double bps, char *out, size_t outsz)
{
    static const char  *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int                 u = 0;

    while (bps >= 1024.0 && u < 4) {
        bps /= 1024.0;
        u++;
    }
    if (u == 0) {
        snprintf(out, outsz, "%.0f%s", bps, unit[u]);
    } else {
        snprintf(out, outsz, "%.1f%s", bps, unit[u]);
    }
}


void
cli_out_eta(double secs, char *out, size_t outsz)
{
    long  s;

    if (secs < 0 || secs > 99.0 * 3600) {
        snprintf(out, outsz, "--");
        return;
    }
    s = (long) (secs + 0.5);
    if (s >= 3600) {
        snprintf(out, outsz, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    } else if (s >= 60) {
        snprintf(out, outsz, "%ldm%02lds", s / 60, s % 60);
    } else {
        snprintf(out, outsz, "%lds", s);
    }
}


void
cli_out_download(const cli_dlview_t *v)
{
    char  rate[32], eta[32];

    /* names as they are: only list_files quotes them */
    switch (v->state) {
    case CLI_DLV_DONE:
        printf("[C] [%s] %s -> %s\n", v->group, v->name, v->dest);
        break;
    case CLI_DLV_FAILED:
        printf("[F] [%s] %s: %s\n", v->group, v->name, v->error);
        break;
    case CLI_DLV_PAUSED:
        printf("[D] [%s] %s %d%% paused\n", v->group, v->name, v->pct);
        break;
    case CLI_DLV_DENIED:
        printf("[D] [%s] %s %d%% not permitted: peers refuse the "
               "download ticket; waiting for a new one\n", v->group,
               v->name, v->pct);
        break;
    case CLI_DLV_WAITING:
        printf("[D] [%s] %s %d%% waiting for sources\n", v->group,
               v->name, v->pct);
        break;
    default:
        cli_out_rate(v->bps, rate, sizeof(rate));
        cli_out_eta(v->eta_s, eta, sizeof(eta));
        printf("[D] [%s] %s %d%% %s/s ETA %s\n", v->group, v->name, v->pct,
               rate, eta);
        break;
    }
}
