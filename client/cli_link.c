/*
 * cli_link.c -- the agent's side of the tracker session: each tick it
 * plans under the lock what the tracker must hear (HAVE_CHUNKS of
 * newly verified chunks, STOP_SHARE of what ended) or be asked
 * (FILE_INFO: fresh sources and a download ticket), sends it without the
 * lock on the agent's own cli_rpc_t (failover to the next tracker when
 * several are listed), and applies the answers by entry serial (an entry
 * that went away meanwhile is simply not found).
 *
 * Ticket renewal: each FILE_INFO reply carries a download ticket; it
 * replaces the one in shm when that has less than TS_TICKET_RENEW_MS
 * (or half its lifetime) left, and FILE_INFO comes early enough for
 * that.  A FILE_INFO refused with TS_ERR_PERM (the user left or was
 * removed from the group) fails the download: "not permitted: ...".
 * The login state it follows is the session's (cli_session.h, whose
 * heartbeat keeps it alive): no request goes out while logged out or
 * while the session belongs to another user than the loaded one.
 *
 * Locking: cli_link_tick takes and drops cli_agent.mu itself; the other
 * functions run with it held.
 * Crash behaviour: nothing persistent; what the tracker did not hear is
 * still flagged in the entries (and re-advertised at the next login).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_clock.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "node_shm.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_finfo.h"
#include "cli_down.h"
#include "cli_hold.h"
#include "cli_link.h"
#include "cli_srcdead.h"


/* tracker work collected under the lock, done without it */
typedef enum { CLI_W_HAVE, CLI_W_STOP, CLI_W_INFO } cli_wkind_t;

typedef struct {
    cli_wkind_t  kind;
    uint64_t     serial;            /* 0 for a stale share's STOP */
    char         group[TS_ID_MAX_B + 1];
    char         name[TS_NAME_MAX_B + 1];
    int          complete;
    uint8_t     *bitmap;            /* HAVE: malloc */
    uint32_t     bmlen;
    int          ok;
    ts_status_t  status;
    cli_finfo_t  fi;                /* INFO result */
    ts_wbuf_t    tail;              /* optional request tail: INFO's
                                       exclusions, HAVE's served-by */
} cli_work_t;

/* A tracker refused a request tail (an older release): 1 = send none
 * from now on (the lists still work, shuffled; only the hints go). */
static int cli_link_no_tail;


/* 1 if fp is this node's own identity */
static int
cli_link_fp_is_mine(const uint8_t fp[TS_FP_B])
{
    static const uint8_t  zero[TS_FP_B];

    return cli_agent.ctx != NULL
           && memcmp(cli_agent.ctx->node_fp, zero, TS_FP_B) != 0
           && memcmp(fp, cli_agent.ctx->node_fp, TS_FP_B) == 0;
}


void
cli_link_set_sources(ts_shm_t *shm, int idx, const cli_finfo_t *fi)
{
    const char    *addrs[TS_NODE_SOURCES_N] = { NULL };
    int            complete[TS_NODE_SOURCES_N] = { 0 };
    uint8_t        fps[TS_NODE_SOURCES_N * TS_FP_B] = { 0 };
    node_dl_sh_t  *d;
    int            i, j, n = 0;

    for (i = 0; i < fi->nsrc; i++) {
        /* never ourselves, whatever the tracker says */
        if ((cli_agent.ctx != NULL
             && strcmp(fi->src[i].addr, cli_agent.ctx->node_addr) == 0)
            || cli_link_fp_is_mine(fi->src[i].fp))
        {
            continue;
        }
        addrs[n] = fi->src[i].addr;
        complete[n] = fi->src[i].complete;
        memcpy(fps + (size_t) n * TS_FP_B, fi->src[i].fp, TS_FP_B);
        n++;
    }
    node_dl_set_sources(shm, idx, addrs, complete, fps, n);

    /*
     * A waiting download whose tracker still lists a complete source: the
     * downloaders fill a complete source's map once and clear bits that
     * the peer refused (e.g. while it restarted, before its user logged
     * in), so it could stay empty for good.  The tracker just vouched for
     * the source: map_ms = 0 makes the next downloader trust it again.
     * At worst one retry per TS_NODE_SRC_REFRESH_MS.
     */
    d = &node_dls(shm)[idx];
    if (atomic_load(&d->waiting)) {
        for (i = 0; i < n; i++) {
            for (j = 0; j < TS_NODE_SOURCES_N; j++) {
                if (complete[i] && atomic_load(&d->src[j].state)
                                   == NODE_SRC_LIVE
                    && atomic_load(&d->src[j].complete)
                    && strcmp(d->src[j].addr, addrs[i]) == 0
                    && memcmp(d->src[j].fp, fps + (size_t) i * TS_FP_B,
                              TS_FP_B) == 0)
                {
                    atomic_store(&d->src[j].map_ms, 0);
                }
            }
        }
    }
}


