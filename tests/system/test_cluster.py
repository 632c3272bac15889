"""
test_cluster.py -- the tracker cluster under faults (crashes, pauses,
wipes, partitions) with clients writing all along.

Purpose: real trackers on 127.0.0.1 with their own data dirs; raw client
writers that fail over like the real client and record every
acknowledged write; real SIGKILL / SIGSTOP / wiped data dirs / proxies
on the sync links.  Every scenario ends with equal STATUS digests on all
trackers and every acknowledged write present (cluster.Cluster.converge
and check_acked).  Plus client failover with the real ./client, and a
download that goes on while its tracker dies.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers, nodes and the cluster's proxies).
"""

import os
import time

import pytest

from cluster import Cluster, start_writers, stop_writers, assert_writers_ok
from proto import ERR_CONFLICT, OK
from tessera import pid_alive, pstr, wait_until

CONV_S = 30         # bound for convergence after the faults end


def finish(cl, ws, ids=None, lost_users=()):
    """Stops writers, converges, checks every acked write, converges
    again (the check logs in, which writes sessions); returns the
    writers' summary."""
    stop_writers(ws)
    text = assert_writers_ok(ws)
    d1, st, took = cl.converge(ids, CONV_S)
    cl.check_acked(ws, lost_users=lost_users)
    d2, st, _ = cl.converge(ids, CONV_S)
    print(text)
    print("converged in %.2fs, digest %s" % (took, d2))
    return st


def acked(ws):
    return sum(len(w.acked_groups) for w in ws)


def wait_more_acks(ws, n, timeout=20):
    """Waits until the writers acked n more writes (progress)."""
    base = acked(ws)
    assert wait_until(lambda: acked(ws) >= base + n, timeout, 0.05), \
        "no progress: %s" % "; ".join(w.summary() for w in ws)


def under_load(tmp_path, n, writers, prefix, acks):
    """A linked cluster of n trackers and writers that have made progress
    (acks acknowledged writes): (cluster, writers)."""
    cl = Cluster(tmp_path, n).start()
    ws = start_writers(cl, writers, prefix)
    wait_more_acks(ws, acks)
    return cl, ws


# ---- 1 ----------------------------------------------------------------------

def test_sigkill_tracker_under_write_load(tmp_path):
    cl, ws = under_load(tmp_path, 2, 4, "k", 40)
    pids = cl.kill(1)
    assert not any(pid_alive(p) for p in pids)
    wait_more_acks(ws, 40)          # all on tracker 2 now
    cl.restart(1)
    wait_more_acks(ws, 40)
    finish(cl, ws)


# ---- 2 ----------------------------------------------------------------------

def test_partition_with_conflicting_creations(tmp_path):
    cl = Cluster(tmp_path, 2, proxies=True).start()
    for i, u in ((1, "x"), (2, "y")):
        assert cl.create_user(i, u)[0] == OK
    cl.converge()
    cl.partition(1, 2, "blackhole")
    w1 = cl.writer("p1", order=[1])
    w2 = cl.writer("p2", order=[2])
    ws = [w1, w2]
    for w in ws:
        w.start()
    # the same user id on both sides: tracker 1 first, so it is earlier
    assert cl.create_user(1, "dup", "one")[0] == OK
    time.sleep(0.05)
    assert cl.create_user(2, "dup", "two")[0] == OK
    st, msg, loser_tok = cl.login(2, "dup", "two")
    assert st == OK, (st, msg)
    # the same group id on both sides, tracker 1 first again
    _, _, tx = cl.login(1, "x")
    _, _, ty = cl.login(2, "y")
    assert cl.call(1, "CREATE_GROUP", tx, pstr("gdup"))[0] == OK
    time.sleep(0.05)
    assert cl.call(2, "CREATE_GROUP", ty, pstr("gdup"))[0] == OK
    wait_more_acks(ws, 20)
    # the partition is real: the two sides differ
    def cut():
        s1, s2 = cl.status(1), cl.status(2)
        return "2=down" in s1["peers"] and "1=down" in s2["peers"]
    assert wait_until(cut, 20, 0.1), (cl.status(1), cl.status(2))
    assert cl.status(1)["digest"] != cl.status(2)["digest"]
    cl.heal()
    wait_more_acks(ws, 20)
    finish(cl, ws)
    # the documented winner: the earlier (hlc, origin) = tracker 1's
    for i in (1, 2):
        assert cl.login(i, "dup", "one")[0] == OK
        assert cl.login(i, "dup", "two")[0] != OK
        assert cl.groups(i, tx)["gdup"] == "x"
    # the loser's clear error, the next time they use it
    st, msg, _ = cl.call(2, "LIST_GROUPS", loser_tok)
    assert st == ERR_CONFLICT, (st, msg)
    assert "dup" in msg and "created concurrently" in msg, msg
    st, msg, _ = cl.call(2, "LIST_REQUESTS", ty, pstr("gdup"))
    assert st == ERR_CONFLICT, (st, msg)
    assert "gdup" in msg and "created concurrently" in msg, msg
    cl.converge()


# ---- 3 ----------------------------------------------------------------------

