/*
 * ts_trackers.c -- reads tracker_info.txt, the list of trackers.
 *
 * Purpose: one tracker per line as "IP:PORT", "IP PORT" or "[v6]:PORT";
 * blank lines, whole-line "#" comments and trailing "# ..." comments are
 * skipped; CRLF line ends are accepted.  Ids are 1-based positions among
 * the tracker lines.  Any malformed line, a duplicate address, more than
 * TS_TRACKERS_MAX_N trackers, or no tracker at all is an error whose
 * message names the file and (for a line) its number.  Text quoted back
 * in a message has control bytes replaced, since the file is untrusted.
 *
 * Locking: none; the result is written to the caller's struct, and only
 * on success (on failure *out is left empty).
 * Crash behaviour: read-only; nothing to recover.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_addr.h"
#include "ts_trackers.h"

#define TRK_LINE_MAX_B   256           /* one line, comments included */
#define TRK_FILE_MAX_B   (64 * 1024)   /* the whole file */
#define TRK_QUOTE_MAX_B  64            /* bytes of bad text echoed back */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* a printable, bounded copy of untrusted text for an error message */
static void
quote(const char *s, size_t n, char *out, size_t outsz)
{
    size_t i, k = 0;

    for (i = 0; i < n && k + 4 < outsz; i++) {
        unsigned char c = (unsigned char) s[i];

        if (k >= TRK_QUOTE_MAX_B) {
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        out[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char) c;
    }
    out[k] = '\0';
}

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* binary form of an address, for duplicate detection ("::1" equals
 * "0:0::1") */
static int
addr_key(const char *ip, unsigned char key[17])
{
    memset(key, 0, 17);
    if (inet_pton(AF_INET, ip, key + 1) == 1) {
        key[0] = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, key + 1) == 1) {
        key[0] = 6;
        return 0;
    }
    return -1;
}

/* says what is wrong with a line ts_parse_hostport refused */
static void
explain(const char *name, int lineno, const char *s, size_t n, char *err,
        size_t errlen)
{
    char          q[TRK_QUOTE_MAX_B + 8];
    const char   *sep = NULL, *port, *ipb;
    char          ipbuf[INET6_ADDRSTRLEN + 1];
    unsigned char key[17];
    size_t        i, iplen, plen;
    long          v = 0;
    int           digits, port_ok, ip_ok;

    if (s[0] == '[') {
        const char *rb = memchr(s, ']', n);

        if (rb != NULL && (size_t) (rb - s) + 1 < n
            && (rb[1] == ':' || is_blank(rb[1])))
        {
            sep = rb + 1;
        }
    } else {
        for (i = 0; i < n; i++) {
            if (is_blank(s[i])) {
                sep = s + i;
                break;
            }
        }
        if (sep == NULL) {
            const char *c = memchr(s, ':', n);

            /* exactly one colon: "v4:port" */
            if (c != NULL && memchr(c + 1, ':', n - (size_t) (c - s) - 1)
                             == NULL)
            {
                sep = c;
            }
        }
    }
    if (sep == NULL) {
        quote(s, n, q, sizeof(q));
        seterr(err, errlen, "%s:%d: expected IP:PORT or IP PORT, got '%s'",
               name, lineno, q);
        return;
    }
    port = sep + 1;
    while (port < s + n && is_blank(*port)) {
        port++;
    }
    iplen = (size_t) (sep - s);
    plen = (size_t) (s + n - port);
    digits = plen > 0 && plen <= 5;
    for (i = 0; digits && i < plen; i++) {
        if (port[i] < '0' || port[i] > '9') {
            digits = 0;
        } else {
            v = v * 10 + (port[i] - '0');
        }
    }
    port_ok = digits && v >= 1 && v <= 65535;
    if (s[0] == '[') {
        ipb = s + 1;
        iplen = iplen >= 2 ? iplen - 2 : 0;
    } else {
        ipb = s;
    }
    ip_ok = 0;
    if (iplen > 0 && iplen < sizeof(ipbuf)) {
        memcpy(ipbuf, ipb, iplen);
        ipbuf[iplen] = '\0';
        ip_ok = addr_key(ipbuf, key) == 0;
    }

    /* neither half looks right, or extra fields: say what is expected */
    if ((!ip_ok && !digits) || memchr(port, ' ', plen)
        || memchr(port, '\t', plen))
    {
        quote(s, n, q, sizeof(q));
        seterr(err, errlen, "%s:%d: expected IP:PORT or IP PORT, got '%s'",
               name, lineno, q);
    } else if (!port_ok) {
        quote(port, plen, q, sizeof(q));
        seterr(err, errlen, "%s:%d: bad port '%s' (1..65535)", name, lineno,
               q);
    } else {
        quote(ipb, iplen, q, sizeof(q));
        seterr(err, errlen, "%s:%d: bad IP address '%s'", name, lineno, q);
    }
}

