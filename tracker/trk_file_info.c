/*
 * trk_file_info.c -- the read side of the file registry: LIST_FILES,
 * FILE_INFO (with its download ticket) and MY_SHARES.
 *
 * Purpose: FILE_INFO gives a sample of the live sources
 * (trk_srcpick.c: shuffled, bounded, capped per user, proven first, the
 * requester's dead ones last), each with its node fingerprint (from its
 * newest live session) and, after the membership check, a download
 * ticket signed with this tracker's key for the requesting link's
 * certificate (trk_fctx_t.signer / req_fp).  The handlers are in
 * trk_files.c.
 *
 * Locking: runs on a worker's event-loop thread; reads tdb and the shm
 * session cache (touch = 0).
 *
 * Crash behaviour: writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tdb.h>

#include "ts_clock.h"
#include "ts_log.h"
#include "trk_ops.h"
#include "trk_keys.h"
#include "trk_sources.h"
#include "trk_srcpick.h"
#include "trk_files.h"


ts_status_t
trk_do_list_files(const trk_fctx_t *c, const char *group, ts_wbuf_t *body,
                  char *msg, size_t msgsz)
{
    char        kb[TRK_KEY_B];
    trk_strlist_t   l;
    trk_srcs_t  s;
    trk_file_t  f;
    ts_wbuf_t   rows;
    ts_status_t st;
    uint32_t    i, k, n = 0, on;
    uint64_t    size;
    int         rc;

    st = trk_files_check_member(c, group, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_strlist_get(c->st, trk_key(kb, TRK_KEY_LIST, group, NULL),
                         TRK_REC_LIST,
                         TS_TRK_GROUP_FILES_MAX_N, &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    ts_wbuf_init(&rows);
    for (i = 0; i < l.n; i++) {
        if (trk_srcs_get(c->st, group, l.v[i], &s) != 0) {
            continue;       /* logged; one bad file does not hide all */
        }
        on = 0;
        size = s.size;
        if (trk_file_get(c->st, group, l.v[i], &f) == 0) {
            /* sources of a concurrent upload that lost do not count */
            if (f.size == s.size && f.nchunks == s.nchunks) {
                for (k = 0; k < s.n; k++) {
                    on += (uint32_t) trk_src_useful(c, &s.v[k], NULL);
                }
            }
            size = f.size;
            trk_file_free(&f);
        }
        ts_put_str(&rows, l.v[i]);
        ts_put_u64(&rows, size);
        ts_put_u32(&rows, on);
        n++;
        trk_srcs_free(&s);
    }
    trk_strlist_free(&l);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    return rc ? trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "listing too large")
              : TS_OK;
}


/* Appends blob ticket: the requester may fetch group/name until now +
 * TTL.  0, or -1 when signing failed. */
static int
put_ticket(const trk_fctx_t *c, const char *group, const char *name,
           ts_wbuf_t *body)
{
    ts_ticket_t  t;
    ts_wbuf_t    tb;
    int          rc;

    /* no certificate, no ticket (the bench build has no certificates and
     * gets tickets for the zero fingerprint) */
    if (c->signer == NULL || (c->req_fp == NULL && ts_tls_enabled())) {
        ts_put_blob(body, NULL, 0);
        return 0;
    }
    memset(&t, 0, sizeof(t));
    snprintf(t.group, sizeof(t.group), "%s", group);
    snprintf(t.name, sizeof(t.name), "%s", name);
    if (c->req_fp != NULL) {
        memcpy(t.fp, c->req_fp, TS_FP_B);
    }
    t.issued_ms = (uint64_t) ts_wall_ms();
    t.expires_ms = t.issued_ms + (uint64_t) (c->ticket_ttl_ms > 0
                                             ? c->ticket_ttl_ms
                                             : TS_TICKET_TTL_MS);
    ts_wbuf_init(&tb);
    rc = ts_ticket_sign(c->signer, &t, &tb);
    if (rc == 0 && !tb.err && tb.len <= TS_TICKET_MAX_B) {
        ts_put_blob(body, tb.data, (uint32_t) tb.len);
    } else {
        ts_err("cannot sign a download ticket for '%s' in '%s'", name,
               group);
        rc = -1;
    }
    ts_wbuf_free(&tb);
    return rc;
}


