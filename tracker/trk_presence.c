/*
 * trk_presence.c -- where a node is: the node address of a LOGIN and the
 * HEARTBEAT handler.
 *
 * Purpose: a LOGIN names the node's "ip:port"; it is checked strictly
 * (IPv4 or [IPv6], port 1..65535) and its IP must be the connection's.
 * HEARTBEAT does nothing itself: the dispatcher's session check refreshes
 * the session.  Which sources are online follows from the sessions of a
 * node (trk_files_session_added/gone, trk_sources.c).
 *
 * Locking: runs on a worker's event-loop thread; no shared state here.
 *
 * Crash behaviour: nothing durable is written here.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts_log.h"
#include "trk_ops.h"

/* ---- node addresses ------------------------------------------------- */

/* The IP of text (no port): 4 (a4 set), 6 (a6 set; an IPv4-mapped one
 * is returned as 4), or 0. */
static int
ip_of(const char *text, struct in_addr *a4, struct in6_addr *a6)
{
    if (inet_pton(AF_INET, text, a4) == 1) {
        return 4;
    }
    if (inet_pton(AF_INET6, text, a6) != 1) {
        return 0;
    }
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
        memcpy(a4, &a6->s6_addr[12], 4);
        return 4;
    }
    return 6;
}


int
trk_node_addr_check(const char *s, const char *peer, char *canon,
                    size_t canonsz, char *why, size_t whysz)
{
    struct in_addr   n4, p4;
    struct in6_addr  n6, p6;
    char             ip[INET6_ADDRSTRLEN], txt[INET6_ADDRSTRLEN];
    const char      *end, *p;
    unsigned long    port = 0;
    size_t           iplen, k;
    int              fam, pfam;

    /* "a.b.c.d:PORT" or "[v6]:PORT", nothing else: it goes to other
     * members as a download source and into logs */
    end = NULL;
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            goto bad;
        }
        iplen = (size_t) (end - s - 1);
        p = end + 2;
        if (iplen == 0 || iplen >= sizeof(ip)) {
            goto bad;
        }
        memcpy(ip, s + 1, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET6, ip, &n6) != 1) {
            goto bad;
        }
    } else {
        end = strchr(s, ':');
        if (end == NULL) {
            goto bad;
        }
        iplen = (size_t) (end - s);
        p = end + 1;
        if (iplen == 0 || iplen >= sizeof(ip)) {
            goto bad;
        }
        memcpy(ip, s, iplen);
        ip[iplen] = '\0';
        if (inet_pton(AF_INET, ip, &n4) != 1) {
            goto bad;
        }
    }
    for (k = 0; p[k] != '\0'; k++) {
        if (p[k] < '0' || p[k] > '9' || k >= 5) {
            goto bad;
        }
        port = port * 10 + (unsigned long) (p[k] - '0');
    }
    if (k == 0 || p[0] == '0' || port < 1 || port > 65535) {
        goto bad;
    }
    fam = ip_of(ip, &n4, &n6);
    pfam = peer != NULL ? ip_of(peer, &p4, &p6) : 0;
    if (pfam == 0) {
        snprintf(why, whysz, "the connection's own address is unknown");
        return -2;
    }
    /* a node serving on every address (0.0.0.0, ::) is reached where its
     * connection comes from */
    if ((fam == 4 && n4.s_addr == htonl(INADDR_ANY))
        || (fam == 6 && IN6_IS_ADDR_UNSPECIFIED(&n6)))
    {
        fam = pfam;
        n4 = p4;
        n6 = p6;
    }
    if (fam == 4) {
        inet_ntop(AF_INET, &n4, txt, sizeof(txt));
        snprintf(canon, canonsz, "%s:%lu", txt, port);
    } else {
        inet_ntop(AF_INET6, &n6, txt, sizeof(txt));
        snprintf(canon, canonsz, "[%s]:%lu", txt, port);
    }
    /* like opentracker: a node serves on the address it comes from */
    if (pfam != fam || (fam == 4 ? memcmp(&n4, &p4, 4) != 0
                                 : memcmp(&n6, &p6, 16) != 0))
    {
        snprintf(why, whysz, "node address %s is not this connection's "
                 "address %s: a node must serve on the IP it connects from",
                 canon, peer);
        return -2;
    }
    return 0;

bad:
    snprintf(why, whysz, "invalid node address (want IPv4:PORT or "
             "[IPv6]:PORT, PORT 1-65535)");
    return -1;
}


static int
op_heartbeat(trk_req_t *rq)
{
    if (ts_rbuf_end(&rq->in) != 0) {
        trk_ops_msg(rq, TRK_MALFORMED);
        return TS_ERR_BADREQ;
    }
    return TS_OK;      /* authenticate() refreshed the heartbeat */
}




void
trk_presence_register(void)
{
    static const trk_op_t ops[] = {
        { TS_MSG_HEARTBEAT,      1, 0, op_heartbeat },
    };

    (void) trk_ops_register(ops, sizeof(ops) / sizeof(ops[0]));
}
