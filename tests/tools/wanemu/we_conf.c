/*
 * we_conf.c -- the WAN emulator's options (wanemu.c's header lists
 * them): hosts, pair links, defaults, a config file of the same options,
 * and the queue and bucket defaults derived from them.
 *
 * Locking: none; runs before any device is made.
 *
 * Crash behaviour: a bad value exits 2 with "wanemu: ..." on stderr,
 * before anything is created.
 */
#include "we.h"


void
we_die(const char *what, const char *arg)
{
    if (we.ctl_env != NULL) {           /* a runtime control line: reject
                                           it, keep running */
        snprintf(we.ctl_err, sizeof(we.ctl_err), "%s%s%s", what,
                 arg ? ": " : "", arg ? arg : "");
        longjmp(*we.ctl_env, 1);
    }
    fprintf(stderr, "wanemu: %s%s%s\n", what, arg ? ": " : "",
            arg ? arg : "");
    exit(2);
}


/* ---- option values ----------------------------------------------------- */

/* "50M" -> 50e6; mult is the k step (1000 for rates, 1024 for sizes). */
static uint64_t
we_parse_num(const char *s, double mult, const char *what)
{
    char    *end;
    double   v = strtod(s, &end);

    if (end == s || !(v >= 0))          /* NaN too */
        we_die(what, s);
    switch (*end) {
    case 'k': case 'K': v *= mult; end++; break;
    case 'm': case 'M': v *= mult * mult; end++; break;
    case 'g': case 'G': v *= mult * mult * mult; end++; break;
    default: break;
    }
    if (*end != '\0' && strcmp(end, "bit") != 0 && strcmp(end, "bps") != 0
        && strcmp(end, "B") != 0)
        we_die(what, s);
    if (v > 1e15)
        we_die(what, s);
    return (uint64_t) v;
}


static uint64_t
we_parse_time(const char *s)
{
    char    *end;
    double   v = strtod(s, &end);

    if (end == s || !(v >= 0) || v > 600e3)
        we_die("bad time", s);
    if (*end == '\0' || strcmp(end, "ms") == 0)
        return (uint64_t) (v * 1e6);
    if (strcmp(end, "us") == 0)
        return (uint64_t) (v * 1e3);
    if (strcmp(end, "s") == 0)
        return (uint64_t) (v * 1e9);
    we_die("bad time", s);
    return 0;
}


static uint32_t
we_parse_loss(const char *s)
{
    char    *end;
    double   v = strtod(s, &end);

    if (end == s || !(v >= 0) || v > 100
        || (*end != '\0' && strcmp(end, "%") != 0))
        we_die("bad loss percent", s);
    return (uint32_t) (v * 1e4 + 0.5);
}


/* A whole-string decimal in [lo, hi], or exit 2. */
static int
we_parse_int(const char *s, int lo, int hi, const char *what)
{
    char  *end;
    long   v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
        we_die(what, s);
    return (int) v;
}


/* ---- configuration ----------------------------------------------------- */

static int  we_link_top = -1;     /* highest host number a --link named */

