/*
 * ts_shm.c -- create, validate and attach the node's POSIX shm segment.
 *
 * Purpose: one named segment per node.  It starts with a versioned header
 * (ts_shm_hdr_sh_t, padded to 64 bytes) that holds a directory of tables;
 * each table starts on a 64-byte boundary, so no two tables share a cache
 * line.  This file knows nothing about what the tables hold: trackers and
 * clients describe their tables with ts_shm_spec_t and get base pointers
 * back from ts_shm_table().
 *
 * Locking: none here.  The creator fills the header before it publishes
 * the magic (a release store, written last), and nobody changes the
 * directory afterwards.  A process that opens an existing segment whose
 * magic is still 0 waits a little for a concurrent creator to finish.
 *
 * Crash behaviour: the segment is a cache that the node rebuilds from tdb
 * and the disk.  If a node died without unlinking it, the next
 * ts_shm_create() finds the creator pid gone (or the header wrong) and
 * replaces the segment; if the creator is alive it refuses with EBUSY.
 * A recycled pid may make a dead node's segment look alive: the operator
 * then sees EBUSY and the name in the log, never a silently shared
 * segment.  ts_shm_attach() checks every offset against the real size of
 * the object, so a corrupt header costs an EPROTO, not a wild pointer.
 * Tier 2: a lock that cannot be recovered sets reset_needed
 * (ts_shm_lock); the supervisor then stops every worker and the owner
 * rebuilds the segment, anew (ts_shm_create) or in place (ts_shm_reinit).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ts_log.h"
#include "ts_shm.h"

#define TS_SHM_ALIGN          64u

static size_t
shm_align(size_t n)
{
    return (n + TS_SHM_ALIGN - 1) & ~((size_t) TS_SHM_ALIGN - 1);
}


static size_t
shm_header_size(void)
{
    return shm_align(sizeof(ts_shm_hdr_sh_t));
}


static int
shm_name_ok(const char *name)
{
    size_t len;

    if (name == NULL || name[0] != '/') {
        return 0;
    }
    len = strlen(name);
    if (len < 2 || len >= sizeof(((ts_shm_t *) 0)->name)) {
        return 0;
    }
    return strchr(name + 1, '/') == NULL;
}


size_t
ts_shm_layout_size(const ts_shm_spec_t *specs, int nspecs)
{
    size_t    total, bytes;
    int       i, j;

    if (nspecs < 0 || nspecs > TS_SHM_TABLES_MAX_N
        || (nspecs > 0 && specs == NULL))
    {
        return 0;
    }

    total = shm_header_size();

    for (i = 0; i < nspecs; i++) {
        if (specs[i].id == 0 || specs[i].entry_size == 0) {
            return 0;
        }
        for (j = 0; j < i; j++) {
            if (specs[j].id == specs[i].id) {
                return 0;
            }
        }
        bytes = (size_t) specs[i].entry_size * specs[i].capacity;
        /* both factors are 32-bit, so only the running sum can overflow */
        if (bytes > SIZE_MAX / 2 || total > SIZE_MAX / 2 - bytes
            - TS_SHM_ALIGN)
        {
            return 0;
        }
        total = shm_align(total + bytes);
    }

    return total;
}


static uint64_t
shm_new_epoch(void)
{
    uint64_t         epoch = 0;
    struct timespec  ts;

    if (getrandom(&epoch, sizeof(epoch), GRND_NONBLOCK)
        != (ssize_t) sizeof(epoch))
    {
        clock_gettime(CLOCK_REALTIME, &ts);
        epoch = ((uint64_t) ts.tv_sec << 32) ^ (uint64_t) ts.tv_nsec
                ^ ((uint64_t) getpid() << 16);
    }

    return epoch ? epoch : 1;
}


/* Map fd of size bytes; NULL on failure (errno set). */
static void *
shm_map(int fd, size_t size)
{
    void  *p;

    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    return p == MAP_FAILED ? NULL : p;
}


static int
shm_header_valid(const ts_shm_hdr_sh_t *h, size_t real_size,
    uint32_t layout_version)
{
    uint32_t  i;
    uint64_t  end;
    size_t    hsize = shm_header_size();

    if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != TS_SHM_MAGIC
        || h->layout_version != layout_version
        || h->header_size != hsize
        || h->total_size != real_size
        || h->ntables > TS_SHM_TABLES_MAX_N)
    {
        return 0;
    }

    for (i = 0; i < h->ntables; i++) {
        const ts_shm_table_sh_t *t = &h->tables[i];

        if (t->id == 0 || t->offset % TS_SHM_ALIGN != 0
            || t->offset < hsize || t->offset > real_size)
        {
            return 0;
        }
        end = t->offset + (uint64_t) t->entry_size * t->capacity;
        if (end < t->offset || end > real_size) {
            return 0;
        }
    }

    return 1;
}


