"""
cluster.py -- helpers for the tracker-cluster fault tests.

Purpose: start N real ./tracker processes on 127.0.0.1, each with its own
data dir and one PKI for the cluster (<dir of the info files>/pki, made
by the first tracker to start; every raw connection here is TLS, through
proto.tls_connect), optionally with a fault proxy
(tests/tools/faultproxy.py) on every tracker-to-tracker link; read each tracker's STATUS (digest, vv,
peers, leader, sync pid); wait, bounded, until the live trackers report
equal digests; crash, pause, restart or wipe trackers and their sync
process; and run client writers (raw protocol, one thread each) that fail
over between trackers like the real client (same request id on retry)
and record every acknowledged write, so a test can check that none was
lost.

How the proxies sit on the links: the sync process of tracker i dials
every other tracker at the address its tracker_info.txt gives for it
(docs/REPLICATION.md: sync runs on the normal client port, no extra
option).  So with proxies each tracker i gets its own info file in which
line i is its real address (it listens there) and line j is the address
of proxy P(i->j), which forwards to tracker j.  Clients use the cluster's
shared info file with the real addresses, so only the sync links go
through the proxies.  partition(i, j) puts P(i->j) and P(j->i) into a
fault mode.

Locking: a Writer is a thread with its own sockets; its records are
appended under its own lock and read by the test after join().  The
proxies are threads of the test process (faultproxy.FaultProxy).

Crash behaviour: every tracker goes through tessera.Tracker, so it is in
procs.REGISTRY and the conftest fixture reaps it by pid; Cluster.close()
(also called at teardown through the registry) stops the proxies and
writers and CONTinues any process it stopped before it is killed.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import tessera
from procs import REGISTRY, children, free_port, kill_pid, wait_until
from proto import (DEFAULT, ERR_AUTH, ERR_BUSY, ERR_EXISTS, OK, Raw,
                   Unreachable, parse_groups, parse_status, pki_dir, pstr,
                   tracker_cert)
from tessera import write_info

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tools"))
import faultproxy  # noqa: E402

SESSION_TIMEOUT_MS = 120000     # raw writers send no heartbeats


# ---- one request, raw ---------------------------------------------------

class Conn(Raw):
    """One raw protocol connection to one tracker port that fails as
    Unreachable; cert: (crt, key) to present, default the test process's
    node certificate (LOGIN needs one; STATUS needs a tracker
    certificate, see Cluster.status)."""

    def __init__(self, port, timeout=2.0, cert=DEFAULT):
        self.timeout = timeout
        try:
            Raw.__init__(self, port, timeout, cert=cert)
        except (OSError, ValueError) as e:
            raise Unreachable("connect %d: %s" % (port, e))

    def call(self, mtype, payload, reqid, timeout=None):
        """(status, message, body) of the reply to reqid, within timeout
        seconds (default the connection's); raises Unreachable."""
        return self.exchange(mtype, payload, reqid, time.monotonic() +
                             (timeout or self.timeout))


_reqid_lock = threading.Lock()
_reqid_next = [int.from_bytes(os.urandom(4), "big") << 24]


def new_reqid():
    with _reqid_lock:
        _reqid_next[0] += 1
        return _reqid_next[0]


def one_request(port, mtype, payload, timeout=3.0, cert=DEFAULT):
    c = Conn(port, timeout, cert)
    try:
        return c.call(mtype, payload, new_reqid(), timeout)
    finally:
        c.close()


def parse_vv(text):
    """'1:5,2:7' -> {1: 5, 2: 7}."""
    vv = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        o, _, s = part.partition(":")
        vv[int(o)] = int(s)
    return vv


# ---- the cluster ----------------------------------------------------------

_QUOTA_ARGS = []


def lift_group_quota():
    """The writers' load is CREATE_GROUP without end, one user each: on
    trackers that have storage quotas the owned-groups one is lifted
    (a test may set it again: a later --quota wins)."""
    if not _QUOTA_ARGS:
        out = subprocess.run([os.path.join(tessera.BIN, "tracker"),
                              "--help"], capture_output=True, text=True,
                             timeout=10)
        _QUOTA_ARGS.append(["--quota", "user-groups=off"]
                           if "--quota" in out.stdout else [])
    return _QUOTA_ARGS[0]


class Cluster:
    """N trackers sharing one client-side tracker_info.txt."""

    def __init__(self, tmpdir, n=2, proxies=False, workers=2,
                 session_timeout=SESSION_TIMEOUT_MS, extra_args=()):
        self.tmp = str(tmpdir)
        os.makedirs(self.tmp, exist_ok=True)
        self.n = n
        self.ports = [free_port() for _ in range(n)]
        self.info = write_info(os.path.join(self.tmp, "tracker_info.txt"),
                               self.ports)
        self.px = {}
        self.writers = []
        self.stopped = set()            # pids we SIGSTOPped
        if proxies:
            for i in self.ids():
                for j in self.ids():
                    if i != j:
                        self.px[(i, j)] = faultproxy.FaultProxy(
                            ("127.0.0.1", self.port(j))).start()
        self.trackers = {}
        for i in self.ids():
            if proxies:
                ports = [self.port(i) if k == i else self.px[(i, k)].port
                         for k in self.ids()]
                info = write_info(os.path.join(self.tmp,
                                               "tracker_info-%d.txt" % i),
                                  ports)
            else:
                info = self.info
            self.trackers[i] = tessera.Tracker(
                os.path.join(self.tmp, "t%d" % i), workers=workers,
                session_timeout=session_timeout, info=info, tid=i,
                extra_args=lift_group_quota() + list(extra_args))
        REGISTRY.append(self)

    def ids(self):
        return list(range(1, self.n + 1))

    def port(self, i):
        return self.ports[i - 1]

    def t(self, i):
        return self.trackers[i]

    # -- lifecycle ---------------------------------------------------------

    def start(self, ids=None, linked=True, timeout=20):
        for i in ids or self.ids():
            self.trackers[i].start()
        if linked:
            self.wait_linked(ids, timeout)
        return self

    def alive(self, i):
        return self.trackers[i].alive()

    def live_ids(self):
        return [i for i in self.ids() if self.alive(i)]

    def pids(self, i):
        t = self.trackers[i]
        return t.pids() if t.alive() else []

    def kill(self, i):
        """SIGKILL tracker i: supervisor, workers and sync process."""
        pids, gone = self.trackers[i].kill_tree()
        assert gone, "tracker %d pids survived SIGKILL" % i
        self.stopped.difference_update(pids)
        return pids

    def restart(self, i, linked=True, timeout=30):
        self.trackers[i].start()
        if linked:
            self.wait_linked(None, timeout)

    def wipe(self, i):
        """Deletes tracker i's data directory (it must be down)."""
        assert not self.alive(i)
        shutil.rmtree(self.trackers[i].data_dir, ignore_errors=True)

    def pause(self, i):
        """SIGSTOP every process of tracker i; returns the pids."""
        pids = self.pids(i)
        for p in pids:
            kill_pid(p, signal.SIGSTOP)
        self.stopped.update(pids)
        return pids

    def resume(self, pids):
        for p in pids:
            kill_pid(p, signal.SIGCONT)
        self.stopped.difference_update(pids)

    def sync_pid(self, i):
        t = self.trackers[i]
        if not self.alive(i):
            return None
        pids = children(t.proc.pid, "trk-sync")
        t.known_workers.update(pids)
        return pids[0] if pids else None

    def partition(self, a, b, mode="blackhole"):
        """Cuts the sync links between trackers a and b (both ways)."""
        for k in ((a, b), (b, a)):
            self.px[k].set_mode(mode)

    def isolate(self, a, mode="blackhole"):
        for b in self.ids():
            if b != a:
                self.partition(a, b, mode)

    def heal(self):
        for p in self.px.values():
            p.set_mode("pass")

    def close(self):
        for w in self.writers:
            w.abort()
        for w in self.writers:
            w.join(10)
        for p in list(self.stopped):
            kill_pid(p, signal.SIGCONT)
        self.stopped.clear()
        for p in self.px.values():
            p.stop()

    def reap(self):                     # tessera.reap_all() calls this
        self.close()

    # -- status and convergence --------------------------------------------

    def status(self, i, timeout=2.0):
        """STATUS of tracker i as a dict, or None if it does not answer.
        Asked with tracker i's own certificate, like `tracker --status`."""
        try:
            st, msg, body = one_request(
                self.port(i), "STATUS", b"", timeout,
                cert=tracker_cert(pki_dir(self.info), i))
        except Unreachable:
            return None
        if st != OK:
            return None
        return parse_status(body)

    def statuses(self, ids=None):
        return {i: self.status(i) for i in (ids or self.live_ids())}

    def wait_linked(self, ids=None, timeout=20):
        """Waits until every live tracker in ids sees the others up."""
        ids = ids or self.live_ids()
        last = {}

        def linked():
            for i in ids:
                s = self.status(i)
                last[i] = s
                if s is None:
                    return False
                peers = dict(p.split("=", 1) for p in
                             s.get("peers", "").split(",") if "=" in p)
                for j in ids:
                    if j != i and peers.get(str(j)) != "up":
                        return False
            return True
        if not wait_until(linked, timeout, 0.1):
            raise AssertionError("trackers %s not linked within %ss: %r\n%s"
                                 % (ids, timeout, last, self.logs_tail()))

    def converge(self, ids=None, timeout=30, stable=2):
        """Waits (bounded) until the trackers in ids (default: live ones)
        answer STATUS with one digest, the same `stable` polls in a row.
        Returns (digest, statuses, seconds waited)."""
        ids = ids or self.live_ids()
        t0 = time.monotonic()
        end = t0 + timeout
        last = {}
        same = 0
        prev = None
        while True:
            last = self.statuses(ids)
            digs = set(s.get("digest") if s else None for s in last.values())
            if len(digs) == 1 and None not in digs:
                d = digs.pop()
                same = same + 1 if d == prev else 1
                prev = d
                if same >= stable:
                    return d, last, time.monotonic() - t0
            else:
                same, prev = 0, None
            if time.monotonic() >= end:
                raise AssertionError(
                    "no convergence of %s within %ss:\n%s\n%s"
                    % (ids, timeout, "\n".join(
                        "  %d: %r" % (i, last[i]) for i in sorted(last)),
                       self.logs_tail()))
            time.sleep(0.1)

    def logs_tail(self, n=15):
        out = []
        for i in self.ids():
            lines = self.trackers[i].log().splitlines()[-n:]
            out.append("--- tracker %d log tail:\n%s"
                       % (i, "\n".join(lines)))
        return "\n".join(out)

    # -- client-side helpers -------------------------------------------------

    def create_user(self, i, user, pw="pw"):
        return one_request(self.port(i), "CREATE_USER",
                           pstr(user) + pstr(pw), 10)

    def login(self, i, user, pw="pw", node="127.0.0.1:1"):
        """(status, message, token or None)."""
        st, msg, body = one_request(self.port(i), "LOGIN",
                                    pstr(user) + pstr(pw) + pstr(node), 10)
        return st, msg, (body[:16] if st == OK else None)

    def call(self, i, mtype, tok, payload=b""):
        return one_request(self.port(i), mtype, tok + payload, 5)

    def groups(self, i, tok):
        """{group: owner} from LIST_GROUPS on tracker i."""
        st, msg, body = self.call(i, "LIST_GROUPS", tok)
        assert st == OK, (i, st, msg)
        return {g: o for g, o, _n in parse_groups(body)}

    def writer(self, name, order=None, **kw):
        w = Writer(self, name, order or self.ids(), **kw)
        self.writers.append(w)
        return w

    def check_acked(self, writers, i=None, lost_users=()):
        """Asserts every acknowledged write of writers is visible on
        tracker i (default: the first live one) -- after converge() the
        digests are equal, so one tracker stands for all."""
        i = i or self.live_ids()[0]
        users = {}
        groups = {}
        for w in writers:
            for u, pw in w.acked_users:
                users[u] = pw
            for g, o in w.acked_groups:
                groups[g] = o
        tok = None
        for u, pw in sorted(users.items()):
            if u in lost_users:
                continue
            st, msg, t = self.login(i, u, pw)
            assert st == OK, "acked user %s cannot log in on %d: %s %s" \
                % (u, i, st, msg)
            tok = tok or t
        if groups:
            assert tok is not None
            have = self.groups(i, tok)
            missing = [g for g in groups if g not in have]
            wrong = [(g, groups[g], have[g]) for g in groups
                     if g in have and have[g] != groups[g]]
            assert not missing, "acked groups missing on %d: %s" \
                % (i, missing[:20])
            assert not wrong, "acked groups with another owner: %s" \
                % wrong[:20]
        return len(users), len(groups)


# ---- writers ----------------------------------------------------------------

class Writer(threading.Thread):
    """A raw client: creates its user, logs in, then creates groups
    <name>-g<N> until stopped; fails over between trackers in `order`
    (same request id on every retry) and records each acknowledged
    write."""

    def __init__(self, cluster, name, order, pause=0.005, req_timeout=2.0,
                 give_up=60.0, max_ops=None):
        threading.Thread.__init__(self, daemon=True, name="writer-" + name)
        self.c = cluster
        self.name_ = name
        self.order = list(order)
        self.cur = 0
        self.pause = pause
        self.req_timeout = req_timeout
        self.give_up = give_up
        self.max_ops = max_ops
        self.conn = None
        self.tok = None
        self.pw = "pw-" + name
        self._halt = threading.Event()
        self._abort = False
        self.lock = threading.Lock()
        self.acked_users = []
        self.acked_groups = []
        self.failovers = 0
        self.relogins = 0
        self.login_retries = 0
        self.uncertain = []             # (op, status, msg) not counted
        self.unexpected = []            # answers that should not happen
        self.gave_up = []
        self.max_stall = 0.0            # longest wait for one ack (s)
        self.ops = 0

    def stop(self):
        self._halt.set()

    def abort(self):
        """Stops at once, also in the middle of a write (teardown)."""
        self._abort = True
        self._halt.set()

    def _port(self):
        return self.c.port(self.order[self.cur % len(self.order)])

    def _rpc(self, mtype, payload_fn, reqid):
        """Sends until some tracker answers; (status, msg, body) or None
        if it gave up.  A stop() does not cut a started write short.  payload_fn() builds the payload (the token may
        have changed after a re-login)."""
        end = time.monotonic() + self.give_up
        while time.monotonic() < end and not self._abort:
            try:
                if self.conn is None:
                    self.conn = Conn(self._port(), self.req_timeout)
                st, msg, body = self.conn.call(mtype, payload_fn(),
                                               reqid, self.req_timeout)
            except Unreachable:
                self.conn = None
                self.cur += 1
                self.failovers += 1
                time.sleep(0.05)
                continue
            if st == ERR_BUSY:
                time.sleep(0.05)
                continue
            return st, msg, body
        return None

    def _login(self):
        # the account may not have reached this tracker yet (its own
        # tracker died or was cut off just after the create): retry with
        # a new request id (the AUTH answer is cached under the old one)
        end = time.monotonic() + self.give_up
        while time.monotonic() < end:
            r = self._rpc("LOGIN", lambda: pstr(self.name_) +
                          pstr(self.pw) + pstr("127.0.0.1:1"), new_reqid())
            if r is not None and r[0] == OK:
                self.tok = r[2][:16]
                return True
            if r is None or r[0] != ERR_AUTH:
                return False
            self.login_retries += 1
            time.sleep(0.2)
        return False

    def run(self):
        try:
            self._run()
        finally:
            if self.conn is not None:
                self.conn.close()

    def _run(self):
        r = self._rpc("CREATE_USER", lambda: pstr(self.name_) +
                      pstr(self.pw), new_reqid())
        if r is None or r[0] != OK:
            self.unexpected.append(("create_user", r and r[:2]))
            return
        with self.lock:
            self.acked_users.append((self.name_, self.pw))
        if not self._login():
            self.unexpected.append(("login", None))
            return
        n = 0
        while not self._halt.is_set():
            if self.max_ops is not None and n >= self.max_ops:
                break
            n += 1
            g = "%s-g%d" % (self.name_, n)
            reqid = new_reqid()
            t0 = time.monotonic()
            relogs = 0
            fresh = False
            while True:
                r = self._rpc("CREATE_GROUP", lambda: self.tok + pstr(g),
                              reqid)
                if r is not None and r[0] == ERR_AUTH and relogs < 3:
                    # the session had not reached this tracker when the
                    # one that made it died or was cut off: log in again.
                    # The tracker caches the AUTH reply under this request
                    # id, so the retry needs a new id; an EXISTS then
                    # means an earlier attempt landed (uncertain).
                    self.relogins += 1
                    relogs += 1
                    if self._login():
                        reqid = new_reqid()
                        fresh = True
                        continue
                break
            if fresh and r is not None and r[0] == ERR_EXISTS:
                self.uncertain.append((g, r[0], r[1]))
                r = (-1, "", b"")
            self.max_stall = max(self.max_stall, time.monotonic() - t0)
            self.ops += 1
            if r is None:
                self.gave_up.append(g)
            elif r[0] == OK:
                with self.lock:
                    self.acked_groups.append((g, self.name_))
            elif r[0] == -1:
                pass
            else:
                self.unexpected.append((g, r[0], r[1]))
            if self.pause:
                self._halt.wait(self.pause)

    def summary(self):
        return ("%s: ops=%d acked=%d failovers=%d relogins=%d "
                "login_retries=%d uncertain=%d "
                "unexpected=%d gave_up=%d max_stall=%.2fs"
                % (self.name_, self.ops, len(self.acked_groups),
                   self.failovers, self.relogins, self.login_retries,
                   len(self.uncertain),
                   len(self.unexpected), len(self.gave_up), self.max_stall))


def start_writers(cluster, n, prefix="w", seed=None, **kw):
    """n writers, each starting on a different tracker."""
    rnd = random.Random(seed)
    ws = []
    ids = cluster.ids()
    for k in range(n):
        order = ids[k % len(ids):] + ids[:k % len(ids)]
        w = cluster.writer("%s%d-%04x" % (prefix, k, rnd.getrandbits(16)),
                           order, **kw)
        w.start()
        ws.append(w)
    return ws


def stop_writers(ws, timeout=90):
    for w in ws:
        w.stop()
    for w in ws:
        w.join(timeout)
        assert not w.is_alive(), "writer %s did not stop" % w.name_
    return ws


def assert_writers_ok(ws, min_acked=1):
    text = "\n".join(w.summary() for w in ws)
    for w in ws:
        assert not w.unexpected, "%s\nunexpected: %r" % (text,
                                                         w.unexpected[:10])
        assert not w.gave_up, "%s\ngave up: %r" % (text, w.gave_up[:10])
    assert sum(len(w.acked_groups) for w in ws) >= min_acked, text
    return text
