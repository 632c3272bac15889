"""
test_dashboard.py -- the web dashboard embedded in the binaries
(http/ts_www.c, www/): its files over real HTTP, hostile paths, and the
page itself in Debian's headless Chromium driven by Selenium.

Purpose:
  - the files: "/" and "/assets/*" are served without the API key, with
    the right Content-Type, Cache-Control, nosniff and a strict
    Content-Security-Policy; the chart library is the Debian package's
    file byte for byte; /api still needs the key; path traversal in
    every spelling ("..", percent-encoded, doubled slashes) is a 404
    that never shows a byte of the key file; a long path is 414;
  - the tracker page: a 2-tracker cluster; without a key and with a
    wrong key the page says so; with the key both tiles are up, then a
    SIGKILLed tracker's tile turns down within seconds; at phone width
    (375 px) nothing is wider than the screen;
  - the node page: during a real multi-source download (2 rate-capped
    seeders, 1 leecher) the leecher's dashboard shows the download's
    progress, its chunk map and each source's contribution, growing.
    When the client has its own HTTP endpoint (--http), the page is the
    node's, on the node's real API, and a seeder's page then shows the
    leecher among who downloaded from it.  A client without one gets a small
    fake node endpoint in this file instead: it speaks the node API
    contract (/api/v1/node, /downloads, /downloads/G/N/chunks, /uploads,
    /shares, key required) with figures read live from the real
    leecher's shm segment (nodes.NodeShm), and serves the page's files
    proxied from the real tracker's embedded copy.
  Each browser test fails on any SEVERE entry of the browser's console
  log (a JavaScript error, a refused load) and saves a screenshot in its
  tmp dir.  Skipped cleanly when chromium, chromedriver or selenium is
  missing.

Locking: the fake node endpoint is a server thread of the test process
(ThreadingHTTPServer); it only reads the shm segment.

Crash behaviour: trackers and nodes are procs.Proc (reaped by the
conftest fixture by pid); the browser and its driver are stopped by pid
at the end of each test, whatever happened.
"""

import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from cluster import Cluster
from nodes import CHUNK, NodeShm, Swarm, create_users, seed
from tessera import BIN
from procs import descendants, free_port, kill_pid, pid_alive, wait_until

CHARTJS = "/usr/share/javascript/chart.js/chart.min.js"


# ---- HTTP helpers ----------------------------------------------------------

