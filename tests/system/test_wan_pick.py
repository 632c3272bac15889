"""
test_wan_pick.py -- piece selection and peer links over the emulated WAN
(wanbed.py, wan_swarm.py; docs/TESTBED.md).

Purpose: what the downloader's choices do to a swarm on a real-looking
network, asserted on counts, not times (the machine is shared):
  - one seeder and four leechers starting at once: the seeder uploads
    the file about once (at most 1.3 copies), the leechers pass the rest
    among themselves (random-first then rarest-first picking, seeders
    asked only for chunks no leecher holds, the seeder's super-seeding
    refusals);
  - a download at 100 ms RTT completes with no link closed for a timeout
    or a slow reply;
  - two complete sources, one behind a 20 Mbit/s uplink and one behind
    200 Mbit/s: the narrow one delivers proportionally fewer chunks;
  - each peer sees one or two TCP flows from a leecher node (peer
    affinity), not one per downloader worker;
  - the endgame: what a 4 Mbit/s source still owes at the end is asked of
    the fast one too, and the slow link's replies are cancelled;
  - two leechers of one seeder: each learns the chunks the other
    verifies from PEER_HAVE frames on the link it asked the map on (its
    shm view of that source grows between map polls, which come only
    every TS_DL_MAP_PUSHED_MS = 3 s once the peer pushes);
  - two complete sources, a leecher at 100 ms RTT: one source SIGKILLed
    while chunks from it are in flight; the chunks it owed are asked of
    the other source at once (the kill closes the link: no timeout), the
    copy completes verified, and no "timed out" is logged for the link;
  - the same with the source's host cut away instead (nothing closes
    the link): its chunks go back within the endgame or the link's
    RTT-based no-byte deadline, before the fixed 10 s peer timeout.

Locking: none.  Crash behaviour: the bed kills whatever runs in its
namespaces and deletes them; the conftest fixture and reap_all() stop
every node and tracker by pid and unlink their segments.
"""

import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import wanbed  # noqa: E402
from nodes import make_file, sha1_file  # noqa: E402
from node_shm import NodeShm  # noqa: E402
from tessera import reap_all  # noqa: E402
from wan_swarm import CHUNK, GROUP, NsTracker, ns_nodes, swarm  # noqa: E402
from wanbed import WanBed  # noqa: E402

WHY = wanbed.unsupported()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")

# what a link closed for a deadline logs (dl_worker.c, dl_link.c)
TIMEOUT_MARKS = ("timed out", "too slow", "connect failed")


def _download(node, dest, timeout=90):
    node.download(GROUP, "f.bin", dest)
    last = node.wait_download(GROUP, "f.bin", timeout)
    assert last.startswith("[C]"), last


def _flows(bed, host, port):
    """TCP connections established to host's port (ss inside its
    namespace), by remote address."""
    out = subprocess.run(bed.netns_argv(host, ["ss", "-Htn", "state",
                                               "established"]),
                         capture_output=True, text=True, timeout=10).stdout
    peers = {}
    for ln in out.splitlines():
        f = ln.split()
        if len(f) >= 4 and f[-2].endswith(":%d" % port):
            ip = f[-1].rsplit(":", 1)[0]
            peers[ip] = peers.get(ip, 0) + 1
    return peers


def _live_sources(node):
    d = node.shm_download(GROUP, "f.bin")
    return sum(1 for v in (d or {}).get("sources", {}).values()
               if v["state"] == 1)


def test_seeder_uploads_about_one_copy(tmp_path):
    size = 16 << 20
    with WanBed(6, delay_ms=10, rate_mbit=100, workdir=tmp_path) as bed:
        r = swarm(bed, tmp_path, size, 4, timeout=120)
        print("4 leechers, 16 MiB, RTT 20 ms, 100 Mbit/s: %s" % r)
        nch = size // CHUNK
        ups = r["chunks_up"]
        seed = ups["seed-h1"]
        # every leecher got the whole file; the seeder sent each chunk
        # about once, the leechers the rest
        assert sum(r["chunks_down"].values()) == 4 * nch
        assert seed >= nch, ups
        assert seed <= 1.3 * nch, ups
        assert sum(ups.values()) - seed >= 4 * nch - seed
        reap_all()


