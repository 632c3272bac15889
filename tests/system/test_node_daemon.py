"""
test_node_daemon.py -- the node as a service: one node per state
directory (node.lock), a node the terminal's Ctrl-C never reaches, and
its control socket (control.sock): ./client --attach, --json, and
hostile input on the socket.

Real ./tracker and ./client processes: a client driven through a pty
(os.forkpty, so the kernel's line discipline turns ^C into SIGINT for
the terminal's foreground process group, as a user's terminal does) and
clients driven through pipes (nodes.Node).  Every wait is bounded; every
process is stopped by pid (Node.reap, the conftest reaper, PtyClient.stop).
"""

import json
import os
import re
import select
import signal
import socket
import stat
import struct
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
        tessera.SEGMENTS.add(tessera.node_segment(self.state))
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
        tessera.unlink_segment(tessera.node_segment(self.state))


def test_second_client_on_one_state_dir_attaches(tracker, tmp_path):
    """One node per state directory: a second ./client there starts no
    node of its own (not even on another port) but attaches to the one
    that runs, names its pid, and leaves it running when it ends."""
    create_users(tracker.info, tmp_path, "alice")
    a = Node(tracker.info, tmp_path, name="a").start()
    a.login("alice")
    sup = [p for p in a.pids() if tessera.comm(p) == "node-sup"]
    assert len(sup) == 1, a.pids()
    with open(os.path.join(a.state_dir, "node.lock")) as f:
        assert f.read().strip() == str(sup[0])
    assert os.stat(os.path.join(a.state_dir, "node.lock")).st_mode \
        & 0o777 == 0o600
    # another port, the same state directory
    port = free_port()
    seg = os.path.join("/dev/shm", a.segment)
    seg_ino = os.stat(seg).st_ino
    r = subprocess.run([os.path.join(BIN, "client"), "-s", a.state_dir,
                        "127.0.0.1:%d" % port, str(tracker.info)],
                       input=b"status\nlist_my_groups\nbogus\n",
                       capture_output=True, timeout=30, cwd=a.dir)
    rc, out, err = r.returncode, r.stdout.decode(), r.stderr.decode()
    assert ("a node already runs on %s (pid %d); attaching to it"
            % (a.state_dir, sup[0])) in err, err[-2000:]
    # the session is alice's, on a's node and port
    assert "node %d serving 127.0.0.1:%d" % (sup[0], a.port) in out, out
    assert "logged in as alice" in out, out
    assert "error: unknown command 'bogus' (try help)" in err, err
    assert "bogus" not in out, out
    assert rc == 2, (rc, out, err[-2000:])
    # nothing of a second node started: the one segment of the state dir
    # is still the running node's (not replaced)
    assert os.stat(seg).st_ino == seg_ino
    # the running node is untouched and still answers
    assert [p for p in a.pids() if tessera.comm(p) == "node-sup"] == sup
    assert "logged in as alice" in a.cmd("status")
    assert len(a.workers("uploader")) == a.uploaders
    # once it is gone the directory is free again
    a.stop()
    b = Node(tracker.info, tmp_path, name="b", state_dir=a.state_dir).start()
    assert b.cmd("help") != []


def test_ctrl_c_at_prompt_leaves_the_node_serving(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "alice", "bob")
    t = PtyClient(tracker.info, tmp_path, "alice")
    try:
        first = t.read_until(r"tessera> ")
        assert wait_until(lambda: t.sup() is not None, 10)
        sup = t.sup()
        # no internal start line before the prompt: they are in node.log
        assert "segment" not in first and "supervisor" not in first, first
        log = os.path.join(t.state, "node.log")
        assert wait_until(lambda: os.path.exists(log) and
                          "supervisor node-sup starting" in open(log).read(),
                          10)
        assert "created shm segment" in open(log).read()
        assert os.stat(log).st_mode & 0o777 == 0o600
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

        # tab completes a command name (one match: the whole name)
        t.send("list_my_gr\t")
        t.read_until(r"oups ")      # libedit redraws the rest of the word
        out = t.cmd("", r"alice@tessera> ")
        assert "g owner=alice members=1" in out, out

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


