/*
 * cli_http_api.c -- the node's JSON API (GET): /healthz, /api/v1/node,
 * /api/v1/downloads, /api/v1/downloads/<group>/<name>/chunks,
 * /api/v1/shares and /api/v1/uploads (the contract is in README.md,
 * "HTTP endpoint of a node").
 *
 * Purpose: each handler builds one JSON object from the node's shm (the
 * seqlock readers for text fields, atomic loads for the rest) and the
 * rates of cli_http.c's sampler.  A download's "id" is
 * "<group>/<name>" with both parts percent-escaped, so it is one path
 * segment pair of the chunks URL.
 *
 * Locking: none beyond shm's protocol (node_shm.h): values are a moment
 * old and two of them may be from instants a few microseconds apart.
 *
 * Crash behaviour: memory only.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>

#include "ts_clock.h"
#include "ts_config.h"
#include "node.h"
#include "node_shm.h"
#include "cli_sessfile.h"
#include "cli_http.h"

/* the characters of a chunk map's sources (index = source index) */
static const char  srcchars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";


void
cli_http_json(ts_http_resp_t *r, json_t *o)
{
    char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

    json_decref(o);
    if (s == NULL) {
        ts_http_error(r, 500, "out of memory");
        return;
    }
    ts_http_reply(r, 200, "application/json", s, strlen(s));
}


void
cli_http_fp_hex(const uint8_t *fp, char out[17])
{
    int  i;

    for (i = 0; i < 8; i++) {
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
    }
}


int
cli_http_split(char *rest, char **group, char **name, char **last)
{
    char *a = strchr(rest, '/'), *b = strrchr(rest, '/');

    if (a == NULL || a == b || a == rest || b[1] == '\0' || b == a + 1) {
        return -1;
    }
    *a = '\0';
    *b = '\0';
    *group = rest;
    *name = a + 1;
    *last = b + 1;
    return strlen(*group) > TS_ID_MAX_B || strlen(*name) > TS_NAME_MAX_B
           ? -1 : 0;
}


/* s percent-escaped (all but RFC 3986's unreserved) into a new string. */
static json_t *
cli_http_esc(const char *s)
{
    char    buf[3 * (TS_NAME_MAX_B + 1) + 1];
    size_t  o = 0;

    for (; *s != '\0' && o + 4 < sizeof(buf); s++) {
        unsigned char c = (unsigned char) *s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'
            || c == '~')
        {
            buf[o++] = (char) c;
        } else {
            o += (size_t) snprintf(buf + o, 4, "%%%02X", c);
        }
    }
    buf[o] = '\0';
    return json_string(buf);
}


/* ---- /healthz, /api/v1/node ------------------------------------------ */

/* 1 if a process of role runs in an active slot. */
static int
cli_http_role_up(int role)
{
    ts_slot_sh_t *sl = node_slots(cli_http_shm());
    int           i;

    for (i = 0; sl != NULL && i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&sl[i].owner) != 0
            && atomic_load(&sl[i].role) == (uint32_t) role
            && atomic_load(&sl[i].state) == TS_SLOT_ACTIVE)
        {
            return 1;
        }
    }
    return 0;
}


void
cli_http_get_healthz(void *arg, const char *path, ts_http_resp_t *r)
{
    int     agent = cli_http_role_up(NODE_ROLE_AGENT);
    int     up = cli_http_role_up(NODE_ROLE_UPLOADER);
    json_t *why = json_array(), *o;

    if (!agent) {
        json_array_append_new(why, json_string("the agent is not running"));
    }
    if (!up) {
        json_array_append_new(why, json_string("no uploader is running"));
    }
    o = json_pack("{s:s, s:b, s:b, s:o}", "status", agent && up ? "ok"
                  : "degraded", "live", 1, "ready", agent && up, "why", why);
    cli_http_json(r, o);
    if (r->status == 200 && !(agent && up)) {
        r->status = 503;
    }
}


