"""
procs.py -- the one process wrapper of the Tessera system tests.

Purpose: pid discipline for every ./tracker and ./client a test starts.
Proc starts one program (argv, working dir, a log file for what it
writes), learns the pids below it while they live (/proc, by ppid) and
stops them by pid only: stop() is SIGTERM, a bounded wait, then SIGKILL
for the program and for any of its own kinds of children left behind;
kill_tree() SIGSTOPs the whole tree first so nobody respawns anybody;
reap() is the teardown form.  Also the /proc readers and bounded waits
the tests use (proc_stat, pid_alive, children, descendants, wait_until,
...).  tessera.py re-exports these names.

Locking: none; REGISTRY is appended to by the test thread only.

Crash behaviour: every Proc is recorded in REGISTRY when made; the
conftest fixture calls reap_all() at teardown, which kills whatever is
still alive (children are recorded while their parent lives, so they are
found after it is gone).  Nothing is killed by name: a pid is killed only
when it is ours and its comm is one of the wrapper's KINDS.
"""

import hashlib
import os
import signal
import socket
import subprocess
import time

REGISTRY = []           # every Proc (and Cluster) started by a test
SEGMENTS = set()        # /dev/shm names this test process's programs use
STOP_WAIT_S = 5         # bounded wait after a SIGKILL, seconds
LEFTOVER_WAIT_S = 3     # how long children may take to follow, seconds


# ---- shm segment names -----------------------------------------------------

def segment_for_dir(prefix, d):
    """The /dev/shm name (no "/") of the program whose state lives in d:
    prefix-<16 hex digits of SHA-256(realpath(d))>, as shm/ts_shm_name.c
    makes it.  d need not exist yet (realpath keeps a missing tail)."""
    real = os.path.realpath(str(d))
    return "%s-%s" % (prefix, hashlib.sha256(real.encode()).hexdigest()[:16])


def node_segment(state_dir):
    """A node's segment name: from its state directory."""
    return segment_for_dir("tessera-node", state_dir)


def tracker_segment(data_dir):
    """A tracker's segment name: from its data directory."""
    return segment_for_dir("tessera-trk", data_dir)


def unlink_segment(name):
    try:
        os.unlink(os.path.join("/dev/shm", name))
    except OSError:
        pass


# ---- /proc ------------------------------------------------------------------

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


# ---- bounded waits ------------------------------------------------------------

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


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_accepts(port, timeout=0.2):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except OSError:
        return False
    s.close()
    return True


def read_text(path):
    """A log file's text so far ("" if there is none)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---- one started program ------------------------------------------------------

class Proc:
    """One program a test started, and the processes below it.

    KINDS: the comm names its children have; only those are killed when
    they outlive it (a recorded pid may have been reused).  logpath:
    where its stderr goes (and its stdout, unless spawn() is told to pipe
    it)."""

    KINDS = ()

    def __init__(self, logpath):
        self.logpath = logpath
        self.proc = None
        self.known = set()
        REGISTRY.append(self)

    # -- start ------------------------------------------------------------

    def spawn(self, argv, cwd, stdout_pipe=False, env=None, mode="ab",
              preexec_fn=None, stderr_pipe=False):
        """Starts argv with stdin a pipe; stderr (and stdout unless
        stdout_pipe) to the log file; env: added to the environment.
        stderr_pipe: stderr into the stdout pipe (in the order written)."""
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        logf = open(self.logpath, mode)
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE if stdout_pipe else logf,
                stderr=subprocess.STDOUT if stderr_pipe else logf, cwd=cwd,
                env=full_env, preexec_fn=preexec_fn)
        finally:
            logf.close()
        return self.proc

    # -- look ---------------------------------------------------------------

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """The program and every live process below it (recorded); []
        once it has exited (its pid may then be another's)."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        p = [self.proc.pid] + descendants(self.proc.pid)
        self.known.update(p)
        return p

    def log(self):
        return read_text(self.logpath)

    def wait(self, timeout):
        """Its exit code within timeout seconds, or None."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    # -- stop -----------------------------------------------------------------

    def close_pipes(self):
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f:
                    f.close()
            except OSError:
                pass

    def close_stdin(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def kill_leftovers(self, pids):
        """SIGKILL those of pids (not the program itself) still alive and
        of our KINDS."""
        for p in pids:
            if p != self.proc.pid and pid_alive(p) and comm(p) in self.KINDS:
                kill_pid(p)

    def stop(self, timeout=10):
        """SIGTERM, bounded wait, then SIGKILL; the children get a bounded
        while to follow, then leftovers are killed; returns the exit
        code."""
        if self.proc is None:
            return None
        pids = set(self.pids()) | self.known
        if self.proc.poll() is None:
            kill_pid(self.proc.pid, signal.SIGTERM)
            if self.wait(timeout) is None:
                kill_pid(self.proc.pid, signal.SIGKILL)
                self.wait(STOP_WAIT_S)
        others = [p for p in pids if p != self.proc.pid]
        wait_gone(others, LEFTOVER_WAIT_S)
        self.kill_leftovers(others)
        self.close_stdin()
        return self.proc.returncode

    def kill_tree(self):
        """SIGSTOP then SIGKILL the program and every process below it
        (nobody restarts anybody); waits, bounded, until they are gone.
        Returns (the pids, whether all are gone)."""
        pids = self.pids()
        for p in pids:
            kill_pid(p, signal.SIGSTOP)
        for p in pids:
            kill_pid(p, signal.SIGKILL)
        if self.proc is not None:
            self.wait(STOP_WAIT_S)
            self.close_stdin()
        gone = wait_gone(pids, STOP_WAIT_S)
        return pids, gone

    def reap(self):
        """Teardown: SIGKILL the program, then its leftovers; closes the
        pipes."""
        if self.proc is None:
            return
        pids = set(self.pids()) | self.known
        if self.proc.poll() is None:    # else the pid may be another's now
            kill_pid(self.proc.pid, signal.SIGKILL)
        self.kill_leftovers(pids)
        self.wait(STOP_WAIT_S)
        self.close_pipes()


def reap_all():
    while REGISTRY:
        obj = REGISTRY.pop()
        try:
            obj.reap()
        except Exception:       # teardown must go on whatever happened
            pass
