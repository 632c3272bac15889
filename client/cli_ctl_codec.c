/*
 * cli_ctl_codec.c -- frames and messages of the node's control protocol
 * (see cli_ctl_codec.h and docs/CONTROL.md).
 *
 * Everything that comes in is hostile, even on a 0600 socket: a frame's
 * length is checked against a hard limit before any byte of its body is
 * read, the body is parsed by jansson (never by hand) with duplicate
 * keys refused, and every field's type and range is checked here, so a
 * handler only ever sees a well-formed request.  Unknown keys are
 * refused too: a typo in a script fails loudly instead of being ignored.
 *
 * Locking: none.  Crash behaviour: nothing persistent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_crypto.h"
#include "cli_exit.h"
#include "cli_ctl_codec.h"


int
cli_ctl_hdr_len(const uint8_t *hdr, uint32_t max, uint32_t *len)
{
    uint32_t  n;

    n = ((uint32_t) hdr[0] << 24) | ((uint32_t) hdr[1] << 16)
        | ((uint32_t) hdr[2] << 8) | (uint32_t) hdr[3];
    if (n == 0 || n > max) {
        return -1;
    }
    *len = n;
    return 0;
}


void
cli_ctl_hdr_put(uint8_t *hdr, uint32_t len)
{
    hdr[0] = (uint8_t) (len >> 24);
    hdr[1] = (uint8_t) (len >> 16);
    hdr[2] = (uint8_t) (len >> 8);
    hdr[3] = (uint8_t) len;
}


/* An id: a JSON integer in [0, CLI_CTL_ID_MAX]. */
static int
cli_ctl_get_id(const json_t *v, uint64_t *id)
{
    json_int_t  n;

    if (!json_is_integer(v)) {
        return -1;
    }
    n = json_integer_value(v);
    if (n < 0 || (uint64_t) n > CLI_CTL_ID_MAX) {
        return -1;
    }
    *id = (uint64_t) n;
    return 0;
}


/* A command name: [a-z_]{1,TS_CLI_CTL_CMD_MAX_B}. */
static int
cli_ctl_name_ok(const char *s, size_t n)
{
    size_t  i;

    if (n == 0 || n > TS_CLI_CTL_CMD_MAX_B) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_')) {
            return 0;
        }
    }
    return 1;
}


/* One {"hex": "..."} argument (bytes that are not UTF-8, a file name
 * on a Linux file system, say) into a malloc'd string: NULL with err. */
static char *
cli_ctl_get_hex(const json_t *v, size_t i, char *err, size_t errsz)
{
    const json_t  *h = json_object_get(v, "hex");
    const char    *s;
    size_t         n;
    char          *out;

    if (json_object_size(v) != 1 || !json_is_string(h)) {
        snprintf(err, errsz, "args[%zu] is neither a string nor "
                 "{\"hex\": string}", i);
        return NULL;
    }
    s = json_string_value(h);
    n = json_string_length(h);
    if (n % 2 != 0 || n / 2 > TS_CLI_CTL_ARG_MAX_B) {
        snprintf(err, errsz, "args[%zu]: hex of odd length or longer than "
                 "%d bytes", i, TS_CLI_CTL_ARG_MAX_B);
        return NULL;
    }
    out = malloc(n / 2 + 1);
    if (out == NULL) {
        snprintf(err, errsz, "out of memory");
        return NULL;
    }
    if (ts_unhex(s, (uint8_t *) out, n / 2) != 0
        || memchr(out, '\0', n / 2) != NULL)
    {
        free(out);
        snprintf(err, errsz, "args[%zu]: not hex, or a NUL byte", i);
        return NULL;
    }
    out[n / 2] = '\0';
    return out;
}


