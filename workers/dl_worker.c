/*
 * dl_worker.c -- the downloader worker of a client node (dl_main).
 *
 * Purpose: one epoll loop per worker process.  It keeps one persistent
 * connection per peer address (shared by every download from that peer;
 * connected without blocking: the socket waits in the epoll set for
 * EPOLLOUT until TS_NODE_CONNECT_MS, and is not used before it is up),
 * pipelines up to TS_NODE_PIPELINE_N PEER_GETs on each and at most
 * TS_NODE_WORKER_INFLIGHT_N in total, and for every ACTIVE download in
 * the node's segment: refreshes the sources' chunk maps (PEER_MAP),
 * re-verifies "maybe" chunks left on disk by a crash, picks the rarest
 * missing chunk that no one has claimed, sends it to the least-loaded
 * holder, verifies every received chunk's SHA1 before pwrite() into the
 * .part, and finally checks the whole file, fsyncs and renames it into
 * place without ever replacing an existing file.  Every request is
 * encoded and every answer decoded by workers/peer_msg.h, the codec the
 * fuzz target tests/fuzz/fuzz_peer.c exercises.
 *
 * Speed (see tests/unit/test_node_perf.c for the benchmark): the
 * whole-file SHA1 is computed while downloading, not by re-reading the
 * .part at the end.  The shared "frontier" state (node_fhash_sh_t) is
 * advanced by whichever worker finds the chunk at the frontier done: the
 * chunk it just verified is hashed straight from its receive buffer, the
 * following done chunks are read back from the page cache.  Among equally
 * rare chunks the pick is random within the first TS_DL_PICK_WINDOW_N in
 * file order, so chunks complete roughly in order and the frontier keeps
 * up.  Writeback of the hashed prefix is started every TS_DL_WB_STEP_B
 * (sync_file_range, no wait), so the final fsync has little left to do.
 * Finalization then only finishes the hash, fsyncs and renames; if the
 * frontier is incomplete or disagrees, the .part is re-read and decides
 * (node_stats fh_rereads counts that).
 *
 * Security (issue 5): every link is TLS (TS_TLS_PEER_CLIENT with our node
 * certificate).  A link belongs to one peer identity: (address, the
 * certificate fingerprint the tracker listed for it), and the handshake
 * fails unless the peer presents exactly that certificate (a failure is
 * that source failing: logged with the address, backoff).  The handshake
 * is driven through the epoll loop like the connect before it, with a
 * TS_TLS_HANDSHAKE_MS deadline.  Before the first MAP/GET of a download
 * on a link, and again whenever the agent renewed the download's ticket
 * (node_dl_sh_t ticket_gen), PEER_AUTH carries the ticket, pipelined.  A
 * peer that refuses the ticket gets no MAP/GET of that download until the
 * next ticket; "no valid ticket" (TS_ERR_PERM) to a MAP/GET re-sends it
 * after TS_DL_PAUSED_RETRY_MS.
 *
 * ctx->arg points to the node_t (node_start's supervisor copy): its shm
 * and its opts (certificate and key paths).
 *
 * Locking: none taken.  Text fields of a download are copied under its
 * seqlock; chunk claims, the map-refresh claim and the finalize claim are
 * CAS words owned by ts_owner_make(getpid(), ctx->generation); bits and
 * counters are C11 atomics.  Several workers may have the same .part open
 * and pwrite disjoint chunks into it.
 *
 * Crash behaviour: a SIGKILLed worker leaves claimed chunks, maybe a
 * map_owner or finalize_owner claim, and its published in-flight counts
 * (node_slot_inflight(shm, ctx->slot, dl)[src], F1's table: every GET
 * counted in src[s].inflight is counted there first).  node_reclaim()
 * (node.c) must undo all of it by owner: chunk claims -> 0, map_owner ->
 * 0, finalize_owner -> 0 with the download FINALIZING -> ACTIVE, and
 * subtract the dead slot's per-source counts from src[s].inflight.
 * A chunk is marked done only after its hash matched and pwrite()
 * returned, so a half-written chunk is simply fetched again; the final
 * whole-file SHA1 catches anything else.  A worker killed while feeding
 * the frontier leaves the published copy intact (two copies + a CAS'd
 * generation); reclaim frees its fhash owner claim and the next worker
 * carries on from the last published frontier.  A finalizer killed
 * between its rename and DONE leaves no .part: the next finalizer finds
 * dest a regular file of the right size and SHA1 and records DONE.  Only
 * a chunk writer creates the .part, never through a symlink (O_NOFOLLOW);
 * every state change is a CAS from the expected state of the same
 * download id, so a stale worker never overrides the CLI.
 */
/* SHA_CTX is a plain struct that can live in shm (node_fhash_sh_t); the
 * SHA1_* calls are deprecated in OpenSSL 3 but are the same assembly */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <errno.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "ts_net.h"
#include "ts_crypto.h"
#include "ts_claim.h"
#include "ts_shm.h"
#include "ts_sup.h"
#include "ts_tls.h"
#include "node_shm.h"
#include "node.h"
#include "peer_msg.h"

#define DL_CONNS_MAX      (TS_NODE_DOWNLOADS_N * TS_NODE_SOURCES_N)
/* a link's pipeline: TS_NODE_PIPELINE_N MAP/GETs plus PEER_AUTHs */
#define DL_QMAX           (TS_NODE_PIPELINE_N + TS_NODE_DOWNLOADS_N)
/* k->small holds a whole REPLY or a PEER_DATA head (peer_msg.h) */
#define DL_MAP_MAX_B      PEER_MSG_MAP_MAX_B
_Static_assert(PEER_MSG_HEAD_MAX_B <= PEER_MSG_MAP_MAX_B,
               "a PEER_DATA head must fit in k->small");
#define DL_FH_BUSY        UINT32_MAX

_Static_assert(sizeof(SHA_CTX) <= NODE_FHASH_CTX_B, "SHA_CTX too big");

enum { REQ_GET = 1, REQ_MAP = 2, REQ_AUTH = 3 };
enum { RX_HDR = 0, RX_HEAD, RX_BODY, RX_DATA };

typedef struct {
    int       kind;
    int       dl;            /* download index */
    uint32_t  dl_id;         /* node_dl_sh_t.id when sent */
    int       src;
    uint32_t  chunk;
    uint32_t  len;           /* expected chunk length */
    uint32_t  gen;           /* REQ_AUTH: ticket generation sent */
    int       pub;           /* counted in shm inflight */
    uint64_t  reqid;
    int64_t   sent_us;
} dl_req_t;

/* What one link's peer knows of one download's ticket.  A link is one
 * TLS session: the uploader remembers authorizations per link, so this
 * is reset whenever the link closes. */
typedef struct {
    uint32_t    dl_id;       /* download id this state is for */
    uint32_t    sent_gen;    /* ticket generation sent (0 = none) */
    uint32_t    bad_gen;     /* generation the peer refused (0 = none) */
    int64_t     hold_ms;     /* no MAP/GET of the download before */
} dl_auth_t;

typedef struct {
    char        addr[64];
    uint8_t     fp[TS_FP_B]; /* the identity the tracker gave for addr */
    ts_conn_t  *c;
    int         fd;
    int         connecting;  /* fd in the epoll set for EPOLLOUT, no c */
    int         hs;          /* c exists, TLS handshake not finished */
    int         hs_warned;   /* a handshake failure was logged */
    int64_t     connect_until_ms;   /* connect, then handshake deadline */
    int64_t     retry_at_ms;
    int         errors;
    int64_t     penalty_ms;  /* next error close: back off this long */
    int64_t     closed_ms;   /* made or last closed at */
    dl_auth_t   auth[TS_NODE_DOWNLOADS_N];
    /* requests, answered in order */
    dl_req_t    q[DL_QMAX];
    int         qhead, qn;
    int         nauth;       /* PEER_AUTHs among the qn */
    /* output */
    ts_wbuf_t   out;
    size_t      woff;
    int         want_out;
    /* input */
    int         rx;
    uint8_t     hdr[TS_FRAME_HDR_B];
    ts_frame_hdr_t fh;
    size_t      got;
    size_t      need;
    uint8_t    *small;       /* DL_MAP_MAX_B */
    uint8_t    *data;        /* TS_CHUNK_B, allocated once */
    uint16_t    st;
    uint32_t    load;
    uint32_t    index;
    int64_t     last_rx_ms;
    int64_t     start_us;    /* current reply started (for rate) */
} dl_conn_t;

typedef struct {
    int        active;
    uint32_t   id;
    char       group[TS_ID_MAX_B + 1];
    char       name[TS_NAME_MAX_B + 1];
    char       dest[PATH_MAX];
    char       part[PATH_MAX];
    node_fid_t part_id;      /* the .part the CLI made (node_open_part) */
    uint64_t   size;
    uint32_t   nchunks;
    uint8_t    sha1[20];
    int        fd;
    uint16_t  *avail;
    uint8_t   *avoid;        /* src+1 that sent bad data for a chunk */
    int64_t    avail_ms;
    int        dirty;
    uint32_t   fh_next;      /* frontier last seen (a lower bound) */
    uint64_t   wb_off;       /* writeback started up to here */
    uint32_t   tgen;         /* ticket generation copied (0 = none) */
    uint32_t   tlen;
    uint8_t    ticket[TS_TICKET_MAX_B];
} dl_local_t;

typedef struct {
    const ts_worker_ctx_t *ctx;
    const node_t    *node;
    ts_tls_t        *tls;    /* TS_TLS_PEER_CLIENT, our node certificate */
    int              need;   /* a link became usable: schedule now */
    const ts_shm_t  *shm;
    node_dl_sh_t    *dls;
    node_stats_sh_t *stats;
    ts_owner_t       me;
    int              slot;
    int              ep;
    int              inflight;
    uint64_t         reqid;
    uint64_t         rnd;
    dl_conn_t       *conns[DL_CONNS_MAX];
    dl_local_t       loc[TS_NODE_DOWNLOADS_N];
    ts_wbuf_t        pl;
    uint8_t         *fbuf;   /* finalize / maybe re-hash buffer */
    int64_t          slow_ms; /* dl_slow_reply's limit */
} dl_t;

static int64_t
dl_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t
dl_rand(dl_t *w)
{
    /* xorshift64: tie-breaks only */
    w->rnd ^= w->rnd << 13;
    w->rnd ^= w->rnd >> 7;
    w->rnd ^= w->rnd << 17;
    return w->rnd;
}

