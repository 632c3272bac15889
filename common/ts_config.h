/*
 * ts_config.h -- every Tessera tunable, with its unit, in one place.
 *
 * Purpose: one header to read when sizing or tuning a deployment (the
 * opentracker trackerlogic.h model).  Nothing here allocates or locks.
 * Values that a command-line option can override say so; the option name
 * follows the macro.  Units are in the name: _MS milliseconds, _S seconds,
 * _B bytes, _N a count.
 */
#ifndef TS_CONFIG_H_INCLUDED
#define TS_CONFIG_H_INCLUDED

#define TS_VERSION_STRING         "0.1.0"

/* ---- wire protocol --------------------------------------------------- */
#define TS_PROTO_VERSION          2   /* 2: TLS, fingerprints, tickets */
#define TS_FRAME_HDR_B            16
#define TS_FRAME_MAX_B            (4u << 20)  /* any payload, checked before malloc */
#define TS_STR_MAX_B              4096        /* one string field */
#define TS_ID_MAX_B               64          /* user and group ids */
#define TS_NAME_MAX_B             255         /* file names */
#define TS_PASSWORD_MAX_B         1024

/* ---- files and chunks ------------------------------------------------ */
#define TS_CHUNK_B                (512u * 1024u)
#define TS_FILE_MAX_B             (64ull << 30)           /* 64 GiB */
#define TS_FILE_MAX_CHUNKS_N      (TS_FILE_MAX_B / TS_CHUNK_B)
#define TS_BLOCK_B                (128u * 1024u) /* a ranged PEER_GET asks
                                            whole blocks of this many bytes
                                            (the chunk's tail excepted);
                                            part of the peer protocol:
                                            peers must agree */

/* ---- trackers -------------------------------------------------------- */
#define TS_TRACKERS_MAX_N         16
#define TS_TRK_WORKERS_N          2        /* --workers */
#define TS_TRK_CONNS_PER_WORKER_N 4096
#define TS_TRK_IDLE_TIMEOUT_MS    120000   /* a connection with no request */
#define TS_TRK_FRAME_TIMEOUT_MS   10000    /* a frame begun must finish
                                            (--frame-timeout) */
#define TS_TRK_KDF_THREADS_N      1        /* per request worker */
#define TS_KDF_ITERATIONS_N       1300000  /* --kdf-iterations; OWASP, SHA1 */
#define TS_KDF_SALT_B             16
#define TS_KDF_HASH_B             20
#define TS_TOKEN_B                16       /* 128-bit session token */
#define TS_SESSION_TIMEOUT_MS     15000    /* --session-timeout; no heartbeat */
#define TS_TRK_SPLIT_TIMEOUT_X    4        /* while the tracker cluster is
                                            split (and one timeout after
                                            it heals) the leader expires a
                                            session only after this many
                                            session timeouts */
#define TS_SESSIONS_SHM_N         8192     /* shm session cache slots */
#define TS_REPLY_CACHE_TTL_S      600      /* idempotent replies kept */
#define TS_HOUSEKEEP_MS           1000     /* expiry sweep period */
#define TS_GROUP_MEMBERS_MAX_N    4096
#define TS_GROUP_PENDING_MAX_N    4096

/* ---- tracker: registry bounds (refused beyond them with TS_ERR_LIMIT) - */
#define TS_TRK_FILE_SOURCES_MAX_N   1024    /* sources of one file */
#define TS_TRK_GROUP_FILES_MAX_N    10000   /* files in one group: a
                                               LIST_FILES reply stays < 4 MiB */
#define TS_TRK_NODE_SHARES_MAX_N    8192    /* files one (user, node) shares */
#define TS_TRK_NODE_SESSIONS_MAX_N  64      /* sessions kept per (user, node) */

/* ---- tracker: request workers, store, shm ---------------------------- */
/* bytes queued to one connection: stop reading past SOFT, drop past MAX */
#define TS_TRK_OUT_SOFT_B      (256u * 1024u)   /* stop reading past this */
#define TS_TRK_OUT_MAX_B       (TS_FRAME_MAX_B + (1u << 20)) /* then drop */
#define TS_TRK_READ_CHUNK_B    (64u * 1024u)    /* bytes per read() */
#define TS_TRK_KDF_QUEUE_N     64       /* queued KDF jobs per worker */
#define TS_TRK_TICK_MS         100      /* deadlines, heartbeat, housekeeping */
#define TS_TRK_LISTEN_BACKLOG_N 511     /* listen() backlog, connections */
#define TS_TRK_SUP_TICK_MS     50       /* tracker supervisor loop period */
/* Most keys one maintenance transaction (expiry) deletes: each
 * transaction is one replicated op, which must fit a SYNC_OPS frame. */
#define TS_TRK_EXPIRE_CHUNK_N  2000
#define TS_TRK_SESS_STRIPES_N  64       /* session cache lock stripes;
                                           must divide TS_SESSIONS_SHM_N */
#define TS_TRK_OPLOG_SEGS_MAX_N 1024    /* op log segments kept (count) */
#define TS_TRK_REC_INC_MAX_N   256      /* increments in one merge record */
#define TS_TRK_REC_ELEM_MAX_N  (1u << 20) /* elements in one increment */

/* ---- tracker: replication (trk_sync, docs/REPLICATION.md) ------------ */
#define TS_SYNC_GOSSIP_MS       500      /* SYNC_ACK: heartbeat + sessions */
#define TS_SYNC_PEER_DEAD_MS    3000     /* no answer: peer down */
#define TS_SYNC_RPC_TIMEOUT_MS  10000    /* one SYNC_* request */
#define TS_SYNC_CONNECT_MS      1000     /* connect() to a peer tracker */
#define TS_SYNC_BACKOFF_MIN_MS  100      /* link reconnect backoff: first */
#define TS_SYNC_BACKOFF_MAX_MS  2000     /* link reconnect backoff: cap */
#define TS_SYNC_BATCH_N         512      /* ops per SYNC_OPS */
#define TS_SYNC_BATCH_B         (1u << 20) /* bytes of ops per SYNC_OPS */
#define TS_SYNC_COMPACT_MS      5000     /* op log compaction period */
#define TS_SYNC_GOSSIP_MAX_N    8192     /* session hashes per SYNC_ACK */
/* Batches per do_push() call, so that gossip (the heartbeat) is never
 * starved by a steady write load. */
#define TS_SYNC_PUSH_ROUNDS_N   8

/* ---- clients --------------------------------------------------------- */
#define TS_HEARTBEAT_MS           3000     /* client -> tracker */
#define TS_RPC_TIMEOUT_MS         5000     /* one request, then fail over */
#define TS_RPC_KDF_TIMEOUT_MS     30000    /* login/create_user run the KDF */
#define TS_RPC_CONNECT_MS         2000
#define TS_RPC_ATTEMPTS_N         6        /* over all trackers */

/* ---- client (CLI) ---------------------------------------------------- */
#define TS_CLI_ARGS_MAX_N       16       /* words in one command line */
#define TS_CLI_LINE_MAX_B       4096     /* bytes in one command line */
#define TS_CLI_TABLES_MAX_N     8        /* command tables registered */
#define TS_CLI_HISTORY_MAX_N    1000     /* line-editor history entries */
#define TS_CLI_RPC_PAUSE_FIRST_MS 100    /* pause before a retry: first */
#define TS_CLI_RPC_PAUSE_MAX_MS 1000     /* pause before a retry: cap */
#define TS_CLI_RATE_SAMPLES_N   21       /* 5 s of TS_NODE_PERSIST_MS ticks */
#define TS_CLI_AGENT_RPC_MS     3000     /* one agent request, per attempt */
#define TS_CLI_REPORT_GRACE_MS  3000     /* end of input: last HAVE_CHUNKS */

/* ---- client nodes ---------------------------------------------------- */
#define TS_NODE_UPLOADERS_N       2        /* --uploaders */
#define TS_NODE_DOWNLOADERS_N     4        /* --downloaders */
#define TS_NODE_SHARES_N          1024     /* shared files a node serves */
#define TS_NODE_DOWNLOADS_N       16       /* downloads in shm at once */
#define TS_NODE_SOURCES_N         32       /* sources per download */
#define TS_NODE_PIPELINE_N        4        /* GETs in flight per peer link */
#define TS_NODE_WORKER_INFLIGHT_N 8        /* GETs in flight per downloader */
#define TS_NODE_PEER_CONNS_N      256      /* uploader connections/worker */
#define TS_NODE_PEER_TIMEOUT_MS   10000    /* a GET with no byte back */
#define TS_NODE_CONNECT_MS        2000
#define TS_NODE_PEER_IDLE_MS      120000   /* uploader: link with no request */
#define TS_NODE_SRC_FAILS_MAX_N   3        /* bad chunks before a peer is dropped */
#define TS_NODE_MAP_REFRESH_MS    1000     /* partial sources' chunk maps */
#define TS_NODE_SRC_REFRESH_MS    2000     /* source list from the tracker */
#define TS_NODE_PERSIST_MS        250      /* done bitmap -> node.tdb */
#define TS_NODE_IDLE_POLL_MS      50       /* downloader with nothing to do */
#define TS_NODE_LISTEN_BACKLOG_N  1024  /* listen() backlog, connections */
#define TS_NODE_SEQ_TRIES_N   10000    /* seqlock reader: tries before
                                          declaring an entry unreadable */

/* ---- client nodes: downloader (dl_worker) ---------------------------- */
#define TS_DL_AVAIL_MS          100      /* rarest-first counts recomputed */
#define TS_DL_BACKOFF_MIN_MS    100      /* source retry backoff: first */
#define TS_DL_BACKOFF_MAX_MS    1000     /* source retry backoff: cap */
#define TS_DL_SPILL_FACTOR      3        /* cost ratio; see dl_pick: no spill
                                            to worse */
#define TS_DL_PAUSED_RETRY_MS   1000     /* a paused peer is asked again */
#define TS_DL_COMPLETE_REFILL_MS (4 * TS_NODE_MAP_REFRESH_MS) /* seeder map */
#define TS_DL_FINAL_BLOCK_B     (4u << 20) /* pread() block, final file pass */
#define TS_DL_DEFAULT_RATE      (100ull << 20) /* bytes/s, unmeasured peer */
#define TS_DL_FH_BATCH_N        8        /* chunks per frontier-hash turn */
#define TS_DL_PICK_WINDOW_N     64       /* in-order candidates picked among */
#define TS_DL_WB_STEP_B         (32ull << 20)  /* start writeback every ... B */
#define TS_DL_DROP_LAG_N        64       /* chunks: a worker gives back the
                                            page cache of the chunk it wrote
                                            this many chunks before (0: never) */
#define TS_DL_GET_SLOW_MS       20000    /* a chunk reply taking longer is
                                            given up if another source has
                                            the chunk (dl_slow_reply) */
#define TS_DL_SLOW_PENALTY_MS   30000    /* ... and that peer is left alone */
#define TS_DL_LINK_LINGER_MS    60000    /* a closed peer link's memory is
                                            kept this long for a reconnect */

/* ---- client nodes: uploader (up_worker) ------------------------------ */
#define TS_UP_REQ_MAX_B         1024     /* a peer request's payload;
                                            MAP/GET < 400 */
#define TS_UP_QUEUE_N           16       /* parsed requests waiting per link */
#define TS_UP_TICK_MS           100      /* timeouts and heartbeat */
#define TS_UP_DROP_LAG_N        64       /* chunks: an uploader worker gives
                                            back the page cache of a
                                            download's chunk it served this
                                            many chunks before, if not
                                            served again since (0: never) */
#define TS_UP_ACCEPT_BURST      32       /* accept() calls per wakeup (count) */
#define TS_UP_LOOKUP_N          8        /* (group, name) -> entry cache */

/* ---- security: TLS, identities, tickets, limits ---------------------- */
#define TS_TLS_HANDSHAKE_MS       5000     /* a TLS handshake must finish
                                            (tracker --handshake-ms) */
#define TS_TLS_CERT_DAYS_N        3650     /* validity of generated certs */
#define TS_TLS_STAGE_B            (256u * 1024u) /* ts_conn_sendfile over
                                            TLS: pread() staging buffer,
                                            encrypted and sent as one
                                            batch of records */
#define TS_TLS_BATCH_REC_N        32       /* records in one such batch
                                            at most (16 KiB each) */
#define TS_FP_HEX_B               65       /* fingerprint as hex + NUL */
#define TS_TICKET_TTL_MS          120000   /* --ticket-ttl (tracker): a
                                            download ticket's lifetime */
#define TS_TICKET_MAX_B           3072     /* a ticket on the wire */
#define TS_TICKET_CERT_MAX_B      2048     /* issuer cert inside a ticket */
#define TS_TICKET_CACHE_N         8        /* verified issuer certs cached */
#define TS_TICKET_RENEW_MS        (TS_TICKET_TTL_MS / 2) /* renew when less
                                            than this is left */
#define TS_LOGIN_WINDOW_MS        60000    /* failed-login counting window */
#define TS_LOGIN_FAILS_USER_N     5        /* per user from one address,
                                            then throttled
                                            (--login-fails-user) */
#define TS_LOGIN_FAILS_ADDR_N     20       /* per address, then throttled
                                            (--login-fails-addr) */
#define TS_LOGIN_DELAY_MIN_MS     1000     /* first refusal period; doubles
                                            per further failure */
#define TS_LOGIN_DELAY_MAX_MS     30000    /* throttled: refused this long
                                            at most (doubles per failure) */
#define TS_THROTTLE_SLOTS_N       4096     /* shm table of login counters */
#define TS_TRK_CONNS_MAX_N        8192     /* connections, whole tracker
                                            (--max-conns) */
#define TS_TRK_CONNS_ADDR_N       512      /* connections from one address
                                            (--max-conns-per-addr) */
#define TS_TRK_UNAUTH_MAX_N       1024     /* not yet logged in, whole
                                            tracker (--max-unauth) */
#define TS_NODE_CONNS_ADDR_N      64       /* uploader links from one address */
#define TS_NODE_UNAUTH_MAX_N      128      /* uploader links with no ticket yet */
#define TS_NODE_UNAUTH_MS         10000    /* a link must show a ticket by then */
#define TS_ADDR_SLOTS_N           1024     /* per-address counter buckets */
#define TS_UP_AUTH_N              16       /* tickets remembered per link */
#define TS_UP_BAD_AUTH_N          8        /* refused tickets a link may show;
                                            one more closes it */
#define TS_UP_OUT_MAX_B           (TS_CHUNK_B + 4096u) /* send queue per link */

/* ---- security: tracker hardening (review of the tracker) ------------- */
#define TS_TRK_LOGIN_MS           30000    /* a connection must log in (or
                                            show a valid token or a tracker
                                            certificate) by then, else it
                                            is closed (--login-timeout) */
