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
    seeders, 1 leecher) the leecher's own endpoint (--http) shows the
    download's progress, its chunk map and each source's contribution,
    growing; pause holds it (no byte while paused) and resume moves it
    again; at the end the map is full, and a seeder's page shows the
    leecher among who downloaded from it and the file it sent.
  Each browser test fails on any SEVERE entry of the browser's console
  log (a JavaScript error, a refused load) and saves a screenshot in its
  tmp dir.  Skipped cleanly when chromium, chromedriver or selenium is
  missing.

Locking: none (the test drives the browser from one thread).

Crash behaviour: trackers and nodes are procs.Proc (reaped by the
conftest fixture by pid); the browser and its driver are stopped by pid
at the end of each test, whatever happened.
"""

import json
import os
import shutil
import signal
import socket
import time

import pytest

from cluster import Cluster
from nodes import CHUNK, Swarm, create_users, seed
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


# ---- the node page, on the node's own endpoint, during a real download -----

MAP = """const c = document.querySelector('.dl canvas.chunkmap');
return c ? [Number(c.dataset.n || 0), Number(c.dataset.done || 0)] : null;"""
SRC = """return Array.from(document.querySelectorAll('.dl tbody tr')).map(
    r => [r.dataset.addr, Number(r.dataset.bytes)]);"""


def test_node_page_during_multi_source_download(tracker_factory, tmp_path,
                                                browser):
    t = tracker_factory()
    create_users(t.info, tmp_path, "ds1", "ds2", "dl1")
    sw = Swarm(t, tmp_path)
    sport, nport = free_port(), free_port()
    # 32 MiB at 4 MiB/s (~8 s): what is in flight when pause is clicked
    # cannot finish the file
    nch = 64
    s1 = sw.node("ds1", extra=["--max-upload-rate", "2M",
                               "--http", "127.0.0.1:%d" % sport])
    s2 = sw.node("ds2", extra=["--max-upload-rate", "2M"])
    path, _ = seed(s1, tmp_path, "movie.bin", nch * CHUNK, seed_=7)
    s2.upload(path, "g")
    leech = sw.node("dl1", extra=["--http", "127.0.0.1:%d" % nport])
    key = node_key(leech)
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
    pause_resume(browser)
    print("chunk map %r -> %r; sources %r -> %r" % (m0, m1, s0, s1_))
    text = d.find_element("id", "downloads").text
    assert "movie.bin" in text and "group g" in text, text
    assert ("downloading" in text and "time left" in text) or \
        "complete" in text, text
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
    seeder_page(browser, s1, sport, tmp_path)


def node_key(n):
    """The API key of node n's HTTP endpoint, made at its start."""
    kf = os.path.join(n.state_dir, "http-api.key")
    assert wait_until(lambda: os.path.exists(kf), 10, 0.1), kf
    with open(kf) as f:
        return f.read().strip()


def seeder_page(browser, s1, sport, tmp_path):
    """A seeder's own page: the leecher among who downloaded from it,
    the shared file with what it sent."""
    key = node_key(s1)
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
