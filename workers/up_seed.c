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
 * Locking: none; single-word atomic loads and stores.  Crash behaviour:
 * a lost entry costs a duplicate at most; the segment's reset zeroes it.
 */
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
