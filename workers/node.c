/*
 * node.c -- a client node's data plane from the outside: node_start/stop,
 * the node supervisor (uploader x U, downloader x D on ts_sup), the
 * reclaim hook, and the CLI-side calls that publish shares and downloads.
 *
 * Purpose: the CLI creates the segment and binds the node's ip:port, then
 * forks a supervisor that inherits both (the mapping and the listening
 * socket) and preforks the workers; every worker reaches the segment
 * through ctx->arg (this node_t, as copied into the supervisor), and
 * the node's identity through its opts (node_start copies them: the
 * certificate and key every link presents, the CA tickets chain to).
 * The CLI also publishes each download's ticket (node_dl_set_ticket,
 * under the entry's seqlock, then a generation bump) and each source's
 * certificate fingerprint (node_dl_set_sources).
 *
 * Locking: the CLI is the single writer of share and download text
 * fields; it writes them inside the entry's seqlock (seq odd while
 * writing) before the state leaves FREE.  Everything else (states,
 * bits, claims, counters) changes only by C11 atomics, so the supervisor
 * never takes a lock and node_reclaim is lock-free.
 *
 * Crash behaviour: a worker that dies is reaped by the supervisor, whose
 * on_exit hook (node_reclaim) frees every claim of that (pid,
 * generation): chunk claims, map refresh claims, the whole-file hash
 * frontier claim (node_fhash_sh_t), finalize claims (the
 * download goes back from FINALIZING to ACTIVE), its per-source in-flight
 * counts and its uploader load counts; then the slot is freed and
 * ts_sup respawns the worker.  The supervisor dies with the CLI
 * (PR_SET_PDEATHSIG) and its workers die with it.  The segment is a
 * cache: the next node_start replaces it.  If reset_needed is set, the
 * supervisor stops every worker (each reclaimed), node_rebuild() resets
 * the workers' tables in place (the CLI keeps its mapping and its
 * publications from node.tdb) and the workers start again.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_shm.h"
#include "ts_claim.h"
#include "ts_sup.h"
#include "node_shm.h"
#include "node.h"


/* the supervisor's copy of the node; ctx->arg of every worker */
static node_t  node_sup_self;


/* ---- supervisor ------------------------------------------------------ */

static void
node_child_init(const ts_worker_ctx_t *ctx, void *arg)
{
    node_t        *n = arg;
    ts_slot_sh_t  *slots = node_slots(&n->shm);

    /* the child owns its slot before it can touch a counter or a claim,
     * so reclaim always finds what it did (the supervisor's on_spawn may
     * run after the child has started) */
    if (slots != NULL && ctx->slot >= 0 && ctx->slot < TS_SUP_WORKERS_MAX_N) {
        ts_slot_assign(&slots[ctx->slot],
                       ts_owner_make(getpid(), ctx->generation),
                       (uint32_t) ctx->role);
    }
}


static void
node_child_exit(int slot, pid_t pid, uint32_t gen, int role, int wstatus,
    void *arg)
{
    node_t        *n = arg;
    ts_owner_t     dead = ts_owner_make(pid, gen);
    ts_slot_sh_t  *slots = node_slots(&n->shm);

    node_reclaim(&n->shm, dead);
    if (slots != NULL && slot >= 0 && slot < TS_SUP_WORKERS_MAX_N) {
        ts_slot_free(&slots[slot], dead);
    }
}


static int
node_reset_needed(void *arg)
{
    return ts_shm_reset_needed(&((node_t *) arg)->shm);
}


/* Every worker is gone and reclaimed: their tables start afresh; shares
 * and downloads stay as the CLI published them from node.tdb. */
static int
node_rebuild(void *arg)
{
    static const uint32_t  ids[] = { NODE_T_SLOTS, NODE_T_INFLIGHT };

    return ts_shm_reinit(&((node_t *) arg)->shm, node_shm_specs,
                         node_shm_nspecs, ids, 2);
}


