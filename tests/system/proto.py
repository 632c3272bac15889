"""
proto.py -- the one framed-protocol client of the Tessera system tests.

Purpose: everything the tests need to speak the wire protocol themselves,
to a tracker or to a node's uploader: the constants of common/ts_proto.h,
frame encoding (frame, pstr and the payload builders), reply decoding
(read_frame, split_reply, read_reply and the body parsers), TLS 1.3
(python `ssl`) with the certificates a node or tracker presents, and Raw,
one request/reply connection.  tessera.py re-exports these names, so a
test may import them from either module.

TLS: every raw connection to a tracker verifies the tracker's chain
against the cluster CA, which the tracker creates at start in <dir of its
tracker_info.txt>/pki (the hostname check is off: the tracker id is in
the CN, checked by tls_connect when asked).  A connection may present a
client certificate made by node_cert() (`openssl req -x509 -newkey
ed25519`), which the tracker takes as the node identity.  A LOGIN needs
one, so Raw presents default_node_cert() unless told otherwise (cert=None:
none); STATUS needs a tracker certificate of the cluster (tracker_cert()).
A peer link (peer_connect) verifies nothing by chain: nodes are
self-signed, the caller pins the fingerprint.

Locking: none; a socket belongs to the thread that made it.  Every read
is bounded by a timeout or a deadline.

Crash behaviour: nothing here starts a process or keeps state beyond the
test process (the default node certificate is removed at exit).
"""

import atexit
import hashlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import time

# ---- constants (common/ts_proto.h) ----------------------------------------

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
PEER_MAP, PEER_GET, PEER_DATA, PEER_AUTH = 60, 61, 62, 63
OK, ERR_BADREQ, ERR_AUTH, ERR_EXISTS, ERR_NOTFOUND = 0, 1, 2, 3, 4
ERR_PERM, ERR_STATE, ERR_LIMIT, ERR_BUSY, ERR_CONFLICT = 5, 6, 7, 8, 9
REPLY_MAX = 4 << 20     # the largest reply Raw accepts (bytes)


# ---- encoding -------------------------------------------------------------

def pstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


def frame(mtype, payload=b"", reqid=1, flags=0, version=VERSION,
          magic=MAGIC, length=None):
    if isinstance(mtype, str):
        mtype = MSG[mtype]
    if length is None:
        length = len(payload)
    return HDR.pack(magic, version, mtype, flags, length, reqid) + payload


def upload_frame(tok, group, name, size, sha1, hashes):
    """UPLOAD_FILE payload: token, group, name, u64 size, sha1, hashes."""
    return (tok + pstr(group) + pstr(name) + struct.pack(">Q", size) + sha1
            + struct.pack(">I", len(hashes)) + b"".join(hashes))


def auth_frame(ticket, reqid=1):
    """PEER_AUTH with ticket (bytes)."""
    return frame(PEER_AUTH, struct.pack(">I", len(ticket)) + ticket, reqid)


def map_frame(group, name, reqid):
    return frame(PEER_MAP, pstr(group) + pstr(name), reqid)


def get_frame(group, name, index, reqid):
    return frame(PEER_GET, pstr(group) + pstr(name) +
                 struct.pack(">I", index), reqid)


# ---- decoding ---------------------------------------------------------------

def recv_exact(sock, n, timeout=None, deadline=None):
    """n bytes from sock; each recv waits up to timeout seconds, or, with
    deadline (a time.monotonic() value), all of them together until then
    (socket.timeout past it).  EOFError when the peer closes."""
    if deadline is None:
        sock.settimeout(timeout)
    buf = b""
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline")
            sock.settimeout(left)
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def read_frame(sock, timeout=None, deadline=None):
    """The next frame: (header tuple (magic, version, type, flags, length,
    reqid), body bytes)."""
    h = HDR.unpack(recv_exact(sock, HDR.size, timeout, deadline))
    body = recv_exact(sock, h[4], timeout, deadline) if h[4] else b""
    return h, body


def split_reply(body):
    """A reply body -> (status, message, the rest)."""
    st, ml = struct.unpack(">HH", body[:4])
    return st, body[4:4 + ml].decode("utf-8", "replace"), body[4 + ml:]


def read_reply(sock, timeout=10):
    """The next reply: (type, reqid, status, message, the rest)."""
    h, body = read_frame(sock, timeout)
    st, msg, rest = split_reply(body)
    return h[2], h[5], st, msg, rest


