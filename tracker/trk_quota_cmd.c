/*
 * trk_quota_cmd.c -- the operator side of the storage quotas: the limits
 * in force (defaults from ts_config.h), the --quota NAME=VALUE option,
 * its --help text, and `tracker --usage NAME`.
 *
 * Purpose: the supervisor parses --quota before anything is forked, so
 * every worker inherits the same limits.  --usage opens tracker.tdb
 * read-only (tdb's locks make that safe beside a running tracker) and
 * prints the counters of one user, the group of that name and the whole
 * tracker: three fetches, no walk.  The limits it prints are those the
 * running tracker stored at its start (q/limits), so they are the ones in
 * force, not this command line's.
 *
 * Locking: none (the supervisor before fork, or the --usage process).
 *
 * Crash behaviour: nothing kept; --usage only reads (exit 0, 1 if the
 * database cannot be read, 2 for a bad name).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <tdb.h>

#include "ts_buf.h"
#include "trk_keys.h"
#include "trk_quota.h"

static trk_quota_t limits = {
    .user = {
        [TRK_USE_FILES] = TS_QUOTA_USER_FILES_N,
        [TRK_USE_HASH_B] = TS_QUOTA_USER_HASH_B,
        [TRK_USE_GROUPS] = TS_QUOTA_USER_GROUPS_N,
        [TRK_USE_SESSIONS] = TS_TRK_SESSIONS_PER_USER_N,
        [TRK_USE_NODES] = TS_QUOTA_USER_NODES_N,
        [TRK_USE_SHARES] = TS_QUOTA_USER_SHARES_N,
    },
    .group = {
        [TRK_USE_FILES] = TS_QUOTA_GROUP_FILES_N,
        [TRK_USE_HASH_B] = TS_QUOTA_GROUP_HASH_B,
    },
    .tracker = {
        [TRK_USE_FILES] = TS_QUOTA_TRACKER_FILES_N,
        [TRK_USE_HASH_B] = TS_QUOTA_TRACKER_HASH_B,
    },
    .file_size_b = TS_QUOTA_FILE_MAX_B,
};

/* The names --quota takes; bytes: the value may carry K/M/G/T (binary). */
static const struct {
    const char *name;
    int         who;            /* 0 user, 1 group, 2 tracker, 3 file */
    int         field;
    int         bytes;
    uint64_t    max;            /* 0 = none; also the value of "off" */
    const char *help;
} qnames[] = {
    { "user-files", 0, TRK_USE_FILES, 0, 0, "files a user uploaded" },
    { "user-hash-bytes", 0, TRK_USE_HASH_B, 1, 0,
      "chunk hashes of a user's files" },
    { "user-groups", 0, TRK_USE_GROUPS, 0, 0, "groups a user owns" },
    { "user-nodes", 0, TRK_USE_NODES, 0, 0, "nodes a user shares from" },
    { "user-shares", 0, TRK_USE_SHARES, 0, 0, "(node, file) sources" },
    { "group-files", 1, TRK_USE_FILES, 0, TS_TRK_GROUP_FILES_MAX_N,
      "files in one group" },
    { "group-hash-bytes", 1, TRK_USE_HASH_B, 1, 0,
      "chunk hashes of one group's files" },
    { "tracker-files", 2, TRK_USE_FILES, 0, 0, "files on this tracker" },
    { "tracker-hash-bytes", 2, TRK_USE_HASH_B, 1, 0,
      "chunk hashes on this tracker" },
    { "file-size", 3, 0, 1, TS_FILE_MAX_B, "largest file" },
};

#define NQNAMES  (sizeof(qnames) / sizeof(qnames[0]))


const trk_quota_t *
trk_quota_limits(void)
{
    return &limits;
}


static uint64_t *
limit_field(int who, int field)
{
    switch (who) {
    case 0:
        return &limits.user[field];
    case 1:
        return &limits.group[field];
    case 2:
        return &limits.tracker[field];
    default:
        return &limits.file_size_b;
    }
}


/* "123", "64M", "2GiB", "off": 0 or -1. */
static int
parse_value(const char *s, int bytes, uint64_t *out)
{
    char               *end;
    unsigned long long  v;
    int                 shift = 0;

    if (strcmp(s, "off") == 0) {
        *out = 0;
        return 0;
    }
    if (*s < '0' || *s > '9') {
        return -1;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0) {
        return -1;
    }
    if (*end != '\0' && bytes) {
        switch (*end | 0x20) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        default: return -1;
        }
        end++;
        if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0) {
            end += strlen(end);
        }
    }
    if (*end != '\0' || (shift > 0 && v > (UINT64_MAX >> shift))) {
        return -1;
    }
    *out = (uint64_t) v << shift;
    return 0;
}


int
trk_quota_option(const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    uint64_t    v;
    size_t      i, n;

    n = eq != NULL ? (size_t) (eq - arg) : strlen(arg);
    for (i = 0; i < NQNAMES; i++) {
        if (strlen(qnames[i].name) == n
            && strncmp(qnames[i].name, arg, n) == 0)
        {
            break;
        }
    }
    if (i == NQNAMES || eq == NULL) {
        snprintf(err, errlen, "bad --quota '%s' (NAME=VALUE; see --help)",
                 arg);
        return -1;
    }
    if (parse_value(eq + 1, qnames[i].bytes, &v) != 0
        || (qnames[i].max != 0 && v > qnames[i].max))
    {
        snprintf(err, errlen, "bad --quota value '%s' (a number%s, or off%s)",
                 arg, qnames[i].bytes ? " with K/M/G/T" : "",
                 qnames[i].max != 0 ? "; at most the default" : "");
        return -1;
    }
    /* "off" of a capped limit means the cap itself */
    *limit_field(qnames[i].who, qnames[i].field) =
        v == 0 && qnames[i].max != 0 ? qnames[i].max : v;
    return 0;
}


