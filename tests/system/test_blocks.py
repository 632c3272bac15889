"""
test_blocks.py -- the last chunks of a download as blocks (ranged
PEER_GETs, workers/dl_block.c) from several peers:

  - with two complete sources, a chunk is assembled from the blocks of
    both (the downloader's debug log says so; both sources' verified
    byte counts in the node's segment grow) and the file arrives intact;
  - a source whose copy is corrupt in every block (content
    changed on disk, size and mtime kept, so it still serves it) is the
    one blamed: its failures count, the good source's stays 0, and the
    file still arrives intact;
  - a source of a build without ranges (TESSERA_OLD_BIN, when set)
    answers a ranged GET "malformed request" and nothing else happens:
    the downloader takes whole chunks from it and the file arrives;
  - ranged GETs from outside (tests/tools/ts_sec): a valid range returns
    exactly those bytes (the short tail of the last chunk too); hostile
    offsets and lengths (misaligned, zero, past the chunk, overflowing)
    are each answered BADREQ on the same link, which stays usable.

Real ./tracker and ./client processes on 127.0.0.1; every wait is
bounded; every process is stopped by pid (conftest).
"""

import hashlib
import os
import re

import pytest

from nodes import CHUNK, Node, Swarm, create_users, make_file, sha1_file
from tessera import ts_sec
from test_sec_peer import Setup, fields

G = "g"
BLOCK = 128 * 1024          # TS_BLOCK_B
# release binaries of a build before ranged GETs, if the machine has them
OLD_BIN = os.environ.get("TESSERA_OLD_BIN", "")


class OldNode(Node):
    """A node running OLD_BIN's client."""

    def argv(self):
        a = Node.argv(self)
        return [os.path.join(OLD_BIN, "client")] + a[1:]


def two_seeders(tracker, tmp_path, size, corrupt=False, old=False):
    """Seeders s1 and s2 share the same file (s2's copy corrupted in
    every block when corrupt; s2 an OldNode when old), leecher l with
    one downloader worker (so both sources are its own) logging at debug
    level, its links to both up (warm.bin fetched first)."""
    create_users(tracker.info, tmp_path, "s1", "s2", "l")
    sw = Swarm(tracker, tmp_path, group=G)
    s1 = sw.node("s1")
    if old:
        s2 = OldNode(tracker.info, tmp_path, name="s2-old").start()
        s2.login("s2")
        s2.expect("join_group %s" % G, "join request sent to %s" % G)
        s1.expect("accept_request %s s2" % G, "s2 accepted into %s" % G)
    else:
        s2 = sw.node("s2")
    leech = sw.node("l", downloaders=1, log_level="debug")
    paths = []
    for n in (s1, s2):
        d = tmp_path / ("files-" + n.name)
        d.mkdir()
        p = str(d / "f.bin")
        want = make_file(p, size, seed=7)
        n.upload(p, G)
        paths.append(p)
        make_file(str(d / "warm.bin"), 2 * CHUNK, seed=8)
        n.upload(str(d / "warm.bin"), G)
    if corrupt:
        st = os.stat(paths[1])
        with open(paths[1], "r+b") as f:
            for off in range(0, size - 64, BLOCK):     # every block
                f.seek(off + 10)
                f.write(b"\xa5" * 54)
        # size and mtime as recorded at upload: the seeder still serves it
        os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns))
    # a small download from both first: the links to both are up when
    # f.bin starts, so its first chunks are split too
    dest = leech.download(G, "warm.bin", str(tmp_path / "warm"))
    line = leech.wait_download(G, "warm.bin", 60)
    assert line[:3] == "[C]", line
    srcs = leech.shm_download(G, "warm.bin")["sources"]
    assert len(srcs) == 2, srcs
    os.unlink(dest)
    return s1, s2, leech, want


def fetch(leech, tmp_path):
    dest = leech.download(G, "f.bin", str(tmp_path / "dl"))
    line = leech.wait_download(G, "f.bin", 60)
    assert line[:3] == "[C]", (line, leech.stderr()[-3000:])
    return dest


