#!/usr/bin/env bash
# wan_tail.sh -- a download's tail from unequal seeders on the WAN bed
# (bench/wan_tail.py), two builds interleaved run by run: A and B are
# directories of client/tracker binaries (e.g. a build with
# TS_DL_BLOCK_TAIL_N 0 and one with blocks), run A B, B A, A B, ... so a
# busy machine weighs on both alike.  One line per run (wall and tail
# seconds, chunks assembled from blocks of 2+ peers), then the medians.
#
# Usage: bench/wan_tail.sh A_BIN B_BIN [ROUNDS] [wan_tail.py options]
#   (default 8 rounds; e.g. --up 200,20 --size 32M --delay 50)
# Environment: TESSERA_TOOLS (default build/release/tools: wanemu).
#   Root only (namespaces); each run takes a few seconds.
set -u -o pipefail
export LC_ALL=C
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TESSERA_TOOLS=${TESSERA_TOOLS:-$ROOT/build/release/tools}
[ $# -ge 2 ] || { sed -n 2,13p "$0" >&2; exit 64; }
A=$1; B=$2; ROUNDS=${3:-8}
shift $(($# >= 3 ? 3 : 2))
[ "$(id -u)" = 0 ] || { echo "wan_tail.sh: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$TESSERA_TOOLS/wanemu" ] || { echo "wan_tail.sh: make tools first" >&2; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
for ((i = 1; i <= ROUNDS; i++)); do
    if ((i % 2)); then order="A B"; else order="B A"; fi
    for v in $order; do
        if [ "$v" = A ]; then bin=$A; else bin=$B; fi
        r=$(TESSERA_BIN=$bin timeout 600 /usr/bin/python3 \
            "$ROOT/bench/wan_tail.py" "$@" 2>/dev/null | tail -1)
        [ -n "$r" ] || r='{"failed": 1}'
        echo "$v $i $r" | tee -a "$OUT"
    done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
runs = {"A": [], "B": []}
for ln in open(sys.argv[1]):
    v, _, js = ln.split(" ", 2)
    r = json.loads(js)
    if "wall_s" in r:
        runs[v].append(r)
for v, rs in runs.items():
    if rs:
        print("%s: %d runs, wall median %.3f s, tail median %.3f s, "
              "chunks from 2+ peers %d" % (
                  v, len(rs), statistics.median(r["wall_s"] for r in rs),
                  statistics.median(r["tail_s"] for r in rs),
                  sum(r["multi"] for r in rs)))
PY
