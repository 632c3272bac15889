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
from concurrent.futures import ThreadPoolExecutor

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


def ns_tx_bytes(pid):
    """Bytes sent by the host (network namespace) process pid is in: the
    sum of tx_bytes over its interfaces but lo (/proc/PID/net/dev is that
    of the process's namespace; one read, no process started)."""
    try:
        with open("/proc/%d/net/dev" % pid) as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return None
    tx = 0
    for ln in lines:
        name, _, rest = ln.partition(":")
        if name.strip() != "lo":
            tx += int(rest.split()[8])
    return tx


def ns_tcp_counts(pid):
    """{counter: value} of the Tcp line of /proc/PID/net/snmp (that of
    the process's network namespace): OutSegs, RetransSegs, ..."""
    try:
        with open("/proc/%d/net/snmp" % pid) as f:
            rows = [ln.split()[1:] for ln in f if ln.startswith("Tcp:")]
    except OSError:
        return {}
    return dict(zip(rows[0], (int(v) for v in rows[1]))) if len(rows) == 2 \
        else {}


def _emu_drops(bed):
    """{host: (drop_up, drop_down)} packets from the emulator, or None."""
    try:
        return {h["host"]: (h["drop_up"], h["drop_down"])
                for h in bed.stats() if h.get("ev") == "host"}
    except (RuntimeError, OSError, ValueError):
        return None


def uplink_phases(samples, rate_mbit, done_s):
    """Where the seeder's uplink idled, from (seconds, bytes) samples of
    the chunks the leechers took from it (verified), about every 0.1 s from
    download_file on: the first chunk, MiB by 1, 2 and 5 s and what
    the cap allowed by 5 s from the first chunk on, its last chunk against
    the last leecher's end, and the seconds of samples between the two
    in which it fed less than half its cap."""
    if len(samples) < 2 or not rate_mbit:
        return {}
    t0, b0 = samples[0]
    total = samples[-1][1] - b0
    cap = rate_mbit * 1e6 / 8                       # bytes/s
    first = next((t for t, b in samples if b > b0), None)
    last = next((t for t, b in samples if b - b0 >= total), None)

    def sent_by(s):
        return max([b - b0 for t, b in samples if t <= s] or [0])
    r = {"first_data_s": first, "last_data_s": last,
         "last_leecher_s": round(done_s, 2),
         "seeder_mib": round(total / 2**20, 1)}
    for s in (1, 2, 5):
        r["mib_by_%ds" % s] = round(sent_by(s) / 2**20, 1)
    if first is not None:
        r["cap_mib_by_5s"] = round(max(0, 5 - first) * cap / 2**20, 1)
    if first is not None and last is not None:
        idle = 0.0
        for (ta, ba), (tb, bb) in zip(samples, samples[1:]):
            if first <= ta and tb <= last and tb > ta \
                    and (bb - ba) / (tb - ta) < cap / 2:
                idle += tb - ta
        r["idle_s"] = round(idle, 2)
    return r


def swarm(bed, tmpdir, size, leechers, timeout=300, trace=None,
          rate_mbit=None):
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
    tx0 = ns_tx_bytes(seeder.proc.pid)
    emu0 = _emu_drops(bed)
    tcp0 = ns_tcp_counts(seeder.proc.pid)
    fed = [(0.0, 0)]        # (seconds, bytes the leechers took of the seeder)
    t0 = time.monotonic()
    # the leechers start at once: download_file asks the tracker (a round
    # trip or two) before it answers, so one after the other the last
    # leecher would start 1.5 RTT x its place late
    with ThreadPoolExecutor(len(leech)) as pool:
        dests = list(pool.map(lambda n: (n.download(
            GROUP, "f.bin", os.path.join(tmpdir, "out-%s.bin" % n.user)),
            round(time.monotonic() - t0, 3)), leech))
    started = [t for _, t in dests]     # when download_file answered
    dests = [d for d, _ in dests]
    # the clock is read from the nodes' segments (the download's state
    # DONE or FAILED), not by asking each node's CLI 20 times a second:
    # on a 2-core machine that polling took CPU from the swarm it timed
    views = {n.name: NodeShm(n.state_dir) for n in nodes}
    done = {}                       # name -> seconds, when first seen done
    next_sample, next_tx = 0.0, 0.1
    try:
        idx = {}
        while len(done) < len(leech):
            assert time.monotonic() - t0 < timeout, ("not done", done)
            if time.monotonic() - t0 >= next_tx:
                next_tx += 0.1
                fed.append((round(time.monotonic() - t0, 3), CHUNK * sum(
                    views[n.name].dl_src_views(idx[n.name]).get(
                        seeder.addr, {}).get("chunks", 0)
                    for n in leech if idx.get(n.name) is not None)))
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
    tcp1, tx1 = ns_tcp_counts(seeder.proc.pid), ns_tx_bytes(seeder.proc.pid)
    emu1 = _emu_drops(bed)
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
    r = {"size": size, "leechers": leechers, "wall_s": round(wall, 2),
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
         "fair_holds": seeder.shm_stats().get("fair_holds", 0),
         "seeder_up": uplink_phases(fed, rate_mbit, wall)}
    # what the seeder's host offered its uplink (the emulator drops what
    # overflows its queue: TCP sends that again), its TCP segments sent
    # and sent again, while the clock ran
    r["seeder_up"]["started_s"] = started
    if tx0 is not None and tx1 is not None:
        r["seeder_up"]["offered_mib"] = round((tx1 - tx0) / 2**20, 1)
    r["seeder_up"].update({k.lower(): tcp1.get(k, 0) - tcp0.get(k, 0)
                           for k in ("OutSegs", "RetransSegs")})
    # packets the emulator dropped at the seeder's uplink queue and at
    # the leechers' downlink queues (full: one BDP each)
    if emu0 and emu1:
        r["seeder_up"]["drop_up"] = emu1[1][0] - emu0[1][0]
        r["seeder_up"]["leech_drop_down"] = sum(
            emu1[h][1] - emu0[h][1] for h in range(2, 2 + leechers))
    if trace is not None:
        r["seeder_fed"] = fed
    return r


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
                r = swarm(bed, tmp, size, a.leechers, a.timeout, trace,
                          a.rate)
                if a.trace:
                    with open(a.trace, "w") as f:
                        json.dump({"nodes": trace,
                                   "seeder_fed": r.pop("seeder_fed")}, f)
                cpu = bed.emu_cpu_s()
        finally:
            cleanup()
    r.update({"delay_ms": a.delay, "rate_mbit": a.rate, "loss_pct": a.loss,
              "emu_cpu_s": cpu})
    print(json.dumps(r))


if __name__ == "__main__":
    main()
