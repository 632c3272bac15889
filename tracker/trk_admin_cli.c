/*
 * trk_admin_cli.c -- `tracker --admin NAME ... tracker_info.txt <id>
 * COMMAND` (an operator's listing or action over TLS) and `tracker
 * --make-admin-cert NAME tracker_info.txt`.
 *
 * Purpose: --make-admin-cert issues <pki>/admin-NAME.crt/.key (0600)
 * with the admin role, signed by <pki>/ca.key (run it where the CA key
 * is, then hand the two files to the operator).  --admin dials tracker
 * <id> presenting that certificate (checking, like every tracker link,
 * that the answering end is tracker <id> of the CA) and sends ADMIN_LIST
 * requests: `users`, `groups`, `sessions` or `files GROUP`.  It asks for
 * pages of at most TS_TRK_ADMIN_PAGE_MAX_N until --limit entries (default
 * TS_TRK_ADMIN_PAGE_N) are printed or the listing ends, starting after
 * --cursor; when more remain it says which cursor continues.  Output:
 * "name  detail" lines (escaped: the names are users' input), or with
 * --json one object {"kind", "items": [{"name", "detail"}], "next"}
 * (jansson).
 *
 * Exit codes: 0 listed or done, 1 unreachable or refused (the tracker's
 * message printed), 2 bad usage.
 *
 * Locking: none (a short-lived command process).
 * Crash behaviour: nothing kept.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ts_config.h"
#include "ts_crypto.h"
#include "ts_esc.h"
#include "ts_pki.h"
#include "ts_tls.h"
#include "ts_trackers.h"
#include "trk_admin.h"

static const char *const adm_kinds[] = {
    "", "users", "groups", "sessions", "files"
};
static const char *const adm_acts[] = {
    "", "disable-user", "enable-user", "remove-file"
};

typedef struct {
    json_t  *items;                 /* --json: the array */
    int      json;
    uint32_t printed;
    char     next[TS_TRK_ADMIN_CURSOR_MAX_B + 1];
} adm_out_t;


int
trk_admin_make_cert(const char *pki_dir, const char *name)
{
    char err[512];

    if (!ts_valid_id(name) || strlen(name) > 32) {
        fprintf(stderr, "tracker: bad admin name '%s' (letters, digits, "
                "'_', '-', '.'; at most 32)\n", name);
        return 2;
    }
    if (ts_pki_make_admin(pki_dir, name, err, sizeof(err)) != 0) {
        fprintf(stderr, "tracker: %s\n", err);
        return 1;
    }
    printf("created %s/admin-%s.crt and .key (mode 0600): give both to the "
           "operator; `tracker --admin %s` uses them\n", pki_dir, name,
           name);
    return 0;
}


/* The command words: kind and group.  0, or 2 after printing why. */
static int
adm_command(char **args, int nargs, int *kind, const char **group)
{
    int i;

    *group = "";
    *kind = 0;
    for (i = 1; nargs > 0 && i <= TS_ADMIN_FILES; i++) {
        if (strcmp(args[0], adm_kinds[i]) == 0) {
            *kind = i;
        }
    }
    if (*kind == 0) {
        fprintf(stderr, "tracker: unknown admin command '%.40s' (users, "
                "groups, sessions, files GROUP, disable-user USER, "
                "enable-user USER, remove-file GROUP FILE)\n",
                nargs > 0 ? args[0] : "");
        return 2;
    }
    if (nargs != (*kind == TS_ADMIN_FILES ? 2 : 1)) {
        fprintf(stderr, "tracker: usage: ... %s%s\n", adm_kinds[*kind],
                *kind == TS_ADMIN_FILES ? " GROUP" : "");
        return 2;
    }
    if (*kind == TS_ADMIN_FILES) {
        *group = args[1];
        if (!ts_valid_id(*group)) {
            fprintf(stderr, "tracker: bad group id '%.40s'\n", *group);
            return 2;
        }
    }
    return 0;
}


/* Sends request type with body b (freed) and reads its reply: 0 with
 * *frame (malloc'd, the caller frees) and r at the reply's body, or 1
 * after printing why (no answer, or refused: the tracker's message). */
static int
adm_rpc(ts_conn_t *c, uint8_t type, ts_wbuf_t *b, uint8_t **frame,
        ts_rbuf_t *r)
{
    ts_frame_hdr_t  h;
    ts_status_t     st;
    uint64_t        reqid = ts_random_u64();
    char            msg[512], esc[TS_ESC_MAX_B(512)];
    int             rc;

    *frame = NULL;
    rc = b->err ? -1 : ts_conn_send_frame(c, type, 0, reqid, b->data,
                                          (uint32_t) b->len,
                                          TS_SYNC_RPC_TIMEOUT_MS);
    ts_wbuf_free(b);
    if (rc != 0 || ts_conn_recv_frame(c, &h, frame, TS_FRAME_MAX_B,
                                      TS_SYNC_RPC_TIMEOUT_MS) != 0
        || h.type != TS_MSG_REPLY || h.reqid != reqid)
    {
        fprintf(stderr, "tracker: no answer to the admin request (link "
                "closed or timed out)\n");
        free(*frame);
        *frame = NULL;
        return 1;
    }
    ts_rbuf_init(r, *frame, h.len);
    if (ts_reply_parse(r, &st, msg, sizeof(msg)) != 0 || st != TS_OK) {
        (void) ts_esc(esc, sizeof(esc), msg, strnlen(msg, sizeof(msg)), 0);
        fprintf(stderr, "tracker: refused: %s\n", esc);
        free(*frame);
        *frame = NULL;
        return 1;
    }
    return 0;
}


