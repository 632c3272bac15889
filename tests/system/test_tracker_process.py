"""
test_tracker_process.py -- the tracker as a set of processes: names,
stopping (quit, EOF, SIGTERM), worker respawn, supervisor death,
persistence across SIGKILL and SIGTERM, session expiry, bad arguments.
"""

import os
import signal
import subprocess
import time

import pytest

import tessera
from conftest import Runner


def runner(t, tmp_path):
    return Runner(t.info, tmp_path)


def test_process_names(tracker_factory):
    t = tracker_factory(workers=3)
    assert tessera.comm(t.pid) == "supervisor"
    w = t.worker_pids()
    assert len(w) == 3, w
    for p in w:
        with open("/proc/%d/comm" % p) as f:
            assert f.read().strip() == "trk-worker"
    assert "ready on 127.0.0.1:%d" % t.port in t.log()


def test_default_worker_count(tracker):
    assert len(tracker.worker_pids()) == 2


def test_quit_on_stdin(tracker, cli):
    cli.users("q")
    workers = tracker.worker_pids()
    tracker.send_stdin("quit\n")
    assert tracker.wait(10) == 0, tracker.log()
    assert tessera.wait_gone(workers, 5), workers


def test_eof_on_stdin_does_not_stop(tracker, cli):
    tracker.close_stdin()
    time.sleep(1)
    assert tracker.alive()
    assert len(tracker.worker_pids()) == 2
    cli.users("eofuser")
    assert tracker.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tracker, cli, sig):
    cli.users("s")
    workers = tracker.worker_pids()
    tessera.kill_pid(tracker.pid, sig)
    assert tracker.wait(10) == 0, tracker.log()
    assert tessera.wait_gone(workers, 5), workers


def test_killed_worker_is_replaced(tracker, cli):
    cli.users("w")
    before = tracker.worker_pids()
    victim = before[0]
    tessera.kill_pid(victim)
    t0 = time.monotonic()
    ok = tessera.wait_until(
        lambda: victim not in tracker.worker_pids() and
        len(tracker.worker_pids()) == len(before), 2.0)
    assert ok, (before, tracker.worker_pids(), tracker.log()[-2000:])
    assert time.monotonic() - t0 < 2.0
    assert tracker.alive()
    # service goes on, on every worker (several connections)
    for i in range(4):
        assert cli.as_user("w", ["create_group wg%d" % i]) == \
            ["group wg%d created" % i]
    assert tracker.stop() == 0


def test_killed_supervisor_leaves_no_orphans(tracker, cli):
    cli.users("k")
    workers = tracker.worker_pids()
    assert workers
    tessera.kill_pid(tracker.pid)
    tracker.wait(5)
    assert tessera.wait_gone(workers, 5), \
        [(p, tessera.proc_stat(p)) for p in workers]


def make_state(cli):
    cli.users("p1", "p2", "p3", "p4")
    assert cli.as_user("p1", ["create_group pg", "create_group pg2"]) == \
        ["group pg created", "group pg2 created"]
    for u in ("p2", "p3", "p4"):
        cli.as_user(u, ["join_group pg"])
    cli.as_user("p1", ["accept_request pg p3", "accept_request pg p2"])


def check_state(cli):
    assert cli.as_user("p1", ["list_groups", "list_requests pg"]) == \
        ["pg owner=p1 members=3", "pg2 owner=p1 members=1", "p4"]
    assert cli.as_user("p2", ["list_my_groups"]) == ["pg owner=p1 members=3"]
    rc, out, _ = cli.run(["login p1 wrong"])
    assert out == ["error: wrong user id or password"]
    # join order survived: p3 was accepted before p2
    assert cli.as_user("p1", ["leave_group pg"]) == \
        ["left pg; p3 is now the owner"]


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
def test_persistence(tracker_factory, tmp_path, how):
    t = tracker_factory()
    cli = runner(t, tmp_path)
    make_state(cli)
    if how == "sigkill":
        pids = t.kill(workers_too=True)
        assert tessera.wait_gone(pids, 5)
    else:
        assert t.stop() == 0
    t2 = tessera.Tracker(t.tmpdir, info=t.info, data_dir=t.data_dir)
    t2.logpath = t.logpath + ".2"
    t2.start()
    check_state(cli)
    assert t2.stop() == 0


