/*
 * trk_main.c -- ./tracker: the supervisor of the tracker's processes.
 *
 * Purpose: parse the command line (trk_opts.c), run `--init-pki` or
 * `--status` if asked (trk_start.c, trk_statuscmd.c), else do the
 * start-up checks (trk_start.c: database, PKI, open files, listen
 * socket, shm segment) and run the supervisor with N "trk-worker"
 * processes, when tracker_info.txt lists other trackers one "trk-sync"
 * process, and one "trk-http" (the HTTP endpoint, trk_http.h) unless it
 * is off.  Typing "quit" on stdin stops the tracker
 * (trk_console.c); end of stdin does not.
 *
 * Locking: the supervisor never takes a shm lock.  It writes worker slots
 * at spawn and, after reaping, frees the slot and reclaims the dead
 * worker's claims with lock-free CAS (ts_claim).
 *
 * Crash behaviour: workers that die are respawned by ts_sup; their tdb
 * transactions roll back and their stripe locks are repaired by the next
 * locker.  A lock that cannot be repaired (a tier-2 fault: the segment
 * flags reset_needed) makes the supervisor stop every worker, rebuild the
 * segment from tracker.tdb and start them again.  If the supervisor dies,
 * workers get SIGTERM (PDEATHSIG) and the stale shm segment is detected
 * and replaced at the next start.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ts_config.h"
#include "ts_log.h"
#include "ts_sup.h"
#include "trk_admin.h"
#include "trk_console.h"
#include "trk_http.h"
#include "trk_opts.h"
#include "trk_quota.h"
#include "trk_start.h"
#include "trk_statuscmd.h"
#include "trk_sync.h"
#include "trk_worker.h"


static trk_config_t  cfg;
static int           sync_role = -1;     /* role indexes, -1 = not run */
static int           http_role = -1;


/* ---- supervisor hooks ----------------------------------------------- */

static void
on_spawn(int slot, pid_t pid, uint32_t gen, int role, void *arg)
{
    ts_slot_sh_t *s = &cfg.shm.slots[slot];
    ts_owner_t    o = ts_owner_make(pid, gen);

    (void) arg;
    if (role != 0) {
        return;                 /* the sync process has no slot */
    }
    /* the child may have assigned itself already (it races with us) */
    if (atomic_load(&s->owner) != o) {
        ts_slot_assign(s, o, TRK_ROLE_WORKER);
    }
}


static void
on_exit_hook(int slot, pid_t pid, uint32_t gen, int role, int wstatus,
             void *arg)
{
    ts_owner_t o = ts_owner_make(pid, gen);

    (void) arg;
    (void) wstatus;
    if (role != 0) {
        if (role == sync_role) {
            atomic_store(&cfg.shm.stats->sync_pid, 0);
        } else if (role == http_role) {
            atomic_store(&cfg.shm.reqs->http_pid, 0);
        }
        return;
    }
    ts_slot_free(&cfg.shm.slots[slot], o);
    /* its connections died with it: so do their counts */
    trk_conns_reset(&cfg.shm, slot);
    if (ts_claim_reclaim(&cfg.shm.stats->hk_owner, 1, o) > 0) {
        ts_warn("worker %d died during housekeeping; claim released",
                (int) pid);
    }
}


static void
on_tick(void *arg)
{
    int i, active;

    (void) arg;
    if (atomic_load(&cfg.shm.stats->ready_logged)) {
        return;
    }
    active = 0;
    for (i = 0; i < TS_SUP_WORKERS_MAX_N; i++) {
        if (atomic_load(&cfg.shm.slots[i].state) == TS_SLOT_ACTIVE) {
            active++;
        }
    }
    if (active >= cfg.workers) {
        atomic_store(&cfg.shm.stats->ready_logged, 1);
        ts_info("tracker %d ready on %s:%u", cfg.id, cfg.ip,
                (unsigned) cfg.port);
    }
}


static int
shm_reset_needed(void *arg)
{
    return ts_shm_reset_needed(&cfg.shm.shm);
}


static int
shm_rebuild(void *arg)
{
    return trk_start_shm_rebuild(&cfg);
}


