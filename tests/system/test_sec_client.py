"""
test_sec_client.py -- security from the client's side: download
tickets and group membership, hostile file names and destinations, peer
identities, and the cluster CA.

  - a user who leaves a group gets no new ticket: its running download
    stops with "not permitted", and a peer link holding an old ticket can
    fetch until that ticket expires (tracker --ticket-ttl 3000) and not
    after; the seeder keeps serving members;
  - names with '/', '..', control characters are refused by download_file
    and upload_file with clear messages, and an existing destination (a
    file, a symlink, a directory) is never replaced: nothing outside the
    destination is touched;
  - a source whose address is served by another node than the one the
    tracker listed (its certificate fingerprint differs) is refused and
    serves nothing; the download finishes once the real one is back;
  - a client without the cluster CA, or with another cluster's, says so.

Real processes on 127.0.0.1; hostile peers are python TLS sockets with a
certificate of their own (tessera.node_cert).  Every wait is bounded;
every process is stopped by pid (conftest).
"""

import os
import subprocess
import time

from nodes import Node, Swarm, create_users, sha1_file, seed
from proto import file_info, peer_connect, peer_auth, peer_get, \
    upload_frame, ERR_AUTH, ERR_PERM
from tessera import OK, Raw, node_cert, run_client, wait_until, \
    write_info, free_port, BIN

G = "g"
MiB = 1024 * 1024


def test_left_group_no_ticket(tracker_factory, tmp_path):
    """Leaving the group ends a user's downloads: the client's next
    FILE_INFO is refused (no new ticket) and the download fails with "not
    permitted"; a peer link that kept the old ticket fetches until it
    expires and is refused after; members are still served."""
    trk = tracker_factory(extra_args=["--ticket-ttl", "3000"])
    create_users(trk.info, tmp_path, "o", "m", "h", "x")
    sw = Swarm(trk, tmp_path)
    o = sw.node("o")
    m = sw.node("m")
    h = sw.node("h")
    x = sw.node("x")
    _, want = seed(o, tmp_path, "f.bin", 24 * MiB, seed_=7)

    # h: a hostile peer link with its own certificate and a ticket
    cert = node_cert(str(tmp_path / "hostile"))
    st, msg, fi = file_info(trk.port, "h", "pw", G, "f.bin", cert)
    t_fi = time.monotonic()          # the ticket expires 3 s after this
    assert st == OK, (st, msg)
    srcs, ticket = fi[3], fi[4]
    assert ticket, "no ticket in FILE_INFO"
    src = [s for s in srcs if s[0] == o.addr]
    assert src, srcs
    link = peer_connect(o.port, cert, expect_fp=src[0][3])
    assert peer_auth(link, ticket) == (OK, "")
    st, msg, data = peer_get(link, G, "f.bin", 0, reqid=2)
    assert st == OK and len(data) == 512 * 1024, (st, msg)

    # m: a download in flight (its downloaders frozen so it cannot end)
    dl = tmp_path / "m-dl"
    dl.mkdir()
    frozen = m.freeze_downloaders()
    m.download(G, "f.bin", str(dl))
    # both leave the group; m's downloaders wake up only once the ticket
    # m had when it left has expired (and its client asked again)
    m.expect("leave_group %s" % G, "left %s" % G)
    h.expect("leave_group %s" % G, "left %s" % G)
    time.sleep(3.5)
    m.thaw(frozen)

    # m's client fails the download by itself, clearly
    line = m.wait_download(G, "f.bin", 20)
    assert line.startswith("[F] [%s] f.bin: not permitted" % G), line
    assert not os.path.exists(str(dl / "f.bin"))
    # and gets no new ticket
    st, msg, _ = file_info(trk.port, "h", "pw", G, "f.bin", cert)
    assert st == ERR_PERM, (st, msg)

    # the old ticket works until it expires...
    if time.monotonic() - t_fi < 2.0:
        st, msg, _ = peer_get(link, G, "f.bin", 1, reqid=3)
        assert st == OK, (st, msg)
    # ...and not after: on the same link, and shown again on a new one
    time.sleep(max(0.0, 3.5 - (time.monotonic() - t_fi)))
    st, msg, _ = peer_get(link, G, "f.bin", 2, reqid=4)
    assert st == ERR_PERM and msg == "no valid ticket", (st, msg)
    link.close()
    link = peer_connect(o.port, cert, expect_fp=src[0][3])
    st, msg = peer_auth(link, ticket, reqid=5)
    assert st == ERR_AUTH and "expired" in msg, (st, msg)
    st, msg, _ = peer_get(link, G, "f.bin", 0, reqid=6)
    assert st == ERR_PERM, (st, msg)
    link.close()

    # the seeder goes on serving members
    x_dl = tmp_path / "x-dl"
    x_dl.mkdir()
    final = x.download(G, "f.bin", str(x_dl))
    line = x.wait_download(G, "f.bin", 60)
    assert line.startswith("[C]"), line
    assert sha1_file(final) == want


