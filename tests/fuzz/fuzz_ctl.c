/*
 * fuzz_ctl.c -- libFuzzer target: the node's control protocol codec
 * (client/cli_ctl_codec.c), what the node reads from a CLI and what a
 * CLI reads from the node.
 *
 * Input byte 0 picks a mode, the rest is a frame body:
 *   0  cli_ctl_req_parse.  Oracles: an accepted request has a command
 *      name of [a-z_], at most TS_CLI_CTL_ARGS_N arguments within
 *      TS_CLI_CTL_ARG_MAX_B bytes, argv NULL-terminated; re-made with
 *      cli_ctl_req_make and framed, it parses again to the same id and
 *      argv; a refusal leaves nothing allocated and an error text;
 *   1  cli_ctl_msg_parse.  Oracles: an accepted reply has a class in
 *      [0, 11], an error text exactly when ok is false, lines all
 *      strings; framing it again stays within the reply limit or is
 *      refused with EMSGSIZE;
 *   2  cli_ctl_hdr_len on the first four bytes: accepted exactly when
 *      the big-endian length is in [1, TS_CLI_CTL_REQ_MAX_B].
 *
 * Locking: single-threaded.  Crash behaviour: nothing on disk.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli_exit.h"
#include "cli_ctl_codec.h"
#include "fz_util.h"

/* An oracle: a violated one is a crash libFuzzer keeps. */
#define FZ_ASSERT(c)  do { if (!(c)) { abort(); } } while (0)


static void
fz_ctl_req(const uint8_t *p, size_t n)
{
    cli_ctl_req_t  r, again;
    char           err[256];
    json_t        *o;
    uint8_t       *f;
    size_t         fn;
    int            i;

    err[0] = '\0';
    if (cli_ctl_req_parse(p, n, &r, err, sizeof(err)) != 0) {
        FZ_ASSERT(err[0] != '\0');
        FZ_ASSERT(r.argc == 0);
        return;
    }
    FZ_ASSERT(r.argc >= 1 && r.argc <= TS_CLI_CTL_ARGS_N + 1);
    FZ_ASSERT(r.argv[r.argc] == NULL);
    FZ_ASSERT(strspn(r.cmd, "abcdefghijklmnopqrstuvwxyz_") == strlen(r.cmd));
    for (i = 1; i < r.argc; i++) {
        FZ_ASSERT(strlen(r.argv[i]) <= TS_CLI_CTL_ARG_MAX_B);
    }
    o = cli_ctl_req_make(r.id, r.argc, r.argv);
    FZ_ASSERT(o != NULL);
    FZ_ASSERT(cli_ctl_frame(o, TS_CLI_CTL_REPLY_MAX_B, &f, &fn) == 0);
    json_decref(o);
    FZ_ASSERT(cli_ctl_req_parse(f + CLI_CTL_HDR_B, fn - CLI_CTL_HDR_B,
                                &again, err, sizeof(err)) == 0);
    FZ_ASSERT(again.id == r.id && again.argc == r.argc);
    for (i = 0; i < r.argc; i++) {
        FZ_ASSERT(strcmp(again.argv[i], r.argv[i]) == 0);
    }
    free(f);
    cli_ctl_req_free(&again);
    cli_ctl_req_free(&r);
}


static void
fz_ctl_msg(const uint8_t *p, size_t n)
{
    cli_ctl_msg_t  m;
    char           err[256];
    uint8_t       *f;
    size_t         fn, i;

    if (cli_ctl_msg_parse(p, n, &m, err, sizeof(err)) != 0) {
        FZ_ASSERT(m.root == NULL);
        return;
    }
    for (i = 0; m.lines != NULL && i < json_array_size(m.lines); i++) {
        FZ_ASSERT(json_is_string(json_array_get(m.lines, i)));
    }
    if (!m.is_event) {
        FZ_ASSERT(m.exit >= CLI_EXIT_OK && m.exit <= CLI_EXIT_NODE);
        FZ_ASSERT(m.ok ? m.error == NULL : m.error != NULL);
    } else {
        FZ_ASSERT(m.event != NULL);
    }
    if (cli_ctl_frame(m.root, TS_CLI_CTL_REPLY_MAX_B, &f, &fn) == 0) {
        FZ_ASSERT(fn > CLI_CTL_HDR_B);
        free(f);
    } else {
        FZ_ASSERT(errno == EMSGSIZE || errno == ENOMEM);
    }
    cli_ctl_msg_free(&m);
}


static void
fz_ctl_hdr(const uint8_t *p, size_t n)
{
    uint32_t  len, want;

    if (n < CLI_CTL_HDR_B) {
        return;
    }
    want = ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16)
           | ((uint32_t) p[2] << 8) | p[3];
    if (cli_ctl_hdr_len(p, TS_CLI_CTL_REQ_MAX_B, &len) == 0) {
        FZ_ASSERT(want >= 1 && want <= TS_CLI_CTL_REQ_MAX_B);
        FZ_ASSERT(len == want);
    } else {
        FZ_ASSERT(want == 0 || want > TS_CLI_CTL_REQ_MAX_B);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const fz_mode_t  modes[] = { fz_ctl_req, fz_ctl_msg, fz_ctl_hdr };

    return FZ_MODES(data, size, modes);
}
