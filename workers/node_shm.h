/*
 * node_shm.h -- the client node's shared-memory layout (one segment per
 * node, "/tessera-node-<hash of its state dir>", node_shm_name_state),
 * shared by the CLI process, the node supervisor, the uploader workers
 * and the downloader workers.
 *
 * Tables (ids for ts_shm_table):
 *   NODE_T_SLOTS   ts_slot_sh_t  x TS_SUP_WORKERS_MAX_N  worker slots
 *   NODE_T_STATS   node_stats_sh_t x 1                   load and counters
 *   NODE_T_SHARES  node_share_sh_t x TS_NODE_SHARES_N    files served
 *   NODE_T_DLS     node_dl_sh_t x TS_NODE_DOWNLOADS_N    downloads
 *   NODE_T_DLDATA  NODE_DLDATA_B x TS_NODE_DOWNLOADS_N   per-download arrays
 *   NODE_T_PEERS   node_peer_sh_t x TS_NODE_PEER_STATS_N  bytes per peer
 *   NODE_T_SENT    node_sent_sh_t x 1                    chunks of shares
 *                                                        sent lately (up_seed.c)
 *
 * Per-download arrays (NODE_T_DLDATA entry i belongs to download i), at
 * fixed offsets inside the entry (node_dl_* accessors below):
 *   hashes  20 bytes x TS_FILE_MAX_CHUNKS_N   chunk SHA1s
 *   done    1 bit per chunk (atomic u64 words) verified and written
 *   maybe   1 bit per chunk: on disk from before a crash, not yet verified
 *           (a downloader re-hashes it from the .part before fetching)
 *   claims  ts_owner_t per chunk: the downloader fetching it (0 = free)
 *   maps    1 bit per chunk per source (TS_NODE_SOURCES_N maps)
 *   srcof   1 byte per chunk (atomic): 1 + the source index that served
 *           the chunk, written by the downloader that verified it before
 *           it sets the done bit; 0 = unknown (verified from the .part)
 * Pages are touched only as far as a file's chunk count, so a 1 GiB file
 * uses ~90 KiB of them.
 *
 * Writers and publication:
 *   - Text and size fields of a share or a download are written by the CLI
 *     process only, inside a seqlock (seq odd while writing), before state
 *     leaves FREE; readers copy them and retry if seq moved.
 *   - A download's ticket is written by the CLI inside the same seqlock,
 *     then ticket_gen is bumped; downloaders copy it when ticket_gen
 *     moved (node_dl_ticket).  A source's addr and fp are written while
 *     it is FREE and never change after: a source is (addr, fp).
 *   - Bits, claims, counters and states change only by C11 atomics.
 *   - A chunk is claimed (CAS 0 -> owner) before it is fetched, marked done
 *     (fetch_or) only after its SHA1 verified and pwrite() returned, then
 *     released.  The supervisor reclaims a dead worker's claims by owner.
 *
 * Crash behaviour: everything here is a cache of node.tdb and the disk.
 * The CLI rebuilds shares and downloads from node.tdb at start (chunks
 * recorded as verified -> done; the rest of an existing .part -> maybe).
 */
#ifndef NODE_SHM_H_INCLUDED
#define NODE_SHM_H_INCLUDED

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_claim.h"
#include "ts_shm.h"
#include "ts_rate.h"
#include "ts_tls.h"

/* 2: source fingerprints, download tickets
 * 3: the .part's identity (part_id)
 * 4: the bandwidth caps (NODE_T_RATE)
 * 5: per-chunk source (srcof), per-source bytes, the peer table
 *    (NODE_T_PEERS), TLS / rate-wait / restart counters
 * 6: the chunks a seeder sent lately (NODE_T_SENT)
 * 7: chunks verified lately (have_seq, have_ring), push_owner
 * 8: the seeder's fair share per asking peer (node_sent_sh_t fair) */
#define NODE_SHM_LAYOUT  8

enum {
    NODE_T_SLOTS  = 1,
    NODE_T_STATS  = 2,
    NODE_T_SHARES = 3,
    NODE_T_DLS    = 4,
    NODE_T_DLDATA = 5,
    NODE_T_INFLIGHT = 6,    /* node_inflight_sh_t x slots */
    NODE_T_FHASH  = 7,      /* node_fhash_sh_t x downloads */
    NODE_T_RATE   = 8,      /* node_rate_sh_t x 1 */
    NODE_T_PEERS  = 9,      /* node_peer_sh_t x TS_NODE_PEER_STATS_N */
    NODE_T_SENT   = 10      /* node_sent_sh_t x 1 */
};

