/*
 * ts_addr.c -- address text: "IP:PORT", "IP PORT" and "[v6]:PORT".
 *
 * Purpose: the one parser for the addresses in tracker_info.txt, on the
 * command line and in the tools.  Only literal addresses are accepted
 * (no name lookups), so parsing never blocks and never depends on the
 * resolver.
 *
 * Locking: none; pure functions.
 * Crash behaviour: nothing persistent.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "ts_addr.h"

static int
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static int
parse_port(const char *s, size_t n, uint16_t *port)
{
    unsigned long v = 0;
    size_t        i;

    if (n == 0 || n > 5) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        v = v * 10 + (unsigned long) (s[i] - '0');
    }
    if (v < 1 || v > 65535) {
        return -1;
    }
    *port = (uint16_t) v;
    return 0;
}

/* copies s[0..n) into ip and checks that it is a literal address of the
 * allowed families (4: IPv4, 6: IPv6, 0: either) */
static int
take_ip(const char *s, size_t n, int fam, char *ip, size_t ipsz)
{
    char            tmp[INET6_ADDRSTRLEN + 1];
    struct in6_addr a6;
    struct in_addr  a4;
    int             ok = 0;

    if (n == 0 || n >= sizeof(tmp) || n >= ipsz) {
        return -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (fam != 6 && inet_pton(AF_INET, tmp, &a4) == 1) {
        ok = 1;
    }
    if (!ok && fam != 4 && inet_pton(AF_INET6, tmp, &a6) == 1) {
        ok = 1;
    }
    if (!ok) {
        return -1;
    }
    memcpy(ip, tmp, n + 1);
    return 0;
}

int
ts_parse_hostport(const char *s, char *ip, size_t ipsz, uint16_t *port)
{
    const char *b, *e, *p, *q;

    if (s == NULL || ip == NULL || port == NULL || ipsz == 0) {
        return -1;
    }
    /* trim surrounding blanks */
    b = s;
    while (is_blank(*b)) {
        b++;
    }
    e = b + strlen(b);
    while (e > b && is_blank(e[-1])) {
        e--;
    }
    if (b == e) {
        return -1;
    }

    if (*b == '[') {
        /* "[v6]:port" or "[v6] port" */
        q = memchr(b, ']', (size_t) (e - b));
        if (q == NULL) {
            return -1;
        }
        p = q + 1;
        if (p < e && *p == ':') {
            p++;
        } else if (p < e && is_blank(*p)) {
            while (p < e && is_blank(*p)) {
                p++;
            }
        } else {
            return -1;
        }
        if (parse_port(p, (size_t) (e - p), port) != 0) {
            return -1;
        }
        return take_ip(b + 1, (size_t) (q - b - 1), 6, ip, ipsz);
    }

    /* "ip port": the first blank run separates them */
    for (q = b; q < e && !is_blank(*q); q++) {
        /* find the blank */
    }
    if (q < e) {
        p = q;
        while (p < e && is_blank(*p)) {
            p++;
        }
        if (parse_port(p, (size_t) (e - p), port) != 0) {
            return -1;
        }
        return take_ip(b, (size_t) (q - b), 0, ip, ipsz);
    }

    /* "v4:port": exactly one colon (a bare IPv6 needs brackets) */
    q = memchr(b, ':', (size_t) (e - b));
    if (q == NULL || memchr(q + 1, ':', (size_t) (e - q - 1)) != NULL) {
        return -1;
    }
    if (parse_port(q + 1, (size_t) (e - q - 1), port) != 0) {
        return -1;
    }
    return take_ip(b, (size_t) (q - b), 4, ip, ipsz);
}
