"""
test_shm_reset.py -- the tier-2 shm reset through the real binaries: a
segment whose lock cannot be recovered (or whose reset_needed flag is set)
makes the supervisor stop every worker, rebuild the segment from durable
state, and start new workers; nothing the user had is lost.

The damage is done from outside by tests/tools/shm_poison, which maps the
live segment: for the tracker it drives the login throttle's robust lock
(TRK_TBL_THRLOCK) into ENOTRECOVERABLE (a child takes it and exits, then
the tool takes it, EOWNERDEAD, and unlocks without
pthread_mutex_consistent); the next login meets it and sets reset_needed.
A node's segment has no lock (its tables are lock-free), so for a node
the tool sets reset_needed itself.

Every wait is bounded; every process is stopped by pid (the conftest
fixture reaps whatever is left).
"""

import os
import subprocess

from cluster import Cluster
from nodes import Swarm, create_users, sha1_file, seed
from tessera import TOOLS, Raw, wait_until, pid_alive, OK

G = "g"
MiB = 1024 * 1024
TRK_TBL_THRLOCK = 6         # tracker/trk_shm.h


def poison(segment, *args):
    r = subprocess.run([os.path.join(TOOLS, "shm_poison"), segment] +
                       list(args), capture_output=True, timeout=20)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r.stdout.decode()


def shm_show(segment):
    out = poison(segment, "show").split()
    return {k: v for k, v in (w.split("=") for w in out)}


def all_new(old, now, want):
    return len(now) == want and not set(old) & set(now)


def test_tracker_segment_rebuilt(tracker, tmp_path):
    """The throttle lock made ENOTRECOVERABLE: the next login sets
    reset_needed; the tracker's supervisor (same pid) restarts every worker
    on a new segment; the users, the group, the shared file and the node's
    session (all in tracker.tdb) are still there, and a new download works
    against it."""
    create_users(tracker.info, tmp_path, "seed", "leech")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("seed")
    path, want = seed(seeder, tmp_path, "t.bin", 3 * MiB, seed_=11)
    seg = "/" + tracker.segment
    before = shm_show(seg)
    old = tracker.worker_pids()
    assert len(old) == 2 and before["reset_needed"] == "0"

    poison(seg, "lock", str(TRK_TBL_THRLOCK))
    r = Raw(tracker.port)
    try:
        try:
            r.login("seed", "pw")       # meets the lock: may or may not
        except (AssertionError, OSError, EOFError):  # get its answer
            pass
    finally:
        r.close()

    assert wait_until(lambda: all_new(old, tracker.worker_pids(), 2), 15), \
        (old, tracker.worker_pids(), tracker.log()[-3000:])
    assert wait_until(lambda: "shm segment rebuilt" in tracker.log(), 5), \
        tracker.log()[-3000:]
    log = tracker.log()
    assert "reset_needed" in log and "not recoverable" in log, log[-3000:]
    assert log.count("shm segment rebuilt") == 1
    assert tracker.alive()
    for p in old:
        assert not pid_alive(p)
    after = shm_show(seg)
    assert after["reset_needed"] == "0" and after["epoch"] != before["epoch"]
    assert int(after["creator"]) == tracker.pid

    # same state: logins work, the seeder's session still lists the file
    r = Raw(tracker.port)
    try:
        assert len(r.login("leech", "pw")) == 16
    finally:
        r.close()
    assert seeder.list_files(G) == {"t.bin": (3 * MiB, 1)}
    leech = sw.node("leech")
    dest = leech.download(G, "t.bin", str(tmp_path / "t.out"))
    assert leech.wait_download(G, "t.bin", 60)[:3] == "[C]"
    assert sha1_file(dest) == want


def test_node_segment_rebuilt(tracker, tmp_path):
    """reset_needed set in a seeding node's segment and in a downloading
    node's: each node supervisor restarts all its workers (new pids); the
    seeder still serves its shares, the interrupted download completes
    with the right content."""
    create_users(tracker.info, tmp_path, "seed", "leech")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("seed")
    leech = sw.node("leech")
    _, want = seed(seeder, tmp_path, "n.bin", 48 * MiB, seed_=12)

    # the seeder: shares survive, new workers serve them
    seg = "/" + seeder.segment
    old = seeder.workers("uploader") + seeder.workers("downloader")
    epoch = shm_show(seg)["epoch"]
    poison(seg, "flag")
    n = seeder.uploaders + seeder.downloaders
    assert wait_until(lambda: all_new(old, seeder.workers("uploader") +
                                      seeder.workers("downloader"), n),
                      15), seeder.stderr()[-3000:]
    assert "shm segment rebuilt" in seeder.stderr()
    assert shm_show(seg)["epoch"] != epoch
    # the shares come back from node.tdb as the new segment is filled
    # (the agent republishes them): wait for it, bounded
    assert wait_until(lambda: [s["name"] for s in seeder.shm_shares()]
                      == ["n.bin"], 10), seeder.shm_shares()

    # the leecher: reset while its download is in progress
    frozen = leech.freeze_downloaders()
    dest = leech.download(G, "n.bin", str(tmp_path / "n.out"))
    assert wait_until(lambda: leech.shm_download(G, "n.bin") is not None,
                      10)
    lseg = "/" + leech.segment
    lold = leech.workers("uploader") + frozen
    poison(lseg, "flag")
    leech.thaw(frozen)
    n = leech.uploaders + leech.downloaders
    assert wait_until(lambda: all_new(lold, leech.workers("uploader") +
                                      leech.workers("downloader"), n),
                      15), leech.stderr()[-3000:]
    assert leech.wait_download(G, "n.bin", 90)[:3] == "[C]"
    assert sha1_file(dest) == want
    assert seeder.served(G, "n.bin") > 0
    assert seeder.alive() and leech.alive()


def test_cluster_tracker_segment_rebuilt(tmp_path):
    """In a two-tracker cluster, tracker 1's segment rebuilt: its sync
    process restarts with the workers (new pids), the cluster links up
    again, and what either tracker accepts afterwards converges."""
    cl = Cluster(tmp_path, 2).start()
    assert cl.create_user(1, "before")[0] == OK
    cl.converge()
    t1 = cl.t(1)

    def procs():
        return t1.worker_pids() + [p for p in [cl.sync_pid(1)] if p]
    old = procs()
    assert len(old) == 3
    poison("/" + cl.t(1).segment, "lock", str(TRK_TBL_THRLOCK))
    try:
        cl.login(1, "before")
    except Exception:       # meets the lock: the answer may be lost
        pass
    assert wait_until(lambda: all_new(old, procs(), 3), 15), t1.log()[-3000:]
    assert t1.log().count("shm segment rebuilt") == 1
    cl.wait_linked(None, 20)
    assert cl.create_user(2, "after")[0] == OK
    cl.converge()
    for i in (1, 2):
        st, msg, tok = cl.login(i, "before")
        assert st == OK and tok, (i, st, msg)
        assert cl.login(i, "after")[0] == OK
