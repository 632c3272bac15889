"""
test_sec_files.py -- security: a download's files and its
sources cannot be turned against the node that downloads.

  - the .part is made by download_file itself (O_EXCL) and only that
    file is ever written, renamed or served: a file put at its name
    later (a regular file, a symlink to a secret) is never adopted, never
    renamed into place and never served to peers, and the download fails
    saying why;
  - two downloads can never share a name (one's destination is the
    other's .part), in either order;
  - a source that keeps a chunk's reply trickling (a 16 KiB record every
    TS_DRIP_MS, so the no-byte timeout never fires) is given up after
    --slow-chunk (TS_DL_GET_SLOW_MS) when another source has the chunk, so
    the download finishes long before the trickle could deliver a single
    chunk.

Real ./tracker and ./client processes on 127.0.0.1; the slow source is a
real client with the tests/tools/preload/drip.c shim preloaded.  Every
wait is bounded; every process is stopped by pid (conftest).
"""

import hashlib
import os
import re
import signal
import time

from nodes import CHUNK, Node, Swarm, create_users, make_file, seed, \
    sha1_file
from procs import wait_until
from tessera import TOOLS, free_port, ts_sec
from test_files_faults import catch_mid

G = "g"
MiB = 1024 * 1024
DRIP = os.path.join(TOOLS, "drip.so")
SLOW_CHUNK_MS = 5000        # the leecher's --slow-chunk


sec = ts_sec


def test_planted_part_never_adopted(tracker, tmp_path):
    """A download waiting for its only source: the .part exists from the
    moment download_file answered; replaced by another file, it is never
    written or renamed into place, the download fails with the reason,
    and the planted file is untouched."""
    create_users(tracker.info, tmp_path, "s", "l")
    sw = Swarm(tracker, tmp_path)
    s = sw.node("s")
    l = sw.node("l")
    seed(s, tmp_path, "f.bin", 3 * MiB, seed_=4)
    port, sd = s.port, s.state_dir
    s.kill()

    dl = tmp_path / "dl"
    dl.mkdir()
    # a .part that is there already is refused, never adopted
    (dl / "f.bin.part").write_bytes(b"PRECIOUS")
    assert l.cmd("download_file %s f.bin %s" % (G, dl)) == \
        ["error: '%s' already exists" % (dl / "f.bin.part")]
    assert (dl / "f.bin.part").read_bytes() == b"PRECIOUS"
    os.unlink(str(dl / "f.bin.part"))

    l.download(G, "f.bin", str(dl))
    part = dl / "f.bin.part"
    assert part.exists() and part.stat().st_size == 0
    # someone replaces it before any chunk came
    os.unlink(str(part))
    part.write_bytes(b"PRECIOUS" * 1000)
    ino = part.stat().st_ino

    back = Node(tracker.info, tmp_path, name="s-back", port=port,
                state_dir=sd).start()
    back.login("s")
    line = l.wait_download(G, "f.bin", 60)
    assert line.startswith("[F]"), line
    assert "another file has taken" in line, line
    assert not (dl / "f.bin").exists()
    assert part.stat().st_ino == ino
    assert part.read_bytes() == b"PRECIOUS" * 1000

    # the node goes on downloading: a fresh destination works
    dl2 = tmp_path / "dl2"
    dl2.mkdir()
    final = l.download(G, "f.bin", str(dl2))
    assert l.wait_download(G, "f.bin", 60).startswith("[C]")
    assert os.path.getsize(final) == 3 * MiB


def test_downloads_never_share_a_name(tracker, tmp_path):
    """x waits for its source; x.part to the same directory is refused
    (its destination is x's .part), and the other way round: with
    y.part running, y is refused (its .part would be y.part's
    destination).  The downloads that run finish intact."""
    create_users(tracker.info, tmp_path, "s", "a", "l")
    sw = Swarm(tracker, tmp_path)
    s = sw.node("s")
    a = sw.node("a")
    l = sw.node("l")
    _, wx = seed(s, tmp_path, "x", 2 * MiB, seed_=1)
    seed(s, tmp_path, "y", 1 * MiB, seed_=5)
    seed(a, tmp_path, "x.part", 1 * MiB, seed_=2)
    _, wyp = seed(a, tmp_path, "y.part", 1 * MiB, seed_=3)
    port, sd = s.port, s.state_dir
    s.kill()            # x and y wait; x.part and y.part have a source

    dl = tmp_path / "dl"
    dl.mkdir()
    l.download(G, "x", str(dl))
    assert l.cmd("download_file %s x.part %s" % (G, dl)) == \
        ["error: '%s' already exists" % (dl / "x.part")]

    freeze = a.workers("uploader")      # keep y.part running a while
    for p in freeze:
        os.kill(p, signal.SIGSTOP)
    try:
        l.download(G, "y.part", str(dl))
        out = l.cmd("download_file %s y %s" % (G, dl))
        assert out == ["error: '%s' is already the destination of a "
                       "running download" % (dl / "y.part")], out
    finally:
        for p in freeze:
            os.kill(p, signal.SIGCONT)
    assert l.wait_download(G, "y.part", 60).startswith("[C]")
    assert sha1_file(str(dl / "y.part")) == wyp

    back = Node(tracker.info, tmp_path, name="s-back", port=port,
                state_dir=sd).start()
    back.login("s")
    assert l.wait_download(G, "x", 60).startswith("[C]")
    assert sha1_file(str(dl / "x")) == wx
    assert sorted(os.listdir(str(dl))) == ["x", "y.part"]


