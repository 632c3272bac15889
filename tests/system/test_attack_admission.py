"""
test_attack_admission.py -- attacks on what a tracker admits: the memory
its connections' unfinished frames may hold, and its pools of
connections.  Each test mounts the attack against a real tracker from
127.0.0.1 (and 127.0.0.2), measures an honest client while it runs, and
bounds the tracker's memory where that is the point.

Decisions the tests pin down:
  - input is bounded like output: a frame over TS_TRK_IN_FREE_B (16 KiB)
    is read only once the worker's --worker-in-max budget holds all of
    it; the others wait unread until their frame timeout, so many
    connections claiming 4 MiB frames and stalling cost the tracker at
    most the budget per worker (plus 16 KiB per connection);
  - a user's connections are capped tracker-wide (--max-conns-per-user):
    one more that shows the user's token in a big first frame is closed
    before its payload is read;
  - idle connections that are not logged in cannot hold the pool: at
    --max-unauth or --max-unauth-per-addr the oldest such connection is
    closed for the new one, so an honest login, and a logged-in node's
    heartbeat on a new link, still get in.

TESSERA_ATTACK_OLD=1 leaves out the options the old tracker does not
know (to run the attacks against a release that lacks the caps: they
must fail there).  Every wait is bounded; every process is stopped by
pid (conftest).
"""

import contextlib
import os
import ssl
import struct
import threading
import time

import pytest

import tessera
from tessera import OK, pstr
from proto import HDR, MAGIC, MSG, VERSION

OLD = os.environ.get("TESSERA_ATTACK_OLD") == "1"
MIB = 1 << 20
FRAME_MAX = 4 * MIB         # TS_FRAME_MAX_B
IN_FREE = 16 * 1024         # TS_TRK_IN_FREE_B


# ---- helpers -------------------------------------------------------------

def start(tracker_factory, new_opts, *extra, **kw):
    """A tracker with extra options, and new_opts unless testing the old
    release."""
    args = list(extra) + ([] if OLD else list(new_opts))
    return tracker_factory(extra_args=args, **kw)


def tracker_rss_kb(t):
    """VmRSS summed over the tracker's processes (KiB)."""
    return sum(tessera.vm_rss_kb(p) or 0 for p in t.all_pids())


def honest_login(t, user="honest", cert=None, timeout=10, source=None):
    """Logs in on a new link and runs LIST_GROUPS: seconds it took."""
    t0 = time.monotonic()
    with contextlib.closing(tessera.Raw(t.port, timeout=timeout,
                                        cert=cert or tessera.DEFAULT,
                                        source=source)) as r:
        tok = r.login(user, "pw", node="%s:1" % (source or "127.0.0.1"))
        st, msg, _ = r.list_groups(tok)
    assert st == OK, (st, msg)
    return time.monotonic() - t0


def user_token(t, user, cert, group=None):
    """Creates user, logs in over a link showing cert, creates group if
    given: the session token."""
    tessera.new_user(t.port, user)
    with contextlib.closing(tessera.Raw(t.port, cert=cert)) as r:
        tok = r.login(user, "pw")
        if group is not None:
            assert r.request("CREATE_GROUP", tok + pstr(group))[0] == OK
    return tok


def big_upload_start(tok):
    """The bytes of an UPLOAD_FILE frame claiming FRAME_MAX - 64 bytes,
    all but its last KiB (it never completes)."""
    n = (FRAME_MAX - 64 - 200) // 20
    body = (tok + pstr("g") + pstr("f") + struct.pack(">Q", n * 512 * 1024)
            + b"\1" * 20 + struct.pack(">I", n))
    length = FRAME_MAX - 64
    body += b"\2" * (length - len(body))
    hdr = HDR.pack(MAGIC, VERSION, MSG["UPLOAD_FILE"], 0, length, 7)
    return hdr + body[:-1024]


