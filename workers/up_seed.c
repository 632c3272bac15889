/*
 * up_seed.c -- super-seeding: a node that shares a file complete (a
 * seeder) sends each chunk into the swarm about once.
 *
 * Purpose: leechers that start together ask the seeder for chunks before
 * they know what the others hold or are fetching; each chunk the seeder
 * sends twice is a chunk of its uplink lost, and the seeder's uplink is
 * what a swarm's speed rests on.  So the node's uploaders remember, in
 * the node segment (node_sent_sh_t), which chunk of which share went to
 * which peer and when; a GET for a chunk of a complete share that went to
 * another peer less than TS_UP_SEED_HOLD_MS ago is answered "not
 * available" (TS_ERR_NOTFOUND, "already in the swarm") while other peers
 * ask for the file too (within TS_UP_SEED_BUSY_MS; a seeder asked by one
 * peer alone refuses nothing: its uplink would idle).  Every
 * downloader, old ones too, takes that as "this source lacks it": it
 * clears the chunk from that source's map and fetches it from the peer
 * that has it, and the map of a complete source is made whole again after
 * a while (TS_DL_SEED_REFILL_MS), so a chunk whose first receiver never
 * passes it on is sent again once the hold is over.  Chunks of files the
 * node is still downloading (served from the .part) are never refused:
 * only the seeder's uplink is scarce.
 *
 * The cache is direct-mapped: one 64-bit word per slot, the slot chosen
 * by hashing (share, chunk), the word packing
 *   bits 54..63  share index (TS_NODE_SHARES_N <= 1024)
 *   bits 37..53  chunk index (TS_FILE_MAX_CHUNKS_N <= 2^17)
 *   bits 25..36  a 12-bit tag of the peer's certificate fingerprint (never
 *                0: 0 is an empty slot)
 *   bits  0..24  when, in 8 ms units of the monotonic clock (wraps after
 *                74 hours; ages are taken modulo that)
 * A collision overwrites an older entry: the worst it does is let a chunk
 * go out twice.
 *
 * Fair share: the seeder's uplink is shared by TCP flows, and TCP (BBR
 * more than most) lets one flow take twice its share for seconds; the
 * leecher that got most of the seeder's chunks must then pass them on
 * alone, and the swarm waits for its uplink.  So a complete share's
 * chunks go round-robin over the peers asking for it: each peer has a
 * count of the chunks it got (a virtual time, start-time fair queueing),
 * and a GET of a peer more than TS_UP_FAIR_LEAD_N chunks ahead of the
 * least served peer that is asking too waits (up_fair_hold; the link
 * sleeps on the rate timer, TS_UP_FAIR_RETRY_MS), at most
 * TS_UP_FAIR_HOLD_MAX_MS in a row, so a peer that cannot take its share
 * does not idle the uplink.  A peer is asking while a GET of it waited
 * or started within TS_UP_FAIR_ACTIVE_MS and its link did not run out
 * of GETs; one that starts asking (again) is put at most
 * TS_UP_FAIR_CATCHUP_N chunks behind the least served: a leecher that
 * came a second late catches up with the first, but one back after a
 * long pause does not take the uplink for long.  For the share to be decided here
 * and not in the socket buffers (4 MiB each), such a link keeps at most
 * TS_UP_FAIR_LOWAT_B unsent in the kernel (TCP_NOTSENT_LOWAT).  The
 * counts live in the node segment (node_sent_sh_t fair, one word per
 * asking peer and share in any free slot, all uploaders share them; a
 * peer that stopped asking may lose its slot to a new one), a word
 * packing
 *   bits 54..63  share index
 *   bits 42..53  peer tag (as above)
 *   bits 17..41  when it last asked, 8 ms units (0: it stopped asking)
 *   bits  0..16  chunks it got (wraps; compared modulo 2^17)
 *
 * Locking: none; single-word atomic loads and stores.  Crash behaviour:
 * a lost entry costs a duplicate at most; the segment's reset zeroes it.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "ts_clock.h"
#include "up_int.h"

_Static_assert(TS_NODE_SHARES_N <= 1024, "share index must fit 10 bits");
_Static_assert(TS_FILE_MAX_CHUNKS_N <= (1u << 17), "chunk must fit 17 bits");

#define UP_SEED_T_BITS   25
#define UP_SEED_T_MASK   ((1ull << UP_SEED_T_BITS) - 1)
#define UP_SEED_TAG_MASK 0xfffull

static uint32_t
up_seed_tag(const up_link_t *k)
{
    uint32_t t;

    if (!k->has_fp) {
        return 1;
    }
    t = ((uint32_t) k->fp[0] | (uint32_t) k->fp[1] << 8) & UP_SEED_TAG_MASK;
    return t != 0 ? t : 1;
}

/* Notes that k's peer asks for chunks of share now, and returns 1 if
 * another peer asked for chunks of it within TS_UP_SEED_BUSY_MS: the
 * seeder's uplink is shared, so a chunk it just sent elsewhere is worth
 * refusing.  A seeder only one peer asks of refuses nothing: its uplink
 * would idle.  The askers are a small direct-mapped table by tag. */