static int
node_supervise(node_t *n, const node_opts_t *o)
{
    ts_sup_role_t    roles[2];
    ts_sup_config_t  cfg;

    node_sup_self = *n;

    memset(roles, 0, sizeof(roles));
    roles[NODE_ROLE_UPLOADER].name = "uploader";
    roles[NODE_ROLE_UPLOADER].count = o->uploaders > 0 ? o->uploaders
                                                       : TS_NODE_UPLOADERS_N;
    roles[NODE_ROLE_UPLOADER].main = up_main;
    roles[NODE_ROLE_UPLOADER].arg = &node_sup_self;
    roles[NODE_ROLE_DOWNLOADER].name = "downloader";
    roles[NODE_ROLE_DOWNLOADER].count = o->downloaders > 0
                                        ? o->downloaders
                                        : TS_NODE_DOWNLOADERS_N;
    roles[NODE_ROLE_DOWNLOADER].main = dl_main;
    roles[NODE_ROLE_DOWNLOADER].arg = &node_sup_self;

    if (roles[0].count + roles[1].count > TS_SUP_WORKERS_MAX_N) {
        ts_err("too many node workers (%d + %d > %d)", roles[0].count,
               roles[1].count, TS_SUP_WORKERS_MAX_N);
        return 2;
    }

    memset(&cfg, 0, sizeof(cfg));
    cfg.name = "node-sup";
    cfg.roles = roles;
    cfg.nroles = 2;
    cfg.hook_arg = &node_sup_self;
    cfg.on_child_init = node_child_init;
    cfg.on_exit = node_child_exit;
    cfg.reset_needed = node_reset_needed;
    cfg.on_reset = node_rebuild;
    cfg.watch_fd = -1;

    return ts_sup_run(&cfg);
}


int
node_start(node_t *n, const node_opts_t *o)
{
    char                name[64];
    struct sockaddr_in  sin;
    socklen_t           sl = sizeof(sin);
    uint16_t            port = o->port;
    pid_t               parent, pid;
    int                 rc;

    memset(n, 0, sizeof(*n));
    n->listen_fd = -1;
    n->sup_pid = -1;
    n->opts = *o;

    /* bind first: a port in use must fail before any segment is touched */
    n->listen_fd = ts_net_listen(o->ip, o->port, TS_NODE_LISTEN_BACKLOG_N);
    if (n->listen_fd < 0) {
        ts_err("listen on %s:%u failed: %s", o->ip, (unsigned) o->port,
               strerror(errno));
        return -1;
    }
    /* port 0: the kernel chose one; the segment is named after it */
    if (port == 0
        && getsockname(n->listen_fd, (struct sockaddr *) &sin, &sl) == 0
        && sin.sin_family == AF_INET)
    {
        port = ntohs(sin.sin_port);
    }
    n->opts.port = port;

    node_shm_name(name, sizeof(name), port);
    if (ts_shm_create(&n->shm, name, NODE_SHM_LAYOUT, node_shm_specs,
                      node_shm_nspecs) != 0)
    {
        ts_err("node segment \"%s\" failed: %s", name, strerror(errno));
        close(n->listen_fd);
        n->listen_fd = -1;
        return -1;
    }

    parent = getpid();
    pid = fork();
    if (pid < 0) {
        ts_err("fork() failed: %s", strerror(errno));
        ts_shm_unlink(n->shm.name);
        ts_shm_detach(&n->shm);
        close(n->listen_fd);
        n->listen_fd = -1;
        return -1;
    }

    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(0);
        }
        ts_log_set_role("node-sup");
        ts_proc_set_name("node-sup");
        rc = node_supervise(n, o);
        _exit(rc);
    }

    n->sup_pid = pid;
    ts_info("node %s:%u started (supervisor %d, segment %s)", o->ip,
            (unsigned) port, (int) pid, name);
    return 0;
}


void
node_stop(node_t *n)
{
    int      st;
    int64_t  deadline;
    pid_t    rc;

    if (n->sup_pid > 0) {
        kill(n->sup_pid, SIGTERM);
        deadline = ts_now_ms() + TS_SUP_STOP_DEADLINE_MS + 1000;
        for (;;) {
            rc = waitpid(n->sup_pid, &st, WNOHANG);
            if (rc == n->sup_pid || (rc < 0 && errno != EINTR)) {
                break;
            }
            if (ts_now_ms() >= deadline) {
                ts_warn("node supervisor %d did not stop; killing it",
                        (int) n->sup_pid);
                kill(n->sup_pid, SIGKILL);
                while (waitpid(n->sup_pid, &st, 0) < 0 && errno == EINTR) {
                    /* retry */
                }
                break;
            }
            usleep(10 * 1000);
        }
        n->sup_pid = -1;
    }
    if (n->shm.base != NULL) {
        ts_shm_unlink(n->shm.name);
        ts_shm_detach(&n->shm);
    }
    if (n->listen_fd >= 0) {
        close(n->listen_fd);
        n->listen_fd = -1;
    }
}


