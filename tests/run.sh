#!/bin/bash
# tests/run.sh OUTDIR -- the single test entry point (`make check`).
#
# Runs every OUTDIR/tests/test_* cmocka binary (each under timeout 120),
# then the pytest system tests (under timeout 540), and prints one last
# line "N passed, M failed" with the totals.  Exit 0 only if nothing
# failed and something ran.  A unit binary that crashes, times out or
# prints no cmocka summary counts as one failure; so does a pytest run
# that dies without a summary.
#
# Environment for the system tests: TESSERA_BIN (the directory holding
# tracker and client; default OUTDIR/bin, which is where the Makefile
# links them) and TESSERA_TOOLS (OUTDIR/tools).  No locks; every child
# is bounded by timeout(1).

set -u

if [ $# -ne 1 ]; then
    echo "usage: tests/run.sh OUTDIR" >&2
    exit 2
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$1
case $OUT in /*) ;; *) OUT=$ROOT/$OUT ;; esac

# The binaries live in OUTDIR/bin (the Makefile also copies the release
# ones to tracker/tracker and client/client).
BIN=${TESSERA_BIN:-$OUT/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
export TESSERA_BIN=$BIN
export TESSERA_TOOLS=$OUT/tools

cd "$ROOT" || exit 2

passed=0
failed=0
log=$(mktemp -d "${TMPDIR:-/tmp}/tessera-check.XXXXXX")
trap 'rm -rf "$log"' EXIT

# ---- unit tests ----------------------------------------------------------
shopt -s nullglob
for t in "$OUT"/tests/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    name=$(basename "$t")
    timeout -k 5 120 "$t" >"$log/$name.out" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test(s)\..*/\1/p' \
        "$log/$name.out" | awk '{s += $1} END {print s + 0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s), listed below:.*/\1/p' \
        "$log/$name.out" | awk '{s += $1} END {print s + 0}')
    summary=$(grep -c '^\[  \(PASSED\|FAILED\)  \] [0-9]* test(s)' \
              "$log/$name.out")
    if [ "$rc" -ge 124 ] || [ "$summary" -eq 0 ]; then
        # crashed, killed or timed out: whatever it printed, one failure
        f=$((f + 1))
        why="crashed or timed out (exit $rc)"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        why="exit $rc"
    else
        why=""
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    if [ "$f" -gt 0 ]; then
        echo "unit $name: $p passed, $f failed $why"
        tail -n 40 "$log/$name.out" | sed 's/^/    /'
    else
        echo "unit $name: $p passed"
    fi
done

# ---- system tests --------------------------------------------------------
if [ -d tests/system ]; then
    timeout -k 10 540 /usr/bin/python3 -m pytest tests/system -q \
        -p no:cacheprovider --tb=short 2>&1 | tee "$log/pytest.out"
    rc=${PIPESTATUS[0]}
    last=$(grep -E '[0-9]+ (passed|failed|errors?)|no tests ran' \
           "$log/pytest.out" | tail -n 1)
    count() {
        echo "$last" | grep -oE "[0-9]+ $1" | head -n 1 | \
            awk '{print $1 + 0}'
    }
    p=$(count passed); p=${p:-0}
    f=$(count failed); f=${f:-0}
    e=$(count 'errors?'); e=${e:-0}
    f=$((f + e))
    if [ "$rc" -ge 124 ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ] && \
                              [ "$f" -eq 0 ]; }; then
        echo "pytest: exit $rc (timed out, crashed or usage error)"
        f=$((f + 1))
    fi
    passed=$((passed + p))
    failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