/* A default for --help: "off", "256M", "20000". */
static void
fmt_limit(uint64_t v, int bytes, char *out, size_t outsz)
{
    static const char suffix[] = "KMGT";
    int               i;

    if (v == 0) {
        snprintf(out, outsz, "off");
        return;
    }
    for (i = 3; bytes && i >= 0; i--) {
        if (v % (1ull << (10 * (i + 1))) == 0) {
            snprintf(out, outsz, "%" PRIu64 "%c", v >> (10 * (i + 1)),
                     suffix[i]);
            return;
        }
    }
    snprintf(out, outsz, "%" PRIu64, v);
}


void
trk_quota_usage_text(FILE *f)
{
    size_t i;
    char   d[32];

    fprintf(f, "      --quota NAME=VALUE      a storage quota, repeatable "
            "(0 or off: none;\n"
            "                              bytes may end in K, M, G, T):\n");
    for (i = 0; i < NQNAMES; i++) {
        fmt_limit(*limit_field(qnames[i].who, qnames[i].field),
                  qnames[i].bytes, d, sizeof(d));
        fprintf(f, "          %-19s %s (default %s)\n", qnames[i].name,
                qnames[i].help, d);
    }
    fprintf(f, "      --usage NAME            print what user NAME, group "
            "NAME and the\n"
            "                              tracker hold, and exit\n");
}


/* ---- tracker --usage ------------------------------------------------- */

/* The q/ record key into v[nv]: 0, 1 absent, -1. */
static int
fetch_use(struct tdb_context *tdb, const char *key, uint64_t *v, uint32_t nv)
{
    TDB_DATA k;

    k.dptr = (unsigned char *) key;
    k.dsize = strlen(key);
    return trk_usage_read(tdb, k, v, nv);
}


static void
print_pair(const char *name, uint64_t used, uint64_t limit)
{
    if (limit == 0) {
        printf(" %s %" PRIu64 "/-", name, used);
    } else {
        printf(" %s %" PRIu64 "/%" PRIu64, name, used, limit);
    }
}


int
trk_quota_usage_cmd(const char *data_dir, int id, const char *name)
{
    static const char *fn[TRK_USE_N] = {
        "files", "hash_bytes", "groups", "sessions", "nodes", "shares"
    };
    struct tdb_context *tdb;
    uint64_t            lim[3 * TRK_USE_N + 1], v[TRK_USE_N];
    char                key[TRK_KEY_B];
    char                db_path[PATH_MAX];
    int                 i, rc = 0;

    if (data_dir != NULL) {
        rc = snprintf(db_path, sizeof(db_path), "%s/tracker.tdb", data_dir);
    } else {
        rc = snprintf(db_path, sizeof(db_path), "./tsr-tracker-%d/tracker.tdb",
                      id);
    }
    if (rc < 0 || (size_t) rc >= sizeof(db_path)) {
        fprintf(stderr, "tracker: data directory path too long\n");
        return 1;
    }
    if (!ts_valid_id(name)) {
        fprintf(stderr, "tracker: bad --usage name '%s' (a user or group "
                "id)\n", name);
        return 2;
    }
    rc = 0;
    tdb = tdb_open(db_path, 0, TDB_DEFAULT, O_RDONLY, 0);
    if (tdb == NULL) {
        fprintf(stderr, "tracker: cannot open %s: %s\n", db_path,
                strerror(errno));
        return 1;
    }
    if (fetch_use(tdb, "q/limits", lim, 3 * TRK_USE_N + 1) != 0) {
        memcpy(lim, limits.user, sizeof(limits.user));
        memcpy(lim + TRK_USE_N, limits.group, sizeof(limits.group));
        memcpy(lim + 2 * TRK_USE_N, limits.tracker, sizeof(limits.tracker));
        lim[3 * TRK_USE_N] = limits.file_size_b;
    }
    snprintf(key, sizeof(key), "q/u/%s", name);
    rc |= fetch_use(tdb, key, v, TRK_USE_N) < 0;
    printf("user %s:", name);
    for (i = 0; i < TRK_USE_N; i++) {
        print_pair(fn[i], v[i], lim[i]);
    }
    snprintf(key, sizeof(key), "q/g/%s", name);
    rc |= fetch_use(tdb, key, v, TRK_USE_N) < 0;
    printf("\ngroup %s:", name);
    for (i = 0; i <= TRK_USE_HASH_B; i++) {
        print_pair(fn[i], v[i], lim[TRK_USE_N + i]);
    }
    rc |= fetch_use(tdb, "q/t", v, TRK_USE_N) < 0;
    printf("\ntracker:");
    for (i = 0; i <= TRK_USE_HASH_B; i++) {
        print_pair(fn[i], v[i], lim[2 * TRK_USE_N + i]);
    }
    printf("\nfile_size_max: %" PRIu64 "\n", lim[3 * TRK_USE_N]);
    tdb_close(tdb);
    if (rc != 0) {
        fprintf(stderr, "tracker: a usage record of %s does not decode\n",
                db_path);
    }
    return rc != 0;
}
