/*
 * gen_corpus.h -- what the files of the seed-corpus generator share
 * (gen_corpus.c: main and the output; gen_store.c: tracker stores with
 * some history; gen_trk.c: tracker requests, replication and records;
 * gen_peer.c: tickets, client replies and peer streams).
 *
 * Locking: single-threaded program.  Crash behaviour: any failure ends
 * the program (exit 1) with a message; its stores live in fz_tmpdir().
 */
#ifndef GEN_CORPUS_H_INCLUDED
#define GEN_CORPUS_H_INCLUDED

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ts_buf.h"
#include "ts_ticket.h"
#include "trk_store.h"

typedef struct {
    trk_store_t      *st;
    _Atomic uint64_t  hlc;
} gen_store_t;

/* every replicated key of a store and its envelope (gen_collect) */
typedef struct {
    int        n;
    char       key[64][128];
    ts_wbuf_t  env[64];
} gen_envs_t;


/* gen_corpus.c: the output */
void gen_emit(const char *target, const char *name, const void *p, size_t n);
void gen_emit_m(const char *target, const char *name, uint8_t mode,
    const void *p, size_t n);
void gen_must(int ok, const char *what);

/* gen_store.c */
void gen_store_open(gen_store_t *g, const char *name, int origin);
void gen_history(gen_store_t *g, int origin);
int gen_collect(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
    void *arg);
void gen_name_of(char *out, size_t outsz, const char *prefix,
    const char *key);

/* gen_trk.c */
void gen_trk_ops(const gen_envs_t *e, const ts_wbuf_t *op);
void gen_trk_sync(const gen_envs_t *a, const gen_envs_t *b,
    const ts_wbuf_t *ops, int nops);
void gen_records(gen_store_t *g, const gen_envs_t *e);

/* gen_peer.c */
void gen_ticket(ts_ticket_signer_t *s);
void gen_cli_reply(ts_ticket_signer_t *s);
void gen_peer(ts_ticket_signer_t *s);

#endif /* GEN_CORPUS_H_INCLUDED */
