/*
 * cli_files.c -- the client's file commands: upload_file, list_files,
 * download_file, show_downloads, stop_share (output rules in cli_out.h;
 * wire layouts in common/ts_proto.h, types 30..35).
 *
 * upload_file reads the file once through one reused TS_CHUNK_B buffer,
 * hashing each chunk and the whole file (ts_sha1, OpenSSL), and checks
 * the file did not change while it was read.  download_file asks the
 * tracker for the file (FILE_INFO), resolves and checks the destination
 * and hands the download to the agent (cli_agent_download); it returns
 * at once, the node's downloaders do the work.
 *
 * Locking: main thread only; shm and node.tdb are reached only through
 * cli_agent.h, which takes the agent's lock.
 * Crash behaviour: nothing persistent here (the agent records shares
 * and downloads in node.tdb before a command reports success).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_buf.h"
#include "ts_crypto.h"
#include "ts_esc.h"
#include "ts_log.h"
#include "ts_proto.h"
#include "cli_cmds.h"
#include "cli_rpc.h"
#include "cli_rec.h"
#include "cli_agent.h"
#include "cli_files.h"
#include "cli_reply.h"

static uint8_t  *cli_chunk_buf;      /* TS_CHUNK_B, reused by every upload */


static int
cli_malformed(cli_reply_t *rep)
{
    cli_reply_free(rep);
    return cli_out_error("malformed reply from tracker");
}


/* A body cli_reply.h refused: errno tells memory from malformed. */
static int
cli_bad_body(cli_reply_t *rep)
{
    if (errno == ENOMEM) {
        cli_reply_free(rep);
        return cli_out_error("out of memory");
    }
    return cli_malformed(rep);
}


/* The last component of a path ("dir/a.txt" -> "a.txt"; trailing
 * slashes ignored).  out is empty when there is none. */
static void
cli_last_component(const char *path, char *out, size_t outsz)
{
    size_t       n = strlen(path);
    const char  *s;

    while (n > 1 && path[n - 1] == '/') {
        n--;
    }
    s = path + n;
    while (s > path && s[-1] != '/') {
        s--;
    }
    if ((size_t) (path + n - s) >= outsz) {
        out[0] = '\0';
        return;
    }
    memcpy(out, s, (size_t) (path + n - s));
    out[path + n - s] = '\0';
}


/* "error: invalid file name ..." for a name ts_valid_filename refuses;
 * the name is shown escaped, backslashes doubled (ts_esc.h) */
static int
cli_bad_name(const char *name)
{
    char  pn[TS_ESC_MAX_B(TS_NAME_MAX_B) + 8];

    (void) ts_esc(pn, sizeof(pn), name, strlen(name), TS_ESC_BSLASH);
    return cli_out_fail(CLI_EXIT_USAGE,
                        "invalid file name '%s' (no '/', control characters, "
                        "'.' or '..')", pn);
}


/* 0 if name may be the name of a new file (ts_valid_new_filename), else
 * one error line saying which character is refused and -1: a name with
 * a C1 or bidirectional control would reach every member's terminal. */
static int
cli_check_new_name(const char *name)
{
    char  pn[TS_ESC_MAX_B(TS_NAME_MAX_B) + 8], why[128];

    if (!ts_valid_filename(name)) {
        return cli_bad_name(name);
    }
    if (ts_valid_new_filename(name, why, sizeof(why))) {
        return 0;
    }
    (void) ts_esc(pn, sizeof(pn), name, strlen(name), TS_ESC_BSLASH);
    return cli_out_fail(CLI_EXIT_USAGE,
                        "invalid file name '%s': %s; a new file name must "
                        "be printable UTF-8", pn, why);
}


/* Reads exactly n bytes unless EOF comes first; returns bytes or -1. */
static ssize_t
cli_read_full(int fd, uint8_t *buf, size_t n)
{
    size_t   got = 0;
    ssize_t  r;

    while (got < n) {
        r = read(fd, buf + got, n - got);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t) r;
    }
    return (ssize_t) got;
}


static int64_t
cli_mtime_ns(const struct stat *sb)
{
    return (int64_t) sb->st_mtim.tv_sec * 1000000000LL + sb->st_mtim.tv_nsec;
}


/* ---- upload_file ------------------------------------------------------- */

/* The error line of a file that cannot be read; -1. */
static int
cli_files_unreadable(const char *path, int err)
{
    return cli_out_fail(CLI_EXIT_DATA, "cannot read '%s': %s", path,
                        strerror(err));
}


