/*
 * node_shm.c -- the client node's segment: table specs, the segment name,
 * typed accessors into the tables, and the seqlock readers.
 *
 * Purpose: one place that knows where each node table lives (node_shm.h
 * holds the layout contract).  Accessors only add offsets; they never
 * allocate or lock.
 *
 * Locking: none here beyond the seqlock protocol of node_shm.h: the
 * readers below copy an entry between two loads of its seq and retry
 * while the CLI (the single writer) is mid-write (seq odd) or moved on.
 *
 * Crash behaviour: the segment is a cache of node.tdb and the disk; a
 * reader that dies mid-copy leaves nothing behind.  A writer that dies
 * mid-write leaves seq odd: readers give up after a bounded number of
 * tries and treat the entry as absent (the CLI's death ends the node
 * anyway, PR_SET_PDEATHSIG).
 */
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "node_shm.h"
#include "ts_shm_name.h"

const ts_shm_spec_t node_shm_specs[] = {
    { NODE_T_SLOTS,    sizeof(ts_slot_sh_t),    TS_SUP_WORKERS_MAX_N, NULL },
    { NODE_T_STATS,    sizeof(node_stats_sh_t), 1,                    NULL },
    { NODE_T_SHARES,   sizeof(node_share_sh_t), TS_NODE_SHARES_N,     NULL },
    { NODE_T_DLS,      sizeof(node_dl_sh_t),    TS_NODE_DOWNLOADS_N,  NULL },
    { NODE_T_DLDATA,   (uint32_t) NODE_DLDATA_B, TS_NODE_DOWNLOADS_N, NULL },
    { NODE_T_INFLIGHT, sizeof(node_inflight_sh_t), TS_SUP_WORKERS_MAX_N,
      NULL },
    { NODE_T_FHASH,    sizeof(node_fhash_sh_t), TS_NODE_DOWNLOADS_N,  NULL },
    { NODE_T_RATE,     sizeof(node_rate_sh_t),  1,                    NULL },
    { NODE_T_PEERS,    sizeof(node_peer_sh_t),  TS_NODE_PEER_STATS_N, NULL },
    { NODE_T_SENT,     sizeof(node_sent_sh_t),  1,                    NULL },
};

const int node_shm_nspecs = (int) (sizeof(node_shm_specs)
                                   / sizeof(node_shm_specs[0]));

_Static_assert(NODE_DLDATA_B < UINT32_MAX, "per-download arrays too big");
_Static_assert(NODE_OFF_DONE % 8 == 0, "bitmaps must be 8-byte aligned");


void
node_shm_name(char *out, size_t outsz, uint16_t port)
{
    snprintf(out, outsz, "/tessera-node-%u", (unsigned) port);
}


/*
 * The segment of the node whose state directory holds cert_path (the
 * node's identity lives at <state>/node.crt): "/tessera-node-<hash of
 * the state dir's real path>" (shm/ts_shm_name.c says why: a port or an
 * address is not unique on a machine with network namespaces, a locked
 * state dir is).  A node without a resolvable state dir (no certificate
 * path) falls back to the port's name.
 */
void
node_shm_name_state(char *out, size_t outsz, const char *cert_path,
                    uint16_t port)
{
    char         dir[4096];
    const char  *slash = cert_path ? strrchr(cert_path, '/') : NULL;
    size_t       len;

    if (cert_path == NULL || cert_path[0] == '\0') {
        node_shm_name(out, outsz, port);
        return;
    }
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else {
        len = (size_t) (slash - cert_path);
        if (len >= sizeof(dir)) {
            node_shm_name(out, outsz, port);
            return;
        }
        memcpy(dir, cert_path, len);
        dir[len] = '\0';
        if (len == 0) {
            snprintf(dir, sizeof(dir), "/");
        }
    }
    if (ts_shm_name_dir(out, outsz, "tessera-node", dir) != 0) {
        node_shm_name(out, outsz, port);
    }
}


static void *
node_table(const ts_shm_t *s, uint32_t id)
{
    return ts_shm_table(s, id, NULL, NULL);
}


node_stats_sh_t *
node_stats(const ts_shm_t *s)
{
    return node_table(s, NODE_T_STATS);
}


ts_slot_sh_t *
node_slots(const ts_shm_t *s)
{
    return node_table(s, NODE_T_SLOTS);
}


node_share_sh_t *
node_shares(const ts_shm_t *s)
{
    return node_table(s, NODE_T_SHARES);
}