/* The "args" array into r->argv[1..]; 0 or -1 with err. */
static int
cli_ctl_get_args(const json_t *args, cli_ctl_req_t *r, char *err,
                 size_t errsz)
{
    size_t       i, n;
    const char  *s;
    json_t      *v;

    if (!json_is_array(args)) {
        snprintf(err, errsz, "\"args\" must be an array of strings");
        return -1;
    }
    if (json_array_size(args) > TS_CLI_CTL_ARGS_N) {
        snprintf(err, errsz, "too many args (at most %d)",
                 TS_CLI_CTL_ARGS_N);
        return -1;
    }
    json_array_foreach(args, i, v) {
        if (json_is_object(v)) {
            r->argv[r->argc] = cli_ctl_get_hex(v, i, err, errsz);
            if (r->argv[r->argc] == NULL) {
                return -1;
            }
            r->argc++;
            continue;
        }
        if (!json_is_string(v)) {
            snprintf(err, errsz, "args[%zu] is not a string", i);
            return -1;
        }
        s = json_string_value(v);
        n = json_string_length(v);
        if (n > TS_CLI_CTL_ARG_MAX_B || memchr(s, '\0', n) != NULL) {
            snprintf(err, errsz, "args[%zu] is longer than %d bytes or "
                     "holds a NUL", i, TS_CLI_CTL_ARG_MAX_B);
            return -1;
        }
        r->argv[r->argc] = strndup(s, n);
        if (r->argv[r->argc] == NULL) {
            snprintf(err, errsz, "out of memory");
            return -1;
        }
        r->argc++;
    }
    return 0;
}


int
cli_ctl_req_parse(const void *body, size_t len, cli_ctl_req_t *r,
                  char *err, size_t errsz)
{
    json_error_t  je;
    json_t       *root, *v;
    const char   *key;
    int           rc = -1;

    memset(r, 0, sizeof(*r));
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errsz, "not JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errsz, "a request must be a JSON object");
        goto done;
    }
    json_object_foreach(root, key, v) {
        if (strcmp(key, "id") != 0 && strcmp(key, "cmd") != 0
            && strcmp(key, "args") != 0)
        {
            snprintf(err, errsz, "unknown key in a request (id, cmd, "
                     "args only)");
            goto done;
        }
    }
    v = json_object_get(root, "id");
    if (v == NULL || cli_ctl_get_id(v, &r->id) != 0) {
        snprintf(err, errsz, "\"id\" must be an integer in [0, 2^53]");
        goto done;
    }
    r->has_id = 1;
    v = json_object_get(root, "cmd");
    if (!json_is_string(v)
        || !cli_ctl_name_ok(json_string_value(v), json_string_length(v)))
    {
        snprintf(err, errsz, "\"cmd\" must be a command name ([a-z_], at "
                 "most %d bytes)", TS_CLI_CTL_CMD_MAX_B);
        goto done;
    }
    memcpy(r->cmd, json_string_value(v), json_string_length(v) + 1);
    r->argv[0] = r->cmd;
    r->argc = 1;
    v = json_object_get(root, "args");
    if (v != NULL && cli_ctl_get_args(v, r, err, errsz) != 0) {
        goto done;
    }
    r->argv[r->argc] = NULL;
    rc = 0;
done:
    json_decref(root);
    if (rc != 0) {
        /* the id survives for the error reply */
        uint64_t  id = r->id;
        int       has_id = r->has_id;

        cli_ctl_req_free(r);
        r->has_id = has_id;
        r->id = id;
    }
    return rc;
}


void
cli_ctl_req_free(cli_ctl_req_t *r)
{
    int  i;

    for (i = 1; i < r->argc && i < TS_CLI_CTL_ARGS_N + 1; i++) {
        free(r->argv[i]);
    }
    memset(r, 0, sizeof(*r));
}