#define TS_TRK_UNAUTH_FRAME_MAX_B 8192     /* largest request frame before
                                            login; LOGIN and CREATE_USER
                                            need about 1.2 KiB */
#define TS_TRK_REQS_PER_TURN_N    16       /* requests one connection may
                                            run per event-loop turn */
#define TS_TRK_WORKER_OUT_MAX_B   (256u << 20) /* replies queued in one
                                            worker, all connections; above
                                            it connections with queued
                                            output are not read
                                            (--worker-out-max) */
#define TS_TRK_OUT_DRAIN_MS       TS_TRK_IDLE_TIMEOUT_MS /* output queued
                                            without a break this long:
                                            the link is closed */
#define TS_TRK_FD_RESERVE_N       32       /* descriptors a worker keeps
                                            for itself (tdb, epoll, KDF,
                                            logs); the rest bounds its
                                            connections */
#define TS_TRK_ACCEPT_PAUSE_MS    500      /* accept() hit EMFILE/ENFILE:
                                            the listening socket is not
                                            polled for this long */
#define TS_TRK_KDF_ADDR_N         4        /* KDF jobs (login, create_user)
                                            in progress from one address
                                            (--kdf-per-addr; 0 = no cap) */
#define TS_TRK_CREATE_ADDR_N      30       /* create_users from one address
                                            per TS_LOGIN_WINDOW_MS, then
                                            refused for a doubling period
                                            (--create-user-per-addr; 0 =
                                            no cap) */
