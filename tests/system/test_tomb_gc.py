"""
test_tomb_gc.py -- tombstone collection across real trackers
(docs/REPLICATION.md, "Collecting tombstones").

What it shows, with three real trackers collecting every 200 ms
(--gc-ms): deletes of every kind the protocol has (the last member
leaving a group = a group delete, a member leaving =
an element tomb, a logout = a session delete) leave tombstones
(STATUS `tombstones`) that are NOT collected while one tracker is down;
the down tracker, started again on its old data directory that still
holds the live records, converges to the deleted state; only then does
every tracker collect (tombstones 0 everywhere, digests equal, nothing
came back on any tracker, also after one more restart); and a wiped
tracker gets a snapshot without the collected keys.

Every process is a tessera.Tracker in procs.REGISTRY (reaped by pid by
the conftest fixture); every wait is bounded.
"""

import time

from cluster import Cluster
from proto import OK
from tessera import pstr, wait_until

GC = ["--gc-ms", "200"]
GROUPS = ["gone%d" % k for k in range(5)]


def tombs(cl, i):
    s = cl.status(i)
    assert s is not None, cl.logs_tail()
    return int(s["tombstones"])


def live_groups(cl, i, tok):
    return set(cl.groups(i, tok))


def test_collected_only_once_every_tracker_acked(tmp_path):
    cl = Cluster(tmp_path, 3, extra_args=GC).start()
    assert cl.create_user(1, "alice")[0] == OK
    assert cl.create_user(1, "bob")[0] == OK
    cl.converge()
    _, _, ta = cl.login(1, "alice")
    _, _, tb = cl.login(1, "bob")
    _, _, gone_tok = cl.login(1, "bob", node="127.0.0.1:2")
    for g in GROUPS + ["kept"]:
        assert cl.call(1, "CREATE_GROUP", ta, pstr(g))[0] == OK
    # bob joins "kept" (request, accept) and leaves it later: a tomb
    assert cl.call(1, "JOIN_GROUP", tb, pstr("kept"))[0] == OK
    assert cl.call(1, "ACCEPT_REQUEST", ta, pstr("kept") + pstr("bob"))[0] \
        == OK
    cl.converge()
    assert tombs(cl, 1) == 0
    assert GROUPS[0] in live_groups(cl, 3, ta)

    # tracker 3 goes down holding every record live
    cl.kill(3)
    for g in GROUPS:
        st, msg, _ = cl.call(1, "LEAVE_GROUP", ta, pstr(g))
        assert st == OK, (g, st, msg)
    assert cl.call(2, "LEAVE_GROUP", tb, pstr("kept"))[0] == OK
    assert cl.call(1, "LOGOUT", gone_tok)[0] == OK
    cl.converge([1, 2])
    n1 = tombs(cl, 1)
    assert n1 >= len(GROUPS) + 2, n1
    # many collection periods pass: nothing is collected while 3 is down
    time.sleep(2.0)
    for i in (1, 2):
        assert tombs(cl, i) >= n1, (i, cl.status(i))
    for i in (1, 2):
        assert not live_groups(cl, i, ta) & set(GROUPS)

    # tracker 3 comes back on its old data: it learns the deletes, and
    # then (only then) every tracker collects
    cl.restart(3)
    cl.converge()
    assert wait_until(lambda: all(tombs(cl, i) == 0 for i in cl.ids()),
                      20, 0.1), cl.statuses()
    dig, sts, _ = cl.converge()
    for i in cl.ids():
        assert live_groups(cl, i, ta) == {"kept"}, i
        assert cl.call(i, "LOGOUT", gone_tok)[0] != OK, i
        assert cl.call(i, "LIST_REQUESTS", ta, pstr("kept"))[0] == OK

    # nothing comes back after a restart either (the rebuild finds no
    # tombstone, the peers hold none)
    cl.kill(3)
    cl.restart(3)
    assert cl.converge()[0] == dig
    for i in cl.ids():
        assert tombs(cl, i) == 0, i
        assert live_groups(cl, i, ta) == {"kept"}, i

    # a group created again after its delete was collected is live
    assert cl.call(2, "CREATE_GROUP", ta, pstr(GROUPS[0]))[0] == OK
    cl.converge()
    for i in cl.ids():
        assert GROUPS[0] in live_groups(cl, i, ta), i


def test_wiped_tracker_gets_snapshot_without_collected_keys(tmp_path):
    cl = Cluster(tmp_path, 2, extra_args=GC).start()
    assert cl.create_user(1, "carol")[0] == OK
    _, _, tc = cl.login(1, "carol")
    for g in GROUPS:
        assert cl.call(1, "CREATE_GROUP", tc, pstr(g))[0] == OK
    for g in GROUPS:
        assert cl.call(1, "LEAVE_GROUP", tc, pstr(g))[0] == OK
    cl.converge()
    assert wait_until(lambda: all(tombs(cl, i) == 0 for i in cl.ids()),
                      20, 0.1), cl.statuses()
    dig = cl.converge()[0]
    cl.kill(2)
    cl.wipe(2)
    cl.restart(2)
    assert cl.converge()[0] == dig
    # the snapshot carried no tombstone of the collected groups
    assert tombs(cl, 2) == 0
    assert not live_groups(cl, 2, tc) & set(GROUPS)


def test_lone_tracker_collects_in_housekeeping(tmp_path):
    # one line in tracker_info.txt: no trk-sync; the housekeeper collects
    cl = Cluster(tmp_path, 1).start()
    assert cl.create_user(1, "dave")[0] == OK
    _, _, td = cl.login(1, "dave")
    _, _, gone = cl.login(1, "dave", node="127.0.0.1:3")
    for g in GROUPS:
        assert cl.call(1, "CREATE_GROUP", td, pstr(g))[0] == OK
        assert cl.call(1, "LEAVE_GROUP", td, pstr(g))[0] == OK
    assert cl.call(1, "LOGOUT", gone)[0] == OK
    assert tombs(cl, 1) >= len(GROUPS) + 1
    assert wait_until(lambda: tombs(cl, 1) == 0, 15, 0.1), cl.status(1)
    cl.kill(1)
    cl.restart(1)
    assert tombs(cl, 1) == 0
    assert not live_groups(cl, 1, td) & set(GROUPS)
    assert cl.call(1, "LOGOUT", gone)[0] != OK
