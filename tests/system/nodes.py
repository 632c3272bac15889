"""
nodes.py -- long-running client nodes for the file-sharing system tests.

Purpose: a Node is one ./client started with --keep-running whose stdin is
a pipe we write commands to and whose stdout a reader thread collects;
each command is followed by a marker line (an unknown command, whose
error line is contracted) so we know where its output ends even when it
prints nothing.  Also: random test files, SHA1s, the raw frames of the
file messages, and a read-only view of a node's shm segment
(/dev/shm/tessera-node-<port>) for the counters the client keeps there
(chunks served per share, chunks fetched per source, bytes fetched).
Peer links as a hostile or test downloader makes them (issue 5: TLS with
a node certificate, a download ticket from FILE_INFO, PEER_AUTH):
file_info(), peer_connect(), peer_auth(), peer_get().
The struct offsets of that segment are not hard-coded: they are taken
from the real headers (workers/node_shm.h, shm/ts_shm.h) by compiling a
tiny offsetof() probe once per test session.

Locking: none shared between processes; a Node's output list is guarded
by a threading.Condition between its reader thread and the test.  Every
wait is bounded.

Crash behaviour: every Node is recorded in tessera.REGISTRY, so the
conftest fixture reaps it (SIGKILL by pid, the client and every process
below it, recorded while alive) whatever the test did.
"""

import atexit
import hashlib
import mmap
import os
import random
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

import tessera
from tessera import (BIN, REPO, REGISTRY, descendants, free_port, kill_pid,
                     pid_alive, comm, wait_until, pstr, frame, recv_exact,
                     HDR, Raw, OK)

CHUNK = 512 * 1024

# file messages (common/ts_proto.h); added to tessera.MSG for Raw.request
FILE_MSG = {"UPLOAD_FILE": 30, "LIST_FILES": 31, "FILE_INFO": 32,
            "STOP_SHARE": 33, "HAVE_CHUNKS": 34, "MY_SHARES": 35}
PEER_MAP, PEER_GET, PEER_DATA, PEER_AUTH = 60, 61, 62, 63
ERR_AUTH, ERR_PERM = 2, 5
tessera.MSG.update({k: v for k, v in FILE_MSG.items()
                    if k not in tessera.MSG})


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


# ---- raw file frames --------------------------------------------------------

def upload_frame(tok, group, name, size, sha1, hashes):
    return (tok + pstr(group) + pstr(name) + struct.pack(">Q", size) + sha1
            + struct.pack(">I", len(hashes)) + b"".join(hashes))


def parse_list_files(body):
    n = struct.unpack(">I", body[:4])[0]
    off, out = 4, []
    for _ in range(n):
        ln = struct.unpack(">H", body[off:off + 2])[0]
        name = body[off + 2:off + 2 + ln].decode("utf-8", "replace")
        off += 2 + ln
        size, src = struct.unpack(">QI", body[off:off + 12])
        off += 12
        out.append((name, size, src))
    return out


# ---- peer links (TLS, tickets) ------------------------------------------------

def parse_file_info(body):
    """FILE_INFO OK body -> (size, sha1, hashes, [(addr, complete, held,
    fp)], ticket bytes)."""
    size, = struct.unpack(">Q", body[:8])
    sha1 = body[8:28]
    n, = struct.unpack(">I", body[28:32])
    off = 32
    hashes = [body[off + 20 * i:off + 20 * i + 20] for i in range(n)]
    off += 20 * n
    nsrc, = struct.unpack(">I", body[off:off + 4])
    off += 4
    srcs = []
    for _ in range(nsrc):
        ln, = struct.unpack(">H", body[off:off + 2])
        addr = body[off + 2:off + 2 + ln].decode()
        off += 2 + ln
        complete, held = struct.unpack(">BI", body[off:off + 5])
        off += 5
        srcs.append((addr, complete, held, body[off:off + 32]))
        off += 32
    tl, = struct.unpack(">I", body[off:off + 4])
    ticket = body[off + 4:off + 4 + tl]
    assert off + 4 + tl == len(body), "FILE_INFO: trailing bytes"
    return size, sha1, hashes, srcs, ticket


