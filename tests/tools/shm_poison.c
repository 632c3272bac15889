/*
 * shm_poison.c -- a test tool that breaks a live node's or tracker's shm
 * segment the way a careless process would, for the tier-2 reset tests.
 *
 *   shm_poison NAME lock TABLE_ID [INDEX]
 *       makes the robust lock INDEX (default 0) of table TABLE_ID (a table
 *       of ts_shlock_sh_t) ENOTRECOVERABLE: a child takes it and exits
 *       holding it, then this process takes it (EOWNERDEAD) and unlocks it
 *       without pthread_mutex_consistent().  The next worker that locks it
 *       gets -1 and sets reset_needed.
 *   shm_poison NAME flag
 *       sets reset_needed directly (a segment with no lock, e.g. a node's)
 *   shm_poison NAME show
 *       prints "reset_needed=N epoch=HEX creator=PID"
 *
 * Locking: takes the one lock it poisons, briefly, like any locker.
 *
 * Crash behaviour: touches nothing but the named lock or flag; exits 0 on
 * success, 1 with a message on stderr otherwise.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts_shlock.h"
#include "ts_shm.h"


/* The layout version written in the segment's header (0 if unreadable). */
static uint32_t
layout_of(const char *name)
{
    int               fd;
    uint32_t          v = 0;
    ts_shm_hdr_sh_t  *h;

    fd = shm_open(name, O_RDONLY, 0);
    if (fd == -1) {
        return 0;
    }
    h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (h != MAP_FAILED) {
        v = h->layout_version;
        munmap(h, sizeof(*h));
    }
    return v;
}


static int
poison_lock(ts_shlock_sh_t *l)
{
    int    rc, st;
    pid_t  pid;

    pid = fork();
    if (pid == -1) {
        return -1;
    }
    if (pid == 0) {
        _exit(pthread_mutex_lock(&l->mutex) == 0 ? 0 : 1);
    }
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)
        || WEXITSTATUS(st) != 0)
    {
        fprintf(stderr, "shm_poison: the child could not take the lock\n");
        return -1;
    }
    rc = pthread_mutex_lock(&l->mutex);
    if (rc != EOWNERDEAD) {
        fprintf(stderr, "shm_poison: lock gave %s, not EOWNERDEAD (a "
                "worker repaired it first?)\n", strerror(rc));
        if (rc == 0) {
            pthread_mutex_unlock(&l->mutex);
        }
        return -1;
    }
    /* no pthread_mutex_consistent(): ENOTRECOVERABLE from now on */
    pthread_mutex_unlock(&l->mutex);
    return 0;
}


int
main(int argc, char **argv)
{
    ts_shm_t         s;
    ts_shlock_sh_t  *locks;
    uint32_t         cap, esz, idx;

    if (argc < 3) {
        fprintf(stderr, "usage: shm_poison NAME lock TABLE_ID [INDEX] | "
                "flag | show\n");
        return 1;
    }
    if (ts_shm_attach(&s, argv[1], layout_of(argv[1])) != 0) {
        fprintf(stderr, "shm_poison: cannot attach %s\n", argv[1]);
        return 1;
    }

    if (strcmp(argv[2], "show") == 0) {
        printf("reset_needed=%u epoch=%llx creator=%d\n",
               (unsigned) atomic_load(&s.hdr->reset_needed),
               (unsigned long long) atomic_load(&s.hdr->boot_epoch),
               (int) atomic_load(&s.hdr->creator_pid));
        return 0;
    }
    if (strcmp(argv[2], "flag") == 0) {
        ts_shm_request_reset(&s);
        return 0;
    }
    if (strcmp(argv[2], "lock") != 0 || argc < 4) {
        fprintf(stderr, "shm_poison: unknown command %s\n", argv[2]);
        return 1;
    }
    idx = argc > 4 ? (uint32_t) strtoul(argv[4], NULL, 10) : 0;
    locks = ts_shm_table(&s, (uint32_t) strtoul(argv[3], NULL, 10), &cap,
                         &esz);
    if (locks == NULL || esz != sizeof(ts_shlock_sh_t) || idx >= cap) {
        fprintf(stderr, "shm_poison: no lock %u in table %s\n", idx,
                argv[3]);
        return 1;
    }
    return poison_lock(&locks[idx]) == 0 ? 0 : 1;
}
