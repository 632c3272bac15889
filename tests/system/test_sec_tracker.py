"""
test_sec_tracker.py -- security: attacks on a tracker.  Each test shows
that the attempt fails cleanly (an error reply or a closed connection,
nothing else) AND that the tracker then still serves a normal client
(same worker processes, correct answers).

Decisions the tests pin down:
  - a session token is bound to the node identity it logged in with (the
    TLS client certificate of the login link; a LOGIN without one is
    refused): the same token over a link with another certificate, or
    none, is refused with TS_ERR_AUTH -- a stolen token is useless
    without the node's key;
  - SYNC_* are accepted only over a link whose client certificate is the
    CA-signed certificate of the tracker the request claims to be;
  - failed logins are throttled per user and per address; while
    throttled even the right password is refused (TS_ERR_BUSY), and the
    refusal ends by itself.

Every wait is bounded; every process is stopped by pid (conftest).
"""

import os
import socket
import struct
import subprocess
import time

import pytest

import tessera
from tessera import OK, ERR_AUTH, ERR_BADREQ, ERR_PERM, ERR_BUSY, pstr
from proto import parse_file_info, parse_ticket, upload_frame

import cluster as cl

MAX_RSS_JUMP_KB = (64 if tessera.ASAN else 16) * 1024


# ---- helpers -------------------------------------------------------------

def start(tracker_factory, *extra, **kw):
    return tracker_factory(extra_args=list(extra), **kw)


new_user = tessera.new_user


def serves(t, user="honest", pw="pw"):
    """A normal client (TLS, node certificate) logs in and gets answers;
    the workers are the same processes as before."""
    crt = tessera.node_cert(os.path.join(t.tmpdir, "honest-node"))
    r = tessera.Raw(t.port, cert=crt)
    try:
        tok = r.login(user, pw)
        st, msg, groups = r.list_groups(tok)
        assert st == OK, (st, msg)
        return groups
    finally:
        r.close()


def closed_within(sock, timeout):
    """True if the peer closes within timeout seconds; any bytes received
    before must not be a protocol frame."""
    return tessera.closed_within(sock, timeout, no_frame=True)


def worker_rss(t):
    return {p: tessera.vm_rss_kb(p) for p in t.worker_pids()}


def upload_payload(tok, group, name, size=100):
    return upload_frame(tok, group, name, size, b"\x11" * 20, [b"\x22" * 20])


# ---- unauthenticated and stolen tokens -------------------------------------

def test_unauthenticated_and_forged_tokens(tracker):
    new_user(tracker.port, "honest")
    pids = tracker.worker_pids()
    r = tessera.Raw(tracker.port)
    # no token at all, a short one, a random one
    st, msg, _ = r.request("LIST_GROUPS", b"")
    assert st == ERR_BADREQ, (st, msg)
    st, msg, _ = r.request("LIST_GROUPS", b"\1" * 5)
    assert st == ERR_BADREQ, (st, msg)
    for name, extra in (("LIST_GROUPS", b""), ("CREATE_GROUP", pstr("x")),
                        ("LOGOUT", b""), ("FILE_INFO", pstr("g") +
                                          pstr("f"))):
        st, msg, _ = r.request(name, os.urandom(16) + extra)
        assert st == ERR_AUTH, (name, st, msg)
    # the connection itself is still good
    tok = r.login("honest", "pw")
    st, msg, _ = r.list_groups(tok)
    assert st == OK, msg
    r.close()
    serves(tracker)
    assert tracker.worker_pids() == pids