ts_status_t
trk_do_file_info(const trk_fctx_t *c, const char *group, const char *name,
                 ts_wbuf_t *body, char *msg, size_t msgsz)
{
    trk_file_t  f;
    trk_srcs_t  s;
    ts_wbuf_t   rows;
    ts_status_t st;
    uint32_t    n = 0;
    int         rc;

    st = trk_files_check_args(c, group, name, 0, msg, msgsz);
    if (st != TS_OK) {
        return st;
    }
    rc = trk_file_get(c->st, group, name, &f);
    if (rc == 1) {
        return trk_ops_fail(msg, msgsz, TS_ERR_NOTFOUND,
                            "no file '%s' in '%s'", name, group);
    }
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    rc = trk_srcs_get(c->st, group, name, &s);
    if (rc < 0) {
        trk_file_free(&f);
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    if (rc == 0 && (s.size != f.size || s.nchunks != f.nchunks)) {
        /* concurrent uploads of different contents: the sources are
         * those of the other (losing) file, none of this one */
        trk_srcs_free(&s);
        rc = 1;
    }
    ts_wbuf_init(&rows);
    /* a shuffled, per-user capped sample, proven sources first */
    if (rc == 0 && trk_srcpick_rows(c, group, name, &s, &rows, &n) != 0) {
        rows.err = 1;
    }
    if (rc == 0) {
        trk_srcs_free(&s);
    }
    ts_put_u64(body, f.size);
    ts_put_raw(body, f.sha1, 20);
    ts_put_u32(body, f.nchunks);
    ts_put_raw(body, f.hashes, (size_t) f.nchunks * 20);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    trk_file_free(&f);
    if (rc) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, "reply too large");
    }
    /* the membership check above is what gates the ticket */
    if (put_ticket(c, group, name, body) != 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                            "cannot sign a ticket");
    }
    return TS_OK;
}


ts_status_t
trk_do_my_shares(const trk_fctx_t *c, ts_wbuf_t *body, char *msg,
                 size_t msgsz)
{
    char        kb[TRK_KEY_B];
    char        g[TS_ID_MAX_B + 1];
    trk_strlist_t   l;
    trk_srcs_t  s;
    ts_wbuf_t   rows;
    const char *slash;
    uint32_t    i, n = 0;
    int         rc, k;

    if (c->node_addr == NULL || c->node_addr[0] == '\0') {
        ts_put_u32(body, 0);
        return TS_OK;
    }
    rc = trk_strlist_get(c->st, trk_key(kb, TRK_KEY_SHARES, c->user,
                         c->node_addr),
                         TRK_REC_SHARES, TS_TRK_NODE_SHARES_MAX_N, &l);
    if (rc < 0) {
        return trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL, TRK_DB_FAIL);
    }
    ts_wbuf_init(&rows);
    for (i = 0; i < l.n; i++) {
        slash = strchr(l.v[i], '/');        /* entry_valid() checked it */
        memcpy(g, l.v[i], (size_t) (slash - l.v[i]));
        g[slash - l.v[i]] = '\0';
        if (trk_srcs_get(c->st, g, slash + 1, &s) != 0) {
            continue;
        }
        k = trk_src_find(&s, c->user, c->node_addr);
        if (k >= 0) {
            ts_put_str(&rows, g);
            ts_put_str(&rows, slash + 1);
            ts_put_u8(&rows, s.v[k].complete);
            n++;
        }
        trk_srcs_free(&s);
    }
    trk_strlist_free(&l);
    ts_put_u32(body, n);
    ts_put_raw(body, rows.data, rows.len);
    rc = rows.err;
    ts_wbuf_free(&rows);
    return rc ? trk_ops_fail(msg, msgsz, TS_ERR_INTERNAL,
                             "reply too large") : TS_OK;
}

