/*
 * we.h -- the shared state of the WAN emulator (tests/tools/wanemu.c,
 * whose header documents the options): packets, shaped queues, hosts,
 * pairs, and the one process-wide we_t.
 *
 * Locking: none; wanemu is one thread.
 *
 * Crash behaviour: declarations only.
 */
#ifndef WE_H
#define WE_H

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define WE_MAX_HOSTS   64
#define WE_MAX_PKT     65535
#define WE_READ_BATCH  64        /* packets read from one TUN per wakeup */
#define WE_NS          1000000000ull

typedef struct we_pkt_s we_pkt_t;
struct we_pkt_s {
    we_pkt_t      *next;         /* FIFO link in a host queue */
    uint64_t       due_ns;       /* delay heap key */
    uint64_t       seq;          /* heap tie-breaker: arrival order */
    int            src, dst;
    size_t         len;
    unsigned char  data[];
};

/* A drop-tail FIFO drained by a token bucket. */
typedef struct {
    we_pkt_t      *head, *tail;
    size_t         bytes;        /* queued bytes */
    size_t         limit;        /* drop-tail limit, bytes */
    uint64_t       rate_bps;     /* bit/s, 0 = unlimited */
    double         tokens;       /* bytes */
    size_t         burst;        /* bucket depth, bytes */
    uint64_t       last_ns;      /* last refill */
} we_shaper_t;

typedef struct {
    char           ns[64];
    char           tun[IFNAMSIZ];
    uint32_t       addr;         /* host order */
    int            prefix;
    int            fd;
    size_t         queue_opt;    /* 0 = one BDP */
    we_shaper_t    up, down;
    uint64_t       rx_pkts, rx_bytes, tx_pkts, tx_bytes;
    uint64_t       drop_up, drop_down, drop_loss, drop_noroute, drop_mem,
                   drop_other;
} we_host_t;

typedef struct {
    uint64_t       delay_ns, jitter_ns;
    uint32_t       loss_ppm;     /* parts per million */
    int            reorder;
    uint64_t       rng;          /* splitmix64 state */
    uint64_t       last_due;     /* keeps the pair's order under jitter */
    uint64_t       pkts, lost;
} we_link_t;

typedef struct {
    we_host_t      hosts[WE_MAX_HOSTS];
    int            nhosts;
    we_link_t      links[WE_MAX_HOSTS][WE_MAX_HOSTS];
    we_pkt_t     **heap;
    size_t         nheap, heap_cap;
    uint64_t       seq;
    uint64_t       seed;
    int            mtu;
    size_t         mem, mem_peak, mem_limit;
    const char    *stats_path;
    uint64_t       start_ns;
    int            tfd;
    const char    *control_path; /* --control: read on SIGUSR2 */
    int            running;      /* devices made: links name real hosts */
    jmp_buf       *ctl_env;      /* set while a control file is applied:
                                    we_die() jumps back instead of exit */
    char           ctl_err[256];
} we_t;

extern we_t  we;

/* we_conf.c: options and their defaults */
void we_die(const char *what, const char *arg);
int we_option(const char *name, char *val);
void we_finish_config(void);

/* we_ctl.c: the runtime control file (SIGUSR2) */
void we_ctl_apply(void);

/* we_stats.c: the JSON lines on SIGUSR1 and at exit */
uint64_t we_now(void);
void we_stats(int exiting);

#endif /* WE_H */