/* The supervisor: the workers, the sync process when there is any other
 * tracker, the HTTP process when its socket is bound, the console; until
 * quit or a signal.  Its exit code. */
static int
run_supervisor(int console_fd)
{
    ts_sup_role_t    roles[3];
    ts_sup_config_t  sc;
    int              n = 1;

    memset(roles, 0, sizeof(roles));
    roles[0].name = "trk-worker";
    roles[0].count = cfg.workers;
    roles[0].main = trk_worker_main;
    roles[0].arg = &cfg;
    if (cfg.trackers.n > 1) {
        sync_role = n;
        roles[n].name = "trk-sync";
        roles[n].count = 1;
        roles[n].main = trk_sync_main;
        roles[n++].arg = &cfg;
    }
    if (cfg.http_fd >= 0) {
        http_role = n;
        roles[n].name = "trk-http";
        roles[n].count = 1;
        roles[n].main = trk_http_main;
        roles[n++].arg = &cfg;
    }

    memset(&sc, 0, sizeof(sc));
    sc.name = "supervisor";
    sc.roles = roles;
    sc.nroles = n;
    sc.on_spawn = on_spawn;
    sc.on_exit = on_exit_hook;
    sc.watch_fd = console_fd;
    sc.on_watch = trk_console_on_watch;
    sc.hook_arg = &cfg;             /* the console's status reads it */
    sc.tick_ms = TS_TRK_SUP_TICK_MS;
    sc.on_tick = on_tick;
    sc.reset_needed = shm_reset_needed;
    sc.on_reset = shm_rebuild;
    return ts_sup_run(&sc);
}


static int
run_admin(const trk_opts_t *o)
{
    trk_admin_req_t a;

    memset(&a, 0, sizeof(a));
    a.info_path = o->info_path;
    a.id = cfg.id;
    a.pki_dir = cfg.pki_dir;
    a.ca_path = cfg.ca_path;
    a.name = o->admin_name;
    a.args = o->admin_args;
    a.nargs = o->admin_nargs;
    a.json = o->admin_json;
    a.limit = o->admin_limit ? o->admin_limit : TS_TRK_ADMIN_PAGE_N;
    a.cursor = o->admin_cursor ? o->admin_cursor : "";
    return trk_admin_cmd(&a);
}


int
main(int argc, char **argv)
{
    trk_opts_t  o;
    int         rc, console_fd;

    ts_log_set_role("supervisor");
    rc = trk_opts_parse(argc, argv, &cfg, &o);
    if (rc >= 0) {
        return rc;
    }
    if (o.mode == TRK_MODE_INIT_PKI) {
        return trk_start_init_pki(o.info_path, cfg.pki_dir);
    }
    if (o.mode == TRK_MODE_STATUS) {
        return trk_status_cmd(o.info_path, cfg.id, cfg.ca_path,
                              cfg.crt_path, cfg.key_path);
    }
    if (o.mode == TRK_MODE_USAGE) {
        return trk_quota_usage_cmd(o.data_dir, cfg.id, o.usage_name);
    }
    if (o.mode == TRK_MODE_BACKUP) {
        return trk_backup_cmd(o.data_dir, cfg.id, o.backup_path);
    }
    if (o.mode == TRK_MODE_RESTORE) {
        return trk_restore_cmd(o.data_dir, cfg.id, o.backup_path);
    }
    if (o.mode == TRK_MODE_MKADMIN) {
        return trk_admin_make_cert(cfg.pki_dir, o.admin_name);
    }
    if (o.mode == TRK_MODE_ADMIN) {
        return run_admin(&o);
    }
    if (o.log_file != NULL && ts_log_open_file(o.log_file) != 0) {
        fprintf(stderr, "tracker: cannot open --log-file %s: %s\n",
                o.log_file, strerror(errno));
        return 1;
    }
    console_fd = trk_console_fd();
    rc = trk_start_setup(&cfg, &o);
    if (rc != 0) {
        return rc;
    }
    rc = run_supervisor(console_fd);
    trk_start_teardown(&cfg);
    ts_info("tracker %d stopped", cfg.id);
    return rc;
}