/* What the node's uploaders sent lately of the files it shares complete
 * (workers/up_seed.c): a direct-mapped cache, one word per slot packing
 * the share index, the chunk, a tag of the peer it went to and when (see
 * up_seed.c); 0 = empty.  Written with plain atomic stores by any
 * uploader: a lost or overwritten entry only means a chunk may go out
 * twice. */
typedef struct {
    _Atomic uint64_t slot[TS_UP_SENT_N];
    _Atomic uint64_t askers[TS_UP_SEED_ASKERS_N];  /* share, peer tag and
                                                      when it last asked */
    _Atomic uint64_t fair[TS_UP_SEED_ASKERS_N];    /* share, peer tag, when
                                                      it last asked and the
                                                      chunks it got (up_seed.c
                                                      fair share) */
} node_sent_sh_t;

/* The node-wide bandwidth caps (shm/ts_rate.h): every uploader takes from
 * `up` before a chunk's bytes go out, every downloader from `down`
 * before it reads a socket.  Set by the node at start and by
 * node_rate_set (workers/node_rate.c) at run time. */
typedef struct {
    ts_rate_sh_t     up;
    ts_rate_sh_t     down;
} node_rate_sh_t;

/* Which file a download's .part is: a name can be taken by another file
 * (even one with the same inode number, reused at once by ext4 after an
 * unlink), so the identity is device, inode and birth time (statx; 0
 * where the filesystem keeps none).  All zero: not pinned. */
typedef struct {
    uint64_t dev;
    uint64_t ino;
    int64_t  btime_ns;
} node_fid_t;

/* worker roles in slots[].role and in the supervisor's role table */
enum { NODE_ROLE_UPLOADER = 0, NODE_ROLE_DOWNLOADER = 1, NODE_ROLE_AGENT = 2,
       NODE_ROLE_HTTP = 3 };
#define NODE_ROLES_N  4

typedef struct {
    _Atomic uint32_t active_uploads;   /* chunks being sent right now */
    _Atomic uint32_t queued;           /* GETs received, not yet answered */
    _Atomic uint32_t paused;           /* 1 = logged out: serve nothing */
    _Atomic uint32_t pad0;
    _Atomic uint64_t bytes_up;
    _Atomic uint64_t bytes_down;
    _Atomic uint64_t chunks_up;
    _Atomic uint64_t chunks_down;
    _Atomic uint64_t hash_failures;
    _Atomic uint64_t reclaimed_claims;
    _Atomic uint64_t fh_rereads;       /* finalizations that
                                          re-read the .part because the
                                          frontier hash was incomplete or
                                          disagreed */
    /* TLS handshakes: [0] peers connecting to our uploaders, [1] our
     * downloaders' links; ok = finished, fail = closed before */
    _Atomic uint64_t tls_ok[2];
    _Atomic uint64_t tls_fail[2];
    /* the timer delays links slept for tokens of the caps, ns summed
     * over links: [0] upload, [1] download */
    _Atomic uint64_t rate_wait_ns[2];
    /* workers respawned after they exited, by role (NODE_ROLE_*);
     * written by the supervisor */
    _Atomic uint64_t restarts[NODE_ROLES_N];
    _Atomic int32_t  http_pid;         /* the node-http process, 0 = none */
    _Atomic uint32_t http_starts;
    _Atomic uint64_t haves_sent;       /* chunk indices our uploaders
                                          pushed (PEER_HAVE) */
    _Atomic uint64_t fair_holds;       /* GETs held back a moment for
                                          the seeder's fair share
                                          (up_seed.c) */
} node_stats_sh_t;

/*
 * Bytes and chunks moved per peer and direction (NODE_T_PEERS), for the
 * node's /metrics and /api/v1/uploads: entry 0 counts uploads and entry
 * 1 downloads to peers that found the table full ("other").  An entry
 * is claimed by CAS of state FREE -> BUSY, its key written, then USED
 * (release); counters are atomic adds.  Two workers that claim the same
 * key at once make two entries: readers add entries of one key up.
 * Never emptied while the node runs (counters only grow).
 */
enum { NODE_PEER_FREE = 0, NODE_PEER_BUSY = 1, NODE_PEER_USED = 2 };
enum { NODE_DIR_UP = 0, NODE_DIR_DOWN = 1 };
typedef struct {
    _Atomic uint32_t state;
    uint32_t         dir;              /* NODE_DIR_* */
    char             addr[64];         /* up: the peer's IP; down: the
                                          source's "ip:port" */
    uint8_t          fp[TS_FP_B];      /* its certificate fingerprint */
    _Atomic uint64_t chunks;
    _Atomic uint64_t bytes;
} node_peer_sh_t;

