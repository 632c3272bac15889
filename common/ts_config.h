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
#define TS_PROTO_VERSION          1
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

/* ---- trackers -------------------------------------------------------- */
#define TS_TRACKERS_MAX_N         16
#define TS_TRK_WORKERS_N          2        /* --workers */
#define TS_TRK_CONNS_PER_WORKER_N 4096
#define TS_TRK_IDLE_TIMEOUT_MS    120000   /* a connection with no request */
#define TS_TRK_FRAME_TIMEOUT_MS   10000    /* a frame begun must finish */
#define TS_TRK_KDF_THREADS_N      1        /* per request worker */
#define TS_KDF_ITERATIONS_N       1300000  /* --kdf-iterations; OWASP, SHA1 */
#define TS_KDF_SALT_B             16
#define TS_KDF_HASH_B             20
#define TS_TOKEN_B                16       /* 128-bit session token */
#define TS_SESSION_TIMEOUT_MS     15000    /* --session-timeout; no heartbeat */
#define TS_SESSIONS_SHM_N         8192     /* shm session cache slots */
#define TS_REPLY_CACHE_TTL_S      600      /* idempotent replies kept */
#define TS_HOUSEKEEP_MS           1000     /* expiry sweep period */
#define TS_GROUP_MEMBERS_MAX_N    4096
#define TS_GROUP_PENDING_MAX_N    4096

/* ---- clients --------------------------------------------------------- */
#define TS_HEARTBEAT_MS           3000     /* client -> tracker */
#define TS_RPC_TIMEOUT_MS         5000     /* one request, then fail over */
#define TS_RPC_KDF_TIMEOUT_MS     30000    /* login/create_user run the KDF */
#define TS_RPC_CONNECT_MS         2000
#define TS_RPC_ATTEMPTS_N         6        /* over all trackers */

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
#define TS_NODE_CLAIM_TIMEOUT_MS  30000    /* a claim older than this is stale */
#define TS_NODE_IDLE_POLL_MS      50       /* downloader with nothing to do */

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

#endif /* TS_CONFIG_H_INCLUDED */
