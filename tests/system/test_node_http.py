"""
test_node_http.py -- a node's HTTP endpoint (process node-http): the API
key, /healthz, /metrics, the JSON API and its actions, restarts, hostile
input.

Purpose: real tracker and client processes on 127.0.0.1.  The key file
is made at the first start (0600) and needed for all but /healthz; a
real download from two seeders is then checked three ways: /metrics
(parsed by python3-prometheus-client's text parser) counts exactly the
file's bytes and chunks summed over the peers, on the leecher (down) and
on the seeders (up); /api/v1/downloads and the chunk map agree with
download_info's per-peer chunk counts; POST pause / resume / cancel act
on a download held mid-way (its downloaders SIGSTOPped) and bad bodies
get 400, 413, 415; a SIGKILLed node-http is forked again and serves;
oversized headers, a slowloris, a huge body and path traversal are
refused while the node goes on serving its peers.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps them).
"""

import http.client
import json
import os
import re
import socket
import stat
import time

from prometheus_client.parser import text_string_to_metric_families

import nodes
from nodes import Swarm, create_users, make_file, nchunks, sha1_file
from node_shm import DL_ACTIVE, DL_PAUSED
from procs import free_port, kill_pid, pid_alive, wait_until

G = "g"
MiB = 1024 * 1024
SRC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def http_node(sw, user, **kw):
    """A node of the swarm with its HTTP endpoint on a free port."""
    port = free_port()
    n = sw.node(user, extra=["--http", "127.0.0.1:%d" % port], **kw)
    n.http_port = port
    key = os.path.join(n.state_dir, "http-api.key")
    assert wait_until(lambda: os.path.exists(key), 5), n.stderr()[-2000:]
    with open(key) as f:
        n.key = f.read().strip()
    assert wait_until(lambda: port_open(port), 5), n.stderr()[-2000:]
    return n


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def req(node, method, path, body=None, key=True, headers=None):
    """(status, headers, parsed JSON or text) of one request."""
    c = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
    h = dict(headers or {})
    if key:
        h["X-API-Key"] = node.key
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read().decode()
        ct = r.getheader("Content-Type", "")
        return (r.status, r, json.loads(data) if ct.startswith(
            "application/json") else data)
    finally:
        c.close()


def get(node, path):
    st, _, o = req(node, "GET", path)
    assert st == 200, (path, st, o)
    return o


def metrics(node):
    """{(name, frozenset(labels)): value} via prometheus_client."""
    st, r, text = req(node, "GET", "/metrics")
    assert st == 200 and r.getheader("Content-Type").startswith(
        "text/plain; version=0.0.4"), (st, text[:300])
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def summed(m, metric, **want):
    return sum(v for (n, lab), v in m.items() if n == metric and
               all((k, x) in lab for k, x in want.items()))


def peer_chunks(lines):
    """{addr: chunks} from download_info's peer lines."""
    res = {}
    for l in lines:
        m = re.match(r"^  peer (\S+) fp [0-9a-f]{16} (\w+)(?: complete)? "
                     r"chunks (\d+) ", l)
        if m:
            res[m.group(1)] = int(m.group(3))
    return res


def seed(node, tmp_path, name, size, seed_):
    """nodes.seed in group G: the file's SHA1."""
    return nodes.seed(node, tmp_path, name, size, seed_, G)[1]