json_t *
cli_ctl_req_make(uint64_t id, int argc, char **argv)
{
    json_t  *o, *a;
    int      i;

    if (argc < 1) {
        return NULL;
    }
    a = json_array();
    for (i = 1; a != NULL && i < argc; i++) {
        /* JSON strings are UTF-8; other bytes travel as hex */
        json_t  *v = json_string(argv[i]);

        if (v == NULL) {
            size_t  n = strlen(argv[i]);
            char   *hex = n <= TS_CLI_CTL_ARG_MAX_B ? malloc(2 * n + 1) : NULL;

            if (hex != NULL) {
                ts_hex((const uint8_t *) argv[i], n, hex);
                v = json_pack("{s:s}", "hex", hex);
                free(hex);
            }
        }
        if (v == NULL || json_array_append_new(a, v) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    if (a == NULL) {
        return NULL;
    }
    o = json_pack("{s:I, s:s, s:o}", "id", (json_int_t) id, "cmd", argv[0],
                  "args", a);
    return o;
}


json_t *
cli_ctl_reply_ok(uint64_t id, int exitcls, json_t *lines, json_t *result)
{
    json_t  *o;

    if (lines == NULL) {
        lines = json_array();
    }
    o = json_pack("{s:I, s:b, s:i, s:o}", "id", (json_int_t) id, "ok", 1,
                  "exit", exitcls, "lines", lines);
    if (o != NULL && result != NULL) {
        if (json_object_set_new(o, "result", result) != 0) {
            json_decref(o);
            return NULL;
        }
    } else if (result != NULL) {
        json_decref(result);
    }
    return o;
}


json_t *
cli_ctl_reply_err(int has_id, uint64_t id, int exitcls, const char *error,
                  json_t *lines)
{
    json_t  *e;

    if (lines == NULL) {
        lines = json_array();
    }
    /* an error text that is not UTF-8 (jansson refuses it) must not lose
     * the reply: a fixed text stands in */
    e = json_string(error != NULL ? error : "error");
    if (e == NULL) {
        e = json_string("error (the message was not UTF-8)");
    }
    return json_pack("{s:o, s:b, s:i, s:o, s:o}", "id",
                     has_id ? json_integer((json_int_t) id) : json_null(),
                     "ok", 0, "exit", exitcls, "error", e, "lines", lines);
}


json_t *
cli_ctl_event(const char *kind, const char *line)
{
    return json_pack("{s:s, s:[s]}", "event", kind, "lines", line);
}


/* "lines": absent, or an array of strings. */
static int
cli_ctl_get_lines(json_t *root, cli_ctl_msg_t *m)
{
    size_t   i;
    json_t  *v;

    m->lines = json_object_get(root, "lines");
    if (m->lines == NULL) {
        return 0;
    }
    if (!json_is_array(m->lines)) {
        return -1;
    }
    json_array_foreach(m->lines, i, v) {
        if (!json_is_string(v)) {
            return -1;
        }
    }
    return 0;
}


int
cli_ctl_msg_parse(const void *body, size_t len, cli_ctl_msg_t *m,
                  char *err, size_t errsz)
{
    json_error_t  je;
    json_t       *v;

    memset(m, 0, sizeof(*m));
    m->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (m->root == NULL) {
        snprintf(err, errsz, "not JSON: %s", je.text);
        return -1;
    }
    if (!json_is_object(m->root) || cli_ctl_get_lines(m->root, m) != 0) {
        snprintf(err, errsz, "not an object with string lines");
        goto bad;
    }
    v = json_object_get(m->root, "event");
    if (v != NULL) {
        if (!json_is_string(v)) {
            snprintf(err, errsz, "\"event\" is not a string");
            goto bad;
        }
        m->is_event = 1;
        m->event = json_string_value(v);
        return 0;
    }
    if (cli_ctl_get_id(json_object_get(m->root, "id"), &m->id) != 0
        && !json_is_null(json_object_get(m->root, "id")))
    {
        snprintf(err, errsz, "a reply without a valid id");
        goto bad;
    }
    v = json_object_get(m->root, "ok");
    if (!json_is_boolean(v)) {
        snprintf(err, errsz, "a reply without \"ok\"");
        goto bad;
    }
    m->ok = json_is_true(v);
    v = json_object_get(m->root, "exit");
    if (!json_is_integer(v) || json_integer_value(v) < CLI_EXIT_OK
        || json_integer_value(v) > CLI_EXIT_NODE)
    {
        snprintf(err, errsz, "a reply without a valid \"exit\"");
        goto bad;
    }
    m->exit = (int) json_integer_value(v);
    v = json_object_get(m->root, "error");
    if (!m->ok && !json_is_string(v)) {
        snprintf(err, errsz, "a failed reply without \"error\"");
        goto bad;
    }
    m->error = m->ok ? NULL : json_string_value(v);
    m->result = json_object_get(m->root, "result");
    return 0;
bad:
    cli_ctl_msg_free(m);
    return -1;
}


void
cli_ctl_msg_free(cli_ctl_msg_t *m)
{
    json_decref(m->root);
    memset(m, 0, sizeof(*m));
}


int
cli_ctl_frame(const json_t *obj, size_t max, uint8_t **out, size_t *outlen)
{
    size_t    n;
    uint8_t  *buf;

    n = json_dumpb(obj, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        errno = ENOMEM;
        return -1;
    }
    if (n > max || n > UINT32_MAX) {
        errno = EMSGSIZE;
        return -1;
    }
    buf = malloc(CLI_CTL_HDR_B + n);
    if (buf == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (json_dumpb(obj, (char *) buf + CLI_CTL_HDR_B, n, JSON_COMPACT) != n) {
        free(buf);
        errno = ENOMEM;
        return -1;
    }
    cli_ctl_hdr_put(buf, (uint32_t) n);
    *out = buf;
    *outlen = CLI_CTL_HDR_B + n;
    return 0;
}
