"""
test_scale_index.py -- the tracker's local indexes (tracker/trk_index*.c)
through the real binaries: LIST_GROUPS and LIST_MY_GROUPS answer from
them, so they must stay right when the records arrive by merge from the
other tracker of a cluster and across a restart (which rebuilds them),
and STATUS (counts, digest from the maintained index record) must agree
on both trackers.  Also: with the indexes, LIST_MY_GROUPS costs the same
whatever the size of the rest of the database -- measured against a
tracker whose database holds many other users' groups.

Every process is started and stopped by the fixtures (by pid); every
wait is bounded.
"""

import os
import threading
import time

import tessera
from cluster import Cluster
from proto import OK, Raw, pstr


def names(groups):
    return sorted(g[0] for g in groups)


def my_groups(port, user, pw="pw"):
    r = Raw(port)
    try:
        tok = r.login(user, pw)
        st, msg, body = r.request("LIST_MY_GROUPS", tok)
        assert st == OK, msg
        mine = names(tessera.parse_groups(body))
        st, msg, body = r.request("LIST_GROUPS", tok)
        assert st == OK, msg
        return mine, names(tessera.parse_groups(body))
    finally:
        r.close()


def test_indexes_across_merge_and_restart(tmp_path):
    cl = Cluster(tmp_path, 2).start()
    p1, p2 = cl.port(1), cl.port(2)
    r1 = Raw(p1)
    assert r1.create_user("alice", "pw")[0] == OK
    assert r1.create_user("bob", "pw")[0] == OK
    ta = r1.login("alice", "pw")
    for g in ("ga", "gb", "gc"):
        assert r1.request("CREATE_GROUP", ta + pstr(g))[0] == OK
    cl.converge()
    # bob joins on tracker 2, alice accepts there; alice leaves gc on 1
    r2 = Raw(p2)
    tb = r2.login("bob", "pw")
    assert r2.request("JOIN_GROUP", tb + pstr("ga"))[0] == OK
    ta2 = r2.login("alice", "pw")
    assert r2.request("ACCEPT_REQUEST",
                      ta2 + pstr("ga") + pstr("bob"))[0] == OK
    assert r1.request("LEAVE_GROUP", ta + pstr("gc"))[0] == OK
    r1.close()
    r2.close()
    cl.converge()
    for port in (p1, p2):
        assert my_groups(port, "bob") == (["ga"], ["ga", "gb"])
        assert my_groups(port, "alice") == (["ga", "gb"], ["ga", "gb"])
    s1, s2 = cl.status(1), cl.status(2)
    assert s1["digest"] == s2["digest"]
    assert s1["groups"] == s2["groups"] == "2", (s1, s2)
    assert s1["users"] == s2["users"] == "2"
    # a restart rebuilds the indexes: the same answers, and the digest
    # the rebuild computes from scratch matches the other tracker's
    # incrementally kept one
    cl.t(2).stop()
    cl.restart(2)
    assert my_groups(p2, "bob") == (["ga"], ["ga", "gb"])
    cl.converge()
    s1, s2 = cl.status(1), cl.status(2)
    assert s1["digest"] == s2["digest"], (s1, s2)
    assert s2["groups"] == "2" and s2["users"] == "2", s2


# ---- cost independent of the database size ------------------------------

FILLER_USERS = 4000


def _fill(port, lo, hi, errors):
    r = Raw(port, timeout=30)
    try:
        for i in range(lo, hi):
            u = "f%06d" % i
            if r.create_user(u, "pw")[0] != OK:
                errors.append(u)
                continue
            r.login(u, "pw")
    except Exception as e:             # noqa: BLE001 -- reported below
        errors.append(repr(e))
    finally:
        r.close()


def _p50(fn, n=40):
    v = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        v.append((time.perf_counter() - t) * 1000.0)
    return sorted(v)[n // 2]


def _cpu_s(pids):
    s = 0
    for p in pids:
        try:
            with open("/proc/%d/stat" % p) as f:
                f_ = f.read().rsplit(")", 1)[1].split()
            s += int(f_[11]) + int(f_[12])
        except OSError:
            pass
    return s / os.sysconf("SC_CLK_TCK")


def test_reads_and_idle_cost_do_not_grow_with_the_database(tracker_factory):
    """An attacker (or plain growth) fills the database with thousands of
    accounts and sessions; an honest user's LIST_MY_GROUPS, LIST_GROUPS,
    LOGIN and the tracker's idle CPU must not pay for them (before the
    indexes each of these walked every record)."""
    t = tracker_factory(extra_args=[
        "--fsync", "off", "--session-timeout", "3600000",
        "--create-user-per-addr", "0", "--kdf-per-addr", "0",
        "--login-fails-addr", "0", "--max-conns-per-addr", "10000"])
    r = Raw(t.port)
    assert r.create_user("honest", "pw")[0] == OK
    tok = r.login("honest", "pw")
    for g in ("h1", "h2", "h3"):
        assert r.request("CREATE_GROUP", tok + pstr(g))[0] == OK

    def probe():
        return {
            "list_my_groups": _p50(lambda: r.request("LIST_MY_GROUPS",
                                                     tok)),
            "list_groups": _p50(lambda: r.request("LIST_GROUPS", tok)),
            "login": _p50(lambda: r.login("honest", "pw"), 20),
        }

    before = probe()
    errors = []
    step = FILLER_USERS // 4
    ths = [threading.Thread(target=_fill,
                            args=(t.port, k * step, (k + 1) * step, errors))
           for k in range(4)]
    t0 = time.monotonic()
    for th in ths:
        th.start()
    for th in ths:
        th.join(max(1.0, 90 - (time.monotonic() - t0)))
    built = time.monotonic() - t0
    # the old code walked the database in every login: filling took
    # minutes and connections failed
    assert built < 90 and not any(th.is_alive() for th in ths), built
    assert not errors, errors[:3]
    after = probe()
    time.sleep(1.5)                     # let the housekeeper settle
    pids = t.all_pids()
    c0 = _cpu_s(pids)
    time.sleep(3)
    idle = (_cpu_s(pids) - c0) / 3 * 100
    print("filled %d users + sessions in %.1fs; p50 ms before %s after %s;"
          " idle CPU %.1f%% of a core" % (FILLER_USERS, built, before,
                                          after, idle))
    for k in before:
        assert after[k] < 3 * before[k] + 2.0, (k, before, after)
    assert idle < 10, idle
    st, msg, body = r.request("LIST_MY_GROUPS", tok)
    assert names(tessera.parse_groups(body)) == ["h1", "h2", "h3"]
    r.close()