typedef enum {
    SHM_OLD_GONE,       /* vanished meanwhile: just retry the create */
    SHM_OLD_STALE,      /* unlinked by us: retry the create */
    SHM_OLD_BUSY,       /* a live node owns it */
    SHM_OLD_ERROR       /* errno set */
} shm_old_t;


/* What is wrong with the open segment fd (NULL: nothing) and who made
 * it (*creator, 0 if unknown); waits up to TS_SHM_CREATE_WAIT_MS for a
 * creator that has not published its header yet.  0, or -1 on error. */
static int
shm_old_why(int fd, const char *name, uint32_t layout_version,
    pid_t *creator, const char **why)
{
    int               waited = 0;
    struct stat       st;
    ts_shm_hdr_sh_t  *h;
    struct timespec   nap = { 0, TS_SHM_CREATE_NAP_MS * 1000000L };

    for ( ;; ) {
        if (fstat(fd, &st) == -1) {
            ts_err("fstat(\"%s\") failed: %s", name, strerror(errno));
            return -1;
        }

        *why = NULL;
        *creator = 0;

        if ((size_t) st.st_size < sizeof(ts_shm_hdr_sh_t)) {
            *why = "too small";

        } else {
            h = shm_map(fd, sizeof(ts_shm_hdr_sh_t));
            if (h == NULL) {
                ts_err("mmap(\"%s\") failed: %s", name, strerror(errno));
                return -1;
            }

            if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE)
                != TS_SHM_MAGIC)
            {
                *why = "bad magic";

            } else {
                *creator = atomic_load(&h->creator_pid);

                if (h->layout_version != layout_version) {
                    *why = "other layout version";
                } else if (h->header_size != shm_header_size()
                           || h->total_size != (uint64_t) st.st_size)
                {
                    *why = "size mismatch";
                }
            }
            munmap(h, sizeof(ts_shm_hdr_sh_t));
        }

        /* a creator may be between shm_open() and publishing the magic */
        if (*why != NULL && *creator == 0
            && waited < TS_SHM_CREATE_WAIT_MS)
        {
            nanosleep(&nap, NULL);
            waited += TS_SHM_CREATE_NAP_MS;
            continue;
        }
        return 0;
    }
}


/* Inspect an existing segment; unlink it if it is stale. */
static shm_old_t
shm_inspect_old(const char *name, uint32_t layout_version)
{
    int               fd;
    pid_t             creator;
    const char       *why;

    fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd == -1) {
        if (errno == ENOENT) {
            return SHM_OLD_GONE;
        }
        ts_err("shm_open(\"%s\") failed: %s", name, strerror(errno));
        return SHM_OLD_ERROR;
    }

    if (shm_old_why(fd, name, layout_version, &creator, &why) != 0) {
        close(fd);
        return SHM_OLD_ERROR;
    }

    close(fd);

    if (creator > 0 && creator != getpid()) {
        if (kill(creator, 0) == 0 || errno == EPERM) {
            ts_err("shm segment \"%s\" is in use by live pid %d",
                   name, (int) creator);
            errno = EBUSY;
            return SHM_OLD_BUSY;
        }
    }

    if (why == NULL) {
        why = creator == getpid() ? "created earlier by this process"
                                  : "creator is dead";
    }

    ts_warn("replacing stale shm segment \"%s\" (%s, creator pid %d)",
            name, why, (int) creator);

    if (shm_unlink(name) == -1 && errno != ENOENT) {
        ts_err("shm_unlink(\"%s\") failed: %s", name, strerror(errno));
        return SHM_OLD_ERROR;
    }

    return SHM_OLD_STALE;
}


/* Creates name exclusively, replacing stale segments on the way: the fd,
 * or -1 with errno (EBUSY: a live node owns it). */
static int
shm_open_new(const char *name, uint32_t layout_version)
{
    int  fd, tries;

    for (tries = 0; tries < TS_SHM_CREATE_TRIES_N; tries++) {
        fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd != -1) {
            return fd;
        }
        if (errno != EEXIST) {
            ts_err("shm_open(\"%s\") failed: %s", name, strerror(errno));
            return -1;
        }
        switch (shm_inspect_old(name, layout_version)) {
        case SHM_OLD_GONE:
        case SHM_OLD_STALE:
            continue;
        case SHM_OLD_BUSY:
            errno = EBUSY;
            return -1;
        default:
            return -1;
        }
    }

    ts_err("shm segment \"%s\" keeps reappearing; giving up", name);
    errno = EBUSY;
    return -1;
}