static uint32_t
dl_chunk_len(const dl_local_t *l, uint32_t i)
{
    uint64_t off = (uint64_t) i * TS_CHUNK_B;

    return (uint32_t) (l->size - off < TS_CHUNK_B ? l->size - off
                                                   : TS_CHUNK_B);
}

static void
dl_sat_dec(_Atomic uint32_t *v, uint32_t n)
{
    uint32_t cur = atomic_load(v), nv;

    do {
        nv = cur > n ? cur - n : 0;
    } while (!atomic_compare_exchange_weak(v, &cur, nv));
}

/* ---- in-flight accounting (see the header comment and node_shm.h) --- */

static int
dl_inflight_add(dl_t *w, int i, int s)
{
    _Atomic uint32_t *mine = node_slot_inflight(w->shm, w->slot, i);

    if (mine == NULL) {
        return 0;
    }
    /* per-slot share first: reclaim can only over-subtract, never leak */
    atomic_fetch_add(&mine[s], 1);
    atomic_fetch_add(&w->dls[i].src[s].inflight, 1);
    return 1;
}

static void
dl_inflight_sub(dl_t *w, const dl_req_t *r)
{
    node_dl_sh_t     *d = &w->dls[r->dl];
    _Atomic uint32_t *mine = node_slot_inflight(w->shm, w->slot, r->dl);

    w->inflight--;
    if (!r->pub || mine == NULL || atomic_load(&d->id) != r->dl_id) {
        return;
    }
    /* global count first, then our slot's share (the reverse of the
     * way up): a kill in between makes reclaim subtract once more from
     * the global count, an over-subtraction that saturates, never a leak */
    dl_sat_dec(&d->src[r->src].inflight, 1);
    dl_sat_dec(&mine[r->src], 1);
}

/* ---- download snapshots ---------------------------------------------- */

static void
dl_local_drop(dl_local_t *l)
{
    if (l->fd >= 0) {
        close(l->fd);
    }
    free(l->avail);
    free(l->avoid);
    memset(l, 0, sizeof(*l));
    l->fd = -1;
}

/* Copies the text fields of download i under its seqlock.  1 if the
 * download is usable (ACTIVE or FINALIZING and sane), else 0. */
static int
dl_snapshot(dl_t *w, int i)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    dl_local_t    t;
    uint32_t      s1, s2, id, st;
    int           tries;

    st = atomic_load(&d->state);
    if (st != NODE_DL_ACTIVE && st != NODE_DL_FINALIZING) {
        if (l->active) {
            dl_local_drop(l);
        }
        return 0;
    }
    id = atomic_load(&d->id);
    if (l->active && l->id == id) {
        return 1;
    }
    if (l->active) {
        dl_local_drop(l);
    }
    memset(&t, 0, sizeof(t));
    for (tries = 0; ; tries++) {
        if (tries > 1000) {
            return 0;
        }
        s1 = atomic_load_explicit(&d->seq, memory_order_acquire);
        if (s1 & 1) {
            sched_yield();
            continue;
        }
        memcpy(t.group, d->group, sizeof(t.group));
        memcpy(t.name, d->name, sizeof(t.name));
        memcpy(t.dest, d->dest, sizeof(t.dest));
        memcpy(t.part, d->part, sizeof(t.part));
        t.part_id = d->part_id;
        memcpy(t.sha1, d->file_sha1, 20);
        t.size = d->size;
        t.nchunks = d->nchunks;
        atomic_thread_fence(memory_order_acquire);
        s2 = atomic_load_explicit(&d->seq, memory_order_relaxed);
        if (s1 == s2) {
            break;
        }
    }
    t.group[sizeof(t.group) - 1] = '\0';
    t.name[sizeof(t.name) - 1] = '\0';
    t.dest[sizeof(t.dest) - 1] = '\0';
    t.part[sizeof(t.part) - 1] = '\0';
    if (t.size > TS_FILE_MAX_B
        || t.nchunks != (t.size + TS_CHUNK_B - 1) / TS_CHUNK_B
        || t.part[0] == '\0' || t.dest[0] == '\0')
    {
        return 0;
    }
    t.avail = calloc(t.nchunks ? t.nchunks : 1, sizeof(uint16_t));
    t.avoid = calloc(t.nchunks ? t.nchunks : 1, 1);
    if (t.avail == NULL || t.avoid == NULL) {
        free(t.avail);
        free(t.avoid);
        return 0;
    }
    t.fd = -1;
    t.id = id;
    t.active = 1;
    t.dirty = 1;
    *l = t;
    return 1;
}

/* The .part, opened once per snapshot.  Never created here: the CLI made
 * it (O_EXCL) when the download was asked for, and only that file is
 * ever opened (node_open_part: no symlink, same inode), so a file
 * someone else put at the name is never written or read as ours. */
static int
dl_part_fd(dl_local_t *l)
{
    if (l->fd < 0) {
        l->fd = node_open_part(l->part, O_RDWR, &l->part_id);
        if (l->fd < 0) {
            ts_err("open(\"%s\") failed: %s", l->part,
                   errno == ESTALE ? "another file has taken its name"
                                   : strerror(errno));
        }
    }
    return l->fd;
}

/* Why the .part could not be opened, for the download's error. */
static const char *
dl_part_why(int err)
{
    switch (err) {
    case ENOENT:
        return "the .part file was removed";
    case ESTALE:
    case ELOOP:
        return "another file has taken the .part file's name";
    default:
        return "cannot open the .part file";
    }
}

/*
 * Moves download i from state `from` to `to`, only while the entry still
 * holds the download we snapshotted (id) and is still in `from`: the CLI
 * may have removed, reused or paused it meanwhile.  `why` (or NULL) goes
 * into error first, and only when the move is about to win.  1 if moved.
 */
static int
dl_set_state(dl_t *w, int i, uint32_t from, uint32_t to, const char *why)
{
    node_dl_sh_t *d = &w->dls[i];
    uint32_t      exp = from;

    if (atomic_load(&d->id) != w->loc[i].id
        || atomic_load(&d->state) != from)
    {
        return 0;
    }
    if (why != NULL) {
        snprintf(d->error, sizeof(d->error), "%s", why);
    }
    return atomic_compare_exchange_strong(&d->state, &exp, to);
}

static void
dl_fail(dl_t *w, int i, uint32_t from, const char *why)
{
    node_dl_sh_t *d = &w->dls[i];

    if (!dl_set_state(w, i, from, NODE_DL_FAILED, why)) {
        return;
    }
    atomic_store(&d->finished_ms, ts_wall_ms());
    ts_err("download %s/%s failed: %s", w->loc[i].group, w->loc[i].name,
           why);
}

/* 1 while chunk c of download i (as of id) is still claimed by us: a
 * late reply or re-hash for a reused entry or a lost claim counts nothing */
static int
dl_chunk_mine(dl_t *w, int i, uint32_t id, uint32_t c)
{
    return atomic_load(&w->dls[i].id) == id
           && atomic_load(&node_dl_claims(w->shm, i)[c]) == w->me;
}

/* ---- connections ----------------------------------------------------- */

/* 1 if source src is the peer of link k: same address and identity */
static int
dl_src_is(const node_src_sh_t *src, const dl_conn_t *k)
{
    return strncmp(src->addr, k->addr, sizeof(src->addr)) == 0
           && memcmp(src->fp, k->fp, TS_FP_B) == 0;
}

static void
dl_src_backoff(dl_t *w, const dl_conn_t *k, int64_t until)
{
    int i, s;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (!w->loc[i].active) {
            continue;
        }
        for (s = 0; s < TS_NODE_SOURCES_N; s++) {
            node_src_sh_t *src = &w->dls[i].src[s];

            if (atomic_load(&src->state) != NODE_SRC_FREE
                && dl_src_is(src, k))
            {
                atomic_fetch_add(&src->errors, 1);
                atomic_store(&src->retry_after_ms, until);
            }
        }
    }
}

static void
dl_req_release(dl_t *w, dl_req_t *r)
{
    node_dl_sh_t *d = &w->dls[r->dl];

    if (r->kind == REQ_AUTH) {
        return;                 /* nothing claimed, nothing counted */
    }
    if (atomic_load(&d->id) == r->dl_id) {
        if (r->kind == REQ_GET) {
            ts_claim_release(&node_dl_claims(w->shm, r->dl)[r->chunk], w->me);
        } else {
            ts_claim_release(&d->src[r->src].map_owner, w->me);
        }
    }
    if (r->kind == REQ_GET) {
        dl_inflight_sub(w, r);
    }
}

/* Closes the connection, frees its claims; error = back off the peer.
 * why NULL: the caller has logged already. */
static void
dl_conn_close(dl_t *w, dl_conn_t *k, int error, const char *why)
{
    int64_t until;

    while (k->qn > 0) {
        dl_req_release(w, &k->q[k->qhead]);
        k->qhead = (k->qhead + 1) % DL_QMAX;
        k->qn--;
    }
    k->qhead = 0;
    k->nauth = 0;
    k->hs = 0;
    /* the next link is a new TLS session: the peer knows no ticket */
    memset(k->auth, 0, sizeof(k->auth));
    if (k->c != NULL) {
        epoll_ctl(w->ep, EPOLL_CTL_DEL, k->fd, NULL);
        ts_conn_free(k->c);
        k->c = NULL;
        k->fd = -1;
    } else if (k->fd >= 0) {
        /* still connecting: a bare socket */
        epoll_ctl(w->ep, EPOLL_CTL_DEL, k->fd, NULL);
        close(k->fd);
        k->fd = -1;
    }
    k->connecting = 0;
    ts_wbuf_reset(&k->out);
    k->woff = 0;
    k->want_out = 0;
    k->rx = RX_HDR;
    k->got = 0;
    k->closed_ms = ts_now_ms();
    if (error) {
        k->errors++;
        until = TS_DL_BACKOFF_MIN_MS << (k->errors < 5 ? k->errors - 1 : 4);
        if (until > TS_DL_BACKOFF_MAX_MS) {
            until = TS_DL_BACKOFF_MAX_MS;
        }
        if (k->penalty_ms > 0) {
            until = k->penalty_ms;
            k->penalty_ms = 0;
        }
        k->retry_at_ms = ts_now_ms() + until;
        dl_src_backoff(w, k, k->retry_at_ms);
        /* the first failure is news; a peer that stays away is not */
        if (why != NULL) {
            ts_log(k->errors == 1 ? TS_LOG_WARN : TS_LOG_DEBUG,
                   "peer %s: %s; retry in %lld ms", k->addr, why,
                   (long long) until);
        }
    }
}

/* The link to (addr, fp): one per peer identity, shared by every
 * download from it. */