def file_info(tracker_port, user, pw, group, name, cert):
    """Logs user in over a tracker link presenting cert (crt, key) and asks
    FILE_INFO: returns (status, msg, parsed body or None).  The ticket in
    it names cert's fingerprint."""
    r = Raw(tracker_port, cert=cert)
    try:
        tok = r.login(user, pw)
        st, msg, body = r.request("FILE_INFO", tok + pstr(group) +
                                  pstr(name))
        return st, msg, (parse_file_info(body) if st == OK else None)
    finally:
        r.close()


def peer_connect(port, cert, expect_fp=None, rcvbuf=None, timeout=5):
    """A TLS peer link to the node on 127.0.0.1:port presenting cert (crt,
    key); if expect_fp is given, the node's certificate must have it."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE      # self-signed: checked by fp below
    ctx.load_cert_chain(*cert)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    s = ctx.wrap_socket(raw)
    if expect_fp is not None:
        got = hashlib.sha256(s.getpeercert(binary_form=True)).digest()
        assert got == expect_fp, "peer %d is not who we expected" % port
    return s


def _peer_reply(s, reqid, timeout=10):
    h = recv_exact(s, HDR.size, timeout)
    magic, ver, mtype, flags, length, rid = HDR.unpack(h)
    assert rid == reqid, (rid, reqid)
    body = recv_exact(s, length, timeout) if length else b""
    st, ml = struct.unpack(">HH", body[:4])
    return mtype, st, body[4:4 + ml].decode("utf-8", "replace"), \
        body[4 + ml:]


def peer_auth(s, ticket, reqid=1, wait=True):
    """PEER_AUTH with ticket; returns (status, msg) (None if not wait)."""
    s.sendall(frame(PEER_AUTH, struct.pack(">I", len(ticket)) + ticket,
                    reqid))
    if not wait:
        return None
    _, st, msg, _ = _peer_reply(s, reqid)
    return st, msg


def get_frame(group, name, index, reqid):
    return frame(PEER_GET, pstr(group) + pstr(name) +
                 struct.pack(">I", index), reqid)


def peer_get(s, group, name, index, reqid=2):
    """One PEER_GET; returns (status, msg, chunk bytes or b"")."""
    s.sendall(get_frame(group, name, index, reqid))
    mtype, st, msg, rest = _peer_reply(s, reqid)
    assert mtype == PEER_DATA, mtype
    data = b""
    if st == OK:
        ln, = struct.unpack(">I", rest[8:12])
        data = rest[12:12 + ln]
    return st, msg, data


# ---- shm view -----------------------------------------------------------------

_PROBE_FIELDS = [
    # (key, expression)
    ("hdr.ntables", "offsetof(ts_shm_hdr_sh_t, ntables)"),
    ("hdr.tables", "offsetof(ts_shm_hdr_sh_t, tables)"),
    ("tbl.size", "sizeof(ts_shm_table_sh_t)"),
    ("tbl.id", "offsetof(ts_shm_table_sh_t, id)"),
    ("tbl.entry_size", "offsetof(ts_shm_table_sh_t, entry_size)"),
    ("tbl.capacity", "offsetof(ts_shm_table_sh_t, capacity)"),
    ("tbl.offset", "offsetof(ts_shm_table_sh_t, offset)"),
    ("tables_max", "TS_SHM_TABLES_MAX_N"),
    ("T_STATS", "NODE_T_STATS"),
    ("T_SHARES", "NODE_T_SHARES"),
    ("T_DLS", "NODE_T_DLS"),
    ("st.active_uploads", "offsetof(node_stats_sh_t, active_uploads)"),
    ("st.queued", "offsetof(node_stats_sh_t, queued)"),
    ("st.paused", "offsetof(node_stats_sh_t, paused)"),
    ("st.bytes_up", "offsetof(node_stats_sh_t, bytes_up)"),
    ("st.bytes_down", "offsetof(node_stats_sh_t, bytes_down)"),
    ("st.chunks_up", "offsetof(node_stats_sh_t, chunks_up)"),
    ("st.chunks_down", "offsetof(node_stats_sh_t, chunks_down)"),
    ("st.hash_failures", "offsetof(node_stats_sh_t, hash_failures)"),
    ("st.reclaimed_claims", "offsetof(node_stats_sh_t, reclaimed_claims)"),
    ("sh.state", "offsetof(node_share_sh_t, state)"),
    ("sh.group", "offsetof(node_share_sh_t, group)"),
    ("sh.name", "offsetof(node_share_sh_t, name)"),
    ("sh.chunks_served", "offsetof(node_share_sh_t, chunks_served)"),
    ("sh.bytes_served", "offsetof(node_share_sh_t, bytes_served)"),
    ("dl.state", "offsetof(node_dl_sh_t, state)"),
    ("dl.waiting", "offsetof(node_dl_sh_t, waiting)"),
    ("dl.group", "offsetof(node_dl_sh_t, group)"),
    ("dl.name", "offsetof(node_dl_sh_t, name)"),
    ("dl.size", "offsetof(node_dl_sh_t, size)"),
    ("dl.nchunks", "offsetof(node_dl_sh_t, nchunks)"),
    ("dl.bytes_done", "offsetof(node_dl_sh_t, bytes_done)"),
    ("dl.chunks_done", "offsetof(node_dl_sh_t, chunks_done)"),
    ("dl.src", "offsetof(node_dl_sh_t, src)"),
    ("src.size", "sizeof(node_src_sh_t)"),
    ("src.addr", "offsetof(node_src_sh_t, addr)"),
    ("src.state", "offsetof(node_src_sh_t, state)"),
    ("src.failures", "offsetof(node_src_sh_t, failures)"),
    ("src.chunks", "offsetof(node_src_sh_t, chunks)"),
    ("sources_n", "TS_NODE_SOURCES_N"),
    ("T_DLDATA", "NODE_T_DLDATA"),
    ("off.claims", "NODE_OFF_CLAIMS"),
    ("src.inflight", "offsetof(node_src_sh_t, inflight)"),
]

_layout = None
_probe_dir = None


def _cleanup_probe():
    if _probe_dir:
        shutil.rmtree(_probe_dir, ignore_errors=True)


def layout():
    """Field offsets of the node segment, from the real headers."""
    global _layout, _probe_dir
    if _layout is not None:
        return _layout
    _probe_dir = tempfile.mkdtemp(prefix="tessera-probe.")
    atexit.register(_cleanup_probe)
    src = os.path.join(_probe_dir, "probe.c")
    with open(src, "w") as f:
        f.write("#include <stddef.h>\n#include <stdio.h>\n"
                "#include \"ts_shm.h\"\n#include \"node_shm.h\"\n"
                "int main(void) {\n")
        for key, expr in _PROBE_FIELDS:
            f.write('    printf("%%s %%zu\\n", "%s", (size_t) (%s));\n'
                    % (key, expr))
        f.write("    return 0;\n}\n")
    exe = os.path.join(_probe_dir, "probe")
    inc = []
    for d in ("common", "net", "shm", "master", "workers"):
        inc += ["-I", os.path.join(REPO, d)]
    r = subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE"] + inc +
                       ["-o", exe, src], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("shm layout probe did not compile:\n%s"
                             % r.stderr.decode(errors="replace"))
    out = subprocess.run([exe], capture_output=True, timeout=10,
                         check=True).stdout.decode()
    _layout = {k: int(v) for k, v in (l.split() for l in out.splitlines())}
    return _layout


class NodeShm:
    """Read-only view of /dev/shm/tessera-node-<port> (None if absent)."""

    def __init__(self, port):
        self.path = "/dev/shm/tessera-node-%d" % port
        self.L = layout()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            self.m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)

    def close(self):
        self.m.close()

    def _u(self, off, fmt):
        return struct.unpack_from("<" + fmt, self.m, off)[0]

    def _str(self, off, maxlen):
        b = self.m[off:off + maxlen]
        return b.split(b"\0", 1)[0].decode("utf-8", "replace")

    def table(self, tid):
        L = self.L
        n = self._u(L["hdr.ntables"], "I")
        for i in range(min(n, L["tables_max"])):
            t = L["hdr.tables"] + i * L["tbl.size"]
            if self._u(t + L["tbl.id"], "I") == tid:
                return (self._u(t + L["tbl.offset"], "Q"),
                        self._u(t + L["tbl.entry_size"], "I"),
                        self._u(t + L["tbl.capacity"], "I"))
        raise AssertionError("no table %d in %s" % (tid, self.path))

    def stats(self):
        base, _, _ = self.table(self.L["T_STATS"])
        small = ("st.paused", "st.active_uploads", "st.queued")
        return {k[3:]: self._u(base + v, "I" if k in small else "Q")
                for k, v in self.L.items() if k.startswith("st.")}

    def shares(self):
        """[{group, name, state, chunks_served, bytes_served}] non-FREE."""
        L = self.L
        base, esz, cap = self.table(L["T_SHARES"])
        out = []
        for i in range(cap):
            e = base + i * esz
            st = self._u(e + L["sh.state"], "I")
            if st == 0:
                continue
            out.append({"state": st,
                        "group": self._str(e + L["sh.group"], 65),
                        "name": self._str(e + L["sh.name"], 256),
                        "chunks_served": self._u(e + L["sh.chunks_served"],
                                                 "Q"),
                        "bytes_served": self._u(e + L["sh.bytes_served"],
                                                "Q")})
        return out

    def find_dl(self, group, name):
        """Index of the non-FREE download group/name, or None."""
        L = self.L
        base, esz, cap = self.table(L["T_DLS"])
        for i in range(cap):
            e = base + i * esz
            if self._u(e + L["dl.state"], "I") != 0 and \
                    self._str(e + L["dl.group"], 65) == group and \
                    self._str(e + L["dl.name"], 256) == name:
                return i
        return None

    def dl_claims(self, i):
        """Chunk claims of download i still held: [(chunk, owner word)]."""
        L = self.L
        e = self.table(L["T_DLS"])
        nch = self._u(e[0] + i * e[1] + L["dl.nchunks"], "I")
        base, esz, _ = self.table(L["T_DLDATA"])
        c0 = base + i * esz + L["off.claims"]
        return [(c, w) for c, w in
                ((c, self._u(c0 + 8 * c, "Q")) for c in range(nch)) if w]

    def dl_inflight(self, i):
        """Sum of the in-flight counts of download i's sources."""
        L = self.L
        base, esz, _ = self.table(L["T_DLS"])
        e = base + i * esz
        return sum(self._u(e + L["dl.src"] + k * L["src.size"]
                           + L["src.inflight"], "I")
                   for k in range(L["sources_n"]))

    def dl_progress(self, i):
        """(state, bytes_done, size) of download i, cheaply."""
        L = self.L
        base, esz, _ = self._dls if hasattr(self, "_dls") else \
            self.table(L["T_DLS"])
        self._dls = (base, esz, 0)
        e = base + i * esz
        return (self._u(e + L["dl.state"], "I"),
                self._u(e + L["dl.bytes_done"], "Q"),
                self._u(e + L["dl.size"], "Q"))

    def downloads(self):
        """[{group, name, state, waiting, bytes_done, chunks_done,
        sources: {addr: {state, chunks, failures}}}] non-FREE."""
        L = self.L
        base, esz, cap = self.table(L["T_DLS"])
        out = []
        for i in range(cap):
            e = base + i * esz
            st = self._u(e + L["dl.state"], "I")
            if st == 0:
                continue
            srcs = {}
            for k in range(L["sources_n"]):
                s = e + L["dl.src"] + k * L["src.size"]
                sst = self._u(s + L["src.state"], "I")
                if sst == 0:
                    continue
                srcs[self._str(s + L["src.addr"], 64)] = {
                    "state": sst,
                    "chunks": self._u(s + L["src.chunks"], "Q"),
                    "failures": self._u(s + L["src.failures"], "I")}
            out.append({"state": st,
                        "waiting": self._u(e + L["dl.waiting"], "I"),
                        "group": self._str(e + L["dl.group"], 65),
                        "name": self._str(e + L["dl.name"], 256),
                        "size": self._u(e + L["dl.size"], "Q"),
                        "bytes_done": self._u(e + L["dl.bytes_done"], "Q"),
                        "chunks_done": self._u(e + L["dl.chunks_done"], "I"),
                        "sources": srcs})
        return out