int
ts_trackers_parse(const char *text, size_t len, const char *name,
                  ts_trackers_t *out, char *err, size_t errlen)
{
    ts_trackers_t      res;
    unsigned char      keys[TS_TRACKERS_MAX_N][17];
    char               line[TRK_LINE_MAX_B + 1];
    const char        *p = text, *end = text + len, *nl, *b, *e, *h;
    ts_tracker_addr_t *t;
    int                lineno = 0, j;

    if (name == NULL) {
        name = "tracker_info.txt";
    }
    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (text == NULL || out == NULL) {
        seterr(err, errlen, "%s: nothing to parse", name);
        return -1;
    }
    memset(&res, 0, sizeof(res));

    while (p < end) {
        size_t n;

        lineno++;
        nl = memchr(p, '\n', (size_t) (end - p));
        e = nl ? nl : end;
        b = p;
        p = nl ? nl + 1 : end;

        if (memchr(b, '\0', (size_t) (e - b)) != NULL) {
            seterr(err, errlen, "%s:%d: NUL byte in line", name, lineno);
            return -1;
        }
        if (e > b && e[-1] == '\r') {
            e--;
        }
        /* everything from '#' on is a comment */
        h = memchr(b, '#', (size_t) (e - b));
        if (h != NULL) {
            e = h;
        }
        while (b < e && is_blank(*b)) {
            b++;
        }
        while (e > b && (is_blank(e[-1]) || e[-1] == '\r')) {
            e--;
        }
        if (b == e) {
            continue;
        }
        n = (size_t) (e - b);
        if (n > TRK_LINE_MAX_B) {
            seterr(err, errlen, "%s:%d: line too long (max %d bytes)", name,
                   lineno, TRK_LINE_MAX_B);
            return -1;
        }
        if (res.n >= TS_TRACKERS_MAX_N) {
            seterr(err, errlen, "%s:%d: too many trackers (max %d)", name,
                   lineno, TS_TRACKERS_MAX_N);
            return -1;
        }
        memcpy(line, b, n);
        line[n] = '\0';
        t = &res.t[res.n];
        if (ts_parse_hostport(line, t->ip, sizeof(t->ip), &t->port) != 0) {
            explain(name, lineno, line, n, err, errlen);
            return -1;
        }
        if (addr_key(t->ip, keys[res.n]) != 0) {
            explain(name, lineno, line, n, err, errlen);
            return -1;
        }
        for (j = 0; j < res.n; j++) {
            if (res.t[j].port == t->port
                && memcmp(keys[j], keys[res.n], 17) == 0)
            {
                seterr(err, errlen,
                       "%s:%d: duplicate tracker %s port %u (also on line %d)",
                       name, lineno, t->ip, (unsigned) t->port,
                       res.t[j].line);
                return -1;
            }
        }
        t->line = lineno;
        res.n++;
    }
    if (res.n == 0) {
        seterr(err, errlen, "%s: no trackers listed", name);
        return -1;
    }
    *out = res;
    return 0;
}

int
ts_trackers_load(const char *path, ts_trackers_t *out, char *err,
                 size_t errlen)
{
    struct stat st;
    char       *buf;
    size_t      got = 0;
    ssize_t     r;
    int         fd, rc, saved;

    if (out != NULL) {
        memset(out, 0, sizeof(*out));
    }
    if (path == NULL) {
        seterr(err, errlen, "tracker list: no file given");
        return -1;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: open() failed: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        saved = errno;
        close(fd);
        seterr(err, errlen, "%s: fstat() failed: %s", path, strerror(saved));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        seterr(err, errlen, "%s: not a regular file", path);
        return -1;
    }
    if (st.st_size > TRK_FILE_MAX_B) {
        close(fd);
        seterr(err, errlen, "%s: file too large (%lld bytes, max %d)", path,
               (long long) st.st_size, TRK_FILE_MAX_B);
        return -1;
    }
    /* one spare byte tells us if the file grew past the limit meanwhile */
    buf = malloc(TRK_FILE_MAX_B + 1);
    if (buf == NULL) {
        close(fd);
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    for (;;) {
        r = read(fd, buf + got, TRK_FILE_MAX_B + 1 - got);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            saved = errno;
            free(buf);
            close(fd);
            seterr(err, errlen, "%s: read() failed: %s", path,
                   strerror(saved));
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t) r;
        if (got > TRK_FILE_MAX_B) {
            free(buf);
            close(fd);
            seterr(err, errlen, "%s: file too large (max %d bytes)", path,
                   TRK_FILE_MAX_B);
            return -1;
        }
    }
    close(fd);
    rc = ts_trackers_parse(buf, got, path, out, err, errlen);
    free(buf);
    return rc;
}