#define TS_TRK_SESSIONS_PER_USER_N 64      /* sessions of one account; a
                                            login past it ends the oldest */
#define TS_THR_V6_PREFIX_BITS     64       /* IPv6 peers are counted per
                                            this prefix (throttles, caps) */

/* ---- supervisor ------------------------------------------------------ */
#define TS_SUP_WORKERS_MAX_N      64
#define TS_SUP_RESPAWN_MIN_MS     0        /* first respawn: at once */
#define TS_SUP_BACKOFF_BASE_MS    100      /* short-lived worker: doubles */
#define TS_SUP_BACKOFF_MAX_MS     5000
#define TS_SUP_SHORT_LIFE_MS      1000     /* died sooner = counts for backoff */
#define TS_SUP_HEALTHY_MS         10000    /* lived longer = backoff reset */
#define TS_SUP_STARTUP_FAILS_N    5        /* deaths before READY = crash loop */
#define TS_SUP_STOP_DEADLINE_MS   5000     /* SIGTERM ... SIGKILL */

/* ---- shared memory --------------------------------------------------- */
#define TS_SHM_LAYOUT_VERSION     1
#define TS_SHM_TABLES_MAX_N       16

/* ---- network layer (net/) ------------------------------------------ */
#define TS_NET_COALESCE_B         (64u * 1024u) /* frames up to this size
                                            are sent with one write */
