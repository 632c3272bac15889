/*
 * ts_addr.h -- parsing of "IP:PORT" address text (no sockets, no lookups).
 *
 * Locking: none; pure functions.  Crash behaviour: nothing persistent.
 */
#ifndef TS_ADDR_H_INCLUDED
#define TS_ADDR_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/* "IP:PORT" or "IP PORT" (IPv4 dotted quad or hostname-free IPv6 in []).
 * Returns 0 or -1. ip gets the address text. */
int ts_parse_hostport(const char *s, char *ip, size_t ipsz, uint16_t *port);

#endif
