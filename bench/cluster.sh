#!/bin/bash
# bench/cluster.sh -- tracker cluster benchmark (replication, catch-up,
# failover); builds nothing.
#
# On free 127.0.0.1 ports, with temp data dirs, measures:
#   1. replication lag: SAMPLES times, create a group on tracker 1 and,
#      from its acknowledgement, poll tracker 2 (LIST_REQUESTS, read-only)
#      until it sees it; p50 / p99 / max.
#   2. catch-up of a tracker that missed OPS operations: tracker 2 is
#      stopped (SIGTERM), OPS writes land on tracker 1, tracker 2 is
#      started again; the time from its start until its STATUS digest
#      equals tracker 1's.  By delta (the op log still holds them) and by
#      snapshot (data dir wiped after the op log was compacted; if it was
#      not compacted the line says "delta").
#   3. client-visible pause: a real ./client logged in; its tracker is
#      SIGKILLed, then the time until its next command (create_group)
#      succeeds, KILLS times.
# and prints one table.  Everything runs in one python3 process (the
# helpers of tests/system/cluster.py); every process it starts is stopped
# by pid on any exit (SIGTERM, bounded wait, SIGKILL).
#
# Usage: bench/cluster.sh [OPS] [SAMPLES] [KILLS]   (defaults 100000 300 5)
# Environment: TESSERA_BIN (dir of tracker and client; default
# build/release/bin), FSYNC (tracker --fsync for steps 1 and 3, default
# on), CATCHUP_FSYNC (the same for step 2, default off: with fsync a
# 2-core VM commits about 90 writes/s, so 100,000 writes would take 20
# minutes; without, about 900/s), KEEP=1 keeps the temp dir.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OPS=${1:-100000}
SAMPLES=${2:-300}
KILLS=${3:-5}

BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
for f in "$BIN/tracker" "$BIN/client"; do
    if ! [ -f "$f" ] || ! [ -x "$f" ]; then
        echo "bench: $f is not built (run make)" >&2
        exit 1
    fi
done
export TESSERA_BIN=$BIN
export BENCH_OPS=$OPS BENCH_SAMPLES=$SAMPLES BENCH_KILLS=$KILLS
export BENCH_FSYNC=${FSYNC:-on} BENCH_KEEP=${KEEP:-0}
export BENCH_CATCHUP_FSYNC=${CATCHUP_FSYNC:-off}
export PYTHONPATH=$ROOT/tests/system${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1

exec /usr/bin/python3 - <<'PY'
import os
import shutil
import signal
import sys
import tempfile
import threading
import time

import cluster as C
import tessera
from proto import MSG
from tessera import pstr, wait_until

OPS = int(os.environ["BENCH_OPS"])
SAMPLES = int(os.environ["BENCH_SAMPLES"])
KILLS = int(os.environ["BENCH_KILLS"])
FSYNC = os.environ["BENCH_FSYNC"]
CATCHUP_FSYNC = os.environ["BENCH_CATCHUP_FSYNC"]
KEEP = os.environ["BENCH_KEEP"] == "1"


def on_term(*_):
    raise SystemExit(130)


signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGINT, on_term)
rows = []


def say(*a):
    print(*a, flush=True)


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def lag(tmp):
    cl = C.Cluster(os.path.join(tmp, "lag"), 2,
                   extra_args=["--fsync", FSYNC]).start()
    assert cl.create_user(1, "lag")[0] == C.OK
    st, msg, tok = cl.login(1, "lag")
    assert st == C.OK, msg
    # the session must have reached tracker 2
    assert wait_until(lambda: cl.call(2, "LIST_GROUPS", tok)[0] == C.OK,
                      10, 0.01), "session not replicated"
    c1, c2 = C.Conn(cl.port(1), 5), C.Conn(cl.port(2), 5)
    lags, missed = [], 0
    for k in range(SAMPLES):
        g = "lag-%d" % k
        st, msg, _ = c1.call(MSG["CREATE_GROUP"], tok + pstr(g),
                             C.new_reqid())
        assert st == C.OK, msg
        t0 = time.monotonic()
        while True:
            st, _, _ = c2.call(MSG["LIST_REQUESTS"], tok + pstr(g),
                                  C.new_reqid())
            dt = time.monotonic() - t0
            if st == C.OK:
                lags.append(dt)
                break
            if dt > 2.0:
                missed += 1
                break
    c1.close()
    c2.close()
    ms = [x * 1000 for x in lags]
    rows.append(("replication lag p50", "%.2f ms" % pct(ms, 50)))
    rows.append(("replication lag p99", "%.2f ms" % pct(ms, 99)))
    rows.append(("replication lag max (%d samples, %d > 2 s)"
                 % (SAMPLES, missed), "%.2f ms" % max(ms or [0])))
    say("lag: %d samples, p50 %.2f ms p99 %.2f ms" % (len(ms), pct(ms, 50),
                                                       pct(ms, 99)))
    tessera.reap_all()