static void
we_add_host(char *spec)
{
    we_host_t  *h;
    char       *tok, *save = NULL, *slash;
    struct in_addr  ia;

    if (we.nhosts >= WE_MAX_HOSTS)
        we_die("too many hosts", spec);
    h = &we.hosts[we.nhosts];
    memset(h, 0, sizeof(*h));
    h->fd = -1;
    snprintf(h->tun, sizeof(h->tun), "wan0");

    tok = strtok_r(spec, ",", &save);
    if (tok == NULL || strlen(tok) >= sizeof(h->ns) || strchr(tok, '/'))
        we_die("bad host namespace", tok);
    snprintf(h->ns, sizeof(h->ns), "%s", tok);

    tok = strtok_r(NULL, ",", &save);
    if (tok == NULL || (slash = strchr(tok, '/')) == NULL)
        we_die("host needs ADDR/PREFIX", tok);
    *slash = '\0';
    h->prefix = we_parse_int(slash + 1, 8, 30, "bad prefix length");
    if (inet_pton(AF_INET, tok, &ia) != 1)
        we_die("bad host address", tok);
    h->addr = ntohl(ia.s_addr);

    while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
        if (strncmp(tok, "up=", 3) == 0)
            h->up.rate_bps = we_parse_num(tok + 3, 1000, "bad rate");
        else if (strncmp(tok, "down=", 5) == 0)
            h->down.rate_bps = we_parse_num(tok + 5, 1000, "bad rate");
        else if (strncmp(tok, "queue=", 6) == 0)
            h->queue_opt = we_parse_num(tok + 6, 1024, "bad size");
        else if (strncmp(tok, "burst=", 6) == 0)
            h->up.burst = h->down.burst =
                we_parse_num(tok + 6, 1024, "bad size");
        else if (strncmp(tok, "tun=", 4) == 0 && strlen(tok + 4) > 0
                 && strlen(tok + 4) < IFNAMSIZ)
            snprintf(h->tun, sizeof(h->tun), "%s", tok + 4);
        else
            we_die("bad host option", tok);
    }
    for (int i = 0; i < we.nhosts; i++)
        if (we.hosts[i].addr == h->addr)
            we_die("duplicate host address", tok);
    we.nhosts++;
}