typedef enum {
    NODE_SHARE_FREE    = 0,
    NODE_SHARE_READY   = 1,   /* served */
    NODE_SHARE_STALE   = 2,   /* changed on disk: never served again */
    NODE_SHARE_STOPPED = 3    /* stop_share: being removed */
} node_share_state_t;

typedef struct {
    _Atomic uint32_t state;
    _Atomic uint32_t seq;              /* seqlock over the fields below */
    char             group[TS_ID_MAX_B + 1];
    char             name[TS_NAME_MAX_B + 1];
    char             path[PATH_MAX];
    uint64_t         size;
    int64_t          mtime_ns;         /* st_mtim at upload time */
    uint32_t         nchunks;
    uint32_t         pad;
    _Atomic uint64_t chunks_served;
    _Atomic uint64_t bytes_served;
} node_share_sh_t;

typedef enum {
    NODE_SRC_FREE    = 0,
    NODE_SRC_LIVE    = 1,
    NODE_SRC_GONE    = 2,   /* no longer listed by the tracker */
    NODE_SRC_DROPPED = 3    /* sent bad data too often */
} node_src_state_t;

typedef struct {
    char             addr[64];         /* "ip:port", set while FREE */
    uint8_t          fp[TS_FP_B];      /* its certificate fingerprint (from
                                          the tracker), set while FREE: a
                                          source is (addr, fp), so a new
                                          identity at an address is a new
                                          source */
    _Atomic uint32_t state;
    _Atomic uint32_t complete;         /* 1 = has every chunk */
    _Atomic uint32_t load;             /* last load the peer reported */
    _Atomic uint32_t inflight;         /* our GETs to it, all workers */
    _Atomic uint32_t failures;         /* bad chunks from it */
    _Atomic uint32_t errors;           /* consecutive I/O errors */
    _Atomic uint64_t rate_bps;         /* measured, EWMA */
    _Atomic uint64_t chunks;           /* chunks we got from it (one
                                          assembled from blocks: for the
                                          peer of most of them) */
    _Atomic int64_t  map_ms;           /* map refreshed at (monotonic) */
    _Atomic int64_t  retry_after_ms;   /* after an error: back off */
    _Atomic uint64_t map_owner;        /* claim: who refreshes the map */
    _Atomic uint64_t bytes;            /* verified bytes we got from it */
    _Atomic uint64_t push_owner;       /* the downloader worker (ts_owner)
                                          whose link gets this source's
                                          new chunks pushed (PEER_HAVE);
                                          0 = none: its map is polled */
    _Atomic uint64_t pushed;           /* chunk indices it pushed to us */
} node_src_sh_t;

typedef enum {
    NODE_DL_FREE       = 0,
    NODE_DL_ACTIVE     = 1,   /* downloading (or waiting for sources) */
    NODE_DL_FINALIZING = 2,   /* whole-file SHA1, fsync, rename */
    NODE_DL_DONE       = 3,
    NODE_DL_FAILED     = 4,
    NODE_DL_PAUSED     = 5    /* logged out, or paused by the user */
} node_dl_state_t;

typedef struct {
    _Atomic uint32_t state;
    _Atomic uint32_t seq;              /* seqlock over the text fields */
    _Atomic uint32_t id;               /* bumped each time the entry is reused */
    _Atomic uint32_t waiting;          /* 1 = no live source has what is missing */
    char             group[TS_ID_MAX_B + 1];
    char             name[TS_NAME_MAX_B + 1];
    char             dest[PATH_MAX];   /* final path */
    char             part[PATH_MAX];   /* dest + ".part" */
    node_fid_t       part_id;          /* the .part the CLI created (and
                                          dest after the rename); zero =
                                          any regular file (old record) */
    uint64_t         size;
    uint32_t         nchunks;
    uint8_t          file_sha1[20];
    _Atomic uint64_t finalize_owner;   /* claim for FINALIZING */
    _Atomic uint64_t bytes_done;
    _Atomic uint32_t chunks_done;
    _Atomic uint32_t restored;         /* 1 = chunks came done from node.tdb
                                          (a resume): the whole-file SHA1
                                          is checked from the .part, as a
                                          crash may have lost their pages */
    _Atomic int64_t  started_ms;       /* wall clock */
    _Atomic int64_t  finished_ms;
    char             error[256];       /* FAILED reason, set before state */
    /* The download ticket (ts_ticket.h) the tracker's last FILE_INFO gave
     * this node: written by the CLI inside seq (with the text fields'
     * seqlock), then ticket_gen is bumped (release).  Downloaders copy
     * ticket/ticket_len under seq when ticket_gen moved and send it in
     * PEER_AUTH on each link.  ticket_gen 0 = no ticket yet. */
    _Atomic uint32_t ticket_gen;
    _Atomic uint32_t denied;           /* 1 = a peer refused the current
                                          ticket (cleared by a new one) */
    _Atomic int64_t  ticket_expires_ms;   /* wall clock */
    uint32_t         ticket_len;
    uint8_t          ticket[TS_TICKET_MAX_B];
    node_src_sh_t    src[TS_NODE_SOURCES_N];
    /* The chunks this download verified lately, for the uploaders to
     * push to the peers that asked (PEER_HAVE): a downloader that set a
     * done bit takes sequence s = have_seq++ and writes
     * ((s + 1) << 32 | chunk) into have_ring[s % TS_NODE_HAVE_RING_N]
     * (node_dl_have_note).  A reader at sequence s takes the slot only
     * when its top half is s + 1 (not yet written: wait; larger:
     * overwritten, the reader fell behind).  Never reset: a reader
     * checks the download id. */
    _Atomic uint32_t have_seq;
    uint32_t         have_pad;
    _Atomic uint64_t have_ring[TS_NODE_HAVE_RING_N];
} node_dl_sh_t;