/* One page: prints or collects its entries.  0 (out->next set, "" at the
 * end), or 1 after printing why. */
static int
adm_page(ts_conn_t *c, int kind, const char *group, const char *cursor,
         uint32_t limit, adm_out_t *out)
{
    ts_wbuf_t       b;
    ts_rbuf_t       r;
    uint8_t        *frame;
    char            name[TS_TRK_ADMIN_CURSOR_MAX_B + 1], detail[512],
                    esc[TS_ESC_MAX_B(512)];
    uint32_t        n, i;
    int             rc;

    ts_wbuf_init(&b);
    ts_put_u8(&b, (uint8_t) kind);
    ts_put_str(&b, group);
    ts_put_str(&b, cursor);
    ts_put_u16(&b, (uint16_t) limit);
    if (adm_rpc(c, TS_MSG_ADMIN_LIST, &b, &frame, &r) != 0) {
        return 1;
    }
    n = ts_get_u32(&r);
    for (i = 0; i < n && r.err == 0; i++) {
        if (ts_get_str(&r, name, sizeof(name)) != 0
            || ts_get_str(&r, detail, sizeof(detail)) != 0)
        {
            break;
        }
        if (out->json && kind == TS_ADMIN_USERS) {
            json_array_append_new(out->items,
                                  json_pack("{s:s, s:s, s:b}", "name", name,
                                            "detail", detail, "disabled",
                                            strstr(detail, "disabled=yes")
                                            != NULL));
        } else if (out->json) {
            json_array_append_new(out->items,
                                  json_pack("{s:s, s:s}", "name", name,
                                            "detail", detail));
        } else {
            (void) ts_esc(esc, sizeof(esc), name, strlen(name), 0);
            printf("%s", esc);
            (void) ts_esc(esc, sizeof(esc), detail, strlen(detail), 0);
            printf("  %s\n", esc);
        }
        out->printed++;
    }
    rc = ts_get_str(&r, out->next, sizeof(out->next));
    free(frame);
    if (rc != 0 || i != n || ts_rbuf_end(&r) != 0) {
        fprintf(stderr, "tracker: malformed ADMIN_LIST reply\n");
        return 1;
    }
    return 0;
}


/* Dials tracker id with the admin certificate: the connection, or NULL
 * after printing why. */
static ts_conn_t *
adm_dial(const ts_trackers_t *t, int id, const char *ca, const char *crt,
         const char *key, ts_tls_t **tls)
{
    ts_conn_t *c;
    char       err[512];
    int        fd;

    *tls = ts_tls_ctx_new(TS_TLS_TRACKER_CLIENT, crt, key, ca, err,
                          sizeof(err));
    if (*tls == NULL) {
        fprintf(stderr, "tracker: cannot use the admin certificate %s / %s "
                "with the CA %s: %s\n", crt, key, ca, err);
        return NULL;
    }
    fd = ts_net_connect(t->t[id - 1].ip, t->t[id - 1].port,
                        TS_TRK_ADMIN_CONNECT_MS);
    if (fd < 0) {
        fprintf(stderr, "tracker: cannot reach tracker %d at %s:%u\n", id,
                t->t[id - 1].ip, (unsigned) t->t[id - 1].port);
        return NULL;
    }
    c = ts_conn_new_tls(fd, *tls, id, NULL);
    if (c == NULL || ts_conn_handshake(c, TS_TLS_HANDSHAKE_MS) != 0) {
        fprintf(stderr, "tracker: TLS with tracker %d failed: %s\n", id,
                ts_tls_last_error()[0] ? ts_tls_last_error()
                                       : strerror(errno));
        ts_conn_free(c);
        return NULL;
    }
    return c;
}


/* The action words: 0 (*act set, 0 when COMMAND is no action), or 2
 * after printing why. */
