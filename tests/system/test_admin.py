"""
test_admin.py -- operator listings over TLS with an admin certificate
(`tracker --make-admin-cert NAME`, `tracker --admin NAME ... COMMAND`).

Purpose: a 2-tracker cluster with users, groups, sessions and a file.
The admin certificate (CA-signed, admin role) gets every listing, from
either tracker (replicated data), paged over a cursor with more than one
page, in text and --json; a node certificate, a tracker certificate, no
certificate, a logged-in user's token and an admin certificate of
ANOTHER cluster's CA are all refused with TS_ERR_AUTH.  Bad input over an
admin link (unknown kind, limit 0 or over the cap, oversized cursor,
files without a group, a group on users, trailing bytes, bad group id)
gets TS_ERR_BADREQ with a clear text and the link keeps working; bad
command lines exit 2.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers).
"""

import json
import os
import struct
import subprocess

import pytest

from cluster import Cluster
from proto import ERR_AUTH, ERR_BADREQ, OK, pki_dir, pstr, read_reply, \
    tracker_cert, upload_frame
import tessera

ADMIN_LIST = 41
USERS, GROUPS, SESSIONS, FILES = 1, 2, 3, 4


def trk(*args, timeout=30):
    return subprocess.run([os.path.join(tessera.BIN, "tracker")] +
                          list(args), capture_output=True, text=True,
                          timeout=timeout)


def admin_payload(kind, group="", cursor="", limit=10):
    return (struct.pack(">B", kind) + pstr(group) + pstr(cursor) +
            struct.pack(">H", limit))


def parse_list(body):
    n = struct.unpack(">I", body[:4])[0]
    off, out = 4, []
    for _ in range(2 * n + 1):
        ln = struct.unpack(">H", body[off:off + 2])[0]
        out.append(body[off + 2:off + 2 + ln].decode())
        off += 2 + ln
    assert off == len(body)
    return list(zip(out[0:-1:2], out[1:-1:2])), out[-1]


def raw_request(port, payload, cert):
    """(status, message, body) of one ADMIN_LIST on a new link."""
    r = tessera.Raw(port, cert=cert)
    try:
        return _req(r, payload)
    finally:
        r.close()


def _req(r, payload):
    r.reqid += 1
    r.sock.sendall(tessera.frame(ADMIN_LIST, payload, r.reqid))
    mtype, rid, st, msg, rest = read_reply(r.sock)
    assert rid == r.reqid
    return st, msg, rest


@pytest.fixture
def cl(tmp_path):
    # per test: the conftest fixture reaps every process after each test
    c = Cluster(tmp_path / "cl", n=2).start()
    for i in range(7):
        st, msg, _ = c.create_user(1 + i % 2, "user%d" % i)
        assert st == OK, msg
    st, msg, tok = c.login(1, "user0")
    assert st == OK, msg
    c.tok = tok
    st, msg, _ = c.call(1, "CREATE_GROUP", tok, pstr("g1"))
    assert st == OK, msg
    st, msg, _ = c.call(1, "UPLOAD_FILE", b"", upload_frame(
        tok, "g1", "f.bin", 100, b"\x11" * 20, [b"\x22" * 20]))
    assert st == OK, msg
    c.converge(None, 30)
    r = trk("--make-admin-cert", "ops", c.info)
    assert r.returncode == 0, r.stderr
    pki = pki_dir(c.info)
    c.admin = (os.path.join(pki, "admin-ops.crt"),
               os.path.join(pki, "admin-ops.key"))
    for f in c.admin:
        assert os.stat(f).st_mode & 0o077 == 0, f
    yield c


def test_make_admin_cert_bad(cl, tmp_path):
    r = trk("--make-admin-cert", "ops", cl.info)
    assert r.returncode == 1 and "exists" in r.stderr, r
    r = trk("--make-admin-cert", "bad/name", cl.info)
    assert r.returncode == 2 and "bad admin name" in r.stderr, r
    # no CA key where it is run
    info = tessera.write_info(str(tmp_path / "info.txt"), [1])
    os.makedirs(tmp_path / "pki")
    r = trk("--make-admin-cert", "x", info)
    assert r.returncode == 1 and "no cluster CA" in r.stderr, r


def test_listings_both_trackers(cl):
    for i in (1, 2):
        r = trk("--admin", "ops", "--limit", "100", cl.info, str(i), "users")
        assert r.returncode == 0, r.stderr
        names = [l.split()[0] for l in r.stdout.splitlines()]
        assert names == ["user%d" % k for k in range(7)], r.stdout
        assert "created_ms=" in r.stdout
        r = trk("--admin", "ops", cl.info, str(i), "groups")
        assert r.returncode == 0, r.stderr
        assert "g1  owner=user0 members=1 pending=0" in r.stdout, r.stdout
        r = trk("--admin", "ops", cl.info, str(i), "files", "g1")
        assert r.returncode == 0, r.stderr
        assert "f.bin  size=100 chunks=1 uploader=user0" in r.stdout
        r = trk("--admin", "ops", cl.info, str(i), "sessions")
        assert r.returncode == 0, r.stderr
        assert "user=user0 node=127.0.0.1:1" in r.stdout, r.stdout
    r = trk("--admin", "ops", "--json", cl.info, "2", "files", "g1")
    doc = json.loads(r.stdout)
    assert doc == {"kind": "files", "next": None, "items": [
        {"name": "f.bin", "detail": "size=100 chunks=1 uploader=user0"}]}


