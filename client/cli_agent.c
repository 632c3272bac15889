/*
 * cli_agent.c -- the CLI's background agent between the node's shm,
 * node.tdb and the trackers (see cli_agent.h for what it does when).
 *
 * Model: the agent keeps one entry per download of the logged-in user
 * (running, paused, done or failed), each with the record as last
 * written to node.tdb plus flags saying what the tracker still has to
 * be told.  A running download also has its index in the node's
 * download table (idx); a finished or failed one is taken out of shm (a
 * finished one lives on as a share), so the table only holds work.
 *
 * Locking: agent.mu guards the entries, node.tdb (cli_state_t is not
 * thread-safe) and every CLI-side write into shm.  The agent thread
 * collects its tracker work under the lock, drops it for the network,
 * and applies results afterwards by entry serial (an entry that went
 * away meanwhile is simply not found).  Workers never take this lock:
 * they only see shm atomics and seqlocked text.
 * Crash behaviour: a verified chunk reaches node.tdb at most
 * TS_NODE_PERSIST_MS after the downloader marked it, always before it is
 * advertised; a kill loses at most that window, and those chunks are
 * re-hashed from the .part at the next login (maybe bitmap).  A finished
 * download and its new share commit in one transaction.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_log.h"
#include "ts_net.h"
#include "ts_proto.h"
#include "ts_ticket.h"
#include "node.h"
#include "node_shm.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_session.h"
#include "cli_state.h"
#include "cli_node.h"
#include "cli_agent.h"


typedef struct {
    int64_t   ms;
    uint64_t  bytes;
} cli_sample_t;

typedef struct {
    cli_dl_rec_t  rec;              /* as written (or to write) to node.tdb */
    uint64_t      serial;
    int           idx;              /* node download index, -1 = not in shm */
    int           dirty;            /* rec not yet in node.tdb */
    int           have_dirty;       /* tracker lacks the latest bitmap */
    int           have_complete;    /* tracker must hear complete=1 */
    int           advertised;       /* tracker knows us as a source */
    int           need_stop;        /* failed after advertising */
    int64_t       next_src_ms;
    int64_t       ticket_exp_ms;    /* wall clock; 0 = none in shm yet */
    int64_t       ticket_renew_ms;  /* renew when less than this is left */
    cli_sample_t  samp[TS_CLI_RATE_SAMPLES_N];
    int           nsamp, head;
} cli_dlent_t;

typedef struct {
    char  group[TS_ID_MAX_B + 1];
    char  name[TS_NAME_MAX_B + 1];
} cli_gname_t;

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
} cli_work_t;

static struct {
    pthread_mutex_t  mu;
    pthread_cond_t   cond;
    pthread_t        th;
    int              running;
    int              stop;
    cli_ctx_t       *ctx;
    cli_state_t     *st;
    cli_rpc_t        rpc;
    int              rpc_ok;
    int            (*stop_check)(void);
    char             user[TS_ID_MAX_B + 1];   /* whose state is loaded */
    int              paused;
    cli_dlent_t    **dls;
    int              ndls, cap;
    uint64_t         next_serial;
    int              failures;                /* this run */
    cli_gname_t     *stops;                   /* STOP_SHARE to send */
    int              nstops, stopcap;
} agent = { .mu = PTHREAD_MUTEX_INITIALIZER };


/* ---- helpers ---------------------------------------------------------- */

static ts_shm_t *
cli_shm(void)
{
    node_t  *n = cli_node_get();

    return n != NULL ? &n->shm : NULL;
}


void
cli_quote_name(const char *name, char *out, size_t outsz)
{
    size_t       o = 0;
    const char  *p;

    if (outsz == 0) {
        return;
    }
    if (name[0] != '\0' && strpbrk(name, " \t\"'\\") == NULL) {
        snprintf(out, outsz, "%s", name);
        return;
    }
    /* worst case 2 bytes per char + quotes + NUL */
    if (outsz < 3) {
        out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (p = name; *p != '\0' && o + 3 < outsz; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
        }
        out[o++] = *p;
    }
    out[o++] = '"';
    out[o] = '\0';
}


void
cli_finfo_free(cli_finfo_t *fi)
{
    free(fi->hashes);
    fi->hashes = NULL;
}


int
cli_finfo_parse(ts_rbuf_t *r, cli_finfo_t *fi)
{
    char            addr[TS_STR_MAX_B + 1];
    uint8_t         fp[TS_FP_B];
    const uint8_t  *tk;
    uint32_t        n, i, tlen;
    int             complete, j, pass;
    cli_src_t       tmp[TS_NODE_SOURCES_N * 2];
    int             ntmp = 0;

    memset(fi, 0, sizeof(*fi));
    fi->size = ts_get_u64(r);
    ts_get_raw(r, fi->sha1, 20);
    fi->nchunks = ts_get_u32(r);
    if (r->err || fi->size > TS_FILE_MAX_B
        || fi->nchunks != cli_nchunks(fi->size)
        || 20ull * fi->nchunks > ts_rbuf_left(r))
    {
        return -1;
    }
    if (fi->nchunks > 0) {
        fi->hashes = malloc(20ull * fi->nchunks);
        if (fi->hashes == NULL) {
            return -1;
        }
        ts_get_raw(r, fi->hashes, 20ull * fi->nchunks);
    }
    n = ts_get_u32(r);
    /* each source takes at least 2 + 1 + 4 + TS_FP_B bytes */
    if (r->err || n > ts_rbuf_left(r) / (7 + TS_FP_B)) {
        cli_finfo_free(fi);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (ts_get_str(r, addr, sizeof(addr)) != 0) {
            break;
        }
        complete = ts_get_u8(r) != 0;
        (void) ts_get_u32(r);
        ts_get_raw(r, fp, TS_FP_B);
        if (r->err) {
            break;
        }
        if (addr[0] == '\0' || strlen(addr) >= sizeof(tmp[0].addr)
            || ntmp == (int) (sizeof(tmp) / sizeof(tmp[0])))
        {
            continue;
        }
        memcpy(tmp[ntmp].addr, addr, strlen(addr) + 1);
        tmp[ntmp].complete = complete;
        memcpy(tmp[ntmp].fp, fp, TS_FP_B);
        ntmp++;
    }
    if (i < n) {
        cli_finfo_free(fi);
        return -1;
    }
    /* the ticket: opaque here (the peers verify it), only bounded */
    tk = ts_get_blob(r, &tlen, TS_TICKET_MAX_B);
    if (r->err || ts_rbuf_end(r) != 0) {
        cli_finfo_free(fi);
        return -1;
    }
    if (tlen > 0 && tk != NULL) {
        memcpy(fi->ticket, tk, tlen);
        fi->ticket_len = tlen;
    }
    /* complete sources first when there are more than we can keep */
    for (pass = 1; pass >= 0; pass--) {
        for (j = 0; j < ntmp && fi->nsrc < TS_NODE_SOURCES_N; j++) {
            if (tmp[j].complete == pass) {
                fi->src[fi->nsrc++] = tmp[j];
            }
        }
    }
    return 0;
}