def raw_get(port, target, key=None, method="GET"):
    """(status, headers, body) of one request whose target is sent byte
    for byte (no client-side normalisation of '..' or '%2e')."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        req = "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" % (
            method, target)
        if key:
            req += "X-API-Key: %s\r\n" % key
        s.sendall((req + "\r\n").encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs, body


def tracker_with_http(tracker_factory):
    port = free_port()
    t = tracker_factory(extra_args=["--http", "127.0.0.1:%d" % port])
    with open(os.path.join(t.data_dir, "http-api.key")) as f:
        return t, port, f.read().strip()


# ---- the files, without a browser --------------------------------------------

def test_assets_headers_and_hostile_paths(tracker_factory):
    t, port, key = tracker_with_http(tracker_factory)
    keyfile = open(os.path.join(t.data_dir, "http-api.key"), "rb").read()

    st, h, body = raw_get(port, "/")
    assert st == 200, (st, body[:200])
    assert h["content-type"] == "text/html; charset=utf-8"
    assert h["x-content-type-options"] == "nosniff"
    assert h["cache-control"] == "no-cache"
    csp = h["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert b"/assets/app.js" in body and b"<html" in body
    want = {"/assets/app.js": "text/javascript; charset=utf-8",
            "/assets/common.js": "text/javascript; charset=utf-8",
            "/assets/tracker.js": "text/javascript; charset=utf-8",
            "/assets/node.js": "text/javascript; charset=utf-8",
            "/assets/style.css": "text/css; charset=utf-8",
            "/assets/icon.svg": "image/svg+xml",
            "/assets/chart.min.js": "text/javascript; charset=utf-8",
            "/assets/site.json": "application/json"}
    for path, ctype in want.items():
        st, h, body = raw_get(port, path)
        assert st == 200 and h["content-type"] == ctype, (path, st, h)
        assert h["x-content-type-options"] == "nosniff"
        assert int(h["content-length"]) == len(body) > 0
    with open(CHARTJS, "rb") as f:
        assert raw_get(port, "/assets/chart.min.js")[2] == f.read()
    assert json.loads(raw_get(port, "/assets/site.json")[2]) == \
        {"kind": "tracker"}
    # the API still needs the key; the files never do
    assert raw_get(port, "/api/v1/status")[0] == 401
    assert raw_get(port, "/api/v1/status", key=key)[0] == 200

    # traversal in every spelling: exact-match lookup, so all 404, and
    # not one byte of the key file (or /etc/passwd) comes back
    hostile = ["/assets/../http-api.key", "/assets/%2e%2e/http-api.key",
               "/assets/%2E%2E%2Fhttp-api.key", "/assets/..%2fhttp-api.key",
               "/assets/../../../../etc/passwd", "/assets//etc/passwd",
               "/assets/%2fetc%2fpasswd", "/assets/./app.js",
               "/assets/app.js/", "/assets/app.js%00.png", "/assets/",
               "/assets", "/index.html", "/../http-api.key",
               "/assets/APP.JS", "/assets/app.js.", "/assets/\\..\\x",
               "/assets/" + "%2e%2e/" * 20 + "etc/passwd"]
    for p in hostile:
        st, h, body = raw_get(port, p)
        assert st == 404, (p, st, body[:100])
        assert keyfile.strip() not in body and b"root:" not in body, p
        assert h["content-type"] == "application/json", p
    # long paths: ours (> 256 bytes) is 414, MHD's own limit too
    assert raw_get(port, "/assets/" + "a" * 300)[0] == 414
    st, _, _ = raw_get(port, "/assets/" + "a" * 20000)
    assert st in (414, 431), st
    # other methods are refused on the files as on the API
    assert raw_get(port, "/", method="POST")[0] in (400, 405)
    assert raw_get(port, "/assets/app.js", method="DELETE")[0] == 405
    # and the tracker still serves
    assert raw_get(port, "/healthz")[0] == 200


# ---- the browser -----------------------------------------------------------

def _browser_or_skip():
    try:
        from selenium import webdriver  # noqa: F401
    except ImportError:
        pytest.skip("python3-selenium is not installed")
    for b in ("chromium", "chromedriver"):
        if shutil.which(b) is None:
            pytest.skip("%s is not installed" % b)


class Browser:
    """Headless Chromium through chromedriver; every process it starts is
    recorded (by pid) so close() can kill what quit() leaves."""

    def __init__(self, tmp, width=1280, height=800):
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
        o = Options()
        o.binary_location = shutil.which("chromium")
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu",
                  "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-extensions", "--disable-background-networking",
                  "--window-size=%d,%d" % (width, height),
                  "--user-data-dir=%s" % os.path.join(str(tmp), "chrome")):
            o.add_argument(a)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.svc = Service(shutil.which("chromedriver"),
                           log_path=os.path.join(str(tmp), "chromedriver.log"))
        self.pids = set()
        self.d = webdriver.Chrome(service=self.svc, options=o)
        self.d.set_page_load_timeout(20)
        self.note_pids()

    def note_pids(self):
        p = self.svc.process.pid
        self.pids.add(p)
        self.pids.update(descendants(p))

    def severe(self):
        """The SEVERE console entries since the last call."""
        return [e for e in self.d.get_log("browser")
                if e.get("level") == "SEVERE"]

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def wait(self, script, timeout, what):
        v = wait_until(lambda: self.js(script), timeout, 0.2)
        assert v, "%s: not within %s s; page text:\n%s" % (
            what, timeout, self.js("return document.body.innerText")[:3000])
        return v

    def fits(self):
        """Asserts that nothing on the page is wider than the window."""
        w = self.js("return [document.documentElement.scrollWidth, "
                    "window.innerWidth]")
        assert w[0] <= w[1], (w, self.js(WIDE))

    def close(self):
        try:
            self.note_pids()
            self.d.quit()
        except Exception:
            pass
        for p in self.pids:
            if pid_alive(p):
                kill_pid(p, signal.SIGKILL)


@pytest.fixture
def browser(tmp_path):
    _browser_or_skip()
    b = Browser(tmp_path)
    yield b
    b.close()


# the elements that stick out of the window (for an assertion's message)
WIDE = """return Array.from(document.querySelectorAll('body *')).filter(
    e => e.getBoundingClientRect().right > window.innerWidth + 1 &&
         !e.closest('.scroll')).slice(0, 8).map(
    e => e.tagName + '.' + e.className + ' ' +
         Math.round(e.getBoundingClientRect().right));"""

TILES = """Array.from(document.querySelectorAll('.tile')).map(
    t => [Number(t.dataset.id), t.dataset.up])"""


def test_tracker_page_tiles_follow_the_cluster(tmp_path, browser):
    cl = Cluster(tmp_path, 2)
    hp = {}
    for i in cl.ids():
        hp[i] = free_port()
        cl.t(i).extra_args += ["--http", "127.0.0.1:%d" % hp[i]]
    cl.start()
    with open(os.path.join(cl.t(1).data_dir, "http-api.key")) as f:
        key = f.read().strip()
    base = "http://127.0.0.1:%d/" % hp[1]
    d = browser.d

    # no key, then a wrong key: a clear message, no figures
    d.get(base)
    browser.wait("return !document.getElementById('keybox').hidden", 10,
                 "the key box without a key")
    assert "No API key" in d.find_element("id", "keybox").text
    assert d.find_element("id", "tracker-page").is_displayed() is False
    d.get(base + "#key=" + "0" * 64)
    d.refresh()
    browser.wait("return document.getElementById('keybox').innerText"
                 ".includes('refused')", 10, "the wrong-key message")
    assert d.find_element("id", "keybox").is_displayed()
    d.save_screenshot(str(tmp_path / "wrong-key.png"))
    browser.severe()                # the 401 it logged is expected
    # the key pasted into the page's field works too
    d.find_element("id", "keyinput").send_keys(key)
    d.find_element("css selector", "#keyform button").click()
    browser.wait("return document.querySelectorAll('.tile').length === 2",
                 15, "the tiles after the key was pasted")
    d.get("about:blank")

    # the key in the fragment: both tiles up
    d.get(base + "#key=" + key)
    browser.wait("return " + TILES +
                 ".filter(t => t[1] === '1').length === 2", 20,
                 "both tracker tiles up")
    assert "#key" not in d.current_url      # taken out of the address bar
    assert browser.js("return sessionStorage.getItem('tessera-api-key')") \
        == key
    text = d.find_element("id", "tiles").text
    assert "Tracker 1 (this one)" in text and "Tracker 2" in text
    assert "leader" in text and "Converged" in text
    assert "lag_ops" not in d.find_element("tag name", "body").text
    browser.wait("return window.tesseraState.polls >= 3", 10, "3 polls")
    browser.fits()
    d.save_screenshot(str(tmp_path / "tracker-page.png"))

    # tracker 2 dies: its tile turns down within seconds
    t0 = time.monotonic()
    cl.kill(2)
    browser.wait("return JSON.stringify(" + TILES +
                 ") === JSON.stringify([[1, '1'], [2, '0']])", 15,
                 "tracker 2's tile down")
    took = time.monotonic() - t0
    print("tile down %.1f s after the kill" % took)
    assert "trackers up\n1 of 2" in d.find_element(
        "id", "cluster-summary").text.lower()
    d.save_screenshot(str(tmp_path / "tracker-down.png"))

    # phone width: nothing wider than the screen
    d.set_window_size(375, 800)
    time.sleep(0.5)
    browser.fits()
    d.save_screenshot(str(tmp_path / "tracker-phone.png"))
    bad = browser.severe()
    assert not bad, bad


# ---- the node page, on a fake node endpoint fed by a real download -----------

def client_has_http():
    """1 if this client has its own HTTP endpoint (--http)."""
    r = subprocess.run([os.path.join(BIN, "client"), "--help"],
                       capture_output=True, text=True, timeout=10)
    return "--http" in r.stdout + r.stderr


class FakeNode(http.server.ThreadingHTTPServer):
    """The node API contract, with the figures of a real node's shm."""
    daemon_threads = True

    def __init__(self, node, key, assets_port, dest):
        self.node, self.key, self.assets_port = node, key, assets_port
        self.dest = dest
        self.shm = None
        self.t0 = time.monotonic()
        self.last = {}                  # rate samples per download
        http.server.ThreadingHTTPServer.__init__(
            self, ("127.0.0.1", free_port()), FakeHandler)

    def shm_(self):
        if self.shm is None:
            self.shm = NodeShm(self.node.port)
        return self.shm

    def downloads(self):
        out = []
        states = {1: "running", 3: "done", 4: "failed", 5: "paused"}
        now = time.monotonic()
        for d in self.shm_().downloads():
            # the rate over the last 2 s of samples
            k = (d["group"], d["name"])
            hist = self.last.setdefault(k, [(self.t0, 0)])
            hist.append((now, d["bytes_done"]))
            while len(hist) > 2 and now - hist[1][0] >= 2:
                hist.pop(0)
            bps = (d["bytes_done"] - hist[0][1]) / max(now - hist[0][0], 0.1)
            nch = (d["size"] + CHUNK - 1) // CHUNK
            left = d["size"] - d["bytes_done"]
            srcs = [{"addr": a, "fp": "ab" * 32, "state": "active",
                     "chunks": s["chunks"], "bytes": s["chunks"] * CHUNK,
                     "rate_Bps": bps / max(1, len(d["sources"])),
                     "load": 0, "inflight": 1}
                    for a, s in sorted(d["sources"].items())]
            out.append({"id": len(out) + 1, "group": d["group"],
                        "name": d["name"],
                        "dest": os.path.join(self.dest, d["name"]),
                        "state": states.get(d["state"], "running"),
                        "size": d["size"], "bytes": d["bytes_done"],
                        "pct": 100.0 * d["bytes_done"] / max(1, d["size"]),
                        "bps": bps, "eta_s": left / bps if bps > 0 else -1,
                        "error": None, "nchunks": nch,
                        "chunks_done": d["chunks_done"], "sources": srcs})
        return out

    def chunks(self, group, name):
        for d in self.downloads():
            if d["group"] == group and d["name"] == name:
                break
        else:
            return None
        m, addrs = [], []
        for i, s in enumerate(d["sources"]):
            addrs.append(s["addr"])
            m += ["ABCDEFGHIJ"[i]] * s["chunks"]
        m = m[:d["chunks_done"]]
        m += ["+"] * (d["chunks_done"] - len(m))
        if d["state"] == "running":
            m += ["*"] * min(4, d["nchunks"] - len(m))
        m += ["."] * (d["nchunks"] - len(m))
        return {"nchunks": d["nchunks"], "sources": addrs,
                "map": "".join(m[:d["nchunks"]])}


class FakeHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def reply(self, status, obj=None, body=None, ctype="application/json",
              extra=None):
        body = body if body is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        srv, p = self.server, self.path.split("?")[0]
        if p == "/assets/site.json":
            return self.reply(200, {"kind": "node"})
        if p == "/" or p.startswith("/assets/"):
            c = http.client.HTTPConnection("127.0.0.1", srv.assets_port,
                                           timeout=5)
            c.request("GET", p)
            r = c.getresponse()
            body = r.read()
            c.close()
            return self.reply(r.status, body=body,
                              ctype=r.getheader("Content-Type"),
                              extra={"Content-Security-Policy":
                                     r.getheader("Content-Security-Policy")
                                     or "default-src 'none'"})
        if self.headers.get("X-API-Key") != srv.key:
            return self.reply(401, {"error": "missing or wrong API key"})
        if p == "/api/v1/node":
            up, down = srv.shm_().rate_totals()
            return self.reply(200, {
                "kind": "node", "pid": srv.node.proc.pid, "addr": srv.node.addr,
                "state_dir": srv.node.state_dir, "user": srv.node.user,
                "uptime_s": int(time.monotonic() - srv.t0),
                "up_Bps": 0, "down_Bps": sum(d["bps"] for d in
                                             srv.downloads()),
                "up_cap_Bps": 0, "down_cap_Bps": 0, "up_total_B": up,
                "down_total_B": down})
        if p == "/api/v1/downloads":
            return self.reply(200, {"downloads": srv.downloads()})
        if p == "/api/v1/uploads":
            return self.reply(200, {"peers": []})
        if p == "/api/v1/shares":
            return self.reply(200, {"shares": []})
        parts = p.split("/")
        if len(parts) == 7 and parts[:4] == ["", "api", "v1", "downloads"] \
                and parts[6] == "chunks":
            from urllib.parse import unquote
            m = srv.chunks(unquote(parts[4]), unquote(parts[5]))
            if m is not None:
                return self.reply(200, m)
        return self.reply(404, {"error": "no such path"})


