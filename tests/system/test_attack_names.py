"""
test_attack_names.py -- names that would drive or fool another member's
terminal, through the real ./tracker and ./client.

The attack: a self-registered member shares a file whose name carries a
C1 control (U+009B is CSI on terminals that honour 8-bit controls, the
raw byte 0x9B the same in Latin-1 text), ESC [ (CSI in 7 bits), or a
bidirectional override (U+202E shows "evil<RLO>txt.exe" as
"evilexe.txt"); every member who runs list_files gets it on stdout.

  - creation is refused: UPLOAD_FILE (raw protocol, a hostile client)
    gets BADREQ with a message naming the character; upload_file refuses
    locally with the name shown escaped; create_user / create_group with
    such ids are refused by the client before it sends anything (its
    tracker is not even running) and by the tracker;
  - names already stored (made before the rule, or merged from a tracker
    without it: injected here into tracker.tdb, the tracker stopped) are
    still listed and can be downloaded, but every print -- list_files,
    download_file, show_downloads, stop_share, errors -- is escaped: the
    client's stdout and stderr hold no C0/C1 control, no bidirectional
    control and only valid UTF-8, and the escaped forms name the bytes;
  - valid names (accents, CJK, spaces) are unchanged.

The client has no --json output, so there is no JSON to check.  Real
processes on 127.0.0.1; every wait is bounded; every process is stopped
by pid (conftest).
"""

import hashlib
import os
import re
import subprocess
import time

from nodes import (Node, chunk_hashes, create_users, group_of, make_file,
                   sha1_file)
from proto import ERR_EXISTS, pstr, upload_frame
from tessera import (ERR_BADREQ, OK, Client, Raw, free_port, node_cert,
                     write_info)

G = "g"

# (stored bytes, how the client shows them inside list_files' quotes)
HOSTILE = [
    (b"a\xc2\x9b" b"2Jc1.txt", '"a\\u{009b}2Jc1.txt"'),
    (b"b\x9b" b"2Jraw.txt", '"b\\x9b2Jraw.txt"'),
    (b"c\xe2\x80\xae" b"txt.exe", '"c\\u{202e}txt.exe"'),
    (b"d\xe2\x81\xa6" b"x\xe2\x81\xa9" b"y.txt",
     '"d\\u{2066}x\\u{2069}y.txt"'),
    (b"e\xe2\x80\x8f" b"rlm\xd8\x9c.txt", '"e\\u{200f}rlm\\u{061c}.txt"'),
    (b"f\xc0\xae" b"overlong", '"f\\xc0\\xaeoverlong"'),
]

