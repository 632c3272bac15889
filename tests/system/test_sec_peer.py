"""
test_sec_peer.py -- system tests of the data plane's security: an
uploader serves chunks only over TLS, only to a link that showed a valid
download ticket naming the link's own certificate, and a downloader can
pin the uploader's identity.

Real ./tracker and ./client processes on 127.0.0.1 (nodes.py), attacked
from outside with tests/tools/ts_sec (identities, genuine and forged
tickets, a scripted downloader) and raw sockets.  A ticket the tracker
would issue is made with the tracker's own key from its PKI directory
(<dir of tracker_info.txt>/pki); forgeries use a self-signed certificate,
the real tracker certificate with another key, and a rogue CA.  After
every attack a normal download from the same seeder must still work.

No locks; every wait is bounded (subprocess timeouts, socket timeouts,
ts_sec --timeout-ms); every process is stopped by pid (Node.stop / the
conftest reaper).
"""

import os
import socket
import ssl
import time

from nodes import CHUNK, Swarm, create_users, make_file, sha1_file, \
    chunk_hashes
from proto import (auth_frame, map_frame, peer_connect, read_frame,
                   read_statuses, split_reply)
from tessera import ts_sec, wait_until

G = "g"
REPLY = 1
UNAUTH_S = 3.0          # the seeder's --ticket-wait
CONNS_ADDR_N = 64       # TS_NODE_CONNS_ADDR_N (per uploader worker)


sec = ts_sec


def sec_ok(*args):
    rc, out, err = sec(*args)
    assert rc == 0, (args, rc, out, err)
    return out


def fields(line):
    """'auth=OK map=- ...' -> {'auth': 'OK', 'map': '-', ...}"""
    return dict(kv.split("=", 1) for kv in line.split())


class Setup:
    """A tracker, a seeder (alice) sharing the attacked file and one file
    per later check, a normal downloader (bob), two attacker
    identities."""

    def __init__(self, tracker, tmp_path, checks):
        self.tmp = tmp_path
        self.pki = os.path.join(os.path.dirname(tracker.info), "pki")
        create_users(tracker.info, tmp_path, "alice", "bob")
        sw = Swarm(tracker, tmp_path, group=G)
        self.seed = sw.node("alice", extra=["--ticket-wait",
                                            str(int(UNAUTH_S * 1000))])
        self.bob = sw.node("bob")
        src = tmp_path / "src"
        src.mkdir()
        self.path = str(src / "f.bin")
        self.size = 3 * CHUNK + 777
        self.sha1 = make_file(self.path, self.size, seed=1)
        self.hashes = [h.hex() for h in chunk_hashes(self.path)]
        self.seed.upload(self.path, G)
        # one small file per "normal download still works" check
        self.checks = []
        for i in range(checks):
            p = str(src / ("check%d.bin" % i))
            self.checks.append((os.path.basename(p),
                                make_file(p, 2 * CHUNK + 99, seed=100 + i)))
            self.seed.upload(p, G)
        self.seed_fp = sec_ok("fp", os.path.join(self.seed.state_dir,
                                                 "node.crt"))
        assert len(self.seed_fp) == 64, self.seed_fp
        self.a1 = str(tmp_path / "atk1")
        self.a2 = str(tmp_path / "atk2")
        self.fp1 = sec_ok("mkcert", self.a1)
        self.fp2 = sec_ok("mkcert", self.a2)
        assert self.fp1 != self.fp2
        self.ndl = 0

    def ticket(self, fp, name="f.bin", ttl_ms=60000, pki=None, key=None,
               crt=None, group=G):
        args = ["ticket", "--issuer", 1, "--group", group, "--name", name,
                "--fp", fp, "--ttl-ms", ttl_ms]
        if key is not None:
            args += ["--key", key, "--crt", crt]
        else:
            args += ["--pki", pki or self.pki]
        return sec_ok(*args)

    def peer(self, cert=None, ticket=None, get=None, count=None,
             expect_fp=None, plain=False, no_cert=False, idle_ms=None,
             name="f.bin"):
        args = ["peer", "--addr", self.seed.addr, "--group", G, "--name",
                name, "--timeout-ms", 10000]
        if plain:
            args.append("--plain")
        elif no_cert:
            args.append("--no-cert")
        else:
            args += ["--cert", cert or self.a1]
        if ticket is not None:
            args += ["--ticket", ticket]
        if get is not None:
            args += ["--get", get]
        if count is not None:
            args += ["--count", count]
        if expect_fp is not None:
            args += ["--expect-fp", expect_fp]
        if idle_ms is not None:
            args += ["--idle-ms", idle_ms]
        rc, out, err = sec(*args)
        return rc, (fields(out) if out else {}), err

    def refused(self, tk, why, cert=None):
        """The seeder refuses ticket tk (AUTH), so the GET after it too
        (PERM), and says why; then a normal download still works."""
        rc, f, err = self.peer(cert=cert, ticket=tk, get=0)
        assert rc == 0 and f["auth"] == "AUTH" and f["get"] == "PERM", \
            (f, err)
        assert why in err, err
        self.normal_download()

    def normal_download(self):
        """bob downloads the next check file from alice: still works."""
        name, want = self.checks[self.ndl]
        self.ndl += 1
        dest = self.bob.download(G, name, str(self.tmp / ("dl-" + name)))
        line = self.bob.wait_download(G, name, 60)
        assert line[:3] == "[C]", (line, self.seed.stderr()[-3000:])
        assert sha1_file(dest) == want, name
        return dest