static dl_conn_t *
dl_conn_find(dl_t *w, const char *addr, const uint8_t fp[TS_FP_B],
             int create)
{
    int        i, freei = -1;
    dl_conn_t *k;

    for (i = 0; i < DL_CONNS_MAX; i++) {
        if (w->conns[i] == NULL) {
            if (freei < 0) {
                freei = i;
            }
            continue;
        }
        if (strcmp(w->conns[i]->addr, addr) == 0
            && memcmp(w->conns[i]->fp, fp, TS_FP_B) == 0)
        {
            return w->conns[i];
        }
    }
    if (!create || freei < 0) {
        return NULL;
    }
    k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->small = malloc(DL_MAP_MAX_B);
    if (k->small == NULL) {
        free(k);
        return NULL;
    }
    snprintf(k->addr, sizeof(k->addr), "%s", addr);
    memcpy(k->fp, fp, TS_FP_B);
    k->fd = -1;
    k->closed_ms = ts_now_ms();
    ts_wbuf_init(&k->out);
    w->conns[freei] = k;
    return k;
}

/* Starts a non-blocking connect to ip:port: the socket goes into the
 * epoll set for EPOLLOUT and k->connecting is set; dl_conn_connected()
 * finishes it, dl_timeouts() enforces TS_NODE_CONNECT_MS.  0 or -1. */
static int
dl_conn_start(dl_t *w, dl_conn_t *k, const char *ip, uint16_t port)
{
    struct sockaddr_storage  ss;
    struct sockaddr_in      *s4 = (struct sockaddr_in *) &ss;
    struct sockaddr_in6     *s6 = (struct sockaddr_in6 *) &ss;
    socklen_t                sl;
    struct epoll_event       ev;
    int                      fd;

    memset(&ss, 0, sizeof(ss));
    if (port != 0 && inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        sl = sizeof(*s4);
    } else if (port != 0 && inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        sl = sizeof(*s6);
    } else {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    /* 0 (rare, loopback) is finished by EPOLLOUT like EINPROGRESS */
    if (connect(fd, (struct sockaddr *) &ss, sl) < 0
        && errno != EINPROGRESS && errno != EINTR)
    {
        close(fd);
        return -1;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLOUT;
    ev.data.ptr = k;
    if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    k->fd = fd;
    k->connecting = 1;
    k->connect_until_ms = ts_now_ms() + TS_NODE_CONNECT_MS;
    return 0;
}

static int dl_conn_input(dl_t *w, dl_conn_t *k);

/* 1 if fp is all zero (no identity known) */
static int
dl_fp_zero(const uint8_t fp[TS_FP_B])
{
    int i;

    for (i = 0; i < TS_FP_B; i++) {
        if (fp[i] != 0) {
            return 0;
        }
    }
    return 1;
}

static void
dl_conn_events(dl_t *w, dl_conn_t *k, uint32_t events)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.events = events;
    ev.data.ptr = k;
    if (epoll_ctl(w->ep, EPOLL_CTL_MOD, k->fd, &ev) != 0) {
        ts_err("epoll_ctl() failed: %s", strerror(errno));
    }
}

/* EPOLLOUT/ERR/HUP on a connecting k: TCP is up (the TLS handshake
 * starts, driven by dl_conn_input through the epoll loop, deadline
 * TS_TLS_HANDSHAKE_MS) or failed (closed, backoff). */
static void
dl_conn_connected(dl_t *w, dl_conn_t *k)
{
    socklen_t          el;
    int                soerr = 0, one = 1, fd = k->fd;

    el = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) < 0
        || soerr != 0
        || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
    {
        dl_conn_close(w, k, 1, "connect failed");
        return;
    }
    k->connecting = 0;
    /* the peer must prove the identity the tracker listed for it (a TLS
     * build without a listed identity never gets this far) */
    k->c = ts_conn_new_tls(fd, w->tls, 0, ts_tls_enabled() ? k->fp : NULL);
    if (k->c == NULL) {
        /* fd closed by ts_conn_new_tls (and so out of the epoll set) */
        k->fd = -1;
        dl_conn_close(w, k, 1, "out of memory");
        return;
    }
    k->hs = 1;
    k->want_out = 0;
    k->rx = RX_HDR;
    k->got = 0;
    k->last_rx_ms = ts_now_ms();
    k->connect_until_ms = k->last_rx_ms + TS_TLS_HANDSHAKE_MS;
    (void) dl_conn_input(w, k);
}

/* The handshake of k finished: the link carries requests from now on. */
static void
dl_conn_hs_done(dl_t *w, dl_conn_t *k)
{
    k->hs = 0;
    k->hs_warned = 0;
    k->want_out = 0;
    k->last_rx_ms = ts_now_ms();
    dl_conn_events(w, k, EPOLLIN);
    w->need = 1;
}

/* A failed handshake (errno from ts_conn_read): that source failed;
 * logged with the address and the reason, then backoff as for any
 * failure.  The first failure of a streak is a warning. */
static void
dl_conn_hs_fail(dl_t *w, dl_conn_t *k, int err)
{
    char why[256];

    if (err == EPERM) {
        snprintf(why, sizeof(why), "refused: its certificate is not the "
                 "identity the tracker listed for it");
    } else if (err == ECONNRESET || err == EPIPE) {
        snprintf(why, sizeof(why), "connection reset during the TLS "
                 "handshake");
    } else {
        snprintf(why, sizeof(why), "TLS handshake failed (%s%s%s)",
                 strerror(err), ts_tls_last_error()[0] ? ": " : "",
                 ts_tls_last_error());
    }
    ts_log(k->hs_warned ? TS_LOG_DEBUG : TS_LOG_WARN, "peer %s: %s",
           k->addr, why);
    k->hs_warned = 1;
    dl_conn_close(w, k, 1, NULL);
}

/* A connected conn (TLS up) to source src with room in its pipeline,
 * or NULL (in backoff, connecting, handshaking, failed, pipeline full). */
static dl_conn_t *
dl_conn_get(dl_t *w, const node_src_sh_t *src)
{
    dl_conn_t          *k;
    char                ip[64], addr[64];
    uint8_t             fp[TS_FP_B];
    uint16_t            port;

    /* addr and fp are written while the source entry is FREE */
    memcpy(addr, src->addr, sizeof(addr));
    addr[sizeof(addr) - 1] = '\0';
    memcpy(fp, src->fp, TS_FP_B);
    k = dl_conn_find(w, addr, fp, 1);
    if (k == NULL) {
        return NULL;
    }
    if (k->c != NULL) {
        /* room for a request and the PEER_AUTH that may precede it */
        return !k->hs && k->qn - k->nauth < TS_NODE_PIPELINE_N
               && k->qn + 2 <= DL_QMAX ? k : NULL;
    }
    if (k->connecting || ts_now_ms() < k->retry_at_ms) {
        return NULL;
    }
    if (ts_tls_enabled() && dl_fp_zero(fp)) {
        /* no identity to check it against: never trusted */
        if (!k->hs_warned) {
            ts_warn("peer %s: refused: the tracker listed no certificate "
                    "fingerprint for it", addr);
            k->hs_warned = 1;
        }
        k->errors = 4;
        dl_conn_close(w, k, 1, NULL);
        return NULL;
    }
    if (ts_parse_hostport(addr, ip, sizeof(ip), &port) != 0) {
        k->retry_at_ms = ts_now_ms() + TS_DL_BACKOFF_MAX_MS;
        return NULL;
    }
    if (dl_conn_start(w, k, ip, port) != 0) {
        dl_conn_close(w, k, 1, "connect failed");
    }
    return NULL;
}

static void
dl_conn_want_out(dl_t *w, dl_conn_t *k, int on)
{
    struct epoll_event ev;

    if (k->want_out == on || k->c == NULL || k->hs) {
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
    ev.data.ptr = k;
    epoll_ctl(w->ep, EPOLL_CTL_MOD, k->fd, &ev);
    k->want_out = on;
}

static int
dl_conn_flush(dl_t *w, dl_conn_t *k)
{
    ssize_t n;

    while (k->woff < k->out.len) {
        n = ts_conn_write(k->c, k->out.data + k->woff, k->out.len - k->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                /* TLS may need to read first: EPOLLIN alone then, and
                 * the loop retries the flush on any event of k */
                dl_conn_want_out(w, k, ts_conn_want(k->c) != 1);
                return 0;
            }
            return -1;
        }
        k->woff += (size_t) n;
    }
    ts_wbuf_reset(&k->out);
    k->woff = 0;
    dl_conn_want_out(w, k, 0);
    return 0;
}

/* The peer-side authorization state of download i on link k (reset when
 * the download entry was reused). */
static dl_auth_t *
dl_auth(dl_conn_t *k, int i, uint32_t id)
{
    dl_auth_t *a = &k->auth[i];

    if (a->dl_id != id) {
        memset(a, 0, sizeof(*a));
        a->dl_id = id;
    }
    return a;
}

/* 1 if MAP/GET of download i may go on link k now: not while the peer
 * refused the current ticket (a new one comes with the agent's next
 * renewal: no hammering) or within a hold after "no valid ticket". */
static int
dl_auth_ok(dl_t *w, dl_conn_t *k, int i, int64_t now)
{
    dl_local_t *l = &w->loc[i];
    dl_auth_t  *a = dl_auth(k, i, l->id);

    if (l->tgen == 0 && ts_tls_enabled()) {
        return 0;               /* no ticket yet: the agent brings one */
    }
    if (l->tgen != 0 && a->bad_gen == l->tgen) {
        return 0;
    }
    return now >= a->hold_ms;
}

/* Appends one frame to k's output; the pipeline entry r (copied) waits
 * for its reply.  0, or -1 with nothing added. */
static int
dl_conn_queue(dl_t *w, dl_conn_t *k, uint8_t type, const dl_req_t *r)
{
    ts_frame_hdr_t  h;
    uint8_t         hb[TS_FRAME_HDR_B];
    dl_req_t       *q;
    size_t          len0;

    if (w->pl.err || k->qn >= DL_QMAX) {
        return -1;
    }
    h.type = type;
    h.flags = 0;
    h.len = (uint32_t) w->pl.len;
    h.reqid = ++w->reqid;
    ts_frame_hdr_encode(hb, &h);
    len0 = k->out.len;
    ts_put_raw(&k->out, hb, sizeof(hb));
    ts_put_raw(&k->out, w->pl.data, w->pl.len);
    if (k->out.err) {
        /* no half frame may stay queued: drop what this call added */
        k->out.len = len0;
        k->out.err = 0;
        return -1;
    }
    if (k->qn == 0) {
        k->last_rx_ms = ts_now_ms();
        k->start_us = dl_now_us();      /* the head reply starts now */
    }
    q = &k->q[(k->qhead + k->qn) % DL_QMAX];
    *q = *r;
    q->reqid = h.reqid;
    q->sent_us = dl_now_us();
    k->qn++;
    if (r->kind == REQ_AUTH) {
        k->nauth++;
    }
    return 0;
}

