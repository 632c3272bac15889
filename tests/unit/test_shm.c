/*
 * test_shm.c -- unit tests for shm/: the segment, robust locks, claims.
 *
 * Purpose: evidence with real processes.  Segments are real POSIX shm
 * objects named after the test's pid; children are forked, attach for
 * themselves, and are SIGKILLed while holding a lock or claims.
 *
 * Locking: the tests exercise ts_shlock; they take no other locks.
 *
 * Crash behaviour: every wait is bounded (poll timeouts, WNOHANG loops);
 * every child is stopped by its pid and reaped; every segment is
 * unlinked, also when an assertion fails (teardown).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ts_claim.h"
#include "ts_shlock.h"
#include "ts_shm.h"

#define T_WAIT_MS   5000
#define T_TAB_DATA  1
#define T_TAB_LOCK  2
#define T_TAB_SLOTS 3
#define T_TAB_WORDS 4
#define T_WORDS_N   64
#define T_SLOTS_N   8

typedef struct {
    ts_shlock_sh_t  lock;
    int             dirty;     /* set inside the critical section */
    int             counter;
} t_locked_sh_t;

static char  t_name[64];
static int   t_repaired;

static void
t_lock_init(void *table, uint32_t capacity)
{
    t_locked_sh_t *l = table;
    uint32_t       i;

    for (i = 0; i < capacity; i++) {
        assert_int_equal(ts_shlock_init(&l[i].lock), 0);
    }
}


static void
t_data_init(void *table, uint32_t capacity)
{
    uint32_t *d = table;

    (void) capacity;
    d[0] = 0xC0FFEE;
}


static const ts_shm_spec_t t_specs[] = {
    { T_TAB_DATA,  sizeof(uint32_t),           100,         t_data_init },
    { T_TAB_LOCK,  sizeof(t_locked_sh_t),      1,           t_lock_init },
    { T_TAB_SLOTS, sizeof(ts_slot_sh_t),       T_SLOTS_N,   NULL },
    { T_TAB_WORDS, sizeof(_Atomic uint64_t),   T_WORDS_N,   NULL },
};
#define T_NSPECS (int) (sizeof(t_specs) / sizeof(t_specs[0]))


/* Wait for pid up to ms; SIGKILL it on timeout.  Returns wait status or
 * -1 on timeout. */
