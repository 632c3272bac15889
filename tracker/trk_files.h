/*
 * trk_files.h -- the tracker's file registry: the rules of message types
 * 30..35 (UPLOAD_FILE, LIST_FILES, FILE_INFO, STOP_SHARE, HAVE_CHUNKS,
 * MY_SHARES) and the registration of their handlers.
 *
 * Write rules and handlers: trk_files.c; read rules: trk_file_info.c;
 * the f/ p/ l/ m/ n/ records, presence and the hooks the session and
 * group code call: trk_sources.h (included here).  Keys: trk_keys.h.
 *
 * Locking: like trk_store.h -- one thread per trk_store_t; every rule and
 * hook runs inside the caller's tdb transaction, checks first and writes
 * last, so an error status leaves no change that the caller would commit
 * (the dispatcher cancels on TS_ERR_INTERNAL).
 */
#ifndef TRK_FILES_H_INCLUDED
#define TRK_FILES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "ts_config.h"
#include "ts_buf.h"
#include "ts_proto.h"
#include "trk_sources.h"

/* ---- rules (inside a transaction; the writes do not commit) ----------- */
ts_status_t trk_do_upload(const trk_fctx_t *c, const char *group,
                          const char *name, uint64_t size,
                          const uint8_t sha1[20], uint32_t nchunks,
                          const uint8_t *hashes, char *msg, size_t msgsz);
/* Membership of c->user in group (a valid id): TS_OK or an error with
 * its text in msg. */
ts_status_t trk_files_check_member(const trk_fctx_t *c, const char *group,
                                   char *msg, size_t msgsz);
/* A valid group id and file name (and a node address when need_node). */
ts_status_t trk_files_check_args(const trk_fctx_t *c, const char *group,
                                 const char *name, int need_node, char *msg,
                                 size_t msgsz);
/* Appends u32 n, n x (str name, u64 size, u32 sources_online). */
ts_status_t trk_do_list_files(const trk_fctx_t *c, const char *group,
                              ts_wbuf_t *body, char *msg, size_t msgsz);
/* Appends the FILE_INFO body (see ts_proto.h): each source's node
 * fingerprint is that of the newest live session of the source node;
 * the ticket is signed by c->signer for c->req_fp (empty when there is
 * no signer, or no fingerprint in a TLS build). */
ts_status_t trk_do_file_info(const trk_fctx_t *c, const char *group,
                             const char *name, ts_wbuf_t *body, char *msg,
                             size_t msgsz);
ts_status_t trk_do_stop_share(const trk_fctx_t *c, const char *group,
                              const char *name, char *msg, size_t msgsz);
ts_status_t trk_do_have_chunks(const trk_fctx_t *c, const char *group,
                               const char *name, int complete,
                               const uint8_t *bitmap, uint32_t bmlen,
                               char *msg, size_t msgsz);
/* Appends u32 n, n x (str group, str name, u8 complete). */
ts_status_t trk_do_my_shares(const trk_fctx_t *c, ts_wbuf_t *body,
                             char *msg, size_t msgsz);


/* Registers the handlers of types 30..35 (also run as a constructor). */
void trk_files_init(void);

#endif
