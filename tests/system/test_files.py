"""
test_files.py -- system tests of file sharing: the commands and their
exact outputs, edge sizes, names, refusals, multi-source downloads and
stop_share.

Real ./tracker and ./client processes on 127.0.0.1 free ports (nodes.py
drives long-running clients through a stdin pipe), real files compared
by SHA1.  No locks; every wait is bounded; every process is stopped by
pid (Node.stop / the conftest reaper).
"""

import os


import tessera
from nodes import (CHUNK, Swarm, Node, create_users, make_file, sha1_file,
                   nchunks, quote, names_of)
from proto import upload_frame, parse_list_files, reply_or_close
from tessera import Raw, pstr, wait_until, OK

G = "g"


def done_lines(name, path, group=G):
    """The [C] line, with the name as is or quoted (names with spaces)."""
    return ["[C] [%s] %s -> %s" % (group, n, path) for n in names_of(name)]


def wait_sources(node, name, want, timeout=10, group=G):
    """Waits until list_files shows `want` sources for name."""
    last = [None]

    def ok():
        last[0] = node.list_files(group).get(name)
        return last[0] is not None and last[0][1] == want
    assert wait_until(ok, timeout, 0.2), (name, "want sources", want,
                                          "got", last[0])


def test_edge_files(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "alice", "bob", "carol", "dave")
    sw = Swarm(tracker, tmp_path)
    a = sw.node("alice")
    b = sw.node("bob")
    d = sw.node("dave")
    c = Node(tracker.info, tmp_path, name="carol").start()
    c.login("carol")

    src = tmp_path / "src"
    src.mkdir()
    sizes = {"empty.bin": 0, "exact.bin": CHUNK, "plus1.bin": CHUNK + 1,
             "rand.bin": 3 * 1024 * 1024 + 12345, "my file.bin": 100000}
    sums = {}
    for i, (n, sz) in enumerate(sorted(sizes.items())):
        sums[n] = make_file(str(src / n), sz, seed=i)
        a.upload(str(src / n), G)

    # the exact listing, sorted by name; the name with a space is quoted
    out = b.cmd("list_files %s" % G)
    assert out == ["empty.bin size=0 sources=1",
                   "exact.bin size=%d sources=1" % CHUNK,
                   '"my file.bin" size=100000 sources=1',
                   "plus1.bin size=%d sources=1" % (CHUNK + 1),
                   "rand.bin size=%d sources=1" % sizes["rand.bin"]], out
    assert b.list_files(G) == {n: (sz, 1) for n, sz in sizes.items()}

    # downloads: into a directory, and rand.bin to a file path
    dl = tmp_path / "dl"
    dl.mkdir()
    final = {}
    for n in sorted(sizes):
        if n == "rand.bin":
            final[n] = b.download(G, n, str(dl / "renamed.bin"))
            assert final[n] == str(dl / "renamed.bin")
        else:
            final[n] = b.download(G, n, str(dl))
            assert final[n] == os.path.join(str(dl), n)
    for n in sorted(sizes):
        assert b.wait_download(G, n, 60) in done_lines(n, final[n])
        assert sha1_file(final[n]) == sums[n], n
        assert os.path.getsize(final[n]) == sizes[n]
        assert not os.path.exists(final[n] + ".part")

    # a finished download makes bob a source of it
    for n in sorted(sizes):
        wait_sources(a, n, 2)

    # refusals of download_file
    assert b.cmd("download_file %s rand.bin %s" % (G, dl / "renamed.bin")) \
        == ["error: '%s' already exists" % (dl / "renamed.bin")]
    assert b.cmd("download_file %s exact.bin %s" % (G, dl)) == \
        ["error: '%s' already exists" % (dl / "exact.bin")]
    assert b.cmd("download_file %s nope.bin %s" % (G, dl)) == \
        ["error: no file 'nope.bin' in '%s'" % G]
    out = b.cmd("download_file %s exact.bin %s" % (G, dl / "no" / "x"))
    assert len(out) == 1 and out[0].startswith("error: "), out
    assert b.cmd("download_file nogroup exact.bin %s" % dl)[0] \
        .startswith("error: ")

    # non-member
    nm = "error: not a member of '%s'" % G
    assert c.cmd("list_files %s" % G) == [nm]
    assert c.cmd("download_file %s exact.bin %s" % (G, tmp_path)) == [nm]
    assert c.cmd("upload_file %s %s" % (quote(str(src / "exact.bin")), G)) \
        == [nm]
    assert c.cmd("stop_share %s exact.bin" % G) == [nm]

    # the client refuses a directory and a missing file
    assert a.cmd("upload_file %s %s" % (src, G)) == \
        ["error: cannot read '%s': Is a directory" % src]
    assert a.cmd("upload_file %s %s" % (src / "missing", G)) == \
        ["error: cannot read '%s': No such file or directory"
         % (src / "missing")]

    # same name, other content: refused; same content: one more source
    other = tmp_path / "other"
    other.mkdir()
    make_file(str(other / "exact.bin"), CHUNK, seed=99)
    assert d.cmd("upload_file %s %s" % (other / "exact.bin", G)) == \
        ["error: a different file named 'exact.bin' is already shared in "
         "'%s'" % G]
    make_file(str(other / "rand.bin"), sizes["rand.bin"], seed=sorted(
        sizes).index("rand.bin"))
    d.upload(str(other / "rand.bin"), G)
    assert d.list_files(G)["rand.bin"] == (sizes["rand.bin"], 3)
    assert d.list_files(G)["exact.bin"] == (CHUNK, 2)

    # commands need a login
    b.expect("logout", "logged out")
    assert b.cmd("list_files %s" % G) == ["error: not logged in"]
    # ... but show_downloads, which reads the node's own state
    shown = b.cmd("show_downloads")
    assert shown and all(l.startswith("[C] [%s] " % G) for l in shown), shown
    # SIGTERM stops each node cleanly, its workers with it; the exit
    # status is the class of that session's last failed command: a's
    # missing file (8, data), b's and c's refusals (4, denied), d's name
    # clash (5, exists)
    want = {a: 8, b: 4, c: 4, d: 5}
    for n in (a, b, c, d):
        pids = n.pids()
        assert n.stop() == want[n], n.stderr()[-2000:]
        assert not any(tessera.pid_alive(p) for p in pids)


