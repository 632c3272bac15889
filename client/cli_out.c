/*
 * cli_out.c -- the client's output helpers (see cli_out.h for the
 * output rules every command follows).  Every line goes through ts_esc()
 * after it is formatted, so no argument can bring a control sequence,
 * a bidirectional override or invalid UTF-8 to the user's terminal.
 *
 * Locking: none; callers print from the main thread (stderr lines may
 * come from the agent's threads: one stdio call each).
 * Crash behaviour: nothing persistent.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_out.h"
#include "cli_names.h"

/* The capture of the thread running a control request, or NULL: lines
 * then go into it instead of the terminal (cli_out_capture_begin). */
static __thread cli_out_cap_t  *cli_out_cap;
/* Where "error: ..." and warnings go: stderr, or the user's stderr kept
 * aside when --log-file took fd 2 (cli_out_set_stderr). */
static FILE                    *cli_out_errf;
/* The event sink of stderr lines (cli_out_set_sink), or NULL. */
static void                   (*cli_out_sink)(const char *line);

/* A formatted line up to this many bytes needs no allocation. */
#define CLI_OUT_LINE_B  1024


static void cli_out_capture_add(cli_out_cap_t *cap, int is_error,
                                const char *text);


/* Formats fmt, escapes the result whole and writes it to f after prefix
 * and before '\n' in one stdio call (lines of two threads do not mix).
 * A line longer than the stack buffers is formatted on the heap. */
static void __attribute__((format(printf, 3, 0)))
cli_out_vline(FILE *f, const char *prefix, const char *fmt, va_list ap)
{
    char     line[CLI_OUT_LINE_B], esc[TS_ESC_MAX_B(CLI_OUT_LINE_B)];
    char    *lp = line, *ep = esc;
    size_t   n, esz;
    va_list  again;
    int      r;

    va_copy(again, ap);
    r = vsnprintf(line, sizeof(line), fmt, ap);
    n = r < 0 ? 0 : (size_t) r;
    if (n >= sizeof(line)) {
        lp = malloc(n + 1);
        if (lp == NULL || vsnprintf(lp, n + 1, fmt, again) < 0) {
            free(lp);
            lp = line;
            n = sizeof(line) - 1;     /* the truncated line is shown */
        }
    }
    va_end(again);
    esz = TS_ESC_MAX_B(n);
    if (esz > sizeof(esc)) {
        ep = malloc(esz);
        if (ep == NULL) {
            ep = esc;
            esz = sizeof(esc);
        }
    }
    (void) ts_esc(ep, esz, lp, n, 0);
    if (cli_out_cap != NULL) {
        cli_out_capture_add(cli_out_cap, prefix[0] != '\0', ep);
    } else {
        fprintf(f, "%s%s\n", prefix, ep);
        void  (*sink)(const char *) = __atomic_load_n(&cli_out_sink,
                                                      __ATOMIC_ACQUIRE);

        if (f == cli_out_stderr() && sink != NULL) {
            sink(ep);
        }
    }
    if (ep != esc) {
        free(ep);
    }
    if (lp != line) {
        free(lp);
    }
}


/* The class of the last failure of the command being run (cli_exit.h). */
static __thread int  cli_out_cls = CLI_EXIT_OK;


int
cli_out_error(const char *fmt, ...)
{
    va_list  ap;

    cli_out_cls = CLI_EXIT_FAILURE;
    va_start(ap, fmt);
    cli_out_vline(cli_out_stderr(), "error: ", fmt, ap);
    va_end(ap);
    return -1;
}


int
cli_out_fail(int cls, const char *fmt, ...)
{
    va_list  ap;

    cli_out_cls = cls;
    va_start(ap, fmt);
    cli_out_vline(cli_out_stderr(), "error: ", fmt, ap);
    va_end(ap);
    return -1;
}


int
cli_out_class(void)
{
    return cli_out_cls;
}


void
cli_out_class_reset(void)
{
    cli_out_cls = CLI_EXIT_OK;
}


void
cli_out_class_set(int cls)
{
    cli_out_cls = cls;
}


