"""
test_attack_lockout.py -- targeted account lockout, attacked through the
real binaries: a two-tracker cluster on 127.0.0.1, an attacker guessing
one user's password on both trackers at >= 10 LOGINs/s from 127.0.0.2,
and the user logging in meanwhile.

What must hold (docs/SECURITY.md, "Login throttle: who is locked out"):
  - the victim's usual node (a certificate that logged in to the account
    before -- on tracker 1 only: tracker 2 knows it from the replicated
    session) logs in on both trackers during the attack, every time, with
    a bounded latency; so do two real client nodes (./client, one per
    tracker) that log out and in again;
  - a fresh node of the victim (a new certificate, never seen) on another
    address (127.0.0.3) logs in too: one attacker address counts once in
    the per-user safety net, which needs TS_LOGIN_USER_ADDRS_N (8);
  - the attacker's own attempts are refused with the throttle message
    ("too many failed logins"), and only a handful reach the KDF;
  - guesses from more addresses than the safety net allows (a small
    "botnet" of 127.0.0.x) close the account to unknown nodes, never to
    the known one.
On the old tracker (per-user counter) the victim's logins during the
attack are refused: that is the lockout this test guards against.

Every process is a tessera.Tracker of cluster.Cluster or a nodes.Node,
reaped by pid by the conftest fixture; every wait is bounded.  Locking: the attacker
threads own their sockets; their counters are read after join().
"""

import os
import threading
import time

import tessera
import cluster as cl
import nodes
from procs import free_port
from proto import node_cert
from tessera import OK, ERR_AUTH, ERR_BUSY, pstr

KDF = ("--kdf-iterations", "20000")     # a fast KDF: a short test
ATTACK_S = 8.0                          # how long the attack runs
RATE = 12.0                             # attacker LOGINs/s per tracker
LAT_MAX_S = 2.0                         # a victim login takes at most


class Attacker(threading.Thread):
    """Wrong-password LOGINs for user at RATE per second to one port,
    from source, over one connection (a new one when the tracker closes
    it)."""

    def __init__(self, port, user, source, cert, stop):
        threading.Thread.__init__(self, daemon=True)
        self.port, self.user, self.source = port, user, source
        self.cert, self.stop = cert, stop
        self.sent = 0
        self.res = {}                   # (status, message head) -> count
        self.ok = 0

    def _conn(self):
        return tessera.Raw(self.port, timeout=3, cert=self.cert,
                           source=self.source)

    def run(self):
        r = None
        t_next = time.monotonic()
        while not self.stop.is_set():
            try:
                if r is None:
                    r = self._conn()
                st, msg, _ = r.request(
                    "LOGIN", pstr(self.user) + pstr("guess%d" % self.sent) +
                    pstr("%s:1" % self.source), timeout=3)
                key = (st, msg.split(";")[0])
                self.res[key] = self.res.get(key, 0) + 1
                self.ok += st == OK
            except (OSError, AssertionError, ValueError):
                if r is not None:
                    r.close()
                r = None
                key = ("closed", "")
                self.res[key] = self.res.get(key, 0) + 1
            self.sent += 1
            t_next += 1.0 / RATE
            time.sleep(max(0.0, t_next - time.monotonic()))
        if r is not None:
            r.close()

    def count(self, st, head=None):
        return sum(n for (s, m), n in self.res.items()
                   if s == st and (head is None or head in m))


def login(port, user, pw, cert, source):
    """(status, message, seconds) of one LOGIN over a new connection."""
    t0 = time.monotonic()
    r = tessera.Raw(port, timeout=5, cert=cert, source=source)
    try:
        st, msg, _ = r.request("LOGIN", pstr(user) + pstr(pw) +
                               pstr("%s:7000" % source), timeout=5)
    finally:
        r.close()
    return st, msg, time.monotonic() - t0


def usual_login(port, cert):
    """The token of a LOGIN of the victim from its usual node."""
    r = tessera.Raw(port, timeout=5, cert=cert, source="127.0.0.1")
    try:
        st, msg, body = r.request("LOGIN", pstr("victim") + pstr("right") +
                                  pstr("127.0.0.1:7000"), timeout=5)
    finally:
        r.close()
    assert st == OK, msg
    return body[:16]


def setup_cluster(tmp_path):
    c = cl.Cluster(tmp_path, n=2, extra_args=KDF).start()
    st, msg, _ = c.create_user(1, "victim", "right")
    assert st == OK, msg
    return c