# what must never reach a terminal raw
C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")
BIDI = re.compile(b"\xd8\x9c|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def assert_clean(data, what):
    """No control but '\\n', no C1, no bidi control, valid UTF-8."""
    bad = [c for c in data if (c < 0x20 and c != 0x0a) or c == 0x7f]
    assert not bad, (what, "control bytes", bad[:8], data[-2000:])
    assert not C1_UTF8.search(data), (what, "C1 in UTF-8", data[-2000:])
    assert not BIDI.search(data), (what, "bidi control", data[-2000:])
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError((what, "invalid UTF-8", str(e), data[-2000:]))


def run_raw(info, lines, tmpdir, timeout=60):
    """./client fed lines (bytes) on stdin: (rc, stdout bytes, stderr
    bytes), nothing decoded."""
    c = Client(info, tmpdir)
    try:
        c.pids()
        try:
            c.proc.stdin.write(b"".join(l + b"\n" for l in lines))
            c.proc.stdin.flush()
        except BrokenPipeError:
            pass
        out, _ = c.proc.communicate(timeout=timeout)
        with open(c.errpath, "rb") as f:
            err = f.read()
        return c.proc.returncode, out, err
    finally:
        c.reap()


def login_raw(tracker, tmp_path, user):
    r = Raw(tracker.port, cert=node_cert(str(tmp_path / ("raw-" + user))))
    return r, r.login(user, "pw", node="127.0.0.1:%d" % free_port())


def test_hostile_names_refused_at_creation(cli, tracker, tmp_path):
    """UPLOAD_FILE, CREATE_USER, CREATE_GROUP with C1, raw 0x9B, ESC [ or
    bidi controls are refused by the tracker with a clear message, and by
    the client before it sends; printable UTF-8 names still work."""
    create_users(tracker.info, tmp_path, "a")
    r, tok = login_raw(tracker, tmp_path, "a")
    try:
        st, msg, _ = r.request("CREATE_GROUP", tok + pstr(G))
        assert st == OK, (st, msg)
        why = {
            b"a\xc2\x9b[2J": "U+009B (a C1 control character) at byte 1",
            b"b\x9b[2J": "byte 0x9b (invalid UTF-8) at byte 1",
            b"c\xe2\x80\xaetxt.exe":
                "U+202E (a bidirectional control) at byte 1",
            b"d\xe2\x81\xa7x": "U+2067 (a bidirectional control) at byte 1",
            b"caf\xe9": "byte 0xe9 (invalid UTF-8) at byte 3",
            b"l\xe2\x80\xa8l": "U+2028 (a line separator) at byte 1",
        }
        for name, reason in why.items():
            st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
                tok, G, name, 4, b"\1" * 20, [b"\1" * 20]))
            assert st == ERR_BADREQ, (name, st, msg)
            assert msg == "invalid file name: %s; a new file name must be " \
                "printable UTF-8" % reason, (name, msg)
        # ESC [ was refused before too (a control character)
        st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
            tok, G, b"x\x1b[2J", 4, b"\1" * 20, [b"\1" * 20]))
        assert (st, msg) == (ERR_BADREQ, "invalid file name"), (st, msg)
        # ids: ASCII only, as always
        for bad in (b"u\xc2\x9b", b"u\x9b", b"u\xe2\x80\xae", b"u\x1b["):
            st, msg, _ = r.request("CREATE_USER", pstr(bad) + pstr("pw"))
            assert st == ERR_BADREQ and msg.startswith("invalid user id"), \
                (bad, st, msg)
            st, msg, _ = r.request("CREATE_GROUP", tok + pstr(bad))
            assert st == ERR_BADREQ and msg.startswith("invalid group id"), \
                (bad, st, msg)
        # a name a terminal shows as it is: accepted, as before
        good = "r\u00e9sum\u00e9 \u65e5\u672c (1).txt".encode()
        st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
            tok, G, good, 4, b"\2" * 20, [b"\2" * 20]))
        assert st == OK, (st, msg)
        st, msg, body = r.request("LIST_FILES", tok + pstr(G))
        assert st == OK and good in body and b"\x9b" not in body, body
    finally:
        r.close()

    # the client: upload_file refuses locally, the name shown escaped
    up = tmp_path / "up"
    up.mkdir()
    paths = []
    for name, _ in HOSTILE[:3]:
        p = os.path.join(bytes(up), name)
        with open(p, "wb") as f:
            f.write(b"data")
        paths.append(p)
    rc, out, err = run_raw(tracker.info, [b"login a pw"] + [
        b'upload_file "%s" %s' % (p, G.encode()) for p in paths]
        + [b"list_files " + G.encode()], tmp_path)
    assert_clean(out, "stdout")
    assert_clean(err, "stderr")
    lines = out.decode().splitlines()
    assert lines[0] == "logged in as a", lines
    assert lines[1:4] == [
        "error: invalid file name 'a\\u{009b}2Jc1.txt': U+009B (a C1 "
        "control character) at byte 1; a new file name must be printable "
        "UTF-8",
        "error: invalid file name 'b\\x9b2Jraw.txt': byte 0x9b (invalid "
        "UTF-8) at byte 1; a new file name must be printable UTF-8",
        "error: invalid file name 'c\\u{202e}txt.exe': U+202E (a "
        "bidirectional control) at byte 1; a new file name must be "
        "printable UTF-8"], lines
    # only the good name was registered
    assert len(lines) == 5 and lines[4].startswith(
        '"r\u00e9sum\u00e9 \u65e5\u672c (1).txt" size=4 sources='), lines
    assert rc == 2

    # create_user / create_group: refused before anything is sent (this
    # client's tracker list names a port nobody listens on)
    dead = write_info(os.path.join(os.path.dirname(tracker.info),
                                   "dead_info.txt"), [free_port()])
    rc, out, err = run_raw(dead, [
        b"create_user u\xc2\x9b[2J pw", b"create_user u\x9b pw",
        b"create_user v\xe2\x80\xae pw", b'create_user "w\x1b[2J" pw'],
        tmp_path, timeout=30)
    assert_clean(out, "stdout")
    rule = "(use 1..64 characters of A-Z a-z 0-9 . _ -)"
    assert out.decode().splitlines() == [
        "error: invalid user id 'u\\u{009b}[2J' " + rule,
        "error: invalid user id 'u\\x9b' " + rule,
        "error: invalid user id 'v\\u{202e}' " + rule,
        "error: invalid user id 'w\\x1b[2J' " + rule], out
    assert rc == 2