def test_tracker_refuses_bad_names(tracker):
    r = Raw(tracker.port)
    try:
        assert r.create_user("u1", "pw")[0] == OK
        tok = r.login("u1", "pw", node="127.0.0.1:7")
        st, msg, _ = r.request("CREATE_GROUP", tok + pstr("grp"))
        assert st == OK, msg
        h = [b"\x11" * 20]
        sha = b"\x22" * 20
        for bad in ("a/b", "..", ".", "", "x\x01y", "z\x7f", "n" * 256,
                    "/abs"):
            st, msg, _ = r.request("UPLOAD_FILE",
                                   upload_frame(tok, "grp", bad, 10, sha, h))
            assert st == tessera.ERR_BADREQ, (bad, st, msg)
        # inconsistent chunk counts and sizes
        for size, hs in ((10, []), (10, h * 2), (0, h), (CHUNK + 1, h),
                         ((64 << 30) + 1, h)):
            st, msg, _ = r.request("UPLOAD_FILE",
                                   upload_frame(tok, "grp", "ok.bin", size,
                                                sha, hs))
            assert st != OK, (size, len(hs), st, msg)
        # bad group id, and a group we are not in
        st, msg, _ = r.request("UPLOAD_FILE",
                               upload_frame(tok, "no/grp", "ok.bin", 10,
                                            sha, h))
        assert st != OK, (st, msg)
        # the control: a good frame is accepted and listed
        st, msg, _ = r.request("UPLOAD_FILE",
                               upload_frame(tok, "grp", "ok.bin", 10, sha, h))
        assert st == OK, msg
        st, msg, body = r.request("LIST_FILES", tok + pstr("grp"))
        assert st == OK, msg
        assert parse_list_files(body) == [("ok.bin", 10, 1)]
        # truncated frames cost only the connection, the tracker lives
        r2 = Raw(tracker.port)
        r2.sock.sendall(tessera.frame(30, tok + pstr("grp") + b"\x00\x05ab"))
        got = reply_or_close(r2.sock, 5, silence_ok=False)
        assert got is None or got[2] != OK, got
        r2.close()
        st, msg, body = r.request("LIST_FILES", tok + pstr("grp"))
        assert st == OK and parse_list_files(body) == [("ok.bin", 10, 1)]
    finally:
        r.close()


