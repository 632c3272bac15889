/*
 * fuzz_http_body.c -- libFuzzer target: what the node's HTTP endpoint
 * parses of a POST itself, around jansson: the Content-Type check and
 * JSON object rule (ts_http_body_parse, http/ts_http.h) and the split of
 * an action's path into group, name and action (cli_http_split,
 * client/cli_http.h).
 *
 * Input: up to the first '\n' the Content-Type (an empty line: none),
 * the rest the body; the same rest, NUL-terminated, is also a path tail
 * to split.  Invariants:
 *   - 0 comes with an object and only for an application/json type;
 *     415 or 400 with no object and a reason; nothing else;
 *   - a split that succeeds gives three non-empty parts without '/' in
 *     the group or the action, within the id and name limits.
 *
 * Locking: single-threaded.  Crash behaviour: nothing persistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "ts_config.h"
#include "ts_http.h"
#include "cli_http.h"
#include "fz_util.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t         hl = nl != NULL ? (size_t) (nl - data) : 0;
    const uint8_t *body = nl != NULL ? nl + 1 : data;
    size_t         bl = size - (size_t) (body - data);
    char          *ct = NULL, *rest, *g, *n, *a, err[200];
    json_t        *o = (json_t *) (void *) &err;   /* must be reset */
    int            st;

    if (nl != NULL && hl > 0) {
        ct = malloc(hl + 1);
        memcpy(ct, data, hl);
        ct[hl] = '\0';
    }
    err[0] = '\0';
    st = ts_http_body_parse(ct, (const char *) body, bl, &o, err,
                            sizeof(err));
    if (st == 0) {
        if (o == NULL || !json_is_object(o) || ct == NULL
            || strcasestr(ct, "application/json") == NULL)
        {
            abort();
        }
        json_decref(o);
    } else if ((st != 415 && st != 400) || o != NULL || err[0] == '\0') {
        abort();
    }
    free(ct);

    rest = malloc(bl + 1);
    memcpy(rest, body, bl);
    rest[bl] = '\0';
    if (strlen(rest) == bl && cli_http_split(rest, &g, &n, &a) == 0) {
        if (g[0] == '\0' || n[0] == '\0' || a[0] == '\0'
            || strchr(g, '/') != NULL || strchr(a, '/') != NULL
            || strlen(g) > TS_ID_MAX_B || strlen(n) > TS_NAME_MAX_B)
        {
            abort();
        }
    }
    free(rest);
    return 0;
}