/*
 * Per-worker in-flight GETs (for reclaim): entry w belongs to
 * worker slot w (ctx->slot).  A downloader that sends a GET for download
 * i to source k does atomic ++ on both dls[i].src[k].inflight and
 * node_slot_inflight(s, ctx->slot, i)[k], and -- on both when the reply
 * (or the connection's failure) retires it.  When the worker dies,
 * node_reclaim subtracts its per-slot counts from src[].inflight and zeroes
 * them, so nothing leaks.  node_dl_add zeroes the column of a reused
 * download for every slot.
 */
typedef struct {
    _Atomic uint32_t n[TS_NODE_DOWNLOADS_N][TS_NODE_SOURCES_N];
} node_inflight_sh_t;

/*
 * Whole-file SHA1 computed while downloading : entry i belongs
 * to download i.  The "frontier" is the count of leading chunks already
 * fed, in order, into a SHA1 state; a downloader that finds the chunk at
 * the frontier done (after claiming `owner`) feeds it and the done chunks
 * after it, so finalization only has to finish the hash, fsync and rename.
 *
 * Two copies, published by `pub` = (download id << 32 | generation):
 * copy[gen & 1] is the valid one.  The owner copies it, hashes, writes the
 * result into the other copy (with the download id), then CASes pub to
 * gen + 1.  A worker SIGKILLed mid-update leaves the valid copy untouched
 * (reclaim only frees `owner`); a stale writer from an earlier use of the
 * entry writes its own id into the copy and its CAS fails, and readers
 * ignore a copy whose id is not the download's (frontier 0 then).
 * node_dl_add resets pub to (new id << 32) before state leaves FREE.
 * `ctx` holds an OpenSSL SHA_CTX (plain struct, no pointers).
 */
#define NODE_FHASH_CTX_B  128
typedef struct {
    uint32_t         id;               /* download id this copy is for */
    uint32_t         next;             /* chunks [0, next) are hashed */
    uint64_t         ctx[NODE_FHASH_CTX_B / 8];
} node_fhash_copy_t;

typedef struct {
    _Atomic uint64_t  owner;           /* claim: the worker advancing it */
    _Atomic uint64_t  pub;             /* id << 32 | generation */
    node_fhash_copy_t copy[2];
} node_fhash_sh_t;

/* per-download arrays */
#define NODE_BITMAP_WORDS   ((TS_FILE_MAX_CHUNKS_N + 63) / 64)
#define NODE_OFF_HASHES     0ull
#define NODE_OFF_DONE       (NODE_OFF_HASHES + 20ull * TS_FILE_MAX_CHUNKS_N)
#define NODE_OFF_MAYBE      (NODE_OFF_DONE + 8ull * NODE_BITMAP_WORDS)
#define NODE_OFF_CLAIMS     (NODE_OFF_MAYBE + 8ull * NODE_BITMAP_WORDS)
#define NODE_OFF_MAPS       (NODE_OFF_CLAIMS + 8ull * TS_FILE_MAX_CHUNKS_N)
#define NODE_OFF_SRCOF      (NODE_OFF_MAPS + 8ull * NODE_BITMAP_WORDS \
                             * TS_NODE_SOURCES_N)