# ---- the node ---------------------------------------------------------------

class Node:
    """One ./client --keep-running, driven through a stdin pipe."""

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
        self.uploaders = uploaders or 2
        self.downloaders = downloaders or 4
        self.log_level = log_level
        self.extra = list(extra)
        self.env = dict(env or {})      # added to the client's environment
        self.errpath = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.known = set()
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.mark = 0
        REGISTRY.append(self)

    # -- process ---------------------------------------------------------

    def argv(self):
        a = [os.path.join(BIN, "client"), "-s", self.state_dir,
             "-l", self.log_level, "--keep-running",
             "--uploaders", str(self.uploaders),
             "--downloaders", str(self.downloaders)]
        return a + self.extra + [self.addr, self.info]

    def start(self, timeout=10):
        self.lines, self.eof = [], False
        errf = open(self.errpath, "ab")
        try:
            env = None
            if self.env:
                env = dict(os.environ)
                env.update(self.env)
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=errf,
                                         cwd=self.dir, env=env)
        finally:
            errf.close()
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
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace")
                                  .rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def pids(self):
        if self.proc is None:
            return []
        p = [self.proc.pid] + descendants(self.proc.pid)
        self.known.update(p)
        return p

    def workers(self, kind):
        """Live worker pids of this node with comm == kind."""
        if self.proc is None:
            return []
        out = [p for p in descendants(self.proc.pid) if comm(p) == kind]
        self.known.update(out)
        return sorted(out)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self):
        """SIGKILL the client and its whole process tree (by pid)."""
        if self.proc is None:
            return
        pids = self.pids()
        for p in pids:
            kill_pid(p, signal.SIGSTOP)     # nobody restarts anybody
        for p in pids:
            kill_pid(p, signal.SIGKILL)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        wait_until(lambda: not any(pid_alive(p) for p in pids), 5)
        self._close_pipes()

    def stop(self, timeout=10):
        """SIGTERM, bounded wait, SIGKILL leftovers; returns the exit code."""
        if self.proc is None:
            return None
        pids = self.pids()
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                kill_pid(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        wait_until(lambda: not any(pid_alive(p) for p in pids[1:]), 3)
        for p in pids[1:]:
            if pid_alive(p) and comm(p) in ("uploader", "downloader",
                                            "client", "supervisor",
                                            "node-sup"):
                kill_pid(p)
        self._close_pipes()
        return self.proc.returncode

    def _close_pipes(self):
        for f in (self.proc.stdin,):
            try:
                f.close()
            except OSError:
                pass

    def reap(self):
        if self.proc is None:
            return
        pids = set(self.pids()) | self.known
        kill_pid(self.proc.pid, signal.SIGKILL)
        for p in pids:
            if p != self.proc.pid and pid_alive(p) and \
                    comm(p) in ("uploader", "downloader", "client",
                                "supervisor", "node-sup"):
                kill_pid(p)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._close_pipes()
        # a SIGKILLed node leaves its segment behind: drop it once nothing
        # of ours maps it (a later node on the port would replace it anyway)
        if not any(pid_alive(p) for p in pids):
            try:
                os.unlink("/dev/shm/tessera-node-%d" % self.port)
            except OSError:
                pass

    # -- commands -----------------------------------------------------------

    def send_raw(self, text):
        self.pids()
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def cmd(self, line, timeout=30):
        """Runs one command; returns the lines it printed (maybe [])."""
        self.mark += 1
        marker = "zz-mark-%d" % self.mark
        want = "error: unknown command '%s' (try help)" % marker
        with self.cond:
            start = len(self.lines)
        try:
            self.send_raw(line + "\n" + marker + "\n")
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
        return NodeShm(self.port)

    def shm_stats(self):
        s = self.shm()
        try:
            return s.stats()
        finally:
            s.close()

    def shm_shares(self):
        s = self.shm()
        try:
            return s.shares()
        finally:
            s.close()

    def shm_downloads(self):
        try:
            s = self.shm()
        except OSError:
            return None
        try:
            return s.downloads()
        finally:
            s.close()

    def shm_download(self, group, name):
        for d in self.shm_downloads() or []:
            if d["group"] == group and d["name"] == name:
                return d
        return None

    def served(self, group, name):
        """Chunks this node served of group/name (0 if not shared)."""
        return sum(s["chunks_served"] for s in self.shm_shares()
                   if s["group"] == group and s["name"] == name)

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
