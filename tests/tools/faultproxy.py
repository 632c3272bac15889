#!/usr/bin/python3
"""
faultproxy.py -- a userspace TCP fault proxy for 127.0.0.1 links (tests).

Purpose: sit between two processes on loopback (here: the sync process of
one tracker and the tracker it dials) and inject faults that can be
switched at run time:

  pass             forward both directions as they come
  delay MS         hold every chunk MS milliseconds, both directions
                   (order kept; what was queued keeps its own deadline)
  drop             close every open connection (FIN) and close each new
                   one right after accept, until the mode changes
  reset            the same with RST (SO_LINGER 0) instead of FIN
  blackhole        accept new connections and keep every socket open, but
                   read, write and connect nothing: bytes already queued
                   stay queued, so a heal resumes each stream intact (a
                   partition that TCP would survive); new connections get
                   their upstream connection only after the heal
  bandwidth BPS    cap each direction of the whole proxy to BPS bytes/s
                   (token bucket, 100 ms burst)

One-shot actions, whatever the mode: kick (close every open connection
with FIN) and kick-rst (with RST).

Use it either imported (python API: FaultProxy(target).start(),
.set_mode("delay", 50), .kick(), .stats(), .stop()) or as a program:

  faultproxy.py [--listen 127.0.0.1:PORT] [--control 127.0.0.1:PORT]
                [--mode MODE [ARG]] TARGET_IP:PORT

which prints one line "faultproxy listen IP:PORT control IP:PORT" on
stdout, then serves until SIGTERM, SIGINT or a "quit" on the control
port.  The control port takes one command per line ("pass", "delay 50",
"drop", "reset", "blackhole", "bandwidth 65536", "kick", "kick-rst",
"mode", "stats", "quit") and answers one line, "ok ..." or "err ...".

Bounds: at most MAX_CONNS proxied connections (more are closed at
accept), at most MAX_QUEUE bytes queued per direction of a connection
(the proxy stops reading that side until it drains, so TCP flow control
pushes back), a CONNECT_TIMEOUT for each upstream connect, control lines
of at most 256 bytes with a 10 s read deadline, one control connection
at a time.  Only 127.0.0.0/8 addresses are accepted.

Locking: one event-loop thread owns every proxied socket; the API hands
it mode changes through a lock-protected field and a wakeup socketpair,
and waits (bounded) until the loop has applied them, so when set_mode()
returns the faults are in force.  The control port has its own thread.

Crash behaviour: nothing is persistent.  If the process dies, the kernel
closes every socket, which the two ends see as a dropped link.  stop()
closes everything and joins the threads within a bounded time.
"""

import argparse
import collections
import errno
import select
import signal
import socket
import struct
import sys
import threading
import time

MODES = ("pass", "delay", "drop", "reset", "blackhole", "bandwidth")
MAX_CONNS = 64
MAX_QUEUE = 4 << 20
READ_SIZE = 64 << 10
CONNECT_TIMEOUT = 5.0
CTL_LINE_MAX = 256
CTL_TIMEOUT = 10.0
APPLY_TIMEOUT = 5.0


def parse_addr(text):
    """'IP:PORT' -> (ip, port); only 127.0.0.0/8."""
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError("address %r is not IP:PORT" % text)
    port = int(port)
    if not 0 <= port <= 65535:
        raise ValueError("bad port in %r" % text)
    if not host.startswith("127."):
        raise ValueError("only 127.0.0.0/8 addresses: %r" % text)
    socket.inet_aton(host)
    return host, port


def _check_mode(mode, arg):
    if mode not in MODES:
        raise ValueError("unknown mode %r" % (mode,))
    if mode == "delay":
        arg = float(arg)
        if not 0 <= arg <= 600000:
            raise ValueError("delay out of range")
    elif mode == "bandwidth":
        arg = float(arg)
        if not 1 <= arg <= 1e10:
            raise ValueError("bandwidth out of range")
    else:
        arg = None
    return mode, arg


class _Dir:
    """One direction of a proxied connection: src -> dst."""

    __slots__ = ("q", "qbytes", "eof", "shut", "sent")

    def __init__(self):
        self.q = collections.deque()    # [due, bytes]
        self.qbytes = 0
        self.eof = False                # src reached EOF
        self.shut = False               # dst got SHUT_WR
        self.sent = 0


class _Conn:
    __slots__ = ("down", "up", "state", "t0", "ab", "ba", "dead")

    def __init__(self, down):
        self.down = down                # accepted from the dialer
        self.up = None                  # to the target
        self.state = "held"             # held, connecting, open
        self.t0 = 0.0
        self.ab = _Dir()                # down -> up
        self.ba = _Dir()                # up -> down
        self.dead = False


def _close(sock, rst=False):
    if sock is None:
        return
    if rst:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
    try:
        sock.close()
    except OSError:
        pass


