"""
wanbed.py -- a WAN test bed: N hosts, each a network namespace with one
address, joined through the userspace emulator tests/tools/wanemu.c
(delay, rate caps, loss, jitter per host and per pair; docs/TESTBED.md).

Purpose: any system test or benchmark can write

    with WanBed(3, delay_ms=25, rate_mbit=100) as bed:
        p = bed.run(1, ["./client", ...])        # Popen inside host 1
        bed.addr(0)                              # "10.77.0.1"

Host i is namespace tsr-<pid>-b<k>-h<i> (pid = this process, k = the
bed's number in it) with address 10.77.0.<i+1>/24 on its TUN wan0 and
lo up; nothing is configured in the root namespace.  The module is also
a command line of tiny network tools run inside the hosts (ping over a
raw ICMP socket, TCP and UDP senders and sinks; `python3 wanbed.py -h`),
so a test needs no ping or iperf on the machine.

Locking: none; one WanBed is used by one thread.

Crash behaviour: close() (the context exit, also run at interpreter exit
for a bed left open) kills every process started through run() by pid
(its process group), SIGTERMs the emulator by pid (SIGKILL after a
bounded wait), kills by pid whatever is still inside a namespace, and
deletes every namespace the bed made.  If this process dies before that
the emulator follows (PR_SET_PDEATHSIG) and the next WanBed (or
cleanup_stale()) deletes the tsr-* namespaces whose owner pid is dead.
"""

import argparse
import atexit
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.environ.get("TESSERA_TOOLS",
                       os.path.join(ROOT, "build", "release", "tools"))
NETNS_DIR = "/run/netns"
PREFIX = "tsr-"
SUBNET = "10.77.0."
READY_WAIT_S = 10       # emulator start, bounded
STOP_WAIT_S = 3         # after SIGTERM, before SIGKILL
CMD_WAIT_S = 10         # each `ip` command
CTL_WAIT_S = 5          # the emulator's answer to a control file
EMU_NICE = -5           # the emulator's niceness (root may lower it)

_open_beds = []


def _pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _emu_priority():
    """In the emulator's child: nice EMU_NICE whatever the test runs at
    (a `nice`d test would hand its emulator a late timer on a busy
    machine, and every packet's delay with it); it uses little CPU."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, EMU_NICE)
    except OSError:
        pass


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=CMD_WAIT_S,
                       text=True)
    if check and r.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def unsupported():
    """Why a bed cannot run here (a pytest.skip reason), or None."""
    if os.geteuid() != 0:
        return "WAN test bed needs root (network namespaces, TUN)"
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    if not os.path.exists("/proc/self/ns/net"):
        return "kernel without network namespaces"
    emu = os.path.join(TOOLS, "wanemu")
    if not os.access(emu, os.X_OK):
        return "%s not built (make tools)" % emu
    try:
        _ip("netns", "list")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
        return "no `ip netns` support: %s" % e
    return None


def _ns_pids(ns):
    try:
        out = _ip("netns", "pids", ns, check=False)
    except subprocess.TimeoutExpired:
        return []
    return [int(x) for x in out.split() if x.isdigit()]


def _delete_ns(ns):
    """Kills (by pid) whatever runs inside ns, then deletes it."""
    for _ in range(3):
        pids = _ns_pids(ns)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    _ip("netns", "del", ns, check=False)


def cleanup_stale():
    """Deletes tsr-<pid>-* namespaces whose owner pid is dead."""
    try:
        names = os.listdir(NETNS_DIR)
    except OSError:
        return []
    gone = []
    for name in names:
        parts = name.split("-")
        if not name.startswith(PREFIX) or len(parts) < 3:
            continue
        try:
            owner = int(parts[1])
        except ValueError:
            continue
        if owner != os.getpid() and not _pid_alive(owner):
            _delete_ns(name)
            gone.append(name)
    return gone


def our_namespaces():
    """Namespaces this process's beds made that still exist."""
    mine = "%s%d-" % (PREFIX, os.getpid())
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(mine))
    except OSError:
        return []