def test_swapped_part_never_served(tracker, tmp_path):
    """Mid-download, the .part is replaced by a symlink to a secret file
    (and then by a hard link of it): the node's uploader serves none of
    the secret's chunks to a ticket holder, and the download fails at
    finalization instead of renaming the secret into place."""
    pki = os.path.join(os.path.dirname(tracker.info), "pki")
    create_users(tracker.info, tmp_path, "s", "l")
    sw = Swarm(tracker, tmp_path)
    s = sw.node("s")
    l = sw.node("l")
    nchunks = 32
    seed(s, tmp_path, "f.bin", nchunks * CHUNK, seed_=4)
    secret = tmp_path / "secret.bin"
    make_file(str(secret), nchunks * CHUNK, seed=99)
    data = secret.read_bytes()
    secret_h = {hashlib.sha1(data[i * CHUNK:(i + 1) * CHUNK]).hexdigest()
                for i in range(nchunks)}
    dest = str(tmp_path / "out.bin")
    frozen, d, _ = catch_mid(l, "f.bin", lambda: l.download(G, "f.bin", dest),
                             min_bytes=4 * CHUNK)
    part = dest + ".part"
    atk = str(tmp_path / "atk")
    rc, fp, err = sec("mkcert", atk)
    assert rc == 0, err
    rc, tk, err = sec("ticket", "--issuer", 1, "--group", G, "--name",
                      "f.bin", "--fp", fp, "--ttl-ms", 60000, "--pki", pki)
    assert rc == 0, err
    try:
        for how in ("symlink", "hardlink"):
            os.unlink(part)
            if how == "symlink":
                os.symlink(str(secret), part)
            else:
                os.link(str(secret), part)
            rc, out, err = sec("peer", "--addr", l.addr, "--cert", atk,
                               "--ticket", tk, "--group", G, "--name",
                               "f.bin", "--get", 0, "--count", 4,
                               "--timeout-ms", 10000)
            f = dict(kv.split("=", 1) for kv in out.split()) if out else {}
            assert f.get("auth") == "OK", (how, out, err)
            assert f.get("get") != "OK", (how, out, err)
            assert f.get("sha1") not in secret_h, (how, out)
    finally:
        l.thaw(frozen)
    line = l.wait_download(G, "f.bin", 60)
    assert line.startswith("[F]") and "another file has taken" in line, line
    assert not os.path.exists(dest)
    assert secret.read_bytes() == data


def test_trickling_source_given_up(tracker, tmp_path):
    """Two complete sources, one of which drips a 16 KiB TLS record every
    1.5 s (a 512 KiB chunk would take ~50 s, and it is never silent for
    the 10 s no-byte timeout).  Chunks requested from it are given up
    after --slow-chunk and fetched from the honest source: the whole
    file arrives intact, and the leecher names the peer it gave up on
    (too slow, or beaten by an endgame copy)."""
    create_users(tracker.info, tmp_path, "good", "evil", "l")
    sw = Swarm(tracker, tmp_path)
    good = sw.node("good")
    path, want = seed(good, tmp_path, "f.bin", 8 * MiB, seed_=6)
    port = free_port()
    evil = sw.node("evil", port=port,
                   env={"LD_PRELOAD": DRIP, "TS_DRIP_MS": "1500",
                        "TS_DRIP_PORT": str(port),
                        "ASAN_OPTIONS": "verify_asan_link_order=0:"
                        + os.environ.get("ASAN_OPTIONS", "")})
    evil.upload(path, G)
    l = sw.node("l", extra=["--slow-chunk", str(SLOW_CHUNK_MS)])
    # the dripper is the only source when the download starts, so it is
    # asked for chunks; the honest one is back a few seconds later
    good.expect("logout", "logged out")
    final = l.download(G, "f.bin", str(tmp_path / "out.bin"))
    time.sleep(3)
    good.login("good")
    # bounded well below what the dripper's share would need (4 chunks
    # pipelined per link, ~50 s each)
    line = l.wait_download(G, "f.bin", 120)
    assert line.startswith("[C]"), (line, l.stderr()[-3000:])
    assert sha1_file(final) == want
    # given up as too slow, or (the last chunks) beaten by the endgame's
    # second copy from the honest source, or still pending when the
    # download ended: its replies cancelled either way (the cancel runs
    # on the downloader's next timer turn, so give it a moment)
    pat = re.compile(r"peer %s: (chunk \d+ too slow|chunk \d+ of f\.bin "
                     r"came from another peer first; its reply is "
                     r"cancelled|the download of chunk \d+ ended before "
                     r"its reply came; the reply is cancelled)"
                     % re.escape(evil.addr))
    assert wait_until(lambda: pat.search(l.stderr()), 15, 0.2), \
        l.stderr()[-3000:]
    # the honest source delivered what the dripper was given up on
    assert good.served(G, "f.bin") >= 8, good.served(G, "f.bin")
