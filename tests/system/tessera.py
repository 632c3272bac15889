"""
tessera.py -- helpers for the Tessera system tests.

Purpose: start real ./tracker and ./client processes on 127.0.0.1, talk
to them (through the client's non-TTY mode or raw protocol frames), and
stop every process by pid whatever happens.  Nothing here is shared
between test processes; every wait is bounded.

TLS (issue 5): every raw connection to a tracker is TLS 1.3 (python
`ssl`), verifying the tracker's chain against the cluster CA, which the
tracker creates at start in <dir of its tracker_info.txt>/pki (the
hostname check is off: the tracker id is in the CN, checked by
tls_connect when asked).  A connection may present a client certificate
made by node_cert() (`openssl req -x509 -newkey ed25519`), which the
tracker takes as the node identity.  A LOGIN needs one, so Raw presents
default_node_cert() unless told otherwise (cert=None: none); STATUS needs
a tracker certificate of the cluster (tracker_cert()).

Crash behaviour: every process started is recorded in REGISTRY; the
conftest fixture calls reap_all() at teardown, which SIGKILLs whatever is
still alive (the tracker's workers and a client's children are found by
ppid and recorded before the parent is killed).
"""

import atexit
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.abspath(os.environ.get("TESSERA_BIN",
                                     os.path.join(REPO, "build/release/bin")))
TOOLS = os.path.abspath(os.environ.get("TESSERA_TOOLS",
                                       os.path.join(REPO, "build/release/tools")))
KDF = "1000"


def _is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ASan builds are slower and keep freed memory in quarantine.
ASAN = _is_asan(os.path.join(BIN, "tracker"))

# Protocol constants (common/ts_proto.h).
MAGIC = 0x54
VERSION = 2
HDR = struct.Struct(">BBBBIQ")
FF_REPLY = 0x01
MSG = {
    "REPLY": 1, "CREATE_USER": 10, "LOGIN": 11, "LOGOUT": 12,
    "HEARTBEAT": 13, "CREATE_GROUP": 20, "JOIN_GROUP": 21,
    "LEAVE_GROUP": 22, "LIST_REQUESTS": 23, "ACCEPT_REQUEST": 24,
    "REJECT_REQUEST": 25, "LIST_GROUPS": 26, "LIST_MY_GROUPS": 27,
    "STATUS": 40, "UPLOAD_FILE": 30, "LIST_FILES": 31, "FILE_INFO": 32,
    "STOP_SHARE": 33, "HAVE_CHUNKS": 34, "MY_SHARES": 35,
    "SYNC_HELLO": 50, "SYNC_OPS": 51, "SYNC_ACK": 52, "SYNC_SNAPSHOT": 53,
}
OK, ERR_BADREQ, ERR_AUTH = 0, 1, 2
ERR_PERM, ERR_BUSY = 5, 8

REGISTRY = []           # every Popen / Tracker started by a test


# ---- processes ----------------------------------------------------------

def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proc_stat(pid):
    """(comm, state, ppid) from /proc/<pid>/stat, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    lp, rp = data.find("("), data.rfind(")")
    if lp < 0 or rp < 0:
        return None
    rest = data[rp + 2:].split()
    return data[lp + 1:rp], rest[0], int(rest[1])


def pid_alive(pid):
    st = proc_stat(pid)
    return st is not None and st[1] not in ("Z", "X")


def comm(pid):
    st = proc_stat(pid)
    return st[0] if st else None


def children(ppid, name=None):
    """Live children of ppid (optionally only those with comm == name)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        st = proc_stat(int(d))
        if st is None or st[2] != ppid or st[1] in ("Z", "X"):
            continue
        if name is None or st[0] == name:
            out.append(int(d))
    return sorted(out)


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children(p):
            out.append(c)
            todo.append(c)
    return out