/* 1 if fp is this node's own identity */
static int
cli_fp_is_mine(const uint8_t fp[TS_FP_B])
{
    static const uint8_t  zero[TS_FP_B];

    return agent.ctx != NULL
           && memcmp(agent.ctx->node_fp, zero, TS_FP_B) != 0
           && memcmp(fp, agent.ctx->node_fp, TS_FP_B) == 0;
}


static void
cli_set_sources(ts_shm_t *shm, int idx, const cli_finfo_t *fi)
{
    const char    *addrs[TS_NODE_SOURCES_N] = { NULL };
    int            complete[TS_NODE_SOURCES_N] = { 0 };
    uint8_t        fps[TS_NODE_SOURCES_N * TS_FP_B] = { 0 };
    node_dl_sh_t  *d;
    int            i, j, n = 0;

    for (i = 0; i < fi->nsrc; i++) {
        /* never ourselves, whatever the tracker says */
        if ((agent.ctx != NULL && strcmp(fi->src[i].addr,
                                         agent.ctx->node_addr) == 0)
            || cli_fp_is_mine(fi->src[i].fp))
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
static void
cli_ticket_apply(ts_shm_t *shm, cli_dlent_t *e, const cli_finfo_t *fi,
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
static int64_t
cli_next_info_ms(const cli_dlent_t *e, int64_t now)
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


static void
cli_bitmap_from_shm(ts_shm_t *shm, int idx, uint32_t nchunks, uint8_t *out)
{
    _Atomic uint64_t  *bm = node_dl_done(shm, idx);
    size_t             nb = cli_bitmap_b(nchunks), b;
    uint64_t           v = 0;

    for (b = 0; b < nb; b++) {
        if ((b & 7) == 0) {
            v = atomic_load_explicit(&bm[b >> 3], memory_order_acquire);
        }
        out[b] = (uint8_t) (v >> ((b & 7) * 8));
    }
    if (nchunks & 7) {
        out[nb - 1] &= (uint8_t) ((1u << (nchunks & 7)) - 1);
    }
}


static void
cli_bitmap_fill(uint8_t *bm, uint32_t nchunks)
{
    size_t  nb = cli_bitmap_b(nchunks);

    if (nb == 0) {
        return;
    }
    memset(bm, 0xff, nb);
    if (nchunks & 7) {
        bm[nb - 1] = (uint8_t) ((1u << (nchunks & 7)) - 1);
    }
}


static int
cli_bitmap_any(const uint8_t *bm, uint32_t nchunks)
{
    size_t  i, nb = cli_bitmap_b(nchunks);

    for (i = 0; i < nb; i++) {
        if (bm[i] != 0) {
            return 1;
        }
    }
    return 0;
}


static uint64_t
cli_chunk_len(uint64_t size, uint32_t nchunks, uint32_t c)
{
    return (c + 1 == nchunks) ? size - (uint64_t) c * TS_CHUNK_B : TS_CHUNK_B;
}


static cli_dlent_t *
cli_ent_find(const char *group, const char *name)
{
    int  i;

    for (i = 0; i < agent.ndls; i++) {
        if (strcmp(agent.dls[i]->rec.group, group) == 0
            && strcmp(agent.dls[i]->rec.name, name) == 0)
        {
            return agent.dls[i];
        }
    }
    return NULL;
}


static cli_dlent_t *
cli_ent_by_serial(uint64_t serial)
{
    int  i;

    for (i = 0; i < agent.ndls; i++) {
        if (agent.dls[i]->serial == serial) {
            return agent.dls[i];
        }
    }
    return NULL;
}


static void
cli_ent_free(cli_dlent_t *e)
{
    ts_shm_t  *shm = cli_shm();

    if (e->idx >= 0 && shm != NULL) {
        node_dl_remove(shm, e->idx);
    }
    cli_dl_free(&e->rec);
    free(e);
}


static void
cli_ent_drop(cli_dlent_t *e)
{
    int  i;

    for (i = 0; i < agent.ndls; i++) {
        if (agent.dls[i] == e) {
            memmove(&agent.dls[i], &agent.dls[i + 1],
                    (size_t) (agent.ndls - i - 1) * sizeof(agent.dls[0]));
            agent.ndls--;
            break;
        }
    }
    cli_ent_free(e);
}


/* Takes rec's arrays.  NULL when out of memory. */
static cli_dlent_t *
cli_ent_new(cli_dl_rec_t *rec)
{
    cli_dlent_t   *e, **nd;
    int            ncap;

    if (agent.ndls == agent.cap) {
        ncap = agent.cap ? agent.cap * 2 : 16;
        nd = realloc(agent.dls, (size_t) ncap * sizeof(*nd));
        if (nd == NULL) {
            cli_dl_free(rec);
            return NULL;
        }
        agent.dls = nd;
        agent.cap = ncap;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        cli_dl_free(rec);
        return NULL;
    }
    e->rec = *rec;
    rec->hashes = NULL;
    rec->done = NULL;
    e->serial = ++agent.next_serial;
    e->idx = -1;
    agent.dls[agent.ndls++] = e;
    return e;
}


static void
cli_queue_stop(const char *group, const char *name)
{
    cli_gname_t  *ns;
    int           ncap, i;

    for (i = 0; i < agent.nstops; i++) {
        if (strcmp(agent.stops[i].group, group) == 0
            && strcmp(agent.stops[i].name, name) == 0)
        {
            return;
        }
    }
    if (agent.nstops == agent.stopcap) {
        ncap = agent.stopcap ? agent.stopcap * 2 : 8;
        ns = realloc(agent.stops, (size_t) ncap * sizeof(*ns));
        if (ns == NULL) {
            return;
        }
        agent.stops = ns;
        agent.stopcap = ncap;
    }
    snprintf(agent.stops[agent.nstops].group, sizeof(ns->group), "%s",
             group);
    snprintf(agent.stops[agent.nstops].name, sizeof(ns->name), "%s", name);
    agent.nstops++;
}


static void
cli_unqueue_stop(const char *group, const char *name)
{
    int  i;

    for (i = 0; i < agent.nstops; i++) {
        if (strcmp(agent.stops[i].group, group) == 0
            && strcmp(agent.stops[i].name, name) == 0)
        {
            agent.stops[i] = agent.stops[--agent.nstops];
            return;
        }
    }
}


/* ---- shm <-> entries (agent.mu held) --------------------------------- */

/* Finished and failed downloads stay in the node's table (readers of the
 * segment see how they ended) until a new download needs the room: then
 * the one that ended first goes.  1 if a slot is free now. */
static int
cli_dl_room(ts_shm_t *shm)
{
    node_dl_sh_t  *dls = node_dls(shm);
    cli_dlent_t   *e, *old = NULL;
    int            i;

    for (i = 0; i < TS_NODE_DOWNLOADS_N; i++) {
        if (atomic_load(&dls[i].state) == NODE_DL_FREE) {
            return 1;
        }
    }
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE && e->idx >= 0
            && (old == NULL || e->serial < old->serial))
        {
            old = e;
        }
    }
    if (old == NULL) {
        return 0;
    }
    node_dl_remove(shm, old->idx);
    old->idx = -1;
    return 1;
}


static void cli_ent_finish(cli_dlent_t *e, ts_shm_t *shm);
static void cli_ent_fail(cli_dlent_t *e, ts_shm_t *shm, const char *why);

/* 1 if path is a regular file (not a symlink) of the record's size whose
 * SHA1 is the record's: the finished file, renamed into place by a
 * downloader killed before DONE was recorded. */
static int
cli_dest_is_done(const cli_dl_rec_t *r)
{
    struct stat  sb;
    ts_sha1_t   *h;
    uint8_t      md[20], *buf;
    uint64_t     off;
    ssize_t      n = 0;
    int          fd;

    /* the renamed .part keeps its inode: nothing else is ours */
    fd = node_open_part(r->dest, O_RDONLY, &r->part_id);
    if (fd < 0) {
        return 0;
    }
    if (fstat(fd, &sb) != 0 || (uint64_t) sb.st_size != r->size) {
        close(fd);
        return 0;
    }
    buf = malloc(TS_CHUNK_B);
    h = ts_sha1_new();
    if (buf == NULL || h == NULL) {
        free(buf);
        ts_sha1_free(h);
        close(fd);
        return 0;
    }
    for (off = 0; off < r->size; off += (uint64_t) n) {
        size_t want = r->size - off < TS_CHUNK_B ? r->size - off
                                                 : TS_CHUNK_B;

        n = pread(fd, buf, want, (off_t) off);
        if (n < 0 && errno == EINTR) {
            n = 0;
            continue;
        }
        if (n <= 0) {
            break;
        }
        ts_sha1_update(h, buf, (size_t) n);
    }
    ts_sha1_final(h, md);
    ts_sha1_free(h);
    free(buf);
    close(fd);
    return off == r->size && memcmp(md, r->sha1, 20) == 0;
}

int
cli_agent_part_create(const char *part, node_fid_t *id, char *err,
                      size_t errsz)
{
    int          fd;

    fd = open(part, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              0644);
    if (fd < 0) {
        if (errno == EEXIST) {
            snprintf(err, errsz, "'%s' already exists", part);
        } else {
            snprintf(err, errsz, "cannot create '%s': %s", part,
                     strerror(errno));
        }
        return -1;
    }
    if (node_fid_of(fd, id) != 0) {
        snprintf(err, errsz, "cannot create '%s': %s", part,
                 strerror(errno));
        close(fd);
        (void) unlink(part);
        return -1;
    }
    close(fd);
    node_fsync_dir_of(part);
    return 0;
}


void
cli_agent_part_unlink(const char *part, const node_fid_t *id)
{
    int fd = node_open_part(part, O_RDONLY, id);

    if (fd >= 0) {
        close(fd);
        (void) unlink(part);
    }
}


/* The .part of a download being put back (a node start, a login): 1 and
 * its size in *have if it is there and is the download's own file (a
 * version-1 record adopts the regular file it finds and pins it); 0 if
 * it is missing and was made anew (empty); -1 with the reason in why if
 * another file has taken its name or it cannot be made. */
static int
cli_part_reopen(cli_dlent_t *e, uint64_t *have, char *why, size_t whysz)
{
    static const node_fid_t  zero;
    cli_dl_rec_t            *r = &e->rec;
    struct stat              sb;
    char                     err[PATH_MAX + 64];
    int                      fd, unpinned;

    *have = 0;
    unpinned = memcmp(&r->part_id, &zero, sizeof(zero)) == 0;
    fd = node_open_part(r->part, O_RDONLY, unpinned ? NULL : &r->part_id);
    if (fd >= 0) {
        if (fstat(fd, &sb) != 0 || (unpinned
                                    && node_fid_of(fd, &r->part_id) != 0))
        {
            snprintf(why, whysz, "cannot use '%s': %s", r->part,
                     strerror(errno));
            close(fd);
            return -1;
        }
        close(fd);
        e->dirty |= unpinned;
        *have = (uint64_t) sb.st_size;
        return 1;
    }
    if (errno != ENOENT) {
        snprintf(why, whysz, "another file has taken the name of '%s'; "
                 "not adopted", r->part);
        return -1;
    }
    if (cli_agent_part_create(r->part, &r->part_id, err, sizeof(err)) != 0) {
        snprintf(why, whysz, "%s", err);
        return -1;
    }
    e->dirty = 1;
    return 0;
}

/* Puts a running entry into the node's table: done from the record,
 * maybe = the rest of an existing .part (a regular file, never through a
 * symlink).  With no .part and the finished file already at dest, the
 * entry is finished instead (idx stays -1).  0, or -1 (table full). */
static int
cli_ent_publish(cli_dlent_t *e)
{
    ts_shm_t     *shm = cli_shm();
    cli_dl_rec_t *r = &e->rec;
    uint8_t      *maybe = NULL;
    struct stat   sb;
    uint64_t      have;
    uint32_t      c;
    int           idx, cleared = 0;
    char          why[PATH_MAX + 128];

    if (shm == NULL) {
        return -1;
    }
    if (lstat(r->part, &sb) != 0 && errno == ENOENT && agent.st != NULL
        && cli_dest_is_done(r))
    {
        ts_info("%s/%s: %s is already complete", r->group, r->name,
                r->dest);
        cli_ent_finish(e, shm);
        return 0;
    }
    if (!cli_dl_room(shm)) {
        return -1;
    }
    if (cli_part_reopen(e, &have, why, sizeof(why)) < 0) {
        ts_err("%s/%s: %s", r->group, r->name, why);
        cli_ent_fail(e, shm, why);
        return 0;
    }
    if (r->nchunks > 0) {
        maybe = calloc(cli_bitmap_b(r->nchunks), 1);
        if (maybe == NULL) {
            return -1;
        }
        for (c = 0; c < r->nchunks; c++) {
            uint64_t off = (uint64_t) c * TS_CHUNK_B;
            int      done = (r->done[c >> 3] >> (c & 7)) & 1;

            /* a chunk recorded as verified must still be on disk */
            if (done && off + cli_chunk_len(r->size, r->nchunks, c) > have) {
                r->done[c >> 3] &= (uint8_t) ~(1u << (c & 7));
                done = 0;
                cleared++;
            }
            if (!done && off < have) {
                maybe[c >> 3] |= (uint8_t) (1u << (c & 7));
            }
        }
        if (cleared > 0) {
            ts_warn("%s/%s: %d verified chunks missing from %s; fetching "
                    "them again", r->group, r->name, cleared, r->part);
            e->dirty = 1;
        }
    }
    idx = node_dl_add(shm, r->group, r->name, r->dest, r->part, &r->part_id,
                      r->size, r->nchunks, r->sha1, r->hashes,
                      r->done, maybe);
    free(maybe);
    if (idx < 0) {
        return -1;
    }
    e->idx = idx;
    e->nsamp = 0;
    e->head = 0;
    e->next_src_ms = 0;
    e->ticket_exp_ms = 0;       /* a fresh entry: the next FILE_INFO's */
    if (agent.paused) {
        uint32_t act = NODE_DL_ACTIVE;

        atomic_compare_exchange_strong(&node_dls(shm)[idx].state, &act,
                                       NODE_DL_PAUSED);
    }
    return 0;
}


static void
cli_ent_sample(cli_dlent_t *e, int64_t now, uint64_t bytes)
{
    e->samp[e->head].ms = now;
    e->samp[e->head].bytes = bytes;
    e->head = (e->head + 1) % TS_CLI_RATE_SAMPLES_N;
    if (e->nsamp < TS_CLI_RATE_SAMPLES_N) {
        e->nsamp++;
    }
}


/* A finished download becomes a share; both records in one transaction. */
static void
cli_ent_finish(cli_dlent_t *e, ts_shm_t *shm)
{
    cli_dl_rec_t     *r = &e->rec;
    cli_share_rec_t   sr;
    struct stat       sb;
    int               ok;

    r->state = CLI_DL_DONE;
    r->error[0] = '\0';
    if (r->nchunks > 0) {
        cli_bitmap_fill(r->done, r->nchunks);
    }
    /* the entry stays in shm (DONE) until its slot is needed */

    memset(&sr, 0, sizeof(sr));
    snprintf(sr.group, sizeof(sr.group), "%s", r->group);
    snprintf(sr.name, sizeof(sr.name), "%s", r->name);
    snprintf(sr.path, sizeof(sr.path), "%s", r->dest);
    sr.size = r->size;
    sr.nchunks = r->nchunks;
    memcpy(sr.sha1, r->sha1, 20);
    ok = stat(r->dest, &sb) == 0 && S_ISREG(sb.st_mode)
         && (uint64_t) sb.st_size == r->size;
    if (ok) {
        sr.mtime_ns = (int64_t) sb.st_mtim.tv_sec * 1000000000LL
                      + sb.st_mtim.tv_nsec;
        if (node_share_add(shm, sr.group, sr.name, sr.path, sr.size,
                           sr.mtime_ns, sr.nchunks) < 0)
        {
            ts_warn("%s/%s: cannot serve the finished file (share table "
                    "full)", sr.group, sr.name);
            ok = 0;
        }
    } else {
        ts_warn("%s/%s: finished file %s is gone or changed", sr.group,
                sr.name, r->dest);
    }

    if (cli_state_begin(agent.st) == 0) {
        if (cli_state_dl_put(agent.st, agent.user, r) == 0
            && (!ok || cli_state_share_put(agent.st, agent.user, &sr) == 0)
            && cli_state_commit(agent.st) == 0)
        {
            e->dirty = 0;
        } else {
            cli_state_cancel(agent.st);
            e->dirty = 1;
        }
    } else {
        e->dirty = 1;
    }
    e->have_dirty = 0;
    e->have_complete = ok;
    e->need_stop = !ok && e->advertised;
    ts_info("downloaded %s/%s -> %s", r->group, r->name, r->dest);
}


static void
cli_ent_fail(cli_dlent_t *e, ts_shm_t *shm, const char *why)
{
    cli_dl_rec_t  *r = &e->rec;

    r->state = CLI_DL_FAILED;
    snprintf(r->error, sizeof(r->error), "%s",
             why != NULL && why[0] != '\0' ? why : "failed");
    /* the node's own FAILED entry stays; one the agent gave up on (still
     * running in shm) is taken away from the downloaders */
    if (e->idx >= 0 && shm != NULL) {
        uint32_t st = atomic_load(&node_dls(shm)[e->idx].state);

        /* a FINALIZING entry may be renaming the file right now and a
         * DONE one has: never pull those from under the downloader (the
         * collector still sees them and the entry is kept for its slot) */
        if (st != NODE_DL_FAILED && st != NODE_DL_FINALIZING
            && st != NODE_DL_DONE)
        {
            node_dl_remove(shm, e->idx);
            e->idx = -1;
        }
    }
    e->dirty = 1;
    e->have_dirty = 0;
    e->have_complete = 0;
    e->need_stop = e->advertised;
    agent.failures++;
    ts_warn("download %s/%s failed: %s", r->group, r->name, r->error);
}


/* Reads the node's progress into the entries; persists what changed. */
static void
cli_agent_collect(int64_t now)
{
    ts_shm_t      *shm = cli_shm();
    node_dl_sh_t  *d, snap;
    cli_dlent_t   *e;
    uint8_t       *bm = NULL;
    size_t         bmcap = 0, nb;
    uint32_t       state;
    int            i, dirty;

    if (shm == NULL) {
        return;
    }
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE) {
            continue;
        }
        if (e->idx < 0) {
            /* restored while the table was full: try again */
            if (!agent.paused) {
                (void) cli_ent_publish(e);
            }
            continue;
        }
        d = &node_dls(shm)[e->idx];
        state = atomic_load_explicit(&d->state, memory_order_acquire);

        nb = cli_bitmap_b(e->rec.nchunks);
        if (nb > 0) {
            if (nb > bmcap) {
                uint8_t *nbm = realloc(bm, nb);

                if (nbm == NULL) {
                    continue;
                }
                bm = nbm;
                bmcap = nb;
            }
            cli_bitmap_from_shm(shm, e->idx, e->rec.nchunks, bm);
            /* only ever add bits: a verified chunk stays verified */
            if (memcmp(bm, e->rec.done, nb) != 0) {
                size_t k;

                for (k = 0; k < nb; k++) {
                    e->rec.done[k] |= bm[k];
                }
                e->dirty = 1;
                e->have_dirty = 1;
            }
        }
        cli_ent_sample(e, now, atomic_load(&d->bytes_done));

        if (state == NODE_DL_DONE) {
            cli_ent_finish(e, shm);
        } else if (state == NODE_DL_FAILED) {
            if (node_dl_snapshot(shm, e->idx, &snap) != 0) {
                snap.error[0] = '\0';
            }
            snap.error[sizeof(snap.error) - 1] = '\0';
            cli_ent_fail(e, shm, snap.error);
        }
    }
    free(bm);

    dirty = 0;
    for (i = 0; i < agent.ndls; i++) {
        dirty |= agent.dls[i]->dirty;
    }
    if (!dirty || agent.st == NULL || cli_state_begin(agent.st) != 0) {
        return;
    }
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        if (e->dirty && cli_state_dl_put(agent.st, agent.user, &e->rec)
                        != 0)
        {
            cli_state_cancel(agent.st);
            return;
        }
    }
    if (cli_state_commit(agent.st) == 0) {
        for (i = 0; i < agent.ndls; i++) {
            agent.dls[i]->dirty = 0;
        }
    }
}