def big_upload(t, tok, cert, group, name, n=20000):
    """UPLOAD_FILE of n chunks (20 n bytes of hashes) on a new link:
    (status, message)."""
    up = (tok + pstr(group) + pstr(name) + struct.pack(">Q", n * 524288)
          + b"\1" * 20 + struct.pack(">I", n) + b"\2" * (20 * n))
    with contextlib.closing(tessera.Raw(t.port, cert=cert)) as r:
        st, msg, _ = r.request("UPLOAD_FILE", up, 30)
    return st, msg


def push(socks, data, seconds):
    """Sends data on every socket (non-blocking) until each has sent it,
    is closed, or nothing moves for a while; returns bytes sent."""
    off = {s: 0 for s in socks}
    live = set(socks)
    for s in socks:
        s.setblocking(False)
    end = time.monotonic() + seconds
    last = time.monotonic()
    sent = 0
    while live and time.monotonic() < end and time.monotonic() - last < 1.0:
        for s in list(live):
            o = off[s]
            try:
                n = s.send(data[o:o + 256 * 1024])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                    BlockingIOError):
                continue
            except OSError:
                live.discard(s)
                continue
            off[s] = o + n
            sent += n
            last = time.monotonic()
            if off[s] >= len(data):
                live.discard(s)
        time.sleep(0.002)
    return sent


def closed_now(s):
    """True if the tracker has closed s (a non-blocking read; for links
    the tracker sends nothing more on)."""
    was = s.gettimeout()
    try:
        s.setblocking(False)
        return s.recv(1) == b""
    except (ssl.SSLWantReadError, BlockingIOError):
        return False
    except OSError:
        return True
    finally:
        try:
            s.settimeout(was)
        except OSError:
            pass


# ---- finding 1: stalled big frames ----------------------------------------

def test_stalled_big_frames_cannot_exhaust_memory(tracker_factory):
    users, per_user, cap_user = 10, 15, 8
    budget = 8 * MIB
    t = start(tracker_factory,
              ["--worker-in-max", str(budget),
               "--max-conns-per-user", str(cap_user)],
              "--frame-timeout", "6000", workers=2)
    cert = tessera.default_node_cert()
    toks = [user_token(t, "m%d" % i, cert, "g" if i == 0 else None)
            for i in range(users)]
    htok = user_token(t, "honest", cert, "hg")
    rss0 = tracker_rss_kb(t)

    # 150 connections, 15 per user, each with one token reused: a 4 MiB
    # UPLOAD_FILE all but its last KiB, then nothing
    socks = []
    t0 = time.monotonic()
    try:
        for i in range(users):
            data = big_upload_start(toks[i])
            mine = [tessera.tls_connect(t.port, 5, cert=cert)
                    for _ in range(per_user)]
            socks += mine
            push(mine, data, 0.3)
        took = honest_login(t)
        rss = tracker_rss_kb(t)
        # an honest big frame (an upload of 20000 chunks, 400 KB of
        # hashes) waits its turn behind the stalled ones and goes through
        t1 = time.monotonic()
        st, msg = big_upload(t, htok, cert, "hg", "during")
        up_took = time.monotonic() - t1
        print("attack: %d connections in %.1f s; tracker RSS %d -> %d KiB; "
              "honest login + command %.2f s; honest 400 KB upload %.2f s"
              % (len(socks), time.monotonic() - t0, rss0, rss, took,
                 up_took))
        assert st == OK, (st, msg)
        # served before the other users' many stalled frames, within
        # about one stall period (TS_TRK_IN_STALL_MS, 2 s)
        assert up_took < 4, up_took
        grew = rss - rss0
        # the budget per worker, 16 KiB (+ TLS) per connection, slack
        bound = (2 * budget + len(socks) * 64 * 1024) // 1024 + 24 * 1024
        if tessera.ASAN:
            bound *= 4
        assert grew < bound, (grew, bound)
        assert took < 5, took
        if not OLD:
            assert "--max-conns-per-user" in t.log(), t.log()[-2000:]
            assert "input budget of this worker used" in t.log()
            # a user's connections beyond the cap were closed at once
            closed = sum(1 for s in socks if closed_now(s))
            assert closed >= users * (per_user - cap_user), closed
    finally:
        for s in socks:
            s.close()
    # once the stalled frames are gone a big frame is read at once
    t1 = time.monotonic()
    assert big_upload(t, htok, cert, "hg", "after")[0] == OK
    assert time.monotonic() - t1 < 3