static int
cli_cmd_upload_file(cli_ctx_t *ctx, int argc, char **argv)
{
    const char       *path = argv[1], *group = argv[2];
    cli_share_rec_t   sr;
    ts_sha1_t        *whole = NULL;
    ts_wbuf_t         req;
    cli_reply_t       rep;
    struct stat       sb, sb2;
    uint8_t           tok[TS_TOKEN_B];
    uint8_t          *hashes = NULL;
    uint64_t          total;
    ssize_t           n;
    uint32_t          c;
    int               fd, r = -1, e;

    memset(&sr, 0, sizeof(sr));
    cli_last_component(path, sr.name, sizeof(sr.name));
    /* the name others will see and build paths from: checked first */
    if (sr.name[0] != '\0' && cli_check_new_name(sr.name) != 0) {
        return -1;
    }

    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        return cli_files_unreadable(path, errno);
    }
    if (fstat(fd, &sb) != 0) {
        e = errno;
        close(fd);
        return cli_files_unreadable(path, e);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return cli_out_fail(CLI_EXIT_DATA, "cannot read '%s': %s", path,
                            S_ISDIR(sb.st_mode) ? strerror(EISDIR)
                                                : "not a regular file");
    }
    (void) fcntl(fd, F_SETFL, 0);
    if (cli_check_new_name(sr.name) != 0) {
        close(fd);
        return -1;
    }
    if ((uint64_t) sb.st_size > TS_FILE_MAX_B) {
        close(fd);
        return cli_out_fail(CLI_EXIT_LIMIT,
                            "'%s' is too large (at most %llu bytes)", path,
                            (unsigned long long) TS_FILE_MAX_B);
    }
    if (realpath(path, sr.path) == NULL) {
        e = errno;
        close(fd);
        return cli_files_unreadable(path, e);
    }
    snprintf(sr.group, sizeof(sr.group), "%s", group);
    sr.size = (uint64_t) sb.st_size;
    sr.nchunks = cli_nchunks(sr.size);
    sr.mtime_ns = cli_mtime_ns(&sb);

    if (cli_chunk_buf == NULL) {
        cli_chunk_buf = malloc(TS_CHUNK_B);
    }
    whole = ts_sha1_new();
    if (sr.nchunks > 0) {
        hashes = malloc(20ull * sr.nchunks);
    }
    if (cli_chunk_buf == NULL || whole == NULL
        || (sr.nchunks > 0 && hashes == NULL))
    {
        cli_out_error("out of memory");
        goto out;
    }

    /* one pass: chunk hashes and the whole-file hash together */
    total = 0;
    for (c = 0; ; c++) {
        n = cli_read_full(fd, cli_chunk_buf, TS_CHUNK_B);
        if (n < 0) {
            cli_files_unreadable(path, errno);
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (c >= sr.nchunks) {
            cli_out_fail(CLI_EXIT_DATA,
                         "'%s' changed while it was read", path);
            goto out;
        }
        if (ts_sha1(cli_chunk_buf, (size_t) n, hashes + 20ull * c) != 0
            || ts_sha1_update(whole, cli_chunk_buf, (size_t) n) != 0)
        {
            cli_out_error("SHA1 failed");
            goto out;
        }
        total += (uint64_t) n;
        if ((size_t) n < TS_CHUNK_B) {
            break;
        }
    }
    if (ts_sha1_final(whole, sr.sha1) != 0) {
        cli_out_error("SHA1 failed");
        goto out;
    }
    if (total != sr.size || fstat(fd, &sb2) != 0
        || (uint64_t) sb2.st_size != sr.size
        || cli_mtime_ns(&sb2) != sr.mtime_ns)
    {
        cli_out_fail(CLI_EXIT_DATA, "'%s' changed while it was read", path);
        goto out;
    }

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        goto out;
    }
    ts_put_str(&req, sr.group);
    ts_put_str(&req, sr.name);
    ts_put_u64(&req, sr.size);
    ts_put_raw(&req, sr.sha1, 20);
    ts_put_u32(&req, sr.nchunks);
    ts_put_raw(&req, hashes, 20ull * sr.nchunks);
    e = cli_request(ctx, TS_MSG_UPLOAD_FILE, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (e != 0) {
        goto out;
    }
    if (cli_reply_empty(&rep.body) != 0) {
        cli_malformed(&rep);
        goto out;
    }
    cli_reply_free(&rep);

    if (cli_agent_share_add(&sr) != 0) {
        cli_out_fail(CLI_EXIT_LIMIT,
                     "this node cannot serve more files (at most %d)",
                     TS_NODE_SHARES_N);
        goto out;
    }
    cli_out_line("shared %s in %s (%llu bytes, %u chunks)", sr.name,
                 sr.group, (unsigned long long) sr.size,
                 (unsigned) sr.nchunks);
    r = 0;
out:
    close(fd);
    ts_sha1_free(whole);
    free(hashes);
    return r;
}


/* ---- list_files -------------------------------------------------------- */

static int
cli_file_cmp(const void *a, const void *b)
{
    const cli_reply_file_t  *x = a, *y = b;

    return strcmp(x->name, y->name);
}


