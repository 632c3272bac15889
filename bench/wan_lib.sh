# bench/wan_lib.sh -- what the WAN bed benchmarks share (sourced by
# bench/wan_cluster.sh and bench/wan_anchor.sh): the repository root, the
# binaries' directories, and the check that the bed can run here.
#
# No processes, no cleanup: the Python drivers own the bed and tear it
# down (tests/system/wanbed.py).

export LC_ALL=C
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TESSERA_BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
export TESSERA_TOOLS=${TESSERA_TOOLS:-$ROOT/build/release/tools}

# wan_bed_or_skip NAME: exits 0 with "NAME: skipped: WHY" when the bed
# cannot run (not root, no TUN, no namespaces, wanemu not built), so
# `make bench` goes on.
wan_bed_or_skip() {
    local why
    why=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[1])
import wanbed; print(wanbed.unsupported() or "")' "$ROOT/tests/system")
    if [ -n "$why" ]; then
        echo "$1: skipped: $why"
        exit 0
    fi
}