static int
t_wait(pid_t pid, int ms)
{
    int               st, waited;
    pid_t             r;
    struct timespec   nap = { 0, 5 * 1000000L };

    for (waited = 0; waited < ms; waited += 5) {
        r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            return st;
        }
        nanosleep(&nap, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}


/* Read one byte from fd with a deadline; -1 on timeout or EOF. */
static int
t_read_byte(int fd, int ms)
{
    struct pollfd  p = { fd, POLLIN, 0 };
    unsigned char  c;

    if (poll(&p, 1, ms) != 1 || read(fd, &c, 1) != 1) {
        return -1;
    }
    return c;
}


static int
t_setup(void **state)
{
    static int  seq;

    (void) state;
    snprintf(t_name, sizeof(t_name), "/tessera-test-shm-%d-%d",
             (int) getpid(), ++seq);
    ts_shm_unlink(t_name);
    return 0;
}


static int
t_teardown(void **state)
{
    (void) state;
    ts_shm_unlink(t_name);
    return 0;
}


static void
test_create_attach_tables(void **state)
{
    ts_shm_t    s, a;
    uint32_t    cap = 0, esz = 0, i;
    uint32_t   *data;
    size_t      need;

    (void) state;

    need = ts_shm_layout_size(t_specs, T_NSPECS);
    assert_true(need > sizeof(ts_shm_hdr_sh_t));
    assert_int_equal(need % 64, 0);

    assert_int_equal(ts_shm_create(&s, t_name, 7, t_specs, T_NSPECS), 0);
    assert_int_equal(s.size, need);
    assert_int_equal(s.hdr->magic, TS_SHM_MAGIC);
    assert_int_equal(s.hdr->layout_version, 7);
    assert_int_equal(s.hdr->ntables, T_NSPECS);
    assert_int_equal(atomic_load(&s.hdr->creator_pid), getpid());
    assert_true(atomic_load(&s.hdr->boot_epoch) != 0);

    /* Linux keeps POSIX shm objects in /dev/shm: check the mode */
    {
        char         path[128];
        struct stat  st;

        snprintf(path, sizeof(path), "/dev/shm%s", t_name);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal((size_t) st.st_size, need);
    }

    /* every table 64-byte aligned, inside the segment, not overlapping */
    for (i = 0; i < (uint32_t) T_NSPECS; i++) {
        const ts_shm_table_sh_t *t = &s.hdr->tables[i];
        uint64_t end = t->offset + (uint64_t) t->entry_size * t->capacity;

        assert_int_equal(t->offset % 64, 0);
        assert_true(t->offset >= s.hdr->header_size);
        assert_true(end <= s.size);
        if (i > 0) {
            const ts_shm_table_sh_t *p = &s.hdr->tables[i - 1];
            assert_true(t->offset
                        >= p->offset + (uint64_t) p->entry_size * p->capacity);
        }
    }

    data = ts_shm_table(&s, T_TAB_DATA, &cap, &esz);
    assert_non_null(data);
    assert_int_equal(cap, 100);
    assert_int_equal(esz, sizeof(uint32_t));
    assert_int_equal(data[0], 0xC0FFEE);      /* init() ran */
    assert_int_equal(data[99], 0);            /* rest zeroed */
    assert_null(ts_shm_table(&s, 99, NULL, NULL));
    assert_null(ts_shm_table(&s, 0, NULL, NULL));

    /* a second mapping in this process sees the same bytes */
    assert_int_equal(ts_shm_attach(&a, t_name, 7), 0);
    data[5] = 12345;
    assert_int_equal(((uint32_t *) ts_shm_table(&a, T_TAB_DATA, NULL,
                                                NULL))[5], 12345);
    assert_int_equal(atomic_load(&a.hdr->boot_epoch),
                     atomic_load(&s.hdr->boot_epoch));
    ts_shm_detach(&a);

    /* bad specs are refused */
    {
        ts_shm_spec_t dup[2] = { { 5, 8, 1, NULL }, { 5, 8, 1, NULL } };
        ts_shm_t      x;

        assert_int_equal(ts_shm_layout_size(dup, 2), 0);
        assert_int_equal(ts_shm_create(&x, "/tessera-test-bad", 1, dup, 2),
                         -1);
        assert_int_equal(errno, EINVAL);
        assert_int_equal(ts_shm_create(&x, "no-slash", 1, t_specs, 1), -1);
        assert_int_equal(errno, EINVAL);
    }

    ts_shm_detach(&s);
    assert_null(s.base);
}


static void
test_child_attach_sees_writes(void **state)
{
    ts_shm_t    s;
    uint32_t   *data;
    pid_t       pid;
    int         st;

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    data = ts_shm_table(&s, T_TAB_DATA, NULL, NULL);
    data[10] = 4242;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_shm_t   c;
        uint32_t  *d;

        /* a fresh mapping, maybe at another address: offsets only */
        if (ts_shm_attach(&c, t_name, 1) != 0) {
            _exit(10);
        }
        d = ts_shm_table(&c, T_TAB_DATA, NULL, NULL);
        if (d == NULL || d[10] != 4242) {
            _exit(11);
        }
        d[11] = 777;
        ts_shm_detach(&c);
        _exit(0);
    }

    st = t_wait(pid, T_WAIT_MS);
    assert_true(st != -1);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_int_equal(data[11], 777);
    ts_shm_detach(&s);
}


static void
test_stale_segment_replaced(void **state)
{
    ts_shm_t    s;
    int         p[2], st;
    pid_t       pid;
    uint64_t    old_epoch = 0;

    (void) state;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_shm_t  c;

        close(p[0]);
        if (ts_shm_create(&c, t_name, 1, t_specs, T_NSPECS) != 0) {
            _exit(10);
        }
        old_epoch = atomic_load(&c.hdr->boot_epoch);
        if (write(p[1], &old_epoch, sizeof(old_epoch))
            != (ssize_t) sizeof(old_epoch))
        {
            _exit(11);
        }
        _exit(0);     /* dies without unlinking: a stale segment */
    }
    close(p[1]);

    st = t_wait(pid, T_WAIT_MS);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(read(p[0], &old_epoch, sizeof(old_epoch)),
                     sizeof(old_epoch));
    close(p[0]);

    /* the segment exists, its creator is dead */
    assert_int_equal(ts_shm_attach(&s, t_name, 1), 0);
    assert_int_equal(atomic_load(&s.hdr->creator_pid), pid);
    ts_shm_detach(&s);

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    assert_int_equal(atomic_load(&s.hdr->creator_pid), getpid());
    assert_true(atomic_load(&s.hdr->boot_epoch) != old_epoch);
    ts_shm_detach(&s);
}


