"""
test_node_daemon.py -- the node as a service: one node per state
directory (node.lock) and a node the terminal's Ctrl-C never reaches.

Real ./tracker and ./client processes: a client driven through a pty
(os.forkpty, so the kernel's line discipline turns ^C into SIGINT for
the terminal's foreground process group, as a user's terminal does) and
clients driven through pipes (nodes.Node).  Every wait is bounded; every
process is stopped by pid (Node.reap, the conftest reaper, PtyClient.stop).
"""

import os
import re
import select
import signal
import subprocess
import time

import tessera
from nodes import Node, create_users, make_file, sha1_file, BIN
from tessera import wait_until, pid_alive, children, free_port


class PtyClient:
    """./client on a pseudo-terminal: what a user at a terminal runs."""

    def __init__(self, info, tmpdir, name):
        self.dir = os.path.join(str(tmpdir), name)
        os.makedirs(self.dir, exist_ok=True)
        self.state = os.path.join(self.dir, "state")
        self.port = free_port()
        tessera.SEGMENTS.add("tessera-node-%d" % self.port)
        argv = [os.path.join(BIN, "client"), "-s", self.state,
                "127.0.0.1:%d" % self.port, str(info)]
        self.pid, self.fd = os.forkpty()
        if self.pid == 0:
            try:
                os.chdir(self.dir)
                os.execv(argv[0], argv)
            finally:
                os._exit(127)
        self.buf = b""
        self.tree = set()

    def read_until(self, pattern, timeout=15):
        """Reads the terminal until pattern (a regex) shows; the text."""
        rx = re.compile(pattern.encode(), re.S)
        deadline = time.monotonic() + timeout
        while not rx.search(self.buf):
            left = deadline - time.monotonic()
            assert left > 0, ("no %r on the terminal; got %r"
                              % (pattern, self.buf[-2000:]))
            r, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                assert data, "terminal closed: %r" % self.buf[-2000:]
                self.buf += data
            self.remember()
        out = self.buf
        self.buf = b""
        return out.decode("utf-8", "replace")

    def send(self, text):
        os.write(self.fd, text.encode())

    def cmd(self, line, want, timeout=30):
        self.send(line + "\r")
        return self.read_until(want, timeout)

    def sup(self):
        """The node supervisor: the client's child called node-sup."""
        kids = children(self.pid, "node-sup")
        return kids[0] if kids else None

    def remember(self):
        for p in tessera.descendants(self.pid):
            self.tree.add(p)

    def stop(self):
        """SIGKILL by pid: the client and every process recorded below it."""
        self.remember()
        for p in [self.pid] + sorted(self.tree):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass
        os.close(self.fd)
        try:
            os.unlink("/dev/shm/tessera-node-%d" % self.port)
        except OSError:
            pass


def test_second_node_on_one_state_dir_is_refused(tracker, tmp_path):
    a = Node(tracker.info, tmp_path, name="a").start()
    # another port, the same state directory
    port = free_port()
    tessera.SEGMENTS.add("tessera-node-%d" % port)
    r = subprocess.run([os.path.join(BIN, "client"), "-s", a.state_dir,
                        "127.0.0.1:%d" % port, str(tracker.info)],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=20, cwd=a.dir)
    rc, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    assert rc == 11, (rc, out, err[-2000:])
    assert "pid %d" % a.proc.pid in err, err[-2000:]
    assert a.state_dir in err, err[-2000:]
    assert out == "", out
    # nothing of the refused one started: no node on its port
    assert not os.path.exists("/dev/shm/tessera-node-%d" % port)
    with open(os.path.join(a.state_dir, "node.lock")) as f:
        assert f.read().strip() == str(a.proc.pid)
    assert os.stat(os.path.join(a.state_dir, "node.lock")).st_mode \
        & 0o777 == 0o600
    # the running node is untouched and still answers
    assert a.cmd("help") != []
    assert len(a.workers("uploader")) == a.uploaders
    # once it is gone the directory is free again
    a.stop()
    b = Node(tracker.info, tmp_path, name="b", state_dir=a.state_dir).start()
    assert b.cmd("help") != []


def test_ctrl_c_at_prompt_leaves_the_node_serving(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "alice", "bob")
    t = PtyClient(tracker.info, tmp_path, "alice")
    try:
        t.read_until(r"tessera> ")
        assert wait_until(lambda: t.sup() is not None, 10)
        sup = t.sup()
        t.cmd("login alice pw", r"logged in as alice.*alice@tessera> ")
        t.cmd("create_group g", r"group g created.*tessera> ")
        src = os.path.join(t.dir, "f.bin")
        want = make_file(src, 3 * 1024 * 1024 + 7, seed=3)
        t.cmd("upload_file %s g" % src, r"shared f\.bin in g.*tessera> ")
        workers = sorted(tessera.descendants(sup))

        # ^C with a half-typed line: the line goes, client and node stay
        t.send("list_gro")
        time.sleep(0.2)
        t.send("\x03")
        t.read_until(r"alice@tessera> ")
        time.sleep(0.5)         # a SIGINT would have been delivered by now
        assert pid_alive(t.pid)
        assert pid_alive(sup), "the node supervisor died of the ^C"
        assert t.sup() == sup
        assert sorted(tessera.descendants(sup)) == workers, \
            "workers were restarted: they got the ^C"
        out = t.cmd("list_groups", r"alice@tessera> ")
        assert "g" in out.split() and "list_gro\r" not in out

        # a peer downloads from the node that saw the ^C
        b = Node(tracker.info, tmp_path, name="bob").start()
        b.login("bob")
        assert b.cmd("join_group g") == ["join request sent to g"]
        t.cmd("accept_request g bob", r"bob accepted into g.*tessera> ")
        dest = os.path.join(b.dir, "got.bin")
        b.download("g", "f.bin", dest)
        assert b.wait_download("g", "f.bin", 60) == \
            "[C] [g] f.bin -> %s" % dest
        assert sha1_file(dest) == want
    finally:
        t.stop()
