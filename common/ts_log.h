/*
 * ts_log.h -- one-line log records on stderr, tagged with role and pid.
 *
 * Format: "2026-11-24T01:02:03.456Z tracker[1234] info: text\n".  Each
 * record is formatted into a stack buffer and written with one write(2),
 * so lines from many processes sharing stderr never interleave (records
 * are capped at TS_LOG_LINE_B).  No locks, no allocation.  After fork a
 * child calls ts_log_set_role() so its lines carry its own role and pid.
 * ts_log_raw() is async-signal-safe (no formatting, no time).
 */
#ifndef TS_LOG_H_INCLUDED
#define TS_LOG_H_INCLUDED

#include <stdarg.h>

#define TS_LOG_LINE_B 1024

typedef enum {
    TS_LOG_ERROR = 0,
    TS_LOG_WARN  = 1,
    TS_LOG_INFO  = 2,
    TS_LOG_DEBUG = 3
} ts_log_level_t;

void ts_log_set_role(const char *role);          /* copied; pid re-read */
void ts_log_set_level(ts_log_level_t level);     /* default INFO; TS_LOG_LEVEL env */
ts_log_level_t ts_log_get_level(void);
void ts_log(ts_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void ts_vlog(ts_log_level_t level, const char *fmt, va_list ap);
void ts_log_raw(const char *msg);                 /* async-signal-safe */
/* --log-file: open path (append, created 0640) onto stderr, so every
 * process forked later shares it; the path is kept for ts_log_reopen.
 * 0, or -1 with errno. */
int  ts_log_open_file(const char *path);
/* Reopens the kept path onto stderr (after logrotate renamed the file);
 * nothing when no file was opened.  Async-signal-safe (open, dup2,
 * close only): SIGHUP handlers call it in every process. */
void ts_log_reopen(void);
int  ts_log_has_file(void);                        /* 1 after open_file */

#define ts_err(...)   ts_log(TS_LOG_ERROR, __VA_ARGS__)
#define ts_warn(...)  ts_log(TS_LOG_WARN, __VA_ARGS__)
#define ts_info(...)  ts_log(TS_LOG_INFO, __VA_ARGS__)
#define ts_debug(...) do { if (ts_log_get_level() >= TS_LOG_DEBUG) \
                           ts_log(TS_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