def load(cl, tid, n, conns=8, prefix="ld"):
    """n acknowledged CREATE_GROUPs on tracker tid, conns threads."""
    ws = []
    per = (n + conns - 1) // conns
    for k in range(conns):
        w = cl.writer("%s%d-%x" % (prefix, k, os.getpid() & 0xffff),
                      order=[tid],
                      pause=0, max_ops=per)
        w.start()
        ws.append(w)
    t0 = time.monotonic()
    last = t0
    while any(w.is_alive() for w in ws):
        time.sleep(1)
        if time.monotonic() - last > 15:
            last = time.monotonic()
            done = sum(len(w.acked_groups) for w in ws)
            say("  load: %d/%d writes acked (%.0f/s)"
                % (done, n, done / (last - t0)))
    for w in ws:
        w.join()
    done = sum(len(w.acked_groups) for w in ws)
    assert done >= n, [w.summary() for w in ws]
    return done, time.monotonic() - t0


def catch_up_time(cl, i, timeout=900):
    """Starts tracker i; seconds until its digest equals the others'."""
    t0 = time.monotonic()
    cl.t(i).start(timeout=60)
    end = t0 + timeout
    while time.monotonic() < end:
        # tracker 1's digest read each time: its housekeeping (expired
        # sessions and replies) may change it meanwhile
        s = cl.status(i)
        want = (cl.status(1) or {}).get("digest")
        if s and want and s.get("digest") == want:
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError("tracker %d did not catch up in %ss" % (i, timeout))


def catch_up(tmp):
    cl = C.Cluster(os.path.join(tmp, "catchup"), 2,
                   extra_args=["--fsync", CATCHUP_FSYNC]).start()
    cl.t(2).stop()
    say("catch-up: tracker 2 stopped; writing %d ops on tracker 1" % OPS)
    done, secs = load(cl, 1, OPS)
    rows.append(("write rate during load (1 tracker, fsync %s)"
                 % CATCHUP_FSYNC,
                 "%.0f ops/s" % (done / secs)))
    ops1 = cl.status(1).get("ops_logged", "?")
    say("  %d ops in %.1fs; tracker 1 keeps %s ops; restarting 2"
        % (done, secs, ops1))
    dt = catch_up_time(cl, 2)
    rows.append(("catch-up of %d missed ops, delta" % done, "%.2f s" % dt))
    say("  delta catch-up %.2fs" % dt)
    # snapshot: wait (bounded) until the op log is compacted, then wipe
    # (STATUS caches the op log size until the next op: one write per
    # poll makes it count again)
    polls = []

    def compacted_now():
        polls.append(1)
        load(cl, 1, 1, conns=1, prefix="cp%d-" % len(polls))
        return int((cl.status(1) or {}).get("ops_logged", "1") or 1) < \
            done // 2
    compacted = wait_until(compacted_now, 90, 5)
    cl.t(2).stop()
    cl.wipe(2)
    dt = catch_up_time(cl, 2)
    how = "snapshot" if compacted else "delta (op log not compacted)"
    rows.append(("catch-up of a wiped tracker (%d ops), %s" % (done, how),
                 "%.2f s" % dt))
    say("  wiped-dir catch-up %.2fs (%s)" % (dt, how))
    tessera.reap_all()


def pause(tmp):
    import nodes
    cl = C.Cluster(os.path.join(tmp, "pause"), 2,
                   extra_args=["--fsync", FSYNC]).start()
    nodes.create_users(cl.info, tmp, "pz")
    cl.converge()
    n = nodes.Node(cl.info, tmp, name="pz").start()
    n.login("pz")
    cur = 1             # the client starts on the first tracker
    pauses = []
    for k in range(KILLS):
        n.expect("create_group pre%d" % k, "group pre%d created" % k)
        cl.converge()
        cl.kill(cur)
        t0 = time.monotonic()
        n.expect("create_group post%d" % k, "group post%d created" % k,
                 timeout=60)
        pauses.append(time.monotonic() - t0)
        cl.restart(cur)
        cl.converge()
        cur = 3 - cur
    n.stop()
    rows.append(("client-visible pause on tracker kill p50 (%d kills)"
                 % KILLS, "%.3f s" % pct(pauses, 50)))
    rows.append(("client-visible pause on tracker kill max",
                 "%.3f s" % max(pauses)))
    say("pause: %s" % ", ".join("%.3f" % p for p in pauses))
    tessera.reap_all()


tmp = tempfile.mkdtemp(prefix="tessera-bench-cluster.")
rc = 0
try:
    say("bench/cluster.sh: OPS=%d SAMPLES=%d KILLS=%d fsync=%s "
        "(catch-up: %s) tmp=%s"
        % (OPS, SAMPLES, KILLS, FSYNC, CATCHUP_FSYNC, tmp))
    lag(tmp)
    pause(tmp)
    catch_up(tmp)
except (AssertionError, C.Unreachable) as e:
    say("bench failed: %s" % e)
    rc = 1
except SystemExit:
    say("bench interrupted; partial table")
    rc = 130
finally:
    tessera.reap_all()
    if not KEEP:
        shutil.rmtree(tmp, ignore_errors=True)
w = max([len(r[0]) for r in rows] + [10])
say("")
say("%-*s  %s" % (w, "cluster metric (2 trackers, loopback, fsync %s)"
                 % FSYNC, "value"))
for name, val in rows:
    say("%-*s  %s" % (w, name, val))
sys.exit(rc)
PY