int
node_alive(const node_t *n)
{
    int  st;

    if (n->sup_pid <= 0) {
        return 0;
    }
    return waitpid(n->sup_pid, &st, WNOHANG) == 0;
}


/* ---- reclaim (supervisor, lock-free) --------------------------------- */

static uint32_t
node_sub_sat(_Atomic uint32_t *v, uint32_t d)
{
    uint32_t  cur = atomic_load_explicit(v, memory_order_relaxed);

    /* never wrap below zero, whatever else raced */
    while (d > 0) {
        uint32_t nv = cur > d ? cur - d : 0;

        if (atomic_compare_exchange_weak_explicit(v, &cur, nv,
                memory_order_acq_rel, memory_order_relaxed))
        {
            return cur - nv;
        }
    }
    return 0;
}


void
node_reclaim(const ts_shm_t *shm, ts_owner_t dead)
{
    node_stats_sh_t  *st = node_stats(shm);
    ts_slot_sh_t     *slots = node_slots(shm);
    node_dl_sh_t     *dls = node_dls(shm);
    _Atomic uint32_t *slot_if;
    node_fhash_sh_t  *fh;
    size_t            freed = 0;
    uint64_t          exp;
    uint32_t          nchunks, state, k;
    int               i, j, slot = -1;

    if (dead == 0 || st == NULL || slots == NULL || dls == NULL) {
        return;
    }

    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load_explicit(&slots[i].owner, memory_order_acquire)
            == dead)
        {
            slot = i;
            break;
        }
    }

    /* an uploader's load counts */
    if (slot >= 0
        && atomic_load(&slots[slot].role) == NODE_ROLE_UPLOADER)
    {
        k = (uint32_t) atomic_exchange(&slots[slot].counter[0], 0);
        node_sub_sat(&st->queued, k);
        k = (uint32_t) atomic_exchange(&slots[slot].counter[1], 0);
        node_sub_sat(&st->active_uploads, k);
    }

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        node_dl_sh_t *d = &dls[i];

        /* in-flight GETs of the dead worker, per source */
        if (slot >= 0) {
            slot_if = node_slot_inflight(shm, slot, i);
            for (j = 0; slot_if != NULL && j < TS_NODE_SOURCES_N; j++) {
                k = atomic_exchange(&slot_if[j], 0);
                if (k > 0) {
                    node_sub_sat(&d->src[j].inflight, k);
                }
            }
        }

        state = atomic_load_explicit(&d->state, memory_order_acquire);
        if (state == NODE_DL_FREE) {
            continue;
        }

        /* map refresh claims */
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            exp = dead;
            if (atomic_compare_exchange_strong(&d->src[j].map_owner, &exp, 0))
            {
                freed++;
            }
        }

        /* finalize claim: the download goes back to ACTIVE first, so the
         * next finalizer starts over from the .part */
        if (atomic_load(&d->finalize_owner) == dead) {
            uint32_t fin = NODE_DL_FINALIZING;

            atomic_compare_exchange_strong(&d->state, &fin, NODE_DL_ACTIVE);
            exp = dead;
            if (atomic_compare_exchange_strong(&d->finalize_owner, &exp, 0)) {
                freed++;
                ts_warn("download %d: finalizer %d died; back to ACTIVE", i,
                        (int) ts_owner_pid(dead));
            }
        }

        /* frontier hasher claim: the valid copy is intact (node_shm.h) */
        fh = node_dl_fhash(shm, i);
        exp = dead;
        if (fh != NULL
            && atomic_compare_exchange_strong(&fh->owner, &exp, 0))
        {
            freed++;
        }

        /* chunk claims */
        nchunks = d->nchunks;
        if (nchunks > TS_FILE_MAX_CHUNKS_N) {
            nchunks = TS_FILE_MAX_CHUNKS_N;
        }
        freed += ts_claim_reclaim(node_dl_claims(shm, i), nchunks, dead);
    }

    if (freed > 0) {
        atomic_fetch_add(&st->reclaimed_claims, freed);
        ts_info("reclaimed %zu claims of dead worker %d", freed,
                (int) ts_owner_pid(dead));
    }
}


