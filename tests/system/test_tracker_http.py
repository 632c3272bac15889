"""
test_tracker_http.py -- the tracker's HTTP observability endpoint
(process trk-http): /metrics, /healthz, /api/v1/status, /api/v1/cluster.

Purpose: real trackers, real sockets.  The API key is made at the first
start (mode 0600) and needed for everything but /healthz (401 with a
JSON error otherwise); /metrics is valid Prometheus text (parsed here
with a small regex parser) whose counters move with real requests; a
SIGKILLed trk-http is restarted and serves again; hostile HTTP input
(oversized headers, a slowloris that dribbles its header, connection
floods, other methods, bodies, unknown paths) is refused or cut at its
deadline while the tracker keeps serving its protocol clients; HTTPS on
a non-loopback address with the tracker's certificate; a two-tracker
cluster's /api/v1/cluster shows both, then one down after it is killed.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps them).
"""

import http.client
import json
import os
import re
import socket
import ssl
import stat
import time

from cluster import Cluster
from proto import ERR_AUTH, ERR_EXISTS, OK, Raw, new_user
from tessera import children, free_port, kill_pid, pid_alive, wait_until

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prom(text):
    """{(name, frozenset(labels)): value} and {family: type}; asserts the
    text format's rules that matter here (TYPE before samples, a family's
    samples together, names and units by convention)."""
    samples, types, seen_done = {}, {}, set()
    current = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert name not in types, "family %s twice" % name
            assert typ in ("counter", "gauge", "histogram"), line
            if typ == "counter":
                assert name.endswith("_total"), name
            if current:
                seen_done.add(current)
            current = name
            types[name] = typ
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, "bad sample line %r" % line
        name, labels, value = m.group(1), m.group(3) or "", m.group(4)
        fam = re.sub(r"_(bucket|sum|count)$", "", name) \
            if re.sub(r"_(bucket|sum|count)$", "", name) in types else name
        assert fam in types, "sample %s before its TYPE" % name
        assert fam == current and fam not in seen_done, \
            "samples of %s not together" % fam
        lab = frozenset(LABEL.findall(labels))
        samples[(name, lab)] = float(value)
    return samples, types


