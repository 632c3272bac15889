/*
 * cli_state.c -- node.tdb: the client node's shares and downloads, per
 * user (see cli_state.h for keys and record layouts).
 *
 * Records are encoded by cli_rec.c (rejected whole when corrupt); this
 * file keys them by user, writes them in transactions and walks them.
 *
 * Locking: none here; the CLI serialises every call (the agent's
 * lock).  tdb's own fcntl locks keep a second process honest.
 * Crash behaviour: every put/delete runs inside a tdb transaction (its
 * own, or the caller's wider one), so a crash leaves each record old or
 * new; tdb replays or discards an interrupted transaction on open.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tdb.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "ts_kv.h"
#include "cli_state.h"

#define CLI_KEY_MAX_B  (2 + TS_ID_MAX_B + 1 + TS_ID_MAX_B + 1 \
                        + TS_NAME_MAX_B + 1)

struct cli_state_s {
    ts_kv_t  *kv;
};


/* ---- database ------------------------------------------------------- */

cli_state_t *
cli_state_open(const char *dir)
{
    cli_state_t  *st;
    char          path[PATH_MAX], err[512];

    if (snprintf(path, sizeof(path), "%s/%s", dir, CLI_STATE_FILE)
        >= (int) sizeof(path))
    {
        ts_err("state dir path too long: %s", dir);
        return NULL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->kv = ts_kv_open(path, 0, TDB_DEFAULT, O_CREAT | O_CLOEXEC, err,
                        sizeof(err));
    if (st->kv == NULL) {
        ts_err("%s", err);
        free(st);
        return NULL;
    }
    return st;
}


void
cli_state_close(cli_state_t *st)
{
    if (st != NULL) {
        ts_kv_close(st->kv);
        free(st);
    }
}


int
cli_state_begin(cli_state_t *st)
{
    return ts_kv_begin(st->kv);
}


int
cli_state_commit(cli_state_t *st)
{
    return ts_kv_commit(st->kv);
}


void
cli_state_cancel(cli_state_t *st)
{
    ts_kv_cancel(st->kv);
}


static int
cli_key(char *out, char kind, const char *user, const char *group,
        const char *name)
{
    int  n;

    if (!ts_valid_id(user) || !ts_valid_id(group)
        || !ts_valid_filename(name))
    {
        return -1;
    }
    n = snprintf(out, CLI_KEY_MAX_B + 1, "%c/%s/%s/%s", kind, user, group,
                 name);
    return (n > 0 && n <= CLI_KEY_MAX_B) ? n : -1;
}


/* One store or delete, in its own transaction unless one is open. */
static int
cli_write(cli_state_t *st, const char *key, int klen, const ts_wbuf_t *val)
{
    TDB_DATA  k, v;
    int       own, r;

    k.dptr = (unsigned char *) key;
    k.dsize = (size_t) klen;
    own = !ts_kv_in_txn(st->kv);
    if (own && cli_state_begin(st) != 0) {
        return -1;
    }
    if (val != NULL) {
        v.dptr = val->data;
        v.dsize = val->len;
        r = ts_kv_store(st->kv, k, v);
    } else {
        r = ts_kv_delete(st->kv, k) < 0 ? -1 : 0;
    }
    if (r != 0) {
        ts_err("node.tdb write of %s failed", key);
        if (own) {
            cli_state_cancel(st);
        }
        return -1;
    }
    return own ? cli_state_commit(st) : 0;
}


/* Writes val (NULL: deletes) under the key of (kind, user, group, name)
 * and frees val.  0 or -1. */
static int
cli_store(cli_state_t *st, char kind, const char *user, const char *group,
          const char *name, ts_wbuf_t *val)
{
    char  key[CLI_KEY_MAX_B + 1];
    int   klen = cli_key(key, kind, user, group, name), rc;

    rc = klen < 0 || (val != NULL && val->err) ? -1
         : cli_write(st, key, klen, val);
    if (val != NULL) {
        ts_wbuf_free(val);
    }
    return rc;
}


int
cli_state_share_put(cli_state_t *st, const char *user,
                    const cli_share_rec_t *r)
{
    ts_wbuf_t  b;

    ts_wbuf_init(&b);
    cli_share_encode(r, &b);
    return cli_store(st, 's', user, r->group, r->name, &b);
}


int
cli_state_dl_put(cli_state_t *st, const char *user, const cli_dl_rec_t *r)
{
    ts_wbuf_t  b;

    ts_wbuf_init(&b);
    cli_dl_encode(r, &b);
    return cli_store(st, 'd', user, r->group, r->name, &b);
}


int
cli_state_share_del(cli_state_t *st, const char *user, const char *group,
                    const char *name)
{
    return cli_store(st, 's', user, group, name, NULL);
}


int
cli_state_dl_del(cli_state_t *st, const char *user, const char *group,
                 const char *name)
{
    return cli_store(st, 'd', user, group, name, NULL);
}


/* 0 found (data->dptr malloc'd), 1 not found, -1 error */
static int
cli_fetch(cli_state_t *st, char kind, const char *user, const char *group,
          const char *name, TDB_DATA *data)
{
    char      key[CLI_KEY_MAX_B + 1];
    TDB_DATA  k;
    int       klen = cli_key(key, kind, user, group, name);

    if (klen < 0) {
        return -1;
    }
    k.dptr = (unsigned char *) key;
    k.dsize = (size_t) klen;
    return ts_kv_fetch(st->kv, k, data);
}


int
cli_state_share_get(cli_state_t *st, const char *user, const char *group,
                    const char *name, cli_share_rec_t *r)
{
    TDB_DATA  d;
    int       rc = cli_fetch(st, 's', user, group, name, &d);

    if (rc != 0) {
        return rc;
    }
    rc = cli_share_decode(d.dptr, d.dsize, r);
    free(d.dptr);
    if (rc == 0 && (strcmp(r->group, group) != 0
                    || strcmp(r->name, name) != 0))
    {
        rc = -1;
    }
    return rc;
}


int
cli_state_dl_get(cli_state_t *st, const char *user, const char *group,
                 const char *name, cli_dl_rec_t *r)
{
    TDB_DATA  d;
    int       rc = cli_fetch(st, 'd', user, group, name, &d);

    if (rc != 0) {
        return rc;
    }
    rc = cli_dl_decode(d.dptr, d.dsize, r);
    free(d.dptr);
    if (rc == 0 && (strcmp(r->group, group) != 0
                    || strcmp(r->name, name) != 0))
    {
        cli_dl_free(r);
        rc = -1;
    }
    return rc;
}


/* ---- traversal -------------------------------------------------------- */

typedef struct {
    char             kind;
    const char      *user;
    size_t           plen;
    char             prefix[2 + TS_ID_MAX_B + 2];
    cli_share_cb_t   share_fn;
    cli_dl_cb_t      dl_fn;
    void            *arg;
    int              count;
} cli_trav_t;


/* Splits "<group>/<name>" (not NUL-terminated) into the two fields. */
static int
cli_key_rest(const unsigned char *p, size_t n, char *group, char *name)
{
    const unsigned char  *slash;
    size_t                glen;

    slash = memchr(p, '/', n);
    if (slash == NULL) {
        return -1;
    }
    glen = (size_t) (slash - p);
    if (glen == 0 || glen > TS_ID_MAX_B || n - glen - 1 == 0
        || n - glen - 1 > TS_NAME_MAX_B)
    {
        return -1;
    }
    memcpy(group, p, glen);
    group[glen] = '\0';
    memcpy(name, slash + 1, n - glen - 1);
    name[n - glen - 1] = '\0';
    if (strlen(name) != n - glen - 1) {
        return -1;
    }
    return 0;
}


static int
cli_trav_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA val, void *arg)
{
    cli_trav_t       *t = arg;
    char              group[TS_ID_MAX_B + 1], name[TS_NAME_MAX_B + 1];
    cli_share_rec_t   sr;
    cli_dl_rec_t      dr;
    size_t            off;

    (void) tdb;
    if (key.dsize <= t->plen || memcmp(key.dptr, t->prefix, t->plen) != 0) {
        return 0;
    }
    off = t->plen;
    if (t->user == NULL) {
        /* every user's: past "<user>/" */
        const unsigned char *sl = memchr(key.dptr + off, '/',
                                         key.dsize - off);

        if (sl == NULL) {
            return 0;
        }
        off = (size_t) (sl - key.dptr) + 1;
    }
    if (cli_key_rest(key.dptr + off, key.dsize - off, group, name) != 0)
    {
        ts_warn("node.tdb: bad key skipped");
        return 0;
    }
    if (t->kind == 's') {
        if (cli_share_decode(val.dptr, val.dsize, &sr) != 0
            || strcmp(sr.group, group) != 0 || strcmp(sr.name, name) != 0)
        {
            ts_warn("node.tdb: corrupt share record %s/%s skipped", group,
                    name);
            return 0;
        }
        t->share_fn(t->arg, &sr);
    } else {
        if (cli_dl_decode(val.dptr, val.dsize, &dr) != 0) {
            ts_warn("node.tdb: corrupt download record %s/%s skipped",
                    group, name);
            return 0;
        }
        if (strcmp(dr.group, group) != 0 || strcmp(dr.name, name) != 0) {
            ts_warn("node.tdb: download record %s/%s does not match its "
                    "key; skipped", group, name);
            cli_dl_free(&dr);
            return 0;
        }
        t->dl_fn(t->arg, &dr);
        cli_dl_free(&dr);
    }
    t->count++;
    return 0;
}


