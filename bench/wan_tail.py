"""
wan_tail.py -- the end of one download from several seeders of unequal
uplinks on the WAN bed (tests/system/wanbed.py): how long the last chunks
take, and whether they came as blocks from several peers
(workers/dl_block.c).

Workload: host 0 a tracker, hosts 1..S seeders of the same random file
of SIZE bytes, their uplinks capped at UP Mbit/s each (a comma list, one
per seeder; unequal on purpose: the slow one holds the tail), host S+1
the leecher (downloader workers: --downloaders, default 1, so every
source is its own: an assembly uses only its worker's sources, and peer
affinity gives each worker about sources / workers of them; every node
logs at debug level).  Every pair at RTT 2 x DELAY ms.  The clock runs from the
download command to the done bit of the last chunk, polled every 10 ms
in the leecher's segment; "tail_s" is the time from the moment no more
than TAIL chunks were missing (16: TS_DL_BLOCK_TAIL_N) to the end.
"multi" counts the chunks the leecher's log says it assembled from the
blocks of two peers or more.

    python3 bench/wan_tail.py [--size 32M] [--up 200,100,50] [--delay 50]
        prints one JSON line

Not part of `make check` (root only; seconds per run).  bench/wan_tail.sh
runs it A-vs-B interleaved.  Every process is stopped by pid and every
namespace deleted (the bed's close, reap_all), also on Ctrl-C.
"""

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "system"))
from nodes import make_file, sha1_file  # noqa: E402
from wan_swarm import GROUP, NsTracker, cleanup, ns_nodes, \
    parse_size  # noqa: E402
from wanbed import WanBed  # noqa: E402

CHUNK = 512 << 10


def run(bed, tmp, size, nseed, tail, timeout, ndl):
    trk = NsTracker(bed, 0, os.path.join(tmp, "trk")).start()
    hu = [(1 + i, "s%d" % i) for i in range(nseed)] + [(1 + nseed, "l")]
    nodes = ns_nodes(bed, trk, tmp, hu, downloaders=ndl, log_level="debug")
    seeders, leech = nodes[:-1], nodes[-1]
    src = os.path.join(tmp, "files")
    os.makedirs(src, exist_ok=True)
    want = make_file(os.path.join(src, "f.bin"), size, seed=5)
    for s in seeders:
        s.upload(os.path.join(src, "f.bin"), GROUP)
    nch = (size + CHUNK - 1) // CHUNK
    t0 = time.monotonic()
    dest = leech.download(GROUP, "f.bin", os.path.join(tmp, "out.bin"))
    t_tail = None
    while True:
        assert time.monotonic() - t0 < timeout, "not done"
        d = leech.shm_download(GROUP, "f.bin")
        if d is not None:
            if t_tail is None and nch - d["chunks_done"] <= tail:
                t_tail = time.monotonic()
            if d["chunks_done"] >= nch:
                break
        time.sleep(0.01)
    t1 = time.monotonic()
    line = leech.wait_download(GROUP, "f.bin", 60)
    assert line.startswith("[C]"), line
    assert sha1_file(dest) == want
    log = leech.stderr()
    for ln in log.splitlines():     # what the tail did, for the reader
        if re.search(r"blocks|second peer|SHA1|cancelled|ranged", ln):
            sys.stderr.write(ln + "\n")
    srcs = leech.shm_download(GROUP, "f.bin")["sources"]
    return {"wall_s": round(t1 - t0, 3),
            "tail_s": round(t1 - (t_tail or t0), 3),
            "multi": len(re.findall(r"assembled from \d+ blocks of [2-9] "
                                    r"peers", log)),
            "blocks_copied": log.count("asked of a second peer"),
            "src_mib": sorted(round(s["bytes"] / 2**20, 1)
                              for s in srcs.values())}


def main(argv=None):
    ap = argparse.ArgumentParser(description="a download's tail, WAN bed")
    ap.add_argument("--size", default="32M")
    ap.add_argument("--up", default="200,100,50", help="Mbit/s per seeder")
    ap.add_argument("--delay", type=float, default=50, help="one way, ms")
    ap.add_argument("--tail", type=int, default=16)
    ap.add_argument("--downloaders", type=int, default=1,
                    help="the leecher's downloader workers")
    ap.add_argument("--timeout", type=float, default=300)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = parse_size(a.size)
    ups = [float(x) for x in a.up.split(",")]
    hosts = {1 + i: {"up_mbit": u} for i, u in enumerate(ups)}
    with tempfile.TemporaryDirectory(prefix="tessera-tail.") as tmp:
        try:
            with WanBed(2 + len(ups), delay_ms=a.delay, rate_mbit=1000,
                        hosts=hosts, workdir=tmp) as bed:
                r = run(bed, tmp, size, len(ups), a.tail, a.timeout,
                        a.downloaders)
        finally:
            cleanup()
    r.update({"size": size, "up_mbit": ups, "delay_ms": a.delay,
              "downloaders": a.downloaders})
    print(json.dumps(r))


if __name__ == "__main__":
    main()