def val(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def check_histograms(samples, types):
    for fam, typ in types.items():
        if typ != "histogram":
            continue
        series = {}
        for (name, lab), v in samples.items():
            if name == fam + "_bucket":
                d = dict(lab)
                le = d.pop("le")
                series.setdefault(frozenset(d.items()), []).append(
                    (float("inf") if le == "+Inf" else float(le), v))
        for lab, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            assert counts == sorted(counts), (fam, lab, buckets)
            assert buckets[-1][0] == float("inf")
            assert samples[(fam + "_count", lab)] == counts[-1]


# ---- helpers ----------------------------------------------------------

class Http:
    def __init__(self, port, key=None, ctx=None):
        self.port = port
        self.key = key
        self.ctx = ctx

    def get(self, path, key="default", method="GET", headers=None,
            body=None, timeout=5):
        if self.ctx is not None:
            c = http.client.HTTPSConnection("127.0.0.1", self.port,
                                            timeout=timeout, context=self.ctx)
        else:
            c = http.client.HTTPConnection("127.0.0.1", self.port,
                                           timeout=timeout)
        h = dict(headers or {})
        k = self.key if key == "default" else key
        if k is not None:
            h["X-API-Key"] = k
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            c.close()

    def json(self, path, **kw):
        st, _, body = self.get(path, **kw)
        return st, json.loads(body)

    def metrics(self):
        st, h, body = self.get("/metrics")
        assert st == 200, (st, body)
        assert h["Content-Type"].startswith("text/plain; version=0.0.4")
        return parse_prom(body.decode())


def start_tracker(tracker_factory, extra=(), **kw):
    port = free_port()
    t = tracker_factory(extra_args=["--http", "127.0.0.1:%d" % port] +
                        list(extra), **kw)
    keyf = os.path.join(t.data_dir, "http-api.key")
    with open(keyf) as f:
        key = f.read().strip()
    return t, Http(port, key), keyf


def http_pid(t):
    pids = children(t.proc.pid, "trk-http")
    t.known_workers.update(pids)
    return pids[0] if pids else None


def protocol_ok(port, name):
    """A tracker protocol request (create_user over TLS) answered in
    time: the data plane is not held up."""
    t0 = time.monotonic()
    new_user(port, name)
    return time.monotonic() - t0


# ---- tests ------------------------------------------------------------

def test_key_auth_and_metrics_move_with_requests(tracker_factory):
    t, h, keyf = start_tracker(tracker_factory)
    st = os.stat(keyf)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", h.key)

    # /healthz needs no key; the rest does (401 + JSON error)
    code, body = h.json("/healthz", key=None)
    assert code == 200 and body["live"] and body["ready"], body
    for path in ("/metrics", "/api/v1/status", "/api/v1/cluster"):
        code, hd, raw = h.get(path, key=None)
        assert code == 401, (path, code)
        assert hd["Content-Type"] == "application/json"
        assert "API key" in json.loads(raw)["error"]
        assert h.get(path, key="0" * 64)[0] == 401
        assert h.get(path, key=h.key[:-1])[0] == 401
    assert h.get("/metrics", key=None,
                 headers={"Authorization": "Bearer " + h.key})[0] == 200

    s0, types = h.metrics()
    check_histograms(s0, types)
    # real requests: create_user ok + exists, login ok + bad password
    r = Raw(t.port)
    try:
        assert r.create_user("hu1", "pw")[0] == OK
        assert r.create_user("hu1", "pw")[0] == ERR_EXISTS
        tok = r.login("hu1", "pw")
        assert r.request("LOGIN", b"\x00\x03hu1\x00\x02px\x00\x0b127.0.0.1:1"
                         )[0] == ERR_AUTH
        assert r.request("CREATE_GROUP", tok + b"\x00\x03hg1")[0] == OK
    finally:
        r.close()
    # the counters are in shm; the figures from tdb follow within 1 s
    time.sleep(1.1)
    s1, types = h.metrics()
    check_histograms(s1, types)
    P = "tessera_tracker_"
    rq = P + "requests_total"
    for typ, res, n in (("create_user", "ok", 1), ("create_user", "exists", 1),
                        ("login", "ok", 1), ("login", "auth", 1),
                        ("create_group", "ok", 1)):
        assert val(s1, rq, type=typ, result=res) - \
            val(s0, rq, type=typ, result=res) == n, (typ, res)
    assert types[P + "request_duration_seconds"] == "histogram"
    assert val(s1, P + "request_duration_seconds_count",
               type="create_user") == 2
    assert val(s1, P + "commit_duration_seconds_count") > \
        val(s0, P + "commit_duration_seconds_count")
    assert val(s1, P + "users") == val(s0, P + "users") + 1 == 1
    assert val(s1, P + "groups") == 1
    assert val(s1, P + "sessions") >= 1
    assert val(s1, P + "sessions_live_here") == 1
    assert val(s1, P + "oplog_entries") > val(s0, P + "oplog_entries")
    assert val(s1, P + "workers", state="active") == 2
    assert val(s1, P + "ready") == 1 and val(s1, P + "is_leader") == 1

    code, js = h.json("/api/v1/status")
    assert code == 200
    assert js["users"] == 1 and js["groups"] == 1 and js["tracker_id"] == 1
    assert js["requests_total"] >= 5 and len(js["digest"]) == 64
    assert js["http_pid"] == http_pid(t)

    # unknown paths, other methods, a GET with a body
    code, hd, raw = h.get("/nope")
    assert code == 404 and json.loads(raw)["error"]
    for m in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
        code, hd, _ = h.get("/metrics", method=m, body=b"x" * 10)
        assert code == 405, (m, code)
        assert hd.get("Allow") == "GET"
    assert h.get("/metrics", body=b"abc")[0] == 400
    # the refusals cost nothing else
    assert h.get("/healthz", key=None)[0] == 200


def test_killed_http_process_restarts(tracker_factory):
    t, h, _ = start_tracker(tracker_factory)
    assert wait_until(lambda: http_pid(t) is not None, 5)
    old = http_pid(t)
    workers = sorted(t.worker_pids())
    kill_pid(old, 9)
    assert wait_until(lambda: not pid_alive(old), 5)

    def serving():
        p = http_pid(t)
        if p is None or p == old:
            return False
        try:
            return h.get("/healthz", key=None, timeout=1)[0] == 200
        except OSError:
            return False
    assert wait_until(serving, 10, 0.05), "trk-http not restarted"
    s, _ = h.metrics()
    assert val(s, "tessera_tracker_http_process_starts_total") == 2
    # the request workers were not touched and still serve
    assert sorted(t.worker_pids()) == workers
    assert protocol_ok(t.port, "after_kill") < 5


def _connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    return s


def _closed(s, timeout):
    """True if the server closes s within timeout seconds."""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except socket.timeout:
        return False
    except OSError:
        return True


def test_hostile_http_input(tracker_factory):
    t, h, _ = start_tracker(tracker_factory)
    port = h.port

    # oversized header: refused (431) or cut, nothing else harmed
    s = _connect(port)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
              b"a" * 40000 + b"\r\n\r\n")
    data = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    assert data == b"" or data.split(b" ")[1] in (b"431", b"414", b"400"), \
        data[:80]
    # a huge URI likewise
    code = None
    try:
        code = h.get("/" + "a" * 30000, key=None)[0]
    except (OSError, http.client.HTTPException):
        pass
    assert code in (None, 414, 431, 400)
    # garbage instead of a request line: dropped (at the latest when the
    # request deadline, 5 s, cuts it)
    s = _connect(port)
    s.sendall(b"\x00\x01\x02 garbage \xff\r\n\r\n")
    assert _closed(s, 8)
    s.close()
    assert h.get("/healthz", key=None)[0] == 200

    # slowloris: connections dribbling a header byte every 0.5 s are cut
    # at the request deadline (5 s), whatever MHD's idle timeout says;
    # meanwhile the tracker serves its protocol clients at once
    slow = []
    for _ in range(12):
        s = _connect(port)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
        slow.append(s)
    t0 = time.monotonic()
    lat = [protocol_ok(t.port, "slow%d" % i) for i in range(3)]
    assert max(lat) < 2.0, lat
    cut = set()
    while time.monotonic() - t0 < 9 and len(cut) < len(slow):
        for i, s in enumerate(slow):
            if i in cut:
                continue
            try:
                s.send(b"a")
                s.settimeout(0.01)
                if s.recv(1) == b"":
                    cut.add(i)
            except socket.timeout:
                pass
            except OSError:
                cut.add(i)
        time.sleep(0.5)
    took = time.monotonic() - t0
    print("slowloris: %d of %d connections cut after %.1f s"
          % (len(cut), len(slow), took))
    assert len(cut) == len(slow), "slowloris connections kept open"
    assert took < 8.5, took
    for s in slow:
        s.close()
    assert h.get("/healthz", key=None)[0] == 200

    # a flood of idle connections: over the cap they are closed at once;
    # the tracker is untouched, and once they go HTTP serves again
    flood = [_connect(port) for _ in range(80)]
    closed_now = sum(1 for s in flood[20:] if _closed(s, 0.2))
    print("flood: %d of the last 60 connections closed at once"
          % closed_now)
    assert closed_now >= 40, closed_now
    assert protocol_ok(t.port, "flooded") < 2.0
    for s in flood:
        s.close()
    # the flood's closes may still be draining: a reset meanwhile is a
    # retry, not a failure (bounded by the wait)
    def healthy():
        try:
            return h.get("/healthz", key=None, timeout=1)[0] == 200
        except OSError:
            return False
    assert wait_until(healthy, 10, 0.1)
    s, _ = h.metrics()
    assert val(s, "tessera_tracker_http_deadline_closed_total") >= len(slow)