def test_stolen_token_is_bound_to_its_node(tracker):
    new_user(tracker.port, "alice")
    new_user(tracker.port, "honest")
    x = tessera.node_cert(os.path.join(tracker.tmpdir, "x"), "x")
    y = tessera.node_cert(os.path.join(tracker.tmpdir, "y"), "y")
    a = tessera.Raw(tracker.port, cert=x)
    tok = a.login("alice", "pw")
    st, msg, _ = a.request("CREATE_GROUP", tok + pstr("ag"))
    assert st == OK, msg
    # the token over a link with another certificate, or none: refused,
    # and it does not even refresh the session
    for cert in (y, None):
        thief = tessera.Raw(tracker.port, cert=cert)
        for name, extra in (("LIST_GROUPS", b""),
                            ("CREATE_GROUP", pstr("stolen")),
                            ("LOGOUT", b"")):
            st, msg, _ = thief.request(name, tok + extra)
            assert st == ERR_AUTH and "another node" in msg, (name, st, msg)
        thief.close()
    # the same node (same key) on a new link: fine
    a2 = tessera.Raw(tracker.port, cert=x)
    st, msg, groups = a2.list_groups(tok)
    assert st == OK and groups == [("ag", "alice", 1)], (st, msg, groups)
    a2.close()
    a.close()
    # a login without a certificate would be bound to nobody: refused
    n = tessera.Raw(tracker.port, cert=None)
    st, msg, body = n.request("LOGIN", pstr("alice") + pstr("pw") +
                              pstr("127.0.0.1:1"))
    assert st == ERR_AUTH and "client certificate" in msg and \
        body == b"", (st, msg, body)
    n.close()
    assert serves(tracker) == [("ag", "alice", 1)]


# ---- groups and tickets ----------------------------------------------------

def test_wrong_group_gets_perm_and_no_ticket(tracker_factory):
    t = start(tracker_factory, "--ticket-ttl", "7000")
    for u in ("alice", "bob", "carol", "honest"):
        new_user(t.port, u)
    xa = tessera.node_cert(os.path.join(t.tmpdir, "a"), "a")
    xb = tessera.node_cert(os.path.join(t.tmpdir, "b"), "b")
    xc = tessera.node_cert(os.path.join(t.tmpdir, "c"), "c")
    a = tessera.Raw(t.port, cert=xa)
    ta = a.login("alice", "pw", node="127.0.0.1:5001")
    assert a.request("CREATE_GROUP", ta + pstr("g"))[0] == OK
    st, msg, _ = a.request("UPLOAD_FILE", upload_payload(ta, "g", "f.bin"))
    assert st == OK, msg
    b = tessera.Raw(t.port, cert=xb)
    tb = b.login("bob", "pw", node="127.0.0.1:5002")
    # bob is no member: PERM for all three, and no body (no ticket)
    for name, payload in (("LIST_FILES", tb + pstr("g")),
                          ("FILE_INFO", tb + pstr("g") + pstr("f.bin")),
                          ("UPLOAD_FILE", upload_payload(tb, "g", "b.bin"))):
        st, msg, body = b.request(name, payload)
        assert st == ERR_PERM and body == b"", (name, st, msg, body)
    # a pending join request is no membership either
    assert b.request("JOIN_GROUP", tb + pstr("g"))[0] == OK
    st, msg, body = b.request("FILE_INFO", tb + pstr("g") + pstr("f.bin"))
    assert st == ERR_PERM and body == b"", (st, msg)
    b.close()
    # carol is a member: she gets alice's node fingerprint and a ticket
    # for her own certificate, valid for --ticket-ttl
    c = tessera.Raw(t.port, cert=xc)
    tc = c.login("carol", "pw", node="127.0.0.1:5003")
    assert c.request("JOIN_GROUP", tc + pstr("g"))[0] == OK
    assert a.request("ACCEPT_REQUEST", ta + pstr("g") + pstr("carol"))[0] \
        == OK
    st, msg, body = c.request("FILE_INFO", tc + pstr("g") + pstr("f.bin"))
    assert st == OK, msg
    _, _, _, srcs, ticket = parse_file_info(body)
    assert [(s[0], s[3]) for s in srcs] == \
        [("127.0.0.1:5001", tessera.cert_fp(xa[0]))], srcs
    tk = parse_ticket(ticket)
    assert tk["issuer"] == 1 and tk["group"] == "g" and \
        tk["name"] == "f.bin", tk
    assert tk["fp"] == tessera.cert_fp(xc[0])
    assert tk["expires"] - tk["issued"] == 7000
    assert abs(tk["issued"] / 1000.0 - time.time()) < 60
    # her token on a link without a certificate: refused, no ticket
    n = tessera.Raw(t.port, cert=None)
    st, msg, body = n.request("FILE_INFO", tc + pstr("g") + pstr("f.bin"))
    assert st == ERR_AUTH and body == b"", (st, msg)
    n.close()
    c.close()
    a.close()
    serves(t)


