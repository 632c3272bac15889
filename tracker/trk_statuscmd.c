/*
 * trk_statuscmd.c -- `tracker --status tracker_info.txt <id>`: the client
 * command that asks a running tracker for its STATUS text and prints it.
 *
 * Purpose: connect to tracker <id> over TLS, presenting a tracker
 * certificate of the cluster (STATUS is answered only to trackers, so
 * it runs on a tracker's machine or with --pki), send STATUS and print
 * the reply.
 *
 * Locking: none (a one-shot process).
 *
 * Crash behaviour: nothing kept; exit code 1 when the tracker cannot be
 * reached or does not answer, 2 for a bad setup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_esc.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_rpc.h"
#include "trk_statuscmd.h"

int
trk_status_cmd(const char *info_path, int id, const char *ca_path,
               const char *crt_path, const char *key_path)
{
    ts_trackers_t  t;
    ts_tls_t      *tls;
    ts_conn_t     *c;
    ts_wbuf_t      b;
    ts_rbuf_t      r;
    uint8_t       *frame = NULL;
    char           err[512];
    char          *text;
    int            fd, rc;

    if (ts_trackers_load(info_path, &t, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracker: %s\n", err);
        return 2;
    }
    if (id < 1 || id > t.n) {
        fprintf(stderr, "tracker: no tracker %d in %s\n", id, info_path);
        return 2;
    }
    /* STATUS reads the whole database: trackers answer it only to a
     * link showing a tracker certificate of their CA -- this machine's
     * own (run it where the tracker runs) */
    if (ts_tls_enabled()
        && (access(crt_path, R_OK) != 0 || access(key_path, R_OK) != 0))
    {
        fprintf(stderr, "tracker: --status needs a tracker certificate "
                "and key of the cluster (%s, %s): %s; run it on the "
                "tracker's machine or give --pki\n", crt_path, key_path,
                strerror(errno));
        return 2;
    }
    tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, crt_path, key_path, ca_path,
                         err, sizeof(err));
    if (tls == NULL) {
        fprintf(stderr, "tracker: cannot use the CA certificate %s or the "
                "tracker certificate %s: %s (see --pki)\n", ca_path,
                crt_path, err);
        return 2;
    }
    fd = ts_net_connect(t.t[id - 1].ip, t.t[id - 1].port,
                        TS_TRK_STATUS_CONNECT_MS);
    if (fd < 0) {
        fprintf(stderr, "tracker: cannot reach tracker %d at %s:%u\n", id,
                t.t[id - 1].ip, (unsigned) t.t[id - 1].port);
        ts_tls_ctx_free(tls);
        return 1;
    }
    c = ts_conn_new_tls(fd, tls, id, NULL);
    if (c == NULL || ts_conn_handshake(c, TS_TLS_HANDSHAKE_MS) != 0) {
        fprintf(stderr, "tracker: TLS with tracker %d at %s:%u failed: %s\n",
                id, t.t[id - 1].ip, (unsigned) t.t[id - 1].port,
                ts_tls_last_error()[0] ? ts_tls_last_error()
                                       : strerror(errno));
        ts_conn_free(c);
        ts_tls_ctx_free(tls);
        return 1;
    }
    ts_wbuf_init(&b);
    rc = trk_rpc_call(c, TS_MSG_STATUS, &b, &frame, &r);
    ts_wbuf_free(&b);
    text = malloc(TS_STR_MAX_B + 1);
    if (rc == 0 && text != NULL && ts_get_str(&r, text, TS_STR_MAX_B + 1) == 0)
    {
        /* another process's text: one "key: value" a line, escaped */
        size_t  n = strlen(text);
        char   *esc = malloc(TS_ESC_MAX_B(n));

        rc = 1;
        if (esc != NULL) {
            (void) ts_esc(esc, TS_ESC_MAX_B(n), text, n, TS_ESC_KEEP_NL);
            fputs(esc, stdout);
            free(esc);
            rc = 0;
        }
    } else {
        fprintf(stderr, "tracker: no STATUS answer from tracker %d%s\n", id,
                rc == -2 ? " (refused; see the log line above)" : "");
        rc = 1;
    }
    free(text);
    free(frame);
    ts_conn_free(c);
    ts_tls_ctx_free(tls);
    return rc;
}