#define NODE_DLDATA_B       (NODE_OFF_SRCOF + TS_FILE_MAX_CHUNKS_N)

/* Accessors (defined in workers/node_shm.c). i = download index. */
node_stats_sh_t  *node_stats(const ts_shm_t *s);
ts_slot_sh_t     *node_slots(const ts_shm_t *s);
node_share_sh_t  *node_shares(const ts_shm_t *s);
node_dl_sh_t     *node_dls(const ts_shm_t *s);
uint8_t          *node_dl_hashes(const ts_shm_t *s, int i);
_Atomic uint64_t *node_dl_done(const ts_shm_t *s, int i);
_Atomic uint64_t *node_dl_maybe(const ts_shm_t *s, int i);
_Atomic uint64_t *node_dl_claims(const ts_shm_t *s, int i);
_Atomic uint64_t *node_dl_map(const ts_shm_t *s, int i, int src);
/* TS_NODE_SOURCES_N counters of worker slot `slot` for download i. */
_Atomic uint32_t *node_slot_inflight(const ts_shm_t *s, int slot, int i);
/* The frontier hasher of download i, or NULL. */
node_fhash_sh_t  *node_dl_fhash(const ts_shm_t *s, int i);
/* The bandwidth caps, or NULL (workers/node_rate.c). */
node_rate_sh_t   *node_rate(const ts_shm_t *s);
/* Download i's per-chunk source bytes (srcof above), or NULL. */
_Atomic uint8_t  *node_dl_srcof(const ts_shm_t *s, int i);
/* The peer table (TS_NODE_PEER_STATS_N entries), or NULL. */
node_peer_sh_t   *node_peers(const ts_shm_t *s);
/* Adds `chunks` chunks of `bytes` in all to the entry of (dir, addr,
 * fp), claiming one if there is none (the "other" entry when the table
 * is full); a block of a chunk counts 0 chunks.  fp may be NULL (all
 * zero).  Lock-free. */
void              node_peer_count(const ts_shm_t *s, int dir,
                                  const char *addr, const uint8_t *fp,
                                  uint32_t chunks, uint64_t bytes);
/* The seeder's sent-lately cache, or NULL. */
node_sent_sh_t   *node_sent(const ts_shm_t *s);

/* The table specs for ts_shm_create, and the segment name for a port. */
extern const ts_shm_spec_t node_shm_specs[];
extern const int           node_shm_nspecs;
void node_shm_name(char *out, size_t outsz, uint16_t port);
/* The name the node uses: from its state dir (cert_path's directory),
 * the port's name only if that cannot be resolved. */
void node_shm_name_state(char *out, size_t outsz, const char *cert_path,
                         uint16_t port);

/* Seqlock readers: copy entry idx consistently into *out
 * (text and size fields; atomics are loaded once).  0, or -1 if the entry
 * is FREE. */
int  node_share_snapshot(const ts_shm_t *s, int idx, node_share_sh_t *out);
int  node_dl_snapshot(const ts_shm_t *s, int idx, node_dl_sh_t *out);
/* Seqlock reader: copies download idx's ticket into buf (bufsz >=
 * TS_TICKET_MAX_B), *len and its generation *gen (0 = none yet).
 * 0, or -1 (no consistent copy). */
int  node_dl_ticket(const ts_shm_t *s, int idx, uint8_t *buf, size_t bufsz,
                    uint32_t *len, uint32_t *gen);

/* bit helpers on atomic u64 bitmaps */
static inline int
node_bit_test(_Atomic uint64_t *bm, uint32_t i)
{
    return (atomic_load_explicit(&bm[i >> 6], memory_order_acquire)
            >> (i & 63)) & 1;
}

static inline void
node_bit_set(_Atomic uint64_t *bm, uint32_t i)
{
    atomic_fetch_or_explicit(&bm[i >> 6], 1ull << (i & 63),
                             memory_order_acq_rel);
}

static inline void
node_bit_clear(_Atomic uint64_t *bm, uint32_t i)
{
    atomic_fetch_and_explicit(&bm[i >> 6], ~(1ull << (i & 63)),
                              memory_order_acq_rel);
}

/* Chunk `chunk` of download d was just verified (our fetch_or set its
 * done bit): into the ring the uploaders push from (see have_ring). */
static inline void
node_dl_have_note(node_dl_sh_t *d, uint32_t chunk)
{
    uint32_t s = atomic_fetch_add(&d->have_seq, 1);

    atomic_store(&d->have_ring[s % TS_NODE_HAVE_RING_N],
                 (uint64_t) (s + 1) << 32 | chunk);
}

#endif
