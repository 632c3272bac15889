#!/usr/bin/env bash
# wan_cluster.sh -- the Tessera cluster on separate emulated hosts, full
# size: 3 trackers (each its own network namespace host, all on one
# port) and N nodes (default 20, each its own host, all on one port),
# through the WAN emulator (tests/system/wanbed.py, tests/tools/wanemu.c;
# docs/TESTBED.md).  The scenarios are tests/system/wan_cluster.py's
# (test_wan_cluster.py runs them small in `make check`):
#   setup              trackers linked, N nodes started, logged in, grouped
#   multi_source       1 seeder, 1 first leecher, then N-3 leechers at once
#   tracker_partition  tracker 1 cut from 2 and 3 (100 % loss), writes on
#                      both sides, heal: seconds until equal digests
#   tracker_kill       tracker 1 SIGKILLed: every node answers, a download
#                      completes; restarted, it converges
#   seeder_partition   the seeder's host cut while the last node is mid-
#                      download (its download capped at LEECH Mbit/s)
# Every copy is SHA1-checked; every assertion of the test holds here too.
#
# Usage: bench/wan_cluster.sh [NODES] [SIZE] [RUNS]   (default 20 64M 1)
# Environment: TESSERA_BIN, TESSERA_TOOLS (default build/release/...),
#   DELAY (one way, ms, default 25), RATE (Mbit/s per host, default 100),
#   LEECH (Mbit/s, default 50), LOSS (percent, default 0), TIMEOUT (s per
#   run, default 900).  Root only (namespaces, TUN); without it, or
#   without the bed, it says why and exits 0 (so `make bench` goes on).
#   Prints one table line per scenario and run; the JSON figures go to
#   stderr.  Every process is stopped by pid and every namespace deleted
#   by the Python driver, also on Ctrl-C or the timeout's SIGTERM.
set -u -o pipefail
# shellcheck source=bench/wan_lib.sh
. "$(dirname "$0")/wan_lib.sh"
NODES=${1:-20}
SIZE=${2:-64M}
RUNS=${3:-1}
DELAY=${DELAY:-25}
RATE=${RATE:-100}
LEECH=${LEECH:-50}
LOSS=${LOSS:-0}
TIMEOUT=${TIMEOUT:-900}

wan_bed_or_skip wan_cluster.sh

echo "== the cluster on separate hosts: 3 trackers + $NODES nodes, $SIZE," \
     "RTT $((2 * ${DELAY%.*})) ms, $RATE Mbit/s per host, loss $LOSS %," \
     "$(nproc) cpus (shared machine: other jobs may run)"
printf '%-4s %-18s %s\n' run scenario figures
status=0
for ((r = 1; r <= RUNS; r++)); do
    out=$(timeout "$TIMEOUT" /usr/bin/python3 "$ROOT/tests/system/wan_cluster.py" \
          --nodes "$NODES" --size "$SIZE" --delay "$DELAY" --rate "$RATE" \
          --leech-rate "$LEECH" --loss "$LOSS")
    rc=$?
    if [ -n "$out" ]; then              # the scenarios done, even if one failed
        echo "$out" >&2
        /usr/bin/python3 -c 'import json, sys
for ln in sys.argv[2].splitlines():
    f = json.loads(ln)
    name = f.pop("scenario")
    f.pop("digest", None)
    print("%-4s %-18s %s" % (sys.argv[1], name,
          " ".join("%s=%s" % kv for kv in f.items())))' "$r" "$out"
    fi
    if [ $rc -ne 0 ]; then
        printf '%-4s %-18s %s\n' "$r" "-" "FAILED (exit $rc; the traceback is on stderr)"
        status=1
    fi
done
exit $status
