/*
 * cli_reply.h -- decoders of the reply bodies the client's commands read
 * from a tracker (layouts in common/ts_proto.h): LOGIN, LEAVE_GROUP,
 * LIST_REQUESTS, LIST_GROUPS / LIST_MY_GROUPS, LIST_FILES, MY_SHARES and
 * the empty OK body.  client/cli_cmds.c and cli_files.c call them after
 * cli_request() has taken the reply's head; the unit tests and the
 * libFuzzer target tests/fuzz/fuzz_cli_reply.c call the same functions.
 * (FILE_INFO has its own decoder, cli_finfo_parse in cli_finfo.h.)
 *
 * Each takes the body (an ts_rbuf_t positioned after the head, e.g.
 * cli_reply_t.body) and returns 0, or -1 for anything but a well-formed
 * body: every count is checked against the bytes left before anything is
 * allocated, ids must pass ts_valid_id, file names ts_valid_filename
 * (LIST_FILES drops rows with another name instead, and counts them), and
 * no byte may be left over.  On -1 errno is ENOMEM when memory ran out,
 * else EBADMSG, and nothing is left allocated.  Row arrays are malloc()ed
 * (NULL when there is no row); the caller frees them with free().
 *
 * Locking: none (pure functions over caller buffers).  Crash behaviour:
 * nothing persistent.
 */
#ifndef CLI_REPLY_H_INCLUDED
#define CLI_REPLY_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "ts_config.h"
#include "ts_buf.h"

typedef struct {
    char      user[TS_ID_MAX_B + 1];
} cli_reply_user_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      owner[TS_ID_MAX_B + 1];
    uint32_t  members;
} cli_reply_group_t;

typedef struct {
    char      name[TS_NAME_MAX_B + 1];
    uint64_t  size;
    uint32_t  sources;          /* online sources */
} cli_reply_file_t;

typedef struct {
    char      group[TS_ID_MAX_B + 1];
    char      name[TS_NAME_MAX_B + 1];
    int       complete;         /* 0 or 1 */
} cli_reply_share_t;

/* An OK body with nothing in it (CREATE_USER, CREATE_GROUP, ...). */
int cli_reply_empty(ts_rbuf_t *b);

/* LOGIN: raw tok[TS_TOKEN_B], then optionally u32 heartbeat_ms (0 when
 * the tracker sent none; the caller decides which periods it accepts). */
int cli_reply_login(ts_rbuf_t *b, uint8_t tok[TS_TOKEN_B],
                    uint32_t *heartbeat_ms);

/* LEAVE_GROUP: str new_owner: "" (no change), "-" (group dissolved) or
 * the id of the member who now owns it. */
int cli_reply_leave_group(ts_rbuf_t *b, char owner[TS_ID_MAX_B + 1]);

/* LIST_REQUESTS: u32 n, n x str user. */
int cli_reply_list_requests(ts_rbuf_t *b, cli_reply_user_t **rows,
                            uint32_t *n);

/* LIST_GROUPS and LIST_MY_GROUPS: u32 n, n x (str group, str owner,
 * u32 members). */
int cli_reply_list_groups(ts_rbuf_t *b, cli_reply_group_t **rows,
                          uint32_t *n);

/* LIST_FILES: u32 n, n x (str name, u64 size, u32 sources_online).  A
 * row whose name is not a valid file name is not returned (nothing could
 * be downloaded under it); *dropped counts them. */
int cli_reply_list_files(ts_rbuf_t *b, cli_reply_file_t **rows,
                         uint32_t *n, uint32_t *dropped);

/* MY_SHARES: u32 n, n x (str group, str name, u8 complete). */
int cli_reply_my_shares(ts_rbuf_t *b, cli_reply_share_t **rows,
                        uint32_t *n);

#endif