static int
up_seed_contended(up_t *u, int share, uint32_t tag, uint64_t now8)
{
    node_sent_sh_t *t = node_sent(u->shm);
    uint64_t        key = (uint64_t) (uint32_t) share << 54, w, age;
    int             j, busy = 0;

    for (j = 0; j < TS_UP_SEED_ASKERS_N; j++) {
        w = atomic_load(&t->askers[j]);
        if (w == 0 || (w & (0x3ffull << 54)) != key
            || ((w >> UP_SEED_T_BITS) & UP_SEED_TAG_MASK) == tag)
        {
            continue;
        }
        age = (now8 - (w & UP_SEED_T_MASK)) & UP_SEED_T_MASK;
        if (age * 8 < (uint64_t) TS_UP_SEED_BUSY_MS) {
            busy = 1;
            break;
        }
    }
    atomic_store(&t->askers[tag % TS_UP_SEED_ASKERS_N],
                 key | (uint64_t) tag << UP_SEED_T_BITS | now8);
    return busy;
}

static _Atomic uint64_t *
up_seed_slot(up_t *u, int share, uint32_t chunk)
{
    node_sent_sh_t *t = node_sent(u->shm);
    uint64_t        h;

    if (t == NULL) {
        return NULL;
    }
    h = ((uint64_t) (uint32_t) share << 32 | chunk) * 0x9e3779b97f4a7c15ull;
    return &t->slot[(h >> 32) % TS_UP_SENT_N];
}

/* 1 if chunk `chunk` of complete share `share` may go to the peer of k
 * now (and it is then noted as sent to it), 0 if another peer got it
 * less than TS_UP_SEED_HOLD_MS ago. */
int
up_seed_allow(up_t *u, const up_link_t *k, int share, uint32_t chunk)
{
    _Atomic uint64_t *slot;
    uint64_t          w, key, now8, age;
    uint32_t          tag = up_seed_tag(k);
    int               busy;

    if (TS_UP_SEED_HOLD_MS <= 0 || share < 0) {
        return 1;
    }
    slot = up_seed_slot(u, share, chunk);
    if (slot == NULL) {
        return 1;
    }
    now8 = ((uint64_t) ts_now_ms() / 8) & UP_SEED_T_MASK;
    key = (uint64_t) (uint32_t) share << 54 | (uint64_t) chunk << 37;
    busy = up_seed_contended(u, share, tag, now8);
    w = atomic_load(slot);
    if (busy && w != 0 && (w & ~((UP_SEED_TAG_MASK << UP_SEED_T_BITS)
                                 | UP_SEED_T_MASK)) == key)
    {
        age = (now8 - (w & UP_SEED_T_MASK)) & UP_SEED_T_MASK;
        if (((w >> UP_SEED_T_BITS) & UP_SEED_TAG_MASK) != tag
            && age * 8 < (uint64_t) TS_UP_SEED_HOLD_MS)
        {
            return 0;
        }
    }
    atomic_store(slot, key | (uint64_t) tag << UP_SEED_T_BITS | now8);
    return 1;
}


/* ---- fair share -------------------------------------------------------- */

#define UP_FAIR_V_BITS  17
#define UP_FAIR_V_MASK  ((1ull << UP_FAIR_V_BITS) - 1)
#define UP_FAIR_T_SHIFT UP_FAIR_V_BITS
#define UP_FAIR_TAG_SHIFT (UP_FAIR_T_SHIFT + UP_SEED_T_BITS)
#define UP_FAIR_KEY_MASK (~0ull << UP_FAIR_TAG_SHIFT)

static uint64_t
up_fair_now8(void)
{
    uint64_t now8 = ((uint64_t) ts_now_ms() / 8) & UP_SEED_T_MASK;

    return now8 != 0 ? now8 : 1;        /* 0 means "stopped asking" */
}

/* 1 if fairness word w says its peer is asking now. */
static int
up_fair_asking(uint64_t w, uint64_t now8)
{
    uint64_t t = (w >> UP_FAIR_T_SHIFT) & UP_SEED_T_MASK, age;

    if (w == 0 || t == 0) {
        return 0;
    }
    age = (now8 - t) & UP_SEED_T_MASK;
    return age * 8 < (uint64_t) TS_UP_FAIR_ACTIVE_MS;
}

/* (a - b) modulo 2^17 as a signed difference. */
static int32_t
up_fair_diff(uint64_t a, uint64_t b)
{
    uint32_t d = (uint32_t) ((a - b) & UP_FAIR_V_MASK);

    return d >= (1u << (UP_FAIR_V_BITS - 1)) ? (int32_t) d - (1 << UP_FAIR_V_BITS)
                                              : (int32_t) d;
}

/* The fairness word of k's peer for share (its key), found or made in
 * t->fair (any slot: a peer that stopped asking gives its slot up to a
 * new one), and the least count of the other peers asking for share
 * now: *others of them.  -1 if the table is full or a race lost the
 * slot (k is then not held this time). */