# ---- tickets -------------------------------------------------------------

def test_tickets_gate_map_and_get(tracker, tmp_path):
    s = Setup(tracker, tmp_path, checks=9)

    # no ticket: MAP and GET refused (PERM, in each request's format), the
    # link itself stays usable
    rc, f, err = s.peer()
    assert rc == 0 and f["map"] == "PERM", (rc, f, err)
    assert "no valid ticket" in err, err
    rc, f, err = s.peer(get=0)
    assert rc == 0 and f["get"] == "PERM" and f["bytes"] == "0", (rc, f, err)
    s.normal_download()

    # forged: a certificate no CA signed (the attacker's own), signing
    # with its own key
    tk = s.ticket(s.fp1, key=os.path.join(s.a1, "node.key"),
                  crt=os.path.join(s.a1, "node.crt"))
    s.refused(tk, "forged")

    # forged: the real tracker certificate, signed with another key
    tk = s.ticket(s.fp1, key=os.path.join(s.a1, "node.key"),
                  crt=os.path.join(s.pki, "tracker-1.crt"))
    s.refused(tk, "forged")

    # forged: a rogue CA with its own "tracker 1"
    rogue = str(tmp_path / "rogue-pki")
    sec_ok("pki", rogue, "--trackers", 1)
    tk = s.ticket(s.fp1, pki=rogue)
    s.refused(tk, "forged")

    # expired (genuinely signed)
    tk = s.ticket(s.fp1, ttl_ms=-5000)
    s.refused(tk, "expired")

    # issued to atk1, replayed by atk2 (another certificate)
    tk = s.ticket(s.fp1)
    s.refused(tk, "identity", cert=s.a2)

    # genuine, but for another file: that file only
    tk_other = s.ticket(s.fp1, name=s.checks[-1][0])
    rc, f, err = s.peer(ticket=tk_other, get=0)
    assert rc == 0 and f["auth"] == "OK" and f["get"] == "PERM", (f, err)
    # ... and for another group with the same file name
    tk_grp = s.ticket(s.fp1, group="other")
    rc, f, err = s.peer(ticket=tk_grp)
    assert rc == 0 and f["auth"] == "OK" and f["map"] == "PERM", (f, err)
    s.normal_download()

    # genuine: a chunk whose SHA1 matches, the map, the whole file
    tk = s.ticket(s.fp1)
    rc, f, err = s.peer(ticket=tk, get=1)
    assert rc == 0 and f["auth"] == "OK" and f["get"] == "OK", (f, err)
    assert f["bytes"] == str(CHUNK) and f["sha1"] == s.hashes[1], f
    rc, f, err = s.peer(ticket=tk)
    assert rc == 0 and f["map"] == "OK", (f, err)
    rc, f, err = s.peer(ticket=tk, get=0, count=len(s.hashes))
    assert rc == 0 and f["get"] == "OK", (f, err)
    assert f["bytes"] == str(s.size) and f["sha1"] == s.sha1, f
    # the same ticket, pinned to the seeder's real identity
    rc, f, err = s.peer(ticket=tk, get=3, expect_fp=s.seed_fp)
    assert rc == 0 and f["sha1"] == s.hashes[3], (rc, f, err)
    s.normal_download()

    # a good ticket after a bad one on the same link works (a bad ticket
    # costs nothing else), and many pipelined requests over TLS are all
    # answered in order
    pipelined_maps(s, [s.ticket(s.fp1, ttl_ms=-5000), tk], 300)
    s.normal_download()


def tls_link(s, cert_dir):
    # no fingerprint check: pinning is ts_sec's test
    return peer_connect(s.seed.port, (os.path.join(cert_dir, "node.crt"),
                                      os.path.join(cert_dir, "node.key")),
                        timeout=10)


def pipelined_maps(s, tickets, n):
    """AUTH with each ticket in turn, then n PEER_MAPs, all in one write
    (far more than the uploader's per-link queue): every reply arrives, in
    order; the first ticket may be bad, the last one is good."""
    out = b""
    rid = 0
    for tk in tickets:
        rid += 1
        out += auth_frame(bytes.fromhex(tk), rid)
    for _ in range(n):
        rid += 1
        out += map_frame(G, "f.bin", rid)
    sk = tls_link(s, s.a1)
    try:
        sk.sendall(out)
        sts = []
        for want in range(1, rid + 1):
            (magic, _, mtype, _, _, r), body = read_frame(sk, 10)
            assert magic == 0x54 and mtype == REPLY and r == want, \
                (magic, mtype, r, want)
            sts.append(split_reply(body)[0])
    finally:
        sk.close()
    assert sts[0] == 2 and sts[len(tickets) - 1] == 0, sts[:len(tickets)]
    assert sts[len(tickets):] == [0] * n, set(sts[len(tickets):])