void
cli_out_line(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    cli_out_vline(stdout, "", fmt, ap);
    va_end(ap);
}


void
cli_out_eline(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    cli_out_vline(cli_out_stderr(), "", fmt, ap);
    va_end(ap);
}


void
cli_out_empty(cli_ctx_t *ctx)
{
    if (ctx->tty && cli_out_cap == NULL) {
        puts("(none)");
    }
}


void
cli_out_quote(const char *name, char *out, size_t outsz)
{
    size_t    n = strlen(name), i = 0, o = 0, len, w;
    uint32_t  cp;
    char      one[16];

    if (outsz == 0) {
        return;
    }
    if (name[0] != '\0' && strpbrk(name, " \"'\\") == NULL
        && ts_esc_scan(name, n, NULL, NULL) == n)
    {
        (void) ts_esc(out, outsz, name, n, 0);
        return;
    }
    if (outsz < 3) {
        out[0] = '\0';
        return;
    }
    out[o++] = '"';
    while (i < n) {
        (void) ts_esc_next(name + i, n - i, &cp, &len);
        if (name[i] == '"') {
            memcpy(one, "\\\"", 3);
            w = 2;
        } else {
            w = ts_esc(one, sizeof(one), name + i, len, TS_ESC_BSLASH);
        }
        /* room for this character, the closing quote and the NUL */
        if (o + w + 2 > outsz) {
            break;
        }
        memcpy(out + o, one, w);
        o += w;
        i += len;
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


/* The state of a download as its "state" field. */
static const char *
cli_out_dl_state(cli_dlv_state_t st)
{
    switch (st) {
    case CLI_DLV_DONE:    return "done";
    case CLI_DLV_FAILED:  return "failed";
    case CLI_DLV_PAUSED:  return "paused";
    case CLI_DLV_DENIED:  return "denied";
    case CLI_DLV_WAITING: return "waiting";
    default:              return "running";
    }
}


void
cli_out_download(const cli_dlview_t *v)
{
    char  rate[32], eta[32], got[32], all[32];

    cli_out_json_row(json_pack("{s:o, s:o, s:o, s:s, s:i, s:f, s:f, s:o}",
                               "group", cli_out_json_text(v->group),
                               "name", cli_out_json_text(v->name),
                               "dest", cli_out_json_text(v->dest),
                               "state", cli_out_dl_state(v->state),
                               "pct", v->pct, "bps", v->bps,
                               "eta_s", v->eta_s,
                               "error", cli_out_json_text(
                                   v->state == CLI_DLV_FAILED ? v->error
                                                              : "")));
    /* names as they are (escaped): only list_files quotes them */
    cli_out_rate((double) v->bytes, got, sizeof(got));
    cli_out_rate((double) v->size, all, sizeof(all));
    switch (v->state) {
    case CLI_DLV_DONE:
        cli_out_line("[C] [%s] %s -> %s", v->group, v->name, v->dest);
        break;
    case CLI_DLV_FAILED:
        if (v->bytes > 0) {
            cli_out_line("[F] [%s] %s: %s (%s of %s kept; retry resumes)",
                         v->group, v->name, v->error, got, all);
        } else {
            cli_out_line("[F] [%s] %s: %s", v->group, v->name, v->error);
        }
        break;
    case CLI_DLV_PAUSED:
        cli_out_line("[D] [%s] %s %d%% %s/%s paused%s", v->group, v->name,
                     v->pct, got, all,
                     v->held ? " (not logged in)" : "");
        break;
    case CLI_DLV_DENIED:
        cli_out_line("[D] [%s] %s %d%% %s/%s not permitted: peers refuse "
                     "the download ticket; waiting for a new one", v->group,
                     v->name, v->pct, got, all);
        break;
    case CLI_DLV_WAITING:
        cli_out_line("[D] [%s] %s %d%% %s/%s waiting for sources (%d "
                     "listed)", v->group, v->name, v->pct, got, all,
                     v->sources);
        break;
    default:
        cli_out_rate(v->bps, rate, sizeof(rate));
        cli_out_eta(v->eta_s, eta, sizeof(eta));
        cli_out_line("[D] [%s] %s %d%% %s/%s from %d/%d peers %s/s ETA %s",
                     v->group, v->name, v->pct, got, all, v->serving,
                     v->sources, rate, eta);
        break;
    }
}


/* An error line: the reply's error (the first one) and, like every
 * line, one of its lines as the terminal would show it. */
static void
cli_out_capture_add(cli_out_cap_t *cap, int is_error, const char *text)
{
    char  buf[64 + TS_ESC_MAX_B(CLI_OUT_LINE_B)];

    if (cap->lines == NULL) {
        return;
    }
    if (is_error) {
        if (cap->error == NULL) {
            cap->error = json_string(text);
        }
        snprintf(buf, sizeof(buf), "error: %s", text);
        (void) json_array_append_new(cap->lines, json_string(buf));
        return;
    }
    (void) json_array_append_new(cap->lines, json_string(text));
}


void
cli_out_capture_begin(cli_out_cap_t *cap)
{
    memset(cap, 0, sizeof(*cap));
    cap->lines = json_array();
    cli_out_cap = cap;
    cli_out_cls = CLI_EXIT_OK;
}


void
cli_out_capture_end(cli_out_cap_t *cap)
{
    cap->cls = cli_out_cls;
    cli_out_cap = NULL;
}


int
cli_out_capturing(void)
{
    return cli_out_cap != NULL;
}


void
cli_out_json_list(void)
{
    if (cli_out_cap != NULL && cli_out_cap->result == NULL) {
        cli_out_cap->result = json_array();
    }
}


void
cli_out_json_set(json_t *obj)
{
    if (obj == NULL) {
        return;
    }
    if (cli_out_cap == NULL) {
        json_decref(obj);
        return;
    }
    json_decref(cli_out_cap->result);
    cli_out_cap->result = obj;
}


/* A listing's rows feed the prompt's completion (cli_names.h). */
static void
cli_out_note_names(json_t *row)
{
    json_t  *g = json_object_get(row, "group");
    json_t  *n = json_object_get(row, "name");

    if (json_is_string(g)) {
        cli_names_note(CLI_NAMES_GROUP, json_string_value(g));
    }
    if (json_is_string(n)) {
        cli_names_note(CLI_NAMES_FILE, json_string_value(n));
    }
}


void
cli_out_json_row(json_t *row)
{
    if (row == NULL) {
        return;
    }
    cli_out_note_names(row);
    if (cli_out_cap == NULL) {
        json_decref(row);
        return;
    }
    cli_out_json_list();
    if (cli_out_cap->result == NULL
        || json_array_append_new(cli_out_cap->result, row) != 0)
    {
        json_decref(row);       /* out of memory: the lines still say it */
    }
}


json_t *
cli_out_json_text(const char *s)
{
    char     buf[TS_ESC_MAX_B(CLI_OUT_LINE_B)];
    size_t   n = strlen(s);

    if (n > CLI_OUT_LINE_B) {
        n = CLI_OUT_LINE_B;
    }
    (void) ts_esc(buf, sizeof(buf), s, n, 0);
    return json_string(buf);
}


void
cli_out_set_sink(void (*fn)(const char *line))
{
    __atomic_store_n(&cli_out_sink, fn, __ATOMIC_RELEASE);
}


void
cli_out_set_stderr(FILE *f)
{
    cli_out_errf = f;
}


FILE *
cli_out_stderr(void)
{
    return cli_out_errf != NULL ? cli_out_errf : stderr;
}


void
cli_out_notify(const char *fmt, ...)
{
    char     line[CLI_OUT_LINE_B], esc[TS_ESC_MAX_B(CLI_OUT_LINE_B)];
    void   (*sink)(const char *) = __atomic_load_n(&cli_out_sink,
                                                   __ATOMIC_ACQUIRE);
    va_list  ap;
    int      n;

    if (sink == NULL) {
        return;
    }
    memcpy(line, "notice: ", 8);
    va_start(ap, fmt);
    n = vsnprintf(line + 8, sizeof(line) - 8, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    (void) ts_esc(esc, sizeof(esc), line, strlen(line), 0);
    sink(esc);
}
