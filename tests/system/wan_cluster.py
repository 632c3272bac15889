"""
wan_cluster.py -- the Tessera cluster on separate emulated hosts: three
trackers, each in its own WAN bed host, and N nodes in N more hosts, all
trackers on one port and all nodes on another (as on real machines), and
the acceptance scenarios that test_wan_cluster.py asserts on and
bench/wan_cluster.sh (`make bench`, `make soak`) times.

Purpose: WanCluster starts the trackers of one cluster (one
tracker_info.txt listing 10.77.0.1..3:TRK_PORT, one PKI) and asks each
its STATUS with `tracker --status` run inside its own host (the root
namespace cannot reach a host).  The scenarios, each returning its
figures (seconds, chunk counts) and asserting what must hold:

  multi_source       a seeder, one first leecher, then the rest at once;
                     every copy SHA1-checked, each later one served by
                     the seeder and by another holder (the leecher's own
                     per-source chunk counts)
  tracker_partition  tracker 1's host cut from trackers 2 and 3 (wanemu
                     loss 100 % on those pairs), a write on each side,
                     digests apart while cut, equal after the heal, each
                     side's write visible on the other
  tracker_kill       tracker 1 SIGKILLed: every node answers list_files
                     and a new download completes through trackers 2, 3;
                     tracker 1 restarted converges to their digest
  seeder_partition   a leecher mid-download (its host's download capped)
                     when the seeder's host is cut from everyone; the
                     copy completes from the other holders

    python3 wan_cluster.py --nodes 20 --size 64M      (root)
        prints one JSON line of figures per scenario and a summary

Locking: none (the node classes' reader threads aside).

Crash behaviour: every tracker and node is a procs.Proc inside a bed
host (reaped by pid by the conftest fixture or reap_all()), and the bed's
close() kills whatever is left in its namespaces and deletes them; the
segments are named after the temp dirs (unlinked by the conftest
fixture or by main()).
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tessera  # noqa: E402
from nodes import make_file, sha1_file  # noqa: E402
from procs import SEGMENTS, reap_all, unlink_segment, wait_until  # noqa
from proto import parse_status  # noqa: E402
from wan_swarm import GROUP, NsTracker, ns_nodes, ns_run_client  # noqa
from wanbed import WanBed  # noqa: E402

TRK_PORT = 7000             # every tracker's port, on its own host
NODE_PORT = 7001            # every node's port, on its own host
STATUS_WAIT_S = 10          # one `tracker --status`, bounded
CHUNK_B = 512 << 10
SETTLE_S = 6.5              # two client heartbeats (TS_HEARTBEAT_MS) + slack


class WanCluster:
    """ntrk trackers on bed hosts 0..ntrk-1 (tracker i+1 on host i)."""

    def __init__(self, bed, tmpdir, ntrk=3, workers=2, **kw):
        self.bed, self.tmp, self.ntrk = bed, str(tmpdir), ntrk
        os.makedirs(self.tmp, exist_ok=True)
        self.info = self._write_info("tracker_info.txt",
                                     ["%s:%d" % (bed.addr(i), TRK_PORT)
                                      for i in range(ntrk)])
        self.trackers = [NsTracker(bed, i, os.path.join(self.tmp,
                                                        "t%d" % (i + 1)),
                                   info=self.info, tid=i + 1,
                                   workers=workers, **kw)
                         for i in range(ntrk)]

    def _write_info(self, name, addrs):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write("# the WAN cluster\n")
            for a in addrs:
                f.write(a + "\n")
        return path

    def ids(self):
        return list(range(1, self.ntrk + 1))

    def t(self, tid):
        return self.trackers[tid - 1]

    def host(self, tid):
        return tid - 1

    def start(self, timeout=30):
        for t in self.trackers:     # one at a time: the first makes the PKI
            t.start()
        self.wait_linked(self.ids(), timeout)
        return self

    def info_only(self, tid):
        """A tracker_info.txt through which a client reaches tracker tid
        only: its one line (a line is only an address; the tracker's
        certificate says which one it is)."""
        return self._write_info("only-%d.txt" % tid, ["%s:%d" % (
            self.bed.addr(self.host(tid)), TRK_PORT)])

    # -- STATUS, from the tracker's own host ----------------------------------

    def status(self, tid):
        """`tracker --status` of tracker tid as {key: value}, or None."""
        p = self.bed.run(self.host(tid),
                         [os.path.join(tessera.BIN, "tracker"), "--status",
                          self.info, str(tid)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, _ = p.communicate(timeout=STATUS_WAIT_S)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=5)
            return None
        return parse_status(out) if p.returncode == 0 else None

    def peers(self, tid):
        s = self.status(tid) or {}
        return dict(p.split("=", 1) for p in s.get("peers", "").split(",")
                    if "=" in p)

    def wait_linked(self, ids, timeout=30):
        def linked():
            for i in ids:
                up = self.peers(i)
                if any(up.get(str(j)) != "up" for j in ids if j != i):
                    return False
            return True
        assert wait_until(linked, timeout, 0.2), \
            "trackers %s not linked within %ss: %r" % (
                ids, timeout, {i: self.status(i) for i in ids})

    def digests(self, ids):
        return {i: (self.status(i) or {}).get("digest") for i in ids}

    def converge(self, ids=None, timeout=60):
        """Seconds until the trackers in ids show one digest twice in a
        row (bounded); returns (digest, seconds)."""
        ids = ids or self.ids()
        t0 = time.monotonic()
        prev, last = None, {}
        while time.monotonic() - t0 < timeout:
            last = self.digests(ids)
            ds = set(last.values())
            if len(ds) == 1 and None not in ds:
                d = ds.pop()
                if d == prev:
                    return d, time.monotonic() - t0
                prev = d
            else:
                prev = None
            time.sleep(0.2)
        raise AssertionError("no convergence of %s within %ss: %r"
                             % (ids, timeout, last))

    def write(self, host, tid, user):
        """create_user through tracker tid only, from bed host `host`."""
        rc, out, err = ns_run_client(self.bed, host, self.info_only(tid),
                                     ["create_user %s pw" % user], self.tmp)
        assert rc == 0 and out == ["user %s created" % user], \
            (tid, rc, out, err[-2000:])

    def login_ok(self, host, tid, user):
        rc, out, err = ns_run_client(self.bed, host, self.info_only(tid),
                                     ["login %s pw" % user], self.tmp)
        return rc == 0 and out[:1] == ["logged in as %s" % user]

    def nodes(self, hosts_users, **kw):
        kw.setdefault("port", NODE_PORT)
        return ns_nodes(self.bed, self.trackers[0], self.tmp, hosts_users,
                        **kw)


# ---- scenarios ----------------------------------------------------------------

def _sources(node, name):
    return node.list_files(GROUP).get(name, (0, 0))[1]


def _wait_done(nodes, name, timeout, t0):
    """{node name: seconds since t0 when it showed [C]}; asserts [C]."""
    done = {}
    while len(done) < len(nodes):
        assert time.monotonic() - t0 < timeout, ("not done", name, done)
        for n in nodes:
            line = None if n.name in done else n.dl_line(GROUP, name)
            if line and line[:3] in ("[C]", "[F]"):
                assert line.startswith("[C]"), (n.name, line)
                done[n.name] = time.monotonic() - t0
        time.sleep(0.05)
    return done


def multi_source(wc, seed, first, rest, size, name="f.bin", timeout=300):
    """seed shares `name`; `first` takes it from the seed alone, then
    `rest` download at once from first and each other (and the seed for
    what no leecher holds)."""
    src = os.path.join(wc.tmp, "src-" + name)
    os.makedirs(src, exist_ok=True)
    want = make_file(os.path.join(src, name), size, seed=21)
    seed.upload(os.path.join(src, name), GROUP)
    t0 = time.monotonic()
    d0 = first.download(GROUP, name, os.path.join(wc.tmp, "%s-%s"
                                                  % (first.user, name)))
    t_first = _wait_done([first], name, timeout, t0)[first.name]
    assert sha1_file(d0) == want
    assert wait_until(lambda: all(_sources(n, name) >= 2 for n in rest),
                      30, 0.2), [_sources(n, name) for n in rest]
    t1 = time.monotonic()
    dests = [n.download(GROUP, name, os.path.join(wc.tmp, "%s-%s"
                                                  % (n.user, name)))
             for n in rest]
    done = _wait_done(rest, name, timeout, t1)
    for d in dests:
        assert sha1_file(d) == want, d
    # each leecher's own count of the chunks every source gave it
    total = (size + CHUNK_B - 1) // CHUNK_B
    seed_addr = "%s:%d" % (wc.bed.addr(seed.host), seed.port)
    got = {n.name: _got(n, name) for n in rest}
    for n in rest:
        assert sum(got[n.name].values()) == total, (n.name, got[n.name])
        # multi-source: at least two holders served it (the seeder is
        # asked only for chunks no leecher holds, so it may be none)
        assert len([v for v in got[n.name].values() if v > 0]) >= 2, \
            (n.name, got[n.name])
    from_seed = sum(g.get(seed_addr, 0) for g in got.values()) + total
    # every byte leaves the seeder about once: `first` had it all, so the
    # rest took at most one more copy from the seeder between them
    assert from_seed <= 2 * total, got
    return {"scenario": "multi_source", "size": size,
            "first_s": round(t_first, 2),
            "rest_wall_s": round(max(done.values()), 2),
            "rest_s_min_med_max": _mmm(done.values()),
            "chunks_from_seed": from_seed,
            "chunks_from_others": total * len(rest) + total - from_seed,
            "seed_copies": round(from_seed / total, 2)}


def _got(node, name):
    """{source addr: chunks} of node's download of name."""
    d = node.shm_download(GROUP, name) or {}
    return {a: s["chunks"] for a, s in d.get("sources", {}).items()}