def test_ticket_renewed_long_download(tracker_factory, tmp_path):
    """A download that lasts several ticket lifetimes (--ticket-ttl 3000;
    its downloaders are stopped most of the time) never loses its ticket:
    the client renews it before it runs out, no peer refuses it."""
    trk = tracker_factory(extra_args=["--ticket-ttl", "3000"])
    create_users(trk.info, tmp_path, "o", "l")
    sw = Swarm(trk, tmp_path)
    o = sw.node("o")
    l = sw.node("l", downloaders=1)
    _, want = seed(o, tmp_path, "big.bin", 128 * MiB, seed_=11)
    dl = tmp_path / "dl"
    dl.mkdir()
    frozen = l.freeze_downloaders()
    final = l.download(G, "big.bin", str(dl))
    # paced: the downloader runs 10 ms at a time, and only while it is
    # behind a schedule that reaches 70 % at 10 s, so the transfer spans
    # more than three ticket lifetimes however fast the machine is
    start = time.monotonic()
    while time.monotonic() < start + 10:
        d = l.shm_download(G, "big.bin")
        frac = d["bytes_done"] / d["size"] if d else 0.0
        if frac < 0.7 * (time.monotonic() - start) / 10:
            l.thaw(frozen)
            time.sleep(0.01)
            frozen = l.freeze_downloaders()
        time.sleep(0.2)
    d = l.shm_download(G, "big.bin")
    l.thaw(frozen)
    assert d is not None and d["size"] * 0.3 < d["bytes_done"] < d["size"], \
        (d, l.shm_downloads(), l.show_downloads(), l.stderr()[-3000:],
         o.stderr()[-2000:])
    line = l.wait_download(G, "big.bin", 60)
    assert line.startswith("[C]"), line
    assert sha1_file(final) == want
    assert "refused our ticket" not in l.stderr(), l.stderr()[-3000:]


