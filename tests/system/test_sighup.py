"""
test_sighup.py -- `--log-file` and SIGHUP (logrotate) on the tracker and
the client.

Purpose: a real tracker logs to --log-file; the file is renamed (what
logrotate does), SIGHUP goes to the supervisor only (what systemd's
ExecReload does); then new lines of the supervisor AND of the workers
that were running before the signal (same pids: SIGHUP must not kill
them) land in the new file, none in the renamed one, and the tracker
keeps serving (a login).  The same for the client: its own lines and its
node's processes' lines move to the new file and it keeps running.  A
--log-file that cannot be opened is a clear error at start.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers and clients).
"""

import os
import re
import signal
import subprocess
import time

import tessera
from procs import wait_until

LINE = re.compile(r"^\S+Z (\S+)\[(\d+)\] \w+: ", re.M)


def pids_in(path):
    try:
        with open(path) as f:
            return set(int(m.group(2)) for m in LINE.finditer(f.read()))
    except FileNotFoundError:
        return set()


def fd2(pid):
    """Where process pid's stderr points."""
    try:
        return os.readlink("/proc/%d/fd/2" % pid)
    except OSError:
        return None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def test_tracker_sighup_reopens_log(tmp_path):
    log = str(tmp_path / "tracker.log")
    t = tessera.Tracker(tmp_path / "t", workers=2,
                        extra_args=["--log-file", log, "--log-level",
                                    "debug"])
    t.log = lambda: read(log)           # "ready on" is in the file now
    t.start()
    sup = t.proc.pid
    workers = set(t.worker_pids())
    assert len(workers) == 2
    assert sup in pids_in(log)
    # stderr no longer carries the log
    assert "ready on" not in read(t.logpath)

    os.rename(log, log + ".1")
    os.kill(sup, signal.SIGHUP)
    assert wait_until(lambda: "SIGHUP" in read(log), 5), read(log + ".1")
    # every process of the tree now writes fd 2 to the new file (none
    # holds the renamed one)
    assert wait_until(lambda: all(fd2(p) == log for p in t.all_pids()), 5), \
        [(p, fd2(p)) for p in t.all_pids()]
    # (lines written before a process handled the signal went to the old
    # file, as with any rotation; from here on none may)
    old_size = os.path.getsize(log + ".1")
    # the workers keep running (the default action of SIGHUP would kill
    # them) and keep serving; what they log lands in the new file
    for i in range(6):
        tessera.new_user(t.port, "hup%d" % i)
    assert set(t.worker_pids()) == workers, "a worker died of SIGHUP"
    assert t.alive()
    assert wait_until(lambda: len(workers & pids_in(log)) >= 1, 5), \
        "no worker line in the new file:\n" + read(log)
    assert "user 'hup5' created" in read(log)
    # nothing new in the renamed file
    time.sleep(0.2)
    assert os.path.getsize(log + ".1") == old_size

    # a second rotation works the same
    os.rename(log, log + ".2")
    os.kill(sup, signal.SIGHUP)
    assert wait_until(lambda: "SIGHUP" in read(log), 5)
    tessera.new_user(t.port, "hup-after")
    assert t.alive() and set(t.worker_pids()) == workers


def test_log_file_unopenable(tmp_path):
    bad = str(tmp_path / "no-such-dir" / "x.log")
    t = tessera.Tracker(tmp_path / "t", workers=1)
    r = subprocess.run(t.argv()[:1] + ["--log-file", bad, t.info, "1"],
                       capture_output=True, text=True, timeout=20,
                       cwd=str(tmp_path))
    assert r.returncode == 1 and "cannot open --log-file" in r.stderr, r
    r = subprocess.run([os.path.join(tessera.BIN, "client"), "--log-file",
                        bad, "127.0.0.1:%d" % tessera.free_port(), t.info],
                       capture_output=True, text=True, timeout=20,
                       stdin=subprocess.DEVNULL, cwd=str(tmp_path))
    assert r.returncode == 1 and "cannot open --log-file" in r.stderr, r


class ClientProc(tessera.Proc):
    KINDS = tessera.CLIENT_KINDS

    def reap(self):
        self.stop(5)


def test_client_sighup_reopens_log(tmp_path):
    t = tessera.Tracker(tmp_path / "t", workers=1).start()
    log = str(tmp_path / "client.log")
    argv = tessera.client_argv(t.info, state_dir=str(tmp_path / "node"))
    argv = argv[:1] + ["--log-file", log, "--log-level", "debug",
                       "--keep-running"] + argv[1:]
    c = ClientProc(str(tmp_path / "client.stderr"))
    c.spawn(argv, str(tmp_path))
    try:
        assert wait_until(lambda: len(pids_in(log)) >= 2, 15), read(log)
        before = pids_in(log)
        os.rename(log, log + ".1")
        os.kill(c.proc.pid, signal.SIGHUP)
        # the client does not take this SIGHUP as a hangup
        time.sleep(0.5)
        assert c.alive(), read(log + ".1")
        pids = c.pids()
        assert len(pids) >= 4, "no node processes"
        # every process of the tree writes fd 2 to the new file now
        # (none still holds the renamed one)
        assert wait_until(lambda: all(fd2(p) == log for p in pids), 5), \
            [(p, fd2(p)) for p in pids]
        assert before & set(pids)
        # stopping makes the node log again: into the new file
        os.kill(c.proc.pid, signal.SIGTERM)
        assert wait_until(lambda: not c.alive(), 15)
        assert "supervisor stopped" in read(log)
        assert "supervisor stopped" not in read(log + ".1")
    finally:
        c.reap()
