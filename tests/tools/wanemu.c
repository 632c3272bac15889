/*
 * wanemu.c -- a userspace WAN emulator for the system tests and benchmarks
 * (this kernel has no netem).
 *
 * Every emulated host is a network namespace made beforehand by the
 * caller (`ip netns add NAME`, see tests/system/wanbed.py).  wanemu enters
 * each one, brings `lo` up, creates a TUN device there (default name
 * wan0), gives it the host's address, a large MTU and IFF_UP, and keeps
 * the device's fd.  Every IPv4 packet a host sends into its TUN goes:
 *
 *   sender's UPLOAD queue   token bucket at the host's up rate, drop-tail
 *        |                  queue of `queue` bytes
 *   random loss             per (src,dst) pair, seeded RNG
 *   one-way delay (+jitter) per (src,dst) pair, a min-heap of due times
 *        |
 *   receiver's DOWNLOAD queue  token bucket at the host's down rate,
 *        |                     drop-tail queue of `queue` bytes
 *   written into the receiver's TUN.
 *
 * Usage:
 *   wanemu [OPTIONS] --host SPEC --host SPEC ... [--link SPEC ...]
 *   wanemu --config FILE           (same options, one a line, no "--";
 *                                   '#' starts a comment)
 * Options:
 *   --host NETNS,ADDR/PREFIX[,up=RATE][,down=RATE][,queue=SIZE]
 *          [,burst=SIZE][,tun=NAME]
 *          one host, NETNS being /run/netns/NETNS (`ip netns add`);
 *          hosts are numbered 0, 1, ... in order.  RATE in
 *          bit/s with k/M/G suffix (SI, "50M" = 50 Mbit/s; 0 or absent =
 *          unlimited).  queue: each of the host's two queues' byte limit
 *          (default one BDP: rate x 2 x the largest one-way delay of the
 *          host's links, at least 4 MTU).  burst: token bucket depth in
 *          bytes, the credit an idle queue keeps (default and at least
 *          one MTU).  SIZE takes K/M suffixes (1024).
 *   --link A-B:delay=TIME[,loss=PCT][,jitter=TIME][,reorder]
 *          both directions of the pair A,B (host numbers or '*' for all);
 *          A>B for one direction only.  Later specs override earlier ones.
 *          TIME is "20ms", "500us", "1s" (a plain number is ms).  loss in
 *          percent ("5" or "0.5%").  jitter adds a uniform 0..TIME extra
 *          delay per packet; packets of a pair keep their order unless
 *          `reorder` is given.
 *   --delay TIME, --loss PCT   defaults of every pair (0)
 *   --seed N      RNG seed (default 1); pair (A,B) draws from its own
 *                 stream, so a pair's k-th packet's fate is reproducible
 *   --mtu N       TUN MTU (default 65000, at most 65535)
 *   --max-mem SIZE  bound on all queued and delayed packet bytes
 *                 (default 256M); past it packets drop ("drop_mem")
 *   --stats FILE  append the stats JSON lines there (default stderr)
 *   --control FILE  on SIGUSR2 apply the link/delay/loss lines of FILE
 *                 to the running emulator and answer "ctl ok N" or
 *                 "ctl error LINE: WHY" on stdout (wanemu/we_ctl.c)
 * When every TUN is up it prints "ready PID" on stdout.  It dies with its
 * parent (PR_SET_PDEATHSIG), and on SIGTERM/SIGINT/SIGHUP.
 *
 * Stats (JSON lines, on SIGUSR1 and on exit): one
 *   {"ev":"host","host":N,"ns":..,"up_bps":..,"down_bps":..,
 *    "queue_bytes":..,"rx_pkts":..,"rx_bytes":..,"tx_pkts":..,
 *    "tx_bytes":..,"drop_up":..,"drop_down":..,"drop_loss":..,
 *    "drop_noroute":..,"drop_mem":..,"drop_other":..}
 * per host (rx = read from its TUN, tx = written to it), one
 *   {"ev":"link","src":A,"dst":B,"pkts":..,"lost":..}
 * per pair that carried traffic, then
 *   {"ev":"summary","wall_s":..,"cpu_user_s":..,"cpu_sys_s":..,
 *    "mem_peak":..,"exiting":true|false}.
 *
 * Locking: one single-threaded process, epoll over the TUN fds, one
 * timerfd (absolute CLOCK_MONOTONIC deadline of the next due packet) and
 * a signalfd.  Memory is bounded by the queue limits and --max-mem.
 *
 * Crash behaviour: the TUN devices vanish with the process (and the
 * namespaces with their owner, wanbed.py); nothing is left on disk but
 * the stats file.  A bad option exits 2 with a message on stderr before
 * any device is made.
 */