def reply_or_close(sock, timeout=3, silence_ok=True):
    """The next frame's (type, reqid, status), or None if the peer closes
    instead -- what a tracker may do with a bad request.  Silence for
    timeout seconds is None too, or, if not silence_ok, an
    AssertionError."""
    try:
        hdr = recv_exact(sock, HDR.size, timeout)
    except socket.timeout:
        assert silence_ok, "neither a reply nor a close in %ss" % timeout
        return None
    except (EOFError, OSError):
        return None
    h = HDR.unpack(hdr)
    body = recv_exact(sock, h[4], 5) if h[4] else b""
    return h[2], h[5], struct.unpack(">H", body[:2])[0]


def read_statuses(sock, until_s):
    """Reads replies until EOF or until_s seconds: (statuses, eof)."""
    sts, end = [], time.monotonic() + until_s
    while time.monotonic() < end:
        try:
            hdr = recv_exact(sock, HDR.size,
                             max(0.1, end - time.monotonic()))
        except socket.timeout:
            return sts, False
        except (EOFError, ConnectionError, ssl.SSLError, OSError):
            return sts, True
        ln = HDR.unpack(hdr)[4]
        body = recv_exact(sock, ln, 5)
        sts.append(struct.unpack(">H", body[:2])[0])
    return sts, False


def _strs(body, off, n):
    """n u16-prefixed strings from body at off: ([str], new off)."""
    out = []
    for _ in range(n):
        ln, = struct.unpack(">H", body[off:off + 2])
        out.append(body[off + 2:off + 2 + ln].decode("utf-8", "replace"))
        off += 2 + ln
    return out, off


def parse_groups(body):
    """LIST_GROUPS body -> [(group, owner, members)]."""
    n, = struct.unpack(">I", body[:4])
    off, out = 4, []
    for _ in range(n):
        (g, o), off = _strs(body, off, 2)
        members, = struct.unpack(">I", body[off:off + 4])
        off += 4
        out.append((g, o, members))
    return out


def parse_list_files(body):
    """LIST_FILES body -> [(name, size, sources)]."""
    n, = struct.unpack(">I", body[:4])
    off, out = 4, []
    for _ in range(n):
        (name,), off = _strs(body, off, 1)
        size, src = struct.unpack(">QI", body[off:off + 12])
        off += 12
        out.append((name, size, src))
    return out


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
        (addr,), off = _strs(body, off, 1)
        complete, held = struct.unpack(">BI", body[off:off + 5])
        off += 5
        srcs.append((addr, complete, held, body[off:off + 32]))
        off += 32
    tl, = struct.unpack(">I", body[off:off + 4])
    ticket = body[off + 4:off + 4 + tl]
    assert off + 4 + tl == len(body), "FILE_INFO: trailing bytes"
    return size, sha1, hashes, srcs, ticket


def parse_ticket(t):
    """ts_ticket.h wire form -> dict."""
    assert t[:4] == b"TKT1", t[:8]
    issuer, = struct.unpack(">I", t[4:8])
    (group, name), off = _strs(t, 8, 2)
    fp = t[off:off + 32]
    issued, expires = struct.unpack(">QQ", t[off + 32:off + 48])
    return dict(issuer=issuer, group=group, name=name, fp=fp,
                issued=issued, expires=expires)


def parse_status(body):
    """STATUS body (u16- or u32-prefixed text, or bare) -> {key: value}."""
    if len(body) >= 2 and struct.unpack(">H", body[:2])[0] == len(body) - 2:
        text = body[2:]
    elif len(body) >= 4 and \
            struct.unpack(">I", body[:4])[0] == len(body) - 4:
        text = body[4:]
    else:
        text = body
    out = {}
    for line in text.decode("utf-8", "replace").splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


# ---- TLS and certificates ---------------------------------------------------

CA_BY_PORT = {}         # tracker port -> its cluster's ca.crt


def pki_dir(info, extra_args=()):
    """The PKI directory a tracker started with these arguments uses."""
    a = list(extra_args)
    if "--pki" in a and a.index("--pki") + 1 < len(a):
        return os.path.abspath(a[a.index("--pki") + 1])
    return os.path.join(os.path.dirname(os.path.abspath(info)), "pki")