# ---- login throttling ------------------------------------------------------

def login_status(port, user, pw, source=None, cert=tessera.DEFAULT):
    r = tessera.Raw(port, source=source, cert=cert)
    try:
        # the node address must be on the connection's own IP
        st, msg, _ = r.request("LOGIN", pstr(user) + pstr(pw) +
                               pstr("%s:1" % (source or "127.0.0.1")))
        return st, msg
    finally:
        r.close()


def test_login_throttled_per_user(tracker):
    new_user(tracker.port, "victim", "right")
    new_user(tracker.port, "honest")
    pids = tracker.worker_pids()
    d = tracker.tmpdir
    # nodes never seen (a node that logged in before is counted apart,
    # test_attack_lockout.py); below the limit a success from the address
    # clears its count for the user
    for _ in range(4):
        assert login_status(tracker.port, "victim", "wrong")[0] == ERR_AUTH
    assert login_status(tracker.port, "victim", "right",
                        cert=tessera.node_cert(d, "n1"))[0] == OK
    for _ in range(4):
        assert login_status(tracker.port, "victim", "wrong")[0] == ERR_AUTH
    assert login_status(tracker.port, "victim", "right",
                        cert=tessera.node_cert(d, "n2"))[0] == OK
    # TS_LOGIN_FAILS_USER_N (5) failures from this address: now even the
    # right password is refused here, with a clear message
    for _ in range(5):
        assert login_status(tracker.port, "victim", "wrong")[0] == ERR_AUTH
    t0 = time.monotonic()
    st, msg = login_status(tracker.port, "victim", "right",
                           cert=tessera.node_cert(d, "n3"))
    assert st == ERR_BUSY and "too many failed logins" in msg and \
        "try again in" in msg, (st, msg)
    # other users are not affected
    serves(tracker)
    # the refusal ends by itself (TS_LOGIN_DELAY_MIN_MS, 1 s)
    assert tessera.wait_until(
        lambda: login_status(tracker.port, "victim", "right")[0] == OK, 5,
        0.1)
    assert time.monotonic() - t0 >= 0.5
    assert tracker.worker_pids() == pids
    assert "failed login for 'victim'" in tracker.log()


def test_login_throttled_per_address(tracker):
    new_user(tracker.port, "honest")
    # TS_LOGIN_FAILS_ADDR_N (20) failures from 127.0.0.1, each for
    # another (made-up) user, so no user counter trips
    for i in range(20):
        st, msg = login_status(tracker.port, "nobody%d" % i, "x")
        assert st == ERR_AUTH, (i, st, msg)
    st, msg = login_status(tracker.port, "honest", "pw")
    assert st == ERR_BUSY and "too many failed logins" in msg, (st, msg)
    # another address is served meanwhile
    st, msg = login_status(tracker.port, "honest", "pw", source="127.0.0.2",
                           cert=tessera.node_cert(tracker.tmpdir, "n4"))
    assert st == OK, (st, msg)
    assert tessera.wait_until(
        lambda: login_status(tracker.port, "honest", "pw")[0] == OK, 5, 0.1)
    serves(tracker)


def test_login_throttle_options(tracker_factory):
    # --login-fails-user 0 turns the per-user throttle off
    t = start(tracker_factory, "--login-fails-user", "0",
              "--login-fails-addr", "0")
    new_user(t.port, "u")
    for _ in range(12):
        assert login_status(t.port, "u", "bad")[0] == ERR_AUTH
    assert login_status(t.port, "u", "pw")[0] == OK


# ---- logout revokes everywhere ----------------------------------------------

