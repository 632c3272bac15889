#!/bin/bash
# tests/run.sh OUTDIR -- the single test entry point (`make check`).
#
# Runs every OUTDIR/tests/test_* cmocka binary (each under timeout 120),
# then the source layout check, then the pytest system tests (under
# timeout 540), then the libFuzzer
# targets of tests/fuzz/ (built with clang-14 into build/fuzz/, each
# replaying its corpus and fuzzing 10 s; one test per target), and prints
# one last line "N passed, M failed" with the totals.  Exit 0 only if nothing
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

# ---- source layout ---------------------------------------------------------
# tests/tools/layout_check.py: file and function size limits, the layer
# order of includes (docs/ARCHITECTURE.md) and no include circles.  One
# test: it passes only with no violation.
if [ -f tests/tools/layout_check.py ]; then
    if timeout -k 5 60 /usr/bin/python3 tests/tools/layout_check.py . \
        >"$log/layout.out" 2>&1; then
        tail -n 1 "$log/layout.out"
        passed=$((passed + 1))
    else
        echo "layout: FAILED"
        tail -n 20 "$log/layout.out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
fi

# ---- system tests --------------------------------------------------------
# Two test files at a time (pytest-xdist, a file per worker): the tests
# mostly wait on processes and sockets, and every test uses its own ports,
# directories and shm names, so two sessions do not meet.
# TESSERA_PYTEST_JOBS=1 runs them one after another.
if [ -d tests/system ]; then
    jobs=${TESSERA_PYTEST_JOBS:-2}
    par=""
    if [ "$jobs" -gt 1 ] && /usr/bin/python3 -c 'import xdist' 2>/dev/null
    then
        par="-n $jobs --dist loadfile"
    fi
    # shellcheck disable=SC2086
    timeout -k 10 540 /usr/bin/python3 -m pytest tests/system -q $par \
        -p no:cacheprovider --tb=short --durations=12 2>&1 | tee "$log/pytest.out"
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

# ---- fuzz targets --------------------------------------------------------
# tests/fuzz/: build the libFuzzer targets (clang-14, build/fuzz/), replay
# each committed corpus and fuzz each target TESSERA_FUZZ_S seconds (10),
# two at a time; each target is one test.  TESSERA_FUZZ=0 skips the step.
# A target that does not build (another module half-changed) fails alone.
if [ "${TESSERA_FUZZ:-1}" != 0 ] && [ -f tests/fuzz/fuzz.mk ]; then
    make --no-print-directory -k -j2 -f tests/fuzz/fuzz.mk fuzz-build \
        >"$log/fuzz-build.out" 2>&1 || {
        echo "fuzz: some targets did not build:"
        grep -E 'error|Error' "$log/fuzz-build.out" | head -n 10 | \
            sed 's/^/    /'
    }
    timeout -k 10 400 tests/fuzz/run.sh check "${TESSERA_FUZZ_S:-10}" 2 \
        >"$log/fuzz.out" 2>&1
    grep -v '^fuzz: [0-9]* targets ok' "$log/fuzz.out"
    p=$(grep -c '^fuzz [^ ]*: ok (' "$log/fuzz.out")
    f=$(grep -c '^fuzz [^ ]*: FAILED' "$log/fuzz.out")
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
        echo "fuzz: the runner reported nothing"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