/* Queues a request frame on k; r is copied into the pipeline.  Before the
 * first MAP/GET of a download on the link, and whenever the download's
 * ticket was renewed since, PEER_AUTH with the ticket goes first
 * (pipelined: answered in order, no need to wait for it). */
static int
dl_conn_send(dl_t *w, dl_conn_t *k, uint8_t type, const dl_req_t *r)
{
    dl_local_t     *l = &w->loc[r->dl];
    dl_auth_t      *a = dl_auth(k, r->dl, l->id);
    dl_req_t        ar;

    if (l->tlen > 0 && a->sent_gen != l->tgen) {
        ts_wbuf_reset(&w->pl);
        peer_msg_auth_encode(&w->pl, l->ticket, l->tlen);
        memset(&ar, 0, sizeof(ar));
        ar.kind = REQ_AUTH;
        ar.dl = r->dl;
        ar.dl_id = l->id;
        ar.src = r->src;
        ar.gen = l->tgen;
        if (dl_conn_queue(w, k, TS_MSG_PEER_AUTH, &ar) != 0) {
            return -1;
        }
        a->sent_gen = l->tgen;
    }
    ts_wbuf_reset(&w->pl);
    peer_msg_req_encode(&w->pl, type, l->group, l->name, r->chunk);
    if (dl_conn_queue(w, k, type, r) != 0) {
        /* a PEER_AUTH queued above stays: it is harmless and answered */
        if (dl_conn_flush(w, k) != 0) {
            dl_conn_close(w, k, 1, "write failed");
        }
        return -1;
    }
    if (dl_conn_flush(w, k) != 0) {
        dl_conn_close(w, k, 1, "write failed");
        return 1;   /* queued and released again: not an error to undo */
    }
    return 0;
}

/* ---- whole-file SHA1 frontier (node_fhash_sh_t in node_shm.h) -------- */

/* Feeds done chunks at the frontier of download i into the whole-file
 * SHA1, at most max of them; chunk `chunk` is taken from buf (when not
 * NULL), the others are read back from the .part (page cache).  Returns
 * the frontier after the call (0 when there is none for this download),
 * or DL_FH_BUSY when another worker holds the claim or the entry was
 * reset under us. */
static uint32_t
dl_fh_advance(dl_t *w, int i, const uint8_t *buf, uint32_t chunk,
              uint32_t max)
{
    dl_local_t        *l = &w->loc[i];
    node_fhash_sh_t   *fh = node_dl_fhash(w->shm, i);
    _Atomic uint64_t  *done = node_dl_done(w->shm, i);
    node_fhash_copy_t *cp, *np;
    SHA_CTX            ctx;
    uint64_t           pub, off, wb;
    uint32_t           next, n = 0, len;
    ssize_t            got;
    int                fd;

    if (fh == NULL || !l->active) {
        return 0;               /* no frontier: finalization re-reads */
    }
    /* fh_next is a lower bound: its chunk not done = nothing to do */
    if (l->fh_next >= l->nchunks || !node_bit_test(done, l->fh_next)) {
        return l->fh_next;
    }
    if (!ts_claim_try(&fh->owner, w->me)) {
        return DL_FH_BUSY;
    }
    pub = atomic_load_explicit(&fh->pub, memory_order_acquire);
    if ((uint32_t) (pub >> 32) != l->id) {
        ts_claim_release(&fh->owner, w->me);
        return 0;               /* not ours (entry reused): no frontier */
    }
    cp = &fh->copy[pub & 1];
    np = &fh->copy[(pub & 1) ^ 1];
    next = cp->id == l->id ? cp->next : 0;
    if (next > l->nchunks) {
        next = 0;
    }
    if (next == 0) {
        SHA1_Init(&ctx);
    } else {
        memcpy(&ctx, cp->ctx, sizeof(ctx));
    }
    fd = -1;
    while (next < l->nchunks && n < max && node_bit_test(done, next)) {
        len = dl_chunk_len(l, next);
        if (buf != NULL && next == chunk) {
            SHA1_Update(&ctx, buf, len);
        } else {
            if (fd < 0 && (fd = dl_part_fd(l)) < 0) {
                break;
            }
            do {
                got = pread(fd, w->fbuf, len, (off_t) next * TS_CHUNK_B);
            } while (got < 0 && errno == EINTR);
            if (got != (ssize_t) len) {
                break;          /* finalization falls back to a re-read */
            }
            SHA1_Update(&ctx, w->fbuf, len);
        }
        next++;
        n++;
    }
    if (n > 0) {
        /* write the other copy, then publish it; a kill before the CAS
         * leaves the valid copy as it was */
        np->id = l->id;
        np->next = next;
        memcpy(np->ctx, &ctx, sizeof(ctx));
        if (!atomic_compare_exchange_strong_explicit(&fh->pub, &pub, pub + 1,
                                                     memory_order_acq_rel,
                                                     memory_order_relaxed))
        {
            ts_claim_release(&fh->owner, w->me);
            return DL_FH_BUSY;  /* the entry was reset under us */
        }
    }
    ts_claim_release(&fh->owner, w->me);
    if (next > l->fh_next) {
        l->fh_next = next;
    }
    /* start writeback of what is hashed so the final fsync has little
     * left to do (no wait here: SYNC_FILE_RANGE_WRITE only queues) */
    off = (uint64_t) l->fh_next * TS_CHUNK_B;
    if (off > l->size) {
        off = l->size;
    }
    if (TS_DL_WB_STEP_B > 0 && off >= l->wb_off + TS_DL_WB_STEP_B
        && l->fd >= 0)
    {
        wb = off - l->wb_off;
        sync_file_range(l->fd, (off_t) l->wb_off, (off_t) wb,
                        SYNC_FILE_RANGE_WRITE);
        l->wb_off = off;
    }
    return next;
}

/* The whole-file SHA1 once the frontier reached the end: 0, or -1 if
 * the published state is not complete (then the caller re-reads). */
static int
dl_fh_final(dl_t *w, int i, uint8_t md[20])
{
    dl_local_t        *l = &w->loc[i];
    node_fhash_sh_t   *fh = node_dl_fhash(w->shm, i);
    node_fhash_copy_t  cp;
    SHA_CTX            ctx;
    uint64_t           pub;

    if (fh == NULL || !ts_claim_try(&fh->owner, w->me)) {
        return -1;
    }
    pub = atomic_load_explicit(&fh->pub, memory_order_acquire);
    cp = fh->copy[pub & 1];
    ts_claim_release(&fh->owner, w->me);
    if ((uint32_t) (pub >> 32) != l->id || cp.id != l->id
        || cp.next != l->nchunks)
    {
        return -1;
    }
    if (l->nchunks == 0) {
        SHA1_Init(&ctx);
    } else {
        memcpy(&ctx, cp.ctx, sizeof(ctx));
    }
    SHA1_Final(md, &ctx);
    return 0;
}

/* ---- replies --------------------------------------------------------- */

/* The reply to a PEER_AUTH: accepted, or the peer refused this ticket
 * (forged, expired, another identity's): no MAP/GET of the download on
 * this link until the agent brings a new ticket. */
static void
dl_got_auth(dl_t *w, dl_conn_t *k, const dl_req_t *r, const uint8_t *p,
            size_t n)
{
    node_dl_sh_t *d = &w->dls[r->dl];
    dl_local_t   *l = &w->loc[r->dl];
    dl_auth_t    *a;
    ts_status_t   st;
    char          msg[PEER_MSG_MSG_B];

    if (atomic_load(&d->id) != r->dl_id || !l->active || l->id != r->dl_id)
    {
        return;
    }
    a = dl_auth(k, r->dl, r->dl_id);
    if (peer_msg_status_decode(p, n, &st, msg, sizeof(msg)) != 0) {
        st = TS_ERR_BADREQ;
        snprintf(msg, sizeof(msg), "malformed reply");
    }
    if (st == TS_OK) {
        if (a->bad_gen == r->gen) {
            a->bad_gen = 0;
        }
        return;
    }
    if (st == TS_ERR_INTERNAL || st == TS_ERR_BUSY) {
        /* the peer's trouble, not the ticket's: send it again later */
        if (a->sent_gen == r->gen) {
            a->sent_gen = 0;
        }
        a->hold_ms = ts_now_ms() + TS_DL_PAUSED_RETRY_MS;
        return;
    }
    if (a->bad_gen != r->gen) {
        ts_warn("peer %s refused our ticket for %s/%s: %s", k->addr,
                l->group, l->name, msg[0] ? msg : ts_status_name(st));
    }
    a->bad_gen = r->gen;
    if (atomic_load(&d->ticket_gen) == r->gen) {
        atomic_store(&d->denied, 1);
    }
}

/* A MAP/GET answered TS_ERR_PERM ("no valid ticket"): the link holds no
 * live authorization for the download (its ticket expired there, or none
 * was sent).  The ticket goes again with the next request, after a
 * pause; a refused one waits for the next ticket (dl_auth_ok). */
static void
dl_no_ticket(dl_t *w, dl_conn_t *k, const dl_req_t *r)
{
    dl_local_t *l = &w->loc[r->dl];
    dl_auth_t  *a = dl_auth(k, r->dl, r->dl_id);

    if (a->sent_gen != 0 && a->bad_gen != a->sent_gen) {
        ts_debug("peer %s: no valid ticket for %s/%s on the link", k->addr,
                 l->group, l->name);
    }
    a->sent_gen = 0;
    a->hold_ms = ts_now_ms() + TS_DL_PAUSED_RETRY_MS;
    l->dirty = 1;
}