static int
cli_cmd_list_files(cli_ctx_t *ctx, int argc, char **argv)
{
    ts_wbuf_t          req;
    cli_reply_t        rep;
    cli_reply_file_t  *rows = NULL;
    uint8_t            tok[TS_TOKEN_B];
    char               qn[CLI_OUT_QUOTE_B(TS_NAME_MAX_B)];
    uint32_t           n, i, dropped;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    ts_put_str(&req, argv[1]);
    i = (uint32_t) cli_request(ctx, TS_MSG_LIST_FILES, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (i != 0) {
        return -1;
    }
    /* names from the network: only valid file names are shown (nothing
     * could be downloaded under another one anyway) */
    if (cli_reply_list_files(&rep.body, &rows, &n, &dropped) != 0) {
        return cli_bad_body(&rep);
    }
    cli_reply_free(&rep);
    for (i = 0; i < dropped; i++) {
        ts_warn("list_files %s: the tracker listed an invalid file name; "
                "not shown", argv[1]);
    }
    if (n > 1) {
        qsort(rows, n, sizeof(*rows), cli_file_cmp);
    }
    cli_out_json_list();
    for (i = 0; i < n; i++) {
        cli_out_json_row(json_pack("{s:o, s:I, s:i}",
                                   "name", cli_out_json_text(rows[i].name),
                                   "size", (json_int_t) rows[i].size,
                                   "sources", (int) rows[i].sources));
        cli_out_quote(rows[i].name, qn, sizeof(qn));
        cli_out_line("%s size=%llu sources=%u", qn,
                     (unsigned long long) rows[i].size,
                     (unsigned) rows[i].sources);
    }
    if (n == 0) {
        cli_out_empty(ctx);
    }
    free(rows);
    return 0;
}


/* ---- download_file ----------------------------------------------------- */

/*
 * dest is a directory (the file goes in under name) or a file path whose
 * directory exists.  final gets an absolute path.  0, or -1 after the
 * error line.
 */
static int
cli_resolve_dest(const char *dest, const char *name, char *final,
                 size_t finalsz)
{
    char         dir[PATH_MAX], real[PATH_MAX], base[TS_NAME_MAX_B + 1];
    const char  *slash;
    struct stat  sb;
    size_t       dl;

    if (dest[0] == '\0') {
        return cli_out_fail(CLI_EXIT_USAGE, "empty destination");
    }
    if (stat(dest, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        if (realpath(dest, real) == NULL) {
            return cli_out_error("cannot use '%s': %s", dest, strerror(errno));
        }
        snprintf(base, sizeof(base), "%s", name);
    } else {
        dl = strlen(dest);
        if (dest[dl - 1] == '/') {
            return cli_out_fail(CLI_EXIT_NOT_FOUND,
                                "no such directory '%s'", dest);
        }
        slash = strrchr(dest, '/');
        if (slash == NULL) {
            snprintf(dir, sizeof(dir), ".");
        } else if (slash == dest) {
            snprintf(dir, sizeof(dir), "/");
        } else if ((size_t) (slash - dest) >= sizeof(dir)) {
            return cli_out_error("destination path too long");
        } else {
            memcpy(dir, dest, (size_t) (slash - dest));
            dir[slash - dest] = '\0';
        }
        cli_last_component(dest, base, sizeof(base));
        if (!ts_valid_filename(base)) {
            return cli_out_fail(CLI_EXIT_USAGE,
                                "invalid destination '%s'", dest);
        }
        if (stat(dir, &sb) != 0) {
            return cli_out_fail(CLI_EXIT_NOT_FOUND,
                                "no such directory '%s'", dir);
        }
        if (!S_ISDIR(sb.st_mode)) {
            return cli_out_error("'%s' is not a directory", dir);
        }
        if (realpath(dir, real) == NULL) {
            return cli_out_error("cannot use '%s': %s", dir, strerror(errno));
        }
    }
    /* room for ".part" too */
    if (strlen(real) + 1 + strlen(base) + 5 >= finalsz) {
        return cli_out_error("destination path too long");
    }
    if (snprintf(final, finalsz, "%s%s%s", real,
                 strcmp(real, "/") == 0 ? "" : "/", base) >= (int) finalsz)
    {
        return cli_out_error("destination path too long");
    }
    if (lstat(final, &sb) == 0) {
        return cli_out_fail(CLI_EXIT_EXISTS, "'%s' already exists", final);
    }
    if (access(real, W_OK) != 0) {
        return cli_out_fail(CLI_EXIT_DATA, "cannot write to '%s': %s", real,
                            strerror(errno));
    }
    return 0;
}


static int
cli_cmd_download_file(cli_ctx_t *ctx, int argc, char **argv)
{
    const char    *group = argv[1], *name = argv[2], *dest = argv[3];
    ts_wbuf_t      req;
    cli_reply_t    rep;
    cli_finfo_t    fi;
    uint8_t        tok[TS_TOKEN_B];
    char           final[PATH_MAX], err[PATH_MAX + 128];
    int            r;

    if (!ts_valid_filename(name)) {
        return cli_bad_name(name);
    }
    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    ts_put_str(&req, group);
    ts_put_str(&req, name);
    r = cli_request(ctx, TS_MSG_FILE_INFO, &req, tok, &rep);
    ts_wbuf_free(&req);
    if (r != 0) {
        return -1;
    }
    if (cli_finfo_parse(&rep.body, &fi) != 0) {
        return cli_malformed(&rep);
    }
    cli_reply_free(&rep);

    if (cli_resolve_dest(dest, name, final, sizeof(final)) != 0) {
        cli_finfo_free(&fi);
        return -1;
    }
    r = cli_agent_download(group, name, final, &fi, err, sizeof(err));
    cli_finfo_free(&fi);
    if (r != 0) {
        return cli_out_error("%s", err);
    }
    cli_out_line("downloading %s from %s to %s", name, group, final);
    return 0;
}


/* ---- show_downloads, stop_share ---------------------------------------- */

static int
cli_cmd_show_downloads(cli_ctx_t *ctx, int argc, char **argv)
{
    cli_dlview_t  *rows;
    int            i, n;

    if (cli_agent_downloads(&rows, &n) != 0) {
        return cli_out_error("out of memory");
    }
    cli_out_json_list();
    for (i = 0; i < n; i++) {
        cli_out_download(&rows[i]);
    }
    free(rows);
    if (n == 0) {
        cli_out_empty(ctx);
    }
    return 0;
}


static int
cli_cmd_stop_share(cli_ctx_t *ctx, int argc, char **argv)
{
    const char   *group = argv[1], *name = argv[2];
    ts_wbuf_t     req;
    cli_reply_t   rep;
    uint8_t       tok[TS_TOKEN_B];
    int           local, r;

    local = ts_valid_filename(name) ? cli_agent_share_stop(group, name) : 1;

    if (cli_begin_authed(ctx, &req, tok) != 0) {
        ts_wbuf_free(&req);
        return -1;
    }
    ts_put_str(&req, group);
    if (local != 0) {
        /* not ours: still answer "not a member" before "not sharing" */
        r = cli_request(ctx, TS_MSG_LIST_FILES, &req, tok, &rep);
        ts_wbuf_free(&req);
        if (r != 0) {
            return -1;
        }
        cli_reply_free(&rep);
        return cli_out_fail(CLI_EXIT_NOT_FOUND, "not sharing '%s' in '%s'",
                            name, group);
    }
    ts_put_str(&req, name);
    if (cli_rpc_call(ctx->rpc, TS_MSG_STOP_SHARE, req.data,
                     (uint32_t) req.len, &rep) != 0)
    {
        ts_wbuf_free(&req);
        cli_out_fail(CLI_EXIT_NETWORK, "%s", rep.msg);
        cli_reply_free(&rep);
        return -1;
    }
    ts_wbuf_free(&req);
    /* NOTFOUND: the tracker had already dropped us; we stopped anyway */
    if (rep.status != TS_OK && rep.status != TS_ERR_NOTFOUND) {
        if (rep.status == TS_ERR_AUTH) {
            cli_session_lost(ctx->sess, tok);
        }
        cli_out_fail(cli_status_class(rep.status), "%s",
                     rep.msg[0] ? rep.msg : ts_status_name(rep.status));
        cli_reply_free(&rep);
        return -1;
    }
    cli_reply_free(&rep);
    cli_out_line("stopped sharing %s in %s", name, group);
    return 0;
}


const cli_cmd_t  cli_files_cmds[] = {
    { "upload_file", "<file_path> <group_id>", 2, 2,
      CLI_CMD_LOGIN | CLI_CMD_PATH(1), cli_cmd_upload_file,
      "share a file with a group (it stays where it is)" },
    { "list_files", "<group_id>", 1, 1, CLI_CMD_LOGIN, cli_cmd_list_files,
      "files shared in a group, with their online sources" },
    { "download_file", "<group_id> <file_name> <destination>", 3, 3,
      CLI_CMD_LOGIN | CLI_CMD_PATH(3), cli_cmd_download_file,
      "fetch a file in the background (destination: file or directory)" },
    { "show_downloads", "", 0, 0, 0, cli_cmd_show_downloads,
      "downloads of this node: progress, done, failed" },
    { "stop_share", "<group_id> <file_name>", 2, 2, CLI_CMD_LOGIN,
      cli_cmd_stop_share, "stop sharing a file from this node" },
    { NULL, NULL, 0, 0, 0, NULL, NULL }
};
