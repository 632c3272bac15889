"""
test_faultproxy.py -- unit tests of tests/tools/faultproxy.py.

Purpose: check each fault mode of the proxy against a real echo server on
127.0.0.1 (real sockets, real timing), the run-time switch between modes,
the bounds, the control port of the standalone program, and that stop()
is bounded.  No locks; every socket has a timeout; every process started
(the standalone proxy) is stopped by pid.
"""

import os
import socket
import sys
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS_SRC = os.path.join(HERE, "..", "tools")
sys.path.insert(0, TOOLS_SRC)
import faultproxy  # noqa: E402
from procs import Proc, free_port  # noqa: E402


class EchoServer:
    """Echoes every byte back; counts accepted connections."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stopping = False
        self.conns = []
        self.threads = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def addr(self):
        return ("127.0.0.1", self.port)

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            self.conns.append(c)
            th = threading.Thread(target=self._echo, args=(c,), daemon=True)
            th.start()
            self.threads.append(th)

    def _echo(self, c):
        c.settimeout(0.2)
        while not self.stopping:
            try:
                d = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not d:
                break
            try:
                c.sendall(d)
            except OSError:
                break
        try:
            c.close()
        except OSError:
            pass

    def stop(self):
        self.stopping = True
        self.t.join(2)
        for th in self.threads:
            th.join(2)
        self.sock.close()


@pytest.fixture
def echo():
    e = EchoServer()
    yield e
    e.stop()


@pytest.fixture
def proxy(echo):
    p = faultproxy.FaultProxy(echo.addr()).start()
    yield p
    p.stop()


def dial(p, timeout=3):
    return socket.create_connection(("127.0.0.1", p.port), timeout=timeout)


def recv_n(s, n, timeout=5):
    s.settimeout(timeout)
    buf = b""
    end = time.monotonic() + timeout
    while len(buf) < n and time.monotonic() < end:
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            d = s.recv(n - len(buf))
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf


def dial_outcome(p):
    """Dials p and waits for the close: 'eof', 'reset' or None."""
    try:
        s = dial(p)
    except ConnectionResetError:
        return "reset"      # the RST raced the end of connect()
    with s:
        return closed_by_peer(s)


def roundtrip(s, data, timeout=5):
    s.sendall(data)
    return recv_n(s, len(data), timeout)


def closed_by_peer(s, timeout=3):
    """'eof', 'reset', or None if still open after timeout."""
    s.settimeout(timeout)
    try:
        d = s.recv(1)
    except ConnectionResetError:
        return "reset"
    except socket.timeout:
        return None
    return "eof" if d == b"" else None


def test_pass_forwards_both_ways_intact(proxy):
    data = os.urandom(1 << 20)
    with dial(proxy) as s:
        # send and read concurrently so neither side's buffer fills
        got = []
        t = threading.Thread(target=lambda: got.append(recv_n(s, len(data),
                                                              10)))
        t.start()
        s.sendall(data)
        t.join(15)
        assert got and got[0] == data
    st = proxy.stats()
    assert st["accepted"] == 1 and st["bytes_ab"] == len(data)


def test_delay_both_directions_then_back_to_pass(proxy):
    with dial(proxy) as s:
        assert roundtrip(s, b"warm") == b"warm"
        proxy.delay(150)
        t0 = time.monotonic()
        assert roundtrip(s, b"slow") == b"slow"
        rtt = time.monotonic() - t0
        assert rtt >= 0.29, rtt            # 150 ms each way
        assert rtt < 2.0, rtt
        proxy.passthrough()
        t0 = time.monotonic()
        assert roundtrip(s, b"fast") == b"fast"
        assert time.monotonic() - t0 < 0.2


def test_delay_keeps_order(proxy):
    proxy.delay(50)
    with dial(proxy) as s:
        for i in range(20):
            s.sendall(b"%03d" % i)
            time.sleep(0.005)
        proxy.passthrough()
        got = recv_n(s, 60)
    assert got == b"".join(b"%03d" % i for i in range(20))


def test_drop_closes_existing_and_new_connections(proxy, echo):
    s = dial(proxy)
    assert roundtrip(s, b"a") == b"a"
    proxy.drop()
    assert closed_by_peer(s) == "eof"
    s.close()
    n = echo.accepted
    assert dial_outcome(proxy) in ("eof", "reset")
    assert echo.accepted == n          # never reached the target
    proxy.passthrough()
    with dial(proxy) as s3:
        assert roundtrip(s3, b"back") == b"back"


def test_reset_sends_rst(proxy):
    s = dial(proxy)
    assert roundtrip(s, b"a") == b"a"
    proxy.reset()
    assert closed_by_peer(s) == "reset"
    s.close()
    assert dial_outcome(proxy) == "reset"
    proxy.passthrough()
    with dial(proxy) as s3:
        assert roundtrip(s3, b"ok") == b"ok"


def test_blackhole_holds_then_heal_resumes_intact(proxy, echo):
    s = dial(proxy)
    assert roundtrip(s, b"before") == b"before"
    proxy.blackhole()
    s.sendall(b"during")
    assert recv_n(s, 6, timeout=0.6) == b""    # nothing comes back
    n = echo.accepted
    s2 = dial(proxy)                            # accepted, kept open
    s2.sendall(b"new")
    assert closed_by_peer(s2, 0.5) is None
    assert echo.accepted == n                   # no upstream connect yet
    proxy.passthrough()
    assert recv_n(s, 6) == b"during"
    assert recv_n(s2, 3) == b"new"
    assert roundtrip(s, b"after") == b"after"
    s.close()
    s2.close()


def test_bandwidth_cap(proxy):
    rate = 100_000
    data = os.urandom(200_000)
    proxy.bandwidth(rate)
    with dial(proxy) as s:
        got = []
        t0 = time.monotonic()
        t = threading.Thread(target=lambda: got.append(recv_n(s, len(data),
                                                              20)))
        t.start()
        s.sendall(data)
        t.join(25)
        took = time.monotonic() - t0
    assert got and got[0] == data
    # both directions capped at 100 kB/s, pipelined: about 2 s
    assert 1.6 <= took <= 8.0, took


def test_kick_closes_but_mode_stays(proxy):
    s = dial(proxy)
    assert roundtrip(s, b"x") == b"x"
    proxy.kick(rst=True)
    assert closed_by_peer(s) == "reset"
    s.close()
    with dial(proxy) as s2:
        assert roundtrip(s2, b"y") == b"y"


def test_upstream_refused_closes_downstream():
    port = free_port()
    p = faultproxy.FaultProxy(("127.0.0.1", port)).start()
    try:
        assert dial_outcome(p) in ("eof", "reset")
        assert p.stats()["upstream_failed"] == 1
    finally:
        p.stop()


def test_connection_limit(echo, monkeypatch):
    monkeypatch.setattr(faultproxy, "MAX_CONNS", 3)
    p = faultproxy.FaultProxy(echo.addr()).start()
    socks = []
    try:
        for _ in range(3):
            socks.append(dial(p))
            assert roundtrip(socks[-1], b"k") == b"k"
        assert dial_outcome(p) in ("eof", "reset")
        assert p.stats()["refused"] == 1
    finally:
        for s in socks:
            s.close()
        p.stop()


def test_rejects_non_loopback_and_bad_modes(echo):
    with pytest.raises(ValueError):
        faultproxy.FaultProxy(("10.0.0.1", 1))
    p = faultproxy.FaultProxy(echo.addr())
    try:
        with pytest.raises(ValueError):
            p.set_mode("flood")
        with pytest.raises(ValueError):
            p.set_mode("delay", -1)
        assert p.command("bandwidth 0").startswith("err")
        assert p.command("nonsense").startswith("err")
    finally:
        p.stop()


def test_stop_is_bounded_and_closes_everything(echo):
    p = faultproxy.FaultProxy(echo.addr()).start()
    s = dial(p)
    assert roundtrip(s, b"z") == b"z"
    p.blackhole()
    t0 = time.monotonic()
    p.stop()
    assert time.monotonic() - t0 < 3
    assert closed_by_peer(s) in ("eof", "reset")
    s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.port), timeout=1).close()


def test_standalone_program_and_control_port(echo, tmp_path):
    prog = os.path.join(TOOLS_SRC, "faultproxy.py")
    fp = Proc(str(tmp_path / "faultproxy.log"))
    proc = fp.spawn(["/usr/bin/python3", prog, "127.0.0.1:%d" % echo.port],
                    str(tmp_path), stdout_pipe=True)
    try:
        import select
        r, _, _ = select.select([proc.stdout], [], [], 10)
        assert r, "no banner"
        words = proc.stdout.readline().decode().split()
        assert words[0] == "faultproxy" and words[1] == "listen", words
        lport = int(words[2].split(":")[1])
        ctl = words[4]
        with socket.create_connection(("127.0.0.1", lport), timeout=3) as s:
            assert roundtrip(s, b"hi") == b"hi"
            assert faultproxy.control(ctl, "delay 120") == "ok"
            assert faultproxy.control(ctl, "mode") == "ok delay 120"
            t0 = time.monotonic()
            assert roundtrip(s, b"hi") == b"hi"
            assert time.monotonic() - t0 >= 0.23
            assert faultproxy.control(ctl, "drop") == "ok"
            assert closed_by_peer(s) == "eof"
        assert faultproxy.control(ctl, "bogus 1").startswith("err")
        assert "accepted=1" in faultproxy.control(ctl, "stats")
        assert faultproxy.control(ctl, "quit") == "ok bye"
        assert proc.wait(10) == 0, fp.log()
    finally:
        fp.reap()
