"""
test_wan_cluster.py -- the tracker cluster and its nodes on separate
emulated hosts (wanbed.py, wan_cluster.py): three trackers, each on its
own host and all on one port, five nodes on five more hosts, all on one
port too (two programs on one port on two hosts of one machine: their
shm segments must not collide), 10 ms one way between any two hosts,
100 Mbit/s per host.

Purpose: the acceptance scenarios over real (emulated) links, small:
a multi-source download (SHA1-checked, served by the seeder and by an
earlier leecher); a partition between tracker 1 and trackers 2, 3 (the
emulator's loss 100 % on those pairs at run time) with a write on each
side, digests apart while cut and equal (`tracker --status`) after the
heal; tracker 1 SIGKILLed with every node going on through the others,
then restarted and converging; the seeder's host cut away while a
leecher is mid-download, the copy finishing from the other holders.
The full size (3 trackers + 20 nodes) is bench/wan_cluster.sh.

Locking: none.  Crash behaviour: the bed kills whatever runs in its
namespaces and deletes them; the conftest fixture reaps every tracker
and node by pid and unlinks their segments.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import wanbed  # noqa: E402
import wan_cluster as wcl  # noqa: E402
from procs import node_segment, tracker_segment  # noqa: E402
from wanbed import WanBed  # noqa: E402

WHY = wanbed.unsupported()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")

LEECH_MBIT = 30     # the cut scenario's leecher: its download takes a while


def test_cluster_and_swarm_on_separate_hosts(tmp_path):
    t_start = time.monotonic()
    with WanBed(8, delay_ms=10, rate_mbit=100,
                hosts={7: {"down_mbit": LEECH_MBIT}},
                workdir=tmp_path) as bed:
        wc = wcl.WanCluster(bed, tmp_path).start()
        ns = wc.nodes([(3 + i, "u%d" % i) for i in range(5)])
        seed, first, rest, leech = ns[0], ns[1], ns[2:4], ns[4]
        # one port for every tracker, one for every node; one segment each
        assert {t.port for t in wc.trackers} == {wcl.TRK_PORT}
        assert {n.port for n in ns} == {wcl.NODE_PORT}
        segs = [tracker_segment(t.data_dir) for t in wc.trackers] + \
            [node_segment(n.state_dir) for n in ns]
        assert len(set(segs)) == 8
        for s in segs:
            assert os.path.exists("/dev/shm/" + s), s
        setup = time.monotonic() - t_start

        figs = [wcl.multi_source(wc, seed, first, rest, 8 << 20)]
        figs.append(wcl.tracker_partition(wc, 3, ns))
        figs.append(wcl.tracker_kill(wc, ns, leech, seed))
        figs.append(wcl.seeder_partition(wc, seed, [first] + rest, leech,
                                         16 << 20))
        cut = figs[-1]
        assert cut["done_at_cut"] < cut["chunks"]
        print("setup %.1f s; %s; emulator CPU %.1f s; total %.1f s"
              % (setup, "; ".join(str(f) for f in figs), bed.emu_cpu_s(),
                 time.monotonic() - t_start))