def test_key_health_and_node(tracker, tmp_path):
    """The key file is 0600 and 64 hex digits; /healthz needs none; every
    API path answers 401 without it or with a wrong one; /api/v1/node
    tells who and where the node is."""
    create_users(tracker.info, tmp_path, "a")
    sw = Swarm(tracker, tmp_path)
    a = http_node(sw, "a")
    kp = os.path.join(a.state_dir, "http-api.key")
    assert stat.S_IMODE(os.stat(kp).st_mode) == 0o600
    assert re.match(r"^[0-9a-f]{64}$", a.key), a.key
    st, _, o = req(a, "GET", "/healthz", key=False)
    assert st == 200 and o["status"] == "ok" and o["ready"], o
    for p in ("/metrics", "/api/v1/node", "/api/v1/downloads",
              "/api/v1/shares", "/api/v1/uploads",
              "/api/v1/downloads/g/x/chunks"):
        st, _, o = req(a, "GET", p, key=False)
        assert st == 401 and "API key" in o["error"], (p, st, o)
        st, _, o = req(a, "GET", p, key=False,
                       headers={"X-API-Key": "0" * 64})
        assert st == 401, (p, st, o)
    st, _, o = req(a, "POST", "/api/v1/downloads/g/x/pause", key=False,
                   body={})
    assert st == 401, (st, o)
    o = get(a, "/api/v1/node")
    assert o["kind"] == "node" and o["addr"] == a.addr, o
    assert o["user"] == "a" and o["state_dir"] == a.state_dir, o
    assert pid_alive(o["pid"]) and o["uptime_s"] >= 0, o
    assert o["up_cap_Bps"] == 0 and o["down_cap_Bps"] == 0, o


ENDGAME_CHUNKS = 16     # TS_DL_ENDGAME_N: chunks asked of a second peer
CHUNK = 512 * 1024


def test_two_sources_metrics_api_and_map(tracker, tmp_path):
    """A download served by two seeders: the leecher's down counters sum
    to exactly the file, the seeders' up counters to the file plus at
    most the endgame's second copies (the last chunks are asked of two
    peers, the loser's reply cancelled: its bytes left the seeder); the
    API's sources and chunk map agree with download_info."""
    create_users(tracker.info, tmp_path, "a", "b", "c")
    sw = Swarm(tracker, tmp_path)
    sa, sb = http_node(sw, "a"), http_node(sw, "b")
    leech = http_node(sw, "c")
    size = 24 * MiB + 12345
    n = nchunks(size)
    want = seed(sa, tmp_path, "f.bin", size, 7)
    assert seed(sb, tmp_path, "f.bin", size, 7) == want
    dest = str(tmp_path / "f.out")
    leech.download(G, "f.bin", dest)
    line = leech.wait_download(G, "f.bin", timeout=60)
    assert line.startswith("[C]") and sha1_file(dest) == want, line

    m = metrics(leech)
    # every byte of the file, plus what an endgame or block copy fetched
    # twice (whole blocks; the same bound as the seeders' side below)
    down = summed(m, "tessera_node_bytes_total", direction="down")
    assert size <= down <= size + ENDGAME_CHUNKS * CHUNK, (down, size)
    assert summed(m, "tessera_node_chunks_total", direction="down") == n
    peers = {dict(lab)["peer"]: v for (nm, lab), v in m.items()
             if nm == "tessera_node_chunks_total"
             and ("direction", "down") in lab}
    assert set(peers) == {sa.addr, sb.addr}, peers
    up = [summed(metrics(s), "tessera_node_bytes_total", direction="up")
          for s in (sa, sb)]
    assert size <= sum(up) <= size + ENDGAME_CHUNKS * CHUNK \
        and min(up) > 0, up
    assert summed(m, "tessera_node_download_bytes", name="f.bin") == size
    assert summed(m, "tessera_node_download_size_bytes", name="f.bin") == size
    assert summed(m, "tessera_node_hash_failures_total") == 0
    assert summed(m, "tessera_node_tls_handshakes_total", direction="out",
                  result="ok") >= 2
    for role in ("uploader", "downloader", "agent", "node-http"):
        assert (("tessera_node_worker_restarts_total",
                 frozenset({("role", role)})) in m), role

    dls = get(leech, "/api/v1/downloads")["downloads"]
    assert len(dls) == 1, dls
    d = dls[0]
    assert d["id"] == "g/f.bin" and d["state"] == "done", d
    assert d["size"] == d["bytes"] == size and d["pct"] == 100, d
    assert d["nchunks"] == d["chunks_done"] == n and d["dest"] == dest, d
    info = peer_chunks(leech.cmd("download_info %s f.bin" % G))
    api = {s["addr"]: s["chunks"] for s in d["sources"]}
    assert api == info and sum(api.values()) == n, (api, info)
    for s in d["sources"]:
        assert re.match(r"^[0-9a-f]{16}$", s["fp"]), s
        assert s["state"] == "serving" and s["inflight"] == 0, s
    assert sum(s["bytes"] for s in d["sources"]) == size, d["sources"]

    cm = get(leech, "/api/v1/downloads/g/f.bin/chunks")
    assert cm["nchunks"] == n and len(cm["map"]) == n, cm
    per = {}
    for ch in cm["map"]:
        assert ch in SRC, cm["map"]
        addr = cm["sources"][SRC.index(ch)]
        per[addr] = per.get(addr, 0) + 1
    assert per == info, (per, info)
    # the id's parts may come percent-escaped
    assert get(leech, "/api/v1/downloads/%67/f%2Ebin/chunks") == cm
    st, _, o = req(leech, "GET", "/api/v1/downloads/g/nope/chunks")
    assert st == 404, (st, o)

    sh = get(sa, "/api/v1/shares")["shares"]
    assert [(x["group"], x["name"], x["size"]) for x in sh] == \
        [(G, "f.bin", size)], sh
    ups = get(sa, "/api/v1/uploads")["peers"]
    assert [u["addr"] for u in ups] == ["127.0.0.1"], ups
    assert ups[0]["bytes"] == up[0] and ups[0]["chunks"] == \
        sh[0]["chunks_up"], (ups, sh)


