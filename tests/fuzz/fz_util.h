/*
 * fz_util.h -- helpers shared by the libFuzzer targets in tests/fuzz/:
 * the entry points' set-up and the mode byte, a per-process temp
 * directory, quiet logging, a cursor over the fuzz input, file helpers,
 * a test PKI, and a tracker store put back to its start per input.
 *
 * Locking: none; a fuzz target is one thread.
 * Crash behaviour: the temp directory lives under $TMPDIR (tests/fuzz/
 * run.sh points it at a directory it removes afterwards) and is removed
 * at a normal exit; a crashing target leaves it for the runner to remove.
 */
#ifndef FZ_UTIL_H_INCLUDED
#define FZ_UTIL_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ts_buf.h"
#include "trk_oplog.h"
#include "trk_store.h"

/* libFuzzer's entry points (no header of its own declares them).  Every
 * target defines LLVMFuzzerTestOneInput.  fz_util.c has a weak
 * LLVMFuzzerInitialize: fz_quiet, then fz_init, the target's own
 * once-per-process set-up (a weak no-op unless the target defines it);
 * a target may define LLVMFuzzerInitialize itself instead. */
int         LLVMFuzzerInitialize(int *argc, char ***argv);
int         LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
void        fz_init(void);

/* One mode of a target: it gets the input after the mode byte. */
typedef void (*fz_mode_t)(const uint8_t *p, size_t n);

/* Input byte 0 picks one of the nmodes modes (byte % nmodes), which gets
 * the rest as an exact-size malloc'd copy (so ASan sees a read past its
 * end); an empty input runs nothing.  Returns 0, what
 * LLVMFuzzerTestOneInput returns: FZ_MODES(data, size, modes) with an
 * array of modes. */
int         fz_modes(const uint8_t *data, size_t size,
                     const fz_mode_t *modes, size_t nmodes);
#define FZ_MODES(data, size, modes)                                       \
    fz_modes((data), (size), (modes), sizeof(modes) / sizeof((modes)[0]))

/* Logs only errors and tags them "fuzz" (run.sh closes stderr anyway). */
void        fz_quiet(void);
/* The process's temp directory (created on first use, removed at exit);
 * aborts if it cannot be made: a target must not write anywhere else. */
const char *fz_tmpdir(void);
/* rm -rf path; 0 or -1. */
int         fz_rm_rf(const char *path);
/* Whole-file helpers: 0 or -1; fz_read_file mallocs *out. */
int         fz_write_file(const char *path, const void *p, size_t n);
int         fz_read_file(const char *path, uint8_t **out, size_t *n);

/* A cluster PKI under <tmpdir>/<name>: ca.crt/.key and tracker-1 and
 * tracker-2 certificates (ts_pki_ensure_*); aborts on failure.  Paths
 * are written into the caller's buffers (PATH_MAX each, may be NULL). */
void        fz_pki(const char *name, char *ca, char *crt1, char *key1,
                   char *crt2, char *key2);

/* A tdb's records as (blob key, blob value) pairs, and back: restore
 * wipes the database and stores the saved records in one transaction
 * (much cheaper than a fresh file per input).  Abort on failure. */
struct tdb_context;
void        fz_tdb_save(struct tdb_context *tdb, ts_wbuf_t *out);
void        fz_tdb_restore(struct tdb_context *tdb, const ts_wbuf_t *saved);

/* A cursor over the input: every read past the end yields zeros / an
 * empty span, so targets never index outside the input. */
typedef struct {
    const uint8_t *p;
    size_t         n;
    size_t         off;
} fz_in_t;

void            fz_in_init(fz_in_t *in, const uint8_t *p, size_t n);
uint8_t         fz_u8(fz_in_t *in);
uint16_t        fz_u16(fz_in_t *in);           /* big endian */
uint32_t        fz_u32(fz_in_t *in);
/* Up to n bytes (fewer at the end); *got gets how many. */
const uint8_t  *fz_take(fz_in_t *in, size_t n, size_t *got);
size_t          fz_left(const fz_in_t *in);

/* A malloc'd copy (so ASan sees reads past the end of a span). */
uint8_t        *fz_dup(const uint8_t *p, size_t n);

#define FZ_CHECK(cond)                                                    \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fz_fail(__FILE__, __LINE__, #cond);                           \
        }                                                                 \
    } while (0)

/* Prints the broken invariant and aborts (libFuzzer saves the input). */
void fz_fail(const char *file, int line, const char *what)
    __attribute__((noreturn));

/* A tracker store <tmpdir>/<name> (tracker 1, with its epoch), made once
 * per process; its initial records are saved in tmpl, so that
 * fz_tdb_restore(trk_store_tdb(st), tmpl) puts it back to its empty
 * start for every input (much cheaper than a fresh file).  Aborts on
 * failure.  Inline: only the targets that link the tracker's objects
 * call it. */
static inline trk_store_t *
fz_trk_store(const char *name, ts_wbuf_t *tmpl)
{
    char         path[600], err[256];
    trk_store_t *st;

    snprintf(path, sizeof(path), "%s/%s", fz_tmpdir(), name);
    st = trk_store_open(path, 1, 1, err, sizeof(err));
    if (st == NULL || trk_epoch_get(st, 1) == 0) {
        fz_fail(__FILE__, __LINE__, "tracker store");
    }
    fz_tdb_save(trk_store_tdb(st), tmpl);
    return st;
}

#endif