/*
 * Puts fi's ticket into download e's shm entry when e has none yet (or
 * force), or when the current one has less than its renewal margin left:
 * TS_TICKET_RENEW_MS, or half the ticket's lifetime if that is shorter
 * (a tracker with a short --ticket-ttl).  A ticket that is not for this
 * download is ignored (the tracker answered another question).
 */
void
cli_link_ticket_apply(ts_shm_t *shm, cli_dlent_t *e, const cli_finfo_t *fi,
                      int force)
{
    ts_ticket_t  t;
    int64_t      now = ts_wall_ms(), life, renew;

    if (fi->ticket_len == 0 || e->idx < 0) {
        return;
    }
    if (ts_ticket_parse(fi->ticket, fi->ticket_len, &t, NULL, NULL, NULL,
                        NULL, NULL) != 0
        || strcmp(t.group, e->rec.group) != 0
        || strcmp(t.name, e->rec.name) != 0)
    {
        ts_warn("agent: the tracker's ticket for %s/%s is malformed or for "
                "another file; ignored", e->rec.group, e->rec.name);
        return;
    }
    if (!force && e->ticket_exp_ms != 0
        && e->ticket_exp_ms - now > e->ticket_renew_ms)
    {
        return;
    }
    life = (int64_t) (t.expires_ms - t.issued_ms);
    renew = TS_TICKET_RENEW_MS;
    if (life > 0 && life / 2 < renew) {
        renew = life / 2;
    }
    if (node_dl_set_ticket(shm, e->idx, fi->ticket, fi->ticket_len,
                           (int64_t) t.expires_ms) == 0)
    {
        e->ticket_exp_ms = (int64_t) t.expires_ms;
        e->ticket_renew_ms = renew;
    }
}


/* When the next FILE_INFO is due (monotonic): every
 * TS_NODE_SRC_REFRESH_MS, sooner if the ticket needs renewing before. */
int64_t
cli_link_next_info_ms(const cli_dlent_t *e, int64_t now)
{
    int64_t  due = now + TS_NODE_SRC_REFRESH_MS, left;

    if (e->ticket_exp_ms != 0) {
        left = e->ticket_exp_ms - e->ticket_renew_ms - ts_wall_ms();
        if (left < TS_NODE_PERSIST_MS) {
            left = TS_NODE_PERSIST_MS;
        }
        if (now + left < due) {
            due = now + left;
        }
    }
    return due;
}


static int
cli_link_work_add(cli_work_t **w, int *n, int *cap, cli_wkind_t kind,
                  uint64_t serial, const char *group, const char *name)
{
    cli_work_t  *nw;

    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 16;

        nw = realloc(*w, (size_t) ncap * sizeof(*nw));
        if (nw == NULL) {
            return -1;
        }
        *w = nw;
        *cap = ncap;
    }
    nw = &(*w)[(*n)++];
    memset(nw, 0, sizeof(*nw));
    nw->kind = kind;
    nw->serial = serial;
    ts_wbuf_init(&nw->tail);
    snprintf(nw->group, sizeof(nw->group), "%s", group);
    snprintf(nw->name, sizeof(nw->name), "%s", name);
    return 0;
}


