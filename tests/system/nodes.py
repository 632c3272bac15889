"""
nodes.py -- long-running client nodes for the file-sharing system tests.

Purpose: a Node is one ./client started with --keep-running whose stdin is
a pipe we write commands to and whose stdout and stderr (one pipe, so
an "error: ..." line stays in order with the results) a reader thread
collects; its log goes to a file (--log-file).  Each command is followed
by "echo zz-mark-N", so we know where its output ends even when it
prints nothing.  Lines the node pushes on its own ("warning: ...",
"notice: ..." when a download ends) are kept apart (Node.pushed) and
appended to the log file.  Also: random test files and their SHA1s, groups and
swarms of nodes (Swarm), and the node's shm counters through
node_shm.NodeShm.  The raw frames of the file messages and the peer links
a hostile or test downloader makes (TLS with a node certificate, a
download ticket from FILE_INFO, PEER_AUTH) are proto.py's.

Locking: none shared between processes; a Node's output list is guarded
by a threading.Condition between its reader thread and the test.  Every
wait is bounded.

Crash behaviour: a Node is a procs.Proc, recorded in procs.REGISTRY, so
the conftest fixture reaps it (SIGKILL by pid, the client and every
process below it, recorded while alive) whatever the test did; a
SIGKILLed node's segment is unlinked once nothing of it is left.
"""

import hashlib
import os
import random
import re
import signal
import threading
import time

import tessera
from node_shm import DL_ACTIVE, DL_FREE, NodeShm
from procs import (SEGMENTS, Proc, kill_pid, node_segment, pid_alive,  # noqa
                   unlink_segment, wait_until)
from tessera import BIN, CLIENT_KINDS, free_port

CHUNK = 512 * 1024


# ---- files ----------------------------------------------------------------

def make_file(path, size, seed=None):
    """Writes size bytes of pseudo-random data (streamed); returns sha1."""
    rnd = random.Random(seed if seed is not None else os.urandom(8))
    h = hashlib.sha1()
    left = size
    with open(path, "wb") as f:
        while left > 0:
            n = min(left, 4 << 20)
            b = rnd.randbytes(n)
            h.update(b)
            f.write(b)
            left -= n
    return h.hexdigest()