def test_tab_completes_names_from_the_last_listing(tracker, tmp_path):
    """After a listing, Tab completes a group name where a command takes
    a group and a file name where it takes a file; a name never listed
    is not offered."""
    create_users(tracker.info, tmp_path, "alice")
    t = PtyClient(tracker.info, tmp_path, "alice")
    try:
        t.read_until(r"tessera> ")
        t.cmd("login alice pw", r"logged in as alice.*alice@tessera> ")
        t.cmd("create_group zeta-grp", r"created.*alice@tessera> ")
        src = os.path.join(t.dir, "quux-file.bin")
        make_file(src, 1000, seed=5)
        t.cmd("upload_file %s zeta-grp" % src, r"shared.*alice@tessera> ")
        # not listed yet: Tab offers nothing, the word stays as typed
        t.send("list_files zet\t")
        time.sleep(0.5)
        t.send("\x03")                 # ^C: drop the line
        assert "zeta-grp" not in t.read_until(r"alice@tessera> ")
        t.cmd("list_my_groups", r"zeta-grp.*alice@tessera> ")
        t.send("list_files zet\t")
        t.read_until(r"a-grp ")         # completed: the rest of the name
        out = t.cmd("", r"alice@tessera> ")
        assert "quux-file.bin" in out, out
        # the listing noted the file: the second argument completes it
        t.send("download_info zeta-grp quu\t")
        t.read_until(r"x-file\.bin ")
        t.cmd("", r"alice@tessera> ")
    finally:
        t.stop()


def test_history_never_keeps_a_password(tracker, tmp_path):
    """Commands go to <state>/history, but no login or create_user line,
    not even one that does not parse (an unclosed quote)."""
    create_users(tracker.info, tmp_path, "alice")
    t = PtyClient(tracker.info, tmp_path, "alice")
    try:
        t.read_until(r"tessera> ")
        t.cmd('login alice "pw-secret-1', r"error: .*tessera> ")
        t.cmd("'login' alice pw-secret-2", r"tessera> ")
        t.cmd("create_user carol \"pw-secret-3", r"error: .*tessera> ")
        t.cmd("login alice pw", r"logged in as alice.*alice@tessera> ")
        t.cmd("list_groups", r"alice@tessera> ")
        hist = os.path.join(t.state, "history")
        assert wait_until(lambda: os.path.exists(hist) and
                          "list_groups" in open(hist).read(), 10)
        text = open(hist).read()
        assert "secret" not in text and "alice pw" not in text, text
    finally:
        t.stop()


# ---- the control socket ------------------------------------------------------

def attach(node, lines, json_out=False, timeout=60):
    """./client --attach on node's state dir: (rc, stdout lines, stderr)."""
    argv = [os.path.join(BIN, "client"), "--attach", "-s", node.state_dir]
    if json_out:
        argv.append("--json")
    r = subprocess.run(argv, input="".join(l + "\n" for l in lines).encode(),
                       capture_output=True, timeout=timeout, cwd=node.dir)
    return (r.returncode, r.stdout.decode().splitlines(), r.stderr.decode())


def ctl_connect(node):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(os.path.join(node.state_dir, "control.sock"))
    return s


def ctl_recv(s):
    """One frame's JSON object, or None when the node closed the link."""
    hdr = b""
    while len(hdr) < 4:
        try:
            b = s.recv(4 - len(hdr))
        except ConnectionResetError:
            return None         # closed with our bytes unread
        if not b:
            return None
        hdr += b
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        b = s.recv(n - len(body))
        assert b, "frame cut short"
        body += b
    return json.loads(body)


