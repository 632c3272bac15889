#!/bin/bash
# bench/scale.sh -- tracker scale benchmark (`make bench`; builds nothing).
#
# For each size N (users) starts one tracker on a free 127.0.0.1 port with
# a temp data dir and --fsync off and a LOW --kdf-iterations (building the
# dataset measures the database, not PBKDF2), builds the dataset through
# the real protocol (bench/scale.py build: N users each logged in once,
# N/100 groups with pending joins, a group of 505 files), stops it, then
# starts it again with --fsync on and prints: start-up time (to the port
# answering), tdb size, the trackers' idle CPU over IDLE_S seconds, the
# anonymous resident memory of the tracker's processes (RssAnon), the
# time of one `tracker --status`, and p50/p99 of LIST_GROUPS,
# LIST_MY_GROUPS, LIST_FILES (505 files), LOGIN and CREATE_GROUP
# (bench/scale.py measure); then the wiped-tracker snapshot: the
# dataset's tracker is restarted as tracker 1 of a 2-tracker cluster and
# a tracker 2 with an empty data dir joins; the time from tracker 2's
# start until both STATUS digests are equal, and how many snapshots
# tracker 1 began sending ("attempts"; 1 when none was cut), is printed
# as "wiped tracker snapshot adopted in N s, attempts K".  Every tracker
# is stopped by pid (SIGTERM, bounded wait, SIGKILL); a trap stops them
# on any exit.
#
# Usage: bench/scale.sh [SIZES...]      (default: 1000 10000; 100000 is
#                                        possible but takes long to build)
# Environment: TESSERA_BIN (dir of the tracker; default build/release/bin),
# BUILD_BIN (dir of the tracker that builds the dataset; default
# TESSERA_BIN: an old tracker can be measured on a dataset a faster one
# built, the file format being the same), BUILD_OPTS (more options of the
# building tracker, e.g. "--tdb-hash-size 4099" for the old default),
# FSYNC (--fsync of the measured
# run, default on), KDF (default 1000), WORKERS (2), COUNT (requests timed per type, 100),
# IDLE_S (5: idle CPU is measured over it twice, 2 s after start-up and
# IDLE_LATE_S (15) s later), KEEP=1 keeps the temp dir.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SIZES=${*:-1000 10000}
KDF=${KDF:-1000}
WORKERS=${WORKERS:-2}
COUNT=${COUNT:-100}
IDLE_S=${IDLE_S:-5}
IDLE_LATE_S=${IDLE_LATE_S:-15}
BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
BBIN=${BUILD_BIN:-$BIN}
case $BBIN in /*) ;; *) BBIN=$ROOT/$BBIN ;; esac
FSYNC=${FSYNC:-on}
PY=/usr/bin/python3

if ! [ -x "$BIN/tracker" ]; then
    echo "scale: $BIN/tracker is not built (run make bench)" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-scale.XXXXXX")
TRK_PID=

STOP_TENTHS=300
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
TRK2_PID=

# the second tracker of the snapshot step, then lib.sh's cleanup
cleanup_scale() {
    local p=$TRK_PID
    TRK_PID=$TRK2_PID
    stop_tracker
    TRK2_PID=
    TRK_PID=$p
    cleanup
}
trap cleanup_scale EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }

# start_tracker BIN DIR PORT FSYNC [OPTIONS...]: tracker 1 of INFO
# (default DIR/tracker_info.txt); sets TRK_PID and
# START_MS (to the port answering); 1 if it did not come up in 120 s.
start_tracker() {
    local bin=$1 dir=$2 port=$3 fsync=$4 t0 i
    shift 4
    t0=$(now_ms)
    "$bin/tracker" -d "$dir/data" --kdf-iterations "$KDF" -w "$WORKERS" \
        --fsync "$fsync" --session-timeout 86400000 \
        --max-conns-per-addr 100000 --max-unauth 100000 \
        --kdf-per-addr 0 --create-user-per-addr 0 --login-fails-addr 0 \
        -l warn "$@" "${INFO:-$dir/tracker_info.txt}" 1 </dev/null \
        >>"$dir/tracker.log" 2>&1 &
    TRK_PID=$!
    for i in $(seq 6000); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            START_MS=$(( $(now_ms) - t0 ))
            return 0
        fi
        kill -0 "$TRK_PID" 2>/dev/null || break
        sleep 0.02
    done
    echo "scale: the tracker did not start:" >&2
    tail -20 "$dir/tracker.log" >&2
    return 1
}

# CPU ticks (utime + stime) of the tracker and its children.
cpu_ticks() {
    local p sum=0 t
    for p in $TRK_PID $(ps -o pid= --ppid "$TRK_PID" 2>/dev/null); do
        t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}

# digest DIR INFO ID: tracker ID's STATUS digest (empty if no answer).
digest() {
    timeout 20 "$BIN/tracker" --status "$2" "$3" 2>/dev/null |
        sed -n 's/^digest: *//p'
}

