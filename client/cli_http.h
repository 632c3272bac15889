/*
 * cli_http.h -- the node's HTTP observability endpoint: the process
 * "node-http" that the node supervisor runs beside the agent, its
 * start-up in the CLI (option, listen socket, API key, certificate) and
 * its handlers.
 *
 * Files: cli_http_setup.c (--http, --no-http; the socket, key and
 * certificate, made by the CLI before the node is forked), cli_http.c
 * (the process, its route table and loop, the rate sampler, the actions
 * sent to the agent), cli_http_api.c (the JSON API's GET routes),
 * cli_http_prom.c (/metrics).  The server is http/ts_http.c.
 *
 * Locking: the process reads the node's shm with atomic loads and the
 * seqlock readers only (never a claim, never a write), so it cannot make
 * a downloader or an uploader wait; an action is a command on the
 * agent's control socket, like any --attach client's.
 *
 * Crash behaviour: it holds nothing durable.  Killed, it is forked again
 * by the node supervisor on the same listen socket (inherited from the
 * CLI); its rate samples start afresh.
 */
#ifndef CLI_HTTP_H_INCLUDED
#define CLI_HTTP_H_INCLUDED

#include <stdint.h>
#include <stdio.h>

#include "ts_config.h"
#include "ts_http.h"
#include "ts_shm.h"
#include "ts_sup.h"

typedef struct {
    const char *spec;               /* --http ADDR:PORT; NULL = default */
    int         off;                /* --no-http */
} cli_http_ask_t;

typedef struct {
    int          fd;                /* listening; -1 = no endpoint */
    char         ip[64];
    uint16_t     port;
    int          tls;               /* HTTPS (non-loopback address) */
    char        *crt_pem, *key_pem; /* HTTPS: the node's certificate */
    char         api_key[2 * TS_HTTP_KEY_B + 1];
    char         key_path[4200];
    char         state_dir[4096];
    char         node_addr[96];     /* "ip:port" of the node */
    int64_t      started_ms;        /* wall clock, the node's start */
} cli_http_cfg_t;

/* ---- set-up, in the CLI before the node starts (cli_http_setup.c) ---- */
/* Binds the socket, loads (or makes) <state>/http-api.key and, for an
 * address other than loopback, reads node.crt / node.key.  Off (fd -1,
 * 0 returned) with --no-http or when the default port is taken (a
 * warning).  0, or -1 (told on stderr: the client does not start). */
int  cli_http_setup(const cli_http_ask_t *ask, const char *state_dir,
                    uint16_t node_port, const char *node_addr,
                    const char *crt, const char *key);
/* The configuration the node-http process inherits (fd -1 = none). */
const cli_http_cfg_t *cli_http_cfg(void);
/* Closes the socket and wipes the key (the CLI, after the fork). */
void cli_http_teardown(void);

/* ---- the process (cli_http.c) ---------------------------------------- */
int  cli_http_main(const ts_worker_ctx_t *ctx);

/* The node's shm (the process's mapping) and its rate samples. */
const ts_shm_t *cli_http_shm(void);
/* The server's own counters (NULL before it runs). */
const ts_http_stats_t *cli_http_server_stats(void);
/* Bytes/s now: the node's (up, down), a download's (by index and its
 * entry id) and an upload peer's (by peer table index); 0 if unknown. */
double cli_http_rate_node(int up);
double cli_http_rate_dl(int idx, uint32_t id);
double cli_http_rate_peer(int pidx);

/* ---- the handlers (cli_http_api.c, cli_http_prom.c) ------------------ */
void cli_http_get_healthz(void *arg, const char *path, ts_http_resp_t *r);
void cli_http_get_node(void *arg, const char *path, ts_http_resp_t *r);
void cli_http_get_downloads(void *arg, const char *path, ts_http_resp_t *r);
/* /api/v1/downloads/<group>/<name>/chunks */
void cli_http_get_dl_sub(void *arg, const char *path, ts_http_resp_t *r);
void cli_http_get_shares(void *arg, const char *path, ts_http_resp_t *r);
void cli_http_get_uploads(void *arg, const char *path, ts_http_resp_t *r);
void cli_http_get_metrics(void *arg, const char *path, ts_http_resp_t *r);
/* A JSON text of o (taken) as r's 200 body. */
void cli_http_json(ts_http_resp_t *r, struct json_t *o);
/* Splits "<group>/<name>/<last>" (path after a route prefix) in place:
 * 0, or -1 if it does not have that form (empty parts, too long). */
int  cli_http_split(char *rest, char **group, char **name, char **last);
/* Hex of the first 8 bytes of fp into out (17 bytes). */
void cli_http_fp_hex(const uint8_t *fp, char out[17]);

#endif
