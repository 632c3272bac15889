"""
test_wan_swarm.py -- Tessera over the emulated WAN (wanbed.py): a
tracker, a seeder and two leechers, each in its own host, 25 ms one way
between any two, 100 Mbit/s up and down per host.

Purpose: the first scenario on the bed.  The first leecher's copy comes
from the seeder alone; the second one's mostly from the first leecher,
which holds it all (the seeder is asked only for what no leecher holds),
every copy checked by SHA1.  Each download
must take at least what the leecher's 100 Mbit/s download cap allows,
and the emulator must have carried the bytes: the traffic went over the
WAN, not over loopback.  Timings are printed.

The second: a seeder and three leechers at once (48 MiB).  TCP alone
(BBR on this kernel) lets one flow out of the seeder take twice its
share for seconds, and the leecher that got most of the seeder's chunks
then passes them on alone while the others wait; the seeder's uploaders
share the uplink round-robin (workers/up_seed.c, fair share).  Asserted
on counts: the seeder held GETs back (fair_holds), sent about one copy,
and no leecher got much more than a third of its chunks (the first
leecher starts a moment before the others and may keep a head start; a
late one may take less from the seeder, its peers having what it lacks).
The bed's figures at 256 MiB are bench/wan.sh's.

Locking: none.  Crash behaviour: the bed kills whatever runs in its
namespaces and deletes them; the conftest fixture reaps every node and
tracker by pid and unlinks their segments.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import wanbed  # noqa: E402
from nodes import make_file, sha1_file, wait_until  # noqa: E402
from tessera import reap_all  # noqa: E402
from wan_swarm import CHUNK, GROUP, NsTracker, ns_nodes, swarm  # noqa: E402
from wanbed import WanBed  # noqa: E402

WHY = wanbed.unsupported()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")

SIZE = 16 << 20
RATE = 100.0


def _download(node, dest, timeout=60):
    t0 = time.monotonic()
    node.download(GROUP, "f.bin", dest)
    last = node.wait_download(GROUP, "f.bin", timeout)
    assert last.startswith("[C]"), last
    return time.monotonic() - t0


def _sources(node):
    return node.list_files(GROUP).get("f.bin", (0, 0))[1]


def _host(stats, i):
    return [ln for ln in stats if ln["ev"] == "host" and ln["host"] == i][0]


def test_multi_source_download_over_the_wan(tmp_path):
    with WanBed(4, delay_ms=25, rate_mbit=RATE, workdir=tmp_path) as bed:
        t0 = time.monotonic()
        trk = NsTracker(bed, 0, tmp_path / "trk").start()
        seed, l0, l1 = ns_nodes(bed, trk, tmp_path,
                                [(1, "seed"), (2, "l0"), (3, "l1")])
        setup = time.monotonic() - t0
        (tmp_path / "src").mkdir()
        want = make_file(str(tmp_path / "src" / "f.bin"), SIZE, seed=5)
        seed.upload(str(tmp_path / "src" / "f.bin"), GROUP)

        # the least time 16 MiB take through a 100 Mbit/s download cap
        floor = SIZE * 8 / (RATE * 1e6)
        t_l0 = _download(l0, str(tmp_path / "l0.bin"))
        assert sha1_file(str(tmp_path / "l0.bin")) == want
        assert wait_until(lambda: _sources(l1) == 2, 10, 0.2)
        seed_before = seed.served(GROUP, "f.bin")

        t_l1 = _download(l1, str(tmp_path / "l1.bin"))
        assert sha1_file(str(tmp_path / "l1.bin")) == want
        from_seed = seed.served(GROUP, "f.bin") - seed_before
        from_l0 = l0.served(GROUP, "f.bin")
        st = bed.stats()
        print("setup (tracker, 3 nodes, logins, group) %.2f s; l0 from the "
              "seeder %.2f s; l1 from both %.2f s (cap floor %.2f s); "
              "l1's chunks: %d from the seeder, %d from l0; emulator CPU "
              "%.2f s" % (setup, t_l0, t_l1, floor, from_seed, from_l0,
                          bed.emu_cpu_s()))
        # l0 holds the whole file: l1 takes it from l0, and from the
        # seeder at most what l0 could not give in time (the seeder is
        # asked only for chunks no leecher holds)
        total = SIZE // (512 << 10)
        assert from_l0 >= total // 2, (from_seed, from_l0)
        assert from_seed + from_l0 >= total
        assert t_l0 >= 0.95 * floor and t_l1 >= 0.95 * floor
        # the bytes went through the emulator: each leecher's TUN got
        # at least the file, and l1 got some from l0's host
        assert _host(st, 2)["tx_bytes"] >= SIZE
        assert _host(st, 3)["tx_bytes"] >= SIZE
        l0_to_l1 = [ln for ln in st if ln["ev"] == "link"
                    and ln["src"] == 2 and ln["dst"] == 3]
        assert l0_to_l1 and l0_to_l1[0]["pkts"] > 50
        reap_all()


def test_seeder_shares_its_uplink_evenly(tmp_path):
    size, leechers = 48 << 20, 3
    with WanBed(2 + leechers, delay_ms=25, rate_mbit=RATE,
                workdir=tmp_path) as bed:
        r = swarm(bed, tmp_path, size, leechers, timeout=60)
        reap_all()
    got = r["from_seeder"]
    fair = size // CHUNK / leechers
    print("chunks from the seeder per leecher %s (a third: %.0f); seeder "
          "copies %.2f, GETs held back %d; leechers done at %s s"
          % (got, fair, r["seeder_copies"], r["fair_holds"],
             r["leecher_s"]))
    assert r["fair_holds"] > 0, r
    assert r["seeder_copies"] <= 1.2, r
    # a leecher that came late may take less (its peers have what it
    # lacks); none may take much more, which is what slows a swarm
    assert max(got) <= 1.5 * fair and min(got) > 0, r