# snapshot_size DIR PORT: tracker 1 (the dataset) and a wiped tracker 2;
# prints the adoption time and the number of snapshots sent.
snapshot_size() {
    local dir=$1 port=$2 port2 info t0 d1 d2 i tries ok=0
    port2=$(free_port)
    info=$dir/tracker_info2.txt
    printf '127.0.0.1:%s\n127.0.0.1:%s\n' "$port" "$port2" >"$info"
    mkdir -p "$dir/t2"
    INFO=$info start_tracker "$BIN" "$dir" "$port" "$FSYNC" -l info ||
        return 1
    # the same start_tracker, for id 2 with its own (empty) data dir
    t0=$(now_ms)
    "$BIN/tracker" -d "$dir/t2/data" --kdf-iterations "$KDF" \
        -w "$WORKERS" --fsync "$FSYNC" --session-timeout 86400000 \
        -l info "$info" 2 </dev/null \
        >>"$dir/tracker2.log" 2>&1 &
    TRK2_PID=$!
    for i in $(seq 36000); do
        # tracker 1's digest each time: its housekeeping may change it
        d2=$(digest "$dir" "$info" 2)
        d1=$(digest "$dir" "$info" 1)
        if [ -n "$d1" ] && [ "$d1" = "$d2" ]; then ok=1; break; fi
        kill -0 "$TRK2_PID" 2>/dev/null || break
        sleep 0.05
    done
    tries=$(grep -c "sending a snapshot to tracker 2" "$dir/tracker.log")
    if [ $ok = 1 ]; then
        printf '   wiped tracker snapshot adopted in %.2f s, attempts %d\n' \
            "$(echo "($(now_ms) - $t0) / 1000" | bc -l)" "$tries"
    else
        printf '   wiped tracker snapshot NOT adopted (attempts %d)\n' \
            "$tries"
        tail -5 "$dir/tracker2.log" | sed 's/^/     /'
    fi
    local p=$TRK_PID
    TRK_PID=$TRK2_PID
    stop_tracker
    TRK2_PID=
    TRK_PID=$p
    stop_tracker
}

# Anonymous resident memory (RssAnon, KiB) of the tracker and its
# children, summed: the shm segment and the mapped tdb file are not
# anonymous and are not counted.
rss_anon_kib() {
    local p sum=0 t
    for p in $TRK_PID $(ps -o pid= --ppid "$TRK_PID" 2>/dev/null); do
        t=$(awk '/^RssAnon:/ {print $2}' "/proc/$p/status" 2>/dev/null) \
            || continue
        sum=$((sum + ${t:-0}))
    done
    echo $sum
}

run_size() {
    local n=$1 dir=$WORK/n$1 port c0 c1 hz t0 st
    port=$(free_port)
    mkdir -p "$dir"
    printf '127.0.0.1:%s\n' "$port" >"$dir/tracker_info.txt"
    echo "== $n users, workers=$WORKERS, TLS 1.3, measured: $BIN"
    echo "   building with $BBIN, --fsync off and --kdf-iterations $KDF" \
         "(low: a bench setting, never a deployment one)"
    # shellcheck disable=SC2086
    start_tracker "$BBIN" "$dir" "$port" off ${BUILD_OPTS:-} || return 1
    timeout 7200 $PY "$ROOT/bench/scale.py" build "$port" "$dir/pki/ca.crt" \
        "$n" 4 | sed 's/^/   /' || { stop_tracker; return 1; }
    stop_tracker
    start_tracker "$BIN" "$dir" "$port" "$FSYNC" || return 1
    printf '   %-18s %9d ms (--fsync %s)\n' "start-up" "$START_MS" "$FSYNC"
    printf '   %-18s %9.1f MiB\n' "tdb size" \
        "$(echo "$(stat -c %s "$dir/data/tracker.tdb") / 1048576" | bc -l)"
    sleep 2
    hz=$(getconf CLK_TCK)
    c0=$(cpu_ticks)
    sleep "$IDLE_S"
    c1=$(cpu_ticks)
    printf '   %-18s %9.1f %% of a core (seconds 2-%d after start-up)\n' \
        "idle CPU" "$(echo "($c1 - $c0) * 100 / $hz / $IDLE_S" | bc -l)" \
        $((2 + IDLE_S))
    # the first housekeeping pass after a start looks at every session
    # once: the steady state is measured after it
    sleep "$IDLE_LATE_S"
    c0=$(cpu_ticks)
    sleep "$IDLE_S"
    c1=$(cpu_ticks)
    printf '   %-18s %9.1f %% of a core (seconds %d-%d)\n' "idle CPU" \
        "$(echo "($c1 - $c0) * 100 / $hz / $IDLE_S" | bc -l)" \
        $((2 + IDLE_S + IDLE_LATE_S)) $((2 + 2 * IDLE_S + IDLE_LATE_S))
    printf '   %-18s %9.1f MiB (RssAnon of the %d tracker processes)\n' \
        "tracker RSS anon" "$(echo "$(rss_anon_kib) / 1024" | bc -l)" \
        "$(( $(ps -o pid= --ppid "$TRK_PID" | wc -l) + 1 ))"
    t0=$(now_ms)
    if timeout 120 "$BIN/tracker" --status "$dir/tracker_info.txt" 1 \
        >/dev/null 2>&1; then st=ok; else st=failed; fi
    printf '   %-18s %9d ms (%s)\n' "one STATUS" "$(( $(now_ms) - t0 ))" "$st"
    timeout 3600 $PY "$ROOT/bench/scale.py" measure "$port" \
        "$dir/pki/ca.crt" "$n" "$COUNT" | sed 's/^/   /'
    stop_tracker
    snapshot_size "$dir" "$port" || return 1
    echo
}

echo "tessera tracker scale bench: $(nproc) cpus, $(uname -r)"
status=0
for n in $SIZES; do
    run_size "$n" || status=1
done
exit $status