void
cli_http_get_node(void *arg, const char *path, ts_http_resp_t *r)
{
    const cli_http_cfg_t *c = cli_http_cfg();
    node_stats_sh_t      *st = node_stats(cli_http_shm());
    node_rate_now_t       rn;
    cli_sessfile_t        sf;
    char                  sp[4200];
    json_t               *o;

    memset(&rn, 0, sizeof(rn));
    (void) node_rate_get(cli_http_shm(), &rn);
    memset(&sf, 0, sizeof(sf));
    snprintf(sp, sizeof(sp), "%s/session", c->state_dir);
    if (cli_sessfile_load(sp, &sf) != 0) {
        sf.user[0] = '\0';
    }
    explicit_bzero(sf.tok, sizeof(sf.tok));
    o = json_pack("{s:s, s:i, s:s, s:s, s:o, s:I, s:f, s:f, s:I, s:I, "
                  "s:I, s:I}",
                  "kind", "node", "pid", (int) getppid(),
                  "addr", c->node_addr, "state_dir", c->state_dir,
                  "user", sf.user[0] ? json_string(sf.user) : json_null(),
                  "uptime_s", (json_int_t) ((ts_wall_ms() - c->started_ms)
                                            / 1000),
                  "up_Bps", cli_http_rate_node(1),
                  "down_Bps", cli_http_rate_node(0),
                  "up_cap_Bps", (json_int_t) rn.up_Bps,
                  "down_cap_Bps", (json_int_t) rn.down_Bps,
                  "up_total_B", (json_int_t) (st != NULL
                                ? atomic_load(&st->bytes_up) : 0),
                  "down_total_B", (json_int_t) (st != NULL
                                  ? atomic_load(&st->bytes_down) : 0));
    cli_http_json(r, o);
}


/* ---- /api/v1/downloads ------------------------------------------------ */

static const char *
cli_http_dl_state(const node_dl_sh_t *d, uint32_t st)
{
    switch (st) {
    case NODE_DL_DONE:
        return "done";
    case NODE_DL_FAILED:
        return "failed";
    case NODE_DL_PAUSED:
        return "paused";
    default:
        break;
    }
    if (st == NODE_DL_ACTIVE && atomic_load(&d->denied)) {
        return "denied";
    }
    if (st == NODE_DL_ACTIVE && atomic_load(&d->waiting)) {
        return "waiting";
    }
    return "running";
}


static const char *
cli_http_src_state(const node_src_sh_t *s)
{
    switch (atomic_load(&s->state)) {
    case NODE_SRC_GONE:
        return "gone";
    case NODE_SRC_DROPPED:
        return "dropped";
    default:
        /* verified bytes: a peer may have sent blocks only */
        return atomic_load(&s->bytes) > 0 ? "serving" : "listed";
    }
}


static json_t *
cli_http_sources(const node_dl_sh_t *live)
{
    json_t *a = json_array();
    char    fp[17];
    int     j;

    for (j = 0; j < TS_NODE_SOURCES_N; j++) {
        const node_src_sh_t *s = &live->src[j];

        if (atomic_load(&s->state) == NODE_SRC_FREE) {
            continue;
        }
        /* addr and fp are written while FREE and never change after */
        cli_http_fp_hex(s->fp, fp);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I, "
            "s:I, s:i, s:i, s:i, s:b}",
            "addr", s->addr, "fp", fp, "state", cli_http_src_state(s),
            "chunks", (json_int_t) atomic_load(&s->chunks),
            "bytes", (json_int_t) atomic_load(&s->bytes),
            "rate_Bps", (json_int_t) atomic_load(&s->rate_bps),
            "load", (int) atomic_load(&s->load),
            "inflight", (int) atomic_load(&s->inflight),
            "bad", (int) atomic_load(&s->failures),
            "complete", (int) atomic_load(&s->complete)));
    }
    return a;
}