#include "wanemu/we.h"

we_t  we;


/* splitmix64: small, fast, good enough for loss and jitter draws. */
static uint64_t
we_rand(uint64_t *s)
{
    uint64_t  z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}


/* ---- devices ----------------------------------------------------------- */

static void
we_ifreq(int s, unsigned long req, struct ifreq *ifr, const char *what)
{
    if (ioctl(s, req, ifr) < 0) {
        fprintf(stderr, "wanemu: %s on %s: %s\n", what, ifr->ifr_name,
                strerror(errno));
        exit(1);
    }
}


static void
we_if_up(int s, const char *name)
{
    struct ifreq  ifr;

    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    we_ifreq(s, SIOCGIFFLAGS, &ifr, "SIOCGIFFLAGS");
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    we_ifreq(s, SIOCSIFFLAGS, &ifr, "SIOCSIFFLAGS");
}


/* Enters h's namespace, makes and configures its TUN, keeps the fd. */
static void
we_open_tun(we_host_t *h)
{
    char                 path[128];
    struct ifreq         ifr;
    struct sockaddr_in  *sin = (struct sockaddr_in *) &ifr.ifr_addr;
    int                  nsfd, s;

    snprintf(path, sizeof(path), "/run/netns/%s", h->ns);
    if ((nsfd = open(path, O_RDONLY | O_CLOEXEC)) < 0
        || setns(nsfd, CLONE_NEWNET) < 0) {
        fprintf(stderr, "wanemu: enter %s: %s\n", path, strerror(errno));
        exit(1);
    }
    close(nsfd);

    if ((h->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0)
        we_die("open /dev/net/tun", strerror(errno));
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", h->tun);
    we_ifreq(h->fd, TUNSETIFF, &ifr, "TUNSETIFF");

    if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
        we_die("socket", strerror(errno));
    we_if_up(s, "lo");

    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", h->tun);
    ifr.ifr_mtu = we.mtu;
    we_ifreq(s, SIOCSIFMTU, &ifr, "SIOCSIFMTU");
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(h->addr);
    we_ifreq(s, SIOCSIFADDR, &ifr, "SIOCSIFADDR");
    sin->sin_addr.s_addr = htonl(~0u << (32 - h->prefix));
    we_ifreq(s, SIOCSIFNETMASK, &ifr, "SIOCSIFNETMASK");
    we_if_up(s, h->tun);
    close(s);
}


/* ---- packets and queues ------------------------------------------------ */

static void
we_free(we_pkt_t *p)
{
    we.mem -= p->len;
    free(p);
}


static void
we_heap_push(we_pkt_t *p)
{
    size_t  i;

    if (we.nheap == we.heap_cap) {
        size_t     cap = we.heap_cap ? we.heap_cap * 2 : 1024;
        we_pkt_t **n = realloc(we.heap, cap * sizeof(*n));

        if (n == NULL) {
            we.hosts[p->dst].drop_mem++;
            we_free(p);
            return;
        }
        we.heap = n;
        we.heap_cap = cap;
    }
    i = we.nheap++;
    while (i > 0) {
        size_t     up = (i - 1) / 2;
        we_pkt_t  *q = we.heap[up];

        if (q->due_ns < p->due_ns
            || (q->due_ns == p->due_ns && q->seq < p->seq))
            break;
        we.heap[i] = q;
        i = up;
    }
    we.heap[i] = p;
}


static we_pkt_t *
we_heap_pop(void)
{
    we_pkt_t  *top = we.heap[0], *last = we.heap[--we.nheap];
    size_t     i = 0;

    for (;;) {
        size_t     c = 2 * i + 1;
        we_pkt_t  *m;

        if (c >= we.nheap)
            break;
        if (c + 1 < we.nheap
            && (we.heap[c + 1]->due_ns < we.heap[c]->due_ns
                || (we.heap[c + 1]->due_ns == we.heap[c]->due_ns
                    && we.heap[c + 1]->seq < we.heap[c]->seq)))
            c++;
        m = we.heap[c];
        if (last->due_ns < m->due_ns
            || (last->due_ns == m->due_ns && last->seq < m->seq))
            break;
        we.heap[i] = m;
        i = c;
    }
    if (we.nheap > 0)
        we.heap[i] = last;
    return top;
}


/*
 * Token refill up to now.  An idle queue's credit is capped at the bucket
 * depth (the burst a link may send after a pause); a backlogged queue's
 * is not: there the credit past the depth is what accrued while this
 * process woke late, and dropping it would run the link below its rate
 * (at small packets a wakeup 0.2 ms late is already a packet lost).
 * The queue limit bounds that catch-up.
 */
static void
we_refill(we_shaper_t *q, uint64_t now, int idle)
{
    if (now > q->last_ns) {
        q->tokens += (double) (now - q->last_ns) * q->rate_bps / 8e9;
        q->last_ns = now;
    }
    if (idle && q->tokens > (double) q->burst)
        q->tokens = (double) q->burst;
}


/* Drop-tail enqueue; 0 if the queue is full (the caller drops). */
static int
we_enqueue(we_shaper_t *q, we_pkt_t *p, uint64_t now)
{
    if (q->rate_bps != 0 && q->bytes + p->len > q->limit)
        return 0;
    if (q->head == NULL && q->rate_bps != 0)
        we_refill(q, now, 1);
    p->next = NULL;
    if (q->tail) q->tail->next = p; else q->head = p;
    q->tail = p;
    q->bytes += p->len;
    return 1;
}


/* When the head packet may leave (UINT64_MAX: queue empty). */
static uint64_t
we_ready_at(we_shaper_t *q, uint64_t now)
{
    if (q->head == NULL)
        return UINT64_MAX;
    if (q->rate_bps == 0)
        return now;
    we_refill(q, now, 0);
    if (q->tokens >= (double) q->head->len)
        return now;
    return now + (uint64_t) (((double) q->head->len - q->tokens) * 8e9
                             / q->rate_bps) + 1;
}


static we_pkt_t *
we_dequeue(we_shaper_t *q)
{
    we_pkt_t  *p = q->head;

    q->head = p->next;
    if (q->head == NULL)
        q->tail = NULL;
    q->bytes -= p->len;
    if (q->rate_bps != 0)
        q->tokens -= (double) p->len;
    return p;
}


/* Up queue -> loss -> delay heap. */
static void
we_depart(we_pkt_t *p, uint64_t now)
{
    we_link_t  *l = &we.links[p->src][p->dst];
    uint64_t    due;

    l->pkts++;
    if (l->loss_ppm && we_rand(&l->rng) % 1000000 < l->loss_ppm) {
        l->lost++;
        we.hosts[p->src].drop_loss++;
        we_free(p);
        return;
    }
    due = now + l->delay_ns;
    if (l->jitter_ns)
        due += we_rand(&l->rng) % (l->jitter_ns + 1);
    if (!l->reorder && due < l->last_due)
        due = l->last_due;
    l->last_due = due;
    p->due_ns = due;
    p->seq = we.seq++;
    we_heap_push(p);
}


static void
we_deliver(we_pkt_t *p)
{
    we_host_t  *d = &we.hosts[p->dst];

    if (write(d->fd, p->data, p->len) == (ssize_t) p->len) {
        d->tx_pkts++;
        d->tx_bytes += p->len;
    } else {
        d->drop_other++;
    }
    we_free(p);
}


/* Moves every packet that is due; returns the next deadline. */
static uint64_t
we_run_due(void)
{
    uint64_t  now, next;
    int       moved;

    do {
        moved = 0;
        now = we_now();
        next = UINT64_MAX;
        for (int i = 0; i < we.nhosts; i++) {
            we_host_t  *h = &we.hosts[i];
            uint64_t    t;

            while ((t = we_ready_at(&h->up, now)) <= now) {
                we_depart(we_dequeue(&h->up), now);
                moved = 1;
            }
            if (t < next) next = t;
        }
        while (we.nheap > 0 && we.heap[0]->due_ns <= now) {
            we_pkt_t  *p = we_heap_pop();

            if (!we_enqueue(&we.hosts[p->dst].down, p, now)) {
                we.hosts[p->dst].drop_down++;
                we_free(p);
            }
            moved = 1;
        }
        if (we.nheap > 0 && we.heap[0]->due_ns < next)
            next = we.heap[0]->due_ns;
        for (int i = 0; i < we.nhosts; i++) {
            we_host_t  *h = &we.hosts[i];
            uint64_t    t;

            while ((t = we_ready_at(&h->down, now)) <= now) {
                we_deliver(we_dequeue(&h->down));
                moved = 1;
            }
            if (t < next) next = t;
        }
    } while (moved);
    return next;
}


static int
we_find_host(uint32_t addr)
{
    for (int i = 0; i < we.nhosts; i++)
        if (we.hosts[i].addr == addr)
            return i;
    return -1;
}


/* Reads a batch of packets from host i's TUN into its up queue. */
static void
we_read_tun(int i)
{
    static unsigned char  buf[WE_MAX_PKT + 1];
    we_host_t            *h = &we.hosts[i];

    for (int n = 0; n < WE_READ_BATCH; n++) {
        ssize_t    len = read(h->fd, buf, sizeof(buf));
        uint32_t   dst;
        int        d;
        we_pkt_t  *p;

        if (len < 0)
            return;
        h->rx_pkts++;
        h->rx_bytes += (uint64_t) len;
        if (len < 20 || len > we.mtu || (buf[0] >> 4) != 4) {
            h->drop_other++;           /* IPv6 chatter, runts */
            continue;
        }
        memcpy(&dst, buf + 16, 4);
        d = we_find_host(ntohl(dst));
        if (d < 0 || d == i) {
            h->drop_noroute++;
            continue;
        }
        if (we.mem + (size_t) len > we.mem_limit
            || (p = malloc(sizeof(*p) + (size_t) len)) == NULL) {
            h->drop_mem++;
            continue;
        }
        p->src = i;
        p->dst = d;
        p->len = (size_t) len;
        memcpy(p->data, buf, (size_t) len);
        we.mem += p->len;
        if (we.mem > we.mem_peak)
            we.mem_peak = we.mem;
        if (!we_enqueue(&h->up, p, we_now())) {
            h->drop_up++;
            we_free(p);
        }
    }
}


/* ---- main loop --------------------------------------------------------- */

static void
we_arm(uint64_t at)
{
    struct itimerspec  its;

    memset(&its, 0, sizeof(its));
    if (at != UINT64_MAX) {
        if (at == 0) at = 1;
        its.it_value.tv_sec = (time_t) (at / WE_NS);
        its.it_value.tv_nsec = (long) (at % WE_NS);
    }
    timerfd_settime(we.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}


static int
we_loop(int ep, int sfd)
{
    struct epoll_event  evs[WE_MAX_HOSTS + 2];

    for (;;) {
        int  n = epoll_wait(ep, evs, WE_MAX_HOSTS + 2, -1);

        if (n < 0 && errno != EINTR)
            we_die("epoll_wait", strerror(errno));
        for (int k = 0; k < n; k++) {
            int  tag = (int) evs[k].data.u32;

            if (tag < we.nhosts) {
                we_read_tun(tag);
            } else if (tag == WE_MAX_HOSTS) {
                uint64_t  exp;

                if (read(we.tfd, &exp, sizeof(exp)) < 0) { /* spurious */ }
            } else {
                struct signalfd_siginfo  si;

                if (read(sfd, &si, sizeof(si)) != sizeof(si))
                    continue;
                if (si.ssi_signo == SIGUSR1) {
                    we_stats(0);
                } else if (si.ssi_signo == SIGUSR2) {
                    we_ctl_apply();
                } else {
                    we_stats(1);
                    return 0;
                }
            }
        }
        we_arm(we_run_due());
    }
}


int
main(int argc, char **argv)
{
    struct epoll_event  ev;
    sigset_t            ss;
    int                 ep, sfd = -1, rootns;

    we.seed = 1;
    we.mtu = 65000;
    we.mem_limit = 256u << 20;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            we_die("options start with --, see the file header", argv[i]);
        if (i + 1 >= argc)
            we_die("missing value", argv[i]);
        we_option(argv[i] + 2, argv[i + 1]);
        i++;
    }
    if (we.nhosts < 2)
        we_die("need at least two --host", NULL);
    we_finish_config();

    prctl(PR_SET_PDEATHSIG, SIGTERM);
    sigemptyset(&ss);
    sigaddset(&ss, SIGUSR1);
    sigaddset(&ss, SIGUSR2);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGHUP);
    sigprocmask(SIG_BLOCK, &ss, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (getppid() == 1)                 /* parent died before prctl */
        return 1;

    if ((rootns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
        we_die("open /proc/self/ns/net", strerror(errno));
    for (int i = 0; i < we.nhosts; i++)
        we_open_tun(&we.hosts[i]);
    if (setns(rootns, CLONE_NEWNET) < 0)
        we_die("setns back", strerror(errno));
    close(rootns);

    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0
        || (we.tfd = timerfd_create(CLOCK_MONOTONIC,
                                    TFD_NONBLOCK | TFD_CLOEXEC)) < 0
        || (sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
        we_die("epoll/timerfd/signalfd", strerror(errno));
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    for (int i = 0; i < we.nhosts; i++) {
        ev.data.u32 = (uint32_t) i;
        epoll_ctl(ep, EPOLL_CTL_ADD, we.hosts[i].fd, &ev);
    }
    ev.data.u32 = WE_MAX_HOSTS;
    epoll_ctl(ep, EPOLL_CTL_ADD, we.tfd, &ev);
    ev.data.u32 = WE_MAX_HOSTS + 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    we.start_ns = we_now();
    we.running = 1;
    for (int i = 0; i < we.nhosts; i++)
        we.hosts[i].up.last_ns = we.hosts[i].down.last_ns = we.start_ns;
    printf("ready %d\n", (int) getpid());
    fflush(stdout);
    return we_loop(ep, sfd);
}
