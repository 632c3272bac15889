/*
 * net_fixture.h -- helpers shared by the unit tests of the network layer
 * (test_net.c, test_ev.c); include after <cmocka.h>.
 *
 * Locking: single-threaded tests.  Crash behaviour: nothing persistent.
 */
#ifndef NET_FIXTURE_H_INCLUDED
#define NET_FIXTURE_H_INCLUDED

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

/* the port a bound socket got */
static inline uint16_t
local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t          sl = sizeof(sa);

    assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
    return ntohs(sa.sin_port);
}

#endif
