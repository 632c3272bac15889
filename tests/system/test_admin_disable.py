"""
test_admin_disable.py -- the operator's write actions over TLS with an
admin certificate (`tracker --admin NAME ... disable-user USER |
enable-user USER | remove-file GROUP FILE`, message ADMIN_ACT) and on the
tracker console, across an active-active cluster.

Purpose: real trackers (2 or 3, real sync) and real clients.
  * disable-user on tracker 1 refuses the user's logins on tracker 2
    once synced (after the password was right: a wrong one gets the
    usual answer), ends its sessions on both (a token refused on its
    next heartbeat, the sessions gone from the listing), takes its node
    offline as a source, shows `disabled=yes` / "disabled": true in the
    users listing; the real client's login is told so and exits with
    the "denied" class (4); enable-user restores logins.
  * a tracker down during the disable, restarted, converges (digests
    equal) and refuses the user too, also after a wipe (a snapshot); a session opened on a partitioned
    tracker before it heard of the disable is ended there once the
    partition heals; a disable and an enable on two sides of a
    partition converge to one state on both.
  * remove-file on one tracker: the other no longer lists the file, a
    FILE_INFO of it gets "not found", and a real node's download_file of
    it fails with "no file".
  * a node certificate, a tracker certificate and no certificate are
    refused (TS_ERR_AUTH) and change nothing; bad names and malformed
    requests get TS_ERR_BADREQ with a clear text and the admin link
    keeps working; bad command lines exit 2.
Checked against the release before them: the actions do not exist
there (unknown admin command, exit 2).

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps trackers and nodes).
"""

import json
import os
import struct
import subprocess

import pytest

from cluster import Cluster
from nodes import Node, Swarm, make_file
from procs import wait_until
from proto import (ERR_AUTH, ERR_BADREQ, ERR_NOTFOUND, OK, parse_file_info,
                   parse_list_files, pki_dir, pstr, read_reply, tracker_cert,
                   upload_frame)
import tessera

ADMIN_LIST, ADMIN_ACT = 41, 42
DISABLE, ENABLE, REMOVE_FILE = 1, 2, 3