/* ---- CLI side: publication ------------------------------------------- */

static void
node_seq_begin(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_acq_rel);   /* odd */
    atomic_thread_fence(memory_order_release);
}


static void
node_seq_end(_Atomic uint32_t *seq)
{
    atomic_fetch_add_explicit(seq, 1, memory_order_release);   /* even */
}


static int
node_chunks_ok(uint64_t size, uint32_t nchunks)
{
    return size <= TS_FILE_MAX_B
           && (uint64_t) nchunks == (size + TS_CHUNK_B - 1) / TS_CHUNK_B;
}


static int
node_text_ok(const char *group, const char *name, const char *path)
{
    return group != NULL && name != NULL && path != NULL
           && strlen(group) <= TS_ID_MAX_B && strlen(name) <= TS_NAME_MAX_B
           && strlen(path) < PATH_MAX;
}


int
node_share_find(const ts_shm_t *s, const char *group, const char *name)
{
    node_share_sh_t  *sh = node_shares(s);
    int               i;
    uint32_t          state;

    if (sh == NULL) {
        return -1;
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        state = atomic_load_explicit(&sh[i].state, memory_order_acquire);
        if ((state == NODE_SHARE_READY || state == NODE_SHARE_STALE)
            && strcmp(sh[i].group, group) == 0
            && strcmp(sh[i].name, name) == 0)
        {
            return i;
        }
    }
    return -1;
}


int
node_share_add(ts_shm_t *s, const char *group, const char *name,
    const char *path, uint64_t size, int64_t mtime_ns, uint32_t nchunks)
{
    node_share_sh_t  *sh = node_shares(s), *e;
    int               i;

    if (sh == NULL || !node_text_ok(group, name, path)
        || !node_chunks_ok(size, nchunks))
    {
        return -1;
    }

    /* a re-upload of the same name replaces the old entry */
    i = node_share_find(s, group, name);
    if (i >= 0) {
        atomic_store_explicit(&sh[i].state, NODE_SHARE_STOPPED,
                              memory_order_release);
    } else {
        for (i = 0; i < TS_NODE_SHARES_N; i++) {
            if (atomic_load(&sh[i].state) == NODE_SHARE_FREE) {
                break;
            }
        }
        if (i == TS_NODE_SHARES_N) {
            ts_err("share table full (%d)", TS_NODE_SHARES_N);
            return -1;
        }
    }

    e = &sh[i];
    node_seq_begin(&e->seq);
    memset(e->group, 0, sizeof(e->group));
    memset(e->name, 0, sizeof(e->name));
    memset(e->path, 0, sizeof(e->path));
    snprintf(e->group, sizeof(e->group), "%s", group);
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->path, sizeof(e->path), "%s", path);
    e->size = size;
    e->mtime_ns = mtime_ns;
    e->nchunks = nchunks;
    atomic_store(&e->chunks_served, 0);
    atomic_store(&e->bytes_served, 0);
    node_seq_end(&e->seq);
    atomic_store_explicit(&e->state, NODE_SHARE_READY, memory_order_release);
    return i;
}


void
node_share_remove(ts_shm_t *s, int idx)
{
    node_share_sh_t  *sh = node_shares(s);

    if (sh == NULL || idx < 0 || idx >= TS_NODE_SHARES_N) {
        return;
    }
    /* STOPPED first: an uploader that looks now refuses; then the text
     * goes (seq moves, so cached lookups are invalid) and the entry frees */
    atomic_store_explicit(&sh[idx].state, NODE_SHARE_STOPPED,
                          memory_order_release);
    node_seq_begin(&sh[idx].seq);
    sh[idx].group[0] = '\0';
    sh[idx].name[0] = '\0';
    sh[idx].path[0] = '\0';
    node_seq_end(&sh[idx].seq);
    atomic_store_explicit(&sh[idx].state, NODE_SHARE_FREE,
                          memory_order_release);
}