static void
test_live_creator_refused(void **state)
{
    ts_shm_t    s;
    int         up[2], down[2], st;
    pid_t       pid;

    (void) state;

    assert_int_equal(pipe(up), 0);
    assert_int_equal(pipe(down), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_shm_t  c;

        close(up[0]);
        close(down[1]);
        if (ts_shm_create(&c, t_name, 1, t_specs, T_NSPECS) != 0) {
            _exit(10);
        }
        if (write(up[1], "c", 1) != 1) {
            _exit(11);
        }
        /* stay alive until told, at most T_WAIT_MS */
        t_read_byte(down[0], T_WAIT_MS);
        _exit(0);
    }
    close(up[1]);
    close(down[0]);

    assert_int_equal(t_read_byte(up[0], T_WAIT_MS), 'c');

    errno = 0;
    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), -1);
    assert_int_equal(errno, EBUSY);

    /* the live node's segment is untouched */
    assert_int_equal(ts_shm_attach(&s, t_name, 1), 0);
    assert_int_equal(atomic_load(&s.hdr->creator_pid), pid);
    ts_shm_detach(&s);

    assert_int_equal(write(down[1], "q", 1), 1);
    st = t_wait(pid, T_WAIT_MS);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(up[0]);
    close(down[1]);
}


static void
test_attach_rejects_bad_header(void **state)
{
    ts_shm_t    s, a;
    uint64_t    saved;

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 3, t_specs, T_NSPECS), 0);

    errno = 0;
    assert_int_equal(ts_shm_attach(&a, t_name, 4), -1);
    assert_int_equal(errno, EPROTO);
    assert_int_equal(ts_shm_attach(&a, t_name, 3), 0);
    ts_shm_detach(&a);

    /* a table that points outside the segment */
    saved = s.hdr->tables[1].offset;
    s.hdr->tables[1].offset = s.size;
    assert_int_equal(ts_shm_attach(&a, t_name, 3), -1);
    assert_int_equal(errno, EPROTO);
    s.hdr->tables[1].offset = saved + 1;          /* misaligned */
    assert_int_equal(ts_shm_attach(&a, t_name, 3), -1);
    s.hdr->tables[1].offset = saved;

    s.hdr->total_size += 64;                       /* size mismatch */
    assert_int_equal(ts_shm_attach(&a, t_name, 3), -1);
    assert_int_equal(errno, EPROTO);
    s.hdr->total_size -= 64;

    s.hdr->magic = 0xdeadbeef;
    assert_int_equal(ts_shm_attach(&a, t_name, 3), -1);
    assert_int_equal(errno, EPROTO);

    /* create replaces a segment with a bad magic, even our own */
    ts_shm_detach(&s);
    assert_int_equal(ts_shm_create(&s, t_name, 3, t_specs, T_NSPECS), 0);
    assert_int_equal(s.hdr->magic, TS_SHM_MAGIC);
    ts_shm_detach(&s);

    assert_int_equal(ts_shm_attach(&a, "/tessera-test-nonexistent", 3), -1);
    assert_int_equal(errno, ENOENT);
}


static void
t_repair(void *arg)
{
    t_locked_sh_t *l = arg;

    t_repaired++;
    l->dirty = 0;
}


/* Fork a child that takes the lock, marks the data dirty and waits to be
 * killed; SIGKILL it.  Returns after the child is reaped. */