def tls_context(ca, cert=None, key=None):
    """A TLS 1.3 client context; ca None: verify nothing (a peer link,
    pinned by fingerprint instead)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False          # the CN names the tracker id
    if ca is None:
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def _dial(port, timeout, source=None, rcvbuf=None):
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            raw.bind((source, 0))
        raw.settimeout(timeout)
        raw.connect(("127.0.0.1", port))
    except BaseException:
        raw.close()
        raise
    return raw


def _wrap(ctx, raw):
    try:
        return ctx.wrap_socket(raw, server_hostname=None)
    except BaseException:
        raw.close()
        raise


def tls_connect(port, timeout=5, cert=None, ca=None, tracker_id=None,
                source=None, rcvbuf=None):
    """A TLS connection to the tracker on 127.0.0.1:port (handshake done
    within timeout).  cert: (crt, key) paths to present, or None.
    tracker_id: also check the server certificate names that tracker.
    source: local address to bind (e.g. "127.0.0.2").  rcvbuf: the
    socket's receive buffer (bytes), set before connecting."""
    ca = ca or CA_BY_PORT.get(port)
    if ca is None:
        raise AssertionError("no CA known for port %d" % port)
    ctx = tls_context(ca, *(cert or (None, None)))
    s = _wrap(ctx, _dial(port, timeout, source, rcvbuf))
    if tracker_id is not None:
        cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
        assert cn == "tessera-tracker-%d" % tracker_id, cn
    return s


def peer_connect(port, cert, expect_fp=None, rcvbuf=None, timeout=5):
    """A TLS peer link to the node on 127.0.0.1:port presenting cert (crt,
    key); if expect_fp is given, the node's certificate must have it."""
    s = _wrap(tls_context(None, *cert), _dial(port, timeout, rcvbuf=rcvbuf))
    if expect_fp is not None:
        got = hashlib.sha256(s.getpeercert(binary_form=True)).digest()
        assert got == expect_fp, "peer %d is not who we expected" % port
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


DEFAULT = object()       # "the default node certificate" (Raw)
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
    with open(crt) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).digest()


# ---- connection-level checks --------------------------------------------------

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


# ---- a request/reply connection -------------------------------------------------

class Unreachable(Exception):
    """The tracker did not answer (refused, reset, closed, timed out)."""


def _random_reqid():
    """A first request id unlikely to repeat across connections."""
    return int.from_bytes(os.urandom(4), "big") << 16


class Raw:
    """A raw protocol connection (TLS) to a tracker; cert = (crt, key) to
    present as the node identity, None for none, default: the test
    process's node certificate (a LOGIN needs one)."""

    def __init__(self, port, timeout=5, cert=DEFAULT, source=None):
        if cert is DEFAULT:
            cert = default_node_cert()
        self.port = port
        self.sock = tls_connect(port, timeout, cert=cert, source=source)
        self.reqid = _random_reqid()

    @classmethod
    def over(cls, sock):
        """A Raw on an already connected (TLS) socket."""
        r = cls.__new__(cls)
        r.port = None
        r.sock = sock
        r.reqid = _random_reqid()
        return r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def request(self, name, payload=b"", timeout=10):
        """Sends one request; the next frame must be its reply: returns
        (status, message, body bytes)."""
        self.reqid += 1
        self.sock.sendall(frame(MSG[name], payload, self.reqid))
        hdr = recv_exact(self.sock, HDR.size, timeout)
        magic, ver, mtype, flags, length, rid = HDR.unpack(hdr)
        assert magic == MAGIC and ver == VERSION, hdr
        assert mtype == MSG["REPLY"] and rid == self.reqid, (mtype, rid)
        assert length <= REPLY_MAX
        body = recv_exact(self.sock, length, timeout) if length else b""
        return split_reply(body)

    def exchange(self, mtype, payload, reqid, deadline, max_len=8 << 20):
        """Sends one request under reqid and reads, until deadline (a
        time.monotonic() value), to its reply, passing over other frames;
        (status, message, body).  Any failure to get it: Unreachable."""
        try:
            self.sock.sendall(frame(mtype, payload, reqid))
            while True:
                h = HDR.unpack(recv_exact(self.sock, HDR.size,
                                          deadline=deadline))
                if h[0] != MAGIC or h[1] != VERSION or h[4] > max_len:
                    raise Unreachable("bad frame from %s" % self.port)
                body = recv_exact(self.sock, h[4], deadline=deadline) \
                    if h[4] else b""
                if h[5] == reqid and h[2] == MSG["REPLY"]:
                    break
        except (OSError, EOFError, socket.timeout) as e:
            self.close()
            raise Unreachable("%s: %s" % (self.port, e))
        if len(body) < 4:
            raise Unreachable("short reply from %s" % self.port)
        return split_reply(body)

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


# ---- a peer link ------------------------------------------------------------------

def _peer_reply(s, reqid, timeout=10):
    mtype, rid, st, msg, rest = read_reply(s, timeout)
    assert rid == reqid, (rid, reqid)
    return mtype, st, msg, rest


def peer_auth(s, ticket, reqid=1, wait=True):
    """PEER_AUTH with ticket; returns (status, msg) (None if not wait)."""
    s.sendall(auth_frame(ticket, reqid))
    if not wait:
        return None
    _, st, msg, _ = _peer_reply(s, reqid)
    return st, msg


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