def test_rtt_100ms_no_timeouts_one_flow_per_peer(tmp_path):
    size = 64 << 20
    with WanBed(4, delay_ms=50, rate_mbit=100, workdir=tmp_path) as bed:
        trk = NsTracker(bed, 0, tmp_path / "trk").start()
        seed, l0, l1 = ns_nodes(bed, trk, tmp_path,
                                [(1, "seed"), (2, "l0"), (3, "l1")])
        (tmp_path / "src").mkdir()
        want = make_file(str(tmp_path / "src" / "f.bin"), size, seed=3)
        seed.upload(str(tmp_path / "src" / "f.bin"), GROUP)
        t0 = time.monotonic()
        l0.download(GROUP, "f.bin", str(tmp_path / "l0.bin"))
        l1.download(GROUP, "f.bin", str(tmp_path / "l1.bin"))
        # flows into the seeder while both still download, once each
        # leecher knows the other (source list every 2 s) and the idle
        # links of workers that no longer own the seeder closed (1 s)
        late, both = [], None
        while time.monotonic() - t0 < 90:
            lines = [n.dl_line(GROUP, "f.bin") or "" for n in (l0, l1)]
            if any(ln[:3] in ("[C]", "[F]") for ln in lines):
                break
            if both is None and all(_live_sources(n) >= 2 for n in (l0, l1)):
                both = time.monotonic()
            if both is not None and time.monotonic() - both > 1.6:
                late.append(_flows(bed, 1, seed.port))
            time.sleep(0.2)
        for n in (l0, l1):
            last = n.wait_download(GROUP, "f.bin", 90)
            assert last.startswith("[C]"), last
        for n, p in ((l0, "l0.bin"), (l1, "l1.bin")):
            assert sha1_file(str(tmp_path / p)) == want
            bad = [ln for ln in n.log().splitlines()
                   if any(m in ln for m in TIMEOUT_MARKS)]
            assert not bad, bad
        # 4 downloader workers per node, two sources each: at most 2
        # flows per leecher node into the seeder (peer affinity) by the
        # end (links of workers that lost the seeder drain first)
        print("flows into the seeder late in the download: %s" % late)
        assert late, "the downloads ended too early to look"
        assert all(v <= 2 for v in late[-1].values()), late
        reap_all()


def _two_sources(tmp_path, size, slow_mbit, seed):
    """Two nodes share f.bin complete, one behind a 200 Mbit/s uplink and
    one behind slow_mbit; a third downloads it.  Returns the leecher's
    log and the chunks it took from each ({"fast": n, "slow": n})."""
    hosts = {1: {"up_mbit": 200, "down_mbit": 200},
             2: {"up_mbit": slow_mbit, "down_mbit": 200},
             3: {"up_mbit": 200, "down_mbit": 200}}
    with WanBed(4, delay_ms=10, rate_mbit=200, hosts=hosts,
                workdir=tmp_path) as bed:
        trk = NsTracker(bed, 0, tmp_path / "trk").start()
        fast, slow, leech = ns_nodes(bed, trk, tmp_path,
                                     [(1, "fast"), (2, "slow"), (3, "lee")])
        (tmp_path / "src").mkdir()
        path = str(tmp_path / "src" / "f.bin")
        want = make_file(path, size, seed=seed)
        fast.upload(path, GROUP)
        slow.upload(path, GROUP)
        _download(leech, str(tmp_path / "lee.bin"))
        assert sha1_file(str(tmp_path / "lee.bin")) == want
        # what the leecher took from each (an uploader's own count also
        # has what it wrote into a socket that was then cut)
        srcs = leech.shm_download(GROUP, "f.bin")["sources"]
        got = {"fast": srcs[fast.addr]["chunks"],
               "slow": srcs[slow.addr]["chunks"]}
        log = leech.log()
        reap_all()
    assert sum(got.values()) == size // CHUNK, got
    return log, got