/* Under the lock: what the tracker must hear or be asked. */
static int
cli_link_plan(int64_t now, cli_work_t **w, int *cap)
{
    ts_shm_t     *shm = cli_agent_shm();
    node_dl_sh_t *d;
    cli_dlent_t  *e;
    cli_work_t   *x;
    int           i, n = 0, soon;
    size_t        nb;

    for (i = 0; i < cli_agent.nstops; i++) {
        cli_link_work_add(w, &n, cap, CLI_W_STOP, 0,
                          cli_agent.stops[i].group, cli_agent.stops[i].name);
    }
    for (i = 0; i < cli_agent.ndls; i++) {
        e = cli_agent.dls[i];
        nb = cli_bitmap_b(e->rec.nchunks);
        d = shm != NULL && e->idx >= 0 ? &node_dls(shm)[e->idx] : NULL;
        if (e->need_stop) {
            cli_link_work_add(w, &n, cap, CLI_W_STOP, e->serial,
                              e->rec.group, e->rec.name);
            continue;
        }
        if ((e->have_complete || e->have_dirty)
            && cli_link_work_add(w, &n, cap, CLI_W_HAVE, e->serial,
                                 e->rec.group, e->rec.name) == 0)
        {
            x = &(*w)[n - 1];
            x->complete = e->have_complete;
            x->bmlen = (uint32_t) nb;
            if (nb > 0) {
                x->bitmap = malloc(nb);
                if (x->bitmap == NULL) {
                    n--;
                } else if (e->have_complete) {
                    cli_down_bitmap_fill(x->bitmap, e->rec.nchunks);
                } else {
                    memcpy(x->bitmap, e->rec.done, nb);
                }
            }
            /* nothing verified yet: nothing to advertise */
            if (!e->have_complete && nb > 0 && x->bitmap != NULL
                && !cli_down_bitmap_any(x->bitmap, e->rec.nchunks))
            {
                free(x->bitmap);
                n--;
                e->have_dirty = 0;
            } else if (d != NULL && !cli_link_no_tail) {
                /* who served the chunks: the tracker's proven sources */
                cli_srcdead_put_served(&e->srcmem, d, &x->tail);
            }
        }
        if (e->rec.state != CLI_DL_ACTIVE || d == NULL || cli_agent.paused) {
            continue;
        }
        /* a source that just died, or nothing to fetch from: ask again
         * soon (TS_CLI_SRC_REASK_MS after the last ask), not in 2 s; so
         * does a young download, to learn of the leechers that started
         * with it as soon as they hold chunks to pass on */
        soon = cli_srcdead_scan(&e->srcmem, d, now)
               || atomic_load(&d->waiting)
               || ts_wall_ms() - atomic_load(&d->started_ms)
                  < TS_CLI_SRC_YOUNG_MS;
        if (now >= e->next_src_ms
            || (soon && now >= e->next_src_ms - TS_NODE_SRC_REFRESH_MS
                               + TS_CLI_SRC_REASK_MS))
        {
            e->next_src_ms = cli_link_next_info_ms(e, now);
            if (cli_link_work_add(w, &n, cap, CLI_W_INFO, e->serial,
                                  e->rec.group, e->rec.name) == 0
                && !cli_link_no_tail)
            {
                cli_srcdead_put_excl(e->srcmem, &(*w)[n - 1].tail, now);
            }
        }
    }
    return n;
}


/* Without the lock: one request. */
static void
cli_link_do(cli_work_t *x, const uint8_t tok[TS_TOKEN_B])
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      type;
    size_t       base;
    int          rc;

    ts_wbuf_init(&req);
    ts_put_raw(&req, tok, TS_TOKEN_B);
    ts_put_str(&req, x->group);
    ts_put_str(&req, x->name);
    switch (x->kind) {
    case CLI_W_HAVE:
        type = TS_MSG_HAVE_CHUNKS;
        ts_put_u8(&req, (uint8_t) x->complete);
        ts_put_blob(&req, x->bitmap, x->bmlen);
        break;
    case CLI_W_STOP:
        type = TS_MSG_STOP_SHARE;
        break;
    default:
        type = TS_MSG_FILE_INFO;
        break;
    }
    base = req.len;
    if (x->tail.len > 0 && !x->tail.err) {
        ts_put_raw(&req, x->tail.data, x->tail.len);
    }
    x->ok = 0;
    if (req.err || req.len > TS_FRAME_MAX_B) {
        ts_wbuf_free(&req);
        return;
    }
    for (;;) {
        rc = cli_rpc_call_ex(&cli_agent.rpc, type, req.data,
                             (uint32_t) req.len, &rep,
                             cli_agent.ctx->sess->trk.n > 1
                             ? TS_CLI_AGENT_TRIES_N : 1, TS_CLI_AGENT_RPC_MS);
        /* an older tracker takes the tail for a malformed body */
        if (rc != 0 || rep.status != TS_ERR_BADREQ || req.len == base
            || strstr(rep.msg, "malformed") == NULL)
        {
            break;
        }
        /* a tracker that does not know the tail: once more without */
        ts_warn("agent: the tracker refused a %s request tail (%s); sending "
                "none from now on", ts_msg_name(type), rep.msg);
        cli_link_no_tail = 1;
        cli_reply_free(&rep);
        req.len = base;
    }
    if (rc != 0) {
        ts_debug("agent: %s %s/%s: %s", ts_msg_name(type), x->group,
                 x->name, rep.msg);
        ts_wbuf_free(&req);
        cli_reply_free(&rep);
        return;
    }
    ts_wbuf_free(&req);
    x->ok = 1;
    x->status = rep.status;
    if (rep.status == TS_ERR_AUTH) {
        cli_session_lost(cli_agent.ctx->sess, tok);
    } else if (rep.status != TS_OK) {
        ts_debug("agent: %s %s/%s: %s", ts_msg_name(type), x->group,
                 x->name, rep.msg);
    } else if (type == TS_MSG_FILE_INFO) {
        if (cli_finfo_parse(&rep.body, &x->fi) != 0) {
            ts_warn("agent: malformed FILE_INFO reply for %s/%s", x->group,
                    x->name);
            x->status = TS_ERR_INTERNAL;
        }
    }
    cli_reply_free(&rep);
}