static void
dl_got_map(dl_t *w, dl_conn_t *k, const dl_req_t *r, const uint8_t *p,
           size_t n)
{
    node_dl_sh_t      *d = &w->dls[r->dl];
    dl_local_t        *l = &w->loc[r->dl];
    peer_msg_map_t     m;
    uint32_t           i;
    _Atomic uint64_t  *map;

    if (atomic_load(&d->id) != r->dl_id || !l->active) {
        return;
    }
    /* a malformed answer changes nothing (a long message is no reason to
     * drop the link: the decoder truncates it) */
    if (peer_msg_map_decode(p, n, &m) != 0) {
        ts_warn("peer %s: bad PEER_MAP reply", k->addr);
        return;
    }
    map = node_dl_map(w->shm, r->dl, r->src);
    if (m.status == TS_ERR_PERM) {
        /* no valid ticket on the link: its map is unknown, not empty */
        dl_no_ticket(w, k, r);
        atomic_store(&d->src[r->src].map_ms, 0);
        return;
    }
    if (m.status == TS_ERR_AUTH || m.status == TS_ERR_INTERNAL
        || m.status == TS_ERR_BUSY)
    {
        /* paused (its user logged out) or short of resources: a passing
         * state, so back off and ask again; its map stays as it was */
        dl_src_backoff(w, k, ts_now_ms() + TS_DL_PAUSED_RETRY_MS);
        atomic_store(&d->src[r->src].map_ms, 0);
        return;
    }
    if (m.status != TS_OK) {
        /* the peer no longer has the file: nothing from it */
        for (i = 0; i < (l->nchunks + 63) / 64; i++) {
            atomic_store(&map[i], 0);
        }
        atomic_store(&d->src[r->src].map_ms, ts_now_ms());
        l->dirty = 1;
        return;
    }
    if (m.nchunks != l->nchunks) {
        ts_warn("peer %s: bad PEER_MAP reply", k->addr);
        return;
    }
    atomic_store(&d->src[r->src].load, m.load);
    for (i = 0; i < (m.nchunks + 63) / 64; i++) {
        atomic_store(&map[i], peer_msg_map_word(&m, i));
    }
    atomic_store(&d->src[r->src].map_ms, ts_now_ms());
    l->dirty = 1;
}

/*
 * How many of this node's downloader workers have requests at source k
 * of download i right now (at least 1).  A peer's uploader shares its
 * bandwidth among the links it serves, so one link's transfer rate times
 * the number of our links it is serving estimates what the peer gives us
 * in all; without that, a peer we keep busy looks slower than one we
 * barely use, and the least-loaded choice drifts to the busier peer.
 */
static uint32_t
dl_src_links(const dl_t *w, int i, uint32_t k)
{
    uint32_t n = 0;
    int      s;

    for (s = 0; s < TS_SUP_WORKERS_MAX_N; s++) {
        _Atomic uint32_t *col = node_slot_inflight(w->shm, s, i);

        if (col != NULL && atomic_load(&col[k]) > 0) {
            n++;
        }
    }
    return n > 0 ? n : 1;
}

static void
dl_rate_update(node_src_sh_t *src, uint32_t len, int64_t us, uint32_t links)
{
    uint64_t sample, old;

    if (us < 1) {
        us = 1;
    }
    sample = (uint64_t) len * 1000000ull * links / (uint64_t) us;
    old = atomic_load(&src->rate_bps);
    atomic_store(&src->rate_bps, old == 0 ? sample : (old * 7 + sample) / 8);
}

static void
dl_got_chunk(dl_t *w, dl_conn_t *k, const dl_req_t *r)
{
    node_dl_sh_t     *d = &w->dls[r->dl];
    dl_local_t       *l = &w->loc[r->dl];
    node_src_sh_t    *src = &d->src[r->src];
    uint8_t           md[20];
    uint64_t          off, old;
    size_t            put;
    ssize_t           n;
    int               fd;
    _Atomic uint64_t *done;

    if (atomic_load(&d->id) != r->dl_id || !l->active) {
        return;
    }
    atomic_store(&src->load, k->load);
    if (k->st == TS_ERR_PERM) {
        /* no valid ticket on the link: the peer may well hold the chunk */
        dl_no_ticket(w, k, r);
        return;
    }
    if (k->st == TS_ERR_AUTH || k->st == TS_ERR_INTERNAL
        || k->st == TS_ERR_BUSY)
    {
        /* paused or out of resources: try it again later, keep its map */
        dl_src_backoff(w, k, ts_now_ms() + TS_DL_PAUSED_RETRY_MS);
        ts_debug("peer %s: chunk %u of %s: status %u, backing off", k->addr,
                 r->chunk, l->name, k->st);
        return;
    }
    if (k->st != TS_OK) {
        /* the peer lacks it (or its share went stale): not from it */
        node_bit_clear(node_dl_map(w->shm, r->dl, r->src), r->chunk);
        l->dirty = 1;
        ts_debug("peer %s: chunk %u of %s: status %u", k->addr, r->chunk,
                 l->name, k->st);
        return;
    }
    atomic_store(&src->errors, 0);
    k->errors = 0;
    SHA1(k->data, r->len, md);
    if (memcmp(md, node_dl_hashes(w->shm, r->dl) + 20ull * r->chunk, 20)
        != 0)
    {
        uint32_t f = atomic_fetch_add(&src->failures, 1) + 1;

        atomic_fetch_add(&w->stats->hash_failures, 1);
        l->avoid[r->chunk] = (uint8_t) (r->src + 1);
        ts_warn("peer %s: chunk %u of %s failed SHA1 (%u bad)", k->addr,
                r->chunk, l->name, f);
        if (f >= TS_NODE_SRC_FAILS_MAX_N) {
            uint32_t live = NODE_SRC_LIVE;

            if (atomic_compare_exchange_strong(&src->state, &live,
                                               NODE_SRC_DROPPED))
            {
                ts_warn("peer %s dropped from %s/%s: %u bad chunks",
                        k->addr, l->group, l->name, f);
            }
            l->dirty = 1;
        }
        return;
    }
    done = node_dl_done(w->shm, r->dl);
    if (node_bit_test(done, r->chunk)) {
        return;
    }
    fd = dl_part_fd(l);
    if (fd < 0) {
        dl_fail(w, r->dl, NODE_DL_ACTIVE, dl_part_why(errno));
        return;
    }
    off = (uint64_t) r->chunk * TS_CHUNK_B;
    for (put = 0; put < r->len; put += (size_t) n) {
        n = pwrite(fd, k->data + put, r->len - put, (off_t) (off + put));
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            ts_err("pwrite(\"%s\") failed: %s", l->part, strerror(errno));
            dl_fail(w, r->dl, NODE_DL_ACTIVE,
                    "write to the .part file failed");
            return;
        }
    }
    if (!dl_chunk_mine(w, r->dl, r->dl_id, r->chunk)) {
        return;
    }
    old = atomic_fetch_or(&done[r->chunk >> 6], 1ull << (r->chunk & 63));
    if (!(old & (1ull << (r->chunk & 63)))) {
        atomic_fetch_add(&d->bytes_done, r->len);
        atomic_fetch_add(&d->chunks_done, 1);
    }
    atomic_fetch_add(&w->stats->bytes_down, r->len);
    atomic_fetch_add(&w->stats->chunks_down, 1);
    atomic_fetch_add(&src->chunks, 1);
    dl_rate_update(src, r->len, dl_now_us() - k->start_us,
                   dl_src_links(w, r->dl, r->src));
    /* the chunk is cache-hot: if it is the frontier, hash it from here */
    dl_fh_advance(w, r->dl, k->data, r->chunk, TS_DL_FH_BATCH_N);
}

/* A whole reply has arrived for the head request. */
static void
dl_reply_done(dl_t *w, dl_conn_t *k)
{
    dl_req_t r = k->q[k->qhead];

    k->qhead = (k->qhead + 1) % DL_QMAX;
    k->qn--;
    if (r.kind == REQ_GET) {
        dl_got_chunk(w, k, &r);
    } else if (r.kind == REQ_AUTH) {
        k->nauth--;
        dl_got_auth(w, k, &r, k->small, k->fh.len);
    } else {
        dl_got_map(w, k, &r, k->small, k->fh.len);
    }
    dl_req_release(w, &r);
    k->rx = RX_HDR;
    k->got = 0;
    k->start_us = dl_now_us();
}

/* Parses a PEER_DATA head in k->small[0..got) (peer_msg.h).  Returns
 * bytes still needed for the head (>0), 0 when complete, -1 on a protocol
 * error (a malformed head, another chunk or length than asked for). */
static int
dl_parse_head(dl_conn_t *k)
{
    const dl_req_t  *r = &k->q[k->qhead];
    peer_msg_data_t  h;
    long             need;

    need = peer_msg_data_head_len(k->small, k->got, k->fh.len);
    if (need < 0) {
        return -1;
    }
    if (k->got < (size_t) need) {
        return (int) ((size_t) need - k->got);
    }
    if (peer_msg_data_decode(k->small, k->got, k->fh.len, &h) != 0
        || h.index != r->chunk || (h.status == TS_OK && h.len != r->len))
    {
        return -1;
    }
    k->st = (uint16_t) h.status;
    k->load = h.load;
    k->index = h.index;
    return 0;
}

/* Reads what the socket has (driving the TLS handshake first while it
 * runs).  Reads until EAGAIN, so bytes TLS has already decrypted
 * (ts_conn_pending(), which epoll cannot see) are never left behind.
 * 0, or -1 after closing the connection. */
