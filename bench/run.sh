#!/bin/bash
# bench/run.sh -- tracker request benchmark (`make bench`; builds nothing).
#
# For each configuration (--fsync on, --fsync off) starts one tracker on a
# free 127.0.0.1 port with a temp data dir, runs tests/tools/trk_bench
# (CONNS logged-in connections, a LIST_GROUPS phase then a CREATE_GROUP
# phase of SECS seconds each), prints the table, and stops the tracker by
# pid (SIGTERM, bounded wait, SIGKILL).  A trap stops it on any exit.
# Every connection is TLS 1.3 and presents a node certificate, as the
# CLI's do (the tracker makes its PKI in the temp dir; the handshakes
# happen before the clock starts).  With NOTLS_BIN set (the bin dir of a
# `make BUILD=notls` build) the fsync-off run is repeated with that
# tracker over plaintext, so the cost of TLS is measured in one run.
# All connections come from 127.0.0.1, so the per-address limits (and
# the cap on connections not logged in) are lifted for the bench.
#
# Usage: bench/run.sh [SECS] [CONNS] [WORKERS]   (defaults 5 64 2)
# Environment: TESSERA_BIN (dir of the tracker; default build/release/bin),
# TESSERA_TOOLS (default
# build/release/tools), KDF (--kdf-iterations, default 1000: the bench
# measures request handling, not PBKDF2), NOTLS_BIN (see above), KEEP=1
# keeps the temp dir.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${1:-5}
CONNS=${2:-64}
WORKERS=${3:-2}
KDF=${KDF:-1000}

BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
TOOLS=${TESSERA_TOOLS:-$ROOT/build/release/tools}
case $TOOLS in /*) ;; *) TOOLS=$ROOT/$TOOLS ;; esac

for f in "$BIN/tracker" "$TOOLS/trk_bench"; do
    if ! [ -f "$f" ] || ! [ -x "$f" ]; then
        echo "bench: $f is not built (run make bench)" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-bench.XXXXXX")
TRK_PID=

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
trap cleanup EXIT
trap 'exit 130' INT TERM

# run_one NAME TLS(1|0) TRACKER-BIN-DIR TRACKER-OPTIONS...
run_one() {
    local name=$1 tls=$2 tbin=$3; shift 3
    local port dir i ready=0 rc tlsargs=()
    port=$(free_port)
    dir=$WORK/$name
    mkdir -p "$dir"
    printf '127.0.0.1:%s\n' "$port" >"$dir/tracker_info.txt"
    # caps of newer builds that one bench client would hit: connections
    # per user and per address, the groups a user may own
    local caps=()
    if "$tbin/tracker" --help 2>&1 | grep -q -- '--max-conns-per-user'; then
        caps+=(--max-conns-per-user 0 --max-unauth-per-addr 100000)
    fi
    if "$tbin/tracker" --help 2>&1 | grep -q -- '--quota'; then
        caps+=(--quota user-groups=off)
    fi
    "$tbin/tracker" -d "$dir/data" --kdf-iterations "$KDF" -w "$WORKERS" \
        --max-conns-per-addr 100000 --max-unauth 100000 \
        --kdf-per-addr 0 --create-user-per-addr 0 --login-fails-addr 0 \
        "${caps[@]}" -l warn "$@" "$dir/tracker_info.txt" 1 </dev/null \
        >"$dir/tracker.log" 2>&1 &
    TRK_PID=$!
    for i in $(seq 100); do
        if grep -q "ready on" "$dir/tracker.log" 2>/dev/null || \
           (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            ready=1
            break
        fi
        kill -0 "$TRK_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ $ready -ne 1 ]; then
        echo "bench: tracker ($name) did not start:" >&2
        cat "$dir/tracker.log" >&2
        stop_tracker
        return 1
    fi
    if [ "$tls" = 1 ]; then
        tlsargs=(-a "$dir/pki/ca.crt" -i 1 -s "$dir/node")
    fi
    echo "== tracker $* workers=$WORKERS, $CONNS connections, ${SECS}s" \
         "per request type ($([ "$tls" = 1 ] && echo TLS 1.3 ||
                                echo plaintext, notls build))"
    timeout $((SECS * 2 + 60)) "$TOOLS/trk_bench" -c "$CONNS" -d "$SECS" \
        "${tlsargs[@]}" "127.0.0.1:$port"
    rc=$?
    stop_tracker
    echo
    return $rc
}

echo "tessera tracker bench: $(nproc) cpus, $(uname -r)"
echo
status=0
run_one fsync-on 1 "$BIN" --fsync on || status=1
run_one fsync-off 1 "$BIN" --fsync off || status=1
if [ -n "${NOTLS_BIN:-}" ]; then
    NB=$NOTLS_BIN
    case $NB in /*) ;; *) NB=$ROOT/$NB ;; esac
    if [ -x "$NB/tracker" ]; then
        run_one fsync-off-notls 0 "$NB" --fsync off || status=1
    else
        echo "bench: NOTLS_BIN=$NOTLS_BIN has no tracker; skipped" >&2
    fi
fi
exit $status