def test_narrow_source_gets_fewer_chunks(tmp_path):
    log, got = _two_sources(tmp_path, 32 << 20, 20, 4)
    print("chunks from the 200 Mbit/s source %(fast)d, from the 20 Mbit/s "
          "one %(slow)d" % got)
    # 10:1 in capacity; the narrow one well under a third of the fast
    assert got["slow"] * 3 < got["fast"], got


def test_endgame_asks_a_second_peer_and_cancels_the_loser(tmp_path):
    # a 4 Mbit/s uplink takes a second per chunk: whatever the leecher
    # asked of it first is still coming when the fast source is done
    log, got = _two_sources(tmp_path, 8 << 20, 4, 6)
    # the slow peer's replies are cut off by the endgame, as a chunk that
    # came from the fast peer first or, when the fast peer finished the
    # whole download before the endgame looked, as replies of a download
    # that ended (the same cancel)
    cancelled = [ln for ln in log.splitlines()
                 if "came from another peer first" in ln
                 or "ended before its reply came" in ln]
    print("cancelled: %s; chunks: %s" % (cancelled, got))
    assert cancelled, log[-3000:]
    assert got["slow"] < 8, got


def _bed_file(bed, tmp_path, hosts_users, size, seed):
    """A tracker on host 0, logged-in nodes on the given (host, user)s, a
    random file f.bin of size bytes in tmp_path/src; (nodes, its path,
    its SHA1)."""
    trk = NsTracker(bed, 0, tmp_path / "trk").start()
    nodes = ns_nodes(bed, trk, tmp_path, hosts_users)
    (tmp_path / "src").mkdir()
    path = str(tmp_path / "src" / "f.bin")
    return nodes, path, make_file(path, size, seed=seed)


def _view(shm, idx, addr):
    """(chunks download idx's map shows for source addr, chunk indices
    that source pushed, 1 while it pushes), or None before it is
    known."""
    v = shm.dl_src_views(idx).get(addr)
    return None if v is None else (v["map"], v["pushed"], v["push"])


def test_leechers_push_new_chunks(tmp_path):
    # the seeder's 40 Mbit/s uplink makes the two downloads last a few
    # seconds; its super-seeding sends each leecher other chunks, which
    # the two then pass to each other
    size = 16 << 20
    hosts = {1: {"up_mbit": 40, "down_mbit": 200}}
    with WanBed(4, delay_ms=10, rate_mbit=200, hosts=hosts,
                workdir=tmp_path) as bed:
        (seed, la, lb), path, want = _bed_file(
            bed, tmp_path, [(1, "seed"), (2, "la"), (3, "lb")], size, 8)
        seed.upload(path, GROUP)
        la.download(GROUP, "f.bin", str(tmp_path / "la.bin"))
        lb.download(GROUP, "f.bin", str(tmp_path / "lb.bin"))
        # lb's view of la while both download: how often it grew
        views = NodeShm(lb.state_dir)
        try:
            idx, seen, grew, pushing = None, [], 0, 0
            t0 = time.monotonic()
            while time.monotonic() - t0 < 60:
                if idx is None:
                    idx = views.find_dl(GROUP, "f.bin")
                v = _view(views, idx, la.addr) if idx is not None else None
                if v is not None:
                    if seen and v[0] > seen[-1][0]:
                        grew += 1
                    pushing |= v[2]
                    seen.append(v)
                if idx is not None and views.dl_progress(idx)[0] >= 3:
                    break
                time.sleep(0.05)
        finally:
            views.close()
        for n, p in ((la, "la.bin"), (lb, "lb.bin")):
            last = n.wait_download(GROUP, "f.bin", 60)
            assert last.startswith("[C]"), last
            assert sha1_file(str(tmp_path / p)) == want
        pushed = seen[-1][1] if seen else 0
        sent = la.shm_stats()["haves_sent"]
        print("lb's view of la grew %d times, %d chunks pushed to it "
              "(la's uploaders pushed %d), last view %s"
              % (grew, pushed, sent, seen[-1:]))
        reap_all()
    # la promised pushes, pushed, and lb's view of it moved far more
    # often than a poll every 3 s would move it
    assert pushing, seen[-5:]
    assert pushed >= 4 and sent >= pushed, (pushed, sent)
    assert grew >= 4, (grew, seen)


