/*
 * cli_ctl_codec.h -- the node's control protocol on the wire
 * (docs/CONTROL.md): a frame is a big-endian u32 length and a JSON
 * object of that many bytes.  This module checks frames and messages
 * (cli_ctl_codec.c); reading and writing them on a socket is
 * cli_ctl_io.c.
 *
 * Locking: none (pure functions on the caller's memory).
 * Crash behaviour: nothing persistent.
 */
#ifndef CLI_CTL_CODEC_H_INCLUDED
#define CLI_CTL_CODEC_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ts_config.h"

#define CLI_CTL_HDR_B   4
#define CLI_CTL_ID_MAX  ((uint64_t) 1 << 53)   /* exact in a JSON double */

/* A request: {"id":N,"cmd":"name","args":["a","b"]} ("args" optional).
 * argv[0] is cmd, argv[1..argc-1] the arguments (heap copies), argv[argc]
 * NULL: the shape every command handler takes. */
typedef struct {
    int       has_id;           /* id could be read (for the error reply) */
    uint64_t  id;
    char      cmd[TS_CLI_CTL_CMD_MAX_B + 1];
    int       argc;
    char     *argv[TS_CLI_CTL_ARGS_N + 2];
} cli_ctl_req_t;

/* A message from the node: a reply (is_event 0) or an event. */
typedef struct {
    json_t      *root;          /* owns everything below */
    int          is_event;
    const char  *event;         /* events: the kind ("log", "download") */
    uint64_t     id;            /* replies: the request's id */
    int          ok;
    int          exit;          /* a cli_exit_t */
    const char  *error;         /* replies with ok false; else NULL */
    json_t      *lines;         /* an array of strings (maybe empty) */
    json_t      *result;        /* replies: structured result or NULL */
} cli_ctl_msg_t;

/* The length in a frame header: 0, or -1 when it is 0 or above max. */
int     cli_ctl_hdr_len(const uint8_t *hdr, uint32_t max, uint32_t *len);
void    cli_ctl_hdr_put(uint8_t *hdr, uint32_t len);

/* Checks a request body: an object with exactly the keys above, the id
 * an integer in [0, CLI_CTL_ID_MAX], cmd [a-z_]{1,32}, at most
 * TS_CLI_CTL_ARGS_N args each a string of at most TS_CLI_CTL_ARG_MAX_B
 * bytes without NUL.  0, or -1 with the reason in err (r->has_id tells
 * whether r->id may go into the error reply); nothing to free after -1. */
int     cli_ctl_req_parse(const void *body, size_t len, cli_ctl_req_t *r,
                          char *err, size_t errsz);
void    cli_ctl_req_free(cli_ctl_req_t *r);
/* A request object for argv (argv[0] the command), or NULL. */
json_t *cli_ctl_req_make(uint64_t id, int argc, char **argv);

/* Replies and events (NULL on ENOMEM).  lines: an array of strings or
 * NULL (stolen either way); result: any JSON value or NULL (stolen). */
json_t *cli_ctl_reply_ok(uint64_t id, int exitcls, json_t *lines,
                         json_t *result);
json_t *cli_ctl_reply_err(int has_id, uint64_t id, int exitcls,
                          const char *error, json_t *lines);
json_t *cli_ctl_event(const char *kind, const char *line);

/* Checks a message from the node.  0, or -1 with the reason in err. */
int     cli_ctl_msg_parse(const void *body, size_t len, cli_ctl_msg_t *m,
                          char *err, size_t errsz);
void    cli_ctl_msg_free(cli_ctl_msg_t *m);

/* obj as one frame (header + compact JSON) in a malloc'd buffer; obj is
 * not freed.  0, or -1 (errno EMSGSIZE above max body bytes, ENOMEM). */
int     cli_ctl_frame(const json_t *obj, size_t max, uint8_t **out,
                      size_t *outlen);

#endif