def test_logout_revokes_on_every_tracker(tmp_path):
    c = cl.Cluster(tmp_path, n=2).start()
    st, msg, _ = c.create_user(1, "lo")
    assert st == OK, msg
    # the account reaches tracker 2, then the session does
    assert tessera.wait_until(lambda: c.login(2, "lo")[0] == OK, 10, 0.1)
    st, msg, tok = c.login(1, "lo")
    assert st == OK, msg
    assert tessera.wait_until(
        lambda: c.call(2, "LIST_GROUPS", tok)[0] == OK, 10, 0.05), \
        c.call(2, "LIST_GROUPS", tok)
    st, msg, _ = c.call(1, "LOGOUT", tok)
    assert st == OK, msg
    assert c.call(1, "LIST_GROUPS", tok)[0] == ERR_AUTH
    t0 = time.monotonic()
    assert tessera.wait_until(
        lambda: c.call(2, "LIST_GROUPS", tok)[0] == ERR_AUTH, 5, 0.02), \
        "token still valid on tracker 2 5 s after logout on tracker 1"
    took = time.monotonic() - t0
    # and it stays dead (no gossip revives it)
    time.sleep(1.5)
    for i in (1, 2):
        st, msg, _ = c.call(i, "LIST_GROUPS", tok)
        assert st == ERR_AUTH, (i, st, msg)
    print("token refused on tracker 2 %.3f s after logout" % took)


# ---- TLS-level attacks --------------------------------------------------------

def test_plaintext_client_is_dropped(tracker):
    new_user(tracker.port, "honest")
    pids = tracker.worker_pids()
    for payload in (tessera.frame(40, b"", reqid=3),          # STATUS
                    tessera.frame(10, pstr("x") + pstr("y")),  # CREATE_USER
                    b"GET / HTTP/1.0\r\n\r\n", os.urandom(3000)):
        s = socket.create_connection(("127.0.0.1", tracker.port), timeout=5)
        tessera.send_or_closed(s, payload)
        assert closed_within(s, 10), payload[:20]
        s.close()
    # nothing happened: no user was created
    st, msg = login_status(tracker.port, "x", "y")
    assert st == ERR_AUTH, (st, msg)
    assert "TLS handshake with" in tracker.log()
    serves(tracker)
    assert tracker.worker_pids() == pids


def test_wrong_ca_client_cannot_verify_tracker(tracker, tmp_path):
    # a client holding another CA refuses the tracker (no downgrade)
    other = tessera.node_cert(str(tmp_path / "other"), "other")
    import ssl
    with pytest.raises(ssl.SSLError):
        tessera.tls_connect(tracker.port, 5, ca=other[0])
    new_user(tracker.port, "honest")
    serves(tracker)


def sync_hello(from_id, epoch=1):
    # u8 from, u64 epoch, vv (u32 n = 0)
    return struct.pack(">BQI", from_id, epoch, 0)