#define TS_NET_SENDFILE_MAX_B     (1u << 30) /* bytes one ts_conn_sendfile
                                            moves at most (fairness) */
#define TS_TLS_READ_BUF_B         (64u * 1024u) /* peer links: TLS
                                            read-ahead buffer (bigger
                                            ones fall out of cache before
                                            SSL_read copies out of them) */
#define TS_TLS_CERT_BACKDATE_S    3600     /* generated certs are valid
                                            from this long before now
                                            (clock skew between hosts) */
#define TS_EV_EVENTS_N            64       /* epoll events per wait */
#define TS_EV_TIMERS_INIT_N       16       /* timer heap's first size */
#define TS_EV_READ_CHUNK_B        (64u * 1024u) /* bytes per read() of a
                                            framed connection */
#define TS_EV_ROUNDS_N            8        /* reads per connection per
                                            turn before the others */

/* ---- tracker store and op log ----------------------------------------- */
#define TS_TRK_EXPIRE_PASS_MAX_N  100000   /* cached replies one expiry
                                            pass collects (the rest wait
                                            for the next pass) */
#define TS_TRK_COMPACT_PASS_MAX_N 200000   /* ops one compaction deletes */
#define TS_TRK_OP_KEY_MAX_B       4096     /* key of one op entry */
#define TS_TRK_HEARTBEAT_MIN_MS   100      /* least heartbeat period a LOGIN
                                            reply asks for (else a third
                                            of the session timeout) */

/* ---- client (client/) ---------------------------------------------- */
#define TS_CLI_WAIT_POLL_MS     50       /* end of input: download check */
#define TS_CLI_RATE_MIN_MS      200      /* shortest window for a rate */
#define TS_CLI_IDLE_POLL_MS     1000     /* --keep-running: signal check */
#define TS_CLI_UTF8_WAIT_MS     100      /* rest of a typed UTF-8 char */
#define TS_CLI_EXIT_WAIT_MS     500      /* exit: heartbeat thread join */
#define TS_CLI_OPT_MS_MIN       100      /* --ticket-wait/--slow-chunk min */
#define TS_CLI_OPT_MS_MAX       3600000  /* --ticket-wait/--slow-chunk max */
#define TS_CLI_HB_MIN_MS        100      /* tracker's heartbeat period kept */
#define TS_CLI_HB_MAX_MS        600000   /*   only within these bounds */
#define TS_CLI_QUICK_LOGOUT_MS  1000     /* logout after a signal: one try */
#define TS_CLI_AGENT_TRIES_N    2        /* agent request: trackers tried */

/* ---- tracker worker, sync process and shm tables ---------------------- */
#define TS_TRK_THR_PROBE_N        32       /* throttle entries probed per
                                            lookup (one probe window) */
#define TS_TRK_ACCEPT_BATCH_N     64       /* accept4() calls per wakeup of
                                            the listening socket */
#define TS_TRK_LOG_EVERY_MS       1000     /* refused connections and
                                            accept failures: one summary
                                            log line per this period */
#define TS_TRK_CONSOLE_LINE_B     256      /* longest console line (stdin);
                                            a longer one is dropped */
#define TS_TRK_STATUS_CONNECT_MS  2000     /* tracker --status: connect */
#define TS_SYNC_MAIN_TICK_MS      50       /* sync process main thread:
                                            leader election period */
#define TS_SYNC_NAP_SLICE_MS      20       /* a backoff nap checks for stop
                                            this often */
#define TS_SYNC_SNAP_ROUNDS_N     3        /* snapshots sent in one push
                                            round before gossip comes
                                            first again */
#define TS_SYNC_SESS_TOUCHED_N    1024     /* session keys of one merged
                                            batch dropped from the cache
                                            at once (more: housekeeper) */