MAP = """const c = document.querySelector('.dl canvas.chunkmap');
return c ? [Number(c.dataset.n || 0), Number(c.dataset.done || 0)] : null;"""
SRC = """return Array.from(document.querySelectorAll('.dl tbody tr')).map(
    r => [r.dataset.addr, Number(r.dataset.bytes)]);"""


def test_node_page_during_multi_source_download(tracker_factory, tmp_path,
                                                browser):
    t, hport, _ = tracker_with_http(tracker_factory)
    create_users(t.info, tmp_path, "ds1", "ds2", "dl1")
    sw = Swarm(t, tmp_path)
    real = client_has_http()
    sport = free_port()
    # 16 MiB at 2 MiB/s (~8 s); where the pause is tried too, 32 MiB at
    # 4 MiB/s, so that what is in flight when it is clicked cannot
    # finish the file
    cap, nch = ("2M", 64) if real else ("1M", 32)
    s1 = sw.node("ds1", extra=["--max-upload-rate", cap] +
                 (["--http", "127.0.0.1:%d" % sport] if real else []))
    s2 = sw.node("ds2", extra=["--max-upload-rate", cap])
    size = nch * CHUNK
    path, _ = seed(s1, tmp_path, "movie.bin", size, seed_=7)
    s2.upload(path, "g")
    fake = th = None
    if real:
        # the node's own endpoint: the real page on the real API
        nport = free_port()
        leech = sw.node("dl1", extra=["--http", "127.0.0.1:%d" % nport])
        kf = os.path.join(leech.state_dir, "http-api.key")
        assert wait_until(lambda: os.path.exists(kf), 10, 0.1), kf
        with open(kf) as f:
            key = f.read().strip()
        print("node page on the node's own endpoint")
    else:
        leech = sw.node("dl1")
        key = "k" * 64
        fake = FakeNode(leech, key, hport, str(tmp_path / "down"))
        nport = fake.server_address[1]
        th = threading.Thread(target=fake.serve_forever, daemon=True)
        th.start()
        print("node page on the fake node endpoint (no --http in client)")
    try:
        # the page first: the download appears on it live
        d = browser.d
        d.get("http://127.0.0.1:%d/#key=%s" % (nport, key))
        browser.wait("return document.body.dataset.kind === 'node' && "
                     "window.tesseraState.polls >= 1", 10, "the node page")
        assert d.find_element("id", "dl-empty").is_displayed()
        dest = tmp_path / "down"
        dest.mkdir()
        leech.download("g", "movie.bin", str(dest))
        browser.wait("const d = document.querySelector('.dl'); return d && "
                     "Number(d.dataset.pct) > 0", 15, "progress shown")
        m0 = browser.wait("const r = (function(){" + MAP + "})(); "
                          "return r && r[1] > 0 ? r : null;", 10,
                          "the chunk map drawn")
        assert m0[0] == nch, m0
        s0 = browser.wait("const r = (function(){" + SRC + "})(); return "
                          "r.filter(x => x[1] > 0).length >= 1 ? r : null;",
                          10, "a source's contribution")
        # it grows: more chunks done, and both sources contributed
        m1 = browser.wait("const r = (function(){" + MAP + "})(); "
                          "return r[1] > %d ? r : null;" % m0[1], 15,
                          "the chunk map growing")
        s1_ = browser.wait("const r = (function(){" + SRC + "})(); return "
                           "r.filter(x => x[1] > 0).length >= 2 ? r : null;",
                           20, "two sources contributing")
        if real:
            pause_resume(browser)
        print("chunk map %r -> %r; sources %r -> %r" % (m0, m1, s0, s1_))
        text = d.find_element("id", "downloads").text
        assert "movie.bin" in text and "downloading" in text.lower() or \
            "complete" in text.lower(), text
        assert "time left" in text or "complete" in text.lower(), text
        assert browser.js("return document.querySelectorAll("
                          "'#downloads .legend span').length") >= 4
        d.set_window_size(1280, 1400)
        d.save_screenshot(str(tmp_path / "node-page.png"))
        # phone width: nothing wider than the screen (tables scroll)
        d.set_window_size(375, 800)
        time.sleep(0.5)
        browser.fits()
        d.save_screenshot(str(tmp_path / "node-phone.png"))
        d.set_window_size(1280, 800)
        leech.wait_download("g", "movie.bin", 60)
        browser.wait("return document.querySelector('.dl').className"
                     ".includes('done')", 10, "the download shown complete")
        browser.wait("const r = (function(){" + MAP + "})(); "
                     "return r[1] === r[0];", 10, "the full chunk map")
        bad = browser.severe()
        assert not bad, bad
        if real:
            seeder_page(browser, s1, sport, tmp_path)
    finally:
        if fake is not None:
            fake.shutdown()
            fake.server_close()
            th.join(5)


