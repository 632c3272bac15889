#!/bin/bash
# tests/fuzz/run.sh MODE SECONDS [JOBS] [TARGET...] -- runs the libFuzzer
# targets built in build/fuzz/ (make fuzz-build).
#
#   MODE check  a fresh work corpus per target: replays the committed
#               seeds tests/fuzz/corpus/<target>/ then fuzzes SECONDS;
#   MODE long   the same, but the work corpus build/fuzz/work/<target>/
#               is kept and grows from run to run.
# JOBS targets run at once (default 2).  One line per target:
#   fuzz <target>: ok (N runs)
#   fuzz <target>: FAILED <why> [input: <path of the crashing input>]
# then the log's sanitizer summary, indented.  Exit 0 only if every
# target passed.  The committed corpus is only read: new inputs go to the
# work corpus, crash inputs to build/fuzz/crashes/<target>/.
#
# Each target gets its own TMPDIR (removed afterwards), the only place it
# writes: under /dev/shm when it is writable (tdb stores are rewritten
# for every input; tmpfs makes that cheap), else build/fuzz/tmp/.
# No locks; every child is bounded by timeout(1).

set -u

if [ $# -lt 2 ]; then
    echo "usage: tests/fuzz/run.sh check|long SECONDS [JOBS] [TARGET...]" >&2
    exit 2
fi
MODE=$1
SECS=$2
JOBS=${3:-2}
shift 2
[ $# -gt 0 ] && shift

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
OUT=$ROOT/build/fuzz

if [ $# -gt 0 ]; then
    targets=("$@")
else
    targets=()
    for f in tests/fuzz/fuzz_*.c; do
        t=${f#tests/fuzz/fuzz_}
        targets+=("${t%.c}")
    done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

res=$(mktemp -d "${TMPDIR:-/tmp}/tessera-fuzz-run.XXXXXX")
trap 'rm -rf "$res"' EXIT

# one target: writes its result line(s) to $res/<t>.txt
one() {
    local t=$1 bin=$OUT/fuzz_$1 seeds=tests/fuzz/corpus/$1
    local work tmp crashes log rc runs path why
    if [ ! -x "$bin" ]; then
        echo "fuzz $t: FAILED (not built; see make fuzz-build)" \
            >"$res/$t.txt"
        return
    fi
    if [ "$MODE" = long ]; then
        work=$OUT/work/$t
    else
        work=$OUT/work-check/$t
        rm -rf "$work"
    fi
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then
        tmp=$(mktemp -d "/dev/shm/tessera-fuzz-$t.XXXXXX")
    else
        mkdir -p "$OUT/tmp"
        tmp=$(mktemp -d "$OUT/tmp/$t.XXXXXX")
    fi
    crashes=$OUT/crashes/$t
    log=$OUT/logs/$t.log
    mkdir -p "$work" "$crashes" "$OUT/logs" "$seeds"
    TMPDIR=$tmp timeout -k 10 $((SECS + 120)) "$bin" \
        -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 \
        -close_fd_mask=3 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "$work" "$seeds" >"$log" 2>&1
    rc=$?
    rm -rf "$tmp"
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -n 1)
    if [ "$rc" -eq 0 ] && [ -n "$runs" ]; then
        echo "fuzz $t: ok ($runs runs)" >"$res/$t.txt"
        return
    fi
    path=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
    if [ "$rc" -ge 124 ] && [ -z "$path" ]; then
        why="timed out (exit $rc)"
    else
        why="exit $rc"
    fi
    {
        echo "fuzz $t: FAILED $why${path:+ input: $path}"
        grep -E '^(SUMMARY|==[0-9]+==ERROR)|fuzz invariant|runtime error' \
            "$log" | head -n 5 | sed 's/^/    /'
        echo "    log: $log"
    } >"$res/$t.txt"
}

running=0
for t in "${targets[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n
        running=$((running - 1))
    fi
    one "$t" &
    running=$((running + 1))
done
wait

ok=0
bad=0
for t in "${targets[@]}"; do
    cat "$res/$t.txt"
    if head -n 1 "$res/$t.txt" | grep -q ': ok ('; then
        ok=$((ok + 1))
    else
        bad=$((bad + 1))
    fi
done
echo "fuzz: $ok targets ok, $bad failed"
[ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]
