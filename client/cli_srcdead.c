/*
 * cli_srcdead.c -- dead and serving sources of one download, as the
 * agent sees them in the node segment (see cli_srcdead.h).
 *
 * Purpose: the tracker may list sources that never answer (a member
 * registering a file from addresses nobody listens on, a node behind a
 * firewall, a stale identity).  The downloaders count each source's
 * consecutive failures (connect refused or timed out, TLS handshake
 * against the listed fingerprint, PEER_AUTH refused) in shm; at
 * TS_CLI_SRC_DEAD_ERRORS_N the agent declares it dead: its shm entry goes
 * GONE (the downloaders leave it and its slot is free for another), it
 * is left out of the lists the tracker sends for TS_CLI_SRC_DEAD_MIN_MS,
 * doubling per death in a row up to TS_CLI_SRC_DEAD_MAX_MS, and FILE_INFO
 * asks the tracker to leave it out meanwhile.  A source that serves a
 * verified chunk is forgiven.  The same scan of the slots finds the
 * sources whose verified-chunk count grew since the last HAVE_CHUNKS:
 * those are reported as having served (the tracker's "proven" sources).
 *
 * Locking: cli_agent.mu held by every caller; the shm fields are read
 * with atomics, the text fields are written only by the agent itself
 * (node_dl_set_sources) under the same lock.
 *
 * Crash behaviour: nothing persistent.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "node_shm.h"
#include "cli_srcdead.h"


static int
sd_find(const cli_srcmem_t *m, const char *addr, const uint8_t *fp)
{
    int i;

    for (i = 0; i < m->ndead; i++) {
        if (strcmp(m->dead[i].addr, addr) == 0
            && memcmp(m->dead[i].fp, fp, TS_FP_B) == 0)
        {
            return i;
        }
    }
    return -1;
}


/* The slot of source (addr, fp) in m: an old entry that is not dead any
 * more first, else the one dead the shortest time ahead. */
static int
sd_slot(cli_srcmem_t *m, int64_t now)
{
    int i, best = 0;

    if (m->ndead < TS_CLI_SRC_DEAD_N) {
        memset(&m->dead[m->ndead], 0, sizeof(m->dead[0]));
        return m->ndead++;
    }
    for (i = 1; i < m->ndead; i++) {
        if (m->dead[i].until_ms < m->dead[best].until_ms) {
            best = i;
        }
    }
    memset(&m->dead[best], 0, sizeof(m->dead[0]));
    return best;
}


static void
sd_forget(cli_srcmem_t *m, int i)
{
    m->dead[i] = m->dead[--m->ndead];
}


int
cli_srcdead_scan(cli_srcmem_t **mp, node_dl_sh_t *d, int64_t now)
{
    cli_srcmem_t  *m = *mp;
    node_src_sh_t *sr;
    int64_t        backoff;
    uint32_t       st;
    int            j, i, died = 0;

    if (m == NULL) {
        m = *mp = calloc(1, sizeof(*m));
        if (m == NULL) {
            return 0;
        }
    }
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        sr = &d->src[j];
        st = atomic_load(&sr->state);
        if (st != NODE_SRC_LIVE && st != NODE_SRC_DROPPED) {
            continue;
        }
        i = sd_find(m, sr->addr, sr->fp);
        if (st == NODE_SRC_LIVE && atomic_load(&sr->errors) == 0
            && atomic_load(&sr->chunks) > 0)
        {
            if (i >= 0) {
                sd_forget(m, i);        /* it serves: not dead after all */
            }
            continue;
        }
        if (st == NODE_SRC_LIVE
            && atomic_load(&sr->errors) < TS_CLI_SRC_DEAD_ERRORS_N)
        {
            continue;
        }
        if (i >= 0 && m->dead[i].until_ms > now) {
            continue;                   /* known dead; shm catches up */
        }
        if (i < 0) {
            i = sd_slot(m, now);
            memcpy(m->dead[i].addr, sr->addr, sizeof(m->dead[i].addr));
            m->dead[i].addr[sizeof(m->dead[i].addr) - 1] = '\0';
            memcpy(m->dead[i].fp, sr->fp, TS_FP_B);
        } else if (m->dead[i].level < 16) {
            m->dead[i].level++;         /* died again after its backoff */
        }
        backoff = (int64_t) TS_CLI_SRC_DEAD_MIN_MS << m->dead[i].level;
        if (backoff > TS_CLI_SRC_DEAD_MAX_MS) {
            backoff = TS_CLI_SRC_DEAD_MAX_MS;
        }
        m->dead[i].until_ms = now + backoff;
        /* the downloaders leave a GONE source; a DROPPED one stays so */
        st = NODE_SRC_LIVE;
        (void) atomic_compare_exchange_strong(&sr->state, &st,
                                              NODE_SRC_GONE);
        died = 1;
    }
    return died;
}


void
cli_srcdead_filter(const cli_srcmem_t *m, cli_finfo_t *fi, int64_t now)
{
    int i, j, k;

    if (m == NULL) {
        return;
    }
    for (i = 0, k = 0; i < fi->nsrc; i++) {
        j = sd_find(m, fi->src[i].addr, fi->src[i].fp);
        if (j >= 0 && m->dead[j].until_ms > now) {
            continue;
        }
        fi->src[k++] = fi->src[i];
    }
    fi->nsrc = k;
}


void
cli_srcdead_put_excl(const cli_srcmem_t *m, ts_wbuf_t *b, int64_t now)
{
    int       i;
    uint32_t  n = 0;

    if (m == NULL) {
        return;
    }
    for (i = 0; i < m->ndead; i++) {
        n += m->dead[i].until_ms > now;
    }
    if (n == 0) {
        return;
    }
    if (n > TS_TRK_FINFO_EXCLUDE_N) {
        n = TS_TRK_FINFO_EXCLUDE_N;
    }
    ts_put_u32(b, n);
    for (i = 0; i < m->ndead && n > 0; i++) {
        if (m->dead[i].until_ms > now) {
            ts_put_str(b, m->dead[i].addr);
            n--;
        }
    }
}


void
cli_srcdead_put_served(cli_srcmem_t **mp, node_dl_sh_t *d, ts_wbuf_t *b)
{
    node_src_sh_t *sr;
    cli_served_t  *v;
    cli_srcmem_t  *m = *mp;
    uint64_t       c;
    uint32_t       st, n = 0;
    int            j, idx[TS_NODE_SOURCES_N];

    if (m == NULL) {
        m = *mp = calloc(1, sizeof(*m));
        if (m == NULL) {
            return;
        }
    }
    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        sr = &d->src[j];
        v = &m->served[j];
        st = atomic_load(&sr->state);
        if (st == NODE_SRC_FREE || st == NODE_SRC_DROPPED) {
            continue;
        }
        if (strncmp(v->addr, sr->addr, sizeof(v->addr)) != 0
            || memcmp(v->fp, sr->fp, TS_FP_B) != 0)
        {
            /* the slot holds another source now */
            memcpy(v->addr, sr->addr, sizeof(v->addr));
            v->addr[sizeof(v->addr) - 1] = '\0';
            memcpy(v->fp, sr->fp, TS_FP_B);
            v->chunks = 0;
        }
        c = atomic_load(&sr->chunks);
        if (c > v->chunks && v->addr[0] != '\0') {
            v->chunks = c;
            idx[n++] = j;
        }
    }
    if (n == 0) {
        return;
    }
    ts_put_u32(b, n);
    for (j = 0; j < (int) n; j++) {
        ts_put_str(b, m->served[idx[j]].addr);
        ts_put_raw(b, m->served[idx[j]].fp, TS_FP_B);
    }
}