# ---- transport -------------------------------------------------------------

def test_transport_identity_and_limits(tracker, tmp_path):
    s = Setup(tracker, tmp_path, checks=5)
    tk = s.ticket(s.fp1)

    # plaintext to the uploader port: no protocol reply, ever
    rc, f, err = s.peer(plain=True, ticket=tk, get=0)
    assert rc == 1 and f.get("get") != "OK", (rc, f, err)
    sk = socket.create_connection(("127.0.0.1", s.seed.port), timeout=5)
    try:
        sk.sendall(map_frame(G, "f.bin", 1))
        got = b""
        try:
            while len(got) < 64:
                c = sk.recv(64)
                if not c:
                    break
                got += c
        except (socket.timeout, ConnectionResetError):
            pass
        # at most a TLS alert record, never a Tessera frame
        assert not got.startswith(b"\x54"), got
    finally:
        sk.close()
    s.normal_download()

    # no client certificate: refused
    rc, f, err = s.peer(no_cert=True, ticket=tk, get=0)
    assert rc != 0 and f.get("get") != "OK", (rc, f, err)
    s.normal_download()

    # impersonation: a downloader expecting another fingerprint (the one
    # the tracker would have listed) refuses the peer at the handshake
    rc, f, err = s.peer(ticket=tk, get=0, expect_fp=s.fp2)
    assert rc == 2, (rc, f, err)
    assert "handshake" in err, err
    rc, f, err = s.peer(ticket=tk, get=0, expect_fp=s.seed_fp)
    assert rc == 0 and f["sha1"] == s.hashes[0], (rc, f, err)
    s.normal_download()

    # a link that shows no valid ticket in time is closed
    t0 = time.monotonic()
    rc, f, err = s.peer(ticket=tk, get=0, idle_ms=int(UNAUTH_S * 1000) + 1500)
    assert rc == 1 and f.get("get") != "OK", (rc, f, err)
    assert time.monotonic() - t0 < 30
    s.normal_download()

    # links from one address are capped (per uploader worker): most of a
    # burst of bare TCP connections is closed at once
    socks = []
    try:
        for _ in range(4 * CONNS_ADDR_N):
            socks.append(socket.create_connection(
                ("127.0.0.1", s.seed.port), timeout=5))
        closed = [0]

        def count_closed():
            n = 0
            for sk in socks:
                sk.setblocking(False)
                try:
                    if sk.recv(1) == b"":
                        n += 1
                except BlockingIOError:
                    pass
                except OSError:
                    n += 1
            closed[0] = n
            return len(socks) - n <= s.seed.uploaders * CONNS_ADDR_N
        assert wait_until(count_closed, 5, 0.2), \
            ("open links", len(socks) - closed[0])
    finally:
        for sk in socks:
            sk.close()
    s.normal_download()


# ---- links whose tickets are bad or gone --------------------------------

BAD_AUTH_N = 8          # TS_UP_BAD_AUTH_N


read_replies = read_statuses


def test_bad_or_expired_tickets_close_the_link(tracker, tmp_path):
    s = Setup(tracker, tmp_path, checks=2)

    # a link that shows ticket after bad ticket is closed once it has
    # shown more than TS_UP_BAD_AUTH_N (each costs a signature check)
    bad = bytes.fromhex(s.ticket(s.fp1, ttl_ms=-5000))
    out = b"".join(auth_frame(bad, i + 1) for i in range(4 * BAD_AUTH_N))
    sk = tls_link(s, s.a1)
    try:
        sk.sendall(out)
        sts, eof = read_replies(sk, 10)
    finally:
        sk.close()
    # closed at the (N+1)th refusal: what was answered before is AUTH
    assert eof, sts
    assert len(sts) <= BAD_AUTH_N and set(sts) <= {2}, sts
    s.normal_download()

    # a link whose only ticket expired is unauthenticated again: it gets
    # PERM, and is closed TS_NODE_UNAUTH_MS later although it keeps asking
    tk = bytes.fromhex(s.ticket(s.fp1, ttl_ms=2000))
    sk = tls_link(s, s.a1)
    try:
        sk.sendall(auth_frame(tk, 1) + map_frame(G, "f.bin", 2))
        sts, eof = read_replies(sk, 1)
        assert sts == [0, 0] and not eof, sts
        t0 = time.monotonic()
        closed = False
        rid = 3
        while time.monotonic() < t0 + UNAUTH_S + 15:
            time.sleep(1)
            try:
                sk.sendall(map_frame(G, "f.bin", rid))
            except (OSError, ssl.SSLError):
                closed = True
                break
            rid += 1
            sts, eof = read_replies(sk, 0.5)
            if eof:
                closed = True
                break
            if time.monotonic() > t0 + 3:
                assert sts in ([], [5]), sts       # PERM after expiry
        took = time.monotonic() - t0
    finally:
        sk.close()
    assert closed
    assert UNAUTH_S < took < UNAUTH_S + 15, took
    s.normal_download()