def test_sync_needs_the_claimed_trackers_certificate(tmp_path):
    ports = [tessera.free_port() for _ in range(3)]
    info = tessera.write_info(str(tmp_path / "tracker_info.txt"), ports)
    r = subprocess.run([os.path.join(tessera.BIN, "tracker"), "--init-pki",
                        info], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    for f in ("ca.crt", "ca.key", "tracker-1.crt", "tracker-2.key",
              "tracker-3.crt"):
        assert f in out, out
    pki = str(tmp_path / "pki")
    t = tessera.Tracker(tmp_path / "t1", info=info, tid=1).start()
    new_user(t.port, "honest")
    pids = t.worker_pids()
    node = tessera.node_cert(str(tmp_path / "node"))
    t2 = (os.path.join(pki, "tracker-2.crt"),
          os.path.join(pki, "tracker-2.key"))
    cases = [
        (None, 2, "no certificate"),
        (node, 2, "a node certificate"),
        (t2, 3, "tracker 2's certificate claiming 3"),
    ]
    for cert, claim, why in cases:
        for mtype, payload in (("SYNC_HELLO", sync_hello(claim)),
                               ("SYNC_OPS", struct.pack(">BI", claim, 0)),
                               ("SYNC_ACK", struct.pack(">BBI", claim, 1, 0)),
                               ("SYNC_SNAPSHOT",
                                struct.pack(">BBI", claim, 0, 0))):
            raw = tessera.Raw(t.port, cert=cert)
            st, msg, body = raw.request(mtype, payload)
            assert st == ERR_AUTH and body == b"", (why, mtype, st, msg)
            # and the link is closed after the reply
            assert closed_within(raw.sock, 5), (why, mtype)
            raw.close()
    # positive control: tracker 2's certificate claiming 2 is answered
    raw = tessera.Raw(t.port, cert=t2)
    st, msg, body = raw.request("SYNC_HELLO", sync_hello(2))
    assert st == OK and body[0] == 1, (st, msg, body)
    raw.close()
    assert "refused: the link" in t.log()
    serves(t)
    assert t.worker_pids() == pids


def test_status_command_uses_tls(tracker):
    r = subprocess.run([os.path.join(tessera.BIN, "tracker"), "--status",
                        tracker.info, "1"], capture_output=True, timeout=20,
                       cwd=tracker.tmpdir)
    assert r.returncode == 0, r.stderr
    assert b"tracker_id: 1" in r.stdout
    # with a CA that did not sign the tracker: a clear failure
    other = tracker.tmpdir + "/otherpki"
    subprocess.run([os.path.join(tessera.BIN, "tracker"), "--pki", other,
                    "--init-pki", tracker.info], capture_output=True,
                   timeout=60, check=True)
    r = subprocess.run([os.path.join(tessera.BIN, "tracker"), "--pki", other,
                        "--status", tracker.info, "1"], capture_output=True,
                       timeout=20)
    assert r.returncode != 0 and b"TLS" in r.stderr, (r.stdout, r.stderr)


def test_start_without_certificate_or_ca_key_fails_clearly(tmp_path):
    port = tessera.free_port()
    info = tessera.write_info(str(tmp_path / "tracker_info.txt"), [port])
    r = subprocess.run([os.path.join(tessera.BIN, "tracker"), "--init-pki",
                        info], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    # a deployed tracker: ca.crt only, its own certificate lost
    os.remove(str(tmp_path / "pki" / "ca.key"))
    os.remove(str(tmp_path / "pki" / "tracker-1.crt"))
    r = subprocess.run([os.path.join(tessera.BIN, "tracker"), "-d",
                        str(tmp_path / "d"), info, "1"],
                       stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=20)
    assert r.returncode != 0
    assert b"ca.key" in r.stderr and b"--init-pki" in r.stderr, r.stderr


# ---- frames and deadlines ------------------------------------------------------

def test_oversized_frame_header_rejected_before_allocation(tracker):
    new_user(tracker.port, "honest")
    pids = tracker.worker_pids()
    before = worker_rss(tracker)
    for i in range(60):
        s = tessera.tls_connect(tracker.port, 5)
        length = (0xFFFFFFFF, (4 << 20) + 1, 1 << 30)[i % 3]
        s.sendall(tessera.frame(26, b"", length=length))
        tessera.send_or_closed(s, b"x" * 16384)
        assert closed_within(s, 5), length
        s.close()
    after = worker_rss(tracker)
    for p in pids:
        assert after[p] - before[p] < MAX_RSS_JUMP_KB, (before, after)
    serves(tracker)
    assert tracker.worker_pids() == pids


def test_slowloris_deadlines(tracker_factory):
    t = start(tracker_factory, "--handshake-ms", "600", "--frame-timeout",
              "900")
    new_user(t.port, "honest")
    pids = t.worker_pids()
    t0 = time.monotonic()
    # a connection that never starts the handshake, one that stops in
    # the middle of its ClientHello
    silent = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    half = socket.create_connection(("127.0.0.1", t.port), timeout=5)
    half.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    # inside TLS: half a frame header, half a payload
    fh = tessera.tls_connect(t.port, 5)
    fh.sendall(tessera.frame(26, b"\0" * 16)[:10])
    fp = tessera.tls_connect(t.port, 5)
    fp.sendall(tessera.frame(26, b"\0" * 16)[:20])
    serves(t)               # others are served meanwhile
    for s, limit in ((silent, 0.6), (half, 0.6), (fh, 0.9), (fp, 0.9)):
        assert closed_within(s, limit + 3 - (time.monotonic() - t0)), limit
        s.close()
    took = time.monotonic() - t0
    assert 0.5 <= took < 4, took
    assert "TLS handshake not done" in t.log()
    assert "frame not completed" in t.log()
    serves(t)
    assert t.worker_pids() == pids


# ---- connection caps -------------------------------------------------------------

def try_tls(port, source, timeout=3):
    try:
        return tessera.tls_connect(port, timeout, source=source,
                                   cert=tessera.default_node_cert())
    except OSError:
        return None


def can_connect(port, source):
    s = try_tls(port, source)
    if s is None:
        return False
    s.close()
    return True


def test_connection_flood_per_address(tracker_factory):
    cap = 20
    t = start(tracker_factory, "--max-conns-per-addr", str(cap))
    new_user(t.port, "honest")
    pids = t.worker_pids()
    held, refused = [], 0
    try:
        # one at a time: each is accepted (and counted) before the next
        for _ in range(2 * cap):
            s = try_tls(t.port, "127.0.0.2")
            if s is None:
                refused += 1
            else:
                held.append(s)
        assert len(held) == cap and refused == cap, (len(held), refused)
        # 127.0.0.1 is not affected
        serves(t)
        # the connections under the cap work (an unknown token: an
        # answer, not a close)
        r = tessera.Raw.over(held[-1])
        st, msg, body = r.request("LIST_GROUPS", os.urandom(16))
        assert st == ERR_AUTH and "session" in msg, (st, msg)
    finally:
        for s in held:
            s.close()
    # the places come back once they close
    assert tessera.wait_until(lambda: can_connect(t.port, "127.0.0.2"), 5,
                              0.1)
    assert "connection cap per address" in t.log()
    assert t.worker_pids() == pids


def test_cap_on_connections_not_logged_in(tracker_factory):
    cap = 8
    t = start(tracker_factory, "--max-unauth", str(cap), workers=1)
    new_user(t.port, "honest")
    # the readiness probes of start() and new_user() are gone by then
    assert tessera.wait_until(lambda: can_connect(t.port, None), 3, 0.05)
    time.sleep(0.2)
    idle = []
    try:
        for _ in range(cap):
            s = try_tls(t.port, None)
            assert s is not None, len(idle)
            idle.append(s)
        # at the cap the oldest idle link makes room for the new one
        extra = try_tls(t.port, None)
        assert extra is not None
        idle.append(extra)
        assert closed_within(idle[0], 3)
        # logging in on one of them takes it out of the pool
        r = tessera.Raw.over(idle[1])
        tok = r.login("honest", "pw")
        assert r.list_groups(tok)[0] == OK
        assert tessera.wait_until(lambda: can_connect(t.port, None), 3, 0.1)
        assert r.list_groups(tok)[0] == OK
        assert "cap on connections not logged in" in t.log()
    finally:
        for s in idle:
            s.close()
    serves(t)


def test_dead_workers_connection_counts_vanish(tracker_factory):
    cap = 6
    t = start(tracker_factory, "--max-conns-per-addr", str(cap))
    new_user(t.port, "honest")
    held = [try_tls(t.port, "127.0.0.2") for _ in range(cap)]
    assert all(s is not None for s in held)
    assert not can_connect(t.port, "127.0.0.2")
    # the workers holding them die (SIGKILL, no cleanup): the supervisor
    # resets their slots' counters, so the address is not locked out
    old = t.worker_pids()
    for p in old:
        tessera.kill_pid(p)
    assert tessera.wait_until(
        lambda: len(set(t.worker_pids()) - set(old)) >= len(old), 10), \
        t.log()[-2000:]
    for s in held:
        s.close()
    assert tessera.wait_until(lambda: can_connect(t.port, "127.0.0.2"), 5,
                              0.1)
    serves(t)
