"""
test_steer.py -- downloads a user can steer: a download whose only source
died before its first chunk fails after --source-timeout with its reason
and the piped client exits with CLI_EXIT_TIMEOUT (7) instead of waiting
for good, leaving no empty .part; show_downloads works without a login;
cancel mid-download removes the .part and the record (downloaders that
were mid-chunk write nothing back) and the same file can be asked for
again; pause stops progress while the seeder keeps running and resume
completes a verified file; retry of a failed download completes once a
source is back; download_info lists the peers with chunk counts that sum
to the chunks downloaded.

Real tracker and client processes on 127.0.0.1, real SIGKILLs; the
leecher's downloaders are SIGSTOPped around download_file so "mid-way"
does not depend on loopback being slow; every wait is bounded; every
process is stopped by pid (procs.REGISTRY, the conftest fixture).
"""

import os
import re
import subprocess
import time

from nodes import Node, Swarm, create_users, make_file, nchunks, sha1_file
from node_shm import DL_ACTIVE, DL_PAUSED
from procs import SEGMENTS, Proc, node_segment, wait_until
from tessera import BIN, CLIENT_KINDS, free_port

G = "g"
MiB = 1024 * 1024
EXIT_TIMEOUT = 7
EXIT_NOT_FOUND = 3


class Piped(Proc):
    """A ./client (no --keep-running) fed a whole script on stdin; its
    stdout and stderr read as one stream, its log in a file."""

    KINDS = CLIENT_KINDS

    def __init__(self, info, tmpdir, name, extra=(), state_dir=None):
        self.dir = os.path.join(str(tmpdir), name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        SEGMENTS.add(node_segment(self.state_dir))
        Proc.__init__(self, os.path.join(self.dir, "stderr.log"))
        self.errpath = self.logpath
        self.argv = ([os.path.join(BIN, "client"), "-s", self.state_dir,
                      "-l", "info", "--log-file", self.logpath] + list(extra)
                     + ["127.0.0.1:%d" % self.port, str(info)])

    def run(self, lines, timeout):
        """Runs the script to its end, bounded: (rc, stdout lines)."""
        self.spawn(self.argv, self.dir, stdout_pipe=True, mode="wb",
                   stderr_pipe=True)
        self.pids()
        try:
            out, _ = self.proc.communicate(
                "".join(l + "\n" for l in lines).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            self.reap()
            raise AssertionError("client did not exit within %ss; stderr:\n%s"
                                 % (timeout, self.log()[-3000:]))
        return (self.proc.returncode,
                out.decode("utf-8", "replace").splitlines())


def seed(node, tmp_path, name, size, seed_):
    d = tmp_path / ("files-%s" % node.name)
    d.mkdir(exist_ok=True)
    want = make_file(str(d / name), size, seed=seed_)
    node.upload(str(d / name), G)
    return want


def mid_download(leech, name, dest, min_bytes):
    """download_file with the leecher's downloaders SIGSTOPped, let them
    fetch >= min_bytes and SIGSTOP them again: certainly mid-way.
    Returns the frozen pids."""
    frozen = leech.freeze_downloaders()
    assert frozen
    leech.download(G, name, dest)
    leech.run_until_mid(G, name, frozen, min_bytes)
    d = leech.shm_download(G, name)
    assert d is not None and d["state"] == DL_ACTIVE \
        and 0 < d["bytes_done"] < d["size"], d
    return frozen


def peer_chunks(lines):
    """{addr: chunks} from download_info's peer lines."""
    res = {}
    for l in lines:
        m = re.match(r"^  peer (\S+) fp [0-9a-f]{16} (\w+)(?: complete)? "
                     r"chunks (\d+) rate \S+/s load \d+ inflight \d+ bad \d+$",
                     l)
        if m:
            res[m.group(1)] = (m.group(2), int(m.group(3)))
    return res


def test_sourceless_download_times_out(tracker, tmp_path):
    """The seeder dies before the first chunk: the piped client does not
    wait for good -- after --source-timeout the download is [F] with the
    reason, the client exits 7, no empty .part is left; a later client on
    that node shows it without a login and exits at once."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("a")
    member = sw.node("b")               # b joins the group, then goes
    member.kill()
    seed(seeder, tmp_path, "f.bin", 3 * MiB, 1)
    seeder.kill()                       # listed still, never answers

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = str(out_dir / "f.bin")
    leech = Piped(tracker.info, tmp_path, "leech",
                  extra=["--source-timeout", "2"])
    t0 = time.monotonic()
    rc, out = leech.run(["login b pw", "download_file %s f.bin %s"
                         % (G, dest)], timeout=40)
    took = time.monotonic() - t0
    assert rc == EXIT_TIMEOUT, (rc, out, leech.log()[-3000:])
    assert "downloading f.bin from %s to %s" % (G, dest) in out, out
    assert ("error: download of 'f.bin' from '%s' failed: no source served "
            "a chunk for 2 s" % G) in out, out
    assert took < 30, took
    assert not os.path.exists(dest + ".part"), os.listdir(str(out_dir))
    assert not os.path.exists(dest)

    # the same node again, nobody logged in: the record, and a prompt exit
    again = Piped(tracker.info, tmp_path, "leech2",
                  state_dir=leech.state_dir)
    rc, out = again.run(["show_downloads"], timeout=20)
    assert rc == 0, (rc, out, again.log()[-2000:])
    assert out == ["[F] [%s] f.bin: no source served a chunk for 2 s" % G], \
        out


def test_cancel_mid_download_then_again(tracker, tmp_path):
    """cancel while downloaders are mid-chunk: the .part and the record go,
    nothing is written back to the name when they run on, and the same
    file downloads again to a verified copy; download_info's chunk counts
    add up to the file's chunks."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder, leech = sw.node("a"), sw.node("b")
    size = 48 * MiB
    want = seed(seeder, tmp_path, "f.bin", size, 2)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = str(out_dir / "f.bin")

    frozen = mid_download(leech, "f.bin", dest, 2 * MiB)
    assert os.path.exists(dest + ".part")
    pids = leech.workers("downloader")
    leech.expect("cancel %s f.bin" % G, "cancelled f.bin from %s" % G)
    assert not os.path.exists(dest + ".part")
    assert leech.dl_line(G, "f.bin") is None
    assert leech.shm_download(G, "f.bin") is None
    leech.thaw(frozen)                  # their replies land now: dropped
    time.sleep(1.5)
    assert sorted(os.listdir(str(out_dir))) == [], os.listdir(str(out_dir))
    assert leech.workers("downloader") == pids     # none crashed
    # a cancelled download is unknown from now on
    assert leech.cmd("cancel %s f.bin" % G) == \
        ["error: no download of 'f.bin' from '%s'" % G]

    leech.download(G, "f.bin", dest)
    line = leech.wait_download(G, "f.bin", timeout=90)
    assert line.startswith("[C]"), line
    assert sha1_file(dest) == want
    info = leech.cmd("download_info %s f.bin" % G)
    peers = peer_chunks(info)
    assert list(peers) == [seeder.addr], info
    assert peers[seeder.addr] == ("serving", nchunks(size)), info
    assert info[-1] == "  1 sources, %d chunks served" % nchunks(size), info


def test_pause_holds_resume_completes(tracker, tmp_path):
    """pause: no new chunk while the seeder runs (bytes stay put over
    seconds, the piped end of input would not wait for it); resume: it
    completes from its bitmap to a verified file."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder, leech = sw.node("a"), sw.node("b")
    size = 48 * MiB
    want = seed(seeder, tmp_path, "f.bin", size, 3)
    dest = str(tmp_path / "f.out")

    frozen = mid_download(leech, "f.bin", dest, 2 * MiB)
    leech.expect("pause %s f.bin" % G, "paused f.bin from %s" % G)
    leech.thaw(frozen)
    time.sleep(1.0)                     # chunks in flight settle
    held = leech.shm_download(G, "f.bin")
    assert held["state"] == DL_PAUSED, held
    time.sleep(3.0)
    later = leech.shm_download(G, "f.bin")
    assert later["bytes_done"] == held["bytes_done"] < size, (held, later)
    line = leech.dl_line(G, "f.bin")
    assert re.match(r"^\[D\] \[g\] f\.bin \d+% \S+/48\.0MiB paused$", line), \
        line
    # pausing again is no error; retry is for failed downloads only
    leech.expect("pause %s f.bin" % G, "paused f.bin from %s" % G)
    out = leech.cmd("retry %s f.bin" % G)
    assert out == ["error: 'f.bin' from '%s' has not failed; it is paused "
                   "(resume continues it)" % G], out
    # a paused download still holds its name
    out = leech.cmd("download_file %s f.bin %s" % (G, str(tmp_path)))
    assert out == ["error: 'f.bin' from '%s' is already being downloaded"
                   % G], out

    leech.expect("resume %s f.bin" % G, "resumed f.bin from %s" % G)
    line = leech.wait_download(G, "f.bin", timeout=90)
    assert line.startswith("[C]"), line
    assert sha1_file(dest) == want


def test_retry_after_source_returns(tracker, tmp_path):
    """A download failed for want of a source is retried once the seeder
    is back and completes; asking again after the failure also works."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("a")
    leech = sw.node("b", extra=["--source-timeout", "3"])
    size = 5 * MiB
    want = seed(seeder, tmp_path, "f.bin", size, 4)
    port, state_dir = seeder.port, seeder.state_dir
    seeder.kill()
    dest = str(tmp_path / "f.out")

    leech.download(G, "f.bin", dest)
    line = leech.wait_download(G, "f.bin", timeout=30)
    assert line == "[F] [%s] f.bin: no source served a chunk for 3 s" % G, \
        line
    assert not os.path.exists(dest + ".part")
    assert leech.shm_download(G, "f.bin") is None   # no longer fetched
    # the reasons a command is refused
    assert leech.cmd("resume %s f.bin" % G) == \
        ["error: 'f.bin' from '%s' has failed (retry restarts it)" % G]
    assert leech.cmd("retry %s nope.bin" % G) == \
        ["error: no download of 'nope.bin' from '%s'" % G]

    back = Node(tracker.info, tmp_path, name="a-back", port=port,
                state_dir=state_dir).start()
    back.login("a")
    leech.expect("retry %s f.bin" % G, "retrying f.bin from %s" % G)
    line = leech.wait_download(G, "f.bin", timeout=60)
    assert line.startswith("[C]"), (line, leech.stderr()[-2000:])
    assert sha1_file(dest) == want
    peers = peer_chunks(leech.cmd("download_info %s f.bin" % G))
    assert sum(c for _, c in peers.values()) == nchunks(size), peers
    assert leech.cmd("retry %s f.bin" % G) == \
        ["error: 'f.bin' from '%s' is already complete" % G]


def test_paused_download_does_not_hold_end_of_input(tracker, tmp_path):
    """At the end of piped input a paused download is not waited for (the
    default 180 s source timeout would otherwise hold the client): the
    client says so and exits 0 at once; the record stays paused."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder = sw.node("a")
    member = sw.node("b")
    member.kill()
    seed(seeder, tmp_path, "f.bin", 3 * MiB, 5)
    seeder.kill()
    dest = str(tmp_path / "f.out")
    leech = Piped(tracker.info, tmp_path, "leech")
    t0 = time.monotonic()
    rc, out = leech.run(["login b pw",
                         "download_file %s f.bin %s" % (G, dest),
                         "pause %s f.bin" % G, "show_downloads"], timeout=30)
    assert rc == 0, (rc, out, leech.log()[-2000:])
    assert time.monotonic() - t0 < 20
    assert out[-3:] == ["paused f.bin from %s" % G,
                        "[D] [%s] f.bin 0%% 0B/3.0MiB paused" % G,
                        "1 paused download left"], out
    # the .part (the download may go on later) is kept
    assert os.path.exists(dest + ".part")