#define TS_SYNC_SNAP_KEY_MAX_B    4096     /* one key of a SYNC_SNAPSHOT */
#define TS_SYNC_FRAME_SLACK_B     (64 * 1024) /* a SYNC_OPS batch stays this
                                            far under TS_FRAME_MAX_B (room
                                            for the request's fields) */

/* ---- client node workers (workers/) ---------------------------------- */
#define TS_DL_LINKS_N             (TS_NODE_DOWNLOADS_N * TS_NODE_SOURCES_N)
                                           /* peer links one downloader
                                            keeps (one per identity) */
#define TS_DL_LINK_QUEUE_N        (TS_NODE_PIPELINE_N + TS_NODE_DOWNLOADS_N)
                                           /* requests pipelined on a link:
                                            MAP/GETs plus PEER_AUTHs */
#define TS_DL_SNAPSHOT_TRIES_N    1000     /* seqlock reads of a download's
                                            text fields before giving up
                                            until the next pass */
#define TS_UP_MSG_B               128      /* a PEER_AUTH refusal's reason,
                                            bytes */
#define TS_UP_HANDLE_ROUNDS_N     8        /* answer/read rounds per link
                                            per wakeup */
#define TS_NODE_STOP_GRACE_MS     1000     /* node_stop: waited past the
                                            supervisor's own stop deadline
                                            before SIGKILL */
#define TS_NODE_STOP_POLL_MS      10       /* node_stop: waitpid() poll step */

/* ---- supervisor and shm segment (lifecycle, reset) ------------------ */
#define TS_SUP_RESET_POLL_MS      100      /* how often the supervisor reads
                                            the segment's reset_needed */
#define TS_SUP_POLL_ERROR_NAP_MS  10       /* after a failed poll(): no spin */
#define TS_SUP_RESETS_MAX_N       3        /* rebuilds in a row, each asked
                                            for again within ... */
#define TS_SUP_RESET_WINDOW_MS    10000    /* ... this long after the last:
                                            then the node stops (exit 1) */
#define TS_SHM_CREATE_WAIT_MS     500      /* a concurrent creator may take
                                            this long to publish its header */
#define TS_SHM_CREATE_NAP_MS      10       /* ... re-read it this often */
#define TS_SHM_CREATE_TRIES_N     4        /* stale segments replaced before
                                            giving up */

/* ---- tracker group commit ------------------------------------------- */
#define TS_TRK_BATCH_MAX_N        256      /* write requests sharing one tdb
                                            transaction and fsync at most */

/* ---- login throttle: per (user, address), known nodes ------------- */
#define TS_LOGIN_USER_ADDRS_N     8        /* addresses (IPv6: /64s) that
                                            reached TS_LOGIN_FAILS_USER_N
                                            for one user in a window;
                                            then logins for it from unknown
                                            nodes are refused for a
                                            doubling period (0 = none);
                                            one address counts once */
#define TS_LOGIN_NET_DELAY_MIN_MS 5000     /* ... refused this long first,
                                            doubling per further address
                                            up to TS_LOGIN_DELAY_MAX_MS */
#define TS_LOGIN_FAILS_NODE_N     20       /* failed logins of one known
                                            node identity (a certificate
                                            that logged in to the user
                                            before) for that user, then
                                            throttled; it skips the other
                                            login counters */
#define TS_LOGIN_KNOWN_NODES_N    16       /* node identities remembered
                                            per user (least recently used
                                            out), local tdb key */
#define TS_THR_NODE_SLOTS_N       512      /* throttle table slots kept
                                            for known-node counters (of
                                            TS_THROTTLE_SLOTS_N) */

/* ---- storage quotas (tracker) ---- */
/* What one account may keep in tracker.tdb (tracker --quota NAME=VALUE;
 * docs/SECURITY.md gives the reasoning).  Sized for a heavy real user:
 * tens of thousands of files, several TiB, a few machines. */
#define TS_QUOTA_USER_FILES_N     20000    /* files a user uploaded first */
#define TS_QUOTA_USER_HASH_B      (256ull << 20) /* their chunk hashes,
                                            bytes: 20 B per 512 KiB chunk,
                                            so 256 MiB = 6.4 TiB shared */
#define TS_QUOTA_USER_GROUPS_N    256      /* groups a user owns */
#define TS_QUOTA_USER_NODES_N     32       /* node addresses a user shares
                                            from (m/ records) */
#define TS_QUOTA_USER_SHARES_N    65536    /* (node, file) sources of a user */
#define TS_QUOTA_GROUP_FILES_N    TS_TRK_GROUP_FILES_MAX_N /* per group */
#define TS_QUOTA_GROUP_HASH_B     (1ull << 30) /* chunk hashes of a group's
                                            files, bytes (25 TiB shared) */
#define TS_QUOTA_TRACKER_FILES_N  0        /* files on a tracker (0 = none) */
#define TS_QUOTA_TRACKER_HASH_B   (16ull << 30) /* chunk hashes on a
                                            tracker, bytes: bounds the disk
                                            against many accounts */
#define TS_QUOTA_FILE_MAX_B       TS_FILE_MAX_B /* largest file accepted */

/* ---- source lists (FILE_INFO sample, dead sources) ------------------ */
#define TS_TRK_FINFO_SOURCES_N    32       /* sources one FILE_INFO reply
                                            lists at most (a shuffled
                                            sample of the live ones) */
#define TS_TRK_FINFO_USER_SRC_N   4        /* entries of one user in one
                                            FILE_INFO reply at most, all
                                            its sessions together */
#define TS_TRK_FINFO_EXCLUDE_N    64       /* addresses a FILE_INFO request
                                            may ask to leave out (more:
                                            TS_ERR_BADREQ) */
#define TS_TRK_PROVEN_N           32       /* sources remembered per file as
                                            having served someone else */
#define TS_TRK_PROVEN_TTL_MS      3600000  /* such a report counts this long
                                            (wall clock) */
#define TS_CLI_SRC_DEAD_ERRORS_N  3        /* consecutive connect, handshake
                                            or auth failures: the source is
                                            dead for this download */
#define TS_CLI_SRC_DEAD_MIN_MS    5000     /* a dead source is left out (and
                                            excluded from FILE_INFO) this
                                            long first, doubling ... */
#define TS_CLI_SRC_DEAD_MAX_MS    120000   /* ... up to this */
#define TS_CLI_SRC_DEAD_N         64       /* dead sources remembered per
                                            download (oldest forgotten) */
#define TS_CLI_SRC_REASK_MS       500      /* FILE_INFO again this soon when
                                            the download waits or a source
                                            just died, or is young */
#define TS_CLI_SRC_YOUNG_MS       5000     /* a download is young this long
                                            after it started, ms: the
                                            peers that started with it
                                            become sources then */

/* ---- tracker admission: input budget and connection caps ------------ */
#define TS_TRK_IN_FREE_B          (16u * 1024u) /* input a connection may
                                            buffer without a reservation
                                            (frames up to this size; also
                                            the most one read takes then) */
