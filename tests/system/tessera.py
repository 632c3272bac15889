"""
tessera.py -- helpers for the Tessera system tests.

Purpose: start real ./tracker and ./client processes on 127.0.0.1 and
talk to them through the client's non-TTY mode (Tracker, Client,
run_client).  The wire protocol (frames, TLS, Raw) is proto.py and the
process wrapper (pid discipline, bounded waits) is procs.py; their names
are re-exported here, so a test imports whichever it needs from this one
module.  Nothing here is shared between test processes; every wait is
bounded.

Crash behaviour: every process started is recorded in procs.REGISTRY;
the conftest fixture calls reap_all() at teardown, which kills whatever
is still alive (the tracker's workers and a client's children are found
by ppid and recorded before the parent is killed).
"""

import os
import select
import subprocess
import time

from procs import (REGISTRY, SEGMENTS, Proc, children, comm,  # noqa: F401
                   descendants, free_port, kill_pid, node_segment,
                   pid_alive, port_accepts, proc_stat, reap_all,
                   segment_for_dir, tracker_segment, unlink_segment,
                   vm_rss_kb, wait_gone, wait_until)
from proto import (CA_BY_PORT, DEFAULT, ERR_AUTH, ERR_BADREQ,  # noqa: F401
                   ERR_BUSY, ERR_PERM, FF_REPLY, HDR, MAGIC, MSG, OK,
                   VERSION, Raw, cert_fp, closed_within, default_node_cert,
                   frame, new_user, node_cert, parse_groups, pki_dir, pstr,
                   recv_exact, send_or_closed, tls_connect, tls_context,
                   tracker_cert)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.abspath(os.environ.get("TESSERA_BIN",
                                     os.path.join(REPO, "build/release/bin")))
TOOLS = os.path.abspath(os.environ.get("TESSERA_TOOLS",
                                       os.path.join(REPO, "build/release/tools")))
KDF = "1000"
TRACKER_KINDS = ("trk-worker", "trk-sync", "trk-http", "supervisor")
CLIENT_KINDS = ("uploader", "downloader", "agent", "node-http", "client",
                "supervisor",
                "node-sup")


def _is_asan(path):
    try:
        with open(path, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


# ASan builds are slower and keep freed memory in quarantine.
ASAN = _is_asan(os.path.join(BIN, "tracker"))


def write_info(path, ports, extra_lines=()):
    with open(path, "w") as f:
        f.write("# written by the system tests\n")
        for p in ports:
            f.write("127.0.0.1:%d\n" % p)
        for line in extra_lines:
            f.write(line + "\n")
    return path


# ---- the tracker ----------------------------------------------------------

class Tracker(Proc):
    """One ./tracker process with its own tracker_info.txt and data dir."""

    KINDS = TRACKER_KINDS

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
        self.segment = tracker_segment(self.data_dir)
        SEGMENTS.add(self.segment)
        Proc.__init__(self, os.path.join(self.tmpdir,
                                         "tracker-%d.log" % tid))
        self.known_workers = self.known

    def argv(self):
        a = [os.path.join(BIN, "tracker"), "-d", self.data_dir,
             "--kdf-iterations", KDF]
        if self.workers is not None:
            a += ["-w", str(self.workers)]
        if self.session_timeout is not None:
            a += ["--session-timeout", str(self.session_timeout)]
        return a + self.extra_args + [self.info, str(self.tid)]

    def start(self, timeout=15, preexec_fn=None):
        # the log is appended to: only a "ready" line of this start counts
        # (after a SIGKILL of the supervisor its old workers may still
        # accept on the port while they stop)
        seen = len(self.log())
        self.spawn(self.argv(), self.tmpdir, preexec_fn=preexec_fn)
        want = self.workers or 2

        def ready():
            if self.proc.poll() is not None:
                return True
            return ("ready on" in self.log()[seen:] and
                    port_accepts(self.port))
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
        self.known.update(pids)
        return pids

    def all_pids(self):
        if self.proc is None:
            return []
        return [self.proc.pid] + descendants(self.proc.pid)

    def send_stdin(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

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
        """Teardown: a graceful stop if it still runs, then leftovers."""
        if self.proc is None:
            return
        pids = set(self.all_pids()) | self.known
        if self.proc.poll() is None:
            self.stop(timeout=5)
        self.kill_leftovers(pids)


# ---- the client -----------------------------------------------------------

def client_argv(info, port=None, state_dir=None):
    port = port or free_port()
    # without -s the client makes ./tsr-node-<ip>-<port> where it runs
    SEGMENTS.add(node_segment(state_dir or "tsr-node-127.0.0.1-%d" % port))
    a = [os.path.join(BIN, "client")]
    if state_dir:
        a += ["-s", state_dir]
    return a + ["127.0.0.1:%d" % port, info]


class Client(Proc):
    """A ./client process fed through a pipe (non-TTY mode): its stdout
    and stderr in one pipe (an "error: ..." line in order with the
    results), its log in a file (--log-file)."""

    KINDS = CLIENT_KINDS
    _n = 0

    def __init__(self, info, tmpdir):
        Client._n += 1
        self.dir = os.path.join(str(tmpdir), "client-%d-%d"
                                % (os.getpid(), Client._n))
        os.makedirs(self.dir, exist_ok=True)
        Proc.__init__(self, os.path.join(self.dir, "stderr.log"))
        self.errpath = self.logpath
        argv = client_argv(info, state_dir=os.path.join(self.dir, "state"))
        argv[1:1] = ["--log-file", self.logpath]
        self.spawn(argv, self.dir, stdout_pipe=True, mode="wb",
                   stderr_pipe=True)

    def send(self, lines):
        self.pids()
        try:
            self.proc.stdin.write("".join(l + "\n" for l in lines).encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass        # it died; finish() shows what it printed

    def read_line(self, timeout):
        """One stdout line within timeout seconds, or None."""
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
        self.pids()
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
        return self.log()

    def kill(self):
        self.pids()
        kill_pid(self.proc.pid)
        self.wait(5)


def ts_sec(*args, timeout=40):
    """Runs tests/tools/ts_sec (the hostile peer and tracker client) to
    its end, bounded: (rc, stdout stripped, stderr)."""
    r = subprocess.run([os.path.join(TOOLS, "ts_sec")] +
                       [str(a) for a in args], capture_output=True,
                       timeout=timeout)
    return (r.returncode, r.stdout.decode().strip(),
            r.stderr.decode(errors="replace"))


def run_client(info, script_lines, tmpdir, timeout=60):
    """Runs ./client with the script on stdin; (rc, stdout lines, stderr)."""
    c = Client(info, tmpdir)
    try:
        c.send(script_lines)
        return c.finish(timeout)
    finally:
        c.reap()
