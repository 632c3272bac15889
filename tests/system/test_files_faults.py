"""
test_files_faults.py -- file sharing under load and faults: least-loaded
source choice, corrupted seeders, workers SIGKILLed every 200 ms during a
256 MiB download, a seeder node killed mid-download, all sources gone and
back, a leecher killed and resumed, logout/login pausing and resuming.

Real processes on 127.0.0.1; counters are read from the nodes' shm
segments (nodes.NodeShm, offsets from the real headers); every wait is
bounded; every process is stopped by pid.  "Mid-download" is made certain
by SIGSTOPping the leecher's downloader workers (and SIGCONT after), so
no test depends on loopback being slow.
"""

import os
import random
import signal
import time

from nodes import CHUNK, Swarm, Node, create_users, make_file, sha1_file, \
    nchunks, swarm_nodes
from node_shm import DL_ACTIVE, DL_DONE, DL_FAILED, DL_PAUSED
from proto import file_info, peer_connect, peer_auth, get_frame
from tessera import kill_pid, pid_alive, proc_stat, wait_until, node_cert, \
    OK

G = "g"
MiB = 1024 * 1024



def seed_file(node, tmp_path, name, size, seed):
    d = tmp_path / ("files-%s" % node.name)
    d.mkdir(exist_ok=True)
    want = make_file(str(d / name), size, seed=seed)
    node.upload(str(d / name), G)
    return str(d / name), want


def catch_mid(leech, name, start, min_bytes=1, timeout=30):
    """Starts a download with the leecher's downloaders SIGSTOPped (start()
    issues download_file), lets them go, polls the leecher's shm tightly
    until >= min_bytes are done, and SIGSTOPs them again: the download is
    certainly mid-way, whatever the speed of loopback.  Returns (frozen
    pids, shm entry, start()'s result)."""
    frozen = leech.freeze_downloaders()
    assert frozen
    res = start()
    leech.run_until_mid(G, name, frozen, min_bytes, timeout)
    d = leech.shm_download(G, name)
    assert d is not None and d["state"] == DL_ACTIVE and \
        d["bytes_done"] < d["size"], \
        "download finished before it could be interrupted: %r" % d
    return frozen, d, res


def slow_downloaders(tracker, tmp_path, user, port, group, name, conns=6,
                     depth=16):
    """Other downloaders that keep a seeder busy: each of `conns` peer
    connections (TLS, with a ticket user got from the tracker for a node
    certificate of its own) pipelines `depth` PEER_GETs for `name` with a
    tiny receive buffer and never reads, so the seeder's uploads stay in
    progress (its send buffers fill) and its reported load stays up.
    Returns the sockets; closing them ends the load."""
    cert = node_cert(str(tmp_path / "slow-peer"))
    st, msg, fi = file_info(tracker.port, user, "pw", group, name, cert)
    assert st == OK and fi[4], (st, msg)
    socks = []
    for c in range(conns):
        s = peer_connect(port, cert, rcvbuf=4096)
        assert peer_auth(s, fi[4], reqid=c * 1000 + 999) == (OK, "")
        for i in range(depth):
            s.sendall(get_frame(group, name, (c * depth + i) % 128,
                                c * 1000 + i))
        socks.append(s)
    return socks