static int
dl_conn_input(dl_t *w, dl_conn_t *k)
{
    ssize_t  n;
    int      rc;
    uint8_t *dst;
    size_t   want;

    for ( ;; ) {
        switch (k->rx) {
        case RX_HDR:
            dst = k->hdr + k->got;
            want = TS_FRAME_HDR_B - k->got;
            break;
        case RX_HEAD:
        case RX_BODY:
            dst = k->small + k->got;
            want = k->need;
            break;
        default:
            dst = k->data + k->got;
            want = k->need;
            break;
        }
        n = ts_conn_read(k->c, dst, want);
        if (k->hs && (n > 0 || ts_conn_ready(k->c))) {
            dl_conn_hs_done(w, k);
        }
        if (n == 0) {
            if (k->hs) {
                dl_conn_hs_fail(w, k, ECONNRESET);
                return -1;
            }
            /* an idle link the peer closed is no fault of the peer */
            dl_conn_close(w, k, k->qn > 0 || k->got > 0,
                          "connection closed by peer");
            return -1;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                if (k->hs) {
                    /* wait for what the handshake wants next */
                    dl_conn_events(w, k, ts_conn_want(k->c) == 2 ? EPOLLOUT
                                                                 : EPOLLIN);
                }
                return 0;
            }
            if (k->hs) {
                dl_conn_hs_fail(w, k, errno);
                return -1;
            }
            if (k->qn == 0 && k->got == 0) {
                /* an idle link broken by a peer going away (TLS may say
                 * so as an error, not EOF): no fault of the peer */
                ts_debug("peer %s: idle link closed (%s)", k->addr,
                         strerror(errno));
                dl_conn_close(w, k, 0, NULL);
                return -1;
            }
            {
                char why[96];

                snprintf(why, sizeof(why), "read failed: %s",
                         strerror(errno));
                dl_conn_close(w, k, 1, why);
            }
            return -1;
        }
        k->last_rx_ms = ts_now_ms();
        k->got += (size_t) n;
        if (k->rx != RX_HDR) {
            k->need -= (size_t) n;
        }
        if (k->rx == RX_HDR) {
            const dl_req_t *r;

            if (k->got < TS_FRAME_HDR_B) {
                continue;
            }
            if (k->qn == 0
                || ts_frame_hdr_decode(k->hdr, &k->fh,
                                       PEER_MSG_REPLY_IN_MAX_B) != 0)
            {
                dl_conn_close(w, k, 1, "unexpected or bad frame");
                return -1;
            }
            r = &k->q[k->qhead];
            if (k->fh.reqid != r->reqid
                || peer_msg_reply_hdr_check(&k->fh,
                                            r->kind == REQ_GET
                                            ? TS_MSG_PEER_GET
                                            : r->kind == REQ_AUTH
                                            ? TS_MSG_PEER_AUTH
                                            : TS_MSG_PEER_MAP) != 0)
            {
                dl_conn_close(w, k, 1, "reply out of order");
                return -1;
            }
            k->got = 0;
            if (r->kind != REQ_GET) {
                k->rx = RX_BODY;
                k->need = k->fh.len;
                if (k->need == 0) {
                    dl_reply_done(w, k);
                }
            } else {
                k->rx = RX_HEAD;
                k->need = k->fh.len < 4 ? k->fh.len : 4;
                if (k->need == 0) {
                    dl_conn_close(w, k, 1, "empty PEER_DATA");
                    return -1;
                }
            }
            continue;
        }
        if (k->need > 0) {
            continue;
        }
        if (k->rx == RX_BODY || k->rx == RX_DATA) {
            dl_reply_done(w, k);
            continue;
        }
        /* RX_HEAD */
        rc = dl_parse_head(k);
        if (rc < 0) {
            dl_conn_close(w, k, 1, "bad PEER_DATA");
            return -1;
        }
        if (rc > 0) {
            k->need = (size_t) rc;
            continue;
        }
        if (k->st != TS_OK) {
            dl_reply_done(w, k);
            continue;
        }
        if (k->data == NULL) {
            k->data = malloc(TS_CHUNK_B);
            if (k->data == NULL) {
                dl_conn_close(w, k, 1, "out of memory");
                return -1;
            }
        }
        k->rx = RX_DATA;
        k->got = 0;
        k->need = k->q[k->qhead].len;
        if (k->need == 0) {
            dl_reply_done(w, k);
        }
    }
}

/* ---- scheduling ------------------------------------------------------ */

static int
dl_src_usable(const node_src_sh_t *src, int64_t now)
{
    return atomic_load(&src->state) == NODE_SRC_LIVE
           && !(atomic_load(&src->errors) > 0
                && atomic_load(&src->retry_after_ms) > now);
}

/* Complete sources get an all-ones map; partial ones a PEER_MAP. */
static void
dl_maps(dl_t *w, int i, int64_t now)
{
    node_dl_sh_t *d = &w->dls[i];
    dl_local_t   *l = &w->loc[i];
    int           s;
    uint32_t      c;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t    *src = &d->src[s];
        _Atomic uint64_t *map;
        dl_conn_t        *k;
        dl_req_t          r;

        if (!dl_src_usable(src, now)) {
            continue;
        }
        if (atomic_load(&src->complete)) {
            /* refilled now and then too: a seeder that answered "not
             * available" while it restarted has every chunk again */
            if ((atomic_load(&src->map_ms) != 0
                 && now - atomic_load(&src->map_ms) < TS_DL_COMPLETE_REFILL_MS)
                || !ts_claim_try(&src->map_owner, w->me))
            {
                continue;
            }
            map = node_dl_map(w->shm, i, s);
            for (c = 0; c < l->nchunks; c++) {
                node_bit_set(map, c);
            }
            atomic_store(&src->map_ms, now);
            ts_claim_release(&src->map_owner, w->me);
            l->dirty = 1;
            continue;
        }
        if (atomic_load(&src->map_ms) != 0
            && now - atomic_load(&src->map_ms) < TS_NODE_MAP_REFRESH_MS)
        {
            continue;
        }
        if (!ts_claim_try(&src->map_owner, w->me)) {
            continue;
        }
        k = dl_conn_get(w, src);
        if (k == NULL || !dl_auth_ok(w, k, i, now)) {
            ts_claim_release(&src->map_owner, w->me);
            continue;
        }
        memset(&r, 0, sizeof(r));
        r.kind = REQ_MAP;
        r.dl = i;
        r.dl_id = l->id;
        r.src = s;
        if (dl_conn_send(w, k, TS_MSG_PEER_MAP, &r) < 0) {
            ts_claim_release(&src->map_owner, w->me);
        }
    }
}

/* Chunks restored from disk after a crash: re-hash before fetching. */
static void
dl_maybe(dl_t *w, int i)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *maybe = node_dl_maybe(w->shm, i);
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    uint32_t          wd, c, len;
    uint64_t          bits, old;
    uint8_t           md[20];
    ssize_t           n;
    int               fd;

    for (wd = 0; wd < (l->nchunks + 63) / 64; wd++) {
        bits = atomic_load(&maybe[wd]);
        while (bits) {
            c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= l->nchunks || !ts_claim_try(&claims[c], w->me)) {
                continue;
            }
            len = dl_chunk_len(l, c);
            fd = dl_part_fd(l);
            if (!node_bit_test(done, c) && fd >= 0) {
                n = pread(fd, w->fbuf, len, (off_t) c * TS_CHUNK_B);
                if (n == (ssize_t) len && ts_sha1(w->fbuf, len, md) == 0
                    && memcmp(md, node_dl_hashes(w->shm, i) + 20ull * c, 20)
                       == 0 && dl_chunk_mine(w, i, l->id, c))
                {
                    old = atomic_fetch_or(&done[wd], 1ull << (c & 63));
                    if (!(old & (1ull << (c & 63)))) {
                        atomic_fetch_add(&d->bytes_done, len);
                        atomic_fetch_add(&d->chunks_done, 1);
                    }
                }
            }
            if (atomic_load(&d->id) == l->id) {
                node_bit_clear(maybe, c);
            }
            ts_claim_release(&claims[c], w->me);
        }
    }
}

/* Rarest-first counts over usable sources; sets waiting. */
static void
dl_avail(dl_t *w, int i, int64_t now)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    uint32_t          wd, nw = (l->nchunks + 63) / 64, c;
    uint64_t          bits, any = 0, missing = 0;
    int               s;

    memset(l->avail, 0, l->nchunks * sizeof(uint16_t));
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        _Atomic uint64_t *map;

        if (!dl_src_usable(&d->src[s], now)) {
            continue;
        }
        map = node_dl_map(w->shm, i, s);
        for (wd = 0; wd < nw; wd++) {
            bits = atomic_load(&map[wd]) & ~atomic_load(&done[wd]);
            any |= bits;
            while (bits) {
                c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
                bits &= bits - 1;
                if (c < l->nchunks) {
                    l->avail[c]++;
                }
            }
        }
    }
    for (wd = 0; wd < nw; wd++) {
        missing |= ~atomic_load(&done[wd]);
    }
    atomic_store(&d->waiting, (l->nchunks > 0 && missing && !any) ? 1 : 0);
    if (atomic_load(&d->chunks_done) >= l->nchunks) {
        atomic_store(&d->waiting, 0);
    }
    l->avail_ms = now;
    l->dirty = 0;
}

/* Least-loaded score of a source: (its reported load + our requests in
 * flight to it + 1) per unit of its estimated throughput to this node
 * (dl_rate_update); lower is better. */
static uint64_t
dl_src_cost(const node_src_sh_t *src)
{
    uint64_t rate = atomic_load(&src->rate_bps);

    if (rate == 0) {
        rate = TS_DL_DEFAULT_RATE;
    }
    return ((uint64_t) atomic_load(&src->load) + atomic_load(&src->inflight)
            + 1) * 1000000000ull / rate;
}


/* Picks and sends one GET for download i.  1 if sent, 0 if nothing. */
static int
dl_pick(dl_t *w, int i, int64_t now)
{
    dl_local_t       *l = &w->loc[i];
    node_dl_sh_t     *d = &w->dls[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    _Atomic uint64_t *claims = node_dl_claims(w->shm, i);
    _Atomic uint64_t *maps[TS_NODE_SOURCES_N];
    dl_conn_t        *ks[TS_NODE_SOURCES_N];
    uint32_t          elig = 0, wd, c, best = UINT32_MAX, cnt = 0;
    uint32_t          pick = UINT32_MAX;
    uint64_t          bits, bcost = UINT64_MAX;
    int               s, bs = -1, nbest = 0;
    dl_req_t          r;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        ks[s] = NULL;
        if (!dl_src_usable(&d->src[s], now)
            || atomic_load(&d->src[s].map_ms) == 0)
        {
            continue;
        }
        ks[s] = dl_conn_get(w, &d->src[s]);
        if (ks[s] != NULL && !dl_auth_ok(w, ks[s], i, now)) {
            ks[s] = NULL;
        }
        if (ks[s] != NULL) {
            elig |= 1u << s;
            maps[s] = node_dl_map(w->shm, i, s);
        }
    }
    if (elig == 0) {
        return 0;
    }
    for (wd = 0; wd < (l->nchunks + 63) / 64; wd++) {
        bits = ~atomic_load(&done[wd]);
        while (bits) {
            uint32_t e;

            c = wd * 64 + (uint32_t) __builtin_ctzll(bits);
            bits &= bits - 1;
            if (c >= l->nchunks) {
                break;
            }
            if (l->avail[c] == 0 || l->avail[c] > best
                || atomic_load_explicit(&claims[c], memory_order_relaxed))
            {
                continue;
            }
            for (e = elig; e; e &= e - 1) {
                s = __builtin_ctz(e);
                if (node_bit_test(maps[s], c)) {
                    break;
                }
            }
            if (e == 0) {
                continue;
            }
            if (l->avail[c] < best) {
                best = l->avail[c];
                cnt = 1;
                pick = c;
            } else if (cnt < TS_DL_PICK_WINDOW_N
                       && dl_rand(w) % ++cnt == 0)
            {
                /* among equally rare chunks, one of the first few in file
                 * order: the whole-file hash frontier keeps up */
                pick = c;
            }
        }
    }
    if (pick == UINT32_MAX) {
        return 0;
    }
    /* least-loaded holder: (reported load + our in-flight + 1) / rate */
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t *src = &d->src[s];
        uint64_t       cost;

        if (!(elig & (1u << s)) || !node_bit_test(maps[s], pick)) {
            continue;
        }
        cost = dl_src_cost(src);
        if (l->avoid[pick] == s + 1) {
            cost = UINT64_MAX - 1;     /* only if no one else has it */
        }
        if (cost < bcost) {
            bcost = cost;
            bs = s;
            nbest = 1;
        } else if (cost == bcost && dl_rand(w) % ++nbest == 0) {
            bs = s;
        }
    }
    if (bs < 0) {
        return 0;
    }
    /* No spill to a much worse peer: if a holder whose pipeline is full
     * right now costs less than a third of the best one with room, wait
     * for it to drain instead (a busy peer gets only what others lack). */
    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        node_src_sh_t *src = &d->src[s];
        uint64_t       cost;

        if ((elig & (1u << s)) || !dl_src_usable(src, now)
            || atomic_load(&src->map_ms) == 0
            || !node_bit_test(node_dl_map(w->shm, i, s), pick))
        {
            continue;
        }
        cost = dl_src_cost(src);
        if (cost < bcost / TS_DL_SPILL_FACTOR) {
            return 0;
        }
    }
    if (!ts_claim_try(&claims[pick], w->me)) {
        return 0;
    }
    if (node_bit_test(done, pick)) {
        ts_claim_release(&claims[pick], w->me);
        return 0;
    }
    memset(&r, 0, sizeof(r));
    r.kind = REQ_GET;
    r.dl = i;
    r.dl_id = l->id;
    r.src = bs;
    r.chunk = pick;
    r.len = dl_chunk_len(l, pick);
    r.pub = dl_inflight_add(w, i, bs);
    w->inflight++;
    if (dl_conn_send(w, ks[bs], TS_MSG_PEER_GET, &r) < 0) {
        dl_req_release(w, &r);
        return 0;
    }
    return 1;
}