def _two_sources_one_lost(tmp_path, lose):
    """Sources s1, s2 (complete, 50 Mbit/s uplinks), leecher at 100 ms
    RTT; lose(bed, s1) while GETs to s1 are in flight.  Returns (seconds
    from the loss until no GET to s1 was in flight, the leecher's log,
    chunks from each source)."""
    size = 24 << 20
    hosts = {1: {"up_mbit": 50, "down_mbit": 200},
             2: {"up_mbit": 50, "down_mbit": 200}}
    with WanBed(4, delay_ms=50, rate_mbit=200, hosts=hosts,
                workdir=tmp_path) as bed:
        (s1, s2, lee), path, want = _bed_file(
            bed, tmp_path, [(1, "s1"), (2, "s2"), (3, "lee")], size, 9)
        s1.upload(path, GROUP)
        s2.upload(path, GROUP)
        lee.download(GROUP, "f.bin", str(tmp_path / "lee.bin"))
        views = NodeShm(lee.state_dir)
        try:
            idx, v, t0 = None, {}, time.monotonic()
            # both sources in use and a few chunks in: s1 owes some
            while time.monotonic() - t0 < 30:
                idx = idx if idx is not None else views.find_dl(GROUP,
                                                                "f.bin")
                v = views.dl_src_views(idx) if idx is not None else {}
                a, b = v.get(s1.addr), v.get(s2.addr)
                if a and b and a["chunks"] >= 2 and b["chunks"] >= 2 \
                        and a["inflight"] > 0:
                    break
                time.sleep(0.02)
            assert v.get(s1.addr, {}).get("inflight"), v
            owed = v[s1.addr]["inflight"]
            t_lost = time.monotonic()
            lose(bed, s1)
            released = None
            while time.monotonic() - t_lost < 20:
                if views.dl_src_views(idx)[s1.addr]["inflight"] == 0:
                    released = time.monotonic() - t_lost
                    break
                time.sleep(0.01)
        finally:
            views.close()
        last = lee.wait_download(GROUP, "f.bin", 60)
        assert last.startswith("[C]"), last
        assert sha1_file(str(tmp_path / "lee.bin")) == want
        srcs = lee.shm_download(GROUP, "f.bin")["sources"]
        got = {"s1": srcs[s1.addr]["chunks"], "s2": srcs[s2.addr]["chunks"]}
        log = lee.log()
        addr1 = s1.addr
        reap_all()
    assert sum(got.values()) == size // CHUNK, got
    print("%d GETs owed by s1 released %.2f s after its loss; chunks %s"
          % (owed, released if released is not None else -1, got))
    return released, [ln for ln in log.splitlines() if addr1 in ln], got


def test_killed_source_replaced_within_rtts(tmp_path):
    released, lines, got = _two_sources_one_lost(
        tmp_path, lambda bed, s1: s1.kill())
    # the kill closes the link (RST or FIN) at once: what s1 owed goes
    # back within a few RTTs (100 ms each), never after a deadline
    assert released is not None and released < 1.5, (released, lines)
    assert not [ln for ln in lines if "timed out" in ln
                or "too slow" in ln], lines
    assert any("closed by peer" in ln or "read failed" in ln
               for ln in lines), lines


def test_cut_source_replaced_within_its_nobyte_deadline(tmp_path):
    released, lines, got = _two_sources_one_lost(
        tmp_path, lambda bed, s1: bed.partition([1], [3]))
    # no byte comes back, nothing closes the link: what s1 owed goes to
    # s2 by the endgame (the last chunks asked of a second peer, the
    # loser's replies cancelled) or the no-byte deadline of a 100 ms
    # link (16 RTTs and a chunk's time, at least 5 s), whichever comes
    # first -- well before the fixed 10 s peer timeout either way
    assert released is not None and released < 8.0, (released, lines)
    # (if s2 finished the whole download first, s1's replies are
    # cancelled as those of an ended download: the same cancel)
    assert any("timed out" in ln or "came from another peer first" in ln
               or "ended before its reply came" in ln
               for ln in lines), lines