/* One download as the API shows it, or NULL (entry free). */
static json_t *
cli_http_dl(int i)
{
    const ts_shm_t *shm = cli_http_shm();
    node_dl_sh_t   *live = &node_dls(shm)[i];
    static node_dl_sh_t  d;         /* big: not on the stack */
    uint32_t        st, id = atomic_load(&live->id);
    uint64_t        bytes;
    double          bps;
    json_t         *o, *gid;
    char            idbuf[3 * (TS_ID_MAX_B + TS_NAME_MAX_B) + 8];

    if (node_dl_snapshot(shm, i, &d) != 0) {
        return NULL;
    }
    st = atomic_load(&live->state);
    bytes = atomic_load(&live->bytes_done);
    bps = cli_http_rate_dl(i, id);
    gid = cli_http_esc(d.group);
    o = cli_http_esc(d.name);
    snprintf(idbuf, sizeof(idbuf), "%s/%s", json_string_value(gid),
             json_string_value(o));
    json_decref(gid);
    json_decref(o);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:i, s:f, s:s, "
                  "s:i, s:i, s:o}",
        "id", idbuf, "group", d.group, "name", d.name, "dest", d.dest,
        "state", cli_http_dl_state(live, st),
        "size", (json_int_t) d.size, "bytes", (json_int_t) bytes,
        "pct", st == NODE_DL_DONE ? 100 : d.size == 0 ? 0
               : (int) (bytes * 100 / d.size) >= 100 ? 99
               : (int) (bytes * 100 / d.size),
        "bps", bps,
        "error", st == NODE_DL_FAILED ? d.error : "",
        "nchunks", (int) d.nchunks,
        "chunks_done", (int) atomic_load(&live->chunks_done),
        "sources", cli_http_sources(live));
    if (o != NULL) {
        json_object_set_new(o, "eta_s", bps > 0 && bytes < d.size
            && st == NODE_DL_ACTIVE
            ? json_integer((json_int_t) ((double) (d.size - bytes) / bps))
            : json_null());
    }
    return o;
}


void
cli_http_get_downloads(void *arg, const char *path, ts_http_resp_t *r)
{
    json_t *a = json_array(), *o;
    int     i;

    for (i = 0; node_dls(cli_http_shm()) != NULL && i < TS_NODE_DOWNLOADS_N;
         i++)
    {
        o = cli_http_dl(i);
        if (o != NULL) {
            json_array_append_new(a, o);
        }
    }
    cli_http_json(r, json_pack("{s:o}", "downloads", a));
}


/* The chunk map of download i (nchunks chars), see README. */
static json_t *
cli_http_map(int i, uint32_t nchunks)
{
    const ts_shm_t   *shm = cli_http_shm();
    _Atomic uint64_t *done = node_dl_done(shm, i);
    _Atomic uint64_t *claims = node_dl_claims(shm, i);
    _Atomic uint8_t  *srcof = node_dl_srcof(shm, i);
    char             *m = malloc(nchunks + 1);
    json_t           *s;
    uint32_t          c, k;

    if (m == NULL) {
        return NULL;
    }
    for (c = 0; c < nchunks; c++) {
        if (node_bit_test(done, c)) {
            k = atomic_load_explicit(&srcof[c], memory_order_relaxed);
            m[c] = k > 0 && k <= sizeof(srcchars) - 1 ? srcchars[k - 1]
                                                      : '+';
        } else if (atomic_load_explicit(&claims[c], memory_order_relaxed)
                   != 0)
        {
            m[c] = '*';
        } else {
            m[c] = '.';
        }
    }
    m[nchunks] = '\0';
    s = json_stringn(m, nchunks);
    free(m);
    return s;
}