/* ---- finalization ---------------------------------------------------- */

/*
 * 1 if dest already is the finished file: a regular file (not followed
 * through a symlink) of the right size whose SHA1 is the file's.  That is
 * what a finalizer killed between its rename and DONE leaves behind.
 */
static int
dl_dest_is_done(dl_t *w, const dl_local_t *l)
{
    struct stat  sb;
    ts_sha1_t   *h;
    uint8_t      md[20];
    uint64_t     off;
    ssize_t      n = 0;
    int          fd;

    /* the renamed .part keeps its inode: nothing else is ours */
    fd = node_open_part(l->dest, O_RDONLY, &l->part_id);
    if (fd < 0) {
        return 0;
    }
    if (fstat(fd, &sb) != 0 || (uint64_t) sb.st_size != l->size) {
        close(fd);
        return 0;
    }
    h = ts_sha1_new();
    if (h == NULL) {
        close(fd);
        return 0;
    }
    for (off = 0; off < l->size; off += (uint64_t) n) {
        size_t want = l->size - off < TS_DL_FINAL_BLOCK_B ? l->size - off
                                                       : TS_DL_FINAL_BLOCK_B;

        n = pread(fd, w->fbuf, want, (off_t) off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            break;
        }
        ts_sha1_update(h, w->fbuf, (size_t) n);
    }
    ts_sha1_final(h, md);
    ts_sha1_free(h);
    close(fd);
    return off == l->size && memcmp(md, l->sha1, 20) == 0;
}

static void
dl_finalize(dl_t *w, int i)
{
    node_dl_sh_t     *d = &w->dls[i];
    dl_local_t       *l = &w->loc[i];
    _Atomic uint64_t *done = node_dl_done(w->shm, i);
    uint64_t          exp = 0, off;
    uint32_t          st = NODE_DL_ACTIVE, c;
    uint8_t           md[20];
    ts_sha1_t        *h;
    ssize_t           n;
    int               fd;
    int64_t           t0 = ts_now_ms(), t1 = t0, t2;
    uint32_t          front;

    for (c = 0; c < l->nchunks; c++) {
        if (!node_bit_test(done, c)) {
            return;
        }
    }
    /* finish the frontier hash; if another worker is feeding it, it
     * comes back here itself when its turn ends */
    front = dl_fh_advance(w, i, NULL, 0, UINT32_MAX - 1);
    if (front == DL_FH_BUSY) {
        return;
    }
    if (!atomic_compare_exchange_strong(&d->finalize_owner, &exp, w->me)) {
        return;
    }
    if (atomic_load(&d->id) != l->id
        || !atomic_compare_exchange_strong(&d->state, &st, NODE_DL_FINALIZING))
    {
        ts_claim_release(&d->finalize_owner, w->me);
        return;
    }
    /* a fresh descriptor of whatever is at the .part's name now, never
     * created here: a finalizer killed after its rename left none, and
     * the finished file is then already at dest */
    if (l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    fd = node_open_part(l->part, O_RDWR, &l->part_id);
    if (fd < 0 && errno == ENOENT && dl_dest_is_done(w, l)) {
        ts_info("download %s/%s: %s is already in place", l->group,
                l->name, l->dest);
        goto durable;
    }
    if (fd < 0) {
        int err = errno;

        ts_err("open(\"%s\") failed: %s", l->part, strerror(err));
        dl_fail(w, i, NODE_DL_FINALIZING, dl_part_why(err));
        goto out;
    }
    l->fd = fd;
    if (ftruncate(fd, (off_t) l->size) != 0) {
        ts_err("ftruncate(\"%s\") failed: %s", l->part, strerror(errno));
        dl_fail(w, i, NODE_DL_FINALIZING, "cannot size the .part file");
        goto out;
    }
    if (front == l->nchunks && dl_fh_final(w, i, md) == 0
        && memcmp(md, l->sha1, 20) == 0)
    {
        goto hashed;
    }
    /* no complete frontier hash (a read failed) or it disagrees: the
     * file itself decides, read back from the .part */
    atomic_fetch_add(&w->stats->fh_rereads, 1);
    ts_warn("download %s/%s: frontier hash %s; re-reading the .part",
            l->group, l->name, front == l->nchunks ? "mismatch"
                                                   : "incomplete");
    h = ts_sha1_new();
    if (h == NULL) {
        (void) dl_set_state(w, i, NODE_DL_FINALIZING, NODE_DL_ACTIVE, NULL);
        goto out;
    }
    for (off = 0; off < l->size; off += (uint64_t) n) {
        size_t want = l->size - off < TS_DL_FINAL_BLOCK_B ? l->size - off
                                                       : TS_DL_FINAL_BLOCK_B;

        n = pread(fd, w->fbuf, want, (off_t) off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            break;
        }
        ts_sha1_update(h, w->fbuf, (size_t) n);
    }
    ts_sha1_final(h, md);
    ts_sha1_free(h);
    if (off != l->size) {
        ts_err("pread(\"%s\") failed: %s", l->part, strerror(errno));
        dl_fail(w, i, NODE_DL_FINALIZING, "cannot read the .part file");
        goto out;
    }
    if (memcmp(md, l->sha1, 20) != 0) {
        dl_fail(w, i, NODE_DL_FINALIZING,
                "whole-file SHA1 mismatch (the .part is kept)");
        goto out;
    }
hashed:
    t1 = ts_now_ms();
    if (fsync(fd) != 0) {
        ts_err("fsync(\"%s\") failed: %s", l->part, strerror(errno));
        dl_fail(w, i, NODE_DL_FINALIZING, "fsync of the .part file failed");
        goto out;
    }
    /* the rename goes by name: the name must still be the file hashed */
    {
        struct stat a, b;

        if (fstat(fd, &a) != 0 || lstat(l->part, &b) != 0
            || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
        {
            dl_fail(w, i, NODE_DL_FINALIZING,
                    dl_part_why(ESTALE));
            goto out;
        }
    }
    if (renameat2(AT_FDCWD, l->part, AT_FDCWD, l->dest, RENAME_NOREPLACE)
        != 0)
    {
        char why[256];
        int  err = errno;

        /* EEXIST / ENOENT: a killed finalizer may have renamed it already */
        if ((err == EEXIST || err == ENOENT) && dl_dest_is_done(w, l)) {
            ts_info("download %s/%s: %s is already in place", l->group,
                    l->name, l->dest);
            goto durable;
        }
        ts_err("renameat2(\"%s\") failed: %s", l->dest, strerror(err));
        snprintf(why, sizeof(why), "cannot rename into place: %s",
                 err == EEXIST ? "destination exists" : strerror(err));
        dl_fail(w, i, NODE_DL_FINALIZING, why);
        goto out;
    }
durable:
    t2 = ts_now_ms();
    node_fsync_dir_of(l->dest);        /* the rename durable too */
    if (atomic_load(&d->id) == l->id) {
        atomic_store(&d->finished_ms, ts_wall_ms());
        atomic_store(&d->waiting, 0);
    }
    if (!dl_set_state(w, i, NODE_DL_FINALIZING, NODE_DL_DONE, NULL)) {
        goto out;
    }
    ts_info("download %s/%s done: %llu bytes -> %s (final hash %lld ms, "
            "fsync+rename %lld ms, dir fsync %lld ms)", l->group, l->name,
            (unsigned long long) l->size, l->dest, (long long) (t1 - t0),
            (long long) (t2 - t1), (long long) (ts_now_ms() - t2));
out:
    ts_claim_release(&d->finalize_owner, w->me);
    dl_local_drop(l);
}

/* Copies download i's ticket when the CLI has replaced it. */
static void
dl_ticket_refresh(dl_t *w, int i)
{
    dl_local_t *l = &w->loc[i];
    uint32_t    g, len, gen;

    g = atomic_load_explicit(&w->dls[i].ticket_gen, memory_order_acquire);
    if (g == l->tgen) {
        return;
    }
    if (node_dl_ticket(w->shm, i, l->ticket, sizeof(l->ticket), &len, &gen)
        == 0)
    {
        l->tlen = len;
        l->tgen = gen;
        l->dirty = 1;
    }
}

static void
dl_schedule(dl_t *w)
{
    int64_t now = ts_now_ms();
    int     i, progress;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        node_dl_sh_t *d = &w->dls[i];
        dl_local_t   *l = &w->loc[i];

        if (!dl_snapshot(w, i)
            || atomic_load(&d->state) != NODE_DL_ACTIVE)
        {
            continue;
        }
        if (atomic_load(&d->chunks_done) >= l->nchunks) {
            dl_finalize(w, i);
            continue;
        }
        dl_ticket_refresh(w, i);
        dl_maps(w, i, now);
        dl_maybe(w, i);
        dl_fh_advance(w, i, NULL, 0, TS_DL_FH_BATCH_N);
        if (l->dirty || now - l->avail_ms >= TS_DL_AVAIL_MS) {
            dl_avail(w, i, now);
        }
    }
    /* round-robin over downloads until our in-flight budget is used */
    do {
        progress = 0;
        for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
            if (w->inflight >= TS_NODE_WORKER_INFLIGHT_N) {
                return;
            }
            if (!w->loc[i].active
                || atomic_load(&w->dls[i].state) != NODE_DL_ACTIVE)
            {
                continue;
            }
            progress |= dl_pick(w, i, now);
        }
    } while (progress);
}

