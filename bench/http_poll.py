#!/usr/bin/python3
"""
http_poll.py -- what a dashboard costs: polls a node's and a tracker's
HTTP endpoints as the web page does (the node's /api/v1/node,
/api/v1/downloads, each download's chunk map and /metrics; the
tracker's /api/v1/cluster), every --interval seconds, until --seconds
pass or SIGTERM.  Used by bench/swarm.sh (HTTP_POLL=1) to time a swarm
watched every 200 ms against one nobody watches.

Waits (bounded) for each key file to appear; a request that fails is
counted, never fatal.  Prints one summary line at the end:
"polls N requests M errors E".
"""

import argparse
import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request

stop = False


def on_term(signo, frame):
    global stop
    stop = True


def key_of(path, until):
    while time.monotonic() < until and not stop:
        try:
            with open(path) as f:
                k = f.read().strip()
            if k:
                return k
        except OSError:
            pass
        time.sleep(0.05)
    return None


def get(addr, key, path, stats):
    stats["requests"] += 1
    req = urllib.request.Request("http://%s%s" % (addr, path),
                                 headers={"X-API-Key": key})
    try:
        with urllib.request.urlopen(req, timeout=2) as r:
            return r.read()
    except Exception:
        stats["errors"] += 1
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--node", required=True)
    ap.add_argument("--node-key", required=True)
    ap.add_argument("--tracker", required=True)
    ap.add_argument("--tracker-key", required=True)
    ap.add_argument("--interval", type=float, default=0.2)
    ap.add_argument("--seconds", type=float, default=300)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, on_term)
    until = time.monotonic() + a.seconds
    nkey = key_of(a.node_key, until)
    tkey = key_of(a.tracker_key, until)
    stats = {"polls": 0, "requests": 0, "errors": 0}
    while nkey and tkey and not stop and time.monotonic() < until:
        t0 = time.monotonic()
        stats["polls"] += 1
        get(a.node, nkey, "/api/v1/node", stats)
        body = get(a.node, nkey, "/api/v1/downloads", stats)
        try:
            dls = json.loads(body)["downloads"] if body else []
        except (ValueError, KeyError):
            dls = []
        for d in dls:
            get(a.node, nkey, "/api/v1/downloads/%s/%s/chunks"
                % (urllib.parse.quote(d["group"], safe=""),
                   urllib.parse.quote(d["name"], safe="")), stats)
        get(a.node, nkey, "/metrics", stats)
        get(a.tracker, tkey, "/api/v1/cluster", stats)
        left = a.interval - (time.monotonic() - t0)
        if left > 0:
            time.sleep(left)
    print("polls %d requests %d errors %d"
          % (stats["polls"], stats["requests"], stats["errors"]))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
