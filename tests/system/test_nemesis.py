"""
test_nemesis.py -- randomized faults against a 3-tracker cluster.

Purpose: under concurrent client writes (cluster.Writer: fail over, same
request id on retry, every acknowledged write recorded), a nemesis draws
from a printed seed a sequence of faults: SIGKILL a tracker (then
restart it), SIGSTOP it (then SIGCONT), SIGKILL its sync process,
partition two trackers or isolate one (fault proxies on every sync
link: blackhole, drop or reset), slow the links (delay).  At most one
process fault and one network fault at a time, and never every tracker
down.  At the end everything is healed and the test requires equal
digests on all trackers and every acknowledged write present.

Duration: TESSERA_NEMESIS_S seconds of faults (default 55, so the test
takes about 65 s in `make check`); TESSERA_NEMESIS_SEED replays a
run.  Soak: TESSERA_NEMESIS_S=1800 /usr/bin/python3 -m pytest
tests/system/test_nemesis.py -q -s

No locks; every wait is bounded; every process is stopped by pid (the
cluster's trackers and proxies are reaped by the conftest fixture).
"""

import os
import random
import time

from cluster import Cluster, start_writers, stop_writers, assert_writers_ok
from tessera import kill_pid

DURATION = float(os.environ.get("TESSERA_NEMESIS_S", "55"))
WRITERS = 4


class Nemesis:
    def __init__(self, cl, rnd, log):
        self.cl = cl
        self.rnd = rnd
        self.log = log
        self.proc = None        # (kind, tracker, undo data, until)
        self.net = None

    def _start_proc(self, now):
        cl, r = self.cl, self.rnd
        i = r.choice(cl.ids())
        kind = r.choice(["kill", "kill", "pause", "sync"])
        hold = r.uniform(0.5, 5.0)
        if kind == "kill":
            cl.kill(i)
            self.proc = ("kill", i, None, now + hold)
        elif kind == "pause":
            pids = cl.pause(i)
            self.proc = ("pause", i, pids, now + hold)
        else:
            p = cl.sync_pid(i)
            if p:
                kill_pid(p)
            self.proc = ("sync", i, p, now + r.uniform(0.2, 1.0))
        self.log("start %s tracker %d for %.1fs" % (kind, i, hold))

    def _end_proc(self):
        kind, i, data, _ = self.proc
        if kind == "kill":
            self.cl.restart(i, linked=False)
        elif kind == "pause":
            self.cl.resume(data)
        self.log("end %s tracker %d" % (kind, i))
        self.proc = None

    def _start_net(self, now):
        cl, r = self.cl, self.rnd
        kind = r.choice(["partition", "partition", "isolate", "delay"])
        hold = r.uniform(0.5, 6.0)
        if kind == "partition":
            a, b = r.sample(cl.ids(), 2)
            mode = r.choice(["blackhole", "drop", "reset"])
            cl.partition(a, b, mode)
            what = "partition %d|%d (%s)" % (a, b, mode)
        elif kind == "isolate":
            a = r.choice(cl.ids())
            mode = r.choice(["blackhole", "drop"])
            cl.isolate(a, mode)
            what = "isolate %d (%s)" % (a, mode)
        else:
            ms = r.choice([20, 100, 300])
            for p in cl.px.values():
                p.set_mode("delay", ms)
            what = "delay %d ms on every link" % ms
        self.net = (what, now + hold)
        self.log("start %s for %.1fs" % (what, hold))

    def _end_net(self):
        self.cl.heal()
        self.log("end %s" % self.net[0])
        self.net = None

    def step(self):
        now = time.monotonic()
        if self.proc and now >= self.proc[3]:
            self._end_proc()
        if self.net and now >= self.net[1]:
            self._end_net()
        if self.proc is None and self.rnd.random() < 0.5:
            self._start_proc(now)
        if self.net is None and self.rnd.random() < 0.5:
            self._start_net(now)

    def end_all(self):
        if self.proc:
            self._end_proc()
        if self.net:
            self._end_net()


def test_nemesis(tmp_path):
    seed = int(os.environ.get("TESSERA_NEMESIS_SEED",
                              str(random.SystemRandom().getrandbits(32))))
    print("nemesis seed %d (TESSERA_NEMESIS_SEED=%d replays it), %.0fs"
          % (seed, seed, DURATION))
    rnd = random.Random(seed)
    t0 = time.monotonic()
    events = []

    def log(msg):
        line = "%7.2fs %s" % (time.monotonic() - t0, msg)
        events.append(line)
        print(line)

    cl = Cluster(tmp_path, 3, proxies=True).start()
    ws = start_writers(cl, WRITERS, "n", seed=seed, pause=0.02)
    nem = Nemesis(cl, rnd, log)
    end = time.monotonic() + DURATION
    try:
        while time.monotonic() < end:
            nem.step()
            time.sleep(rnd.uniform(0.2, 1.5))
        nem.end_all()
        for i in cl.ids():
            if not cl.alive(i):
                cl.restart(i, linked=False)
        cl.wait_linked(timeout=30)
        log("healed; stopping writers")
        stop_writers(ws)
        text = assert_writers_ok(ws, min_acked=20)
        d, st, took = cl.converge(timeout=60)
        log("converged in %.2fs" % took)
        n_users, n_groups = cl.check_acked(ws)
        cl.converge(timeout=60)
        print(text)
        print("checked %d users, %d groups acked; seed %d"
              % (n_users, n_groups, seed))
    except AssertionError as e:
        raise AssertionError("nemesis seed %d\n%s\n%s"
                             % (seed, "\n".join(events), e))