# ---- names stored before the rule ------------------------------------------

def _tdb_escape(b):
    """bytes in tdbdump's text form: printable ASCII as is, else \\XX."""
    return "".join(chr(c) if 0x20 <= c < 0x7f and c not in b'"\\'
                   else "\\%02X" % c for c in b)


def rename_in_tdb(path, renames):
    """Rewrites tracker.tdb (its tracker stopped) with every occurrence of
    each placeholder bytes replaced by a hostile name of the same length
    -- in keys, records, indexes and the op log alike -- as if the files
    had been uploaded under those names by a tracker without the rule."""
    dump = subprocess.run(["tdbdump", path], capture_output=True,
                          timeout=30, check=True).stdout.decode("ascii")
    for old, new in renames:
        assert len(old) == len(new)
        assert dump.count(_tdb_escape(old)) >= 2, (old, dump[:3000])
        dump = dump.replace(_tdb_escape(old), _tdb_escape(new))
    tmp = path + ".new"
    subprocess.run(["tdbrestore", tmp], input=dump.encode("ascii"),
                   timeout=30, check=True)
    os.replace(tmp, path)


def clean_str(lines, what):
    """The same check on lines a Node decoded (invalid UTF-8 would show
    as U+FFFD there)."""
    for l in lines:
        bad = [c for c in l if ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f
               or c in "\u061c\u200e\u200f\u202a\u202b\u202c\u202d"
               "\u202e\u2066\u2067\u2068\u2069\ufffd"]
        assert not bad, (what, l, bad)