def test_actions_and_bad_bodies(tracker, tmp_path):
    """POST pause / resume / cancel on a download held mid-way, a new
    download by POST; bad bodies get 400, 413, 415, wrong methods 405."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder, leech = sw.node("a"), http_node(sw, "b")
    size = 32 * MiB
    seed(seeder, tmp_path, "f.bin", size, 3)
    dest = str(tmp_path / "f.out")
    frozen = leech.freeze_downloaders()
    leech.download(G, "f.bin", dest)
    leech.run_until_mid(G, "f.bin", frozen, 2 * MiB)

    base = "/api/v1/downloads/g/f.bin/"
    st, _, o = req(leech, "POST", base + "pause", body={})
    assert st == 200 and o["ok"] and o["exit"] == 0, o
    assert o["lines"] == ["paused f.bin from g"], o
    leech.thaw(frozen)
    assert wait_until(lambda: leech.shm_download(G, "f.bin")["state"]
                      == DL_PAUSED, 5)
    assert get(leech, "/api/v1/downloads")["downloads"][0]["state"] \
        == "paused"
    assert leech.dl_line(G, "f.bin").endswith(" paused"), \
        leech.dl_line(G, "f.bin")
    # resumed with its downloaders held, so it is still mid-way to cancel
    frozen = leech.freeze_downloaders()
    st, _, o = req(leech, "POST", base + "resume", body={})
    assert st == 200 and o["ok"], o
    assert wait_until(lambda: leech.shm_download(G, "f.bin")["state"]
                      == DL_ACTIVE, 5)
    st, _, o = req(leech, "POST", base + "cancel", body={})
    assert st == 200 and o["ok"], o
    leech.thaw(frozen)
    assert get(leech, "/api/v1/downloads")["downloads"] == []
    assert not os.path.exists(dest + ".part")
    st, _, o = req(leech, "POST", base + "retry", body={})
    assert st == 200 and not o["ok"] and o["exit"] != 0 and o["error"], o

    # bad input: type, JSON, shape, size, method, action
    for body, hdr, code in (
            ("{}", {"Content-Type": "text/plain"}, 415),
            ("{}", {}, 415),
            ("{not json", {"Content-Type": "application/json"}, 400),
            ("[1]", {"Content-Type": "application/json"}, 400),
            ('{"a":1,"a":2}', {"Content-Type": "application/json"}, 400),
            ("x" * 5000, {"Content-Type": "application/json"}, 413)):
        st, _, o = req(leech, "POST", base + "pause", body=body,
                       headers=hdr)
        assert st == code and o["status"] == code, (body[:20], st, o)
    st, _, o = req(leech, "POST", base + "pause", body={"x": 1})
    assert st == 400, o
    st, _, o = req(leech, "POST", base + "explode", body={})
    assert st == 404, o
    st, _, o = req(leech, "POST", "/api/v1/downloads",
                   body={"group": G, "name": "f.bin", "dest": "rel"})
    assert st == 400 and "absolute" in o["error"], o
    st, _, o = req(leech, "POST", "/api/v1/downloads",
                   body={"group": G, "name": 5, "dest": dest})
    assert st == 400, o
    st, r, o = req(leech, "POST", "/api/v1/node", body={})
    assert st == 405 and r.getheader("Allow") == "GET", (st, o)
    st, r, o = req(leech, "GET", base + "pause")
    assert st == 404, (st, o)
    st, r, o = req(leech, "PUT", "/api/v1/downloads", body={})
    assert st == 405, (st, o)
    # a chunked body over the cap: dropped as it streams, then 413
    s = socket.create_connection(("127.0.0.1", leech.http_port), 5)
    s.sendall(("POST %spause HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n"
               "Content-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n" % (base, leech.key))
              .encode())
    for _ in range(3):
        s.sendall(b"800\r\n" + b" " * 0x800 + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    s.settimeout(5)
    got = s.recv(4096).decode()
    s.close()
    assert got.startswith("HTTP/1.1 413"), got[:200]

    # the download again, by POST: it completes
    st, _, o = req(leech, "POST", "/api/v1/downloads",
                   body={"group": G, "name": "f.bin", "dest": dest})
    assert st == 200 and o["ok"], o
    line = leech.wait_download(G, "f.bin", timeout=60)
    assert line.startswith("[C]"), line


def test_restart_and_hostile_input(tracker, tmp_path):
    """kill -9 of node-http: forked again, serving with the same key;
    oversized headers, a slowloris and path traversal are refused; the
    node goes on serving its peers throughout."""
    create_users(tracker.info, tmp_path, "a", "b")
    sw = Swarm(tracker, tmp_path)
    seeder, leech = http_node(sw, "a"), sw.node("b")
    size = 4 * MiB
    want = seed(seeder, tmp_path, "f.bin", size, 5)

    pids = seeder.workers("node-http")
    assert len(pids) == 1, pids
    kill_pid(pids[0])
    assert wait_until(lambda: len(seeder.workers("node-http")) == 1 and
                      seeder.workers("node-http") != pids, 10)
    assert wait_until(lambda: port_open(seeder.http_port), 5)
    assert wait_until(lambda: summed(metrics(seeder),
                      "tessera_node_worker_restarts_total",
                      role="node-http") == 1, 5)

    # a slowloris: one header byte a second, cut at the request deadline
    slow = socket.create_connection(("127.0.0.1", seeder.http_port), 5)
    t_slow = time.monotonic()
    slow.sendall(b"GET /metrics HTTP/1.1\r\nX-A")
    # and one that sends a whole head, then its body a byte at a time
    slow_body = socket.create_connection(("127.0.0.1", seeder.http_port), 5)
    slow_body.sendall(("POST /api/v1/downloads/g/f.bin/pause HTTP/1.1\r\n"
                       "Host: x\r\nX-API-Key: %s\r\nContent-Type: "
                       "application/json\r\nContent-Length: 100\r\n\r\n{"
                       % seeder.key).encode())
    # oversized headers: refused, the connection closed
    big = socket.create_connection(("127.0.0.1", seeder.http_port), 5)
    big.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "
                + b"a" * 40000 + b"\r\n\r\n")
    big.settimeout(5)
    head = big.recv(200).decode("latin-1")
    print("40 KB header: %r" % head.split("\r\n")[0])
    assert re.match(r"^HTTP/1\.1 (431|413|414|400)", head), head
    big.close()
    for p in ("/assets/../../etc/passwd", "/../etc/passwd",
              "/api/v1/../../etc/passwd", "/api/v1/downloads/../x/y/chunks"):
        st, _, o = req(seeder, "GET", p)
        assert st == 404, (p, st, o)

    # the node serves its peers meanwhile
    dest = str(tmp_path / "f.out")
    leech.download(G, "f.bin", dest)
    line = leech.wait_download(G, "f.bin", timeout=30)
    assert line.startswith("[C]") and sha1_file(dest) == want, line

    t0 = time.monotonic()
    cut = {}
    for s in (slow, slow_body):
        s.settimeout(0.5)
    while time.monotonic() - t0 < 12 and len(cut) < 2:
        for name, s in (("head", slow), ("body", slow_body)):
            if name in cut:
                continue
            try:
                s.sendall(b" ")
                if s.recv(1) == b"":
                    cut[name] = time.monotonic() - t_slow
            except socket.timeout:
                pass
            except OSError:
                cut[name] = time.monotonic() - t_slow
    slow.close()
    slow_body.close()
    print("slowloris (head, body) cut after %s s" % cut)
    assert set(cut) == {"head", "body"}, cut
    assert max(cut.values()) < 9, cut
    st, _, o = req(seeder, "GET", "/healthz", key=False)
    assert st == 200, o
    m = metrics(seeder)
    assert summed(m, "tessera_node_http_deadline_closed_total") >= 1
    assert summed(m, "tessera_node_http_responses_total", code="404") >= 4
    assert summed(m, "tessera_node_http_process_starts_total") == 2


def test_default_port_taken_and_no_http(tracker, tmp_path):
    """Without --http the endpoint is on 127.0.0.1 at the node's port +
    1000; that port taken: a warning, no node-http, the node runs;
    --no-http: none at all."""
    create_users(tracker.info, tmp_path, "a", "b", "c")
    sw = Swarm(tracker, tmp_path)

    def ports():
        while True:
            p = free_port()
            if p + 1000 < 65536 and not port_open(p + 1000):
                return p
    p = ports()
    a = sw.node("a", port=p)
    assert wait_until(lambda: len(a.workers("node-http")) == 1, 5)
    a.http_port = p + 1000
    with open(os.path.join(a.state_dir, "http-api.key")) as f:
        a.key = f.read().strip()
    assert wait_until(lambda: port_open(p + 1000), 5)
    assert get(a, "/api/v1/node")["addr"] == a.addr

    p = ports()
    hold = socket.socket()
    hold.bind(("127.0.0.1", p + 1000))
    hold.listen(1)
    try:
        b = sw.node("b", port=p)
        assert b.workers("node-http") == []
        assert ("no HTTP endpoint: cannot listen on 127.0.0.1:%d"
                % (p + 1000)) in b.stderr(), b.stderr()[-2000:]
    finally:
        hold.close()
    c = sw.node("c", extra=["--no-http"])
    assert c.workers("node-http") == []
    assert not os.path.exists(os.path.join(c.state_dir, "http-api.key"))
    # both still do their work: c fetches a's file
    want = seed(a, tmp_path, "f.bin", 2 * MiB, 9)
    dest = str(tmp_path / "f.out")
    c.download(G, "f.bin", dest)
    line = c.wait_download(G, "f.bin", timeout=30)
    assert line.startswith("[C]") and sha1_file(dest) == want, line


def test_https_on_non_loopback_address(tracker, tmp_path):
    """--http 0.0.0.0:PORT: HTTPS with the node's certificate (TLS 1.3),
    nothing in plaintext."""
    import ssl
    create_users(tracker.info, tmp_path, "a")
    sw = Swarm(tracker, tmp_path)
    port = free_port()
    a = sw.node("a", extra=["--http", "0.0.0.0:%d" % port])
    with open(os.path.join(a.state_dir, "http-api.key")) as f:
        key = f.read().strip()
    ctx = ssl.create_default_context(cafile=tracker.ca)
    ctx.load_verify_locations(os.path.join(a.state_dir, "node.crt"))
    ctx.check_hostname = False
    assert wait_until(lambda: port_open(port), 5)
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5,
                                    context=ctx)
    c.connect()
    assert c.sock.version() == "TLSv1.3"
    c.request("GET", "/api/v1/node", headers={"X-API-Key": key})
    r = c.getresponse()
    o = json.loads(r.read())
    assert r.status == 200 and o["addr"] == a.addr, o
    c.close()
    plain = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        plain.request("GET", "/healthz")
        code = plain.getresponse().status
    except (OSError, http.client.HTTPException):
        code = None
    assert code is None