def test_hostile_names_and_destinations(tracker, tmp_path):
    """download_file and upload_file refuse names with '/', '..' and
    control characters, and never replace an existing destination (file,
    symlink, directory); nothing outside the destination is touched."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    a = sw.node("a")
    b = sw.node("b")
    seed(a, tmp_path, "f.bin", 3 * 512 * 1024 + 5, seed_=3)

    dl = tmp_path / "dl"
    dl.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(b"keep")
    weird = tmp_path / "up"
    weird.mkdir()
    (weird / "x\x01y").write_bytes(b"data")
    hostile = node_cert(str(tmp_path / "hostile"))
    before = sorted(os.listdir(str(tmp_path)))

    def bad(name):
        return ["error: invalid file name '%s' (no '/', control "
                "characters, '.' or '..')" % name]

    # names from the user, on the way to the tracker
    assert b.cmd("download_file %s ../outside/keep.txt %s" % (G, dl)) == \
        bad("../outside/keep.txt")
    assert b.cmd("download_file %s .. %s" % (G, dl)) == bad("..")
    assert b.cmd("download_file %s . %s" % (G, dl)) == bad(".")
    assert b.cmd("download_file %s a/b %s" % (G, dl)) == bad("a/b")
    assert b.cmd("download_file %s \"x\x01y\" %s" % (G, dl)) == \
        bad("x\\x01y")
    assert b.cmd("download_file %s \"x\x1b[2Jy\" %s" % (G, dl)) == \
        bad("x\\x1b[2Jy")

    # upload_file: the name others would see is the last component
    assert a.cmd("upload_file \"%s\" %s" % (weird / "x\x01y", G)) == \
        bad("x\\x01y")
    assert a.cmd("upload_file %s/.. %s" % (weird, G)) == bad("..")
    assert a.cmd("upload_file %s/. %s" % (weird, G)) == bad(".")

    # existing destinations: a file, symlinks (to a file outside, dangling),
    # a directory where the file would go
    (dl / "exists.bin").write_bytes(b"mine")
    assert b.cmd("download_file %s f.bin %s" % (G, dl / "exists.bin")) == \
        ["error: '%s' already exists" % (dl / "exists.bin")]
    os.symlink(str(outside / "keep.txt"), str(dl / "link.bin"))
    assert b.cmd("download_file %s f.bin %s" % (G, dl / "link.bin")) == \
        ["error: '%s' already exists" % (dl / "link.bin")]
    os.symlink(str(outside / "new.txt"), str(dl / "dangling.bin"))
    assert b.cmd("download_file %s f.bin %s" % (G, dl / "dangling.bin")) \
        == ["error: '%s' already exists" % (dl / "dangling.bin")]
    (dl / "f.bin").mkdir()
    assert b.cmd("download_file %s f.bin %s" % (G, dl)) == \
        ["error: '%s' already exists" % (dl / "f.bin")]
    os.symlink(str(outside / "p.part"), str(dl / "other.bin.part"))
    assert b.cmd("download_file %s f.bin %s" % (G, dl / "other.bin")) == \
        ["error: '%s' already exists" % (dl / "other.bin.part")]

    # the tracker refuses such names too (a hostile uploader)
    r = Raw(tracker.port, cert=hostile)
    try:
        tok = r.login("a", "pw")
        for name in ("../evil", "a/b", "..", "x\x01y"):
            st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
                tok, G, name, 4, b"\0" * 20, [b"\0" * 20]))
            assert st != OK, (name, st, msg)
    finally:
        r.close()

    # nothing outside changed, nothing new appeared
    assert (outside / "keep.txt").read_bytes() == b"keep"
    assert sorted(os.listdir(str(outside))) == ["keep.txt"]
    assert (dl / "exists.bin").read_bytes() == b"mine"
    assert os.path.isdir(str(dl / "f.bin"))
    assert os.listdir(str(dl / "f.bin")) == []
    assert sorted(os.listdir(str(tmp_path))) == before
    assert b.show_downloads() == []

    # and a real download still works
    final = b.download(G, "f.bin", str(dl / "real.bin"))
    assert b.wait_download(G, "f.bin", 60).startswith("[C]")
    assert os.path.getsize(final) == 3 * 512 * 1024 + 5


def test_wrong_identity_refused(tracker_factory, tmp_path):
    """The tracker lists A (address, fingerprint) as a source, but A died
    and node B now serves that address with its own certificate: the
    downloader refuses B (logged with the address), B serves nothing, and
    the download completes once A is back with its own identity."""
    trk = tracker_factory(session_timeout=60000)
    create_users(trk.info, tmp_path, "a", "b", "l")
    sw = Swarm(trk, tmp_path)
    a = sw.node("a")
    l = sw.node("l")
    path, want = seed(a, tmp_path, "f.bin", 4 * MiB, seed_=5)
    a_state = a.state_dir
    a.kill()                         # its session lives on at the tracker

    b = Node(trk.info, str(tmp_path), name="b-imposter", port=a.port).start()
    dl = tmp_path / "dl"
    dl.mkdir()
    final = l.download(G, "f.bin", str(dl))

    def refused():
        return "refused: its certificate is not the identity the " \
               "tracker listed for it" in l.stderr()
    assert wait_until(refused, 15, 0.1), l.stderr()[-3000:]
    assert "peer %s: refused" % a.addr in l.stderr()
    time.sleep(1.0)
    d = l.shm_download(G, "f.bin")
    assert d is not None and d["bytes_done"] == 0, d
    assert b.shm_stats()["chunks_up"] == 0
    assert not os.path.exists(final)

    # A comes back (same state dir: same identity) at its address
    b.stop()
    a2 = Node(trk.info, str(tmp_path), name="a-again", port=a.port,
              state_dir=a_state).start()
    a2.login("a")
    line = l.wait_download(G, "f.bin", 60)
    assert line.startswith("[C]"), line
    assert sha1_file(final) == want


def test_cluster_ca_needed(tracker, tmp_path):
    """No ca.crt beside tracker_info.txt: the client says how to get one.
    Another cluster's CA (--ca): the trackers fail the TLS handshake, the
    client says why, once per tracker."""
    lone = tmp_path / "lone"
    lone.mkdir()
    info = write_info(str(lone / "tracker_info.txt"), [free_port()])
    r = subprocess.run([os.path.join(BIN, "client"), "-s",
                        str(lone / "state"), "127.0.0.1:%d" % free_port(),
                        info], input=b"", capture_output=True, timeout=30)
    err = r.stderr.decode()
    assert r.returncode == 2, (r.returncode, err)
    assert "no cluster CA at %s: start a tracker first or copy ca.crt" % \
        os.path.join(str(lone), "pki", "ca.crt") in err, err

    other = tmp_path / "other-ca"
    other.mkdir()
    crt, key = node_cert(str(other), "ca")
    port = free_port()
    r = subprocess.run([os.path.join(BIN, "client"), "-s",
                        str(tmp_path / "st2"), "--ca", crt,
                        "127.0.0.1:%d" % port, tracker.info],
                       input=b"create_user zed pw\n", capture_output=True,
                       timeout=60)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == 6, (r.returncode, out, err)
    # the error on stderr, nothing on stdout
    assert out == "" and "error: no tracker reachable (TLS" in err, (out, err)
    assert err.count("tracker 127.0.0.1:%d (line 2 of the tracker list): "
                     "TLS: not a tracker of our cluster: peer certificate "
                     "rejected: not issued by this cluster's CA"
                     % tracker.port) == 1, err

    # the right CA (the default one) works, and the node identity stays
    rc, out, err = run_client(tracker.info, ["create_user zed pw"],
                              str(tmp_path))
    assert rc == 0 and out == ["user zed created"], (rc, out, err)