node_dl_sh_t *
node_dls(const ts_shm_t *s)
{
    return node_table(s, NODE_T_DLS);
}


static uint8_t *
node_dldata(const ts_shm_t *s, int i)
{
    uint8_t *base = node_table(s, NODE_T_DLDATA);

    if (base == NULL || i < 0 || i >= TS_NODE_DOWNLOADS_N) {
        return NULL;
    }
    return base + (size_t) i * NODE_DLDATA_B;
}


uint8_t *
node_dl_hashes(const ts_shm_t *s, int i)
{
    uint8_t *d = node_dldata(s, i);

    return d ? d + NODE_OFF_HASHES : NULL;
}


_Atomic uint64_t *
node_dl_done(const ts_shm_t *s, int i)
{
    uint8_t *d = node_dldata(s, i);

    return d ? (_Atomic uint64_t *) (void *) (d + NODE_OFF_DONE) : NULL;
}


_Atomic uint64_t *
node_dl_maybe(const ts_shm_t *s, int i)
{
    uint8_t *d = node_dldata(s, i);

    return d ? (_Atomic uint64_t *) (void *) (d + NODE_OFF_MAYBE) : NULL;
}


_Atomic uint64_t *
node_dl_claims(const ts_shm_t *s, int i)
{
    uint8_t *d = node_dldata(s, i);

    return d ? (_Atomic uint64_t *) (void *) (d + NODE_OFF_CLAIMS) : NULL;
}


_Atomic uint64_t *
node_dl_map(const ts_shm_t *s, int i, int src)
{
    uint8_t *d = node_dldata(s, i);

    if (d == NULL || src < 0 || src >= TS_NODE_SOURCES_N) {
        return NULL;
    }
    return (_Atomic uint64_t *) (void *) (d + NODE_OFF_MAPS
               + 8ull * NODE_BITMAP_WORDS * (uint64_t) src);
}


_Atomic uint32_t *
node_slot_inflight(const ts_shm_t *s, int slot, int i)
{
    node_inflight_sh_t *t = node_table(s, NODE_T_INFLIGHT);

    if (t == NULL || slot < 0 || slot >= TS_SUP_WORKERS_MAX_N
        || i < 0 || i >= TS_NODE_DOWNLOADS_N)
    {
        return NULL;
    }
    return t[slot].n[i];
}


_Atomic uint8_t *
node_dl_srcof(const ts_shm_t *s, int i)
{
    uint8_t *d = node_dldata(s, i);

    return d ? (_Atomic uint8_t *) (void *) (d + NODE_OFF_SRCOF) : NULL;
}


node_peer_sh_t *
node_peers(const ts_shm_t *s)
{
    return node_table(s, NODE_T_PEERS);
}


/* 1 if entry e (USED) is the key (dir, addr, fp). */
static int
node_peer_is(const node_peer_sh_t *e, int dir, const char *addr,
             const uint8_t *fp)
{
    static const uint8_t  zero[TS_FP_B];

    return (int) e->dir == dir && strcmp(e->addr, addr) == 0
           && memcmp(e->fp, fp != NULL ? fp : zero, TS_FP_B) == 0;
}


void
node_peer_count(const ts_shm_t *s, int dir, const char *addr,
                const uint8_t *fp, uint32_t chunks, uint64_t bytes)
{
    node_peer_sh_t *t = node_peers(s), *e = NULL;
    uint32_t        st, exp;
    int             i;

    if (t == NULL || (dir != NODE_DIR_UP && dir != NODE_DIR_DOWN)) {
        return;
    }
    /* entries 0 and 1 are "other" (up, down); keys start at 2 */
    for (i = 2; i < TS_NODE_PEER_STATS_N && e == NULL; i++) {
        st = atomic_load_explicit(&t[i].state, memory_order_acquire);
        if (st == NODE_PEER_USED && node_peer_is(&t[i], dir, addr, fp)) {
            e = &t[i];
        } else if (st == NODE_PEER_FREE) {
            exp = NODE_PEER_FREE;
            if (!atomic_compare_exchange_strong(&t[i].state, &exp,
                                                NODE_PEER_BUSY))
            {
                i--;                /* taken meanwhile: look at it again */
                continue;
            }
            t[i].dir = (uint32_t) dir;
            snprintf(t[i].addr, sizeof(t[i].addr), "%s", addr);
            memset(t[i].fp, 0, sizeof(t[i].fp));
            if (fp != NULL) {
                memcpy(t[i].fp, fp, TS_FP_B);
            }
            atomic_store_explicit(&t[i].state, NODE_PEER_USED,
                                  memory_order_release);
            e = &t[i];
        }
    }
    if (e == NULL) {
        e = &t[dir];
    }
    atomic_fetch_add_explicit(&e->chunks, chunks, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->bytes, bytes, memory_order_relaxed);
}


