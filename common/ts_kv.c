/*
 * ts_kv.c -- a small wrapper around one tdb file (see ts_kv.h).
 *
 * Locking: one thread per ts_kv_t; tdb's fcntl locks between processes.
 *
 * Crash behaviour: as tdb's: transactions are crash-atomic; a process
 * killed inside one leaves nothing of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_log.h"
#include "ts_kv.h"

struct ts_kv_s {
    struct tdb_context *tdb;
    int                 in_txn;
};


static void
kv_log(struct tdb_context *tdb, enum tdb_debug_level level,
       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
kv_log(struct tdb_context *tdb, enum tdb_debug_level level,
       const char *fmt, ...)
{
    char     line[512];
    size_t   n;
    va_list  ap;

    (void) tdb;
    if (level > TDB_DEBUG_WARNING) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    n = strlen(line);
    while (n > 0 && line[n - 1] == '\n') {
        line[--n] = '\0';
    }
    ts_log(level == TDB_DEBUG_FATAL ? TS_LOG_ERROR : TS_LOG_WARN,
           "tdb: %s", line);
}


ts_kv_t *
ts_kv_open(const char *path, int hash_size, int tdb_flags, int open_flags,
           char *err, size_t errlen)
{
    ts_kv_t                    *kv;
    struct tdb_logging_context  lctx;

    kv = calloc(1, sizeof(*kv));
    if (kv == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    lctx.log_fn = kv_log;
    lctx.log_private = NULL;
    errno = 0;
    kv->tdb = tdb_open_ex(path, hash_size, tdb_flags,
                          O_RDWR | open_flags, 0600, &lctx, NULL);
    if (kv->tdb == NULL) {
        snprintf(err, errlen, "cannot open database %s: %s", path,
                 errno ? strerror(errno) : "not a tdb file");
        free(kv);
        return NULL;
    }
    return kv;
}


void
ts_kv_close(ts_kv_t *kv)
{
    if (kv == NULL) {
        return;
    }
    ts_kv_cancel(kv);
    tdb_close(kv->tdb);
    free(kv);
}


struct tdb_context *
ts_kv_tdb(ts_kv_t *kv)
{
    return kv->tdb;
}


int
ts_kv_begin(ts_kv_t *kv)
{
    if (kv->in_txn) {
        ts_err("tdb transaction already open");
        return -1;
    }
    if (tdb_transaction_start(kv->tdb) != 0) {
        ts_err("tdb_transaction_start() failed: %s", tdb_errorstr(kv->tdb));
        return -1;
    }
    kv->in_txn = 1;
    return 0;
}


int
ts_kv_commit(ts_kv_t *kv)
{
    if (!kv->in_txn) {
        return -1;
    }
    kv->in_txn = 0;
    if (tdb_transaction_commit(kv->tdb) != 0) {
        /* tdb cancels a transaction whose commit failed */
        ts_err("tdb_transaction_commit() failed: %s", tdb_errorstr(kv->tdb));
        return -1;
    }
    return 0;
}


void
ts_kv_cancel(ts_kv_t *kv)
{
    if (kv->in_txn) {
        kv->in_txn = 0;
        tdb_transaction_cancel(kv->tdb);
    }
}


int
ts_kv_in_txn(const ts_kv_t *kv)
{
    return kv->in_txn;
}


const char *
ts_kv_errstr(ts_kv_t *kv)
{
    return tdb_errorstr(kv->tdb);
}


int
ts_kv_fetch(ts_kv_t *kv, TDB_DATA key, TDB_DATA *out)
{
    *out = tdb_fetch(kv->tdb, key);
    if (out->dptr == NULL) {
        return tdb_error(kv->tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    return 0;
}


int
ts_kv_store(ts_kv_t *kv, TDB_DATA key, TDB_DATA val)
{
    if (tdb_store(kv->tdb, key, val, TDB_REPLACE) != 0) {
        ts_err("tdb_store() failed: %s", tdb_errorstr(kv->tdb));
        return -1;
    }
    return 0;
}


int
ts_kv_delete(ts_kv_t *kv, TDB_DATA key)
{
    if (tdb_delete(kv->tdb, key) != 0) {
        return tdb_error(kv->tdb) == TDB_ERR_NOEXIST ? 1 : -1;
    }
    return 0;
}


int
ts_kv_walk(ts_kv_t *kv, tdb_traverse_func fn, void *arg)
{
    if (kv->in_txn) {
        return tdb_traverse(kv->tdb, fn, arg);
    }
    return tdb_traverse_read(kv->tdb, fn, arg);
}