def vm_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_until(pred, timeout, step=0.02):
    """Polls pred() until true or timeout seconds; returns its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def wait_gone(pids, timeout):
    return wait_until(lambda: not any(pid_alive(p) for p in pids), timeout)


def port_accepts(port, timeout=0.2):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


# ---- TLS ----------------------------------------------------------------

CA_BY_PORT = {}         # tracker port -> its cluster's ca.crt


def pki_dir(info, extra_args=()):
    """The PKI directory a tracker started with these arguments uses."""
    a = list(extra_args)
    if "--pki" in a and a.index("--pki") + 1 < len(a):
        return os.path.abspath(a[a.index("--pki") + 1])
    return os.path.join(os.path.dirname(os.path.abspath(info)), "pki")


def tls_context(ca, cert=None, key=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False          # the CN names the tracker id
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_connect(port, timeout=5, cert=None, ca=None, tracker_id=None,
                source=None):
    """A TLS connection to the tracker on 127.0.0.1:port (handshake done
    within timeout).  cert: (crt, key) paths to present, or None.
    tracker_id: also check the server certificate names that tracker.
    source: local address to bind (e.g. "127.0.0.2")."""
    ca = ca or CA_BY_PORT.get(port)
    if ca is None:
        raise AssertionError("no CA known for port %d" % port)
    ctx = tls_context(ca, *(cert or (None, None)))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                   source_address=(source, 0) if source
                                   else None)
    try:
        s = ctx.wrap_socket(raw, server_hostname=None)
    except BaseException:
        raw.close()
        raise
    if tracker_id is not None:
        cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
        assert cn == "tessera-tracker-%d" % tracker_id, cn
    return s


def node_cert(dirpath, name="node"):
    """A self-signed Ed25519 certificate, as a node makes; returns
    (crt path, key path)."""
    os.makedirs(dirpath, exist_ok=True)
    crt = os.path.join(dirpath, name + ".crt")
    key = os.path.join(dirpath, name + ".key")
    if not os.path.exists(crt):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ed25519",
                        "-nodes", "-keyout", key, "-out", crt, "-days", "2",
                        "-subj", "/CN=tessera-node"], check=True,
                       capture_output=True, timeout=30)
    return crt, key


DEFAULT = object()       # "the default node certificate" (Raw, Conn)
_default_cert = []


def default_node_cert():
    """One node certificate for this test process (made once, removed at
    exit): what Raw presents when no cert is given."""
    if not _default_cert:
        d = tempfile.mkdtemp(prefix="tessera-test-node-")
        atexit.register(shutil.rmtree, d, True)
        _default_cert.append(node_cert(d, "node"))
    return _default_cert[0]


def tracker_cert(pki, tid):
    """(crt, key) of tracker tid in the cluster PKI dir pki."""
    return (os.path.join(pki, "tracker-%d.crt" % tid),
            os.path.join(pki, "tracker-%d.key" % tid))


def cert_fp(crt):
    """SHA-256 of a PEM certificate's DER: the node identity."""
    import hashlib
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).digest()


def write_info(path, ports, extra_lines=()):
    with open(path, "w") as f:
        f.write("# written by the system tests\n")
        for p in ports:
            f.write("127.0.0.1:%d\n" % p)
        for line in extra_lines:
            f.write(line + "\n")
    return path