def test_chunk_from_two_peers(tracker, tmp_path):
    size = 12 * CHUNK + 777
    s1, s2, leech, want = two_seeders(tracker, tmp_path, size)
    dest = fetch(leech, tmp_path)
    assert sha1_file(dest) == want
    log = leech.stderr()
    multi = re.findall(r"chunk (\d+) of f\.bin assembled from 4 blocks of "
                       r"2 peers", log)
    assert multi, log[-3000:]
    d = leech.shm_download(G, "f.bin")
    srcs = d["sources"]
    assert srcs[s1.addr]["bytes"] > 0 and srcs[s2.addr]["bytes"] > 0, srcs
    assert sum(s["bytes"] for s in srcs.values()) >= size, srcs
    assert all(s["failures"] == 0 for s in srcs.values()), srcs
    assert leech.shm_stats()["hash_failures"] == 0


def test_corrupt_block_is_blamed(tracker, tmp_path):
    size = 12 * CHUNK
    s1, s2, leech, want = two_seeders(tracker, tmp_path, size, corrupt=True)
    dest = fetch(leech, tmp_path)
    assert sha1_file(dest) == want
    srcs = leech.shm_download(G, "f.bin")["sources"]
    assert srcs[s2.addr]["failures"] >= 1, srcs
    assert srcs[s1.addr]["failures"] == 0, srcs
    log = leech.stderr()
    assert "assembled from blocks failed SHA1" in log, log[-3000:]
    # a block was found out by comparing with a verified whole copy
    assert re.search(r"peer %s: a block of chunk \d+ of f\.bin failed SHA1"
                     % re.escape(s2.addr), log), log[-3000:]
    assert not re.search(r"peer %s: [^\n]*failed SHA1" % re.escape(s1.addr),
                         log), log[-3000:]


@pytest.mark.skipif(not OLD_BIN
                    or not os.path.isfile(os.path.join(OLD_BIN, "client")),
                    reason="no binaries of a build without ranges")
def test_old_uploader_gets_whole_chunks(tracker, tmp_path):
    size = 12 * CHUNK + 777
    s1, s2, leech, want = two_seeders(tracker, tmp_path, size, old=True)
    dest = fetch(leech, tmp_path)
    assert sha1_file(dest) == want
    srcs = leech.shm_download(G, "f.bin")["sources"]
    assert all(s["failures"] == 0 for s in srcs.values()), srcs
    log = leech.stderr()
    assert "peer %s serves no ranged GET" % s2.addr in log, log[-3000:]
    assert "bad PEER_DATA" not in log and "out of order" not in log


def test_ranged_get_limits(tracker, tmp_path):
    s = Setup(tracker, tmp_path, checks=1)
    tk = s.ticket(s.fp1)
    with open(s.path, "rb") as f:
        data = f.read()

    def ranged(idx, off, ln, count=1):
        rc, out, err = ts_sec("peer", "--addr", s.seed.addr, "--group", G,
                              "--name", "f.bin", "--timeout-ms", 10000,
                              "--cert", s.a1, "--ticket", tk, "--get", idx,
                              "--count", count, "--range",
                              "%d:%d" % (off, ln))
        return rc, (fields(out) if out else {}), err

    # valid: one block, two blocks, the short tail of the last chunk
    for idx, off, ln in ((1, BLOCK, BLOCK), (0, 2 * BLOCK, 2 * BLOCK),
                         (3, 0, 777)):
        rc, f, err = ranged(idx, off, ln)
        start = idx * CHUNK + off
        assert rc == 0 and f["get"] == "OK", (idx, off, ln, f, err)
        assert f["bytes"] == str(ln), f
        assert f["sha1"] == hashlib.sha1(data[start:start + ln]).hexdigest()
    # hostile: each answered BADREQ, three on one link, nothing else
    for idx, off, ln in ((1, 1, BLOCK), (1, 0, 0), (1, 0, BLOCK + 1),
                         (1, BLOCK, 4 * BLOCK), (1, CHUNK, BLOCK),
                         (1, BLOCK, 0xffffffff), (1, 0xfffe0000, 0x40000),
                         (3, 0, BLOCK), (3, 0, 776)):
        rc, f, err = ranged(idx, off, ln, count=3 if idx == 1 else 1)
        assert rc == 0 and f["get"] == "BADREQ" and f["bytes"] == "0", \
            (idx, off, ln, f, err)
        assert "bad range" in err, err
    # the seeder still serves normally
    s.normal_download()
