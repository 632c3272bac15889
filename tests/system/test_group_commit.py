"""
test_group_commit.py -- the tracker's group commit through the real
binary: write requests that arrive together share one tdb transaction,
and a write is acknowledged only once its commit is durable.

16 TLS connections of one user pipeline CREATE_GROUP requests at a
tracker (2 workers, fsync on) while the whole tracker is SIGKILLed --
supervisor and workers -- three times at moments chosen at random.  After
every restart each group whose OK reply was read must exist: an OK sent
before its batch committed would be lost by the kill.  The same workload
with --group-commit off must keep the same promise.  Every process is
stopped by pid (fixtures); every wait is bounded.
"""

import random
import socket
import threading
import time

import proto
import tessera

CONNS = 16
PIPELINE = 8
# one user creates thousands of groups: past its owned-groups quota
ARGS = ["--quota", "user-groups=off"]


def _writer(port, tok, tag, acked, bad, stop):
    """Pipelines CREATE_GROUP on one link until stop or the link dies;
    adds the groups answered OK to acked, any answer but OK or "try
    again" to bad."""
    try:
        r = proto.Raw(port)
    except (OSError, proto.Unreachable):
        return
    n = 0
    try:
        while not stop.is_set():
            sent = {}
            for _ in range(PIPELINE):
                n += 1
                r.reqid += 1
                g = "%s-%d" % (tag, n)
                sent[r.reqid] = g
                r.sock.sendall(proto.frame(proto.MSG["CREATE_GROUP"],
                                           tok + proto.pstr(g), r.reqid))
            for _ in range(PIPELINE):
                _, rid, st, msg, _ = proto.read_reply(r.sock, timeout=10)
                if st == proto.OK:
                    acked.add(sent[rid])
                elif st != proto.ERR_BUSY:
                    bad.append((sent[rid], st, msg))
    except (OSError, EOFError, socket.timeout, proto.Unreachable):
        pass
    finally:
        r.close()


def _login(port):
    r = proto.Raw(port)
    try:
        return r.login("gc", "pw")
    finally:
        r.close()


def _groups(port, tok):
    r = proto.Raw(port)
    try:
        st, msg, groups = r.list_groups(tok)
        assert st == proto.OK, (st, msg)
        return {g for g, _, _ in groups}
    finally:
        r.close()


def _round(t, tok, rnd, acked, kill):
    """One burst from CONNS links; with kill, SIGKILL the whole tracker
    mid-burst.  Returns the groups acknowledged in this round."""
    stop = threading.Event()
    mine, bad = set(), []
    threads = [threading.Thread(target=_writer,
                                args=(t.port, tok, "r%dc%d" % (rnd, i), mine,
                                      bad, stop), daemon=True)
               for i in range(CONNS)]
    for th in threads:
        th.start()
    time.sleep(random.uniform(0.6, 1.4))
    if kill:
        t.kill(workers_too=True)
    stop.set()
    for th in threads:
        th.join(15)
        assert not th.is_alive(), "a writer did not stop"
    assert not bad, bad[:3]
    acked |= mine
    return mine


def _restart(t):
    n = tessera.Tracker(t.tmpdir, info=t.info, tid=t.tid,
                        data_dir=t.data_dir, workers=2, extra_args=ARGS)
    return n.start()


def test_acked_writes_survive_sigkill(tracker_factory):
    t = tracker_factory(workers=2, extra_args=ARGS)
    proto.new_user(t.port, "gc")
    acked = set()
    for rnd in range(3):
        tok = _login(t.port)
        mine = _round(t, tok, rnd, acked, kill=True)
        assert mine, "no write was acknowledged before the kill"
        t = _restart(t)
        tok = _login(t.port)
        have = _groups(t.port, tok)
        lost = acked - have
        assert not lost, "%d acknowledged writes lost, e.g. %s" % (
            len(lost), sorted(lost)[:5])
    # many writes in flight at once were taken
    assert len(acked) > CONNS * PIPELINE, len(acked)


def test_without_group_commit(tracker_factory):
    t = tracker_factory(workers=2, extra_args=ARGS + ["--group-commit", "off"])
    proto.new_user(t.port, "gc")
    tok = _login(t.port)
    acked = set()
    _round(t, tok, 0, acked, kill=False)
    assert acked
    assert acked <= _groups(t.port, tok)


def test_bad_option(tmp_path):
    t = tessera.Tracker(tmp_path, extra_args=["--group-commit", "maybe"])
    t.spawn(t.argv(), t.tmpdir)
    assert t.wait(10) == 2
    assert "--group-commit" in t.log()