def sha1_file(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def nchunks(size):
    return (size + CHUNK - 1) // CHUNK


def chunk_hashes(path):
    out = []
    with open(path, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            out.append(hashlib.sha1(b).digest())
    return out


# ---- the node ---------------------------------------------------------------

class Node(Proc):
    """One ./client --keep-running, driven through a stdin pipe."""

    KINDS = CLIENT_KINDS
    _n = 0

    def __init__(self, info, tmpdir, name=None, port=None, state_dir=None,
                 uploaders=None, downloaders=None, log_level="info",
                 extra=(), env=None):
        Node._n += 1
        self.name = name or "node%d" % Node._n
        self.info = str(info)
        self.dir = os.path.join(str(tmpdir), self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = port or free_port()
        self.addr = "127.0.0.1:%d" % self.port
        self.state_dir = state_dir or os.path.join(self.dir, "state")
        self.segment = node_segment(self.state_dir)
        SEGMENTS.add(self.segment)
        self.uploaders = uploaders or 2
        self.downloaders = downloaders or 4
        self.log_level = log_level
        self.extra = list(extra)
        self.env = dict(env or {})      # added to the client's environment
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.mark = 0
        Proc.__init__(self, os.path.join(self.dir, "stderr.log"))
        self.errpath = self.logpath

    # -- process ---------------------------------------------------------

    def argv(self):
        a = [os.path.join(BIN, "client"), "-s", self.state_dir,
             "-l", self.log_level, "--keep-running",
             "--log-file", self.logpath,
             "--uploaders", str(self.uploaders),
             "--downloaders", str(self.downloaders)]
        return a + self.extra + [self.addr, self.info]

    def start(self, timeout=10):
        self.lines, self.eof, self.pushed = [], False, []
        self.spawn(self.argv(), self.dir, stdout_pipe=True, env=self.env,
                   stderr_pipe=True)
        t = threading.Thread(target=self._reader, args=(self.proc,),
                             daemon=True)
        t.start()
        # the node is up when its workers are
        ok = wait_until(lambda: self.proc.poll() is not None or
                        (len(self.workers("uploader")) >= self.uploaders and
                         len(self.workers("downloader")) >= self.downloaders),
                        timeout)
        if self.proc.poll() is not None or not ok:
            raise AssertionError("%s did not start (rc=%s):\n%s"
                                 % (self.name, self.proc.poll(),
                                    self.stderr()[-3000:]))
        return self

    def _reader(self, proc):
        f = proc.stdout
        for raw in iter(f.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                if line.startswith(("warning: ", "notice: ")):
                    self.pushed.append(line)
                    with open(self.logpath, "a") as log:
                        log.write(line + "\n")
                else:
                    self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def workers(self, kind):
        """Live worker pids of this node with comm == kind."""
        if self.proc is None:
            return []
        out = [p for p in self.pids()[1:] if tessera.comm(p) == kind]
        return sorted(out)

    def stderr(self):
        return self.log()

    def kill(self):
        """SIGKILL the client and its whole process tree (by pid)."""
        if self.proc is None:
            return
        self.kill_tree()

    def close_pipes(self):
        self.close_stdin()      # the reader thread owns stdout

    def reap(self):
        if self.proc is None:
            return
        pids = set(self.pids()) | self.known
        Proc.reap(self)
        # a SIGKILLed node leaves its segment behind: drop it once nothing
        # of ours maps it (a later node on the state dir would replace it)
        if not any(pid_alive(p) for p in pids):
            unlink_segment(self.segment)

    # -- commands -----------------------------------------------------------

    def send_raw(self, text):
        self.pids()
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def cmd(self, line, timeout=30):
        """Runs one command; returns the lines it printed (maybe [])."""
        self.mark += 1
        want = "zz-mark-%d" % self.mark
        with self.cond:
            start = len(self.lines)
        try:
            self.send_raw(line + "\necho " + want + "\n")
        except (BrokenPipeError, OSError):
            raise AssertionError("%s: stdin closed (rc=%s); stderr:\n%s"
                                 % (self.name, self.proc.poll(),
                                    self.stderr()[-3000:]))
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                if want in self.lines[start:]:
                    i = self.lines.index(want, start)
                    return self.lines[start:i]
                left = end - time.monotonic()
                if self.eof or left <= 0:
                    raise AssertionError(
                        "%s: no end of output for %r within %ss (eof=%s); "
                        "got %r; stderr:\n%s"
                        % (self.name, line, timeout, self.eof,
                           self.lines[start:], self.stderr()[-3000:]))
                self.cond.wait(min(left, 0.2))

    def one(self, line, timeout=30):
        out = self.cmd(line, timeout)
        assert len(out) == 1, (self.name, line, out)
        return out[0]

    def expect(self, line, want, timeout=30):
        out = self.cmd(line, timeout)
        assert out == ([want] if isinstance(want, str) else list(want)), \
            "%s: %r printed %r, want %r" % (self.name, line, out, want)
        return out

    def login(self, user, pw="pw"):
        return self.expect("login %s %s" % (user, pw),
                           "logged in as %s" % user)

    def upload(self, path, group):
        """upload_file; asserts the contracted line; returns it."""
        size = os.path.getsize(path)
        name = os.path.basename(path)
        want = ["shared %s in %s (%d bytes, %d chunks)" % (
            n, group, size, nchunks(size)) for n in names_of(name)]
        out = self.cmd("upload_file %s %s" % (quote(path), group),
                       timeout=120)
        assert len(out) == 1 and out[0] in want, (self.name, out, want)
        return out[0]

    def list_files(self, group):
        """{name: (size, sources)} parsed from list_files."""
        out = self.cmd("list_files %s" % group)
        res = {}
        for l in out:
            m = re.match(r'^(.*) size=(\d+) sources=(\d+)$', l)
            assert m, (self.name, "bad list_files line", l, out)
            res[unquote(m.group(1))] = (int(m.group(2)), int(m.group(3)))
        return res

    def download(self, group, name, dest):
        out = self.cmd("download_file %s %s %s" % (group, quote(name),
                                                    quote(dest)))
        final = os.path.join(dest, name) if os.path.isdir(dest) else dest
        want = ["downloading %s from %s to %s" % (n, group, final)
                for n in names_of(name)]
        assert len(out) == 1 and out[0] in want, (self.name, out, want)
        return final

    def show_downloads(self):
        return self.cmd("show_downloads")

    def dl_line(self, group, name):
        """This download's show_downloads line, or None."""
        for l in self.show_downloads():
            for n in names_of(name):
                if re.match(r'^\[[DCF]\] \[%s\] %s[ :]'
                            % (re.escape(group), re.escape(n)), l):
                    return l
        return None

    def wait_download(self, group, name, timeout=60):
        """Polls show_downloads until [C] or [F] for it; returns the line."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            last = self.dl_line(group, name)
            if last and last[:3] in ("[C]", "[F]"):
                return last
            time.sleep(0.2)
        raise AssertionError("%s: download %s/%s not finished in %ss; last "
                             "line %r; shm %r; stderr:\n%s"
                             % (self.name, group, name, timeout, last,
                                self.shm_downloads(), self.stderr()[-3000:]))

    # -- shm counters -----------------------------------------------------------

    def shm(self):
        return NodeShm(self.state_dir)

    def _shm_read(self, what):
        """NodeShm.<what>() on a view opened for it."""
        s = self.shm()
        try:
            return getattr(s, what)()
        finally:
            s.close()

    def shm_stats(self):
        return self._shm_read("stats")

    def shm_shares(self):
        return self._shm_read("shares")

    def shm_downloads(self):
        """The downloads in shm, or None if the segment is gone."""
        try:
            return self._shm_read("downloads")
        except OSError:
            return None

    def shm_download(self, group, name):
        for d in self.shm_downloads() or []:
            if d["group"] == group and d["name"] == name:
                return d
        return None

    def served(self, group, name):
        """Chunks this node served of group/name (0 if not shared)."""
        return sum(s["chunks_served"] for s in self.shm_shares()
                   if s["group"] == group and s["name"] == name)

    def run_until_mid(self, group, name, frozen, min_bytes=1, timeout=30):
        """frozen: this node's downloaders, SIGSTOPped before download_file
        was issued.  Waits until the download is in shm, lets them run
        until >= min_bytes are done (or it is neither active nor free),
        polling tightly, and SIGSTOPs them again: the download is then
        mid-way whatever the speed of loopback."""
        shm = self.shm()
        try:
            idx = [None]

            def found():
                idx[0] = shm.find_dl(group, name)
                return idx[0] is not None
            assert wait_until(found, timeout, 0.001), name
            end = time.monotonic() + timeout
            self.thaw(frozen)
            try:
                while time.monotonic() < end:
                    st, done, _ = shm.dl_progress(idx[0])
                    if done >= min_bytes or st not in (DL_FREE, DL_ACTIVE):
                        break
            finally:
                for p in frozen:
                    kill_pid(p, signal.SIGSTOP)
        finally:
            shm.close()

    def freeze_downloaders(self):
        pids = self.workers("downloader")
        for p in pids:
            kill_pid(p, signal.SIGSTOP)
        return pids

    def thaw(self, pids):
        for p in pids:
            kill_pid(p, signal.SIGCONT)


def quote(s):
    """Quotes an argument for the client's parser when needed."""
    if s and re.match(r'^[A-Za-z0-9._/@:+=-]+$', s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def names_of(name):
    """The ways an output line may print a name: as is, or quoted."""
    q = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return [name] if re.match(r'^[A-Za-z0-9._+=@,-]+$', name) else [name, q]


def unquote(s):
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return re.sub(r'\\(.)', r'\1', s[1:-1])
    return s


def group_of(owner, members, group):
    """owner (logged-in Node) creates group; members (user, Node) join and
    are accepted."""
    owner.expect("create_group %s" % group, "group %s created" % group)
    for user, node in members:
        node.expect("join_group %s" % group,
                    "join request sent to %s" % group)
        owner.expect("accept_request %s %s" % (group, user),
                     "%s accepted into %s" % (user, group))


def seed(node, tmp_path, name, size, seed_=1, group="g"):
    """A random file of size bytes in the node's own folder under
    tmp_path, shared by node in group: (its path, its SHA1)."""
    d = tmp_path / ("files-%s" % node.name)
    d.mkdir(exist_ok=True)
    want = make_file(str(d / name), size, seed=seed_)
    node.upload(str(d / name), group)
    return str(d / name), want


def create_users(info, tmpdir, *names, pw="pw"):
    rc, out, err = tessera.run_client(
        info, ["create_user %s %s" % (u, pw) for u in names], tmpdir)
    assert rc == 0 and out == ["user %s created" % u for u in names], \
        (rc, out, err[-2000:])


def swarm_nodes(tracker, tmpdir, *users):
    """Creates users and starts one node for each, logged in and in one
    group (a Swarm): the nodes, in order."""
    create_users(tracker.info, tmpdir, *users)
    sw = Swarm(tracker, tmpdir)
    return [sw.node(u) for u in users]


class Swarm:
    """A tracker plus logged-in nodes that share one group."""

    def __init__(self, tracker, tmpdir, group="g"):
        self.tracker = tracker
        self.tmp = str(tmpdir)
        self.info = tracker.info
        self.group = group
        self.nodes = []
        self.owner = None

    def node(self, user, **kw):
        """Starts a node, logs user in, joins the group; returns it."""
        n = Node(self.info, self.tmp, name="%s-%d" % (user, len(self.nodes)),
                 **kw).start()
        n.user = user
        n.login(user)
        if self.owner is None:
            self.owner = n
            n.expect("create_group %s" % self.group,
                     "group %s created" % self.group)
        else:
            out = n.cmd("join_group %s" % self.group)
            if out == ["join request sent to %s" % self.group]:
                self.owner.expect("accept_request %s %s" % (self.group, user),
                                  "%s accepted into %s" % (user, self.group))
            else:
                # same user on another node: already a member
                assert out == ["error: already a member of '%s'"
                               % self.group], out
        self.nodes.append(n)
        return n