#define TS_TRK_WORKER_IN_MAX_B    (64u << 20) /* bytes of unfinished frames
                                            over TS_TRK_IN_FREE_B reserved
                                            in one worker, all connections;
                                            a frame that does not fit is not
                                            read until room frees or its
                                            frame timeout closes it
                                            (--worker-in-max) */
#define TS_TRK_CONN_IN_MAX_B      (TS_FRAME_MAX_B + TS_FRAME_HDR_B) /* one
                                            connection's unfinished frame;
                                            a bigger one closes it
                                            (--conn-in-max) */
#define TS_TRK_CONNS_USER_N       16       /* connections of one user (its
                                            tokens or its login seen on
                                            them), whole tracker; one more
                                            is closed (--max-conns-per-user;
                                            0 = no cap) */
#define TS_TRK_UNAUTH_ADDR_N      128      /* not logged in, from one
                                            address (--max-unauth-per-addr);
                                            when a cap on connections not
                                            logged in is reached the oldest
                                            such connection goes instead */
#define TS_TRK_USER_SLOTS_N       4096     /* per-user counter buckets */
#define TS_TRK_IN_STALL_MS        2000     /* a frame holding input budget
                                            while others wait, with no
                                            byte for this long: closed */
#define TS_TRK_EVICT_GRACE_MS     1000     /* a link in its TLS handshake
                                            is closed to make room only if
                                            it is older, or nothing else
                                            can go */

/* ---- tracker: database scale (indexes, tdb) --------------------------- */
#define TS_TRK_IDX_Q_UNIT_MS      1000     /* expiry queue bucket, ms of
                                            wall time */
#define TS_TRK_IDX_DUE_MAX_N      20000    /* queue entries one
                                            housekeeping pass handles */
#define TS_TRK_TDB_HASH_N         131071   /* --tdb-hash-size: hash chains
                                            of a new tracker.tdb (prime;
                                            tests/tools/tdb_bench: at 10^5
                                            and 10^6 records faster
                                            commits and fetches than 4099,
                                            and than 2^20, whose larger
                                            hash table makes every
                                            commit dearer) */

/* ---- client: steering downloads (cancel, pause, timeout) ------------ */
#define TS_CLI_SOURCE_TIMEOUT_S   180      /* --source-timeout: a running
                                            download no source served a
                                            chunk for this many seconds
                                            fails (CLI_EXIT_TIMEOUT) */
#define TS_CLI_SOURCE_TIMEOUT_MIN_S 1      /* --source-timeout bounds, s */
#define TS_CLI_SOURCE_TIMEOUT_MAX_S 86400
/* ---- tracker: tombstone collection ----------------------------------- */
#define TS_TRK_GC_MS              5000     /* --gc-ms: how often trk-sync
                                            moves tombstone collection on
                                            (closes a round, checks the
                                            acknowledged VVs), ms; 0 = never
                                            collect */
#define TS_TRK_GC_CHUNK_N         2000     /* keys one collection
                                            transaction rewrites */
#define TS_TRK_GC_STEP_N          2000     /* keys one step collects before
                                            trk-sync's main loop (every
                                            50 ms) runs again: the sync
                                            links wait for its lock that
                                            long at most */
#define TS_TRK_GC_SLOTS_N         64       /* index records per round (the
                                            entries of a round spread over
                                            them, so a note rewrites a
                                            short list) */
/* ---- operator commands ---- */
#define TS_TRK_ADMIN_PAGE_MAX_N    1000     /* entries in one ADMIN_LIST
                                               reply (each <= ~500 bytes:
                                               far under TS_FRAME_MAX_B) */
#define TS_TRK_ADMIN_PAGE_N        100      /* `tracker --admin` default
                                               --limit */
#define TS_TRK_ADMIN_CURSOR_MAX_B  400      /* longest ADMIN_LIST cursor
                                               (a key's name part) */
#define TS_TRK_ADMIN_CONNECT_MS    5000     /* `tracker --admin` connect */
/* ---- tracker: write path and idle cost ---- */
#define TS_TRK_IDX_UG_INLINE_N    64       /* groups of one user kept in
                                            one index record; above, the
                                            list is split in buckets */
#define TS_TRK_IDX_UG_BUCKETS_N   64       /* buckets of a split list of a
                                            user's groups (at most 256) */
#define TS_TRK_HK_WALK_DIV        4        /* an idle tracker walks its
                                            session cache once per session
                                            timeout / this (at least every
                                            TS_HOUSEKEEP_MS); any change of
                                            the data walks at the next
                                            pass */

/* ---- node bandwidth limits ------------------------------------------- */
#define TS_RATE_BURST_B           (512u * 1024u) /* default bucket depth,
                                            bytes: one chunk at least */
#define TS_RATE_BURST_MS          250      /* ... or this many ms of the
                                            rate, whichever is more (a
                                            worker delayed by less loses
                                            no tokens) */
#define TS_RATE_SLICE_B           (64u * 1024u) /* most bytes one send or
                                            read asks the bucket for */
#define TS_RATE_SLICE_MIN_B       (4u * 1024u) /* ... and the least it takes
                                            (a part of a slice), so a big
                                            request is never starved by
                                            small ones */
#define TS_RATE_WAIT_MAX_MS       200      /* a link waiting for tokens
                                            looks again at least this
                                            often (a raised cap takes
                                            effect within it) */
#define TS_RATE_MIN_BPS           1024u    /* smallest cap, bytes/s (0 =
                                            unlimited) */
#define TS_RATE_MAX_BPS           (1ull << 40) /* largest cap, bytes/s */
#define TS_RATE_SAMPLE_MS         500      /* the rate command measures
                                            the current rates over this */
