#!/usr/bin/env bash
# wan_anchor.sh -- the anchor on the WAN test bed: aria2c + opentracker
# (what ../shared/bench/anchor_swarm.sh measures on loopback) and Tessera,
# the same workload on the same emulated hosts, interleaved run by run
# (bench/wan_anchor.py does the work; docs/TESTBED.md).
#
# Workload: 256 MiB, 1 seeder + 4 leechers, a tracker host; every host
# capped at 200 Mbit/s up and down; links RTT 50 ms, RTT 100 ms, RTT 50 ms
# with 1 % loss, and no delay no cap; RUNS runs of each system per link
# (median printed).  Table: median and each run's seconds until the last
# leecher is complete (every copy SHA1-checked), the lower bound (the
# file through one 200 Mbit/s cap plus 4 RTTs), and the copies of the
# file the seeder's host sent (emulator IP bytes / size; for Tessera also
# its own chunk count).
#
# Usage: bench/wan_anchor.sh [SIZE] [LEECHERS] [RUNS]   (default 256M 4 3)
# Environment: RATE (Mbit/s, default 200), LINKS (default 50,100,50l,free),
#   TIMEOUT (s per run, default 600), TESSERA_BIN, TESSERA_TOOLS.
#   Root only.  aria2c, opentracker and mktorrent are installed with
#   apt-get when missing (as the anchor script does); without root or the
#   bed it says why and exits 0 so `make bench` goes on.  Takes about
#   15 minutes with the defaults.
set -u -o pipefail
# shellcheck source=bench/wan_lib.sh
. "$(dirname "$0")/wan_lib.sh"
SIZE=${1:-256M}
N=${2:-4}
RUNS=${3:-3}
RATE=${RATE:-200}
LINKS=${LINKS:-50,100,50l,free}
TIMEOUT=${TIMEOUT:-600}

wan_bed_or_skip wan_anchor.sh
missing=
for b in aria2c opentracker mktorrent curl; do
    command -v "$b" >/dev/null 2>&1 || missing=1
done
if [ -n "$missing" ]; then
    echo "wan_anchor.sh: installing aria2 opentracker mktorrent curl" >&2
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y aria2 \
        opentracker mktorrent curl >&2 ||
        { echo "wan_anchor.sh: apt-get install failed" >&2; exit 1; }
fi

echo "== anchor on the WAN bed: $SIZE, 1 seeder + $N leechers, $RATE Mbit/s" \
     "per host, $RUNS runs per system and link, interleaved; $(nproc) cpus," \
     "$(uname -r); a shared machine (other jobs may run)"
echo "   aria2 $(aria2c --version | awk 'NR==1{print $3}'), opentracker" \
     "$(dpkg-query -W -f='${Version}' opentracker 2>/dev/null || echo '?')"
# each run is bounded by TIMEOUT inside; this bounds the whole
n_links=$(tr ',' '\n' <<< "$LINKS" | grep -c .)
timeout $(( (TIMEOUT + 120) * 2 * RUNS * n_links + 300 )) \
    /usr/bin/python3 "$ROOT/bench/wan_anchor.py" --size "$SIZE" \
    --leechers "$N" --runs "$RUNS" --rate "$RATE" --links "$LINKS" \
    --timeout "$TIMEOUT"