class WanBed:
    """N hosts through one wanemu; see the module comment.

    delay_ms, loss_pct, jitter_ms: every pair's defaults (one way).
    rate_mbit: every host's up and down cap (None = unlimited); up_mbit,
    down_mbit override it.  hosts: {i: {"up_mbit":.., "down_mbit":..,
    "queue": "256K"}} per host.  links: extra wanemu --link specs, e.g.
    ["0-1:delay=5ms,loss=1"], applied after the defaults.  emu_args:
    more wanemu options, last (e.g. ["--config", path])."""

    _beds = 0

    def __init__(self, n, delay_ms=0, rate_mbit=None, up_mbit=None,
                 down_mbit=None, loss_pct=0, jitter_ms=0, reorder=False,
                 queue=None, seed=1, mtu=65000, hosts=None, links=(),
                 emu_args=(), workdir=None):
        if not 2 <= n <= 64:
            raise ValueError("2..64 hosts")
        self.n = n
        self.k = WanBed._beds
        WanBed._beds += 1
        self.names = ["%s%d-b%d-h%d" % (PREFIX, os.getpid(), self.k, i)
                      for i in range(n)]
        self.workdir = workdir or "/tmp"
        self.stats_path = os.path.join(
            str(self.workdir), "wanemu-%d-%d.jsonl" % (os.getpid(), self.k))
        self.ctl_path = self.stats_path[:-len(".jsonl")] + ".ctl"
        self.loss_pct = loss_pct
        self.procs = []
        self.emu = None
        self.made = []
        self.args = ["--seed", str(seed), "--mtu", str(mtu),
                     "--stats", self.stats_path, "--control", self.ctl_path,
                     "--link", "*-*:delay=%gms,loss=%g%s%s" % (
                         delay_ms, loss_pct,
                         ",jitter=%gms" % jitter_ms if jitter_ms else "",
                         ",reorder" if reorder else "")]
        for i in range(n):
            o = dict((hosts or {}).get(i, {}))
            up = o.get("up_mbit", up_mbit if up_mbit is not None
                       else rate_mbit)
            down = o.get("down_mbit", down_mbit if down_mbit is not None
                         else rate_mbit)
            spec = "%s,%s/24" % (self.names[i], self.addr(i))
            if up:
                spec += ",up=%gM" % up
            if down:
                spec += ",down=%gM" % down
            q = o.get("queue", queue)
            if q:
                spec += ",queue=%s" % q
            self.args += ["--host", spec]
        for spec in links:
            self.args += ["--link", spec]
        self.args += [str(a) for a in emu_args]

    # -- life cycle --------------------------------------------------------

    def addr(self, i):
        return "%s%d" % (SUBNET, i + 1)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def start(self, timeout=READY_WAIT_S):
        why = unsupported()
        if why:
            raise RuntimeError(why)
        cleanup_stale()
        _open_beds.append(self)
        for ns in self.names:
            if os.path.exists(os.path.join(NETNS_DIR, ns)):
                _delete_ns(ns)          # our own pid's, from an earlier run
            _ip("netns", "add", ns)
            self.made.append(ns)
        try:
            os.unlink(self.stats_path)
        except OSError:
            pass
        with open(self.stats_path + ".err", "ab") as err:
            self.emu = subprocess.Popen(
                [os.path.join(TOOLS, "wanemu")] + self.args,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=err, start_new_session=True,
                preexec_fn=_emu_priority)
        line = self._emu_line(timeout)
        if line is None:
            raise RuntimeError("wanemu did not start: %s"
                               % self.emu_errors())
        if not line.startswith(b"ready"):
            raise RuntimeError("wanemu: %r" % line)
        return self

    def _emu_line(self, timeout):
        """The emulator's next stdout line within timeout seconds, or
        None (it exited or said nothing).  Read a byte at a time: what
        follows the line stays in the pipe."""
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.emu.poll() is not None:
                return None
            r, _, _ = select.select([self.emu.stdout], [], [], left)
            if r:
                b = os.read(self.emu.stdout.fileno(), 1)
                if not b:               # it exited: poll() will say so
                    time.sleep(0.01)
                line += b
        return line

    def emu_errors(self):
        try:
            with open(self.stats_path + ".err", "rb") as f:
                return f.read().decode("utf-8", "replace")[-2000:]
        except OSError:
            return ""

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
            try:
                p.wait(timeout=STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []
        if self.emu is not None:
            if self.emu.poll() is None:
                self.emu.send_signal(signal.SIGTERM)
                try:
                    self.emu.wait(timeout=STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    self.emu.kill()
                    self.emu.wait(timeout=STOP_WAIT_S)
            self.emu.stdout.close()
        for ns in self.made:
            _delete_ns(ns)
        self.made = []
        for path in (self.ctl_path, self.ctl_path + ".tmp"):
            try:
                os.unlink(path)
            except OSError:
                pass
        if self in _open_beds:
            _open_beds.remove(self)

    # -- running things ----------------------------------------------------

    def netns_argv(self, host, argv):
        return ["ip", "netns", "exec", self.names[host]] + [str(a)
                                                            for a in argv]

    def run(self, host, argv, **kw):
        """Popen of argv inside host's namespace (own process group, so
        close() can kill all of it by pid)."""
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.netns_argv(host, argv), **kw)
        self.procs.append(p)
        return p

    def tool(self, host, *args, **kw):
        """run() of this file's own command line (ping, tcp-send, ...)."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("text", True)
        return self.run(host, [sys.executable, os.path.abspath(__file__)]
                        + [str(a) for a in args], **kw)

    def tool_json(self, host, *args, timeout=30):
        """Runs a tool to its end: its JSON result."""
        return result(self.tool(host, *args), timeout)

    def sink(self, host, *args, timeout=5):
        """Starts a sink tool (tcp-sink, udp-sink) and returns once it
        listens (its "ready" line); result() gives its figures."""
        p = self.tool(host, *args)
        r, _, _ = select.select([p.stdout], [], [], timeout)
        line = p.stdout.readline() if r else ""
        if line.strip() != "ready":
            raise RuntimeError("%s did not start: %r" % (args[0], line))
        return p

    # -- changing links at run time ----------------------------------------

    def set_links(self, specs, timeout=CTL_WAIT_S):
        """Applies wanemu --link specs ("0-1:loss=100", "2>3:delay=80ms")
        to the running emulator (its control file and SIGUSR2) and
        returns once it answered; raises if it rejected one."""
        tmp = self.ctl_path + ".tmp"
        with open(tmp, "w") as f:
            for spec in specs:
                f.write("link %s\n" % spec)
        os.rename(tmp, self.ctl_path)
        self.emu.send_signal(signal.SIGUSR2)
        line = self._emu_line(timeout)
        if line is None:
            raise RuntimeError("wanemu did not answer its control file: %s"
                               % self.emu_errors())
        if not line.startswith(b"ctl ok"):
            raise RuntimeError("wanemu: %s" % line.decode().strip())
        return int(line.split()[2])

    def _pairs(self, side_a, side_b):
        return [(a, b) for a in side_a for b in side_b if a != b]

    def partition(self, side_a, side_b):
        """Cuts every pair between the hosts of side_a and those of
        side_b (100 % loss both ways); heal() undoes it."""
        return self.set_links(["%d-%d:loss=100" % p
                               for p in self._pairs(side_a, side_b)])

    def heal(self, side_a, side_b):
        """Those pairs back at the bed's default loss."""
        return self.set_links(["%d-%d:loss=%g" % (a, b, self.loss_pct)
                               for a, b in self._pairs(side_a, side_b)])

    # -- emulator figures --------------------------------------------------

    def emu_cpu_s(self):
        """User + system CPU seconds the emulator has used so far."""
        with open("/proc/%d/stat" % self.emu.pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self, timeout=5):
        """SIGUSR1 -> the emulator's stats lines, parsed (one snapshot)."""
        before = self._stats_lines()
        self.emu.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = self._stats_lines()
            new = lines[len(before):]
            if new and new[-1].get("ev") == "summary":
                return new
            time.sleep(0.02)
        raise RuntimeError("wanemu wrote no stats")

    def _stats_lines(self):
        try:
            with open(self.stats_path) as f:
                raw = f.read()
        except OSError:
            return []
        return [json.loads(ln) for ln in raw.splitlines() if ln.strip()
                and ln.endswith("}")]


def result(p, timeout=30):
    """The JSON last line of a tool Popen, bounded; raises if it failed."""
    out, _ = p.communicate(timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d" % (p.args, p.returncode))
    return json.loads(out.splitlines()[-1])


@atexit.register
def _close_open_beds():
    for bed in list(_open_beds):
        bed.close()


# ---- the in-namespace tools -----------------------------------------------

def _csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def cmd_ping(a):
    """ICMP echo over a raw socket; prints {"sent","recv","rtt_ms":[..]}."""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = os.getpid() & 0xffff
    sent, rtts, t0 = {}, {}, {}
    deadline = time.monotonic() + a.count * a.interval / 1000 + a.wait
    nxt = time.monotonic()
    seq = 0
    while time.monotonic() < deadline and len(rtts) < a.count:
        now = time.monotonic()
        if seq < a.count and now >= nxt:
            body = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + b"p" * a.size
            body = body[:2] + struct.pack("!H", _csum(body)) + body[4:]
            t0[seq] = time.monotonic()
            s.sendto(body, (a.addr, 0))
            sent[seq] = True
            seq += 1
            nxt += a.interval / 1000
        wait = max(0.0, min(deadline, nxt if seq < a.count else deadline)
                   - time.monotonic())
        r, _, _ = select.select([s], [], [], wait)
        if not r:
            continue
        d = s.recv(65535)
        ihl = (d[0] & 0xf) * 4
        typ, _, _, rid, rseq = struct.unpack("!BBHHH", d[ihl:ihl + 8])
        if typ == 0 and rid == ident and rseq in t0 and rseq not in rtts:
            rtts[rseq] = (time.monotonic() - t0[rseq]) * 1000
    print(json.dumps({"sent": len(sent), "recv": len(rtts),
                      "rtt_ms": [rtts[k] for k in sorted(rtts)]}))


def cmd_tcp_sink(a):
    """Accepts one connection, reads to EOF; prints the byte count and
    (seconds since the first byte, bytes so far) every 0.1 s."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.bind, a.port))
    ls.listen(1)
    print("ready", flush=True)
    ls.settimeout(a.wait)
    c, _ = ls.accept()
    c.settimeout(a.wait)
    total, samples, first, last_s = 0, [], None, 0.0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        now = time.monotonic()
        if first is None:
            first = now
        total += len(b)
        if now - first - last_s >= 0.1:
            last_s = now - first
            samples.append((last_s, total))
    end = time.monotonic()
    samples.append((end - (first or end), total))
    print(json.dumps({"bytes": total, "samples": samples}))


def cmd_tcp_send(a):
    """Connects and writes as fast as it can for a.secs seconds."""
    s = socket.create_connection((a.addr, a.port), timeout=a.wait)
    buf = b"\xa5" * (1 << 16)
    end = time.monotonic() + a.secs
    total = 0
    while time.monotonic() < end:
        total += s.send(buf)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(a.wait)
    s.recv(1)
    print(json.dumps({"bytes": total}))


def cmd_udp_sink(a):
    """Counts datagrams until a.idle seconds pass without one: distinct
    numbers (recv), those that came after a higher number (reordered),
    IP bytes and the seconds from the first to the last."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.bind, a.port))
    print("ready", flush=True)
    seen, top, late, nbytes, first, last = set(), -1, 0, 0, None, None
    s.settimeout(a.wait)
    try:
        while True:
            d = s.recv(65535)
            last = time.monotonic()
            first = first or last
            nbytes += len(d) + 28               # + IPv4 and UDP headers
            n = struct.unpack("!I", d[:4])[0]
            seen.add(n)
            if n < top:
                late += 1
            top = max(top, n)
            s.settimeout(a.idle)
    except socket.timeout:
        pass
    print(json.dumps({"recv": len(seen), "reordered": late,
                      "bytes": nbytes,
                      "secs": (last - first) if first else 0.0}))


def cmd_udp_send(a):
    """Sends a.count datagrams numbered from a.base, one every
    a.interval ms."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    nxt = time.monotonic()
    for i in range(a.count):
        s.sendto(struct.pack("!I", a.base + i) + b"u" * a.size,
                 (a.addr, a.port))
        nxt += a.interval / 1000
        time.sleep(max(0.0, nxt - time.monotonic()))
    print(json.dumps({"sent": a.count}))


# name -> (function, positional args, {option: (type, default)})
_TOOLS = {
    "ping": (cmd_ping, ["addr"],
             {"count": (int, 10), "interval": (float, 50),     # ms
              "size": (int, 56), "wait": (float, 2)}),         # s after
    "tcp-sink": (cmd_tcp_sink, ["port"],
                 {"bind": (str, "0.0.0.0"), "wait": (float, 10)}),
    "udp-sink": (cmd_udp_sink, ["port"],
                 {"bind": (str, "0.0.0.0"), "wait": (float, 10),
                  "idle": (float, 1)}),
    "tcp-send": (cmd_tcp_send, ["addr", "port"],
                 {"secs": (float, 3), "wait": (float, 10)}),
    "udp-send": (cmd_udp_send, ["addr", "port"],
                 {"count": (int, 1000), "interval": (float, 1),  # ms
                  "size": (int, 100), "base": (int, 0)}),
}


def main(argv=None):
    ap = argparse.ArgumentParser(description="tools run inside a bed host")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, (fn, pos, opts) in _TOOLS.items():
        p = sub.add_parser(name)
        for arg in pos:
            p.add_argument(arg, type=int if arg == "port" else str)
        for opt, (typ, default) in opts.items():
            p.add_argument("--" + opt, type=typ, default=default)
        p.set_defaults(fn=fn)
    a = ap.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
