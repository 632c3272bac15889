/*
 * ts_www.h -- the web dashboard's static files (HTML, CSS, JavaScript and
 * the chart library), embedded in the binary at build time and served as
 * open routes of a ts_http route table: "/" (index.html) and
 * "/assets/<name>".
 *
 * A request path is looked up by exact match in the embedded table
 * (ts_www_data.h): no file system path is ever built from a URL, so a
 * "..", a percent-encoded one or any other name outside the table is a
 * plain 404.  The page needs no key to load; it reads the API key from
 * the URL fragment and sends it with every /api call.
 *
 * Locking: none (constant data; handlers run on the server's thread).
 * Crash behaviour: nothing persistent.
 */
#ifndef TS_WWW_H_INCLUDED
#define TS_WWW_H_INCLUDED

#include "ts_http.h"

#define TS_WWW_ROUTES_N  2          /* routes ts_www_routes() adds */

/* Appends the dashboard's open routes to tab, which holds n of max;
 * kind ("tracker" or "node", a static string) is what the page reads
 * from /assets/site.json to pick its view.  The new count, or -1 when
 * fewer than TS_WWW_ROUTES_N slots are free. */
int  ts_www_routes(ts_http_route_t *tab, int n, int max, const char *kind);

/* The handler behind both routes (exposed for the unit test). */
void ts_www_get(void *arg, const char *path, ts_http_resp_t *r);

#endif