/* Writes the header and the table directory into fresh zeroed memory and
 * runs each table's init(); the magic is published last. */
static void
shm_fill(void *base, size_t size, uint32_t layout_version,
    const ts_shm_spec_t *specs, int nspecs)
{
    int               i;
    size_t            off;
    ts_shm_hdr_sh_t  *h = base;

    h->layout_version = layout_version;
    h->header_size = (uint32_t) shm_header_size();
    h->ntables = (uint32_t) nspecs;
    h->total_size = size;
    atomic_store(&h->creator_pid, (int32_t) getpid());
    atomic_store(&h->reset_needed, 0);
    atomic_store(&h->boot_epoch, shm_new_epoch());

    off = shm_header_size();
    for (i = 0; i < nspecs; i++) {
        h->tables[i].id = specs[i].id;
        h->tables[i].entry_size = specs[i].entry_size;
        h->tables[i].capacity = specs[i].capacity;
        h->tables[i].offset = off;
        if (specs[i].init != NULL) {
            specs[i].init((char *) base + off, specs[i].capacity);
        }
        off = shm_align(off + (size_t) specs[i].entry_size
                              * specs[i].capacity);
    }

    /* publish: openers treat magic == 0 as "being created" */
    __atomic_store_n(&h->magic, TS_SHM_MAGIC, __ATOMIC_RELEASE);
}


int
ts_shm_create(ts_shm_t *s, const char *name, uint32_t layout_version,
    const ts_shm_spec_t *specs, int nspecs)
{
    int     fd, err;
    size_t  size;
    void   *base;

    memset(s, 0, sizeof(*s));

    if (!shm_name_ok(name)) {
        ts_err("bad shm segment name");
        errno = EINVAL;
        return -1;
    }

    size = ts_shm_layout_size(specs, nspecs);
    if (size == 0) {
        ts_err("bad shm layout for \"%s\"", name);
        errno = EINVAL;
        return -1;
    }

    fd = shm_open_new(name, layout_version);
    if (fd == -1) {
        return -1;
    }

    /* the umask may have narrowed the mode; never let it widen */
    if (fchmod(fd, 0600) == -1) {
        ts_warn("fchmod(\"%s\") failed: %s", name, strerror(errno));
    }

    if (ftruncate(fd, (off_t) size) == -1) {
        err = errno;
        ts_err("ftruncate(\"%s\", %zu) failed: %s", name, size,
               strerror(err));
        goto failed;
    }

    base = shm_map(fd, size);
    if (base == NULL) {
        err = errno;
        ts_err("mmap(\"%s\", %zu) failed: %s", name, size, strerror(err));
        goto failed;
    }
    close(fd);

    /* ftruncate() of a new object gives zeroed pages */
    shm_fill(base, size, layout_version, specs, nspecs);

    snprintf(s->name, sizeof(s->name), "%s", name);
    s->base = base;
    s->size = size;
    s->hdr = base;

    ts_info("created shm segment \"%s\": %zu bytes, %d tables, epoch %llx",
            name, size, nspecs,
            (unsigned long long) atomic_load(&s->hdr->boot_epoch));
    return 0;

failed:
    close(fd);
    shm_unlink(name);
    errno = err;
    return -1;
}


int
ts_shm_attach(ts_shm_t *s, const char *name, uint32_t layout_version)
{
    int          fd, err;
    struct stat  st;
    void        *base;

    memset(s, 0, sizeof(*s));

    if (!shm_name_ok(name)) {
        errno = EINVAL;
        return -1;
    }

    fd = shm_open(name, O_RDWR | O_CLOEXEC, 0);
    if (fd == -1) {
        err = errno;
        ts_err("shm_open(\"%s\") failed: %s", name, strerror(err));
        errno = err;
        return -1;
    }

    if (fstat(fd, &st) == -1) {
        err = errno;
        ts_err("fstat(\"%s\") failed: %s", name, strerror(err));
        close(fd);
        errno = err;
        return -1;
    }

    if ((size_t) st.st_size < shm_header_size()) {
        ts_err("shm segment \"%s\" too small (%lld bytes)", name,
               (long long) st.st_size);
        close(fd);
        errno = EPROTO;
        return -1;
    }

    base = shm_map(fd, (size_t) st.st_size);
    err = errno;
    close(fd);
    if (base == NULL) {
        ts_err("mmap(\"%s\") failed: %s", name, strerror(err));
        errno = err;
        return -1;
    }

    if (!shm_header_valid(base, (size_t) st.st_size, layout_version)) {
        ts_err("shm segment \"%s\" has a bad header (want layout %u)",
               name, layout_version);
        munmap(base, (size_t) st.st_size);
        errno = EPROTO;
        return -1;
    }

    snprintf(s->name, sizeof(s->name), "%s", name);
    s->base = base;
    s->size = (size_t) st.st_size;
    s->hdr = base;
    return 0;
}