class Tracker:
    """One ./tracker process with its own tracker_info.txt and data dir."""

    def __init__(self, tmpdir, workers=None, session_timeout=None,
                 info=None, tid=1, data_dir=None, extra_args=()):
        self.tmpdir = str(tmpdir)
        os.makedirs(self.tmpdir, exist_ok=True)
        if info is None:
            self.port = free_port()
            info = write_info(os.path.join(self.tmpdir, "tracker_info.txt"),
                              [self.port])
        else:
            with open(info) as f:
                lines = [l.split("#")[0].strip() for l in f]
            lines = [l for l in lines if l]
            self.port = int(lines[tid - 1].replace(" ", ":").split(":")[1])
        self.info = info
        self.tid = tid
        self.data_dir = data_dir or os.path.join(self.tmpdir, "data-%d" % tid)
        self.workers = workers
        self.session_timeout = session_timeout
        self.extra_args = list(extra_args)
        self.pki = pki_dir(info, self.extra_args)
        self.ca = os.path.join(self.pki, "ca.crt")
        CA_BY_PORT[self.port] = self.ca
        self.logpath = os.path.join(self.tmpdir, "tracker-%d.log" % tid)
        self.proc = None
        self.known_workers = set()
        REGISTRY.append(self)

    @property
    def pid(self):
        return self.proc.pid

    def argv(self):
        a = [os.path.join(BIN, "tracker"), "-d", self.data_dir,
             "--kdf-iterations", KDF]
        if self.workers is not None:
            a += ["-w", str(self.workers)]
        if self.session_timeout is not None:
            a += ["--session-timeout", str(self.session_timeout)]
        return a + self.extra_args + [self.info, str(self.tid)]

    def start(self, timeout=15):
        logf = open(self.logpath, "ab")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE,
                                         stdout=logf, stderr=logf,
                                         cwd=self.tmpdir)
        finally:
            logf.close()
        want = self.workers or 2

        def ready():
            if self.proc.poll() is not None:
                return True
            return "ready on" in self.log() and port_accepts(self.port)
        if not wait_until(ready, timeout, 0.02):
            # no "ready" line: go on if it serves anyway, so tests that
            # check something else still run (test_process_names checks
            # the line itself)
            wait_until(lambda: self.proc.poll() is not None or
                       port_accepts(self.port), 1, 0.05)
        if self.proc.poll() is not None:
            raise AssertionError("tracker exited with %s at start:\n%s"
                                 % (self.proc.returncode, self.log()))
        if not port_accepts(self.port):
            raise AssertionError("tracker not accepting on %d within %ss:\n%s"
                                 % (self.port, timeout, self.log()))
        wait_until(lambda: len(self.worker_pids()) >= want, 5)
        return self

    def addr(self):
        return "127.0.0.1:%d" % self.port

    def worker_pids(self):
        if self.proc is None:
            return []
        pids = children(self.proc.pid, "trk-worker")
        self.known_workers.update(pids)
        return pids

    def all_pids(self):
        if self.proc is None:
            return []
        return [self.proc.pid] + descendants(self.proc.pid)

    def log(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def send_stdin(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=10):
        """SIGTERM, bounded wait, then SIGKILL; returns the exit code."""
        if self.proc is None:
            return None
        self.worker_pids()
        others = descendants(self.proc.pid)
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                kill_pid(self.proc.pid, signal.SIGKILL)
                self.wait(5)
        for p in others + list(self.known_workers):
            if pid_alive(p) and comm(p) in ("trk-worker", "trk-sync"):
                wait_gone([p], 2)
                kill_pid(p)
        self.close_stdin()
        return self.proc.returncode

    def kill(self, workers_too=False):
        """SIGKILL the supervisor (and, if asked, every worker) by pid."""
        pids = self.all_pids()
        kill_pid(self.proc.pid)
        if workers_too:
            for p in pids[1:]:
                kill_pid(p)
        self.wait(5)
        self.close_stdin()
        return pids

    def reap(self):
        if self.proc is None:
            return
        pids = self.all_pids() + list(self.known_workers)
        if self.proc.poll() is None:
            self.stop(timeout=5)
        for p in pids:
            if pid_alive(p) and comm(p) in ("trk-worker", "trk-sync",
                                            "supervisor"):
                kill_pid(p)


# ---- the client ---------------------------------------------------------

def client_argv(info, port=None, state_dir=None):
    port = port or free_port()
    a = [os.path.join(BIN, "client")]
    if state_dir:
        a += ["-s", state_dir]
    return a + ["127.0.0.1:%d" % port, info]


class Client:
    """A ./client process fed through a pipe (non-TTY mode)."""

    _n = 0

    def __init__(self, info, tmpdir):
        Client._n += 1
        self.dir = os.path.join(str(tmpdir), "client-%d-%d"
                                % (os.getpid(), Client._n))
        os.makedirs(self.dir, exist_ok=True)
        self.errpath = os.path.join(self.dir, "stderr.log")
        errf = open(self.errpath, "wb")
        try:
            self.proc = subprocess.Popen(
                client_argv(info, state_dir=os.path.join(self.dir, "state")),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf,
                cwd=self.dir)
        finally:
            errf.close()
        self.known = set()
        REGISTRY.append(self)

    def send(self, lines):
        self.known.update(descendants(self.proc.pid))
        try:
            self.proc.stdin.write("".join(l + "\n" for l in lines).encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass        # it died; finish() shows what it printed

    def read_line(self, timeout):
        """One stdout line within timeout seconds, or None."""
        import select
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        buf = b""
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], max(0, end - time.monotonic()))
            if not r:
                break
            ch = os.read(fd, 1)
            if not ch:
                break
            if ch == b"\n":
                return buf.decode("utf-8", "replace")
            buf += ch
        return None

    def finish(self, timeout=60):
        """Closes stdin, waits; returns (rc, stdout lines, stderr)."""
        self.known.update(descendants(self.proc.pid))
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.reap()
            out, _ = self.proc.communicate(timeout=5)
            raise AssertionError("client did not finish within %ss; "
                                 "stderr:\n%s" % (timeout, self.stderr()))
        return (self.proc.returncode,
                out.decode("utf-8", "replace").splitlines(), self.stderr())

    def stderr(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def kill(self):
        self.known.update(descendants(self.proc.pid))
        kill_pid(self.proc.pid)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def reap(self):
        pids = [self.proc.pid] + descendants(self.proc.pid) + list(self.known)
        for p in pids:
            if p == self.proc.pid or pid_alive(p):
                kill_pid(p)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass


def run_client(info, script_lines, tmpdir, timeout=60):
    """Runs ./client with the script on stdin; (rc, stdout lines, stderr)."""
    c = Client(info, tmpdir)
    try:
        c.send(script_lines)
        return c.finish(timeout)
    finally:
        c.reap()


def reap_all():
    while REGISTRY:
        obj = REGISTRY.pop()
        try:
            obj.reap()
        except Exception:       # teardown must go on whatever happened
            pass


# ---- raw protocol -------------------------------------------------------

def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def frame(mtype, payload=b"", reqid=1, flags=0, version=VERSION,
          magic=MAGIC, length=None):
    if length is None:
        length = len(payload)
    return HDR.pack(magic, version, mtype, flags, length, reqid) + payload


def recv_exact(sock, n, timeout):
    sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def send_or_closed(sock, data):
    """sendall, except that a peer which has already closed (reset,
    broken pipe, TLS EOF) is no error: the close is what an attack test
    checks next."""
    try:
        sock.sendall(data)
    except OSError:
        pass


def closed_within(sock, timeout, no_frame=False):
    """True if the peer closes (EOF, reset, broken pipe, TLS failure)
    within timeout seconds.  With no_frame, any bytes received before
    must not be a protocol frame."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sock.settimeout(max(0.01, end - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except OSError:
            return True
        if not data:
            return True
        if no_frame:
            assert data[:1] != bytes([MAGIC]), data[:32]
    return False


class Raw:
    """A raw protocol connection (TLS) to a tracker; cert = (crt, key) to
    present as the node identity, None for none, default: the test
    process's node certificate (a LOGIN needs one)."""

    def __init__(self, port, timeout=5, cert=DEFAULT, source=None):
        if cert is DEFAULT:
            cert = default_node_cert()
        self.sock = tls_connect(port, timeout, cert=cert, source=source)
        self.reqid = int.from_bytes(os.urandom(4), "big") << 16

    @classmethod
    def over(cls, sock):
        """A Raw on an already connected (TLS) socket."""
        r = cls.__new__(cls)
        r.sock = sock
        r.reqid = int.from_bytes(os.urandom(4), "big") << 16
        return r

    def close(self):
        self.sock.close()

    def request(self, name, payload=b"", timeout=10):
        """Sends one request; returns (status, message, body bytes)."""
        self.reqid += 1
        self.sock.sendall(frame(MSG[name], payload, self.reqid))
        hdr = recv_exact(self.sock, HDR.size, timeout)
        magic, ver, mtype, flags, length, rid = HDR.unpack(hdr)
        assert magic == MAGIC and ver == VERSION, hdr
        assert mtype == MSG["REPLY"] and rid == self.reqid, (mtype, rid)
        assert length <= 4 << 20
        body = recv_exact(self.sock, length, timeout) if length else b""
        st = struct.unpack(">H", body[:2])[0]
        ml = struct.unpack(">H", body[2:4])[0]
        msg = body[4:4 + ml].decode("utf-8", "replace")
        return st, msg, body[4 + ml:]

    def create_user(self, user, pw):
        return self.request("CREATE_USER", pstr(user) + pstr(pw))

    def status(self):
        """STATUS text as {key: value} (needs a tracker certificate)."""
        st, msg, body = self.request("STATUS")
        assert st == OK, (st, msg)
        ln = struct.unpack(">H", body[:2])[0]
        out = {}
        for line in body[2:2 + ln].decode().splitlines():
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
        return out

    def login(self, user, pw, node="127.0.0.1:1"):
        st, msg, body = self.request("LOGIN", pstr(user) + pstr(pw) +
                                     pstr(node))
        assert st == OK, (st, msg)
        # raw tok[16], u32 heartbeat_ms
        assert len(body) == 20, body
        self.heartbeat_ms = struct.unpack(">I", body[16:])[0]
        return body[:16]

    def list_groups(self, tok):
        st, msg, body = self.request("LIST_GROUPS", tok)
        return st, msg, parse_groups(body) if st == OK else None


def new_user(port, user, pw="pw", source=None):
    """Creates user over a raw TLS link (from source, an address of
    127.0.0.0/8, if given); asserts OK."""
    r = Raw(port, source=source)
    try:
        st, msg, _ = r.create_user(user, pw)
        assert st == OK, (st, msg)
    finally:
        r.close()


def parse_groups(body):
    n = struct.unpack(">I", body[:4])[0]
    off, out = 4, []
    for _ in range(n):
        fields = []
        for _ in range(2):
            ln = struct.unpack(">H", body[off:off + 2])[0]
            fields.append(body[off + 2:off + 2 + ln].decode())
            off += 2 + ln
        members = struct.unpack(">I", body[off:off + 4])[0]
        off += 4
        out.append((fields[0], fields[1], members))
    return out