/* 1 if a usable source other than src has chunk c of download i */
static int
dl_chunk_elsewhere(dl_t *w, int i, int src, uint32_t c, int64_t now)
{
    node_dl_sh_t *d = &w->dls[i];
    int           s;

    for (s = 0; s < TS_NODE_SOURCES_N; s++) {
        if (s != src && dl_src_usable(&d->src[s], now)
            && atomic_load(&d->src[s].map_ms) != 0
            && node_bit_test(node_dl_map(w->shm, i, s), c))
        {
            return 1;
        }
    }
    return 0;
}

/*
 * A peer that keeps a chunk's reply trickling (a byte now and then, so the
 * no-byte timeout never fires) would hold the chunk's claim for as long
 * as it likes.  A GET reply that has taken more than TS_DL_GET_SLOW_MS is
 * given up when another source has the chunk: the link closes (the claim
 * goes back), the peer's rate estimate becomes what it really delivered,
 * and it is left alone for TS_DL_SLOW_PENALTY_MS.  The only holder of a
 * chunk is waited for, however slow.  1 if k was closed.
 */
static int
dl_slow_reply(dl_t *w, dl_conn_t *k, int64_t now)
{
    const dl_req_t *r = &k->q[k->qhead];
    node_src_sh_t  *src;
    int64_t         t0, age_us;
    uint64_t        got;
    char            why[128];

    if (k->c == NULL || k->qn == 0) {
        return 0;
    }
    t0 = r->sent_us > k->start_us ? r->sent_us : k->start_us;
    age_us = dl_now_us() - t0;
    if (age_us <= (int64_t) w->slow_ms * 1000) {
        return 0;
    }
    if (r->kind != REQ_GET) {
        /* a MAP or AUTH reply is a few KiB at most */
        dl_conn_close(w, k, 1, "reply too slow");
        return 1;
    }
    if (atomic_load(&w->dls[r->dl].id) != r->dl_id
        || !dl_chunk_elsewhere(w, r->dl, r->src, r->chunk, now))
    {
        return 0;
    }
    got = (k->rx == RX_DATA && r->len >= k->need) ? r->len - k->need : 0;
    src = &w->dls[r->dl].src[r->src];
    atomic_store(&src->rate_bps, got * 1000000ull / (uint64_t) age_us + 1);
    snprintf(why, sizeof(why), "chunk %u too slow (%llu of %u bytes in "
             "%lld ms)", r->chunk, (unsigned long long) got, r->len,
             (long long) (age_us / 1000));
    k->penalty_ms = TS_DL_SLOW_PENALTY_MS;
    dl_conn_close(w, k, 1, why);
    return 1;
}

/*
 * Frees links that are closed and no longer wanted, so the table (one
 * slot per peer identity ever met) cannot fill up for good: links closed
 * for TS_DL_LINK_LINGER_MS past their retry time, and, when the table is
 * more than three quarters full, every closed link past its retry time.
 * Runs between epoll batches only: an event of the current batch may
 * point at a link (data.ptr).
 */
static void
dl_conns_reap(dl_t *w, int64_t now)
{
    dl_conn_t *k;
    int        i, used = 0, crowded;

    for (i = 0; i < DL_CONNS_MAX; i++) {
        used += w->conns[i] != NULL;
    }
    crowded = used > DL_CONNS_MAX / 4 * 3;
    for (i = 0; i < DL_CONNS_MAX; i++) {
        k = w->conns[i];
        if (k == NULL || k->c != NULL || k->fd >= 0 || k->connecting
            || k->qn > 0 || now < k->retry_at_ms
            || (!crowded && now - k->closed_ms < TS_DL_LINK_LINGER_MS))
        {
            continue;
        }
        ts_wbuf_free(&k->out);
        free(k->small);
        free(k->data);
        free(k);
        w->conns[i] = NULL;
    }
}

static void
dl_timeouts(dl_t *w)
{
    int64_t now = ts_now_ms();
    int     i;

    dl_conns_reap(w, now);

    for (i = 0; i < DL_CONNS_MAX; i++) {
        dl_conn_t *k = w->conns[i];

        if (k != NULL && k->connecting && now >= k->connect_until_ms) {
            dl_conn_close(w, k, 1, "connect failed");
            continue;
        }
        if (k != NULL && k->c != NULL && k->hs
            && now >= k->connect_until_ms)
        {
            dl_conn_hs_fail(w, k, ETIMEDOUT);
            continue;
        }
        if (k != NULL && k->c != NULL && k->qn > 0
            && now - k->last_rx_ms > TS_NODE_PEER_TIMEOUT_MS)
        {
            dl_conn_close(w, k, 1, "timed out");
            continue;
        }
        if (k != NULL) {
            (void) dl_slow_reply(w, k, now);
        }
    }
}

static void
dl_cleanup(dl_t *w)
{
    int i;

    for (i = 0; i < DL_CONNS_MAX; i++) {
        dl_conn_t *k = w->conns[i];

        if (k == NULL) {
            continue;
        }
        dl_conn_close(w, k, 0, "");
        ts_wbuf_free(&k->out);
        free(k->small);
        free(k->data);
        free(k);
        w->conns[i] = NULL;
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        dl_local_drop(&w->loc[i]);
    }
    ts_wbuf_free(&w->pl);
    free(w->fbuf);
    if (w->ep >= 0) {
        close(w->ep);
    }
    if (w->tls != NULL) {
        ts_tls_ctx_free(w->tls);
        w->tls = NULL;
    }
}

int
dl_main(const ts_worker_ctx_t *ctx)
{
    static dl_t         w;
    struct epoll_event  evs[64], ev;
    ts_slot_sh_t       *slot = NULL;
    uint32_t            cap = 0;
    int                 i, n, sfd;
    int64_t             last_sched = 0, now;

    memset(&w, 0, sizeof(w));
    w.ctx = ctx;
    w.node = (const node_t *) ctx->arg;
    w.slow_ms = w.node->opts.slow_chunk_ms > 0 ? w.node->opts.slow_chunk_ms
                                               : TS_DL_GET_SLOW_MS;
    w.shm = w.node != NULL ? &w.node->shm : NULL;
    w.me = ts_owner_make(getpid(), ctx->generation);
    w.slot = ctx->slot;
    w.ep = -1;
    if (w.shm == NULL || w.slot < 0 || w.slot >= TS_SUP_WORKERS_MAX_N) {
        ts_err("downloader: no segment or bad slot");
        return 2;
    }
    {
        char err[256];

        /* our node certificate goes to every peer: its fingerprint is
         * the identity our tickets name */
        w.tls = ts_tls_ctx_new(TS_TLS_PEER_CLIENT, w.node->opts.crt_path,
                               w.node->opts.key_path, NULL, err,
                               sizeof(err));
        if (w.tls == NULL) {
            ts_err("downloader: TLS setup failed: %s", err);
            return 2;
        }
    }
    w.dls = node_dls(w.shm);
    w.stats = node_stats(w.shm);
    if (w.dls == NULL || w.stats == NULL) {
        ts_err("downloader: segment without downloads table");
        return 2;
    }
    if (ts_shm_table(w.shm, NODE_T_SLOTS, &cap, NULL) != NULL
        && (uint32_t) w.slot < cap)
    {
        slot = &node_slots(w.shm)[w.slot];
    }
    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        w.loc[i].fd = -1;
    }
    w.rnd = ts_random_u64() | 1;
    ts_wbuf_init(&w.pl);
    w.fbuf = malloc(TS_DL_FINAL_BLOCK_B);
    w.ep = epoll_create1(EPOLL_CLOEXEC);
    if (w.fbuf == NULL || w.ep < 0) {
        ts_err("downloader init failed: %s", strerror(errno));
        dl_cleanup(&w);
        return 1;
    }
    sfd = ts_worker_stop_fd();
    if (sfd >= 0) {
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = NULL;
        epoll_ctl(w.ep, EPOLL_CTL_ADD, sfd, &ev);
    }
    if (slot != NULL) {
        ts_slot_set_active(slot, w.me);
    }
    ts_worker_ready(ctx);
    ts_debug("downloader ready (slot %d)", w.slot);

    while (!ts_worker_stopping()) {
        int need = 0;

        n = epoll_wait(w.ep, evs, 64, TS_NODE_IDLE_POLL_MS);
        if (n < 0 && errno != EINTR) {
            ts_err("epoll_wait() failed: %s", strerror(errno));
            break;
        }
        for (i = 0; i < n; i++) {
            dl_conn_t *k = evs[i].data.ptr;
            int        before;

            if (k != NULL && k->connecting) {
                dl_conn_connected(&w, k);
                need = 1;
                continue;
            }
            if (k == NULL || k->c == NULL) {
                continue;
            }
            if (k->hs) {
                /* the handshake reads and writes as it needs */
                (void) dl_conn_input(&w, k);
                need = 1;
                continue;
            }
            if ((evs[i].events & EPOLLOUT) || k->woff < k->out.len) {
                if (dl_conn_flush(&w, k) != 0) {
                    dl_conn_close(&w, k, 1, "write failed");
                    need = 1;
                    continue;
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                before = k->qn;
                if (dl_conn_input(&w, k) != 0 || k->qn != before) {
                    need = 1;
                }
            }
        }
        now = ts_now_ms();
        if (w.need) {
            need = 1;
            w.need = 0;
        }
        if (need || now - last_sched >= TS_NODE_IDLE_POLL_MS) {
            dl_timeouts(&w);
            dl_schedule(&w);
            last_sched = now;
            if (slot != NULL && atomic_load(&slot->owner) == w.me) {
                ts_slot_beat(slot);
            }
        }
        if (ts_worker_orphaned(ctx)) {
            break;
        }
    }
    dl_cleanup(&w);
    return 0;
}