def _mmm(vals):
    v = sorted(vals)
    return [round(v[0], 2), round(v[len(v) // 2], 2), round(v[-1], 2)]


def _logged_out(nodes):
    return [n for n in nodes if "not logged in" in n.cmd("status")]


def tracker_partition(wc, client_host, nodes=(), tag="p", relogin=False,
                      hold_s=0):
    """Tracker 1 (host 0) cut from trackers 2, 3; one write on each
    side; apart while cut; equal digests and both writes everywhere
    after the heal.  nodes: none of them may have lost its session (they
    kept talking to tracker 1 all along); relogin: count those that did
    and log them in again instead of failing (the bench goes on).
    hold_s: keep the cut that much longer after the writes."""
    one, others = [wc.host(1)], [wc.host(i) for i in wc.ids()[1:]]
    t0 = time.monotonic()
    wc.bed.partition(one, others)
    try:
        assert wait_until(lambda: set(wc.peers(1).values()) == {"down"},
                          30, 0.2), wc.status(1)
        t_seen = time.monotonic() - t0
        wc.write(client_host, 1, tag + "1")
        wc.write(client_host, 2, tag + "2")
        # the sides cannot have met: 1 lacks the write on 2, 2 and 3 agree
        d_other, _ = wc.converge(wc.ids()[1:], 30)
        d_one = wc.digests([1])[1]
        assert d_one is not None and d_one != d_other, (d_one, d_other)
        assert not wc.login_ok(client_host, 1, tag + "2")
        time.sleep(hold_s)
    finally:
        wc.bed.heal(one, others)
    t_heal = time.monotonic()
    cut_s = t_heal - t0
    digest, secs = wc.converge(None, 60)
    for tid in wc.ids():
        assert wc.login_ok(client_host, tid, tag + "1"), tid
        assert wc.login_ok(client_host, tid, tag + "2"), tid
    # a session the other side expired reaches the node at its next
    # heartbeat or two, after the expiry replicated back
    time.sleep(SETTLE_S if nodes else 0)
    gone = _logged_out(nodes)
    if relogin:
        for n in gone:
            n.login(n.user)
    else:
        assert not gone, ("sessions lost to a %.1f s cut between trackers"
                          % cut_s, [n.name for n in gone])
    return {"scenario": "tracker_partition", "cut_s": round(cut_s, 2),
            "down_seen_s": round(t_seen, 2),
            "converge_after_heal_s": round(time.monotonic() - t_heal, 2),
            "digest_equal_s": round(secs, 2),
            "nodes_logged_out": len(gone), "digest": digest}


def tracker_kill(wc, nodes, fetcher, seed, name="k.bin", size=4 << 20,
                 timeout=120):
    """SIGKILL tracker 1 (every node's first line): the nodes go on
    through trackers 2 and 3 (list_files, a new share, a new download);
    tracker 1 restarted converges to their digest."""
    t1 = wc.t(1)
    listed = set(nodes[0].list_files(GROUP))
    assert listed
    pids, gone = t1.kill_tree()
    assert gone, pids
    t0 = time.monotonic()
    for n in nodes:
        got = set(n.list_files(GROUP))
        assert got >= listed, (n.name, got, listed)
    t_list = time.monotonic() - t0
    src = os.path.join(wc.tmp, "src-" + name)
    os.makedirs(src, exist_ok=True)
    want = make_file(os.path.join(src, name), size, seed=23)
    seed.upload(os.path.join(src, name), GROUP)
    assert wait_until(lambda: _sources(fetcher, name) >= 1, 30, 0.2)
    t2 = time.monotonic()
    d = fetcher.download(GROUP, name, os.path.join(wc.tmp, "kill-" + name))
    secs = _wait_done([fetcher], name, timeout, t2)[fetcher.name]
    assert sha1_file(d) == want
    # back: tracker 1 catches up with what 2 and 3 took meanwhile
    t3 = time.monotonic()
    t1.start()
    wc.wait_linked(wc.ids(), 60)
    digest, _ = wc.converge(None, 60)
    return {"scenario": "tracker_kill", "all_nodes_answer_s": round(t_list, 2),
            "download_after_kill_s": round(secs, 2),
            "restart_converge_s": round(time.monotonic() - t3, 2),
            "digest": digest}


def seeder_partition(wc, seed, holders, leech, size, name="s.bin",
                     timeout=300, at=0.25):
    """leech downloads `name` (shared by seed, held by holders); when a
    fraction `at` is done the seeder's host is cut from every other
    host; the copy must complete from the holders."""
    src = os.path.join(wc.tmp, "src-" + name)
    os.makedirs(src, exist_ok=True)
    want = make_file(os.path.join(src, name), size, seed=25)
    seed.upload(os.path.join(src, name), GROUP)
    hd = [h.download(GROUP, name, os.path.join(wc.tmp, "%s-%s"
                                               % (h.user, name)))
          for h in holders]
    _wait_done(holders, name, timeout, time.monotonic())
    for d in hd:
        assert sha1_file(d) == want, d
    assert wait_until(lambda: _sources(leech, name) >= 1 + len(holders),
                      30, 0.2), _sources(leech, name)
    total = (size + CHUNK_B - 1) // CHUNK_B
    t0 = time.monotonic()
    dest = leech.download(GROUP, name, os.path.join(wc.tmp, "cut-" + name))

    def progress():
        return (leech.shm_download(GROUP, name) or {}).get("chunks_done", 0)
    assert wait_until(lambda: progress() >= at * total, timeout, 0.02)
    at_cut = progress()
    assert at_cut < total, "done before the cut: make it bigger or slower"
    seed_host = seed.host
    others = [h for h in range(wc.bed.n) if h != seed_host]
    wc.bed.partition([seed_host], others)
    t_cut = time.monotonic()
    try:
        secs = _wait_done([leech], name, timeout, t0)[leech.name]
        assert sha1_file(dest) == want
        got = _got(leech, name)       # the leecher's own count
    finally:
        wc.bed.heal([seed_host], others)
    seed_addr = "%s:%d" % (wc.bed.addr(seed_host), seed.port)
    from_seed = got.get(seed_addr, 0)
    from_holders = sum(v for a, v in got.items() if a != seed_addr)
    # what the seeder sent after the cut never arrived: the holders gave
    # every chunk the leecher lacked at the cut
    assert from_seed + from_holders == total, (got, total)
    assert from_holders >= total - at_cut, (got, total, at_cut)
    return {"scenario": "seeder_partition", "size": size,
            "chunks": total, "done_at_cut": at_cut,
            "download_s": round(secs, 2),
            "after_cut_s": round(time.monotonic() - t_cut, 2),
            "chunks_from_holders": from_holders,
            "chunks_from_seed": from_seed}


# ---- the whole run (bench/wan_cluster.sh) --------------------------------------

def run_all(tmp, nodes_n, size, delay, rate, leech_mbit, loss=0,
            out=None, hold_s=0):
    """3 trackers and nodes_n nodes (>= 5); every scenario; figures
    (each also printed to `out` as a JSON line when it is done)."""
    hosts = 3 + nodes_n
    leech_host = hosts - 1
    figs = []

    def done(f):
        figs.append(f)
        if out is not None:
            print(json.dumps(f), file=out, flush=True)
    with WanBed(hosts, delay_ms=delay, rate_mbit=rate, loss_pct=loss,
                hosts={leech_host: {"down_mbit": leech_mbit}},
                workdir=tmp) as bed:
        t0 = time.monotonic()
        wc = WanCluster(bed, tmp).start()
        ns = wc.nodes([(3 + i, "u%d" % i) for i in range(nodes_n)],
                      uploaders=2, downloaders=2 if nodes_n > 8 else 4)
        done({"scenario": "setup", "trackers": 3, "nodes": nodes_n,
              "setup_s": round(time.monotonic() - t0, 2)})
        seed, first, rest, leech = ns[0], ns[1], ns[2:-1], ns[-1]
        done(multi_source(wc, seed, first, rest, size))
        done(tracker_partition(wc, 3, ns, relogin=True, hold_s=hold_s))
        done(tracker_kill(wc, ns, leech, seed))
        done(seeder_partition(wc, seed, [first] + rest[:2], leech, size))
        done({"scenario": "summary",
                     "wall_s": round(time.monotonic() - t0, 2),
                     "emu_cpu_s": round(bed.emu_cpu_s(), 2)})
    return figs


def _size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.upper()
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def main(argv=None):
    ap = argparse.ArgumentParser(description="the cluster on a WAN bed")
    ap.add_argument("--nodes", type=int, default=20)
    ap.add_argument("--size", default="64M")
    ap.add_argument("--delay", type=float, default=25, help="one way, ms")
    ap.add_argument("--rate", type=float, default=100, help="Mbit/s")
    ap.add_argument("--leech-rate", type=float, default=50,
                    help="the cut scenario's leecher download, Mbit/s")
    ap.add_argument("--loss", type=float, default=0, help="percent")
    ap.add_argument("--cut-hold", type=float, default=0,
                    help="s the tracker partition lasts past its writes")
    a = ap.parse_args(argv)
    if a.nodes < 5:
        ap.error("--nodes: at least 5")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="tessera-wanc.") as tmp:
        try:
            run_all(tmp, a.nodes, _size(a.size), a.delay, a.rate,
                    a.leech_rate, a.loss, out=sys.stdout, hold_s=a.cut_hold)
        finally:
            reap_all()
            for name in SEGMENTS:       # ours only (named after tmp)
                unlink_segment(name)


if __name__ == "__main__":
    main()
