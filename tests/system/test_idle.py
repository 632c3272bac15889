"""
test_idle.py -- an idle tracker cluster sleeps, and what its idle paths
skip is still done at once when it matters.

Purpose: the sync process of a linked, idle two-tracker cluster must not
poll (its peer threads sleep on the op wake word until a commit or a
heartbeat is due: a handful of wake-ups a second, where a 2 ms poll makes
hundreds); a write made after that sleep still reaches the peer (the
commit wakes the sleeper); and the housekeeper, which now walks its
session cache only when the data changed or once per session timeout /
4, still drops a cached session at once when it is logged out on the
other tracker (the cluster's session timeout is 120 s, so a walk that
waited for its period would miss the bound).

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the cluster).
"""

import os
import time

from cluster import Cluster
from proto import ERR_AUTH, OK
from tessera import wait_until


def ctx_switches(pid):
    """Context switches of every thread of pid so far."""
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches",
                                        "nonvoluntary_ctxt_switches")):
                        n += int(line.split()[1])
        except FileNotFoundError:
            continue                    # a thread that just ended
    return n


def test_idle_sync_sleeps_and_wakes_on_commit(tmp_path):
    cl = Cluster(tmp_path, 2).start()
    pid = cl.sync_pid(1)
    assert pid is not None
    time.sleep(1.0)                     # past the first exchanges
    a = ctx_switches(pid)
    time.sleep(3.0)
    b = ctx_switches(pid)
    print("trk-sync context switches in 3 s idle: %d" % (b - a))
    # heartbeats every 500 ms and the main thread's 50 ms tick: about 80
    # in 3 s; the old 2 ms poll of the peer thread alone made 1500
    assert b - a < 400, "trk-sync woke %d times in 3 s idle" % (b - a)

    # the sleeping peer thread is woken by a commit: the new account is
    # on tracker 2 well before any heartbeat-driven push could matter
    assert cl.create_user(1, "idle_u")[0] == OK
    assert wait_until(lambda: cl.login(2, "idle_u")[0] == OK, 10, 0.05), \
        "a write on tracker 1 did not reach tracker 2"


def test_logout_on_peer_drops_cached_session(tmp_path):
    cl = Cluster(tmp_path, 2).start()
    assert cl.create_user(1, "alice")[0] == OK
    st, msg, tok = cl.login(1, "alice")
    assert st == OK, msg
    # the session is cached on tracker 1 (used there) and reaches 2
    assert cl.call(1, "LIST_MY_GROUPS", tok)[0] == OK
    assert wait_until(lambda: cl.call(2, "LIST_MY_GROUPS", tok)[0] == OK,
                      10, 0.05), "the session did not reach tracker 2"
    time.sleep(1.5)                     # an idle pass or two on tracker 1
    st, msg, _ = cl.call(2, "LOGOUT", tok)
    assert st == OK, msg
    # tracker 1 refuses it once the merged delete is in: the data changed,
    # so its next housekeeping pass walks the cache
    assert wait_until(lambda: cl.call(1, "LIST_MY_GROUPS", tok)[0]
                      == ERR_AUTH, 10, 0.1), \
        "tracker 1 still accepts a session logged out on tracker 2"
