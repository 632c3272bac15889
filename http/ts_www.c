/*
 * ts_www.c -- serving the embedded dashboard: exact-match lookup of a
 * request path in the table tools/embed.c generated, with the content
 * type, cache and security headers of each kind of file.
 *
 * Purpose: see ts_www.h.  "/" is index.html; "/assets/site.json" is the
 * one answer made here rather than embedded ({"kind": ...}, so the page
 * knows whether it talks to a tracker or a node without probing); every
 * other "/assets/<name>" must be a name of the table, byte for byte.
 * A path longer than TS_WWW_PATH_MAX_B is 414 (MHD refuses much longer
 * ones itself, with the request head limit).  Bodies point at the
 * constant arrays (never copied, never freed).
 *
 * Locking: none; constant data read on the server's thread.
 *
 * Crash behaviour: nothing persistent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_config.h"
#include "ts_www_data.h"
#include "ts_www.h"

typedef struct {
    const char *ext;
    const char *ctype;
} www_type_t;

static const www_type_t www_types[] = {
    { ".html", "text/html; charset=utf-8" },
    { ".js",   "text/javascript; charset=utf-8" },
    { ".css",  "text/css; charset=utf-8" },
    { ".svg",  "image/svg+xml" },
    { ".png",  "image/png" },
    { ".json", "application/json" },
};


static const char *
www_ctype(const char *name)
{
    size_t nl = strlen(name), el, i;

    for (i = 0; i < sizeof(www_types) / sizeof(www_types[0]); i++) {
        el = strlen(www_types[i].ext);
        if (nl > el && strcmp(name + nl - el, www_types[i].ext) == 0) {
            return www_types[i].ctype;
        }
    }
    return "application/octet-stream";
}


static const ts_www_file_t *
www_find(const char *name)
{
    int i;

    for (i = 0; i < ts_www_nfiles; i++) {
        if (strcmp(ts_www_files[i].name, name) == 0) {
            return &ts_www_files[i];
        }
    }
    return NULL;
}


void
ts_www_get(void *arg, const char *path, ts_http_resp_t *r)
{
    const char          *kind = arg;
    const ts_www_file_t *f;
    char                *s;
    int                  n;

    if (strlen(path) > TS_WWW_PATH_MAX_B) {
        ts_http_error(r, 414, "path too long");
        return;
    }
    if (strcmp(path, "/assets/site.json") == 0) {
        s = malloc(64);
        n = s != NULL ? snprintf(s, 64, "{\"kind\":\"%s\"}", kind) : -1;
        if (n < 0 || n >= 64) {
            free(s);
            ts_http_error(r, 500, "out of memory");
            return;
        }
        ts_http_reply(r, 200, "application/json", s, (size_t) n);
        r->cache = TS_WWW_CACHE;
        return;
    }
    /* "/" is index.html; anything else is looked up without its '/' */
    f = www_find(strcmp(path, "/") == 0 ? "index.html"
                 : strncmp(path, "/assets/", 8) == 0 ? path + 1 : "");
    if (f == NULL) {
        ts_http_error(r, 404, "no such file");
        return;
    }
    ts_http_reply(r, 200, www_ctype(f->name), NULL, 0);
    r->body = (char *) f->data;     /* constant: the server never frees */
    r->len = f->len;
    r->static_body = 1;
    r->cache = TS_WWW_CACHE;
    if (strcmp(f->name, "index.html") == 0) {
        r->csp = TS_WWW_CSP;
    }
}


int
ts_www_routes(ts_http_route_t *tab, int n, int max, const char *kind)
{
    if (n < 0 || max - n < TS_WWW_ROUTES_N) {
        return -1;
    }
    tab[n].path = "/";
    tab[n].prefix = 0;
    tab[n].open = 1;
    tab[n].fn = ts_www_get;
    tab[n].arg = (void *) kind;
    tab[n + 1] = tab[n];
    tab[n + 1].path = "/assets/";
    tab[n + 1].prefix = 1;
    return n + TS_WWW_ROUTES_N;
}