def test_paged_over_cursor(cl):
    seen, cursor, pages = [], "", 0
    while True:
        args = ["--admin", "ops", "--json", "--limit", "3"]
        if cursor:
            args += ["--cursor", cursor]
        r = trk(*(args + [cl.info, "1", "users"]))
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        assert len(doc["items"]) <= 3
        seen += [it["name"] for it in doc["items"]]
        pages += 1
        if doc["next"] is None:
            break
        cursor = doc["next"]
        assert pages < 10
    assert pages == 3
    assert seen == ["user%d" % k for k in range(7)]
    # text output says how to go on
    r = trk("--admin", "ops", "--limit", "2", cl.info, "1", "users")
    assert r.stdout.count("\n") == 2
    assert "(more: --cursor 'user1')" in r.stderr
    # the raw pages: limit 3 -> 3, 3, 1 entries, then an empty cursor
    body_cursor, got = "", []
    for want in (3, 3, 1):
        st, msg, body = raw_request(cl.port(1), admin_payload(
            USERS, cursor=body_cursor, limit=3), cl.admin)
        assert st == OK, msg
        items, body_cursor = parse_list(body)
        assert len(items) == want
        got += [n for n, _ in items]
    assert body_cursor == "" and got == sorted(got) and len(set(got)) == 7


def test_refused_without_admin_cert(cl, tmp_path):
    pay = admin_payload(USERS)
    for what, cert in (("node cert", tessera.DEFAULT),
                       ("no cert", None),
                       ("tracker cert", tracker_cert(pki_dir(cl.info), 2))):
        st, msg, body = raw_request(cl.port(1), pay, cert)
        assert st == ERR_AUTH, (what, st, msg)
        assert "admin certificate" in msg, msg
        assert body == b""
    # a user's token in front changes nothing
    st, msg, _ = raw_request(cl.port(1), cl.tok + pay, tessera.DEFAULT)
    assert st == ERR_AUTH, (st, msg)
    # an admin certificate of another cluster's CA
    other = tessera.write_info(str(tmp_path / "other.txt"), [1])
    r = trk("--make-admin-cert", "ops", other)
    assert r.returncode == 1         # no CA there yet
    r = trk("--init-pki", other)
    assert r.returncode == 0, r.stderr
    r = trk("--make-admin-cert", "ops", other)
    assert r.returncode == 0, r.stderr
    foreign = (str(tmp_path / "pki" / "admin-ops.crt"),
               str(tmp_path / "pki" / "admin-ops.key"))
    st, msg, _ = raw_request(cl.port(1), pay, foreign)
    assert st == ERR_AUTH, (st, msg)
    # the command line with a foreign CA fails the TLS check of the tracker
    r = trk("--admin", "ops", "--pki", str(tmp_path / "pki"), cl.info, "1",
            "users")
    assert r.returncode == 1, r
    assert cl.status(1) is not None


def test_bad_input(cl):
    r = tessera.Raw(cl.port(1), cert=cl.admin)
    cases = [
        (struct.pack(">B", 9) + pstr("") + pstr("") + b"\0\5", "unknown"),
        (admin_payload(USERS, limit=0), "bad limit"),
        (admin_payload(USERS, limit=5000), "bad limit 5000"),
        (admin_payload(USERS, cursor="x" * 1000), "cursor"),
        (admin_payload(FILES), "files needs a group"),
        (admin_payload(USERS, group="g1"), "only files"),
        (admin_payload(FILES, group="bad group"), "bad group"),
        (admin_payload(USERS) + b"\0", "malformed"),
        (b"\1", "malformed"),
    ]
    for payload, text in cases:
        st, msg, body = _req(r, payload)
        assert st == ERR_BADREQ and text in msg, (payload[:20], st, msg)
    # the link still works after every refusal
    st, msg, body = _req(r, admin_payload(GROUPS))
    assert st == OK, msg
    assert parse_list(body)[0][0][0] == "g1"
    r.close()
    for args, text in ((["frob"], "unknown admin command"),
                       (["files"], "files GROUP"),
                       (["users", "extra"], "users"),
                       (["files", "a/b"], "bad group id")):
        p = trk("--admin", "ops", cl.info, "1", *args)
        assert p.returncode == 2 and text in p.stderr, (args, p.stderr)
    p = trk("--admin", "ops", "--cursor", "c" * 500, cl.info, "1", "users")
    assert p.returncode == 2 and "--cursor too long" in p.stderr
    p = trk("--admin", "ops", "--limit", "0", cl.info, "1", "users")
    assert p.returncode == 2 and "bad --limit" in p.stderr