def test_least_loaded(tracker, tmp_path):
    """A seeder kept busy by other downloaders (six peer connections with
    16 pipelined chunk requests each that read nothing, so its uploads stay
    in progress) gives a new download measurably fewer chunks than an idle
    seeder of the same file."""
    create_users(tracker.info, tmp_path, "busy", "idle", "l")
    sw = Swarm(tracker, tmp_path)
    busy = sw.node("busy", uploaders=1)
    idle = sw.node("idle", uploaders=1)
    leech = sw.node("l")
    seed_file(busy, tmp_path, "heavy.bin", 64 * MiB, seed=1)
    _, want = seed_file(busy, tmp_path, "f.bin", 64 * MiB, seed=2)
    seed_file(idle, tmp_path, "f.bin", 64 * MiB, seed=2)

    socks = slow_downloaders(tracker, tmp_path, "l", busy.port, G,
                             "heavy.bin")
    try:
        def loaded():
            st = busy.shm_stats()
            return st["active_uploads"] + st["queued"] >= 3
        assert wait_until(loaded, 10, 0.05), busy.shm_stats()
        load = busy.shm_stats()
        dest = leech.download(G, "f.bin", str(tmp_path / "f.out"))
        assert leech.wait_download(G, "f.bin", 60)[:3] == "[C]"
        busy_n, idle_n = busy.served(G, "f.bin"), idle.served(G, "f.bin")
    finally:
        for s in socks:
            s.close()
    assert sha1_file(dest) == want
    print("busy seeder load %d+%d; f.bin chunks: busy %d, idle %d" % (
        load["active_uploads"], load["queued"], busy_n, idle_n))
    assert busy_n + idle_n >= nchunks(64 * MiB)
    # the first requests go out before any reply has reported a load, so
    # the busy seeder gets some; after that it gets only what spills over
    assert busy_n * 2 <= idle_n, \
        "busy seeder gave %d chunks, idle one %d; leecher log:\n%s" % (
            busy_n, idle_n, "\n".join(l for l in leech.stderr().splitlines()
                                      if " warn: " in l or " error: " in l))
    # the busy seeder still serves others once the load is gone
    assert wait_until(lambda: busy.shm_stats()["active_uploads"] == 0, 10,
                      0.05)