def test_waiting_frame_keeps_its_clock(tracker_factory):
    """A frame waiting for the input budget still times out: stalled
    frames cannot hold their places, and the budget comes back."""
    if OLD:
        pytest.skip("the old tracker has no such option")
    t = start(tracker_factory, ["--worker-in-max", str(FRAME_MAX + 16)],
              "--frame-timeout", "4000", workers=1)
    cert = tessera.default_node_cert()
    tok = user_token(t, "m", cert, "g")
    data = big_upload_start(tok)
    a = [tessera.tls_connect(t.port, 5, cert=cert) for _ in range(3)]
    t0 = time.monotonic()
    push(a, data, 1.0)
    # one holds the budget, two wait: the holder sends nothing more, so
    # it goes after TS_TRK_IN_STALL_MS (2 s), well before its frame
    # timeout (4 s), and the next one gets the room
    assert tessera.wait_until(lambda: any(closed_now(s) for s in a), 3.5,
                              0.05), t.log()[-2000:]
    took = time.monotonic() - t0
    assert 1.5 < took < 3.5, took
    assert "holds input budget others wait for" in t.log()
    # the others go too, by stalling or by their frame timeout (which
    # ran while they waited)
    assert tessera.wait_until(lambda: all(closed_now(s) for s in a), 6,
                              0.1), t.log()[-2000:]
    for s in a:
        s.close()
    # the budget is free again: a big frame goes through
    assert big_upload(t, tok, cert, "g", "big", 10000)[0] == OK


# ---- finding 4: the pool of connections not logged in ----------------------

def attempt(fn):
    """fn()'s value, or what went wrong (as text)."""
    try:
        return fn()
    except (OSError, ssl.SSLError, AssertionError, EOFError) as e:
        return repr(e)


class Hoarder(threading.Thread):
    """Keeps up to n idle TLS connections open from each source address,
    opening new ones as the tracker closes old ones, until stopped."""

    def __init__(self, port, sources, n):
        threading.Thread.__init__(self, daemon=True)
        self.port, self.sources, self.n = port, sources, n
        self.held = {a: [] for a in sources}
        self.opened = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for a in self.sources:
                self.held[a] = [s for s in self.held[a] if not closed_now(s)]
                while len(self.held[a]) < self.n and not self.stop.is_set():
                    try:
                        s = tessera.tls_connect(self.port, 2, source=a)
                    except (OSError, ssl.SSLError):
                        break
                    self.held[a].append(s)
                    self.opened += 1
            self.stop.wait(0.05)

    def close(self):
        self.stop.set()
        self.join(10)
        for lst in self.held.values():
            for s in lst:
                s.close()