/* ---- client: the node's control socket (client/cli_ctl*.c) ---------- */
#define TS_CLI_CTL_REQ_MAX_B      65536    /* a request frame's body, bytes;
                                            longer: refused, link closed */
#define TS_CLI_CTL_REPLY_MAX_B    (16 * 1024 * 1024) /* a reply or event
                                            frame's body, bytes */
#define TS_CLI_CTL_FRAME_MS       5000     /* a frame begun must be read
                                            whole within this, ms */
#define TS_CLI_CTL_ARGS_N         16       /* arguments in one request */
#define TS_CLI_CTL_ARG_MAX_B      4096     /* bytes of one argument */
#define TS_CLI_CTL_CMD_MAX_B      32       /* bytes of a command name */
#define TS_CLI_CTL_CONN_N         16       /* control connections at once;
                                            one more is told so and closed */
#define TS_CLI_CTL_FIRST_MS       5000     /* a new connection must send
                                            its first request within this */
#define TS_CLI_CTL_WRITE_MS       5000     /* a reply must be taken within
                                            this, else the link is closed */
#define TS_CLI_CTL_EVENT_MS       200      /* a pushed event likewise: the
                                            node's threads never wait long
                                            for a slow attached CLI */
#define TS_CLI_CTL_RETRY_MS       50       /* a CLI retries connecting to
                                            the socket this often, ms */
#define TS_CLI_CTL_CMD_WAIT_MS    (10 * 60 * 1000) /* a CLI waits this long
                                            for a command's reply, ms
                                            ("wait" has no limit) */
#define TS_CLI_ATTACH_WAIT_MS     15000    /* a CLI waits this long for a
                                            starting node's socket, ms */
#define TS_CLI_AGENT_BACK_MS      15000    /* after the link broke, a CLI
                                            waits this long for a restarted
                                            agent before it gives up, ms */
#define TS_CLI_AGENT_RETRY_N      3        /* a request that may be sent
                                            twice (wait) is sent again on
                                            a restarted agent this often */
/* ---- tracker: sync catch-up and snapshots ---- */
#define TS_SYNC_SNAP_BATCH_N      4096     /* records per SYNC_SNAPSHOT
                                            batch (each is one receiving
                                            transaction, well inside
                                            TS_SYNC_RPC_TIMEOUT_MS) */
/* ---- tracker: operator actions (disable-user, remove-file) ---- */
#define TS_TRK_ADMIN_USER_SESS_N  512      /* sessions of one user that a
                                            disable ends in one
                                            transaction (op); any more
                                            are refused at once and
                                            left to session expiry */

/* ---- tracker: the HTTP observability endpoint ---- */
#define TS_HTTP_PORT_OFFSET       1000     /* default HTTP port = the
                                            tracker's port + this (off,
                                            with a warning, when that is
                                            over 65535 or in use) */
#define TS_HTTP_KEY_B             32       /* random bytes of the API key
                                            (written as 64 hex digits) */
#define TS_HTTP_CONNS_MAX_N       64       /* HTTP connections at once;
                                            more are closed at accept */
#define TS_HTTP_CONNS_PER_IP_N    16       /* ... from one address */
#define TS_HTTP_IDLE_TIMEOUT_S    10       /* seconds without traffic
                                            before a connection closes */
#define TS_HTTP_REQUEST_MS        5000     /* a request head must arrive
                                            whole within this, ms (from
                                            the connection's start or the
                                            previous response) */
#define TS_HTTP_LIFETIME_MS       60000    /* no connection lives longer,
                                            ms (keep-alive reconnects) */
#define TS_HTTP_HEAD_MAX_B        16384    /* memory of one connection:
                                            request line + headers, bytes
                                            (more: 431 or 414, closed) */
#define TS_HTTP_BODY_MAX_B        (4u * 1024u * 1024u) /* largest reply
                                            we build, bytes */
#define TS_HTTP_TICK_MS           200      /* the server's loop wakes at
                                            least this often (deadlines,
                                            stop flag), ms */
#define TS_HTTP_BACKLOG_N         64       /* listen backlog */
#define TS_HTTP_PEER_POLL_MS      2000     /* the HTTP process asks each
                                            other tracker's STATUS this
                                            often, ms */
#define TS_HTTP_PEER_CONNECT_MS   1000     /* ... connect() deadline, ms */
#define TS_HTTP_PEER_RPC_MS       2000     /* ... TLS handshake and the
                                            STATUS exchange, each, ms */
#define TS_HTTP_PEER_REPLY_MAX_B  65536    /* ... largest reply, bytes */

/* ---- node HTTP endpoint ---- */
#define TS_NODE_PEER_STATS_N      256      /* peers whose bytes the node
                                            counts, per direction summed
                                            (2 entries are "other") */
#define TS_NODE_HTTP_POST_MAX_B   4096     /* largest POST body of the
                                            node's API, bytes (more: 413) */
#define TS_NODE_HTTP_PEERS_TOP_N  20       /* peers with their own label
                                            in /metrics, per direction;
                                            the rest are peer="other" */
#define TS_NODE_HTTP_CTL_MS       10000    /* an action's wait for the
                                            agent's reply on the control
                                            socket, ms */
#define TS_NODE_HTTP_SAMPLE_MS    1000     /* the rates the API shows are
                                            measured over this, ms */

/* ---- web dashboard (http/ts_www.c) ---- */
#define TS_WWW_PATH_MAX_B         256      /* longest path of a
                                            dashboard file, bytes
                                            (longer: 414) */
#define TS_WWW_CACHE              "no-cache" /* Cache-Control of the
                                            dashboard's files: the
                                            browser revalidates, so an
                                            upgraded binary's page is
                                            never mixed with old code */