def test_https_on_non_loopback_address(tracker_factory):
    port = free_port()
    t = tracker_factory(extra_args=["--http", "0.0.0.0:%d" % port])
    with open(os.path.join(t.data_dir, "http-api.key")) as f:
        key = f.read().strip()
    ctx = ssl.create_default_context(cafile=t.ca)
    ctx.check_hostname = False      # the certificate names 127.0.0.1
    h = Http(port, key, ctx)
    code, js = h.json("/api/v1/status")
    assert code == 200 and js["tracker_id"] == 1
    assert h.get("/metrics", key=None)[0] == 401
    # the CA check holds: an unrelated CA is refused
    bad = ssl.create_default_context()
    bad.check_hostname = False
    try:
        Http(port, key, bad).get("/healthz")
        assert False, "served HTTPS to a client that cannot verify it"
    except ssl.SSLError:
        pass
    # plaintext on the HTTPS port gets no answer
    plain = Http(port, key)
    try:
        code = plain.get("/healthz", key=None, timeout=2)[0]
    except (OSError, http.client.HTTPException):
        code = None
    assert code is None


def test_setup_refusals(tracker_factory, tmp_path):
    # --no-http: no process
    t = tracker_factory(extra_args=["--no-http"])
    assert wait_until(lambda: len(t.worker_pids()) == 2, 5)
    assert http_pid(t) is None
    t.stop()
    # an explicit port in use stops the start with a clear message
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    bport = busy.getsockname()[1]
    t2 = tracker_factory(start=False,
                         extra_args=["--http", "127.0.0.1:%d" % bport])
    try:
        t2.start(timeout=5)
        assert False, "started on a busy --http port"
    except AssertionError as e:
        assert "cannot listen on --http" in str(e), str(e)
    # a key file others may read is refused
    t3 = tracker_factory(extra_args=["--http", "127.0.0.1:%d" % free_port()])
    keyf = os.path.join(t3.data_dir, "http-api.key")
    t3.stop()
    os.chmod(keyf, 0o644)
    try:
        t3.start(timeout=5)
        assert False, "started with a world-readable key file"
    except AssertionError as e:
        assert "chmod 600" in str(e), str(e)
    busy.close()