def test_stored_hostile_names_listed_escaped(tracker, tmp_path):
    """Files already stored under hostile names (tracker.tdb, the owner's
    node.tdb and the files on its disk renamed while everything was
    stopped) are listed, downloaded, shown and stopped with every name
    escaped; nothing raw reaches the members' terminals or the logs."""
    create_users(tracker.info, tmp_path, "o", "m")
    owner = Node(tracker.info, tmp_path, name="o").start()
    owner.login("o")
    member = Node(tracker.info, tmp_path, name="m").start()
    member.login("m")
    group_of(owner, [("m", member)], G)

    # the owner shares files under placeholder names of the same length
    # as the hostile ones, and a plain one
    d = os.path.join(str(tmp_path), "files")
    os.mkdir(d)
    renames, sums = [], {}
    for i, (name, _) in enumerate(HOSTILE):
        ph = name[:1] + b"Q" * (len(name) - 1)
        sums[name] = make_file(os.path.join(d, ph.decode()), 1000 + i,
                               seed=i + 1)
        owner.upload(os.path.join(d, ph.decode()), G)
        renames.append((ph, name))
    plain_sum = make_file(os.path.join(d, "plain.bin"), 5000, seed=9)
    owner.upload(os.path.join(d, "plain.bin"), G)

    # everything stopped: the names become the hostile ones everywhere
    assert owner.stop() is not None
    assert member.stop() is not None
    assert tracker.stop() == 0
    rename_in_tdb(os.path.join(tracker.data_dir, "tracker.tdb"), renames)
    rename_in_tdb(os.path.join(owner.state_dir, "node.tdb"), renames)
    for ph, name in renames:
        os.rename(os.path.join(d.encode(), ph), os.path.join(d.encode(),
                                                             name))
    tracker.start()
    owner.start()
    owner.login("o")

    # a member's one-shot script: lists, errors, stop_share -- raw bytes
    c_name = HOSTILE[2][0]
    t_list = time.monotonic()
    rc, out, err = run_raw(tracker.info, [
        b"login m pw", b"list_files " + G.encode(), b"list_groups",
        b'stop_share %s "%s"' % (G.encode(), c_name),
        b'download_file %s "%s" /nonexistent/x' % (G.encode(), c_name)],
        tmp_path)
    t_list = time.monotonic() - t_list
    assert_clean(out, "stdout")
    assert_clean(err, "stderr")
    lines = out.decode().splitlines()
    assert lines[0] == "logged in as m", lines
    listed = lines[1:2 + len(HOSTILE)]
    assert sorted(listed) == sorted(
        ["%s size=%d sources=1" % (shown, 1000 + i)
         for i, (_, shown) in enumerate(HOSTILE)]
        + ["plain.bin size=5000 sources=1"]), lines
    rest = lines[2 + len(HOSTILE):]
    assert rest == ["g owner=o members=2",
                    "error: not sharing 'c\\u{202e}txt.exe' in 'g'",
                    "error: no such directory '/nonexistent'"], lines
    assert rc == 3

    # another node may still become a source of a stored name (same
    # content); other content under it is refused as before
    b_name = HOSTILE[1][0]
    b_path = os.path.join(d.encode(), b_name)
    with open(b_path, "rb") as f:
        b_sha = hashlib.sha1(f.read()).digest()
    r, tok = login_raw(tracker, tmp_path, "m")
    try:
        st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
            tok, G, b_name, 1001, b_sha, chunk_hashes(b_path)))
        assert st == OK, (st, msg)
        st, msg, _ = r.request("UPLOAD_FILE", upload_frame(
            tok, G, b_name, 1001, b"\1" * 20, [b"\1" * 20]))
        assert st == ERR_EXISTS, (st, msg)
    finally:
        r.close()

    # the member's node downloads one: every line escaped, the bytes
    # right, the file on disk under its stored name
    member.start()
    member.login("m")
    dl = os.path.join(str(tmp_path), "dl")
    os.mkdir(dl)
    shown = "c\\u{202e}txt.exe"
    got = member.cmd('download_file %s "%s" %s' % (G, c_name.decode(), dl))
    assert got == ["downloading %s from %s to %s/%s" % (shown, G, dl,
                                                        shown)], got
    line = member.wait_download(G, shown, 60)
    assert line == "[C] [%s] %s -> %s/%s" % (G, shown, dl, shown), line
    with open(os.path.join(dl.encode(), c_name), "rb") as f:
        assert hashlib.sha1(f.read()).hexdigest() == sums[c_name]
    # and a plain file as before
    t0 = time.monotonic()
    final = member.download(G, "plain.bin", os.path.join(dl, "plain.bin"))
    assert member.wait_download(G, "plain.bin", 60).startswith("[C]")
    assert sha1_file(final) == plain_sum
    print("honest member: list_files script %.2fs, plain download %.2fs"
          % (t_list, time.monotonic() - t0))
    # the owner stops sharing it: its line and the tracker's log record
    # of it name the file escaped
    owner.expect('stop_share %s "%s"' % (G, c_name.decode()),
                 "stopped sharing %s in %s" % (shown, G))
    clean_str(member.lines + owner.lines, "node stdout")
    logs = {}
    for log in (tracker.logpath, member.errpath, owner.errpath):
        with open(log, "rb") as f:
            logs[log] = f.read()
        assert_clean(logs[log], log)
    assert b"'o' stopped sharing 'c\\u{202e}txt.exe' in 'g'" in \
        logs[tracker.logpath], logs[tracker.logpath][-3000:]