def trk(*args, timeout=30):
    return subprocess.run([os.path.join(tessera.BIN, "tracker")] +
                          [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def adm(cl, i, *args):
    return trk("--admin", "ops", cl.info, i, *args)


def act_payload(action, a, b=""):
    return struct.pack(">B", action) + pstr(a) + pstr(b)


def raw_act(r, payload):
    r.reqid += 1
    r.sock.sendall(tessera.frame(ADMIN_ACT, payload, r.reqid))
    mtype, rid, st, msg, rest = read_reply(r.sock)
    assert rid == r.reqid
    return st, msg, rest


def make_admin(cl):
    r = trk("--make-admin-cert", "ops", cl.info)
    assert r.returncode == 0, r.stderr
    pki = pki_dir(cl.info)
    cl.admin = (os.path.join(pki, "admin-ops.crt"),
                os.path.join(pki, "admin-ops.key"))


def users_listing(cl, i):
    r = trk("--admin", "ops", "--json", "--limit", "100", cl.info, i,
            "users")
    assert r.returncode == 0, r.stderr
    return {it["name"]: it for it in json.loads(r.stdout)["items"]}


def session_users(cl, i):
    r = trk("--admin", "ops", "--limit", "1000", cl.info, i, "sessions")
    assert r.returncode == 0, r.stderr
    return sorted(l.split("user=")[1].split()[0]
                  for l in r.stdout.splitlines() if "user=" in l)


def heartbeat(cl, i, tok):
    return cl.call(i, "HEARTBEAT", tok)


def refused_disabled(res, user="alice"):
    st, msg = res[0], res[1]
    return st == ERR_AUTH and "account '%s' is disabled" % user in msg


@pytest.fixture
def cl(tmp_path):
    c = Cluster(tmp_path / "cl", n=2).start()
    for u in ("alice", "bob"):
        st, msg, _ = c.create_user(1, u)
        assert st == OK, msg
    make_admin(c)
    yield c


def test_disable_refuses_everywhere_enable_restores(cl):
    st, msg, tok1 = cl.login(1, "alice")
    assert st == OK, msg
    st, msg, tok2 = cl.login(2, "alice", node="127.0.0.1:2")
    assert st == OK, msg
    st, msg, tokb = cl.login(2, "bob")
    assert st == OK, msg
    cl.converge(None, 30)
    assert session_users(cl, 1) == ["alice", "alice", "bob"]

    r = adm(cl, 1, "disable-user", "alice")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "user 'alice' disabled; 2 session(s) ended\n"
    # tracker 1 at once: the token and a new login are refused
    assert refused_disabled(heartbeat(cl, 1, tok1)) or \
        heartbeat(cl, 1, tok1)[0] == ERR_AUTH
    assert refused_disabled(cl.login(1, "alice"))
    # the right password is needed to be told: a wrong one learns nothing
    st, msg, _ = cl.login(1, "alice", pw="nope")
    assert st == ERR_AUTH and msg == "wrong user id or password", msg
    # tracker 2 once synced: its own session of alice ends, logins refused
    assert wait_until(lambda: heartbeat(cl, 2, tok2)[0] == ERR_AUTH, 10)
    assert wait_until(lambda: refused_disabled(cl.login(2, "alice")), 10)
    # bob is untouched
    assert heartbeat(cl, 2, tokb)[0] == OK
    assert cl.login(1, "bob")[0] == OK
    cl.converge(None, 30)
    for i in (1, 2):
        assert "alice" not in session_users(cl, i), i
        u = users_listing(cl, i)
        assert u["alice"]["disabled"] is True
        assert u["bob"]["disabled"] is False
        assert u["alice"]["detail"].endswith(" disabled=yes")
        r = trk("--admin", "ops", cl.info, i, "users")
        assert "bob  created_ms=" in r.stdout and "disabled=no" in r.stdout

    r = adm(cl, 2, "enable-user", "alice")
    assert r.returncode == 0 and r.stdout == "user 'alice' enabled\n", r
    assert wait_until(lambda: cl.login(1, "alice")[0] == OK, 10)
    st, msg, tok3 = cl.login(2, "alice")
    assert st == OK, msg
    assert heartbeat(cl, 2, tok3)[0] == OK
    # the ended sessions stay ended
    assert heartbeat(cl, 2, tok2)[0] == ERR_AUTH
    cl.converge(None, 30)
    assert users_listing(cl, 1)["alice"]["disabled"] is False
    # --json of an action
    r = trk("--admin", "ops", "--json", cl.info, 1, "disable-user", "bob")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["action"] == "disable-user" and \
        doc["done"].startswith("user 'bob' disabled;"), doc
    # unknown user: refused, exit 1
    r = adm(cl, 1, "disable-user", "nobody")
    assert r.returncode == 1 and "no user 'nobody'" in r.stderr, r


def test_real_client_denied_and_node_cut_off(cl, tmp_path):
    sw = Swarm(cl, tmp_path)
    a = sw.node("alice")
    b = sw.node("bob")
    src = tmp_path / "src"
    src.mkdir()
    make_file(str(src / "a.bin"), 70000, seed=3)
    make_file(str(src / "gone.bin"), 5000, seed=4)
    a.upload(str(src / "a.bin"), "g")
    a.upload(str(src / "gone.bin"), "g")
    assert wait_until(lambda: b.list_files("g").get("a.bin") ==
                      (70000, 1), 10), b.list_files("g")

    # remove-file on tracker 2: gone for bob, whichever tracker he uses
    r = adm(cl, 2, "remove-file", "g", "gone.bin")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "file 'gone.bin' of group 'g' removed (1 source(s))\n"
    assert wait_until(lambda: "gone.bin" not in b.list_files("g"), 10)
    dl = tmp_path / "dl"
    dl.mkdir()
    assert b.cmd("download_file g gone.bin %s" % dl) == \
        ["error: no file 'gone.bin' in 'g'"]

    # disable alice on tracker 2: her node stops being a source and its
    # next request is refused with the reason
    r = adm(cl, 2, "disable-user", "alice")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: b.list_files("g").get("a.bin") ==
                      (70000, 0), 10), b.list_files("g")
    # (the session record is gone; the link the node used shows whose
    # token it was, so it is told why)
    out = a.cmd("list_files g")
    assert len(out) == 1 and "account 'alice' is disabled" in out[0], out
    out = a.cmd("login alice pw")
    assert out == ["error: account 'alice' is disabled by an operator of "
                   "this tracker cluster"], out
    # a fresh client's login is told so and exits "denied"
    rc, out, err = tessera.run_client(cl.info, ["login alice pw"],
                                      str(tmp_path / "c1"))
    assert rc == 4, (rc, out, err[-2000:])
    assert any("account 'alice' is disabled" in l for l in out + [err]), \
        (out, err[-2000:])
    # enabled again: the same client logs in
    r = adm(cl, 1, "enable-user", "alice")
    assert r.returncode == 0, r.stderr
    assert wait_until(lambda: cl.login(2, "alice")[0] == OK, 10)
    rc, out, err = tessera.run_client(cl.info, ["login alice pw"],
                                      str(tmp_path / "c2"))
    assert rc == 0 and out[:1] == ["logged in as alice"], (rc, out, err)


def test_tracker_down_during_disable_converges(tmp_path):
    cl = Cluster(tmp_path / "cl", n=3).start()
    assert cl.create_user(1, "alice")[0] == OK
    make_admin(cl)
    st, msg, tok3 = cl.login(3, "alice", node="127.0.0.1:3")
    assert st == OK, msg
    cl.converge(None, 30)
    cl.kill(3)
    r = adm(cl, 1, "disable-user", "alice")
    assert r.returncode == 0, r.stderr
    assert "1 session(s) ended" in r.stdout, r.stdout
    assert wait_until(lambda: refused_disabled(cl.login(2, "alice")), 10)
    cl.restart(3)
    cl.converge(None, 40)
    assert refused_disabled(cl.login(3, "alice"))
    assert heartbeat(cl, 3, tok3)[0] == ERR_AUTH
    assert session_users(cl, 3) == []
    assert users_listing(cl, 3)["alice"]["disabled"] is True
    # a wiped tracker 3 learns it from a snapshot
    cl.kill(3)
    cl.wipe(3)
    cl.restart(3)
    cl.converge(None, 40)
    assert refused_disabled(cl.login(3, "alice"))
    assert users_listing(cl, 3)["alice"]["disabled"] is True


def test_partition_session_ended_and_flag_converges(tmp_path):
    cl = Cluster(tmp_path / "cl", n=2, proxies=True).start()
    assert cl.create_user(1, "alice")[0] == OK
    assert cl.create_user(1, "carol")[0] == OK
    assert cl.create_user(1, "dave")[0] == OK
    make_admin(cl)
    cl.converge(None, 30)
    cl.partition(1, 2)
    r = adm(cl, 1, "disable-user", "alice")
    assert r.returncode == 0, r.stderr
    # tracker 2 has not heard: a login there opens a session
    st, msg, tok2 = cl.login(2, "alice", node="127.0.0.1:2")
    assert st == OK, msg
    assert heartbeat(cl, 2, tok2)[0] == OK
    # the other way round: dave disabled on 2, logged in on 1 (the
    # leader, whose expiry would not look at its own cached session)
    assert adm(cl, 2, "disable-user", "dave").returncode == 0
    st, msg, tokd = cl.login(1, "dave", node="127.0.0.1:4")
    assert st == OK, msg
    # carol: disabled on 2, then enabled on 1 later (the last writer)
    assert adm(cl, 2, "disable-user", "carol").returncode == 0
    assert adm(cl, 1, "disable-user", "carol").returncode == 0
    assert adm(cl, 1, "enable-user", "carol").returncode == 0
    cl.heal()
    # the session opened before tracker 2 knew ends there once merged
    assert wait_until(lambda: heartbeat(cl, 2, tok2)[0] == ERR_AUTH, 15)
    assert wait_until(lambda: heartbeat(cl, 1, tokd)[0] == ERR_AUTH, 15)
    cl.converge(None, 40)
    for i in (1, 2):
        assert wait_until(lambda: session_users(cl, i) == [], 10), \
            (i, session_users(cl, i))
        u = users_listing(cl, i)
        assert u["alice"]["disabled"] is True
        assert u["dave"]["disabled"] is True
        assert u["carol"]["disabled"] is False
    for i in (1, 2):
        assert cl.login(i, "carol")[0] == OK
        assert refused_disabled(cl.login(i, "alice"))
    cl.converge(None, 40)


def test_remove_file_replicated(cl):
    st, msg, tok = cl.login(1, "alice")
    assert st == OK, msg
    assert cl.call(1, "CREATE_GROUP", tok, pstr("g1"))[0] == OK
    for n in ("f.bin", "keep.bin"):
        st, msg, _ = cl.call(1, "UPLOAD_FILE", b"", upload_frame(
            tok, "g1", n, 100, b"\x11" * 20, [b"\x22" * 20]))
        assert st == OK, msg
    cl.converge(None, 30)
    r = adm(cl, 2, "remove-file", "g1", "f.bin")
    assert r.returncode == 0, r.stderr

    def listed():
        st, msg, body = cl.call(1, "LIST_FILES", tok, pstr("g1"))
        assert st == OK, msg
        return [n for n, _s, _c in parse_list_files(body)]
    assert wait_until(lambda: listed() == ["keep.bin"], 10), listed()
    st, msg, _ = cl.call(1, "FILE_INFO", tok, pstr("g1") + pstr("f.bin"))
    assert st == ERR_NOTFOUND, (st, msg)
    st, msg, body = cl.call(1, "FILE_INFO", tok, pstr("g1") +
                            pstr("keep.bin"))
    assert st == OK and parse_file_info(body)[0] == 100
    cl.converge(None, 30)
    for i in (1, 2):
        r = trk("--admin", "ops", cl.info, i, "files", "g1")
        assert r.stdout.startswith("keep.bin  ") and "f.bin" not in \
            r.stdout.replace("keep.bin", ""), r.stdout
    r = adm(cl, 1, "remove-file", "g1", "f.bin")
    assert r.returncode == 1 and "no file 'f.bin' in group 'g1'" in \
        r.stderr, r
    # the name is free again
    st, msg, _ = cl.call(2, "UPLOAD_FILE", b"", upload_frame(
        tok, "g1", "f.bin", 200, b"\x33" * 20, [b"\x44" * 20]))
    assert st == OK, msg
    cl.converge(None, 30)
    assert listed() == ["f.bin", "keep.bin"]


def test_non_admin_refused(cl):
    st, msg, tok = cl.login(1, "alice")
    assert st == OK, msg
    pki = pki_dir(cl.info)
    for cert in (tessera.DEFAULT, None, tracker_cert(pki, 2)):
        for i in (1, 2):
            r = tessera.Raw(cl.port(i), cert=cert)
            try:
                st, msg, _ = raw_act(r, act_payload(DISABLE, "alice"))
            finally:
                r.close()
            assert st == ERR_AUTH and "admin certificate" in msg, (cert, msg)
    # nothing changed
    assert heartbeat(cl, 1, tok)[0] == OK
    assert cl.login(2, "alice")[0] == OK
    assert users_listing(cl, 1)["alice"]["disabled"] is False


def test_bad_input(cl):
    r = tessera.Raw(cl.port(1), cert=cl.admin)
    try:
        cases = [
            (act_payload(DISABLE, "bad/name"), "invalid user id"),
            (act_payload(DISABLE, "a" * 65), "too long"),
            (act_payload(DISABLE, ""), "invalid user id"),
            (act_payload(DISABLE, "alice", "x"), "one user name"),
            (act_payload(ENABLE, "al ice"), "invalid user id"),
            (act_payload(9, "alice"), "unknown admin action"),
            (act_payload(0, "alice"), "unknown admin action"),
            (act_payload(DISABLE, "alice") + b"\x00", "malformed"),
            (act_payload(DISABLE, "alice")[:-1], "malformed"),
            (b"", "malformed"),
            (act_payload(REMOVE_FILE, "g1", ".."), "invalid file name"),
            (act_payload(REMOVE_FILE, "g1", "a/b"), "invalid file name"),
            (act_payload(REMOVE_FILE, "g1", ""), "invalid file name"),
            (act_payload(REMOVE_FILE, "g1", "x" * 256), "too long"),
            (act_payload(REMOVE_FILE, "../g", "f"), "invalid group id"),
        ]
        for payload, want in cases:
            st, msg, _ = raw_act(r, payload)
            assert st == ERR_BADREQ and want in msg, (payload, st, msg)
        st, msg, _ = raw_act(r, act_payload(REMOVE_FILE, "g1", "nope"))
        assert st == ERR_NOTFOUND, msg
        # the link still answers
        r.reqid += 1
        r.sock.sendall(tessera.frame(ADMIN_LIST, struct.pack(">B", 1) +
                                     pstr("") + pstr("") +
                                     struct.pack(">H", 10), r.reqid))
        assert read_reply(r.sock)[2] == OK
    finally:
        r.close()
    assert users_listing(cl, 1)["alice"]["disabled"] is False
    for args in (["disable-user"], ["disable-user", "a", "b"],
                 ["disable-user", "bad/name"], ["enable-user", "x" * 65],
                 ["remove-file", "g1"], ["remove-file", "g1", "a/b"],
                 ["remove-file", "bad group", "f"]):
        r = adm(cl, 1, *args)
        assert r.returncode == 2, (args, r)
        assert "usage" in r.stderr or "bad" in r.stderr, (args, r.stderr)


def test_console_actions(cl):
    st, msg, tok = cl.login(1, "alice")
    assert st == OK, msg
    cl.converge(None, 30)
    t = cl.t(2)
    t.send_stdin("disable-user alice\n")
    assert wait_until(lambda: "user 'alice' disabled; 1 session(s) ended"
                      in t.log(), 10), t.log()[-2000:]
    assert wait_until(lambda: heartbeat(cl, 1, tok)[0] == ERR_AUTH, 10)
    assert wait_until(lambda: refused_disabled(cl.login(1, "alice")), 10)
    t.send_stdin("disable-user\nenable-user no/body\nenable-user nobody\n"
                 "remove-file g1\nremove-file g1 nope\n")
    assert wait_until(lambda: "refused: no file 'nope' in group 'g1'"
                      in t.log(), 10), t.log()[-2000:]
    log = t.log()
    assert "usage: disable-user USER" in log
    assert "usage: remove-file GROUP FILE" in log
    assert "refused: invalid user id" in log
    assert "refused: no user 'nobody'" in log
    t.send_stdin("help\n")
    assert wait_until(lambda: "  disable-user USER" in t.log(), 5)
    t.send_stdin("enable-user alice\n")
    assert wait_until(lambda: "user 'alice' enabled" in t.log(), 10)
    assert wait_until(lambda: cl.login(1, "alice")[0] == OK, 10)
    cl.converge(None, 30)