static void
node_bits_load(_Atomic uint64_t *bm, const uint8_t *bytes, uint32_t nbits)
{
    uint32_t  w, b, nwords = (nbits + 63) / 64;
    uint64_t  v;

    for (w = 0; w < nwords; w++) {
        v = 0;
        if (bytes != NULL) {
            for (b = 0; b < 64 && w * 64 + b < nbits; b++) {
                uint32_t i = w * 64 + b;

                if ((bytes[i >> 3] >> (i & 7)) & 1) {
                    v |= 1ull << b;
                }
            }
        }
        atomic_store_explicit(&bm[w], v, memory_order_relaxed);
    }
}


int
node_dl_add(ts_shm_t *s, const char *group, const char *name,
    const char *dest, const char *part, const node_fid_t *part_id,
    uint64_t size, uint32_t nchunks,
    const uint8_t file_sha1[20], const uint8_t *hashes, const uint8_t *done,
    const uint8_t *maybe)
{
    node_dl_sh_t      *dls = node_dls(s), *d;
    _Atomic uint64_t  *bm;
    _Atomic uint32_t  *sif;
    node_fhash_sh_t   *fh;
    uint32_t           c, ndone = 0;
    uint64_t           bytes = 0;
    int                i, j, k;

    if (dls == NULL || !node_text_ok(group, name, dest) || part == NULL
        || strlen(part) >= PATH_MAX || !node_chunks_ok(size, nchunks)
        || file_sha1 == NULL || (nchunks > 0 && hashes == NULL))
    {
        return -1;
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (atomic_load(&dls[i].state) == NODE_DL_FREE) {
            break;
        }
    }
    if (i == TS_NODE_DOWNLOADS_N) {
        ts_err("download table full (%d)", TS_NODE_DOWNLOADS_N);
        return -1;
    }
    d = &dls[i];

    /* per-download arrays, only as far as this file's chunks go */
    if (nchunks > 0) {
        memcpy(node_dl_hashes(s, i), hashes, 20ull * nchunks);
    }
    node_bits_load(node_dl_done(s, i), done, nchunks);
    node_bits_load(node_dl_maybe(s, i), maybe, nchunks);
    bm = node_dl_claims(s, i);
    for (c = 0; c < nchunks; c++) {
        atomic_store_explicit(&bm[c], 0, memory_order_relaxed);
    }
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        node_bits_load(node_dl_map(s, i, j), NULL, nchunks);
    }
    for (k = 0; k < TS_SUP_WORKERS_MAX_N; k++) {
        sif = node_slot_inflight(s, k, i);
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            atomic_store(&sif[j], 0);
        }
    }

    bm = node_dl_done(s, i);
    for (c = 0; c < nchunks; c++) {
        if (node_bit_test(bm, c)) {
            ndone++;
            bytes += (c + 1 == nchunks) ? size - (uint64_t) c * TS_CHUNK_B
                                        : TS_CHUNK_B;
        }
    }

    node_seq_begin(&d->seq);
    memset(d->group, 0, sizeof(d->group));
    memset(d->name, 0, sizeof(d->name));
    memset(d->dest, 0, sizeof(d->dest));
    memset(d->part, 0, sizeof(d->part));
    snprintf(d->group, sizeof(d->group), "%s", group);
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->dest, sizeof(d->dest), "%s", dest);
    snprintf(d->part, sizeof(d->part), "%s", part);
    memset(&d->part_id, 0, sizeof(d->part_id));
    if (part_id != NULL) {
        d->part_id = *part_id;
    }
    d->size = size;
    d->nchunks = nchunks;
    memcpy(d->file_sha1, file_sha1, 20);
    d->error[0] = '\0';
    d->ticket_len = 0;
    atomic_store(&d->ticket_gen, 0);
    atomic_store(&d->denied, 0);
    atomic_store(&d->ticket_expires_ms, 0);
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        node_src_sh_t *sr = &d->src[j];

        atomic_store(&sr->state, NODE_SRC_FREE);
        memset(sr->addr, 0, sizeof(sr->addr));
        memset(sr->fp, 0, sizeof(sr->fp));
        atomic_store(&sr->complete, 0);
        atomic_store(&sr->load, 0);
        atomic_store(&sr->inflight, 0);
        atomic_store(&sr->failures, 0);
        atomic_store(&sr->errors, 0);
        atomic_store(&sr->rate_bps, 0);
        atomic_store(&sr->chunks, 0);
        atomic_store(&sr->map_ms, 0);
        atomic_store(&sr->retry_after_ms, 0);
        atomic_store(&sr->map_owner, 0);
    }
    node_seq_end(&d->seq);

    atomic_store(&d->waiting, 0);
    atomic_store(&d->finalize_owner, 0);
    atomic_store(&d->bytes_done, bytes);
    atomic_store(&d->chunks_done, ndone);
    atomic_store(&d->started_ms, ts_wall_ms());
    atomic_store(&d->finished_ms, 0);
    atomic_fetch_add(&d->id, 1);
    /* frontier hasher: generation 0 of the new id, both copies unused */
    fh = node_dl_fhash(s, i);
    if (fh != NULL) {
        fh->copy[0].id = fh->copy[1].id = 0;
        fh->copy[0].next = fh->copy[1].next = 0;
        atomic_store(&fh->owner, 0);
        atomic_store(&fh->pub, (uint64_t) atomic_load(&d->id) << 32);
    }
    atomic_store_explicit(&d->state, NODE_DL_ACTIVE, memory_order_release);
    return i;
}