def test_multi_source(tracker, tmp_path):
    """3 seeders, 1 leecher, 24 MiB: identical, every seeder served."""
    create_users(tracker.info, tmp_path, "s1", "s2", "s3", "l")
    sw = Swarm(tracker, tmp_path)
    seeders = [sw.node(u) for u in ("s1", "s2", "s3")]
    leech = sw.node("l")
    size = 24 * 1024 * 1024
    want = None
    for i, s in enumerate(seeders):
        d = tmp_path / ("share%d" % i)
        d.mkdir()
        want = make_file(str(d / "big.bin"), size, seed=7)
        s.upload(str(d / "big.bin"), G)
    assert leech.list_files(G) == {"big.bin": (size, 3)}
    dest = leech.download(G, "big.bin", str(tmp_path / "out.bin"))
    assert leech.wait_download(G, "big.bin", 60) in \
        done_lines("big.bin", dest)
    assert sha1_file(dest) == want
    served = [s.served(G, "big.bin") for s in seeders]
    assert all(n > 0 for n in served), \
        "a seeder served nothing: %r" % served
    assert sum(served) >= nchunks(size), served
    st = leech.shm_stats()
    assert st["chunks_down"] >= nchunks(size) and st["hash_failures"] == 0


def test_stop_share_last_source(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    a = sw.node("a")
    b = sw.node("b")
    make_file(str(tmp_path / "f.bin"), 2 * CHUNK + 5, seed=3)
    make_file(str(tmp_path / "keep.bin"), 1000, seed=4)
    a.upload(str(tmp_path / "f.bin"), G)
    a.upload(str(tmp_path / "keep.bin"), G)
    dest = b.download(G, "f.bin", str(tmp_path / "copy.bin"))
    assert b.wait_download(G, "f.bin", 30)[:3] == "[C]"
    wait_sources(a, "f.bin", 2)

    a.expect("stop_share %s f.bin" % G, "stopped sharing f.bin in %s" % G)
    assert a.list_files(G)["f.bin"] == (2 * CHUNK + 5, 1)
    a.expect("stop_share %s f.bin" % G,
             "error: not sharing 'f.bin' in '%s'" % G)
    b.expect("stop_share %s f.bin" % G, "stopped sharing f.bin in %s" % G)
    assert a.list_files(G) == {"keep.bin": (1000, 1)}
    assert a.cmd("list_files %s" % G) == ["keep.bin size=1000 sources=1"]
    a.expect("stop_share %s keep.bin" % G,
             "stopped sharing keep.bin in %s" % G)
    assert b.cmd("list_files %s" % G) == []
    assert b.cmd("download_file %s f.bin %s" % (G, tmp_path)) == \
        ["error: no file 'f.bin' in '%s'" % G]
    assert os.path.exists(dest)     # stop_share never deletes the file


def test_download_refuses_existing_part(tracker, tmp_path):
    """A fresh download_file never adopts a .part it did not make: a
    leftover file or a symlink at <dest>.part is refused, the symlink's
    target is left untouched and no dest appears."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    a = sw.node("a")
    b = sw.node("b")
    want = make_file(str(tmp_path / "f.bin"), 2 * CHUNK + 7, seed=11)
    a.upload(str(tmp_path / "f.bin"), G)
    dl = tmp_path / "dl"
    dl.mkdir()

    # a leftover regular .part
    dest = dl / "f.bin"
    with open(str(dest) + ".part", "wb") as f:
        f.write(b"x" * 1000)
    assert b.cmd("download_file %s f.bin %s" % (G, dl)) == \
        ["error: '%s.part' already exists" % dest]
    assert os.path.getsize(str(dest) + ".part") == 1000
    assert not os.path.lexists(str(dest))

    # a symlink .part pointing at a victim file (and a dangling one)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest2 = dl / "g.bin"
    os.symlink(str(victim), str(dest2) + ".part")
    assert b.cmd("download_file %s f.bin %s" % (G, dest2)) == \
        ["error: '%s.part' already exists" % dest2]
    dest3 = dl / "h.bin"
    os.symlink(str(tmp_path / "nowhere"), str(dest3) + ".part")
    assert b.cmd("download_file %s f.bin %s" % (G, dest3)) == \
        ["error: '%s.part' already exists" % dest3]
    assert victim.read_bytes() == b"precious"
    assert not os.path.lexists(str(tmp_path / "nowhere"))
    assert not os.path.lexists(str(dest2))
    assert not os.path.lexists(str(dest3))

    # with no .part the same download goes through
    os.unlink(str(dest) + ".part")
    got = b.download(G, "f.bin", str(dl))
    assert b.wait_download(G, "f.bin", 30) in done_lines("f.bin", got)
    assert sha1_file(got) == want
    assert victim.read_bytes() == b"precious"