class FaultProxy:
    """A TCP proxy from a listen address to target, with run-time faults."""

    def __init__(self, target, listen=("127.0.0.1", 0), mode="pass",
                 arg=None, control=None):
        if isinstance(target, str):
            target = parse_addr(target)
        if isinstance(listen, str):
            listen = parse_addr(listen)
        if isinstance(control, str):
            control = parse_addr(control)
        for a in [target, listen] + ([control] if control else []):
            if not a[0].startswith("127."):
                raise ValueError("only 127.0.0.0/8 addresses")
        self.target = tuple(target)
        self.mode, self.arg = _check_mode(mode, arg)
        self._lock = threading.Lock()
        self._pending = []              # [(kind, a, b, event)]
        self._conns = []
        self._stopping = False
        self._thread = None
        self._ctl_thread = None
        self._tokens = {"ab": 0.0, "ba": 0.0}
        self._tlast = time.monotonic()
        self.counters = {"accepted": 0, "refused": 0, "upstream_failed": 0,
                         "bytes_ab": 0, "bytes_ba": 0, "closed": 0}
        self._lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._lsock.bind(tuple(listen))
        self._lsock.listen(128)
        self._lsock.setblocking(False)
        self.listen_addr = self._lsock.getsockname()
        self.port = self.listen_addr[1]
        self._wr, self._ww = socket.socketpair()
        self._wr.setblocking(False)
        self._ww.setblocking(False)
        self._csock = None
        self.control_addr = None
        self.on_quit = None             # called on a control "quit"
        if control is not None:
            self._csock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._csock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._csock.bind(tuple(control))
            self._csock.listen(4)
            self._csock.settimeout(0.2)
            self.control_addr = self._csock.getsockname()

    # ---- public API ----------------------------------------------------

    def addr(self):
        return "%s:%d" % self.listen_addr

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="faultproxy-%d" % self.port)
        self._thread.start()
        if self._csock is not None:
            self._ctl_thread = threading.Thread(target=self._ctl_loop,
                                                daemon=True)
            self._ctl_thread.start()
        return self

    def set_mode(self, mode, arg=None):
        """Switches mode; returns once the loop applied it (bounded)."""
        mode, arg = _check_mode(mode, arg)
        self._submit("mode", mode, arg)
        return self

    # short names
    def passthrough(self):
        return self.set_mode("pass")

    def delay(self, ms):
        return self.set_mode("delay", ms)

    def drop(self):
        return self.set_mode("drop")

    def reset(self):
        return self.set_mode("reset")

    def blackhole(self):
        return self.set_mode("blackhole")

    def bandwidth(self, bps):
        return self.set_mode("bandwidth", bps)

    def kick(self, rst=False):
        """Closes every open connection now (FIN, or RST if rst)."""
        self._submit("kick", rst, None)
        return self

    def stats(self):
        with self._lock:
            d = dict(self.counters)
            d["open"] = len(self._conns)
            d["mode"] = self.mode
            d["arg"] = self.arg
        return d

    def stop(self, timeout=5.0):
        """Closes every socket, joins the threads (bounded)."""
        with self._lock:
            self._stopping = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._ctl_thread is not None:
            self._ctl_thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._close_all()
        _close(self._csock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ---- internals -----------------------------------------------------

    def _wake(self):
        try:
            self._ww.send(b"x")
        except OSError:
            pass        # full pipe: the loop is awake anyway

    def _submit(self, kind, a, b):
        if self._thread is None or not self._thread.is_alive():
            # not started (or stopped): apply directly, no sockets to touch
            if kind == "mode":
                with self._lock:
                    self.mode, self.arg = a, b
            return
        ev = threading.Event()
        with self._lock:
            self._pending.append((kind, a, b, ev))
        self._wake()
        if not ev.wait(APPLY_TIMEOUT):
            raise RuntimeError("faultproxy loop did not apply %s" % kind)

    def _apply_pending(self, now):
        with self._lock:
            todo, self._pending = self._pending, []
        for kind, a, b, ev in todo:
            if kind == "mode":
                old = self.mode
                with self._lock:
                    self.mode, self.arg = a, b
                if a in ("drop", "reset"):
                    for c in self._conns:
                        self._kill_conn(c, a == "reset")
                if a == "bandwidth" and old != "bandwidth":
                    self._tokens = {"ab": 0.0, "ba": 0.0}
                    self._tlast = now
            elif kind == "kick":
                for c in self._conns:
                    self._kill_conn(c, a)
            ev.set()

    def _kill_conn(self, c, rst):
        if c.dead:
            return
        c.dead = True
        with self._lock:
            self.counters["closed"] += 1
        _close(c.down, rst)
        _close(c.up, rst)

    def _start_upstream(self, c, now):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(self.target)
        if err not in (0, errno.EINPROGRESS):
            _close(s)
            with self._lock:
                self.counters["upstream_failed"] += 1
            self._kill_conn(c, True)
            return
        c.up = s
        c.state = "connecting"
        c.t0 = now

    def _accept(self, now):
        for _ in range(64):
            try:
                s, _peer = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            s.setblocking(False)
            mode = self.mode
            if mode in ("drop", "reset") or len(self._conns) >= MAX_CONNS:
                with self._lock:
                    self.counters["refused"] += 1
                _close(s, mode == "reset")
                continue
            c = _Conn(s)
            with self._lock:
                self.counters["accepted"] += 1
                self._conns.append(c)
            if mode != "blackhole":
                self._start_upstream(c, now)

    def _refill(self, now):
        if self.mode != "bandwidth":
            return
        rate = self.arg
        burst = max(rate / 10.0, 1.0)
        dt = max(0.0, now - self._tlast)
        self._tlast = now
        for k in self._tokens:
            self._tokens[k] = min(burst, self._tokens[k] + rate * dt)

    def _flush(self, c, d, key, dst, now):
        """Writes what is due from d to dst; returns the next wake time."""
        wake = None
        while d.q:
            due, data = d.q[0]
            if due > now:
                return due
            n = len(data)
            if self.mode == "bandwidth":
                t = int(self._tokens[key])
                if t <= 0:
                    return now + (1.0 - self._tokens[key]) / self.arg
                n = min(n, t)
            try:
                sent = dst.send(data[:n])
            except (BlockingIOError, InterruptedError):
                return wake
            except OSError:
                self._kill_conn(c, True)
                return None
            if self.mode == "bandwidth":
                self._tokens[key] -= sent
            d.sent += sent
            d.qbytes -= sent
            with self._lock:
                self.counters["bytes_" + key] += sent
            if sent < len(data):
                d.q[0][1] = data[sent:]
                if sent < n:
                    return wake     # socket buffer full
            else:
                d.q.popleft()
        if d.eof and not d.shut:
            d.shut = True
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        return wake

    def _read(self, c, d, src, now):
        try:
            data = src.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            # the peer reset: pass the reset on
            self._kill_conn(c, True)
            return
        if not data:
            d.eof = True
            return
        due = now + (self.arg / 1000.0 if self.mode == "delay" else 0.0)
        d.q.append([due, data])
        d.qbytes += len(data)

    def _close_all(self):
        """Closes every link, the listener and the wake pipe."""
        for c in self._conns:
            self._kill_conn(c, False)
        self._conns = []
        _close(self._lsock)
        _close(self._wr)
        _close(self._ww)

    def _loop(self):
        try:
            self._run()
        finally:
            self._close_all()

    def _run(self):
        R, W = select.POLLIN, select.POLLOUT
        ERR = select.POLLERR | select.POLLHUP | select.POLLNVAL
        while True:
            now = time.monotonic()
            with self._lock:
                if self._stopping:
                    return
            self._apply_pending(now)
            self._refill(now)
            mode = self.mode
            frozen = mode == "blackhole"
            wake = now + 1.0
            p = select.poll()
            p.register(self._wr, R)
            p.register(self._lsock, R)
            fdmap = {}
            for c in self._conns:
                if c.dead:
                    continue
                if c.state == "held":
                    if not frozen:
                        self._start_upstream(c, now)
                    if c.dead or c.state == "held":
                        continue
                if c.state == "connecting":
                    if frozen:
                        c.t0 = now      # the deadline runs only when live
                        continue
                    if now - c.t0 > CONNECT_TIMEOUT:
                        with self._lock:
                            self.counters["upstream_failed"] += 1
                        self._kill_conn(c, True)
                        continue
                    p.register(c.up, W)
                    fdmap[c.up.fileno()] = (c, "up")
                    wake = min(wake, c.t0 + CONNECT_TIMEOUT)
                    continue
                if not frozen:
                    for d, key, dst in ((c.ab, "ab", c.up),
                                        (c.ba, "ba", c.down)):
                        w = self._flush(c, d, key, dst, now)
                        if w is not None:
                            wake = min(wake, w)
                        if c.dead:
                            break
                    if c.dead:
                        continue
                    if c.ab.eof and c.ba.eof and not c.ab.q and not c.ba.q:
                        self._kill_conn(c, False)
                        continue
                ev_down = ev_up = 0
                if not frozen:
                    if not c.ab.eof and c.ab.qbytes < MAX_QUEUE:
                        ev_down |= R
                    if not c.ba.eof and c.ba.qbytes < MAX_QUEUE:
                        ev_up |= R
                    if c.ba.q and c.ba.q[0][0] <= now and \
                            (mode != "bandwidth" or self._tokens["ba"] >= 1):
                        ev_down |= W
                    if c.ab.q and c.ab.q[0][0] <= now and \
                            (mode != "bandwidth" or self._tokens["ab"] >= 1):
                        ev_up |= W
                if ev_down:
                    p.register(c.down, ev_down)
                    fdmap[c.down.fileno()] = (c, "down")
                if ev_up:
                    p.register(c.up, ev_up)
                    fdmap[c.up.fileno()] = (c, "up")
            self._conns = [c for c in self._conns if not c.dead]
            timeout = max(0.0, wake - time.monotonic())
            try:
                events = p.poll(timeout * 1000.0)
            except InterruptedError:
                continue
            now = time.monotonic()
            for fd, ev in events:
                if fd == self._wr.fileno():
                    try:
                        while self._wr.recv(4096):
                            pass
                    except OSError:
                        pass
                    continue
                if fd == self._lsock.fileno():
                    self._accept(now)
                    continue
                ent = fdmap.get(fd)
                if ent is None:
                    continue
                c, side = ent
                if c.dead:
                    continue
                if side == "up" and c.state == "connecting":
                    err = c.up.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err or ev & (select.POLLERR | select.POLLNVAL):
                        with self._lock:
                            self.counters["upstream_failed"] += 1
                        self._kill_conn(c, True)
                    else:
                        c.state = "open"
                    continue
                if ev & R or ev & ERR:
                    if side == "down":
                        self._read(c, c.ab, c.down, now)
                    else:
                        self._read(c, c.ba, c.up, now)
                # writes happen in the next pass through _flush

    # ---- control port --------------------------------------------------

    def command(self, line):
        """Runs one control command; returns the reply line."""
        words = line.split()
        if not words:
            return "err empty command"
        cmd, args = words[0].lower(), words[1:]
        try:
            if cmd in ("pass", "drop", "reset", "blackhole") and not args:
                self.set_mode(cmd)
            elif cmd in ("delay", "bandwidth") and len(args) == 1:
                self.set_mode(cmd, args[0])
            elif cmd == "kick" and not args:
                self.kick(False)
            elif cmd == "kick-rst" and not args:
                self.kick(True)
            elif cmd == "mode" and not args:
                s = self.stats()
                return "ok %s%s" % (s["mode"], "" if s["arg"] is None
                                    else " %g" % s["arg"])
            elif cmd == "stats" and not args:
                s = self.stats()
                return "ok " + " ".join("%s=%s" % (k, s[k])
                                        for k in sorted(s))
            elif cmd == "quit" and not args:
                return "ok bye"
            else:
                return "err unknown command"
        except (ValueError, RuntimeError) as e:
            return "err %s" % e
        return "ok"

    def _ctl_loop(self):
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                s, _ = self._csock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._ctl_conn(s)
            finally:
                _close(s)

    def _ctl_conn(self, s):
        s.settimeout(CTL_TIMEOUT)
        buf = b""
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                data = s.recv(512)
            except (socket.timeout, OSError):
                return
            if not data:
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("ascii", "replace").strip()
                reply = self.command(text)
                try:
                    s.sendall((reply + "\n").encode())
                except OSError:
                    return
                if text.lower() == "quit":
                    if self.on_quit is not None:
                        self.on_quit()
                    return
            if len(buf) > CTL_LINE_MAX:
                try:
                    s.sendall(b"err line too long\n")
                except OSError:
                    pass
                return


def control(addr, line, timeout=5.0):
    """Sends one control line to a proxy's control port; returns the reply."""
    if isinstance(addr, str):
        addr = parse_addr(addr)
    with socket.create_connection(tuple(addr), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        buf = b""
        while b"\n" not in buf and len(buf) < 4096:
            d = s.recv(4096)
            if not d:
                break
            buf += d
    return buf.decode("ascii", "replace").strip()


def main(argv=None):
    ap = argparse.ArgumentParser(description="TCP fault proxy (loopback)")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--control", default="127.0.0.1:0")
    ap.add_argument("--mode", nargs="+", default=["pass"],
                    metavar="MODE [ARG]")
    ap.add_argument("target", help="IP:PORT to forward to")
    a = ap.parse_args(argv)
    try:
        mode = a.mode[0]
        arg = a.mode[1] if len(a.mode) > 1 else None
        px = FaultProxy(a.target, listen=a.listen, control=a.control,
                        mode=mode, arg=arg)
    except (ValueError, OSError) as e:
        print("faultproxy: %s" % e, file=sys.stderr)
        return 2
    done = threading.Event()
    px.on_quit = done.set
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    px.start()
    print("faultproxy listen %s:%d control %s:%d"
          % (px.listen_addr + px.control_addr), flush=True)
    while not done.wait(0.5):
        if not px._thread.is_alive():
            break
    px.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