static int
node_fp_eq(const node_src_sh_t *sr, const uint8_t *fps, int i)
{
    static const uint8_t  zero[TS_FP_B];

    return memcmp(sr->fp, fps != NULL ? fps + (size_t) i * TS_FP_B : zero,
                  TS_FP_B) == 0;
}


void
node_dl_set_sources(ts_shm_t *s, int idx, const char *const *addrs,
    const int *complete, const uint8_t *fps, int n)
{
    node_dl_sh_t      *d;
    node_src_sh_t     *sr;
    uint32_t           st;
    int                i, j, found;

    if (node_dls(s) == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N
        || n < 0)
    {
        return;
    }
    d = &node_dls(s)[idx];

    /* sources no longer listed (an address now listed with another
     * fingerprint is another node: the old entry goes) */
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        sr = &d->src[j];
        if (atomic_load(&sr->state) != NODE_SRC_LIVE) {
            continue;
        }
        found = 0;
        for (i = 0; i < n; i++) {
            if (addrs[i] != NULL && strcmp(addrs[i], sr->addr) == 0
                && node_fp_eq(sr, fps, i))
            {
                found = 1;
                break;
            }
        }
        if (!found) {
            atomic_store(&sr->state, NODE_SRC_GONE);
        }
    }

    for (i = 0; i < n; i++) {
        if (addrs[i] == NULL || addrs[i][0] == '\0'
            || strlen(addrs[i]) >= sizeof(sr->addr))
        {
            continue;
        }
        found = -1;
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            st = atomic_load(&d->src[j].state);
            if (st != NODE_SRC_FREE && strcmp(d->src[j].addr, addrs[i]) == 0
                && node_fp_eq(&d->src[j], fps, i))
            {
                found = j;
                break;
            }
        }
        if (found >= 0) {
            sr = &d->src[found];
            atomic_store(&sr->complete, complete ? (complete[i] != 0) : 0);
            st = NODE_SRC_GONE;
            /* a returning source is live again; a dropped one stays out */
            if (atomic_compare_exchange_strong(&sr->state, &st,
                                               NODE_SRC_LIVE))
            {
                atomic_store(&sr->map_ms, 0);
                atomic_store(&sr->errors, 0);
                atomic_store(&sr->retry_after_ms, 0);
            }
            continue;
        }

        /* a new source: a FREE entry, else a quiet GONE one */
        for (j = 0; j < TS_NODE_SOURCES_N; j++) {
            if (atomic_load(&d->src[j].state) == NODE_SRC_FREE) {
                break;
            }
        }
        if (j == TS_NODE_SOURCES_N) {
            for (j = 0; j < TS_NODE_SOURCES_N; j++) {
                sr = &d->src[j];
                if (atomic_load(&sr->state) == NODE_SRC_GONE
                    && atomic_load(&sr->inflight) == 0
                    && atomic_load(&sr->map_owner) == 0)
                {
                    atomic_store(&sr->state, NODE_SRC_FREE);
                    break;
                }
            }
            if (j == TS_NODE_SOURCES_N) {
                ts_warn("download %d: no room for source %s", idx, addrs[i]);
                continue;
            }
        }
        sr = &d->src[j];
        memset(sr->addr, 0, sizeof(sr->addr));
        snprintf(sr->addr, sizeof(sr->addr), "%s", addrs[i]);
        if (fps != NULL) {
            memcpy(sr->fp, fps + (size_t) i * TS_FP_B, TS_FP_B);
        } else {
            memset(sr->fp, 0, sizeof(sr->fp));
        }
        atomic_store(&sr->complete, complete ? (complete[i] != 0) : 0);
        atomic_store(&sr->load, 0);
        atomic_store(&sr->failures, 0);
        atomic_store(&sr->errors, 0);
        atomic_store(&sr->rate_bps, 0);
        atomic_store(&sr->chunks, 0);
        atomic_store(&sr->map_ms, 0);
        atomic_store(&sr->retry_after_ms, 0);
        node_bits_load(node_dl_map(s, idx, j), NULL, d->nchunks);
        atomic_store_explicit(&sr->state, NODE_SRC_LIVE,
                              memory_order_release);
    }
}