/* Shares the uploaders found changed on disk: dropped and reported. */
static void
cli_agent_stale(void)
{
    ts_shm_t         *shm = cli_shm();
    node_share_sh_t  *sh, snap;
    int               i;

    if (shm == NULL || (sh = node_shares(shm)) == NULL) {
        return;
    }
    for (i = 0; i < TS_NODE_SHARES_N; i++) {
        if (atomic_load_explicit(&sh[i].state, memory_order_acquire)
            != NODE_SHARE_STALE)
        {
            continue;
        }
        if (node_share_snapshot(shm, i, &snap) != 0) {
            continue;
        }
        fprintf(stderr, "warning: %s changed on disk; no longer sharing "
                "'%s' in '%s'\n", snap.path, snap.name, snap.group);
        node_share_remove(shm, i);
        if (agent.st != NULL) {
            (void) cli_state_share_del(agent.st, agent.user, snap.group,
                                       snap.name);
        }
        cli_queue_stop(snap.group, snap.name);
    }
}


/* ---- the thread ------------------------------------------------------- */

static int
cli_work_add(cli_work_t **w, int *n, int *cap, cli_wkind_t kind,
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
    snprintf(nw->group, sizeof(nw->group), "%s", group);
    snprintf(nw->name, sizeof(nw->name), "%s", name);
    return 0;
}