def test_attacker_locks_out_only_itself(tmp_path):
    c = setup_cluster(tmp_path)
    usual = node_cert(str(tmp_path), "usual")
    evil = node_cert(str(tmp_path), "evil")
    fresh = [node_cert(str(tmp_path), "fresh%d" % j) for j in range(4)]
    # the account reaches tracker 2 (over another node identity) ...
    assert tessera.wait_until(
        lambda: c.login(2, "victim", "right")[0] == OK, 10, 0.1)
    # ... the usual node has logged in before, on tracker 1 only, and its
    # session reaches tracker 2
    tok = usual_login(c.port(1), usual)

    def on_t2():
        r = tessera.Raw(c.port(2), timeout=3, cert=usual)
        try:
            return r.request("LIST_GROUPS", tok)[0] == OK
        finally:
            r.close()
    assert tessera.wait_until(on_t2, 10, 0.1)
    # two real client nodes of the victim, one per tracker, logged in once
    # before; a client talks to the first tracker of its tracker_info.txt
    # that answers (line i is tracker i): for node 2, line 1 is a port
    # nobody listens on
    reals = []
    for i in c.ids():
        ports = [c.port(1), c.port(2)] if i == 1 else [free_port(),
                                                       c.port(2)]
        info = tessera.write_info(str(tmp_path / ("info-%d.txt" % i)),
                                  ports)
        n = nodes.Node(info, tmp_path, name="real%d" % i).start()
        n.login("victim", "right")
        reals.append(n)

    stop = threading.Event()
    attackers = [Attacker(c.port(i), "victim", "127.0.0.2", evil, stop)
                 for i in c.ids()]
    for a in attackers:
        a.start()
    time.sleep(1.0)                     # the attack is under way
    usual_res, fresh_res, real_res = [], [], []
    in_ = [True, True]                  # the real nodes are logged in
    t_end = time.monotonic() + ATTACK_S - 1.0
    k = 0
    while time.monotonic() < t_end:
        i = 1 + k % 2
        usual_res.append((i,) + login(c.port(i), "victim", "right", usual,
                                      "127.0.0.1"))
        # the real client: log out, log in again, timed
        n = reals[k % 2]
        if in_[k % 2]:
            n.expect("logout", "logged out")
        t0 = time.monotonic()
        out = n.cmd("login victim right")
        real_res.append((k % 2 + 1, out, time.monotonic() - t0))
        in_[k % 2] = out == ["logged in as victim"]
        if k % 4 == 3 and fresh:
            # each time a node never seen (once in, it is known)
            fresh_res.append((i,) + login(c.port(i), "victim", "right",
                                          fresh.pop(), "127.0.0.3"))
        k += 1
        time.sleep(0.1)
    stop.set()
    for a in attackers:
        a.join(10)
        assert not a.is_alive()

    lat = sorted(x[3] for x in usual_res)
    print("usual node: %d/%d logins ok, latency median %.3f s max %.3f s"
          % (sum(x[1] == OK for x in usual_res), len(usual_res),
             lat[len(lat) // 2], lat[-1]))
    rlat = sorted(x[2] for x in real_res)
    print("real client nodes: %d/%d logins ok, latency median %.3f s max "
          "%.3f s" % (sum(x[1] == ["logged in as victim"] for x in real_res),
                      len(real_res), rlat[len(rlat) // 2], rlat[-1]))
    print("fresh node (127.0.0.3): %d/%d ok" %
          (sum(x[1] == OK for x in fresh_res), len(fresh_res)))
    for i, a in zip(c.ids(), attackers):
        print("attacker -> tracker %d: %d sent in %.0f s, %s" %
              (i, a.sent, ATTACK_S, sorted(a.res.items())))
    # the victim gets in, on both trackers, from its usual node ...
    assert len(usual_res) >= 6
    assert all(x[1] == OK for x in usual_res), usual_res
    assert {x[0] for x in usual_res} == {1, 2}
    assert lat[-1] < LAT_MAX_S, lat
    assert all(x[1] == ["logged in as victim"] for x in real_res), real_res
    for i, n in zip(c.ids(), reals):
        assert c.t(i).log().count("'victim' logged in from node %s"
                                  % n.addr) >= 3, i
    assert rlat[-1] < LAT_MAX_S, rlat
    # ... and from a fresh node on its own address
    assert fresh_res and all(x[1] == OK for x in fresh_res), fresh_res
    for a in attackers:
        # >= 10 attempts a second, none got in
        assert a.sent >= 10 * (ATTACK_S - 1), a.sent
        assert a.ok == 0
        # the attacker is throttled: its attempts see the throttle error,
        # and only a few reach the KDF (5, then one per refusal period)
        assert a.count(ERR_BUSY, "too many failed logins") >= a.sent / 2, \
            a.res
        assert a.count(ERR_AUTH) <= 12, a.res
    assert all(a.count("closed") == 0 for a in attackers), \
        [a.res for a in attackers]


def test_many_addresses_close_account_to_unknown_nodes_only(tmp_path):
    c = setup_cluster(tmp_path)
    usual = node_cert(str(tmp_path), "usual")
    fresh = node_cert(str(tmp_path), "fresh")
    evil = node_cert(str(tmp_path), "evil")
    st, msg, _ = login(c.port(1), "victim", "right", usual, "127.0.0.1")
    assert st == OK, msg
    # one address alone reaches its own limit and counts once: still open
    # to a fresh node elsewhere
    srcs = ["127.0.0.%d" % (10 + j) for j in range(10)]
    for src in srcs[:1]:
        for n in range(8):
            login(c.port(1), "victim", "bad%d" % n, evil, src)
    st, msg, _ = login(c.port(1), "victim", "right", fresh, "127.0.0.3")
    assert st == OK, msg
    # a botnet: more addresses than TS_LOGIN_USER_ADDRS_N (8), each
    # tried until it is refused
    for src in srcs[1:]:
        for n in range(6):
            st, msg, _ = login(c.port(1), "victim", "bad%d" % n, evil, src)
            if st == ERR_BUSY:
                break
    st, msg, _ = login(c.port(1), "victim", "right",
                       node_cert(str(tmp_path), "fresh2"), "127.0.0.4")
    print("unknown node after %d attacker addresses: %s %r"
          % (len(srcs), st, msg))
    assert st == ERR_BUSY and "many addresses" in msg, (st, msg)
    # the known node is let in, several times
    for _ in range(3):
        st, msg, t = login(c.port(1), "victim", "right", usual, "127.0.0.1")
        assert st == OK and t < LAT_MAX_S, (st, msg, t)
    # the known node's own guesses are counted (generously) for it alone
    log = c.t(1).log()
    assert "user throttled from many addresses" in log