def test_corrupt_seeder(tracker, tmp_path):
    """Altered after upload: same size with the old mtime (bad bytes are
    served and must be refused by SHA1), same size new mtime, and a
    different size: the results are intact, from the good seeder."""
    bad, good, leech = swarm_nodes(tracker, tmp_path, "bad", "good", "l")
    size = 8 * MiB
    wants, paths = {}, {}
    for i, n in enumerate(("same.bin", "touched.bin", "shrunk.bin")):
        paths[n], wants[n] = seed_file(bad, tmp_path, n, size, seed=10 + i)
        seed_file(good, tmp_path, n, size, seed=10 + i)

    def flip_each_chunk(path, keep_mtime):
        st = os.stat(path)
        with open(path, "r+b") as f:
            for off in range(0, size, CHUNK):
                f.seek(off + 100)
                b = f.read(1)
                f.seek(off + 100)
                f.write(bytes([b[0] ^ 0xff]))
        if keep_mtime:
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    flip_each_chunk(paths["same.bin"], keep_mtime=True)
    flip_each_chunk(paths["touched.bin"], keep_mtime=False)
    with open(paths["shrunk.bin"], "r+b") as f:
        f.truncate(size // 2 + 7)

    dests = {}
    for n in wants:
        dests[n] = leech.download(G, n, str(tmp_path / ("out-" + n)))
    for n in wants:
        line = leech.wait_download(G, n, 60)
        assert line == "[C] [%s] %s -> %s" % (G, n, dests[n]), line
        assert sha1_file(dests[n]) == wants[n], n
    st = leech.shm_stats()
    served_bad = bad.served(G, "same.bin")
    # every chunk bad.bin served of same.bin was corrupt: each one must
    # have been caught
    assert served_bad == 0 or st["hash_failures"] >= 1, (served_bad, st)
    print("bad seeder served %d corrupt chunks of same.bin; leecher "
          "hash failures %d" % (served_bad, st["hash_failures"]))


def three_seeders(tracker, tmp_path, name, size, seed):
    """Seeders s1, s2, s3 sharing the same random file name of size bytes
    in group G, and a leecher l: (seeders, leech, path, its SHA1)."""
    *seeders, leech = swarm_nodes(tracker, tmp_path, "s1", "s2", "s3", "l")
    src = tmp_path / name
    want = make_file(str(src), size, seed=seed)
    for s in seeders:       # the same file, shared by all three
        s.upload(str(src), G)
    return seeders, leech, src, want


def test_worker_crashes_256m(tracker_factory, tmp_path):
    """SIGKILL a random uploader/downloader (of the leecher and the
    seeders) every 200 ms during a 256 MiB download from 3 sources."""
    tracker = tracker_factory()
    seeders, leech, src, want = three_seeders(tracker, tmp_path, "big.bin",
                                              256 * MiB, 42)
    dest = leech.download(G, "big.bin", str(tmp_path / "out.bin"))
    nodes = seeders + [leech]
    rnd = random.Random(1)
    kills = {"uploader": 0, "downloader": 0}
    end = time.monotonic() + 150
    state = None
    n = 0
    # Loopback moves 256 MiB in well under a second, so the leecher's
    # downloaders run only 10 ms of every 200 ms (SIGSTOP/SIGCONT): the
    # download then lasts long enough for a kill every 200 ms to land
    # throughout it.  Kills alternate between the two kinds; the victim
    # within a kind is random (a stopped process dies of SIGKILL too).
    try:
        while time.monotonic() < end:
            d = leech.shm_download(G, "big.bin")
            state = d and d["state"]
            if state in (DL_DONE, DL_FAILED) or \
                    (d is None and (leech.dl_line(G, "big.bin") or "")[:3]
                     in ("[C]", "[F]")):
                break
            for p in leech.workers("downloader"):
                kill_pid(p, signal.SIGCONT)
            time.sleep(0.01)
            for p in leech.workers("downloader"):
                kill_pid(p, signal.SIGSTOP)
            kind = ("downloader", "uploader")[n % 2]
            if kind == "downloader":
                pool = leech.workers("downloader")
            else:
                pool = [p for x in nodes for p in x.workers("uploader")]
            if pool:
                kill_pid(rnd.choice(pool), signal.SIGKILL)
                kills[kind] += 1
                n += 1
            # a respawned downloader starts running: stop it too
            for _ in range(19):
                time.sleep(0.01)
                for p in leech.workers("downloader"):
                    if (proc_stat(p) or ("", "T"))[1] != "T":
                        kill_pid(p, signal.SIGSTOP)
    finally:
        for p in leech.workers("downloader"):
            kill_pid(p, signal.SIGCONT)
    line = leech.wait_download(G, "big.bin", 30)
    assert line == "[C] [%s] big.bin -> %s" % (G, dest), (line, kills)
    assert kills["uploader"] >= 3 and kills["downloader"] >= 3, kills
    assert sha1_file(dest) == want
    # no claim or in-flight count outlived the workers that were killed
    shm = leech.shm()
    try:
        i = shm.find_dl(G, "big.bin")     # kept in shm after DONE
        assert i is not None
        assert shm.dl_claims(i) == [], shm.dl_claims(i)[:5]
        assert shm.dl_inflight(i) == 0
    finally:
        shm.close()
    for n in nodes:
        assert wait_until(lambda: len(n.workers("uploader")) == n.uploaders
                          and len(n.workers("downloader")) ==
                          n.downloaders, 10), \
            (n.name, n.workers("uploader"), n.workers("downloader"))
    print("kills: %r" % kills)


def test_seeder_node_killed(tracker_factory, tmp_path):
    """One of 3 seeders SIGKILLed mid-download: the others finish it."""
    tracker = tracker_factory(session_timeout=3000)
    seeders, leech, src, want = three_seeders(tracker, tmp_path, "f.bin",
                                              48 * MiB, 5)
    frozen, d, dest = catch_mid(
        leech, "f.bin", lambda: leech.download(G, "f.bin",
                                               str(tmp_path / "out.bin")))
    victim = seeders[0]
    pids = victim.pids()
    victim.kill()
    assert not any(pid_alive(p) for p in pids)
    leech.thaw(frozen)
    line = leech.wait_download(G, "f.bin", 60)
    assert line == "[C] [%s] f.bin -> %s" % (G, dest), line
    assert sha1_file(dest) == want
    assert seeders[1].served(G, "f.bin") + seeders[2].served(G, "f.bin") > 0


def test_all_sources_gone_then_back(tracker_factory, tmp_path):
    """The only seeder dies mid-download: show_downloads says waiting;
    it comes back (same port and state dir, login): the download ends."""
    tracker = tracker_factory(session_timeout=3000)
    create_users(tracker.info, tmp_path, "s", "l")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("s")
    leech = sw.node("l")
    path, want = seed_file(seeder, tmp_path, "f.bin", 32 * MiB, seed=6)
    frozen, d, dest = catch_mid(
        leech, "f.bin", lambda: leech.download(G, "f.bin",
                                               str(tmp_path / "out.bin")))
    port, state_dir = seeder.port, seeder.state_dir
    seeder.kill()
    leech.thaw(frozen)
    last = [None]

    def waiting():
        last[0] = leech.dl_line(G, "f.bin")
        return last[0] is not None and \
            "waiting for sources" in last[0]
    assert wait_until(waiting, 20, 0.25), last[0]
    assert last[0].startswith("[D] [%s] f.bin " % G), last[0]
    before = leech.shm_download(G, "f.bin")["bytes_done"]
    assert before < 32 * MiB

    back = Node(tracker.info, tmp_path, name="s-back", port=port,
                state_dir=state_dir).start()
    # its port answers before its user logs in: the leecher may try it
    # in between (and must not give up on it)
    time.sleep(1.5)
    back.login("s")
    line = leech.wait_download(G, "f.bin", 30)
    assert line == "[C] [%s] f.bin -> %s" % (G, dest), line
    assert sha1_file(dest) == want


def test_resume_after_sigkill(tracker, tmp_path):
    """The whole leecher killed mid-download, started again with the same
    state dir: after login it completes without fetching verified chunks
    again (bytes fetched by the second run, from its shm counters)."""
    s1, s2, leech = swarm_nodes(tracker, tmp_path, "s1", "s2", "l")
    size = 96 * MiB
    src = tmp_path / "f.bin"
    want = make_file(str(src), size, seed=8)
    s1.upload(str(src), G)
    s2.upload(str(src), G)
    frozen, d, dest = catch_mid(
        leech, "f.bin", lambda: leech.download(G, "f.bin",
                                               str(tmp_path / "out.bin")),
        min_bytes=size // 4)
    # a second download of the same file on this node is refused
    out = leech.cmd("download_file %s f.bin %s" % (G, tmp_path / "o2.bin"))
    assert len(out) == 1 and out[0].startswith("error: "), out
    time.sleep(1.0)         # > TS_NODE_PERSIST_MS: the bitmap is in node.tdb
    d = leech.shm_download(G, "f.bin")
    done1 = d["chunks_done"]
    port, state_dir = leech.port, leech.state_dir
    leech.kill()
    assert os.path.exists(dest + ".part") and not os.path.exists(dest)

    again = Node(tracker.info, tmp_path, name="l-again", port=port,
                 state_dir=state_dir).start()
    again.login("l")
    line = again.wait_download(G, "f.bin", 60)
    assert line == "[C] [%s] f.bin -> %s" % (G, dest), line
    assert sha1_file(dest) == want
    st = again.shm_stats()
    fetched = st["bytes_down"]
    assert fetched <= size - done1 * CHUNK + 8 * CHUNK, \
        ("second run fetched %d bytes; %d chunks were verified before "
         "the kill" % (fetched, done1))
    print("verified before kill: %d/%d chunks; second run fetched %d "
          "bytes" % (done1, nchunks(size), fetched))


def test_logout_pauses_login_resumes(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "a", "b", "l")
    sw = Swarm(tracker, tmp_path)
    a = sw.node("a")
    b = sw.node("b")
    leech = sw.node("l")
    src = tmp_path / "f.bin"
    size = 64 * MiB
    want = make_file(str(src), size, seed=9)
    a.upload(str(src), G)
    b.upload(str(src), G)
    assert leech.list_files(G) == {"f.bin": (size, 2)}

    # a's shares are not offered while a is logged out
    a.expect("logout", "logged out")
    assert wait_until(lambda: leech.list_files(G) == {"f.bin": (size, 1)},
                      10, 0.2), leech.list_files(G)
    a.login("a")
    assert wait_until(lambda: leech.list_files(G) == {"f.bin": (size, 2)},
                      10, 0.2), leech.list_files(G)

    # the leecher's download pauses while it is logged out
    frozen, d, dest = catch_mid(
        leech, "f.bin", lambda: leech.download(G, "f.bin",
                                               str(tmp_path / "out.bin")))
    leech.expect("logout", "logged out")
    leech.thaw(frozen)
    assert wait_until(lambda: leech.shm_download(G, "f.bin")["state"] ==
                      DL_PAUSED, 5, 0.05), leech.shm_download(G, "f.bin")
    time.sleep(0.3)         # whatever was in flight lands
    b1 = leech.shm_download(G, "f.bin")["bytes_done"]
    time.sleep(1.0)
    d = leech.shm_download(G, "f.bin")
    assert d["state"] == DL_PAUSED and d["bytes_done"] == b1, d
    assert b1 < size
    leech.login("l")
    line = leech.wait_download(G, "f.bin", 60)
    assert line == "[C] [%s] f.bin -> %s" % (G, dest), line
    assert sha1_file(dest) == want