static int
up_fair_find(node_sent_sh_t *t, uint64_t key, uint64_t now8, uint64_t *mine,
             uint64_t *least, int *others)
{
    uint64_t w, share = key >> 54;
    int      j, slot = -1, spare = -1;

    *others = 0;
    for (j = 0; j < TS_UP_SEED_ASKERS_N; j++) {
        w = atomic_load(&t->fair[j]);
        if ((w & UP_FAIR_KEY_MASK) == key) {
            if (slot < 0) {
                slot = j;
                *mine = w;
            }
            continue;
        }
        if (!up_fair_asking(w, now8)) {
            if (spare < 0) {
                spare = j;
            }
            continue;
        }
        if ((w >> 54) != share) {
            continue;
        }
        if ((*others)++ == 0 || up_fair_diff(w, *least) < 0) {
            *least = w & UP_FAIR_V_MASK;
        }
    }
    if (slot < 0 && spare >= 0) {
        /* taken with a CAS: two uploaders may pick the same spare slot */
        w = atomic_load(&t->fair[spare]);
        if (up_fair_asking(w, now8)
            || !atomic_compare_exchange_strong(&t->fair[spare], &w, key))
        {
            return -1;
        }
        slot = spare;
        *mine = key;        /* not asking yet: it gets the catch-up below */
    }
    return slot;
}

int
up_fair_hold(up_t *u, up_link_t *k, int share)
{
    node_sent_sh_t *t = node_sent(u->shm);
    uint64_t        key, now8 = up_fair_now8(), mine = 0, v, least = 0;
    uint64_t        catchup;
    int             others, opt = (int) TS_UP_FAIR_LOWAT_B;
    int64_t         now;

    k->fair_slot = -1;
    if (t == NULL || share < 0 || TS_UP_FAIR_LEAD_N <= 0) {
        return 0;
    }
    key = (uint64_t) (uint32_t) share << 54
          | (uint64_t) up_seed_tag(k) << UP_FAIR_TAG_SHIFT;
    k->fair_slot = up_fair_find(t, key, now8, &mine, &least, &others);
    if (k->fair_slot < 0) {
        return 0;
    }
    v = mine & UP_FAIR_V_MASK;
    catchup = (least - (uint64_t) TS_UP_FAIR_CATCHUP_N) & UP_FAIR_V_MASK;
    if (others > 0 && !up_fair_asking(mine, now8)
        && up_fair_diff(v, catchup) < 0)
    {
        v = catchup;    /* new or back: a bounded head start over the
                           least served, no more */
    }
    atomic_store(&t->fair[k->fair_slot], key | now8 << UP_FAIR_T_SHIFT | v);
    if (others == 0) {
        k->fair_held_ms = 0;
        return 0;
    }
    if (!k->lowat) {
        /* the share is decided here, not by what the kernel holds */
        k->lowat = 1;
        (void) setsockopt(k->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &opt,
                          sizeof(opt));
    }
    now = ts_now_ms();
    if (up_fair_diff(v, least) <= TS_UP_FAIR_LEAD_N
        || (k->fair_held_ms != 0
            && now - k->fair_held_ms >= TS_UP_FAIR_HOLD_MAX_MS))
    {
        k->fair_held_ms = 0;
        return 0;
    }
    if (k->fair_held_ms == 0) {
        k->fair_held_ms = now;
    }
    atomic_fetch_add(&u->st->fair_holds, 1);
    up_rate_sleep(u, k, now + TS_UP_FAIR_RETRY_MS);
    return 1;
}

/* k's fairness word if it still is that of (share, k's peer), or NULL. */
static _Atomic uint64_t *
up_fair_word(up_t *u, const up_link_t *k, int share, uint64_t *w)
{
    node_sent_sh_t *t = node_sent(u->shm);
    uint64_t        key;

    if (t == NULL || k->fair_slot < 0 || share < 0) {
        return NULL;
    }
    key = (uint64_t) (uint32_t) share << 54
          | (uint64_t) up_seed_tag(k) << UP_FAIR_TAG_SHIFT;
    *w = atomic_load(&t->fair[k->fair_slot]);
    return (*w & UP_FAIR_KEY_MASK) == key ? &t->fair[k->fair_slot] : NULL;
}

void
up_fair_start(up_t *u, up_link_t *k, int share)
{
    _Atomic uint64_t *p;
    uint64_t          w;

    p = up_fair_word(u, k, share, &w);
    if (p == NULL) {
        return;             /* up_fair_hold did not count it: not counted */
    }
    atomic_store(p, (w & UP_FAIR_KEY_MASK) | up_fair_now8() << UP_FAIR_T_SHIFT
                    | ((w + 1) & UP_FAIR_V_MASK));
    k->fair_share = share;
}

void
up_fair_idle(up_t *u, up_link_t *k)
{
    _Atomic uint64_t *p;
    uint64_t          w;

    p = up_fair_word(u, k, k->fair_share, &w);
    k->fair_share = -1;
    if (p != NULL) {
        atomic_store(p, (w & UP_FAIR_KEY_MASK) | (w & UP_FAIR_V_MASK));
    }
}