def test_session_expiry_and_dead_client(tracker_factory, tmp_path):
    t = tracker_factory(session_timeout=1500)
    cli = runner(t, tmp_path)
    cli.users("sx")
    # a client SIGKILLed while logged in does not lock the account
    c = cli.spawn()
    c.send(["login sx pw"])
    line = c.read_line(10)
    assert line in (None, "logged in as sx"), line
    c.kill()
    c.reap()
    t0 = time.monotonic()
    assert cli.as_user("sx", ["create_group sxg"]) == ["group sxg created"]
    assert time.monotonic() - t0 < 5
    # a session with no heartbeat stops being valid after the timeout;
    # one that heartbeats stays valid
    raw = tessera.Raw(t.port)
    dead = raw.login("sx", "pw")
    live = raw.login("sx", "pw")
    st, msg, groups = raw.list_groups(dead)
    assert st == tessera.OK and groups == [("sxg", "sx", 1)], (st, msg)
    assert 0 < raw.heartbeat_ms < 1500, raw.heartbeat_ms
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        st, msg, _ = raw.request("HEARTBEAT", live)
        assert st == tessera.OK, msg
        time.sleep(min(0.4, raw.heartbeat_ms / 1000.0))
    st, msg, _ = raw.list_groups(dead)
    # the contract's text; an implementation that already swept the
    # session may only know it as unknown
    assert st == tessera.ERR_AUTH and msg in (
        "session expired; log in again", "not logged in"), (st, msg)
    st, msg, _ = raw.list_groups(live)
    assert st == tessera.OK, msg
    raw.close()
    # through the client, a fresh login still works
    assert cli.as_user("sx", ["list_my_groups"]) == ["sxg owner=sx members=1"]


def run_tracker(args, tmp_path, timeout=10):
    return subprocess.run([os.path.join(tessera.BIN, "tracker")] + args,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, cwd=str(tmp_path))


def test_malformed_tracker_info(tmp_path):
    info = tessera.write_info(str(tmp_path / "tracker_info.txt"),
                              [tessera.free_port()],
                              ["this is not an address"])
    r = run_tracker(["-d", str(tmp_path / "d"), info, "1"], tmp_path)
    assert r.returncode != 0
    assert b"tracker_info.txt:3" in r.stderr, r.stderr


@pytest.mark.parametrize("tid", ["0", "2", "abc", "-1"])
def test_bad_tracker_id(tmp_path, tid):
    info = tessera.write_info(str(tmp_path / "tracker_info.txt"),
                              [tessera.free_port()])
    r = run_tracker(["-d", str(tmp_path / "d"), info, tid], tmp_path)
    assert r.returncode != 0, r.stderr


def test_usage_help_version(tmp_path):
    r = run_tracker([], tmp_path)
    assert r.returncode == 2
    assert b"usage" in r.stderr.lower()
    r = run_tracker(["--no-such-option", "x", "1"], tmp_path)
    assert r.returncode == 2
    r = run_tracker(["-h"], tmp_path)
    assert r.returncode == 0
    for opt in (b"--pki", b"--init-pki", b"--ticket-ttl", b"--handshake-ms",
                b"--frame-timeout", b"--max-conns-per-addr", b"--max-unauth",
                b"--login-fails-user"):
        assert opt in r.stdout, opt
    r = run_tracker(["--handshake-ms", "1", "x", "1"], tmp_path)
    assert r.returncode == 2 and b"handshake-ms" in r.stderr
    r = run_tracker(["-V"], tmp_path)
    assert r.returncode == 0 and b"0.1.0" in r.stdout + r.stderr


def test_port_in_use(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        info = tessera.write_info(str(tmp_path / "tracker_info.txt"), [port])
        r = run_tracker(["-d", str(tmp_path / "d"), info, "1"], tmp_path)
        assert r.returncode != 0
    finally:
        s.close()
