"""
wan_swarm.py -- Tessera on the WAN test bed: a tracker and nodes each in
their own emulated host (wanbed.py), and a one-seeder swarm scenario
that test_wan_swarm.py asserts on and bench/wan.sh times.

Purpose: NsTracker, NsNode and ns_run_client are tessera.Tracker,
nodes.Node and tessera.run_client started inside a bed host (`ip netns
exec`), bound to that host's address instead of 127.0.0.1; the
tracker_info.txt lists the tracker host's address.  Nodes and trackers
may share a port across hosts (their shm segments are named after their
state directories; wan_cluster.py runs every tracker on one port and
every node on another); distinct_port() is the single-tracker swarm's
habit.  swarm() runs one seeder and N leechers and returns the
leechers' times and the chunks each node sent.

    python3 wan_swarm.py --size 256M --leechers 4 --delay 25 [--loss 1]
        prints one JSON line: {"wall_s":..,"leecher_s":[..],...}

Locking: none (the node classes' own reader threads aside).

Crash behaviour: every process is a procs.Proc (reaped by pid by the
conftest fixture, or by reap_all() here) and runs inside a bed host, so
the bed's close() kills whatever is left in its namespaces anyway.
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tessera  # noqa: E402
from nodes import Node, make_file, sha1_file  # noqa: E402
from node_shm import NodeShm  # noqa: E402
from procs import SEGMENTS, reap_all, wait_until  # noqa: E402
from wanbed import WanBed  # noqa: E402

GROUP = "g"
DL_DONE, DL_FAILED = 3, 4           # node_dl_state_t
CHUNK = 512 << 10                   # TS_CHUNK_B
_ports = set()


def distinct_port():
    """A free port no other node of this process got (shm names)."""
    while True:
        p = tessera.free_port()
        if p not in _ports:
            _ports.add(p)
            return p


class NsTracker(tessera.Tracker):
    """A tracker inside bed host `host`, on that host's address.  info:
    a cluster's tracker_info.txt (line tid is this tracker's address);
    default a one-line file of its own on a port no other tracker of
    this process has."""

    def __init__(self, bed, host, tmpdir, info=None, tid=1, **kw):
        self.bed, self.host = bed, host
        os.makedirs(str(tmpdir), exist_ok=True)
        if info is None:
            port = distinct_port()
            info = os.path.join(str(tmpdir), "tracker_info.txt")
            with open(info, "w") as f:
                f.write("# a WAN bed tracker\n%s:%d\n"
                        % (bed.addr(host), port))
        tessera.Tracker.__init__(self, tmpdir, info=info, tid=tid, **kw)

    def argv(self):
        return self.bed.netns_argv(self.host, tessera.Tracker.argv(self))

    def addr(self):
        return "%s:%d" % (self.bed.addr(self.host), self.port)

    def start(self, timeout=15, preexec_fn=None):
        # the root namespace cannot reach it: the log line and the
        # workers tell it is up
        self.spawn(self.argv(), self.tmpdir)
        want = self.workers or 2
        ok = wait_until(lambda: self.proc.poll() is not None or (
            "ready on" in self.log() and len(self.worker_pids()) >= want),
            timeout)
        if self.proc.poll() is not None or not ok:
            raise AssertionError("tracker in %s did not start (rc=%s):\n%s"
                                 % (self.bed.names[self.host],
                                    self.proc.poll(), self.log()[-3000:]))
        return self


class NsNode(Node):
    """A node inside bed host `host`, listening on its address."""

    def __init__(self, bed, host, info, tmpdir, **kw):
        self.bed, self.host = bed, host
        kw.setdefault("port", distinct_port())
        Node.__init__(self, info, tmpdir, **kw)
        self.addr = "%s:%d" % (bed.addr(host), self.port)

    def argv(self):
        return self.bed.netns_argv(self.host, Node.argv(self))


class _NsClient(tessera.Client):
    """tessera.Client (a script on stdin) run inside a bed host."""

    def __init__(self, bed, host, info, tmpdir):
        self.bed, self.host = bed, host
        tessera.Client.__init__(self, info, tmpdir)

    def spawn(self, argv, cwd, **kw):
        argv = [("%s:%s" % (self.bed.addr(self.host), a.split(":", 1)[1])
                 if a.startswith("127.0.0.1:") else a) for a in argv]
        return tessera.Client.spawn(self, self.bed.netns_argv(self.host,
                                                              argv),
                                    cwd, **kw)


def ns_run_client(bed, host, info, lines, tmpdir, timeout=60):
    """run_client inside host: (rc, stdout lines, stderr)."""
    c = _NsClient(bed, host, info, tmpdir)
    try:
        c.send(lines)
        return c.finish(timeout)
    finally:
        c.reap()


def ns_nodes(bed, tracker, tmpdir, hosts_users, **node_kw):
    """Creates the users, starts one logged-in node per (host, user), all
    in GROUP (the first one owns it); returns the nodes.  node_kw: NsNode
    options (port, uploaders, downloaders, ...)."""
    users = [u for _, u in hosts_users]
    rc, out, err = ns_run_client(bed, hosts_users[0][0], tracker.info,
                                 ["create_user %s pw" % u for u in users],
                                 tmpdir)
    assert rc == 0 and out == ["user %s created" % u for u in users], \
        (rc, out, err[-2000:])
    nodes = []
    for host, user in hosts_users:
        n = NsNode(bed, host, tracker.info, tmpdir,
                   name="%s-h%d" % (user, host), **node_kw).start()
        n.user = user
        n.login(user)
        if not nodes:
            n.expect("create_group %s" % GROUP, "group %s created" % GROUP)
        else:
            n.expect("join_group %s" % GROUP,
                     "join request sent to %s" % GROUP)
            nodes[0].expect("accept_request %s %s" % (GROUP, user),
                            "%s accepted into %s" % (user, GROUP))
        nodes.append(n)
    return nodes


def swarm(bed, tmpdir, size, leechers, timeout=300, trace=None):
    """Host 0 tracker, host 1 seeder, hosts 2.. leechers (all start at
    once).  Returns a dict of figures (chunks_up counts what a leecher
    served while it was still downloading, too); asserts every copy's
    SHA1.  trace: a list that gets (seconds, [(bytes_up, bytes_down) per
    node, seeder first]) about every 0.25 s while the clock runs."""
    tmpdir = str(tmpdir)
    trk = NsTracker(bed, 0, os.path.join(tmpdir, "trk")).start()
    nodes = ns_nodes(bed, trk, tmpdir,
                     [(1, "seed")] + [(2 + i, "l%d" % i)
                                      for i in range(leechers)])
    seeder, leech = nodes[0], nodes[1:]
    src = os.path.join(tmpdir, "files-seed")
    os.makedirs(src, exist_ok=True)
    want = make_file(os.path.join(src, "f.bin"), size, seed=11)
    seeder.upload(os.path.join(src, "f.bin"), GROUP)
    t0 = time.monotonic()
    dests = [n.download(GROUP, "f.bin", os.path.join(tmpdir, "out-%s.bin"
                                                     % n.user))
             for n in leech]
    # the clock is read from the nodes' segments (the download's state
    # DONE or FAILED), not by asking each node's CLI 20 times a second:
    # on a 2-core machine that polling took CPU from the swarm it timed
    views = {n.name: NodeShm(n.state_dir) for n in nodes}
    done = {}                       # name -> seconds, when first seen done
    next_sample = 0.0
    try:
        idx = {}
        while len(done) < len(leech):
            assert time.monotonic() - t0 < timeout, ("not done", done)
            if trace is not None and time.monotonic() - t0 >= next_sample:
                next_sample += 0.25
                trace.append((round(time.monotonic() - t0, 3),
                              [(v["bytes_up"], v["bytes_down"]) for v in
                               (views[n.name].stats() for n in nodes)]))
            for n in leech:
                if n.name in done:
                    continue
                if idx.get(n.name) is None:
                    idx[n.name] = views[n.name].find_dl(GROUP, "f.bin")
                if idx[n.name] is not None and views[n.name].dl_progress(
                        idx[n.name])[0] in (DL_DONE, DL_FAILED):
                    done[n.name] = time.monotonic() - t0
            time.sleep(0.05)
    finally:
        for v in views.values():
            v.close()
    for n in leech:
        line = n.dl_line(GROUP, "f.bin")
        assert line and line.startswith("[C]"), (n.name, line)
    times = [done[n.name] for n in leech]
    names = {n.addr: n.name for n in nodes}
    wall = max(times)
    for d in dests:
        assert sha1_file(d) == want, d
    ups = {n.name: n.shm_stats()["chunks_up"] for n in nodes}
    nch = (size + CHUNK - 1) // CHUNK
    took = {n.name: {names.get(a, a): v["chunks"] for a, v in
                     n.shm_download(GROUP, "f.bin")["sources"].items()}
            for n in leech}
    return {"size": size, "leechers": leechers, "wall_s": round(wall, 2),
            "seeder_copies": round(ups[seeder.name] / nch, 3),
            "leecher_s": [round(t, 2) for t in times],
            "mib_s": round(size * leechers / wall / 2**20, 2),
            "chunks_up": ups,
            "chunks_down": {n.name: n.shm_stats()["chunks_down"]
                            for n in leech},
            "haves_sent": {n.name: n.shm_stats()["haves_sent"]
                           for n in leech},
            # chunks each leecher took from each node (by name), and
            # from the seeder alone, leechers in order
            "took": took,
            "from_seeder": [took[n.name].get(seeder.name, 0) for n in leech],
            "fair_holds": seeder.shm_stats().get("fair_holds", 0)}


def cleanup():
    """Stops every process by pid; unlinks their shm segments (SIGKILLed
    programs leave them; ours only)."""
    reap_all()
    for name in SEGMENTS:
        try:
            os.unlink(os.path.join("/dev/shm", name))
        except OSError:
            pass


def parse_size(text):
    """'64M' -> 67108864 (K, M, G suffixes; a plain number is bytes)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.upper()
    return int(t[:-1]) * units[t[-1]] if t[-1] in units else int(t)


