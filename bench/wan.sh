#!/usr/bin/env bash
# wan.sh -- the Tessera swarm over an emulated WAN (tests/system/wanbed.py,
# tests/tools/wanemu.c; docs/TESTBED.md).
#
# Workload: one tracker host, one seeder host and N leecher hosts, each a
# network namespace; one random file of SIZE bytes, 512 KiB chunks; the
# leechers start their downloads at once and the clock runs until every
# one holds a verified copy (each copy is then checked by SHA1).  Setup
# (tracker, nodes, logins, group, upload) is not timed.  "copies" is what
# the seeder uploaded, in copies of the file (chunks sent / chunks): 1.0
# when each chunk left it once and the leechers passed it on; "seeder:"
# when the leechers had the first and the last chunk of the seeder's and
# how many MiB of it by 2 and 5 s (wan_swarm.py's seeder_up).  Three links:
#   RTT  50 ms          (25 ms one way between any two hosts)
#   RTT 100 ms          (50 ms one way)
#   RTT  50 ms, 1 % loss on every pair
# every host capped at RATE Mbit/s up and down (drop-tail queues of one
# BDP).  Not part of `make check` (minutes, root only).
#
# Usage: bench/wan.sh [SIZE] [N] [RUNS]     (default 256M 4 1)
# Environment: TESSERA_BIN, TESSERA_TOOLS (default build/release/...),
#   RATE (Mbit/s per host and direction, default 1000), TIMEOUT (s per
#   run, default 900).  Prints one line per run and the JSON figures of
#   each to stderr.  Every process is stopped by pid and every namespace
#   deleted by the Python driver, also on Ctrl-C.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export TESSERA_BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
export TESSERA_TOOLS=${TESSERA_TOOLS:-$ROOT/build/release/tools}
SIZE=${1:-256M}
N=${2:-4}
RUNS=${3:-1}
RATE=${RATE:-1000}
TIMEOUT=${TIMEOUT:-900}

[ "$(id -u)" = 0 ] || { echo "wan.sh: needs root (namespaces, TUN)" >&2; exit 1; }
[ -x "$TESSERA_TOOLS/wanemu" ] || { echo "wan.sh: make tools first" >&2; exit 1; }

printf '%-34s %5s %9s %9s %7s %11s  %s  %s  %s\n' "link" "run" "wall_s" \
    "MiB/s" "copies" "emu_cpu_s" "leechers done at (s)" \
    "chunks from the seeder" "seeder: first/last chunk s, MiB by 2/5 s"
for spec in "RTT 50 ms|25|0" "RTT 100 ms|50|0" "RTT 50 ms + 1% loss|25|1"; do
    IFS='|' read -r name delay loss <<< "$spec"
    for ((r = 1; r <= RUNS; r++)); do
        out=$(timeout $((TIMEOUT + 60)) /usr/bin/python3 \
              "$ROOT/tests/system/wan_swarm.py" --size "$SIZE" --leechers "$N" \
              --delay "$delay" --loss "$loss" --rate "$RATE" --timeout "$TIMEOUT")
        rc=$?
        if [ $rc -ne 0 ] || [ -z "$out" ]; then
            printf '%-34s %5d %9s\n' "$name" "$r" "FAILED($rc)"
            continue
        fi
        echo "$out" >&2
        /usr/bin/python3 -c 'import json, sys
r = json.loads(sys.argv[1])
u = r.get("seeder_up", {})
print("%-34s %5s %9.2f %9.2f %7.2f %11.2f  %s  %s  %s/%s %s/%s" % (
      sys.argv[2], sys.argv[3], r["wall_s"], r["mib_s"], r["seeder_copies"],
      r["emu_cpu_s"], " ".join("%.2f" % t for t in r["leecher_s"]),
      " ".join("%d" % c for c in r["from_seeder"]), u.get("first_data_s"),
      u.get("last_data_s"), u.get("mib_by_2s"), u.get("mib_by_5s")))' \
            "$out" "$name ($RATE Mbit/s)" "$r"
    done
done