static int
adm_action(char **args, int nargs, int *act)
{
    int i, want;

    *act = 0;
    for (i = 1; nargs > 0 && i <= TS_ADMIN_ACT_REMOVE_FILE; i++) {
        if (strcmp(args[0], adm_acts[i]) == 0) {
            *act = i;
        }
    }
    if (*act == 0) {
        return 0;
    }
    want = *act == TS_ADMIN_ACT_REMOVE_FILE ? 3 : 2;
    if (nargs != want) {
        fprintf(stderr, "tracker: usage: ... %s %s\n", adm_acts[*act],
                want == 3 ? "GROUP FILE" : "USER");
        return 2;
    }
    if (!ts_valid_id(args[1])) {
        fprintf(stderr, "tracker: bad %s id '%.40s' (%s)\n",
                want == 3 ? "group" : "user", args[1], TS_ID_RULE);
        return 2;
    }
    if (want == 3 && !ts_valid_filename(args[2])) {
        fprintf(stderr, "tracker: bad file name (1..255 bytes, no '/', no "
                "control characters, not . or ..)\n");
        return 2;
    }
    return 0;
}


/* One ADMIN_ACT on c: 0 done (printed), or 1 after printing why. */
static int
adm_act(ts_conn_t *c, int act, const char *x, const char *y, int json)
{
    ts_wbuf_t       b;
    ts_rbuf_t       r;
    uint8_t        *frame;
    char            msg[512], esc[TS_ESC_MAX_B(512)];
    json_t         *doc;
    int             rc;

    ts_wbuf_init(&b);
    ts_put_u8(&b, (uint8_t) act);
    ts_put_str(&b, x);
    ts_put_str(&b, y);
    if (adm_rpc(c, TS_MSG_ADMIN_ACT, &b, &frame, &r) != 0) {
        return 1;
    }
    rc = ts_get_str(&r, msg, sizeof(msg)) != 0 || ts_rbuf_end(&r) != 0;
    free(frame);
    if (rc) {
        fprintf(stderr, "tracker: malformed ADMIN_ACT reply\n");
        return 1;
    }
    if (json) {
        doc = json_pack("{s:s, s:s}", "action", adm_acts[act], "done", msg);
        rc = doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(1)) != 0;
        printf("\n");
        json_decref(doc);
        return rc;
    }
    (void) ts_esc(esc, sizeof(esc), msg, strlen(msg), 0);
    printf("%s\n", esc);
    return 0;
}


int
trk_admin_cmd(const trk_admin_req_t *a)
{
    ts_trackers_t  t;
    ts_tls_t      *tls = NULL;
    ts_conn_t     *c;
    adm_out_t      out;
    const char    *group = "";
    char           err[512], crt[4200], key[4200], cursor[sizeof(out.next)];
    int            kind = 0, rc, act;
    json_t        *doc;

    if (adm_action(a->args, a->nargs, &act) != 0
        || (act == 0 && adm_command(a->args, a->nargs, &kind, &group) != 0))
    {
        return 2;
    }
    if (strlen(a->cursor) > TS_TRK_ADMIN_CURSOR_MAX_B) {
        fprintf(stderr, "tracker: --cursor too long (at most %d bytes)\n",
                TS_TRK_ADMIN_CURSOR_MAX_B);
        return 2;
    }
    if (ts_trackers_load(a->info_path, &t, err, sizeof(err)) != 0
        || a->id < 1 || a->id > t.n)
    {
        fprintf(stderr, "tracker: %s\n", a->id < 1 || a->id > t.n
                ? "no such tracker id in tracker_info.txt" : err);
        return 2;
    }
    snprintf(crt, sizeof(crt), "%s/admin-%s.crt", a->pki_dir, a->name);
    snprintf(key, sizeof(key), "%s/admin-%s.key", a->pki_dir, a->name);
    c = adm_dial(&t, a->id, a->ca_path, crt, key, &tls);
    if (c == NULL) {
        ts_tls_ctx_free(tls);
        return 1;
    }
    if (act != 0) {
        rc = adm_act(c, act, a->args[1], a->nargs > 2 ? a->args[2] : "",
                     a->json);
        ts_conn_free(c);
        ts_tls_ctx_free(tls);
        return rc;
    }
    memset(&out, 0, sizeof(out));
    out.json = a->json;
    out.items = a->json ? json_array() : NULL;
    snprintf(cursor, sizeof(cursor), "%s", a->cursor);
    do {
        uint32_t want = a->limit - out.printed;

        want = want > TS_TRK_ADMIN_PAGE_MAX_N ? TS_TRK_ADMIN_PAGE_MAX_N
                                              : want;
        rc = adm_page(c, kind, group, cursor, want, &out);
        memcpy(cursor, out.next, sizeof(cursor));
    } while (rc == 0 && out.next[0] != '\0' && out.printed < a->limit);
    if (rc == 0 && a->json) {
        doc = json_pack("{s:s, s:o, s:s?}", "kind", adm_kinds[kind],
                        "items", out.items,
                        "next", out.next[0] ? out.next : NULL);
        out.items = NULL;
        if (doc == NULL || json_dumpf(doc, stdout, JSON_INDENT(1)) != 0) {
            rc = 1;
        }
        printf("\n");
        json_decref(doc);
    } else if (rc == 0 && out.next[0] != '\0') {
        fprintf(stderr, "(more: --cursor '%s')\n", out.next);
    }
    json_decref(out.items);
    ts_conn_free(c);
    ts_tls_ctx_free(tls);
    return rc;
}
