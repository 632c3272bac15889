"""
wan_anchor.py -- the anchor swarm (aria2c + opentracker, as
../shared/bench/anchor_swarm.sh runs it on loopback) and Tessera, on the
same WAN test bed, same workload, interleaved; bench/wan_anchor.sh is
its front end (`make bench` with WAN_ANCHOR=1).

Workload per run: one random file of SIZE bytes (256 MiB), one seeder
host and N leecher hosts (4), one tracker host, every host capped at
RATE Mbit/s up and down (200), for each link setting: RTT 50 ms, RTT
100 ms, RTT 50 ms + 1 % loss on every pair, and no delay, no cap.  The
clock starts when the leechers are launched (seeder ready: aria2's
check-integrity done and announced, Tessera's file shared) and stops when
the last leecher holds a complete copy; every copy is SHA1-checked.
The seeder's upload is counted by the emulator (IP bytes its host sent
while the clock ran, over the file size: "copies"), for both systems
alike; Tessera's own count of the chunks it sent is printed too.

aria2 as the anchor runs it: 512 KiB pieces (mktorrent -l 19), DHT, LPD
off, PEX on, leechers linger (--seed-ratio=0.0: they serve until the
end, as Tessera's nodes do), each bound to its host's address.
opentracker: the Debian build (whitelist of the one info hash), bound
to the tracker host's address.

    python3 bench/wan_anchor.py [--size 256M] [--leechers 4] [--runs 3]
        [--rate 200] [--links all|50,100,50l,free]

Locking: none.  Crash behaviour: one WanBed per run; its close() kills
every process started in its hosts (by pid, process groups) and deletes
the namespaces, also on Ctrl-C and SIGTERM (turned into SystemExit).
"""

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "system"))
import wan_swarm  # noqa: E402
from procs import SEGMENTS, reap_all, unlink_segment  # noqa: E402
from wanbed import WanBed  # noqa: E402

PIECE_B = 512 << 10
OT_PORT = 6969
A2_PORT = 6881
READY_WAIT_S = 120      # seeder hashing + first announce
LINKS = {               # name -> (one-way delay ms, loss %, capped?)
    "50": ("RTT 50 ms", 25, 0, True),
    "100": ("RTT 100 ms", 50, 0, True),
    "50l": ("RTT 50 ms + 1% loss", 25, 1, True),
    "free": ("no delay, no cap", 0, 0, False),
}