/* "A-B:delay=..,loss=..": applies to the pairs it names. */
static void
we_add_link(char *spec)
{
    char       *colon, *sep, *tok, *save = NULL;
    int         a0, a1, b0, b1, both;
    int         top = we.running ? we.nhosts - 1 : WE_MAX_HOSTS - 1;
    we_link_t   l;
    int         have_delay = 0, have_loss = 0, have_jit = 0, have_re = 0;

    memset(&l, 0, sizeof(l));
    colon = strchr(spec, ':');
    if (colon == NULL)
        we_die("link needs A-B:OPTIONS", spec);
    *colon = '\0';
    sep = strpbrk(spec, "->");
    if (sep == NULL)
        we_die("link needs A-B or A>B", spec);
    both = (*sep == '-');
    *sep = '\0';
    if (strcmp(spec, "*") == 0) { a0 = 0; a1 = WE_MAX_HOSTS - 1; }
    else { a0 = a1 = we_parse_int(spec, 0, top, "bad host"); }
    if (strcmp(sep + 1, "*") == 0) { b0 = 0; b1 = WE_MAX_HOSTS - 1; }
    else { b0 = b1 = we_parse_int(sep + 1, 0, top, "bad host"); }
    if (a0 == a1 && a0 > we_link_top) we_link_top = a0;
    if (b0 == b1 && b0 > we_link_top) we_link_top = b0;

    for (tok = strtok_r(colon + 1, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (strncmp(tok, "delay=", 6) == 0) {
            l.delay_ns = we_parse_time(tok + 6); have_delay = 1;
        } else if (strncmp(tok, "loss=", 5) == 0) {
            l.loss_ppm = we_parse_loss(tok + 5); have_loss = 1;
        } else if (strncmp(tok, "jitter=", 7) == 0) {
            l.jitter_ns = we_parse_time(tok + 7); have_jit = 1;
        } else if (strcmp(tok, "reorder") == 0) {
            l.reorder = 1; have_re = 1;
        } else {
            we_die("bad link option", tok);
        }
    }
    for (int a = a0; a <= a1; a++)
        for (int b = b0; b <= b1; b++)
            for (int dir = 0; dir < 1 + both; dir++) {
                we_link_t  *d = dir ? &we.links[b][a] : &we.links[a][b];

                if (have_delay) d->delay_ns = l.delay_ns;
                if (have_loss)  d->loss_ppm = l.loss_ppm;
                if (have_jit)   d->jitter_ns = l.jitter_ns;
                if (have_re)    d->reorder = l.reorder;
            }
}


static void we_config_file(const char *path);

/* One option (name without "--", value or NULL); 1 if it took the value. */
int
we_option(const char *name, char *val)
{
    if (strcmp(name, "host") == 0 && val)
        we_add_host(val);
    else if (strcmp(name, "link") == 0 && val)
        we_add_link(val);
    else if (strcmp(name, "delay") == 0 && val) {
        char  buf[96];
        snprintf(buf, sizeof(buf), "*-*:delay=%s", val);
        we_add_link(buf);
    } else if (strcmp(name, "loss") == 0 && val) {
        char  buf[96];
        snprintf(buf, sizeof(buf), "*-*:loss=%s", val);
        we_add_link(buf);
    } else if (strcmp(name, "seed") == 0 && val)
        we.seed = strtoull(val, NULL, 0);
    else if (strcmp(name, "mtu") == 0 && val) {
        we.mtu = we_parse_int(val, 576, WE_MAX_PKT, "bad mtu");
    } else if (strcmp(name, "max-mem") == 0 && val)
        we.mem_limit = we_parse_num(val, 1024, "bad size");
    else if (strcmp(name, "stats") == 0 && val)
        we.stats_path = strdup(val);
    else if (strcmp(name, "control") == 0 && val && !we.running)
        we.control_path = strdup(val);
    else if (strcmp(name, "config") == 0 && val)
        we_config_file(val);
    else
        we_die("unknown option or missing value", name);
    return 1;
}


static void
we_config_file(const char *path)
{
    FILE   *f = fopen(path, "r");
    char    line[1024], *p, *val, *hash;

    if (f == NULL)
        we_die("cannot open config", path);
    while (fgets(line, sizeof(line), f) != NULL) {
        if ((hash = strchr(line, '#')) != NULL)
            *hash = '\0';
        p = line + strspn(line, " \t\r\n");
        p[strcspn(p, "\r\n")] = '\0';
        if (*p == '\0')
            continue;
        val = p + strcspn(p, " \t");
        if (*val != '\0') {
            *val++ = '\0';
            val += strspn(val, " \t");
            val[strcspn(val, " \t")] = '\0';
        }
        we_option(p, *val ? val : NULL);
    }
    fclose(f);
}


/* Queue limits and bucket depths that the options left at their defaults. */
void
we_finish_config(void)
{
    if (we_link_top >= we.nhosts)
        we_die("a --link names a host number past the last --host", NULL);
    for (int i = 0; i < we.nhosts; i++) {
        we_host_t  *h = &we.hosts[i];
        uint64_t    maxd = 0;
        uint64_t    rate = h->up.rate_bps > h->down.rate_bps
                           ? h->up.rate_bps : h->down.rate_bps;

        for (int j = 0; j < we.nhosts; j++) {
            if (we.links[i][j].delay_ns > maxd) maxd = we.links[i][j].delay_ns;
            if (we.links[j][i].delay_ns > maxd) maxd = we.links[j][i].delay_ns;
        }
        if (h->queue_opt == 0) {
            /* one BDP: rate (bytes/ns) x round trip */
            h->queue_opt = (size_t) ((double) rate / 8 * 2 * maxd / 1e9);
            if (h->queue_opt < 4 * (size_t) we.mtu)
                h->queue_opt = 4 * (size_t) we.mtu;
        }
        h->up.limit = h->down.limit = h->queue_opt;
        if (h->up.burst < (size_t) we.mtu)
            h->up.burst = h->down.burst = we.mtu;
        h->up.tokens = (double) h->up.burst;
        h->down.tokens = (double) h->down.burst;
    }
    for (int a = 0; a < WE_MAX_HOSTS; a++)
        for (int b = 0; b < WE_MAX_HOSTS; b++)
            we.links[a][b].rng = we.seed * 0x100000001b3ull
                                 + (uint64_t) a * WE_MAX_HOSTS + b + 1;
}