def seeder_page(browser, s1, sport, tmp_path):
    """A seeder's own page: the leecher among who downloaded from it,
    the shared file with what it sent."""
    with open(os.path.join(s1.state_dir, "http-api.key")) as f:
        key = f.read().strip()
    browser.d.get("about:blank")
    browser.d.get("http://127.0.0.1:%d/#key=%s" % (sport, key))
    browser.wait("return document.querySelectorAll('#uploads tbody tr')"
                 ".length >= 1 && !document.getElementById('uploads')"
                 ".hidden", 10, "the seeder's uploads")
    browser.wait("return document.getElementById('shares').innerText"
                 ".includes('movie.bin')", 10, "the seeder's shares")
    row = browser.js("return document.querySelector('#uploads tbody tr')"
                     ".innerText")
    assert "127.0.0.1" in row and "MiB" in row, row
    browser.d.save_screenshot(str(tmp_path / "seeder-page.png"))
    bad = browser.severe()
    assert not bad, bad


def pause_resume(browser):
    """The pause and resume buttons, through the node's POST actions."""
    def click(label):
        for b in browser.d.find_elements("css selector", ".dl-actions button"):
            if b.text == label:
                b.click()
                return
        raise AssertionError("no %s button" % label)
    got = "return Number(document.querySelector('.dl').dataset.bytes)"
    click("pause")
    browser.wait("return document.querySelector('.dl').className"
                 ".includes('paused')", 10, "the download paused")
    time.sleep(2)                   # what was in flight may still land
    b0 = browser.js(got)
    time.sleep(3)                   # two polls: nothing more while paused
    b1 = browser.js(got)
    assert b1 == b0, (b0, b1)
    click("resume")
    browser.wait("const c = document.querySelector('.dl').className; "
                 "return !c.includes('paused');", 10, "the download resumed")
    browser.wait(got + " > %d" % b1, 15, "progress after the resume")