/* Under the lock: what the tracker must hear or be asked. */
static int
cli_agent_plan(int64_t now, cli_work_t **w, int *cap)
{
    cli_dlent_t  *e;
    cli_work_t   *x;
    int           i, n = 0;
    size_t        nb;

    for (i = 0; i < agent.nstops; i++) {
        cli_work_add(w, &n, cap, CLI_W_STOP, 0, agent.stops[i].group,
                     agent.stops[i].name);
    }
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        nb = cli_bitmap_b(e->rec.nchunks);
        if (e->need_stop) {
            cli_work_add(w, &n, cap, CLI_W_STOP, e->serial, e->rec.group,
                         e->rec.name);
            continue;
        }
        if ((e->have_complete || e->have_dirty)
            && cli_work_add(w, &n, cap, CLI_W_HAVE, e->serial, e->rec.group,
                            e->rec.name) == 0)
        {
            x = &(*w)[n - 1];
            x->complete = e->have_complete;
            x->bmlen = (uint32_t) nb;
            if (nb > 0) {
                x->bitmap = malloc(nb);
                if (x->bitmap == NULL) {
                    n--;
                } else if (e->have_complete) {
                    cli_bitmap_fill(x->bitmap, e->rec.nchunks);
                } else {
                    memcpy(x->bitmap, e->rec.done, nb);
                }
            }
            /* nothing verified yet: nothing to advertise */
            if (!e->have_complete && nb > 0 && x->bitmap != NULL
                && !cli_bitmap_any(x->bitmap, e->rec.nchunks))
            {
                free(x->bitmap);
                n--;
                e->have_dirty = 0;
            }
        }
        if (e->rec.state == CLI_DL_ACTIVE && e->idx >= 0 && !agent.paused
            && now >= e->next_src_ms)
        {
            e->next_src_ms = cli_next_info_ms(e, now);
            cli_work_add(w, &n, cap, CLI_W_INFO, e->serial, e->rec.group,
                         e->rec.name);
        }
    }
    return n;
}