static int
cli_traverse(cli_state_t *st, char kind, const char *user, cli_trav_t *t)
{
    if (!ts_valid_id(user)) {
        return -1;
    }
    t->kind = kind;
    t->user = user;
    t->plen = (size_t) snprintf(t->prefix, sizeof(t->prefix), "%c/%s/",
                                kind, user);
    t->count = 0;
    if (ts_kv_walk(st->kv, cli_trav_fn, t) < 0) {
        ts_err("node.tdb walk failed");
        return -1;
    }
    return t->count;
}


int
cli_state_shares(cli_state_t *st, const char *user, cli_share_cb_t fn,
                 void *arg)
{
    cli_trav_t  t;

    memset(&t, 0, sizeof(t));
    t.share_fn = fn;
    t.arg = arg;
    return cli_traverse(st, 's', user, &t);
}


int
cli_state_dls(cli_state_t *st, const char *user, cli_dl_cb_t fn, void *arg)
{
    cli_trav_t  t;

    memset(&t, 0, sizeof(t));
    t.dl_fn = fn;
    t.arg = arg;
    return cli_traverse(st, 'd', user, &t);
}


/* Every user's download records (a node nobody is logged in to). */
int
cli_state_dls_all(cli_state_t *st, cli_dl_cb_t fn, void *arg)
{
    cli_trav_t  t;

    memset(&t, 0, sizeof(t));
    t.dl_fn = fn;
    t.arg = arg;
    t.kind = 'd';
    t.plen = (size_t) snprintf(t.prefix, sizeof(t.prefix), "d/");
    if (ts_kv_walk(st->kv, cli_trav_fn, &t) < 0) {
        ts_err("node.tdb walk failed");
        return -1;
    }
    return t.count;
}