def test_sigstop_then_sigcont(tmp_path):
    cl, ws = under_load(tmp_path, 2, 4, "s", 40)
    pids = cl.pause(2)
    wait_more_acks(ws, 60)          # writers of 2 time out, go to 1
    time.sleep(2)
    cl.resume(pids)
    cl.wait_linked(timeout=20)
    wait_more_acks(ws, 40)
    finish(cl, ws)


# ---- 4 ----------------------------------------------------------------------

def test_wiped_tracker_gets_full_state(tmp_path):
    cl, ws = under_load(tmp_path, 2, 3, "wa", 60)
    # replication is asynchronous: a write acknowledged by tracker 2 and
    # not yet pushed when its disk is destroyed is gone with it.  So the
    # wipe comes after a convergence; writes go on while it is down.
    stop_writers(ws)
    cl.converge()
    old_epoch = cl.status(2)["epoch"]
    cl.kill(2)
    cl.wipe(2)
    ws += start_writers(cl, 3, "wb")
    wait_more_acks(ws, 60)
    cl.restart(2)
    wait_more_acks(ws, 30)
    st = finish(cl, ws)
    assert st[2]["epoch"] != old_epoch
    cl.check_acked(ws, i=2)


# ---- 5 ----------------------------------------------------------------------

def test_three_trackers_two_killed(tmp_path):
    cl, ws = under_load(tmp_path, 3, 3, "t", 40)
    cl.kill(2)
    cl.kill(3)
    wait_more_acks(ws, 80)          # the survivor takes every write
    assert cl.status(1) is not None
    cl.restart(2, linked=False)
    cl.restart(3)
    wait_more_acks(ws, 40)
    finish(cl, ws)


# ---- 6 ----------------------------------------------------------------------

def test_sync_process_killed_and_respawned(tmp_path):
    cl, ws = under_load(tmp_path, 2, 4, "y", 40)
    for i in (1, 2, 1):
        old = cl.sync_pid(i)
        assert old, "no trk-sync child of tracker %d" % i
        os.kill(old, 9)
        assert wait_until(lambda: cl.sync_pid(i) not in (None, old), 10), \
            "trk-sync of %d not respawned" % i
        assert str(cl.sync_pid(i)) == cl.status(i).get("sync_pid",
                                                       str(cl.sync_pid(i)))
        wait_more_acks(ws, 30)
    finish(cl, ws)


# ---- 7 and failover with the real client -------------------------------------

def _nodes():
    import nodes
    return nodes


class _Info:
    def __init__(self, info):
        self.info = info


def test_client_failover_without_second_login(tmp_path):
    N = _nodes()
    cl = Cluster(tmp_path, 2).start()
    N.create_users(cl.info, tmp_path, "fo")
    cl.converge()
    n = N.Node(cl.info, tmp_path, name="fo").start()
    n.login("fo")
    n.expect("create_group fa", "group fa created")
    cl.converge()
    # the client talks to the first tracker of tracker_info.txt
    cl.kill(1)
    t0 = time.monotonic()
    n.expect("create_group fb", "group fb created", timeout=30)
    pause = time.monotonic() - t0
    out = n.cmd("list_my_groups")
    assert any(l.startswith("fa") for l in out) and \
        any(l.startswith("fb") for l in out), out
    assert pause < 10, pause
    print("client-visible pause after the tracker died: %.2fs" % pause)
    cl.restart(1)
    cl.converge()


def test_download_goes_on_while_tracker_dies(tmp_path):
    N = _nodes()
    cl = Cluster(tmp_path, 2).start()
    N.create_users(cl.info, tmp_path, "seed", "leech")
    cl.converge()
    sw = N.Swarm(_Info(cl.info), tmp_path, group="dg")
    seeder = sw.node("seed")
    leech = sw.node("leech")
    size = 64 * N.CHUNK * 2             # 64 MiB
    src = tmp_path / "f.bin"
    want = N.make_file(str(src), size, seed=7)
    seeder.upload(str(src), "dg")
    cl.converge()
    leech.freeze_downloaders()
    dest = leech.download("dg", "f.bin", str(tmp_path / "out.bin"))
    frozen = _catch_mid(N, leech, "dg", "f.bin")
    cl.kill(1)
    leech.thaw(frozen)
    line = leech.wait_download("dg", "f.bin", 90)
    assert line == "[C] [dg] f.bin -> %s" % dest, \
        (line, leech.stderr()[-3000:])
    assert N.sha1_file(dest) == want
    # the clients went on with tracker 2; tracker 1 rejoins and converges
    assert wait_until(lambda: leech.list_files("dg") ==
                      {"f.bin": (size, 2)}, 15, 0.25), leech.list_files("dg")
    cl.restart(1)
    cl.converge()


def _catch_mid(N, leech, group, name, timeout=30):
    """Lets the leecher's downloaders (frozen before download_file) run
    until the download has some bytes, then SIGSTOPs them again; returns
    the frozen pids.  Loopback is too fast to catch it any other way."""
    downloaders = leech.workers("downloader")
    leech.run_until_mid(group, name, downloaders, 1, timeout)
    frozen = downloaders + leech.freeze_downloaders()
    d = leech.shm_download(group, name)
    assert d is not None and 0 < d["bytes_done"] < d["size"], \
        "download not caught in the middle: %r %r\n%s" % (
            d, leech.show_downloads(), leech.stderr()[-3000:])
    return frozen


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