static void
t_die_holding_lock(void)
{
    int    p[2], st;
    pid_t  pid;

    assert_int_equal(pipe(p), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_shm_t        c;
        t_locked_sh_t  *l;

        close(p[0]);
        if (ts_shm_attach(&c, t_name, 1) != 0) {
            _exit(10);
        }
        l = ts_shm_table(&c, T_TAB_LOCK, NULL, NULL);
        if (ts_shlock_lock(&l->lock, NULL, NULL) != 0) {
            _exit(11);
        }
        l->dirty = 1;
        l->counter++;
        if (write(p[1], "L", 1) != 1) {
            _exit(12);
        }
        sleep(10);    /* the parent kills us long before */
        _exit(13);
    }
    close(p[1]);
    assert_int_equal(t_read_byte(p[0], T_WAIT_MS), 'L');
    close(p[0]);

    assert_int_equal(kill(pid, SIGKILL), 0);
    st = t_wait(pid, T_WAIT_MS);
    assert_true(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}


static void
test_robust_lock_owner_killed(void **state)
{
    ts_shm_t        s;
    t_locked_sh_t  *l;

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    l = ts_shm_table(&s, T_TAB_LOCK, NULL, NULL);

    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), 0);
    ts_shlock_unlock(&l->lock);

    t_die_holding_lock();
    assert_int_equal(l->dirty, 1);

    t_repaired = 0;
    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), 1);
    assert_int_equal(t_repaired, 1);
    assert_int_equal(l->dirty, 0);
    assert_int_equal(l->counter, 1);
    /* errorcheck: relocking our own mutex fails instead of hanging */
    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), -1);
    ts_shlock_unlock(&l->lock);

    /* consistent again: plain lock/unlock, no repair */
    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), 0);
    assert_int_equal(t_repaired, 1);
    ts_shlock_unlock(&l->lock);

    /* another process can take it too */
    t_die_holding_lock();
    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), 1);
    assert_int_equal(t_repaired, 2);
    assert_int_equal(l->counter, 2);
    ts_shlock_unlock(&l->lock);

    ts_shm_detach(&s);
}


static void
test_robust_lock_not_recoverable(void **state)
{
    ts_shm_t        s;
    t_locked_sh_t  *l;

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    l = ts_shm_table(&s, T_TAB_LOCK, NULL, NULL);

    t_die_holding_lock();

    /* a careless locker unlocks without making it consistent */
    assert_int_equal(pthread_mutex_lock(&l->lock.mutex), EOWNERDEAD);
    assert_int_equal(pthread_mutex_unlock(&l->lock.mutex), 0);

    t_repaired = 0;
    assert_int_equal(ts_shlock_lock(&l->lock, t_repair, l), -1);
    assert_int_equal(t_repaired, 0);

    ts_shm_detach(&s);
}


/* The tier-2 path: a lock that is not recoverable, met through
 * ts_shm_lock(), sets reset_needed; ts_shm_reinit() rebuilds that table
 * in place (the lock works again), clears the flag and starts a new
 * boot epoch; the other tables keep their contents. */
static void
test_not_recoverable_sets_reset_needed(void **state)
{
    ts_shm_t         s, a;
    t_locked_sh_t   *l;
    uint32_t        *d;
    uint64_t         epoch;
    const uint32_t   lock_id[] = { T_TAB_LOCK };
    const uint32_t   bad_id[] = { 99 };

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    l = ts_shm_table(&s, T_TAB_LOCK, NULL, NULL);
    d = ts_shm_table(&s, T_TAB_DATA, NULL, NULL);
    d[7] = 77;
    epoch = atomic_load(&s.hdr->boot_epoch);
    assert_int_equal(ts_shm_reset_needed(&s), 0);

    /* healthy or repaired: no reset */
    assert_int_equal(ts_shm_lock(&s, &l->lock, t_repair, l), 0);
    ts_shlock_unlock(&l->lock);
    t_die_holding_lock();
    assert_int_equal(ts_shm_lock(&s, &l->lock, t_repair, l), 1);
    ts_shlock_unlock(&l->lock);
    assert_int_equal(ts_shm_reset_needed(&s), 0);

    /* dies holding it; the next locker unlocks without consistent() */
    t_die_holding_lock();
    assert_int_equal(pthread_mutex_lock(&l->lock.mutex), EOWNERDEAD);
    assert_int_equal(pthread_mutex_unlock(&l->lock.mutex), 0);

    assert_int_equal(ts_shm_lock(&s, &l->lock, t_repair, l), -1);
    assert_int_equal(ts_shm_reset_needed(&s), 1);
    /* another process's mapping sees the flag */
    assert_int_equal(ts_shm_attach(&a, t_name, 1), 0);
    assert_int_equal(ts_shm_reset_needed(&a), 1);

    /* a table the layout does not have: refused, nothing changed */
    assert_int_equal(ts_shm_reinit(&s, t_specs, T_NSPECS, bad_id, 1), -1);
    assert_int_equal(ts_shm_reset_needed(&s), 1);

    assert_int_equal(ts_shm_reinit(&s, t_specs, T_NSPECS, lock_id, 1), 0);
    assert_int_equal(ts_shm_reset_needed(&a), 0);
    assert_true(atomic_load(&a.hdr->boot_epoch) != epoch);
    assert_int_equal(l->counter, 0);
    assert_int_equal(d[7], 77);
    t_repaired = 0;
    assert_int_equal(ts_shm_lock(&a, &l->lock, t_repair, l), 0);
    ts_shlock_unlock(&l->lock);
    assert_int_equal(t_repaired, 0);

    ts_shm_detach(&a);
    ts_shm_detach(&s);
}