def main(argv=None):
    ap = argparse.ArgumentParser(description="a Tessera swarm on a WAN bed")
    ap.add_argument("--size", default="256M")
    ap.add_argument("--leechers", type=int, default=4)
    ap.add_argument("--delay", type=float, default=25, help="one way, ms")
    ap.add_argument("--rate", type=float, default=100, help="Mbit/s")
    ap.add_argument("--loss", type=float, default=0, help="percent")
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--keep", help="run in a new directory under KEEP "
                    "and leave it (logs, state) instead of a temporary one")
    ap.add_argument("--trace", help="write the seeder's and leechers' "
                    "bytes every 0.25 s to this JSON file")
    a = ap.parse_args(argv)
    # a SIGTERM (bench/wan.sh's timeout) unwinds like Ctrl-C: the bed's
    # teardown runs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = parse_size(a.size)
    with tempfile.TemporaryDirectory(prefix="tessera-wan.") as tmp:
        if a.keep:
            # the nodes' state dirs and logs stay for a look afterwards
            tmp = tempfile.mkdtemp(prefix="tessera-wan.", dir=a.keep)
        try:
            with WanBed(2 + a.leechers, delay_ms=a.delay, rate_mbit=a.rate,
                        loss_pct=a.loss, workdir=tmp) as bed:
                trace = [] if a.trace else None
                r = swarm(bed, tmp, size, a.leechers, a.timeout, trace)
                if a.trace:
                    with open(a.trace, "w") as f:
                        json.dump(trace, f)
                cpu = bed.emu_cpu_s()
        finally:
            cleanup()
    r.update({"delay_ms": a.delay, "rate_mbit": a.rate, "loss_pct": a.loss,
              "emu_cpu_s": cpu})
    print(json.dumps(r))


if __name__ == "__main__":
    main()
