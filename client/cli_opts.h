/*
 * cli_opts.h -- the client's command line (cli_opts.c).
 *
 * Locking: main thread only.  Crash behaviour: nothing persistent.
 */
#ifndef CLI_OPTS_H_INCLUDED
#define CLI_OPTS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char  *state_dir;
    int          prefer;        /* 0-based tracker index */
    const char  *addr;
    const char  *trackers_path;
    int          uploaders;     /* 0 = default */
    int          downloaders;
    int          ticket_wait_ms;  /* 0 = default */
    int          slow_chunk_ms;   /* 0 = default */
    int          keep_running;
    int          source_timeout_s; /* 0 = default */
    const char  *ca;            /* cluster CA certificate (--ca) */
    const char  *log_file;      /* --log-file: the log, not stderr */
    uint64_t     max_up_Bps;    /* --max-upload-rate, 0 = unlimited */
    uint64_t     max_down_Bps;  /* --max-download-rate */
    int          attach;        /* --attach: a client of a running node */
    int          json;          /* --json: replies as JSON lines */
    const char  *http;          /* --http ADDR:PORT; NULL = default */
    int          no_http;       /* --no-http */
} cli_opts_t;

/* Options and positional arguments into o; exits 0 or 2 itself. */
void cli_opts_parse(int argc, char **argv, cli_opts_t *o);
/* Validates <IP>:<PORT> into ip, port and node_addr ("ip:port", IPv6
 * in brackets); exits 2 when it is bad. */
void cli_opts_check_addr(const char *arg, char *ip, size_t ipsz,
                         uint16_t *port, char *node_addr, size_t nsz);
/* The default CA: <directory of tracker_info.txt>/pki/ca.crt. */
void cli_opts_default_ca(const char *trackers_path, char *out,
                         size_t outsz);

#endif