def test_cluster_view_shows_peer_down(tmp_path):
    cl = Cluster(tmp_path, 2)
    hp = {}
    for i in cl.ids():
        hp[i] = free_port()
        cl.t(i).extra_args += ["--http", "127.0.0.1:%d" % hp[i]]
    cl.start()
    with open(os.path.join(cl.t(1).data_dir, "http-api.key")) as f:
        h = Http(hp[1], f.read().strip())
    assert cl.create_user(1, "cl_u")[0] == OK

    def both_agree():
        code, js = h.json("/api/v1/cluster")
        rows = {r["id"]: r for r in js["trackers"]}
        return (code == 200 and set(rows) == {1, 2} and
                rows[2]["reachable"] and rows[2].get("vv_equal") and
                js["digests_agree"] and rows[2]["sync_link"] == "up")
    assert wait_until(both_agree, 15, 0.2), h.json("/api/v1/cluster")
    code, js = h.json("/api/v1/cluster")
    rows = {r["id"]: r for r in js["trackers"]}
    assert rows[2]["users"] == 1 and rows[1]["users"] == 1
    assert rows[2]["lag_ops_behind"] == 0
    assert rows[1]["digest"] == rows[2]["digest"]
    s, _ = h.metrics()
    assert val(s, "tessera_tracker_peer_reachable", peer="2") == 1
    assert val(s, "tessera_tracker_peer_digest_agree", peer="2") == 1
    assert val(s, "tessera_tracker_replication_lag_ops", peer="2",
               direction="behind") == 0

    cl.kill(2)

    def two_down():
        code, js = h.json("/api/v1/cluster")
        rows = {r["id"]: r for r in js["trackers"]}
        return (not rows[2]["reachable"] and rows[2]["sync_link"] == "down"
                and js["trackers_reachable"] == 1)
    assert wait_until(two_down, 15, 0.2), h.json("/api/v1/cluster")
    s, _ = h.metrics()
    assert val(s, "tessera_tracker_peer_reachable", peer="2") == 0
    assert val(s, "tessera_tracker_peer_up", peer="2") == 0
    code, js = h.json("/api/v1/cluster")
    assert "error" in {r["id"]: r for r in js["trackers"]}[2]
    # tracker 1 still serves its clients and reports itself ready
    assert cl.create_user(1, "cl_u2")[0] == OK
    assert h.get("/healthz", key=None)[0] == 200


def test_healthz_not_ready_during_snapshot_catch_up(tmp_path):
    from cluster import assert_writers_ok, stop_writers
    cl = Cluster(tmp_path, 2, extra_args=["--sync-snap-batch", "1"])
    hp = {}
    for i in cl.ids():
        hp[i] = free_port()
        cl.t(i).extra_args += ["--http", "127.0.0.1:%d" % hp[i]]
    cl.start()
    ws = [cl.writer("hz%d-%x" % (k, os.getpid() & 0xffff), order=[1])
          for k in range(3)]
    for w in ws:
        w.start()
    assert wait_until(lambda: sum(len(w.acked_groups) for w in ws) >= 250,
                      60, 0.05)
    stop_writers(ws)
    assert_writers_ok(ws)
    cl.converge(timeout=60)
    cl.kill(2)
    cl.wipe(2)
    cl.restart(2, linked=False)
    h2 = Http(hp[2])
    seen = []

    def catching_up():
        try:
            code, js = h2.json("/healthz", key=None, timeout=1)
        except (OSError, ValueError, http.client.HTTPException):
            return False
        if not js["ready"]:
            seen.append((code, js["reasons"]))
        return code == 503 and any("catch-up in progress" in r
                                   for r in js["reasons"])
    assert wait_until(catching_up, 30, 0.01), seen[-3:]
    print("not ready during catch-up: %s" % (seen[-1],))
    assert wait_until(lambda: h2.json("/healthz", key=None)[0] == 200,
                      60, 0.1), h2.json("/healthz", key=None)
    cl.converge(timeout=60)