static void
test_claims(void **state)
{
    ts_shm_t           s;
    _Atomic uint64_t  *w;
    ts_owner_t         a = ts_owner_make(1000, 1), b = ts_owner_make(1001, 1);

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    w = ts_shm_table(&s, T_TAB_WORDS, NULL, NULL);
    assert_non_null(w);

    assert_int_equal(ts_owner_pid(a), 1000);
    assert_int_equal(ts_owner_gen(a), 1);

    assert_int_equal(ts_claim_try(&w[0], a), 1);
    assert_int_equal(ts_claim_try(&w[0], a), 0);    /* already held */
    assert_int_equal(ts_claim_try(&w[0], b), 0);
    assert_int_equal(ts_claim_release(&w[0], b), 0);
    assert_int_equal(atomic_load(&w[0]), a);
    assert_int_equal(ts_claim_release(&w[0], a), 1);
    assert_int_equal(atomic_load(&w[0]), 0);
    assert_int_equal(ts_claim_release(&w[0], a), 0);
    assert_int_equal(ts_claim_try(&w[0], b), 1);
    assert_int_equal(ts_claim_release(&w[0], b), 1);

    /* reclaim frees only the dead owner's words */
    assert_int_equal(ts_claim_try(&w[0], a), 1);
    assert_int_equal(ts_claim_try(&w[1], b), 1);
    assert_int_equal(ts_claim_try(&w[5], a), 1);
    assert_int_equal(ts_claim_try(&w[63], a), 1);
    assert_int_equal(ts_claim_reclaim(w, T_WORDS_N, a), 3);
    assert_int_equal(atomic_load(&w[0]), 0);
    assert_int_equal(atomic_load(&w[5]), 0);
    assert_int_equal(atomic_load(&w[63]), 0);
    assert_int_equal(atomic_load(&w[1]), b);
    assert_int_equal(ts_claim_reclaim(w, T_WORDS_N, a), 0);
    assert_int_equal(ts_claim_reclaim(w, T_WORDS_N, b), 1);

    ts_shm_detach(&s);
}


/* A real worker claims words and is SIGKILLed; its successor gets the
 * same pid number (we reuse it on purpose) but a new generation. */