int
node_dl_set_ticket(ts_shm_t *s, int idx, const void *ticket, size_t len,
    int64_t expires_ms)
{
    node_dl_sh_t  *d;
    uint32_t       g;

    if (node_dls(s) == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N
        || len > TS_TICKET_MAX_B || (len > 0 && ticket == NULL))
    {
        return -1;
    }
    d = &node_dls(s)[idx];
    node_seq_begin(&d->seq);
    if (len > 0) {
        memcpy(d->ticket, ticket, len);
    }
    d->ticket_len = (uint32_t) len;
    node_seq_end(&d->seq);
    atomic_store(&d->ticket_expires_ms, expires_ms);
    atomic_store(&d->denied, 0);
    /* never 0 again once set: 0 means "no ticket yet" */
    g = atomic_fetch_add_explicit(&d->ticket_gen, 1, memory_order_acq_rel)
        + 1;
    if (g == 0) {
        atomic_fetch_add_explicit(&d->ticket_gen, 1, memory_order_acq_rel);
    }
    return 0;
}


void
node_fsync_dir_of(const char *path)
{
    char   dir[PATH_MAX], *slash;
    int    dfd;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (slash == NULL) {
        snprintf(dir, sizeof(dir), ".");
    } else if (slash == dir) {
        slash[1] = '\0';
    } else {
        *slash = '\0';
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void) fsync(dfd);
        close(dfd);
    }
}


int
node_fid_of(int fd, node_fid_t *id)
{
    struct statx sx;

    memset(id, 0, sizeof(*id));
    if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_BTIME, &sx) != 0) {
        return -1;
    }
    id->dev = ((uint64_t) sx.stx_dev_major << 32) | sx.stx_dev_minor;
    id->ino = sx.stx_ino;
    if (sx.stx_mask & STATX_BTIME) {
        id->btime_ns = (int64_t) sx.stx_btime.tv_sec * 1000000000
                       + sx.stx_btime.tv_nsec;
    }
    return 0;
}


int
node_fid_eq(const node_fid_t *a, const node_fid_t *b)
{
    return a->dev == b->dev && a->ino == b->ino
           && (a->btime_ns == 0 || b->btime_ns == 0
               || a->btime_ns == b->btime_ns);
}


int
node_open_part(const char *path, int flags, const node_fid_t *id)
{
    static const node_fid_t  zero;
    struct stat              sb;
    node_fid_t               have;
    int                      fd, e;

    /* O_NONBLOCK: a FIFO put at the name must not block the open */
    fd = open(path, (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_NOFOLLOW
                    | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        return -1;              /* ELOOP: a symlink took the name */
    }
    if (fstat(fd, &sb) != 0) {
        e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(sb.st_mode)
        || (id != NULL && memcmp(id, &zero, sizeof(zero)) != 0
            && (node_fid_of(fd, &have) != 0 || !node_fid_eq(&have, id))))
    {
        close(fd);
        errno = ESTALE;
        return -1;
    }
    (void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}


void
node_dl_remove(ts_shm_t *s, int idx)
{
    node_dl_sh_t  *dls = node_dls(s);

    if (dls == NULL || idx < 0 || idx >= TS_NODE_DOWNLOADS_N) {
        return;
    }
    /* the id moves first so a worker holding this index sees it changed */
    atomic_fetch_add(&dls[idx].id, 1);
    atomic_store_explicit(&dls[idx].state, NODE_DL_FREE,
                          memory_order_release);
}