#define TS_WWW_CSP                "default-src 'none'; script-src 'self'; " \
                                  "style-src 'self'; img-src 'self'; "       \
                                  "connect-src 'self'; base-uri 'none'; "   \
                                  "form-action 'none'; "                    \
                                  "frame-ancestors 'none'"
                                  /* the page's Content-Security-Policy:
                                     only its own files, no inline code */
/* ---- client nodes: piece selection and peer links ---- */
#define TS_DL_MAP_REFRESH_MS      250      /* a partial source's chunk map
                                            is asked again after this, ms
                                            (what other leechers hold) */
#define TS_DL_MAP_PUSHED_MS       3000     /* ... after this instead when it
                                            pushes its new chunks
                                            (PEER_HAVE): the poll is only
                                            the fallback, ms */
#define TS_PEER_HAVE_MAX_N        64       /* chunk indices in one PEER_HAVE */
#define TS_NODE_HAVE_RING_N       256      /* chunks a download verified
                                            lately, kept in shm for the
                                            uploaders to push (a ring) */
#define TS_UP_HAVE_SUBS_N         4        /* downloads one uploader link
                                            pushes new chunks of */
#define TS_UP_HAVE_CHECK_MS       10       /* an uploader with such links
                                            looks for new chunks this
                                            often, ms */
#define TS_UP_HAVE_STALL_MS       1000     /* a ring slot reserved but not
                                            written (its writer killed) is
                                            skipped after this, ms */
#define TS_DL_PICK_RELAX_N        0        /* GETs of a download in flight,
                                            node-wide, at or below which a
                                            complete source may be asked a
                                            chunk a partial peer holds */
#define TS_DL_SEED_REFILL_MS      1000     /* a complete source's map is
                                            set whole again after this, ms
                                            (chunks it refused return) */
#define TS_DL_UNOWNED_IDLE_MS     1000     /* an idle link to a peer another
                                            downloader worker now serves is
                                            closed after this, ms */
#define TS_DL_WIN_MIN_N           4        /* GETs in flight per link: least */
#define TS_DL_WIN_MAX_N           12       /* ... most (within the uploader's
                                            TS_UP_QUEUE_N with room for a
                                            MAP and the AUTHs) */
#define TS_DL_WIN_SPARE_N         2        /* ... beyond rate x RTT / chunk */
#define TS_DL_WORKER_INFLIGHT_MAX_N 32     /* GETs in flight per downloader
                                            worker, all links */
#define TS_DL_NOBYTE_RTT_N        16       /* no byte back for this many
                                            RTTs plus a chunk's time: the
                                            link is dead */
#define TS_DL_NOBYTE_MIN_MS       5000     /* ... but never sooner, ms */
#define TS_DL_SLOW_X              8        /* a GET reply taking this many
                                            times its expected time (RTT +
                                            chunk / link rate) is slow */
#define TS_DL_SLOW_MIN_MS         5000     /* ... but never sooner, ms */
#define TS_DL_ENDGAME_N           16       /* missing chunks, all claimed, at
                                            or below which a second peer is
                                            asked for them too */
#define TS_DL_BLOCK_TAIL_N        16       /* chunks left to ask for (missing,
                                            not claimed) at or below which
                                            a chunk is fetched as blocks
                                            (TS_BLOCK_B) from several peers
                                            at once; 0 = never */
#define TS_DL_BLOCK_SCAN_N        1024     /* ... counted (a scan of the
                                            claims) only while at most
                                            this many chunks are missing */
#define TS_DL_ASM_N               8        /* chunks one downloader worker
                                            assembles from blocks at once
                                            (a TS_CHUNK_B buffer each) */
#define TS_DL_BLOCK_COPY_MS       200      /* a block asked this long ago, ms,
                                            whose link has sent nothing of
                                            it, may be asked of another
                                            peer too (endgame per block) */
#define TS_UP_SENT_N              16384    /* slots of a seeder's sent-lately
                                            cache (8 bytes each, one per
                                            node) */
#define TS_UP_SEED_HOLD_MS        5000     /* a chunk of a complete share
                                            sent to one peer is refused
                                            ("already in the swarm") to
                                            another for this long, ms; 0 =
                                            never refused */
#define TS_UP_SEED_BUSY_MS        1500     /* ... only while another peer
                                            asked for the file within this,
                                            ms */
#define TS_UP_SEED_ASKERS_N       64       /* peers remembered for that */
#define TS_UP_FAIR_LEAD_N         2        /* chunks of a complete share one
                                            peer may get beyond the least
                                            served peer asking for it too
                                            (up_seed.c); 0 = no fair share */
#define TS_UP_FAIR_ACTIVE_MS      300      /* ... a peer counts as asking
                                            while a GET of it waited or
                                            started within this, ms */
#define TS_UP_FAIR_CATCHUP_N      16       /* ... a peer that starts asking
                                            may catch up this many chunks
                                            on the least served */
#define TS_UP_FAIR_RETRY_MS       5        /* a link held back tries again
                                            after this, ms */
#define TS_UP_FAIR_HOLD_MAX_MS    100      /* ... and is never held longer
                                            in a row, ms (a peer that
                                            cannot take its share does not
                                            idle the uplink) */
#define TS_UP_FAIR_LOWAT_B        (512u << 10) /* unsent bytes a link of a
                                            shared seeder keeps in the
                                            kernel (TCP_NOTSENT_LOWAT), so
                                            the share is decided here */
/* ---- data plane speed ---- */
#define TS_DL_WHOLE_SHA1_CHECK    0        /* 1 = every download also hashes
                                            the whole file (a second SHA1
                                            of every byte) and checks the
                                            tracker's file SHA1; 0 = only a
                                            resumed download does, a fresh
                                            one is known good when every
                                            chunk verified against the
                                            tracker's chunk list */

#endif /* TS_CONFIG_H_INCLUDED */