def test_idle_junk_cannot_hold_the_pool(tracker_factory):
    unauth = 40
    t = start(tracker_factory, ["--max-unauth-per-addr", "16"],
              "--max-unauth", str(unauth), workers=2, session_timeout=3000)
    tessera.new_user(t.port, "honest")
    tessera.new_user(t.port, "node")
    node_cert = tessera.node_cert(os.path.join(t.tmpdir, "node"))
    r = tessera.Raw(t.port, cert=node_cert)
    node_tok = r.login("node", "pw")
    r.close()

    def heartbeat():
        """The node's heartbeat on a new link, as after a reconnect."""
        h = tessera.Raw(t.port, timeout=3, cert=node_cert)
        try:
            return h.request("HEARTBEAT", node_tok, 3)[0]
        finally:
            h.close()

    assert heartbeat() == OK
    hoard = Hoarder(t.port, ["127.0.0.1", "127.0.0.2"], 3 * unauth)
    hoard.start()
    try:
        # the pool is full (the old tracker refuses everything from here)
        assert tessera.wait_until(lambda: hoard.opened >= unauth, 10,
                                  0.05), hoard.opened
        logins, beats, same = [], [], []
        end = time.monotonic() + 4.5        # longer than the session
        while time.monotonic() < end:
            beats.append(attempt(heartbeat))
            logins.append(attempt(lambda: honest_login(t, timeout=3,
                                                       source="127.0.0.3")))
            # a login from the flooding address itself: the client
            # retries (it makes 6 attempts); it must get through
            for _ in range(3):
                same.append(attempt(lambda: honest_login(t, timeout=3)))
                if isinstance(same[-1], float):
                    break
            time.sleep(0.2)
        opened = hoard.opened
    finally:
        hoard.close()
    print("junk connections opened: %d; heartbeats %s; logins %s; from "
          "the flooding address %s" % (opened, beats, logins, same))
    assert all(b == OK for b in beats), beats
    assert all(isinstance(x, float) and x < 2 for x in logins), logins
    assert isinstance(same[-1], float), same
    assert sum(1 for x in same if isinstance(x, float)) \
        >= len(same) * 2 // 3, same
    # the junk kept coming: old junk made room for new junk and for us
    assert opened > 2 * unauth, opened
    # the node's session lived through it
    assert heartbeat() == OK
    assert "connection(s) not logged in to make room" in t.log()


def test_per_address_pool_is_below_the_global_one(tracker_factory):
    """One address cannot take the whole pool: its idle connections are
    capped well below --max-unauth, others still get places."""
    if OLD:
        pytest.skip("the old tracker has no such option")
    t = start(tracker_factory, ["--max-unauth-per-addr", "8"],
              "--max-unauth", "40", workers=1)
    tessera.new_user(t.port, "honest")
    held = []
    try:
        for _ in range(30):
            held.append(tessera.tls_connect(t.port, 2, source="127.0.0.2"))
        time.sleep(0.3)
        alive = [s for s in held if not closed_now(s)]
        # the newest 8 stay, the older ones made room for them
        assert len(alive) == 8, len(alive)
        assert all(s in held[-8:] for s in alive)
        # and 127.0.0.1 is not affected
        assert honest_login(t) < 2
    finally:
        for s in held:
            s.close()
    assert "cap per address on connections not logged in" in t.log()


def test_token_reuse_is_capped_per_user(tracker_factory):
    """One user's token on many links: past --max-conns-per-user the
    newest link is closed (a small request is answered first); other
    users are not affected."""
    if OLD:
        pytest.skip("the old tracker has no such option")
    t = start(tracker_factory, ["--max-conns-per-user", "4"], workers=2)
    cert = tessera.default_node_cert()
    tessera.new_user(t.port, "m")
    tessera.new_user(t.port, "honest")
    r0 = tessera.Raw(t.port, cert=cert)
    tok = r0.login("m", "pw")           # link 1 of m
    links = [r0]
    try:
        for i in range(5):
            r = tessera.Raw(t.port, cert=cert)
            st, msg, _ = r.list_groups(tok)
            assert st == OK, (i, st, msg)
            links.append(r)
        # links 1-4 stay, the fifth and sixth were answered, then closed
        for r in links[4:6]:
            assert tessera.wait_until(lambda: closed_now(r.sock), 3)
        assert all(not closed_now(r.sock) for r in links[:4])
        assert links[1].list_groups(tok)[0] == OK
        assert honest_login(t) < 2
        # closing one frees a place
        links[1].close()
        time.sleep(0.2)
        r = tessera.Raw(t.port, cert=cert)
        links.append(r)
        assert r.list_groups(tok)[0] == OK
        time.sleep(0.2)
        assert not closed_now(r.sock)
    finally:
        for r in links:
            r.close()