static void
test_claims_dead_owner_pid_reuse(void **state)
{
    ts_shm_t           s;
    _Atomic uint64_t  *w;
    ts_slot_sh_t      *slots;
    ts_owner_t         dead, next, other;
    uint32_t           gen = 41;
    int                p[2], go[2], st;
    pid_t              pid;

    (void) state;

    assert_int_equal(ts_shm_create(&s, t_name, 1, t_specs, T_NSPECS), 0);
    w = ts_shm_table(&s, T_TAB_WORDS, NULL, NULL);
    slots = ts_shm_table(&s, T_TAB_SLOTS, NULL, NULL);

    other = ts_owner_make(getpid(), 7);
    assert_int_equal(ts_claim_try(&w[2], other), 1);

    assert_int_equal(pipe(p), 0);
    assert_int_equal(pipe(go), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ts_shm_t           c;
        _Atomic uint64_t  *cw;
        ts_slot_sh_t      *cs;
        ts_owner_t         me = ts_owner_make(getpid(), gen);

        close(p[0]);
        close(go[1]);
        /* wait until the "supervisor" has assigned our slot */
        if (t_read_byte(go[0], T_WAIT_MS) != 'G') {
            _exit(9);
        }
        if (ts_shm_attach(&c, t_name, 1) != 0) {
            _exit(10);
        }
        cw = ts_shm_table(&c, T_TAB_WORDS, NULL, NULL);
        cs = ts_shm_table(&c, T_TAB_SLOTS, NULL, NULL);
        ts_slot_set_active(&cs[0], me);
        if (!ts_claim_try(&cw[0], me) || !ts_claim_try(&cw[3], me)
            || ts_claim_try(&cw[2], me))
        {
            _exit(11);
        }
        ts_slot_beat(&cs[0]);
        if (write(p[1], "C", 1) != 1) {
            _exit(12);
        }
        sleep(10);
        _exit(13);
    }
    close(p[1]);
    close(go[0]);

    /* the supervisor's part: assign the slot at spawn */
    dead = ts_owner_make(pid, gen);
    ts_slot_assign(&slots[0], dead, 1);
    assert_int_equal(atomic_load(&slots[0].state), TS_SLOT_STARTING);
    assert_int_equal(write(go[1], "G", 1), 1);
    close(go[1]);

    assert_int_equal(t_read_byte(p[0], T_WAIT_MS), 'C');
    close(p[0]);
    assert_int_equal(atomic_load(&slots[0].state), TS_SLOT_ACTIVE);
    assert_true(atomic_load(&slots[0].heartbeat_ms) > 0);
    assert_int_equal(ts_slot_owner_live(slots, T_SLOTS_N, dead), 1);

    assert_int_equal(kill(pid, SIGKILL), 0);
    st = t_wait(pid, T_WAIT_MS);
    assert_true(st != -1 && WIFSIGNALED(st));

    assert_int_equal(atomic_load(&w[0]), dead);
    assert_int_equal(atomic_load(&w[3]), dead);

    /* a successor with the same pid but the next generation */
    next = ts_owner_make(pid, gen + 1);
    assert_int_equal(ts_owner_pid(next), ts_owner_pid(dead));
    assert_true(next != dead);
    assert_int_equal(ts_claim_release(&w[0], next), 0);
    assert_int_equal(ts_claim_try(&w[3], next), 0);
    assert_int_equal(atomic_load(&w[0]), dead);

    ts_slot_free(&slots[0], next);                  /* not its slot */
    assert_int_equal(ts_slot_owner_live(slots, T_SLOTS_N, dead), 1);
    ts_slot_free(&slots[0], dead);
    ts_slot_assign(&slots[0], next, 1);
    assert_int_equal(ts_slot_owner_live(slots, T_SLOTS_N, dead), 0);
    assert_int_equal(ts_slot_owner_live(slots, T_SLOTS_N, next), 1);
    ts_slot_set_active(&slots[0], dead);            /* stale: ignored */
    assert_int_equal(atomic_load(&slots[0].state), TS_SLOT_STARTING);

    /* the supervisor reclaims the dead owner's words only */
    assert_int_equal(ts_claim_reclaim(w, T_WORDS_N, dead), 2);
    assert_int_equal(atomic_load(&w[0]), 0);
    assert_int_equal(atomic_load(&w[3]), 0);
    assert_int_equal(atomic_load(&w[2]), other);
    assert_int_equal(ts_claim_try(&w[0], next), 1);

    ts_slot_free(&slots[0], next);
    assert_int_equal(atomic_load(&slots[0].state), TS_SLOT_FREE);
    assert_int_equal(ts_slot_owner_live(slots, T_SLOTS_N, next), 0);

    ts_shm_detach(&s);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_attach_tables,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_child_attach_sees_writes,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_stale_segment_replaced,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_live_creator_refused,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_attach_rejects_bad_header,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_robust_lock_owner_killed,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_robust_lock_not_recoverable,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_not_recoverable_sets_reset_needed,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_claims, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_claims_dead_owner_pid_reuse,
                                        t_setup, t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