node_sent_sh_t *
node_sent(const ts_shm_t *s)
{
    return node_table(s, NODE_T_SENT);
}


node_fhash_sh_t *
node_dl_fhash(const ts_shm_t *s, int i)
{
    node_fhash_sh_t *t = node_table(s, NODE_T_FHASH);

    if (t == NULL || i < 0 || i >= TS_NODE_DOWNLOADS_N) {
        return NULL;
    }
    return &t[i];
}


/*
 * Seqlock read: copy `size` bytes of an entry whose seq word is `seq`.
 * The copy may race with the writer; it is only kept when seq was even
 * and unchanged around it (the fences order the copy between the loads).
 */
static int
node_seq_copy(_Atomic uint32_t *seq, void *dst, const void *src, size_t size)
{
    uint32_t  s1, s2;
    int       tries;

    for (tries = 0; tries < TS_NODE_SEQ_TRIES_N; tries++) {
        s1 = atomic_load_explicit(seq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        memcpy(dst, src, size);
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(seq, memory_order_relaxed);
        if (s1 == s2) {
            return 0;
        }
    }
    return -1;
}


int
node_share_snapshot(const ts_shm_t *s, int idx, node_share_sh_t *out)
{
    node_share_sh_t *sh = node_shares(s);

    if (sh == NULL || idx < 0 || idx >= TS_NODE_SHARES_N) {
        return -1;
    }
    sh += idx;
    if (atomic_load_explicit(&sh->state, memory_order_acquire)
        == NODE_SHARE_FREE)
    {
        return -1;
    }
    if (node_seq_copy(&sh->seq, out, sh, sizeof(*out)) != 0) {
        return -1;
    }
    /* strings from shm are never trusted to be terminated */
    out->group[sizeof(out->group) - 1] = '\0';
    out->name[sizeof(out->name) - 1] = '\0';
    out->path[sizeof(out->path) - 1] = '\0';
    return atomic_load_explicit(&out->state, memory_order_relaxed)
           == NODE_SHARE_FREE ? -1 : 0;
}


int
node_dl_snapshot(const ts_shm_t *s, int idx, node_dl_sh_t *out)
{
    node_dl_sh_t *d = node_dls(s);

    if (d == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N) {
        return -1;
    }
    d += idx;
    if (atomic_load_explicit(&d->state, memory_order_acquire)
        == NODE_DL_FREE)
    {
        return -1;
    }
    if (node_seq_copy(&d->seq, out, d, sizeof(*out)) != 0) {
        return -1;
    }
    out->group[sizeof(out->group) - 1] = '\0';
    out->name[sizeof(out->name) - 1] = '\0';
    out->dest[sizeof(out->dest) - 1] = '\0';
    out->part[sizeof(out->part) - 1] = '\0';
    out->error[sizeof(out->error) - 1] = '\0';
    return atomic_load_explicit(&out->state, memory_order_relaxed)
           == NODE_DL_FREE ? -1 : 0;
}


int
node_dl_ticket(const ts_shm_t *s, int idx, uint8_t *buf, size_t bufsz,
    uint32_t *len, uint32_t *gen)
{
    node_dl_sh_t *d = node_dls(s);
    uint32_t      s1, s2, g1, g2, n;
    int           tries;

    if (d == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N
        || bufsz < TS_TICKET_MAX_B)
    {
        return -1;
    }
    d += idx;
    for (tries = 0; tries < TS_NODE_SEQ_TRIES_N; tries++) {
        g1 = atomic_load_explicit(&d->ticket_gen, memory_order_acquire);
        s1 = atomic_load_explicit(&d->seq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        n = d->ticket_len;
        if (n > TS_TICKET_MAX_B) {
            n = 0;              /* torn or garbage: retried below */
        }
        memcpy(buf, d->ticket, n);
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&d->seq, memory_order_relaxed);
        g2 = atomic_load_explicit(&d->ticket_gen, memory_order_relaxed);
        if (s1 == s2 && g1 == g2 && d->ticket_len == n) {
            *len = n;
            *gen = g1;
            return 0;
        }
    }
    return -1;
}