/* Without the lock: one request. */
static void
cli_agent_do(cli_work_t *x, const uint8_t tok[TS_TOKEN_B])
{
    ts_wbuf_t    req;
    cli_reply_t  rep;
    uint8_t      type;

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
    x->ok = 0;
    if (req.err || req.len > TS_FRAME_MAX_B) {
        ts_wbuf_free(&req);
        return;
    }
    if (cli_rpc_call_ex(&agent.rpc, type, req.data, (uint32_t) req.len,
                        &rep, agent.ctx->sess->trk.n > 1 ? 2 : 1,
                        TS_CLI_AGENT_RPC_MS) != 0)
    {
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
        cli_session_lost(agent.ctx->sess, tok);
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
cli_agent_apply(cli_work_t *x)
{
    ts_shm_t     *shm = cli_shm();
    cli_dlent_t  *e;
    char          why[TS_NAME_MAX_B + TS_ID_MAX_B + 64];

    if (!x->ok) {
        return;
    }
    e = x->serial != 0 ? cli_ent_by_serial(x->serial) : NULL;
    switch (x->kind) {
    case CLI_W_STOP:
        if (x->status == TS_OK || x->status == TS_ERR_NOTFOUND
            || x->status == TS_ERR_PERM)
        {
            if (x->serial == 0) {
                cli_unqueue_stop(x->group, x->name);
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
                cli_ent_fail(e, shm, "the file changed on the tracker");
            } else {
                /* the ticket first: downloaders that see a new source
                 * have the ticket to show it.  One a peer refused (its
                 * clock runs ahead, say) is replaced at once, not only
                 * when it is due for renewal. */
                cli_ticket_apply(shm, e, &x->fi,
                                 atomic_load(&node_dls(shm)[e->idx].denied)
                                 != 0);
                cli_set_sources(shm, e->idx, &x->fi);
                e->next_src_ms = cli_next_info_ms(e, ts_now_ms());
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
            cli_ent_fail(e, shm, why);
        }
        break;
    }
}


static void
cli_agent_tick(void)
{
    cli_work_t  *w = NULL;
    uint8_t      tok[TS_TOKEN_B];
    char         user[TS_ID_MAX_B + 1];
    int64_t      now = ts_now_ms();
    int          n, cap = 0, i, online;

    user[0] = '\0';
    pthread_mutex_lock(&agent.mu);
    if (agent.user[0] == '\0') {
        pthread_mutex_unlock(&agent.mu);
        return;
    }
    cli_agent_collect(now);
    cli_agent_stale();
    online = !agent.paused
             && cli_session_get(agent.ctx->sess, user, sizeof(user), tok)
             && strcmp(user, agent.user) == 0;
    n = online ? cli_agent_plan(now, &w, &cap) : 0;
    pthread_mutex_unlock(&agent.mu);

    for (i = 0; i < n; i++) {
        pthread_mutex_lock(&agent.mu);
        /* stopping: the rest waits for the next start (node.tdb has it) */
        if (agent.stop) {
            w[i].ok = 0;
            pthread_mutex_unlock(&agent.mu);
            continue;
        }
        pthread_mutex_unlock(&agent.mu);
        cli_agent_do(&w[i], tok);
    }

    pthread_mutex_lock(&agent.mu);
    /* the same user still: results apply (a switch dropped the entries) */
    if (strcmp(user, agent.user) == 0) {
        for (i = 0; i < n; i++) {
            cli_agent_apply(&w[i]);
        }
    }
    pthread_mutex_unlock(&agent.mu);

    for (i = 0; i < n; i++) {
        free(w[i].bitmap);
        cli_finfo_free(&w[i].fi);
    }
    free(w);
}


static void *
cli_agent_main(void *arg)
{
    struct timespec  dl;

    (void) arg;
    pthread_mutex_lock(&agent.mu);
    while (!agent.stop) {
        pthread_mutex_unlock(&agent.mu);
        cli_agent_tick();
        pthread_mutex_lock(&agent.mu);
        if (agent.stop) {
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_nsec += (long) TS_NODE_PERSIST_MS * 1000000L;
        while (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        (void) pthread_cond_timedwait(&agent.cond, &agent.mu, &dl);
    }
    pthread_mutex_unlock(&agent.mu);
    return NULL;
}


/* ---- life cycle --------------------------------------------------------- */

int
cli_agent_init(cli_ctx_t *ctx, const char *state_dir, int (*stop_check)(void))
{
    pthread_condattr_t  ca;

    agent.ctx = ctx;
    agent.stop_check = stop_check;
    agent.st = cli_state_open(state_dir);
    if (agent.st == NULL) {
        return -1;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&agent.cond, &ca);
    pthread_condattr_destroy(&ca);
    ctx->ext = &agent;
    return 0;
}


int
cli_agent_start(void)
{
    sigset_t  all, old;
    int       r;

    if (cli_rpc_init(&agent.rpc, &agent.ctx->sess->trk,
                     cli_rpc_current(agent.ctx->rpc)) != 0)
    {
        return -1;
    }
    agent.rpc_ok = 1;
    agent.stop = 0;
    /* signals stay with the main thread */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&agent.th, NULL, cli_agent_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        ts_err("pthread_create() failed: %s", strerror(r));
        return -1;
    }
    agent.running = 1;
    return 0;
}


void
cli_agent_stop(void)
{
    int  i;

    if (agent.running) {
        pthread_mutex_lock(&agent.mu);
        agent.stop = 1;
        pthread_cond_broadcast(&agent.cond);
        pthread_mutex_unlock(&agent.mu);
        pthread_join(agent.th, NULL);
        agent.running = 0;
    }
    pthread_mutex_lock(&agent.mu);
    if (agent.user[0] != '\0') {
        cli_agent_collect(ts_now_ms());
    }
    for (i = 0; i < agent.ndls; i++) {
        cli_dl_free(&agent.dls[i]->rec);
        free(agent.dls[i]);
    }
    free(agent.dls);
    agent.dls = NULL;
    agent.ndls = agent.cap = 0;
    free(agent.stops);
    agent.stops = NULL;
    agent.nstops = agent.stopcap = 0;
    cli_state_close(agent.st);
    agent.st = NULL;
    pthread_mutex_unlock(&agent.mu);
    if (agent.rpc_ok) {
        cli_rpc_destroy(&agent.rpc);
        agent.rpc_ok = 0;
    }
}


int
cli_agent_failures(void)
{
    int  n;

    pthread_mutex_lock(&agent.mu);
    n = agent.failures;
    pthread_mutex_unlock(&agent.mu);
    return n;
}


int
cli_agent_wait_downloads(void)
{
    int64_t  quiet_since = -1;
    int      i, running, reporting;

    if (agent.ctx == NULL) {
        return 0;
    }
    for ( ;; ) {
        if (agent.stop_check != NULL && agent.stop_check()) {
            break;
        }
        running = reporting = 0;
        pthread_mutex_lock(&agent.mu);
        for (i = 0; i < agent.ndls && !agent.paused; i++) {
            cli_dlent_t *e = agent.dls[i];

            if (e->rec.state == CLI_DL_ACTIVE) {
                running++;
            } else if (e->have_complete || e->need_stop || e->dirty) {
                reporting++;
            }
        }
        if (agent.nstops > 0 && !agent.paused) {
            reporting++;
        }
        pthread_mutex_unlock(&agent.mu);
        if (running == 0) {
            if (reporting == 0) {
                break;
            }
            /* the last HAVE_CHUNKS: a short grace, the tracker may be down */
            if (quiet_since < 0) {
                quiet_since = ts_now_ms();
            } else if (ts_now_ms() - quiet_since > TS_CLI_REPORT_GRACE_MS) {
                break;
            }
        }
        if (cli_node_get() == NULL) {
            break;
        }
        usleep(50 * 1000);
    }
    return cli_agent_failures();
}


/* ---- login / logout ---------------------------------------------------- */

static int
cli_ent_cmp(const void *a, const void *b)
{
    const cli_dlent_t  *x = *(cli_dlent_t *const *) a;
    const cli_dlent_t  *y = *(cli_dlent_t *const *) b;
    int                 c = strcmp(x->rec.group, y->rec.group);

    return c != 0 ? c : strcmp(x->rec.name, y->rec.name);
}


static void
cli_load_share(void *arg, cli_share_rec_t *r)
{
    ts_shm_t     *shm = arg;
    struct stat   sb;
    int64_t       mt;

    if (stat(r->path, &sb) != 0 || !S_ISREG(sb.st_mode)
        || (uint64_t) sb.st_size != r->size)
    {
        goto stale;
    }
    mt = (int64_t) sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
    if (mt != r->mtime_ns) {
        goto stale;
    }
    if (node_share_add(shm, r->group, r->name, r->path, r->size,
                       r->mtime_ns, r->nchunks) < 0)
    {
        ts_warn("cannot serve %s/%s (share table full)", r->group, r->name);
    }
    return;

stale:
    fprintf(stderr, "warning: %s changed on disk; no longer sharing '%s' "
            "in '%s'\n", r->path, r->name, r->group);
    cli_queue_stop(r->group, r->name);
}


static void
cli_load_dl(void *arg, cli_dl_rec_t *r)
{
    cli_dlent_t  *e;

    (void) arg;
    e = cli_ent_new(r);
    if (e != NULL && e->rec.state == CLI_DL_ACTIVE) {
        /* re-advertise what we hold: the last report may have been lost */
        e->have_dirty = e->rec.nchunks > 0
                        && cli_bitmap_any(e->rec.done, e->rec.nchunks);
    }
}


/* Drops everything of the loaded user from shm and memory. */
static void
cli_unload(ts_shm_t *shm)
{
    node_share_sh_t  *sh;
    int               i;

    while (agent.ndls > 0) {
        cli_ent_free(agent.dls[--agent.ndls]);
    }
    agent.nstops = 0;
    if (shm != NULL && (sh = node_shares(shm)) != NULL) {
        for (i = 0; i < TS_NODE_SHARES_N; i++) {
            if (atomic_load(&sh[i].state) != NODE_SHARE_FREE) {
                node_share_remove(shm, i);
            }
        }
    }
    agent.user[0] = '\0';
}


void
cli_agent_login(const char *user)
{
    ts_shm_t         *shm = cli_shm();
    node_stats_sh_t  *stats;
    cli_dlent_t      *e;
    int               i, j;

    if (agent.st == NULL || shm == NULL) {
        return;
    }
    pthread_mutex_lock(&agent.mu);
    if (strcmp(agent.user, user) != 0) {
        cli_unload(shm);
        snprintf(agent.user, sizeof(agent.user), "%s", user);
        (void) cli_state_shares(agent.st, user, cli_load_share, shm);
        /* shares found changed while we were away leave node.tdb */
        for (j = 0; j < agent.nstops; j++) {
            (void) cli_state_share_del(agent.st, user, agent.stops[j].group,
                                       agent.stops[j].name);
        }
        (void) cli_state_dls(agent.st, user, cli_load_dl, NULL);
        if (agent.ndls > 1) {
            qsort(agent.dls, (size_t) agent.ndls, sizeof(agent.dls[0]),
                  cli_ent_cmp);
        }
        agent.paused = 0;
        for (i = 0; i < agent.ndls; i++) {
            e = agent.dls[i];
            /* a finished download still shared: say complete=1 again, in
             * case the last run died before the tracker heard it */
            if (e->rec.state == CLI_DL_DONE
                && node_share_find(shm, e->rec.group, e->rec.name) >= 0)
            {
                e->have_complete = 1;
            }
            if (e->rec.state == CLI_DL_ACTIVE && cli_ent_publish(e) != 0) {
                ts_warn("download %s/%s waits for a free slot",
                        e->rec.group, e->rec.name);
            }
        }
    } else {
        /* the same user again: resume where we stopped */
        agent.paused = 0;
        for (i = 0; i < agent.ndls; i++) {
            e = agent.dls[i];
            if (e->rec.state != CLI_DL_ACTIVE) {
                continue;
            }
            if (e->idx >= 0) {
                uint32_t p = NODE_DL_PAUSED;

                atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state,
                                               &p, NODE_DL_ACTIVE);
                e->next_src_ms = 0;
                e->nsamp = 0;
            } else {
                (void) cli_ent_publish(e);
            }
            e->have_dirty = e->rec.nchunks > 0
                            && cli_bitmap_any(e->rec.done, e->rec.nchunks);
        }
    }
    stats = node_stats(shm);
    if (stats != NULL) {
        atomic_store(&stats->paused, 0);
    }
    pthread_cond_broadcast(&agent.cond);
    pthread_mutex_unlock(&agent.mu);
}


void
cli_agent_logout(void)
{
    ts_shm_t         *shm = cli_shm();
    node_stats_sh_t  *stats;
    cli_dlent_t      *e;
    int               i;

    if (shm == NULL) {
        return;
    }
    pthread_mutex_lock(&agent.mu);
    stats = node_stats(shm);
    if (stats != NULL) {
        atomic_store(&stats->paused, 1);
    }
    agent.paused = 1;
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        if (e->idx >= 0) {
            uint32_t a = NODE_DL_ACTIVE;

            atomic_compare_exchange_strong(&node_dls(shm)[e->idx].state, &a,
                                           NODE_DL_PAUSED);
        }
    }
    /* what the workers verified so far is durable before we go */
    if (agent.user[0] != '\0') {
        cli_agent_collect(ts_now_ms());
    }
    pthread_mutex_unlock(&agent.mu);
}


/* ---- file commands ---------------------------------------------------- */

int
cli_agent_share_add(const cli_share_rec_t *r)
{
    ts_shm_t  *shm = cli_shm();
    int        idx;

    if (shm == NULL) {
        return -1;
    }
    pthread_mutex_lock(&agent.mu);
    idx = node_share_add(shm, r->group, r->name, r->path, r->size,
                         r->mtime_ns, r->nchunks);
    if (idx >= 0) {
        cli_unqueue_stop(r->group, r->name);
        if (agent.st != NULL && agent.user[0] != '\0'
            && cli_state_share_put(agent.st, agent.user, r) != 0)
        {
            ts_warn("share %s/%s not saved in node.tdb", r->group, r->name);
        }
    }
    pthread_mutex_unlock(&agent.mu);
    return idx >= 0 ? 0 : -1;
}


int
cli_agent_share_stop(const char *group, const char *name)
{
    ts_shm_t  *shm = cli_shm();
    int        idx;

    if (shm == NULL) {
        return 1;
    }
    pthread_mutex_lock(&agent.mu);
    idx = node_share_find(shm, group, name);
    if (idx >= 0) {
        node_share_remove(shm, idx);
        if (agent.st != NULL && agent.user[0] != '\0') {
            (void) cli_state_share_del(agent.st, agent.user, group, name);
        }
    }
    pthread_mutex_unlock(&agent.mu);
    return idx >= 0 ? 0 : 1;
}


/* 1 if part is path + ".part" */
static int
cli_is_part_of(const char *path, const char *part)
{
    size_t n = strlen(path);

    return strncmp(path, part, n) == 0 && strcmp(part + n, ".part") == 0;
}


int
cli_agent_dl_check(const char *group, const char *name, const char *dest,
                   char *err, size_t errsz)
{
    cli_dlent_t  *e;
    int           i, r = 0;

    pthread_mutex_lock(&agent.mu);
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        if (e->rec.state != CLI_DL_ACTIVE) {
            continue;
        }
        if (strcmp(e->rec.group, group) == 0
            && strcmp(e->rec.name, name) == 0)
        {
            snprintf(err, errsz, "'%s' from '%s' is already being "
                     "downloaded", name, group);
            r = -1;
            break;
        }
        if (dest == NULL) {
            continue;
        }
        /* nor may one's .part be the other's destination */
        if (strcmp(e->rec.dest, dest) == 0
            || cli_is_part_of(dest, e->rec.dest))
        {
            snprintf(err, errsz, "'%s' is already the destination of a "
                     "running download", e->rec.dest);
            r = -1;
            break;
        }
        if (strcmp(e->rec.part, dest) == 0) {
            snprintf(err, errsz, "'%s' is the .part of a running download",
                     dest);
            r = -1;
            break;
        }
    }
    pthread_mutex_unlock(&agent.mu);
    return r;
}


int
cli_agent_dl_start(cli_dl_rec_t *rec, const cli_finfo_t *fi, char *err,
                   size_t errsz)
{
    ts_shm_t     *shm = cli_shm();
    cli_dlent_t  *e, *old;
    int           r = -1;

    pthread_mutex_lock(&agent.mu);
    if (shm == NULL || agent.st == NULL || agent.user[0] == '\0') {
        snprintf(err, errsz, "the node is not running");
        cli_dl_free(rec);
        goto out;
    }
    old = cli_ent_find(rec->group, rec->name);
    if (old != NULL && old->rec.state == CLI_DL_ACTIVE) {
        snprintf(err, errsz, "'%s' from '%s' is already being downloaded",
                 rec->name, rec->group);
        cli_dl_free(rec);
        goto out;
    }
    /* the finished or failed download it replaces (same key) leaves shm
     * first, so the table never holds the name twice */
    if (old != NULL && old->idx >= 0) {
        node_dl_remove(shm, old->idx);
        old->idx = -1;
    }
    e = cli_ent_new(rec);
    if (e == NULL) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    if (cli_ent_publish(e) != 0) {
        snprintf(err, errsz, "too many downloads at once (at most %d)",
                 TS_NODE_DOWNLOADS_N);
        cli_ent_drop(e);
        goto out;
    }
    if (cli_state_dl_put(agent.st, agent.user, &e->rec) != 0) {
        snprintf(err, errsz, "cannot record the download in node.tdb");
        cli_ent_drop(e);
        goto out;
    }
    if (old != NULL) {
        cli_ent_drop(old);
    }
    if (e->idx >= 0) {
        cli_ticket_apply(shm, e, fi, 1);
        cli_set_sources(shm, e->idx, fi);
    }
    e->next_src_ms = cli_next_info_ms(e, ts_now_ms());
    r = 0;
out:
    pthread_cond_broadcast(&agent.cond);
    pthread_mutex_unlock(&agent.mu);
    return r;
}


/* ---- show_downloads ------------------------------------------------- */

static void
cli_fmt_rate(double bps, char *out, size_t outsz)
{
    static const char  *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    int                 u = 0;

    while (bps >= 1024.0 && u < 4) {
        bps /= 1024.0;
        u++;
    }
    if (u == 0) {
        snprintf(out, outsz, "%.0f%s", bps, unit[u]);
    } else {
        snprintf(out, outsz, "%.1f%s", bps, unit[u]);
    }
}


static void
cli_fmt_eta(double secs, char *out, size_t outsz)
{
    long  s;

    if (secs < 0 || secs > 99.0 * 3600) {
        snprintf(out, outsz, "--");
        return;
    }
    s = (long) (secs + 0.5);
    if (s >= 3600) {
        snprintf(out, outsz, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    } else if (s >= 60) {
        snprintf(out, outsz, "%ldm%02lds", s / 60, s % 60);
    } else {
        snprintf(out, outsz, "%lds", s);
    }
}


/* 1 if download e made no progress over its sample window */
static int
cli_ent_stalled(const cli_dlent_t *e, int64_t now)
{
    int                 oi, li;

    if (e->nsamp < 2) {
        return 1;
    }
    oi = (e->head - e->nsamp + TS_CLI_RATE_SAMPLES_N) % TS_CLI_RATE_SAMPLES_N;
    li = (e->head - 1 + TS_CLI_RATE_SAMPLES_N) % TS_CLI_RATE_SAMPLES_N;
    (void) now;
    return e->samp[li].bytes == e->samp[oi].bytes;
}


void
cli_agent_show(cli_ctx_t *ctx)
{
    ts_shm_t      *shm = cli_shm();
    node_dl_sh_t  *d;
    cli_dlent_t   *e;
    char           qn[2 * TS_NAME_MAX_B + 3], rate[32], eta[32];
    uint64_t       bytes, done_chunks;
    uint32_t       state, c;
    int64_t        now = ts_now_ms();
    double         bps;
    int            i, pct, shown = 0;

    pthread_mutex_lock(&agent.mu);
    for (i = 0; i < agent.ndls; i++) {
        e = agent.dls[i];
        /* names as they are: only list_files quotes them */
        snprintf(qn, sizeof(qn), "%s", e->rec.name);
        if (e->rec.state == CLI_DL_DONE) {
            printf("[C] [%s] %s -> %s\n", e->rec.group, qn, e->rec.dest);
            shown++;
            continue;
        }
        if (e->rec.state == CLI_DL_FAILED) {
            printf("[F] [%s] %s: %s\n", e->rec.group, qn, e->rec.error);
            shown++;
            continue;
        }
        state = NODE_DL_ACTIVE;
        d = NULL;
        if (e->idx >= 0 && shm != NULL) {
            d = &node_dls(shm)[e->idx];
            state = atomic_load(&d->state);
            bytes = atomic_load(&d->bytes_done);
        } else {
            bytes = 0;
            for (c = 0; c < e->rec.nchunks; c++) {
                if ((e->rec.done[c >> 3] >> (c & 7)) & 1) {
                    bytes += cli_chunk_len(e->rec.size, e->rec.nchunks, c);
                }
            }
        }
        if (state == NODE_DL_DONE) {
            printf("[C] [%s] %s -> %s\n", e->rec.group, qn, e->rec.dest);
            shown++;
            continue;
        }
        if (bytes > e->rec.size) {
            bytes = e->rec.size;
        }
        done_chunks = e->rec.size > 0 ? bytes * 100 / e->rec.size : 100;
        pct = (int) done_chunks;
        if (pct == 100 && state != NODE_DL_FINALIZING && bytes < e->rec.size)
        {
            pct = 99;
        }
        if (agent.paused || state == NODE_DL_PAUSED) {
            printf("[D] [%s] %s %d%% paused\n", e->rec.group, qn, pct);
        } else if (d != NULL && atomic_load(&d->denied)
                   && state == NODE_DL_ACTIVE && cli_ent_stalled(e, now))
        {
            printf("[D] [%s] %s %d%% not permitted: peers refuse the "
                   "download ticket; waiting for a new one\n",
                   e->rec.group, qn, pct);
        } else if (d == NULL || (atomic_load(&d->waiting)
                                 && state == NODE_DL_ACTIVE))
        {
            printf("[D] [%s] %s %d%% waiting for sources\n", e->rec.group,
                   qn, pct);
        } else {
            /* bytes over the sample window (oldest kept sample -> now) */
            bps = 0;
            if (e->nsamp > 0) {
                int           oi = (e->head - e->nsamp + TS_CLI_RATE_SAMPLES_N)
                                   % TS_CLI_RATE_SAMPLES_N;
                cli_sample_t *o = &e->samp[oi];

                if (now - o->ms >= 200 && bytes >= o->bytes) {
                    bps = (double) (bytes - o->bytes) * 1000.0
                          / (double) (now - o->ms);
                }
            }
            cli_fmt_rate(bps, rate, sizeof(rate));
            cli_fmt_eta(bps > 0 ? (double) (e->rec.size - bytes) / bps
                                : -1.0, eta, sizeof(eta));
            printf("[D] [%s] %s %d%% %s/s ETA %s\n", e->rec.group, qn, pct,
                   rate, eta);
        }
        shown++;
    }
    pthread_mutex_unlock(&agent.mu);
    if (shown == 0) {
        cli_print_empty(ctx);
    }
}