def ctl_reply(s):
    """The next reply, skipping the events pushed before it."""
    r = ctl_recv(s)
    while r is not None and "event" in r:
        r = ctl_recv(s)
    return r


def ctl_send(s, body):
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    s.sendall(struct.pack(">I", len(body)) + body)


def test_attached_clis_share_the_node(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    a.expect("create_group g", "group g created")
    src = os.path.join(a.dir, "f.bin")
    want = make_file(src, 2 * 1024 * 1024 + 5, seed=5)
    b = Node(tracker.info, tmp_path, name="bob").start()
    b.login("bob")
    assert b.cmd("join_group g") == ["join request sent to g"]
    a.expect("accept_request g bob", "bob accepted into g")

    # an attached CLI runs commands on alice's node: her session
    rc, out, err = attach(a, ["upload_file %s g" % src, "list_files g"])
    assert rc == 0, (rc, out, err)
    assert out == ["shared f.bin in g (%d bytes, 5 chunks)"
                   % os.path.getsize(src),
                   "f.bin size=%d sources=1" % os.path.getsize(src)], out
    # the node's own prompt sees the share the attached CLI made
    assert a.list_files("g") == {"f.bin": (os.path.getsize(src), 1)}

    # two CLIs attached to bob's node at once see the same download
    dest = os.path.join(b.dir, "got.bin")
    s1, s2 = ctl_connect(b), ctl_connect(b)
    try:
        ctl_send(s1, {"id": 1, "cmd": "download_file",
                      "args": ["g", "f.bin", dest]})
        r1 = ctl_reply(s1)
        assert r1["ok"] is True and r1["id"] == 1, r1

        def done():
            ctl_send(s2, {"id": 2, "cmd": "show_downloads"})
            r = ctl_reply(s2)
            return r["ok"] and ("[C] [g] f.bin -> %s" % dest) in r["lines"]
        assert wait_until(done, 60, 0.3)
        # both attached connections were told when it ended
        s1.settimeout(10)
        ev = ctl_recv(s1)
        assert ev.get("event") == "log" and ev["lines"] == [
            "notice: [C] [g] f.bin -> %s" % dest], ev
        ctl_send(s1, {"id": 3, "cmd": "show_downloads"})
        r3 = ctl_reply(s1)
        assert "[C] [g] f.bin -> %s" % dest in r3["lines"], r3
    finally:
        s1.close()
        s2.close()
    assert sha1_file(dest) == want
    # bob's own prompt shows it too
    assert b.wait_download("g", "f.bin", 10) == "[C] [g] f.bin -> %s" % dest

    # --json: every reply one JSON object; failures with their class
    rc, out, err = attach(b, ["list_groups", "list_my_groups",
                              "list_files g", "show_downloads",
                              "list_requests g", "list_files nosuch",
                              "bogus_cmd", "leave_group"], json_out=True)
    replies = [json.loads(l) for l in out]
    assert len(replies) == 8, out
    # one id per request, in order (the CLI's own status came first)
    ids = [r["id"] for r in replies]
    assert ids == list(range(ids[0], ids[0] + 8)), ids
    for r in replies[:4]:
        assert r["ok"] is True and r["exit"] == 0, r
    for r in replies[4:]:
        assert r["ok"] is False and r["exit"] != 0, r
        assert "result" not in r, r
    for r in replies[:4]:
        assert r["ok"] is True and r["exit"] == 0, r
    assert replies[0]["lines"] == ["g owner=alice members=2"], replies[0]
    assert replies[2]["lines"] == ["f.bin size=%d sources=2"
                                   % os.path.getsize(src)] or \
        replies[2]["lines"] == ["f.bin size=%d sources=1"
                                % os.path.getsize(src)], replies[2]
    # the listings carry a structured result: rows with named fields
    size = os.path.getsize(src)
    assert replies[0]["result"] == [{"group": "g", "owner": "alice",
                                     "members": 2}], replies[0]
    assert replies[1]["result"] == replies[0]["result"]
    assert replies[2]["result"] in ([{"name": "f.bin", "size": size,
                                      "sources": n}] for n in (1, 2))
    dl = replies[3]["result"]
    assert len(dl) == 1 and dl[0]["state"] == "done" and \
        dl[0]["pct"] == 100 and dl[0]["dest"] == dest and \
        dl[0]["group"] == "g" and dl[0]["name"] == "f.bin", dl
    assert replies[4]["ok"] is False and replies[4]["exit"] == 4, replies[4]
    assert replies[5]["ok"] is False and replies[5]["exit"] != 0
    assert replies[6] == {"id": ids[6], "ok": False, "exit": 2,
                          "error": "unknown command 'bogus_cmd' (try help)",
                          "lines": ["error: unknown command 'bogus_cmd' "
                                    "(try help)"]}, replies[6]
    assert replies[7]["ok"] is False and replies[7]["exit"] == 2
    assert replies[7]["lines"][0].startswith("usage: leave_group")
    assert rc == 2, rc          # the class of the last failed command

    # without --json errors go to stderr, results to stdout
    rc, out, err = attach(b, ["list_groups", "bogus_cmd"])
    assert rc == 2 and out == ["g owner=alice members=2"], (rc, out, err)
    assert "error: unknown command 'bogus_cmd' (try help)" in err
    # exit detaches; the node stays
    rc, out, err = attach(b, ["exit", "bogus_cmd"])
    assert rc == 0 and out == [] and err == ""
    assert b.cmd("list_groups") != []


def test_control_socket_bad_input(tracker, tmp_path):
    create_users(tracker.info, tmp_path, "alice")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    path = os.path.join(a.state_dir, "control.sock")
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert os.stat(path).st_mode & 0o777 == 0o600

    def alive():
        s = ctl_connect(a)
        ctl_send(s, {"id": 99, "cmd": "list_my_groups"})
        r = ctl_recv(s)
        s.close()
        return r["ok"] is True and r["id"] == 99

    # the same frame is fine: the link stays for the next request
    s = ctl_connect(a)
    for body, want in [(b"not json", "not JSON"),
                       (b"[1]", "JSON object"),
                       (b'{"id":"1","cmd":"help"}', '"id"'),
                       (b'{"id":1,"cmd":"help","args":[1]}', "args[0]"),
                       (b'{"id":1,"cmd":"help","args":"x"}', '"args"'),
                       (b'{"id":1,"id":2,"cmd":"help"}', "not JSON"),
                       (b'{"id":1,"cmd":"help","x":0}', "unknown key"),
                       (b'{"id":1,"cmd":"BAD"}', '"cmd"'),
                       (b'{"id":5,"cmd":"no_such"}', "unknown command"),
                       (b'{"id":6,"cmd":"exit"}', "exit")]:
        ctl_send(s, body)
        r = ctl_recv(s)
        assert r is not None and r["ok"] is False, (body, r)
        assert want in r["error"], (body, r)
        assert r["exit"] == 2, r
    ctl_send(s, {"id": 7, "cmd": "help"})
    r = ctl_recv(s)
    assert r["ok"] is True and len(r["lines"]) > 5
    s.close()

    # oversized length: an error and the link closed, nothing read
    s = ctl_connect(a)
    s.sendall(struct.pack(">I", 65537) + b"{")
    r = ctl_recv(s)
    assert r["ok"] is False and "1 to 65536 bytes" in r["error"], r
    assert ctl_recv(s) is None
    s.close()
    # a zero length
    s = ctl_connect(a)
    s.sendall(struct.pack(">I", 0))
    assert ctl_recv(s)["ok"] is False
    s.close()

    # a truncated frame, then the peer goes: nothing breaks
    s = ctl_connect(a)
    s.sendall(struct.pack(">I", 100) + b'{"id":1')
    s.close()
    # a frame begun and stalled: closed after the frame deadline (5 s)
    s = ctl_connect(a)
    s.sendall(struct.pack(">I", 100) + b'{"id":1')
    t0 = time.monotonic()
    r = ctl_recv(s)
    assert r["ok"] is False and "not completed" in r["error"], r
    assert time.monotonic() - t0 < 12
    s.close()

    # connections that send nothing: closed after 5 s, and while they
    # hang on the node serves others
    idle = [ctl_connect(a) for _ in range(7)]
    assert alive()
    t0 = time.monotonic()
    r = ctl_recv(idle[0])
    assert r["ok"] is False and "no request" in r["error"], r
    assert time.monotonic() - t0 < 12
    for c in idle:
        c.close()

    # more than 16 at once: the 17th is told so (the Node's own CLI holds
    # one of the 16)
    # (whether the CLI's connection is open at this instant is its
    # business: open more until one is refused, at most 17 in all)
    held = [ctl_connect(a) for _ in range(15)]
    time.sleep(0.3)
    r = None
    for _ in range(2):
        extra = ctl_connect(a)
        extra.settimeout(1.0)
        try:
            r = ctl_recv(extra)
        except socket.timeout:
            held.append(extra)      # accepted: a slot was still free
            continue
        extra.close()
        break
    assert r is not None and r["ok"] is False and r["exit"] == 9 \
        and "too many" in r["error"], r
    for c in held:
        c.close()
    assert wait_until(alive, 10, 0.2)

    # another user: the mode keeps it out; with the mode opened up
    # SO_PEERCRED still refuses it
    if os.geteuid() == 0:
        def as_nobody():
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    # from inside the state dir: the test's own parent
                    # directories (0700) do not keep it out, only the
                    # socket's mode and the node's uid check do
                    os.chdir(a.state_dir)
                    os.setgid(65534)
                    os.setuid(65534)
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.settimeout(10)
                    try:
                        s.connect("control.sock")
                    except PermissionError:
                        os._exit(10)
                    # refused at once, before any request
                    r = ctl_recv(s)
                    code = 11 if (r and r["ok"] is False and
                                  "another user" in r["error"]) else 12
                except Exception:
                    code = 13
                os._exit(code)
            _, st = os.waitpid(pid, 0)
            return os.WEXITSTATUS(st)
        os.chmod(a.state_dir, 0o755)
        assert as_nobody() == 10
        os.chmod(path, 0o666)
        assert as_nobody() == 11
        os.chmod(path, 0o600)
        os.chmod(a.state_dir, 0o700)
    assert alive()
    # the node's prompt is unaffected
    assert a.cmd("list_my_groups") == [] or True
    assert len(a.workers("uploader")) == a.uploaders


def test_attach_without_a_node(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    r = subprocess.run([os.path.join(BIN, "client"), "--attach", "-s",
                        str(d)], input=b"help\n", capture_output=True,
                       timeout=10)
    assert r.returncode == 11, r
    assert b"no node answers" in r.stderr


def test_did_you_mean_and_exit_class(tracker, tmp_path):
    rc, out, err = tessera.run_client(
        tracker.info, ["lsit_files g", "list_file g", "helpp", "frobnicate",
                       "zz-mark-1", "ab"], tmp_path)
    # (run_client reads stdout and stderr as one stream)
    assert out == [
        "error: unknown command 'lsit_files' (did you mean list_files?)",
        "error: unknown command 'list_file' (did you mean list_files?)",
        "error: unknown command 'helpp' (did you mean help?)",
        "error: unknown command 'frobnicate' (try help)",
        "error: unknown command 'zz-mark-1' (try help)",
        "error: unknown command 'ab' (try help)"], out
    assert rc == 2, (rc, err[-2000:])


def test_node_warning_reaches_attached_clis(tracker, tmp_path):
    """A warning the node's agent prints on its own (a share changed on
    disk) is pushed to every attached connection as a log event."""
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    a.expect("create_group g", "group g created")
    src = os.path.join(a.dir, "f.bin")
    make_file(src, 1024 * 1024, seed=9)
    a.upload(src, "g")
    b = Node(tracker.info, tmp_path, name="bob").start()
    b.login("bob")
    assert b.cmd("join_group g") == ["join request sent to g"]
    a.expect("accept_request g bob", "bob accepted into g")

    s1, s2, quiet = ctl_connect(a), ctl_connect(a), ctl_connect(a)
    try:
        for i, s in enumerate((s1, s2)):
            ctl_send(s, {"id": i, "cmd": "list_my_groups"})
            assert ctl_recv(s)["ok"] is True
        # the file changes under the share; a peer asks for it
        with open(src, "r+b") as f:
            f.write(b"changed!")
        st = os.stat(src)
        os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
        b.download("g", "f.bin", os.path.join(b.dir, "got.bin"))
        for s in (s1, s2):
            s.settimeout(30)
            ev = ctl_recv(s)
            assert ev is not None and ev.get("event") == "log", ev
            assert any("changed on disk; no longer sharing 'f.bin' in 'g'"
                       in l for l in ev["lines"]), ev
        # a connection that never sent a request gets no events: its
        # first frame is the node's "no request" error
        quiet.settimeout(15)
        r = ctl_recv(quiet)
        assert r is not None and "event" not in r and r["ok"] is False, r
        # the node still serves the attached ones
        ctl_send(s1, {"id": 9, "cmd": "list_files", "args": ["g"]})
        r = ctl_recv(s1)
        while r.get("event"):
            r = ctl_recv(s1)
        assert r["id"] == 9 and r["ok"] is True, r
    finally:
        for s in (s1, s2, quiet):
            s.close()


# ---- the agent: a supervised process that holds the session -----------------

def test_killed_agent_is_restarted_and_the_download_completes(tracker,
                                                               tmp_path):
    """SIGKILL of the node's agent (the process with the tracker session)
    mid-download: the supervisor starts a new one, which resumes the
    saved session and the download from node.tdb; no new login, the
    uploaders and downloaders untouched, the file verified."""
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    a.expect("create_group g", "group g created")
    src = os.path.join(a.dir, "big.bin")
    want = make_file(src, 12 * 1024 * 1024 + 3, seed=11)
    a.upload(src, "g")
    # a capped leecher: the download lasts a few seconds
    b = Node(tracker.info, tmp_path, name="bob",
             extra=["--max-download-rate", "2M"]).start()
    b.login("bob")
    assert b.cmd("join_group g") == ["join request sent to g"]
    a.expect("accept_request g bob", "bob accepted into g")
    sess = os.path.join(b.state_dir, "session")
    assert os.stat(sess).st_mode & 0o777 == 0o600
    assert "bob" in open(sess).read()

    dest = os.path.join(b.dir, "got.bin")
    b.download("g", "big.bin", dest)
    assert wait_until(lambda: (b.shm_download("g", "big.bin") or {})
                      .get("bytes_done", 0) > 1024 * 1024, 20), \
        b.shm_downloads()
    agents = b.workers("agent")
    assert len(agents) == 1, agents
    others = b.workers("uploader") + b.workers("downloader")
    os.kill(agents[0], signal.SIGKILL)
    assert wait_until(lambda: len(b.workers("agent")) == 1 and
                      b.workers("agent") != agents, 10), b.stderr()[-2000:]
    # only the agent was restarted
    assert b.workers("uploader") + b.workers("downloader") == others

    # the same session: no login, and the node still counts as bob's
    out = b.cmd("status")
    assert "logged in as bob" in out, out
    assert b.cmd("list_my_groups") == ["g owner=alice members=2"]
    line = b.wait_download("g", "big.bin", 60)
    assert line == "[C] [g] big.bin -> %s" % dest, line
    assert sha1_file(dest) == want
    assert not os.path.exists(dest + ".part")
    assert "resumed the session of bob" in b.stderr()

    # logout ends the saved session too: a new agent would not resume it
    b.expect("logout", "logged out")
    assert not os.path.exists(sess)
    agents = b.workers("agent")
    os.kill(agents[0], signal.SIGKILL)
    assert wait_until(lambda: len(b.workers("agent")) == 1 and
                      b.workers("agent") != agents, 10)
    assert "not logged in" in b.cmd("status")


def test_piped_cli_waits_through_an_agent_restart(tracker, tmp_path):
    """A script's CLI waiting at the end of its input for a download
    keeps waiting when the agent is killed and restarted, and exits 0
    once the download is done."""
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    a.expect("create_group g", "group g created")
    src = os.path.join(a.dir, "f.bin")
    want = make_file(src, 8 * 1024 * 1024, seed=12)
    a.upload(src, "g")
    b = Node(tracker.info, tmp_path, name="bob",
             extra=["--max-download-rate", "2M"]).start()
    b.login("bob")
    assert b.cmd("join_group g") == ["join request sent to g"]
    a.expect("accept_request g bob", "bob accepted into g")
    dest = os.path.join(b.dir, "f.bin")
    p = subprocess.Popen([os.path.join(BIN, "client"), "--attach", "-s",
                          b.state_dir], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         cwd=b.dir)
    try:
        p.stdin.write(("download_file g f.bin %s\n" % dest).encode())
        p.stdin.close()
        p.stdin = None          # communicate() must not flush it
        assert wait_until(lambda: (b.shm_download("g", "f.bin") or {})
                          .get("bytes_done", 0) > 512 * 1024, 20)
        agents = b.workers("agent")
        os.kill(agents[0], signal.SIGKILL)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert sha1_file(dest) == want
    assert b.dl_line("g", "f.bin") == "[C] [g] f.bin -> %s" % dest
    # the wait broke with the agent; the CLI said so and waited again
    assert "agent restarted; 'wait' again" in err.decode(), err
    assert p.returncode == 0, (p.returncode, out, err)


def test_download_notice_is_printed_above_the_prompt(tracker, tmp_path):
    """At a terminal, a download that ends while the user sits at the
    prompt is told above it, and the prompt (with the half-typed line)
    is drawn again below."""
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    a.login("alice")
    a.expect("create_group g", "group g created")
    src = os.path.join(a.dir, "f.bin")
    want = make_file(src, 6 * 1024 * 1024 + 1, seed=21)
    a.upload(src, "g")
    t = PtyClient(tracker.info, tmp_path, "bob")
    try:
        t.read_until(r"tessera> ")
        t.cmd("login bob pw", r"logged in as bob.*bob@tessera> ")
        t.cmd("join_group g", r"join request sent.*bob@tessera> ")
        a.expect("accept_request g bob", "bob accepted into g")
        dest = os.path.join(t.dir, "got.bin")
        t.cmd("download_file g f.bin %s" % dest,
              r"downloading f\.bin.*bob@tessera> ")
        t.send("list_my")               # typed, not sent
        out = t.read_until(r"notice: \[C\] \[g\] f\.bin -> %s\r?\n"
                           r".*bob@tessera> list_my" % re.escape(dest), 60)
        assert "notice" in out
        assert sha1_file(dest) == want
        # the half-typed line is still there to finish
        out = t.cmd("_groups", r"g owner=alice members=2.*bob@tessera> ")
    finally:
        t.stop()


def test_every_command_answers_in_json(tracker, tmp_path):
    """--json: every command of the table (as `help` lists it) gives one
    JSON object per line, parsed here, with its id, ok and exit class;
    failures carry their error.  A command added to the table and not
    here fails this test."""
    create_users(tracker.info, tmp_path, "alice", "bob")
    a = Node(tracker.info, tmp_path, name="alice").start()
    src = os.path.join(a.dir, "f.bin")
    make_file(src, 600 * 1024, seed=31)
    dest = os.path.join(a.dir, "out")
    os.makedirs(dest)
    script = [
        ("create_user", "create_user carol pw"),
        ("login", "login alice pw"),
        ("create_group", "create_group g"),
        ("list_groups", "list_groups"),
        ("list_my_groups", "list_my_groups"),
        ("join_group", "join_group g"),             # already a member
        ("list_requests", "list_requests g"),
        ("accept_request", "accept_request g bob"),  # no such request
        ("reject_request", "reject_request g bob"),
        ("upload_file", "upload_file %s g" % src),
        ("list_files", "list_files g"),
        ("download_file", "download_file g f.bin %s" % dest),  # has it
        ("show_downloads", "show_downloads"),
        ("download_info", "download_info g f.bin"),
        ("peers", "peers g f.bin"),
        ("pause", "pause g f.bin"),
        ("resume", "resume g f.bin"),
        ("retry", "retry g f.bin"),
        ("cancel", "cancel g f.bin"),
        ("rate", "rate"),
        ("status", "status"),
        ("wait", "wait"),
        ("echo", "echo hello there"),
        ("help", "help"),
        ("stop_share", "stop_share g f.bin"),
        ("leave_group", "leave_group g"),
        ("logout", "logout"),
        ("shutdown", "shutdown"),
    ]
    # the table as the node lists it: every command is exercised here
    listed = set(l.split()[0] for l in a.cmd("help") if l and l[0] != " ")
    listed.discard("command")       # the header line
    listed.discard("exit")          # the CLI's own: it sends nothing
    assert len(listed) > 20 and listed == set(n for n, _ in script), \
        sorted(listed ^ set(n for n, _ in script))
    rc, out, err = attach(a, [line for _, line in script], json_out=True)
    replies = [json.loads(l) for l in out]
    assert len(replies) == len(script), (out, err)
    ids = [r["id"] for r in replies]
    assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
    by = dict(zip([n for n, _ in script], replies))
    for name, r in by.items():
        assert set(r) >= {"id", "ok", "exit", "lines"}, (name, r)
        assert isinstance(r["ok"], bool) and isinstance(r["exit"], int)
        if r["ok"]:
            assert r["exit"] == 0, (name, r)
        else:
            assert r["exit"] != 0 and isinstance(r["error"], str), (name, r)
    for name in ("create_user", "login", "create_group", "list_groups",
                 "upload_file", "list_files", "status", "echo", "help",
                 "rate", "logout", "shutdown"):
        assert by[name]["ok"] is True, (name, by[name])
    assert by["echo"]["lines"] == ["hello there"]
    assert by["status"]["result"]["user"] == "alice"
    assert by["accept_request"]["ok"] is False
    assert by["list_files"]["result"][0]["name"] == "f.bin"
    # shutdown stopped the node
    assert wait_until(lambda: not a.workers("uploader"), 15)


def test_long_state_dir_still_has_a_control_socket(tracker, tmp_path):
    """A state directory whose socket path does not fit in sun_path (108
    bytes) is reached through a descriptor of the directory: the node
    serves its CLIs there as anywhere."""
    create_users(tracker.info, tmp_path, "alice")
    deep = os.path.join(str(tmp_path), "d" * 60, "e" * 60, "state")
    assert len(deep + "/control.sock") > 108
    a = Node(tracker.info, tmp_path, name="alice", state_dir=deep).start()
    a.login("alice")
    assert "logged in as alice" in a.cmd("status")
    rc, out, err = attach(a, ["status"])
    assert rc == 0 and "logged in as alice" in out, (rc, out, err)
    assert stat.S_ISSOCK(os.stat(os.path.join(deep, "control.sock")).st_mode)