def sha1_of(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def host_tx(bed, host):
    """IP bytes host has sent into the emulator so far."""
    for ln in bed.stats():
        if ln.get("ev") == "host" and ln["host"] == host:
            return ln["rx_bytes"]
    return 0


def _in_host(bed, host, argv, timeout=10):
    p = bed.run(host, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate(timeout=5)
    return p.returncode, out


def _scrape_complete(bed, ih):
    enc = "".join("%" + ih[i:i + 2] for i in range(0, 40, 2))
    rc, out = _in_host(bed, 1, ["curl", "-s", "--max-time", "2",
                                "http://%s:%d/scrape?info_hash=%s"
                                % (bed.addr(0), OT_PORT, enc)])
    i = out.find(b"8:completei")
    if rc != 0 or i < 0:
        return 0
    j = out.find(b"e", i + 11)
    return int(out[i + 11:j] or 0)


def aria2_run(bed, work, src, want, leechers, timeout):
    """One aria2 swarm on a started bed: (seconds, seeder IP bytes)."""
    ot = os.path.join(work, "ot")
    os.makedirs(ot)
    tor = os.path.join(work, "t.torrent")
    subprocess.run(["mktorrent", "-l", "19", "-a", "http://%s:%d/announce"
                    % (bed.addr(0), OT_PORT), "-o", tor, src],
                   check=True, capture_output=True, timeout=300)
    ih = [ln.split()[-1] for ln in subprocess.run(
        ["aria2c", "-S", tor], capture_output=True, text=True, timeout=60,
        check=True).stdout.splitlines() if ln.startswith("Info Hash:")][0]
    with open(os.path.join(ot, "whitelist.txt"), "w") as f:
        f.write(ih + "\n")
    with open(os.path.join(ot, "ot.conf"), "w") as f:
        f.write("access.whitelist ./whitelist.txt\n")
    for p, m in ((work, 0o755), (ot, 0o755)):
        os.chmod(p, m)
    for n in ("whitelist.txt", "ot.conf"):
        os.chmod(os.path.join(ot, n), 0o644)
    log = open(os.path.join(work, "ot.log"), "wb")
    bed.run(0, ["opentracker", "-i", bed.addr(0), "-p", OT_PORT, "-P",
                OT_PORT, "-d", ot, "-f", os.path.join(ot, "ot.conf")],
            stdout=log, stderr=log)

    def a2(host, extra):
        return ["aria2c", "--no-conf=true", "--enable-dht=false",
                "--enable-dht6=false", "--bt-enable-lpd=false",
                "--enable-peer-exchange=true", "--disable-ipv6=true",
                "--interface=%s" % bed.addr(host), "--file-allocation=falloc",
                "--console-log-level=warn", "--summary-interval=0",
                "--stop-with-process=%d" % os.getpid(),
                "--seed-ratio=0.0", "--listen-port=%d" % A2_PORT] + extra
    hook = os.path.join(work, "hook.sh")
    with open(hook, "w") as f:
        f.write('#!/bin/sh\nd=$(dirname "$3")\n'
                'date +%s%6N > "$d/.done.tmp" && mv "$d/.done.tmp" '
                '"$d/.done"\n')
    os.chmod(hook, 0o755)
    slog = open(os.path.join(work, "seed.out"), "wb")
    bed.run(1, a2(1, ["-d", os.path.dirname(src), "--check-integrity=true",
                      tor]), stdout=slog, stderr=slog)
    end = time.monotonic() + READY_WAIT_S
    while _scrape_complete(bed, ih) < 1:
        if time.monotonic() > end:
            raise RuntimeError("aria2 seeder not announced within %ds"
                               % READY_WAIT_S)
        time.sleep(0.2)
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, timeout=120)
    tx0 = host_tx(bed, 1)
    dirs = [os.path.join(work, "l%d" % i) for i in range(leechers)]
    t0 = time.time()
    for i, d in enumerate(dirs):
        os.makedirs(d)
        out = open(os.path.join(work, "l%d.out" % i), "wb")
        bed.run(2 + i, a2(2 + i, ["-d", d, "--on-bt-download-complete=%s"
                                  % hook, tor]), stdout=out, stderr=out)
    end = time.monotonic() + timeout
    while not all(os.path.exists(os.path.join(d, ".done")) for d in dirs):
        if time.monotonic() > end:
            raise RuntimeError("aria2 leechers not done in %ds" % timeout)
        time.sleep(0.05)
    done = [int(open(os.path.join(d, ".done")).read()) / 1e6 for d in dirs]
    secs = max(done) - t0
    tx = host_tx(bed, 1) - tx0
    for d in dirs:
        got = sha1_of(os.path.join(d, os.path.basename(src)))
        assert got == want, (d, got, want)
    return secs, tx


def one_run(system, link, size, leechers, rate, src, want, timeout):
    """A fresh bed; one swarm of `system`; its figures."""
    name, delay, loss, capped = LINKS[link]
    work = tempfile.mkdtemp(prefix="tessera-wanA.")
    try:
        with WanBed(2 + leechers, delay_ms=delay, loss_pct=loss,
                    rate_mbit=rate if capped else None, workdir=work) as bed:
            if system == "aria2":
                secs, tx = aria2_run(bed, work, src, want, leechers, timeout)
                chunk_copies = None
            else:
                tx0 = host_tx(bed, 1)
                r = wan_swarm.swarm(bed, work, size, leechers, timeout)
                secs, tx = r["wall_s"], host_tx(bed, 1) - tx0
                chunk_copies = r["chunks_up"]["seed-h1"] * PIECE_B / size
        return {"system": system, "link": link, "secs": round(secs, 2),
                "seed_ip_copies": round(tx / size, 2),
                "seed_chunk_copies": (round(chunk_copies, 2)
                                      if chunk_copies is not None else None)}
    finally:
        reap_all()
        for seg in list(SEGMENTS):
            unlink_segment(seg)
        shutil.rmtree(work, ignore_errors=True)


def lower_bound(size, rate, delay_ms, capped):
    """Seconds no swarm can beat: the file through one leecher's download
    cap (the seeder must also send one copy through its upload: the same
    time), plus a few round trips (connect, TLS/handshake, request)."""
    if not capped:
        return None
    return size * 8 / (rate * 1e6) + 4 * 2 * delay_ms / 1000


def main(argv=None):
    ap = argparse.ArgumentParser(description="aria2 vs Tessera on the bed")
    ap.add_argument("--size", default="256M")
    ap.add_argument("--leechers", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=200, help="Mbit/s")
    ap.add_argument("--links", default="50,100,50l,free")
    ap.add_argument("--timeout", type=float, default=600, help="s per run")
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = wan_swarm_size(a.size)
    links = [ln for ln in a.links.split(",") if ln]
    for ln in links:
        if ln not in LINKS:
            ap.error("--links: one of %s" % ",".join(LINKS))
    res = {}
    with tempfile.TemporaryDirectory(prefix="tessera-wanA-src.") as sd:
        src = os.path.join(sd, "data.bin")
        with open(src, "wb") as f:
            for _ in range(size // (1 << 20)):
                f.write(os.urandom(1 << 20))
            f.write(os.urandom(size % (1 << 20)))
        want = sha1_of(src)
        for ln in links:
            for r in range(a.runs):
                for system in ("aria2", "tessera"):     # interleaved
                    try:
                        fig = one_run(system, ln, size, a.leechers, a.rate,
                                      src, want, a.timeout)
                    except (AssertionError, RuntimeError, OSError,
                            subprocess.SubprocessError) as e:
                        fig = {"system": system, "link": ln,
                               "error": str(e)[:300]}
                    fig["run"] = r + 1
                    print(json.dumps(fig), file=sys.stderr, flush=True)
                    res.setdefault((ln, system), []).append(fig)
    print("%-22s %-8s %5s %9s %-24s %9s %s" % (
        "link", "system", "runs", "median_s", "each run (s)", "bound_s",
        "seeder copies (IP bytes; tessera chunks)"))
    for ln in links:
        name, delay, _, capped = LINKS[ln]
        bound = lower_bound(size, a.rate, delay, capped)
        for system in ("aria2", "tessera"):
            figs = res.get((ln, system), [])
            ok = [f for f in figs if "secs" in f]
            med = statistics.median(f["secs"] for f in ok) if ok else None
            cop = ("%.2f" % statistics.median(f["seed_ip_copies"]
                                              for f in ok)) if ok else "-"
            if ok and system == "tessera":
                cop += "; %.2f" % statistics.median(f["seed_chunk_copies"]
                                                   for f in ok)
            print("%-22s %-8s %5s %9s %-24s %9s %s" % (
                name, system, "%d/%d" % (len(ok), len(figs)),
                "%.2f" % med if med is not None else "FAILED",
                " ".join("%.2f" % f["secs"] if "secs" in f else "ERR"
                         for f in figs),
                "%.2f" % bound if bound else "-", cop))


def wan_swarm_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.upper()
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


if __name__ == "__main__":
    main()