void
ts_shm_detach(ts_shm_t *s)
{
    if (s->base != NULL && munmap(s->base, s->size) == -1) {
        ts_err("munmap(\"%s\") failed: %s", s->name, strerror(errno));
    }
    memset(s, 0, sizeof(*s));
}


int
ts_shm_unlink(const char *name)
{
    if (shm_unlink(name) == -1) {
        if (errno != ENOENT) {
            ts_err("shm_unlink(\"%s\") failed: %s", name, strerror(errno));
        }
        return -1;
    }
    return 0;
}


void *
ts_shm_table(const ts_shm_t *s, uint32_t id, uint32_t *capacity,
    uint32_t *entry_size)
{
    uint32_t                 i;
    const ts_shm_table_sh_t *t;

    if (s == NULL || s->hdr == NULL || id == 0) {
        return NULL;
    }

    for (i = 0; i < s->hdr->ntables && i < TS_SHM_TABLES_MAX_N; i++) {
        t = &s->hdr->tables[i];
        if (t->id != id) {
            continue;
        }
        if (capacity != NULL) {
            *capacity = t->capacity;
        }
        if (entry_size != NULL) {
            *entry_size = t->entry_size;
        }
        return (char *) s->base + t->offset;
    }

    return NULL;
}


/* ---- tier-2 reset ---------------------------------------------------- */

void
ts_shm_request_reset(ts_shm_t *s)
{
    if (s == NULL || s->hdr == NULL) {
        return;
    }
    if (atomic_exchange(&s->hdr->reset_needed, 1) == 0) {
        ts_err("shm segment \"%s\" needs a rebuild: reset_needed set",
               s->name);
    }
}


int
ts_shm_reset_needed(const ts_shm_t *s)
{
    if (s == NULL || s->hdr == NULL) {
        return 0;
    }
    return atomic_load(&s->hdr->reset_needed) != 0;
}


int
ts_shm_lock(ts_shm_t *s, ts_shlock_sh_t *l, ts_shlock_repair_pt repair,
    void *arg)
{
    int  rc;

    rc = ts_shlock_lock(l, repair, arg);
    if (rc < 0) {
        ts_shm_request_reset(s);
    }
    return rc;
}


static const ts_shm_spec_t *
shm_spec_of(const ts_shm_spec_t *specs, int nspecs, uint32_t id)
{
    int  i;

    for (i = 0; i < nspecs; i++) {
        if (specs[i].id == id) {
            return &specs[i];
        }
    }
    return NULL;
}


int
ts_shm_reinit(ts_shm_t *s, const ts_shm_spec_t *specs, int nspecs,
    const uint32_t *ids, int nids)
{
    int                   i;
    void                 *t;
    uint32_t              cap, esz;
    const ts_shm_spec_t  *sp;

    for (i = 0; i < nids; i++) {
        sp = shm_spec_of(specs, nspecs, ids[i]);
        t = ts_shm_table(s, ids[i], &cap, &esz);
        if (sp == NULL || t == NULL || cap != sp->capacity
            || esz != sp->entry_size)
        {
            ts_err("shm segment \"%s\": cannot rebuild table %u", s->name,
                   ids[i]);
            return -1;
        }
    }

    for (i = 0; i < nids; i++) {
        sp = shm_spec_of(specs, nspecs, ids[i]);
        t = ts_shm_table(s, ids[i], NULL, NULL);
        memset(t, 0, (size_t) sp->entry_size * sp->capacity);
        if (sp->init != NULL) {
            sp->init(t, sp->capacity);
        }
    }

    atomic_store(&s->hdr->boot_epoch, shm_new_epoch());
    atomic_store(&s->hdr->reset_needed, 0);
    ts_info("rebuilt %d tables of shm segment \"%s\" in place, epoch %llx",
            nids, s->name,
            (unsigned long long) atomic_load(&s->hdr->boot_epoch));
    return 0;
}