/* Under the lock: results back into the entries. */
static void
cli_link_apply(cli_work_t *x)
{
    ts_shm_t     *shm = cli_agent_shm();
    cli_dlent_t  *e;
    char          why[TS_NAME_MAX_B + TS_ID_MAX_B + 64];

    if (!x->ok) {
        return;
    }
    e = x->serial != 0 ? cli_down_by_serial(x->serial) : NULL;
    switch (x->kind) {
    case CLI_W_STOP:
        if (x->status == TS_OK || x->status == TS_ERR_NOTFOUND
            || x->status == TS_ERR_PERM)
        {
            if (x->serial == 0) {
                cli_hold_unqueue_stop(x->group, x->name);
            } else if (e != NULL) {
                e->need_stop = 0;
                e->advertised = 0;
            }
        }
        break;
    case CLI_W_HAVE:
        if (e == NULL) {
            break;
        }
        if (x->status == TS_OK) {
            e->advertised = 1;
            if (x->complete) {
                e->have_complete = 0;
            } else if (x->bmlen == 0
                       || memcmp(x->bitmap, e->rec.done, x->bmlen) == 0)
            {
                e->have_dirty = 0;
            }
        } else if (x->status != TS_ERR_AUTH && x->status != TS_ERR_BUSY
                   && x->status != TS_ERR_INTERNAL)
        {
            /* refused for good (left the group, file gone): stop asking */
            e->have_dirty = 0;
            e->have_complete = 0;
        }
        break;
    case CLI_W_INFO:
        if (e == NULL || e->rec.state != CLI_DL_ACTIVE || e->idx < 0
            || shm == NULL)
        {
            break;
        }
        if (x->status == TS_OK) {
            if (x->fi.size != e->rec.size
                || memcmp(x->fi.sha1, e->rec.sha1, 20) != 0)
            {
                cli_down_fail(e, shm, "the file changed on the tracker");
            } else {
                /* the ticket first: downloaders that see a new source
                 * have the ticket to show it.  One a peer refused (its
                 * clock runs ahead, say) is replaced at once, not only
                 * when it is due for renewal. */
                cli_link_ticket_apply(shm, e, &x->fi,
                                 atomic_load(&node_dls(shm)[e->idx].denied)
                                 != 0);
                /* the ones that never answered stay out a while */
                cli_srcdead_filter(e->srcmem, &x->fi, ts_now_ms());
                cli_link_set_sources(shm, e->idx, &x->fi);
                e->next_src_ms = cli_link_next_info_ms(e, ts_now_ms());
            }
        } else if (x->status == TS_ERR_NOTFOUND
                   || x->status == TS_ERR_PERM)
        {
            snprintf(why, sizeof(why), "%s is no longer shared in '%s'",
                     e->rec.name, e->rec.group);
            if (x->status == TS_ERR_PERM) {
                /* removed from the group (or left it): no new ticket,
                 * and the peers refuse the old one once it expires */
                snprintf(why, sizeof(why), "not permitted: not a member "
                         "of '%s' any more", e->rec.group);
            }
            cli_down_fail(e, shm, why);
        }
        break;
    }
}


void
cli_link_tick(void)
{
    cli_work_t  *w = NULL;
    uint8_t      tok[TS_TOKEN_B];
    char         user[TS_ID_MAX_B + 1];
    int64_t      now = ts_now_ms();
    int          n, cap = 0, i, online;

    user[0] = '\0';
    pthread_mutex_lock(&cli_agent.mu);
    if (cli_agent.user[0] == '\0') {
        pthread_mutex_unlock(&cli_agent.mu);
        return;
    }
    cli_hold_collect(now);
    cli_down_timeouts(now);
    cli_hold_stale();
    online = !cli_agent.paused
             && cli_session_get(cli_agent.ctx->sess, user, sizeof(user), tok)
             && strcmp(user, cli_agent.user) == 0;
    n = online ? cli_link_plan(now, &w, &cap) : 0;
    pthread_mutex_unlock(&cli_agent.mu);

    for (i = 0; i < n; i++) {
        pthread_mutex_lock(&cli_agent.mu);
        /* stopping: the rest waits for the next start (node.tdb has it) */
        if (cli_agent.stop) {
            w[i].ok = 0;
            pthread_mutex_unlock(&cli_agent.mu);
            continue;
        }
        pthread_mutex_unlock(&cli_agent.mu);
        cli_link_do(&w[i], tok);
    }

    pthread_mutex_lock(&cli_agent.mu);
    /* the same user still: results apply (a switch dropped the entries) */
    if (strcmp(user, cli_agent.user) == 0) {
        for (i = 0; i < n; i++) {
            cli_link_apply(&w[i]);
        }
    }
    pthread_mutex_unlock(&cli_agent.mu);

    for (i = 0; i < n; i++) {
        free(w[i].bitmap);
        ts_wbuf_free(&w[i].tail);
        cli_finfo_free(&w[i].fi);
    }
    free(w);
}
