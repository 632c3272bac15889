#!/usr/bin/python3
"""
bench/scale.py -- dataset generator and probe of the tracker scale
benchmark (bench/scale.sh drives it).

Purpose: `build` fills a running tracker THROUGH THE REAL PROTOCOL (TLS
1.3, framed requests, the same messages a client sends) with N users, each
logged in once (one session each), N/100 groups (every user asks to join
one, so each group holds pending requests), and one group `big` of 505
files; the probe user u0000000 belongs to 3 groups.  The tracker is meant
to run with a low --kdf-iterations while building (bench/scale.sh says so
in its output): the figures are about the database, not PBKDF2.
`measure` times, over one connection each, LIST_GROUPS, LIST_MY_GROUPS,
LIST_FILES of `big`, LOGIN and CREATE_GROUP, and prints p50/p99 in ms and
the CREATE_GROUP rate.

Usage: scale.py build PORT CA N [THREADS]
       scale.py measure PORT CA N [COUNT]

Locking: each thread owns one connection.  Crash behaviour: nothing of
its own; what it built stays in the tracker's data directory.
"""

import hashlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "system"))
import proto                                            # noqa: E402
from proto import OK, ERR_EXISTS, Raw, pstr, upload_frame  # noqa: E402

BIG_FILES = 505
CHUNK = 512 * 1024          # TS_CHUNK_B (common/ts_config.h)
PW = "pw"


def uname(i):
    return "u%07d" % i


def groups_n(n):
    return max(3, n // 100)


def build_range(port, lo, hi, n, errors):
    """Users lo..hi-1: create, log in, create or join their group."""
    r = Raw(port, timeout=30)
    g = groups_n(n)
    try:
        for i in range(lo, hi):
            u = uname(i)
            st, msg, _ = r.create_user(u, PW)
            if st not in (OK, ERR_EXISTS):
                errors.append("create_user %s: %s" % (u, msg))
                continue
            tok = r.login(u, PW, node="127.0.0.1:%d" % (10000 + i % 50000))
            if i < g:
                st, msg, _ = r.request("CREATE_GROUP", tok + pstr("g%05d" % i))
            else:
                st, msg, _ = r.request("JOIN_GROUP",
                                       tok + pstr("g%05d" % (i % g)))
            if st not in (OK, ERR_EXISTS):
                errors.append("group of %s: %s" % (u, msg))
    finally:
        r.close()


def build_big(port):
    """The probe user's 3 groups and the 505 files of `big`."""
    r = Raw(port, timeout=30)
    try:
        tok = r.login(uname(0), PW, node="127.0.0.1:9")
        for grp in ("big", "probe3"):
            r.request("CREATE_GROUP", tok + pstr(grp))
        for k in range(BIG_FILES):
            name = "file%04d.bin" % k
            h = [hashlib.sha1(b"%d/%d" % (k, c)).digest() for c in range(4)]
            sha = hashlib.sha1(name.encode()).digest()
            st, msg, _ = r.request("UPLOAD_FILE",
                                   upload_frame(tok, "big", name,
                                                3 * CHUNK + 7, sha, h))
            if st not in (OK, ERR_EXISTS):
                raise SystemExit("upload %s: %s" % (name, msg))
    finally:
        r.close()


def build(port, n, threads):
    t0 = time.monotonic()
    errors = []
    # the group creators first, so that every join finds its group
    g = min(n, groups_n(n))
    build_range(port, 0, g, n, errors)
    step = (n - g + threads - 1) // threads
    ts = [threading.Thread(target=build_range,
                           args=(port, g + k * step,
                                 min(n, g + (k + 1) * step), n, errors))
          for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    build_big(port)
    for e in errors[:5]:
        print("build: %s" % e)
    print("built %d users, %d sessions, %d groups, %d files in %.1f s "
          "(%d errors)" % (n, n, groups_n(n) + 2, BIG_FILES,
                           time.monotonic() - t0, len(errors)))
    return 1 if errors else 0


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p / 100))]


def timed(fn, count):
    lat = []
    for _ in range(count):
        t = time.perf_counter()
        fn()
        lat.append((time.perf_counter() - t) * 1000.0)
    return lat


def measure(port, n, count):
    r = Raw(port, timeout=60)
    tok = r.login(uname(0), PW, node="127.0.0.1:9")

    def req(name, payload):
        st, msg, _ = r.request(name, payload, timeout=60)
        assert st == OK, (name, msg)

    rows = []
    rows.append(("list_groups", timed(lambda: req("LIST_GROUPS", tok),
                                      count)))
    rows.append(("list_my_groups", timed(lambda: req("LIST_MY_GROUPS", tok),
                                         count)))
    rows.append(("list_files(505)",
                 timed(lambda: req("LIST_FILES", tok + pstr("big")), count)))
    users = [uname((k * 7919) % n) for k in range(count)]
    it = iter(users)
    rows.append(("login", timed(lambda: r.login(next(it), PW,
                                                node="127.0.0.1:9"),
                                count)))
    base = int(time.time() * 1000) % 10000000
    it2 = iter(range(count))
    t0 = time.perf_counter()
    lat = timed(lambda: req("CREATE_GROUP",
                            tok + pstr("m%07d_%04d" % (base, next(it2)))),
                count)
    rate = count / (time.perf_counter() - t0)
    rows.append(("create_group", lat))
    r.close()
    for name, v in rows:
        print("%-18s p50 %9.2f ms   p99 %9.2f ms" % (name, pct(v, 50),
                                                     pct(v, 99)))
    print("%-18s %9.0f /s (one connection, sequential)" % ("create_group",
                                                           rate))
    return 0


def main(argv):
    if len(argv) < 5 or argv[1] not in ("build", "measure"):
        print(__doc__.split("Usage:")[1].split("Locking")[0].strip())
        return 2
    port, ca, n = int(argv[2]), argv[3], int(argv[4])
    proto.CA_BY_PORT[port] = ca
    if argv[1] == "build":
        return build(port, n, int(argv[5]) if len(argv) > 5 else 4)
    return measure(port, n, int(argv[5]) if len(argv) > 5 else 100)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
