"""
test_sync_snapshot.py -- a wiped tracker's streamed snapshot cut midway.

Purpose: the snapshot a tracker with a new data directory gets is sent
in batches, each merged in its own transaction (docs/REPLICATION.md
"Sync protocol").  These tests cut it in the middle -- SIGKILL of the
receiving tracker, SIGKILL of the sender's sync process -- and check
that the half-merged state is never presented as complete (the
receiver's VV does not count the sender's ops and it stays marked
fresh, so it is sent a whole snapshot again), that the cut snapshot then
completes, and that the trackers converge (equal STATUS digests) with
every acknowledged write present on the wiped tracker.  `--sync-snap-batch
1` makes one batch per record, so the snapshot lasts long enough to be
cut at a known point.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers and writers).
"""

import os
import signal

from cluster import Cluster, stop_writers, assert_writers_ok
from tessera import wait_until

CONV_S = 60


def records(st):
    return int(st.get("users", 0)) + int(st.get("groups", 0)) + \
        int(st.get("sessions", 0))


def snapshots_sent(cl):
    return cl.t(1).log().count("sending a snapshot to tracker 2")


def writers_on_1(cl, n, prefix):
    ws = [cl.writer("%s%d-%x" % (prefix, k, os.getpid() & 0xffff),
                    order=[1]) for k in range(n)]
    for w in ws:
        w.start()
    return ws


def filled(cl, n_writers, acks):
    """Two linked trackers (one record per snapshot batch); writers on
    tracker 1 acknowledged `acks` writes, then stopped and converged.
    Returns (cluster, writers, full record count)."""
    cl = Cluster(cl, 2, extra_args=["--sync-snap-batch", "1"]).start()
    ws = writers_on_1(cl, n_writers, "sn")
    assert wait_until(lambda: sum(len(w.acked_groups) for w in ws) >= acks,
                      60, 0.05), [w.summary() for w in ws]
    stop_writers(ws)
    assert_writers_ok(ws)
    cl.converge(timeout=CONV_S)
    return cl, ws, records(cl.status(1))


def wait_midway(cl, full):
    """Waits until tracker 2 (adopting a snapshot) holds part of the
    records, and checks it does not claim the sender's ops meanwhile.
    Returns its STATUS then."""
    seen = {}

    def partial():
        st = cl.status(2)
        if st is None:
            return False
        seen["st"] = st
        return full // 4 <= records(st) < full * 3 // 4
    assert wait_until(partial, 30, 0.01), \
        "tracker 2 never held part of the snapshot: %s (full %d)" \
        % (seen.get("st"), full)
    st = seen["st"]
    vv = dict(p.split(":") for p in st.get("vv", "").split(",") if ":" in p)
    assert "1" not in vv, \
        "half-merged snapshot counts tracker 1's ops: vv %s" % st.get("vv")
    assert st["digest"] != cl.status(1)["digest"]
    return st


def finish(cl, ws):
    d, st, took = cl.converge(timeout=CONV_S)
    cl.check_acked(ws, i=2)
    print("converged in %.2fs, %d records" % (took, records(st[2])))
    return st


def test_receiver_killed_midway_then_adopts_whole(tmp_path):
    cl, ws, full = filled(tmp_path, 3, 250)
    cl.kill(2)
    cl.wipe(2)
    cl.restart(2, linked=False)
    part = wait_midway(cl, full)
    cl.kill(2)                       # SIGKILL in the middle of adoption
    before = snapshots_sent(cl)
    cl.restart(2, linked=False)
    # the partial state survived the crash, but not as a complete one:
    # the restarted tracker is still fresh, so it gets a whole snapshot
    assert wait_until(lambda: snapshots_sent(cl) > before, 20, 0.05), \
        "no new snapshot after the receiver's restart (partial %s)" % part
    st = finish(cl, ws)
    assert records(st[2]) == full
    assert "snapshot merged" in cl.t(2).log()


def test_sender_sync_killed_midway_writes_go_on(tmp_path):
    cl, ws, full = filled(tmp_path, 3, 250)
    cl.kill(2)
    cl.wipe(2)
    cl.restart(2, linked=False)
    wait_midway(cl, full)
    # writes land on tracker 1 during the snapshot: they must reach 2
    # as deltas after the snapshot, whatever the cut
    ws2 = writers_on_1(cl, 2, "sm")
    old = cl.sync_pid(1)
    assert old
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: cl.sync_pid(1) not in (None, old), 10), \
        "tracker 1's sync process was not respawned"
    assert wait_until(lambda: sum(len(w.acked_groups) for w in ws2) >= 30,
                      30, 0.05)
    stop_writers(ws2)
    assert_writers_ok(ws2)
    assert snapshots_sent(cl) >= 2
    finish(cl, ws + ws2)
