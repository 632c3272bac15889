/*
 * codec_fixture.h -- what the in-memory codec tests (test_node_peer_msg.c,
 * test_cli_reply.c) share: one output buffer w, made fresh for every test
 * by setup and freed by teardown, and an over-long string.
 *
 * Header-only (each test is compiled alone).  Locking: none
 * (single-threaded).  Crash behaviour: in-memory only.
 */
#ifndef CODEC_FIXTURE_H_INCLUDED
#define CODEC_FIXTURE_H_INCLUDED

#include <string.h>
#include "ts_buf.h"

static ts_wbuf_t  w;

static inline int
setup(void **state)
{
    (void) state;
    ts_wbuf_init(&w);
    return 0;
}

static inline int
teardown(void **state)
{
    (void) state;
    ts_wbuf_free(&w);
    return 0;
}

/* a 300-byte string of c (longer than any id or name) */
static inline const char *
long_str(char c)
{
    static char s[301];

    memset(s, c, 300);
    s[300] = '\0';
    return s;
}

#endif