void
cli_http_get_dl_sub(void *arg, const char *path, ts_http_resp_t *r)
{
    static node_dl_sh_t  d;
    const ts_shm_t *shm = cli_http_shm();
    char            rest[TS_ID_MAX_B + TS_NAME_MAX_B + 64];
    char           *g, *n, *what;
    size_t          pl = strlen("/api/v1/downloads/");
    json_t         *srcs, *map;
    int             i, j, top;

    if (strlen(path) - pl >= sizeof(rest)) {
        ts_http_error(r, 404, "no such download");
        return;
    }
    memcpy(rest, path + pl, strlen(path) - pl + 1);
    if (cli_http_split(rest, &g, &n, &what) != 0
        || strcmp(what, "chunks") != 0)
    {
        ts_http_error(r, 404, "no such path (/api/v1/downloads/<group>/"
                      "<name>/chunks)");
        return;
    }
    for (i = 0; node_dls(shm) != NULL && i < TS_NODE_DOWNLOADS_N; i++) {
        if (node_dl_snapshot(shm, i, &d) == 0 && strcmp(d.group, g) == 0
            && strcmp(d.name, n) == 0)
        {
            break;
        }
    }
    if (node_dls(shm) == NULL || i == TS_NODE_DOWNLOADS_N) {
        ts_http_error(r, 404, "no such download in the node");
        return;
    }
    /* "sources" is indexed like the map's characters: every slot up to
     * the last one in use, "" for a free one */
    for (top = TS_NODE_SOURCES_N; top > 0; top--) {
        if (atomic_load(&node_dls(shm)[i].src[top - 1].state)
            != NODE_SRC_FREE)
        {
            break;
        }
    }
    srcs = json_array();
    for (j = 0; j < top; j++) {
        const node_src_sh_t *s = &node_dls(shm)[i].src[j];

        json_array_append_new(srcs, json_string(
            atomic_load(&s->state) != NODE_SRC_FREE ? s->addr : ""));
    }
    map = cli_http_map(i, d.nchunks <= TS_FILE_MAX_CHUNKS_N
                          ? d.nchunks : TS_FILE_MAX_CHUNKS_N);
    if (map == NULL) {
        json_decref(srcs);
        ts_http_error(r, 500, "out of memory");
        return;
    }
    cli_http_json(r, json_pack("{s:i, s:o, s:o}", "nchunks",
                               (int) d.nchunks, "sources", srcs, "map",
                               map));
}


/* ---- /api/v1/shares, /api/v1/uploads ----------------------------------- */

void
cli_http_get_shares(void *arg, const char *path, ts_http_resp_t *r)
{
    static node_share_sh_t  e;
    static const char *const states[] = { "free", "ready", "stale",
                                          "stopped" };
    const ts_shm_t *shm = cli_http_shm();
    json_t         *a = json_array();
    uint32_t        st;
    int             i;

    for (i = 0; node_shares(shm) != NULL && i < TS_NODE_SHARES_N; i++) {
        if (node_share_snapshot(shm, i, &e) != 0) {
            continue;
        }
        st = atomic_load(&node_shares(shm)[i].state);
        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:I, s:I, "
            "s:I, s:i, s:s}",
            "group", e.group, "name", e.name, "path", e.path,
            "size", (json_int_t) e.size,
            "chunks_up", (json_int_t) atomic_load(
                              &node_shares(shm)[i].chunks_served),
            "bytes_up", (json_int_t) atomic_load(
                              &node_shares(shm)[i].bytes_served),
            "nchunks", (int) e.nchunks,
            "state", st < 4 ? states[st] : "?"));
    }
    cli_http_json(r, json_pack("{s:o}", "shares", a));
}


void
cli_http_get_uploads(void *arg, const char *path, ts_http_resp_t *r)
{
    node_peer_sh_t *pt = node_peers(cli_http_shm());
    json_t         *a = json_array(), *o;
    char            fp[17];
    int             i;

    for (i = 0; pt != NULL && i < TS_NODE_PEER_STATS_N; i++) {
        const node_peer_sh_t *e = &pt[i];
        int  other = i < 2;

        if (other ? i != NODE_DIR_UP || atomic_load(&e->chunks) == 0
                  : atomic_load(&e->state) != NODE_PEER_USED
                    || e->dir != NODE_DIR_UP)
        {
            continue;
        }
        cli_http_fp_hex(e->fp, fp);
        o = json_pack("{s:s, s:s, s:I, s:I, s:I}",
                      "addr", other ? "other" : e->addr,
                      "fp", other ? "" : fp,
                      "chunks", (json_int_t) atomic_load(&e->chunks),
                      "bytes", (json_int_t) atomic_load(&e->bytes),
                      "rate_Bps", (json_int_t) cli_http_rate_peer(i));
        json_array_append_new(a, o);
    }
    cli_http_json(r, json_pack("{s:o}", "peers", a));
}
