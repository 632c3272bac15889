"""
test_console.py -- the tracker's stdin console: help, status, quit,
unknown and oversized lines.

Purpose: a real tracker (two of a cluster, so status has a peer and a
sync process to show) reads commands typed on its stdin; the answers go
to its stdout (the test's log file).  An unknown command and an absurd
line get an answer or are dropped and cost nothing: the tracker goes on
serving and answering.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers).
"""

import re

from cluster import Cluster
from procs import wait_until
from proto import OK, pstr, upload_frame


def test_console_commands(tmp_path):
    cl = Cluster(tmp_path / "cl", n=2).start()
    t = cl.t(1)
    t.send_stdin("help\n")
    assert wait_until(lambda: "commands:" in t.log(), 5), t.log()
    for c in ("help", "status", "quit"):
        assert re.search(r"^  %s " % c, t.log(), re.M), c
    t.send_stdin("  status  \n")
    assert wait_until(lambda: "connections:" in t.log(), 5), t.log()
    log = t.log()
    assert "tracker 1 at 127.0.0.1:%d, up " % cl.port(1) in log
    assert re.search(r"workers: 2 of 2 running; sync process: pid \d+",
                     log), log
    assert "trackers: 2; peers up: 2; leader: " in log
    assert "data: %s (fsync on)" % t.data_dir in log
    t.send_stdin("frobnicate\n")
    assert wait_until(lambda: "unknown command 'frobnicate' (try help)"
                      in t.log(), 5)
    # a line past the console's buffer is dropped, the next one works
    t.send_stdin("x" * 5000 + "\nstatus\n")
    assert wait_until(lambda: t.log().count("connections:") == 2, 5), \
        t.log()[-500:]
    assert cl.status(1) is not None
    t.send_stdin("quit\n")
    assert t.wait(10) == 0


def test_console_listings(tmp_path):
    cl = Cluster(tmp_path / "cl", n=2).start()
    for i in range(5):
        st, msg, _ = cl.create_user(2, "cu%d" % i)
        assert st == OK, msg
    st, msg, tok = cl.login(1, "cu0")
    assert st == OK, msg
    st, msg, _ = cl.call(1, "CREATE_GROUP", tok, pstr("cg"))
    assert st == OK, msg
    st, msg, _ = cl.call(1, "UPLOAD_FILE", b"", upload_frame(
        tok, "cg", "doc.txt", 100, b"\x11" * 20, [b"\x22" * 20]))
    assert st == OK, msg
    cl.converge(None, 30)
    t = cl.t(1)

    def said(text, timeout=5):
        return wait_until(lambda: text in t.log(), timeout)
    t.send_stdin("users\n")
    assert said("(5 users)"), t.log()[-800:]
    assert re.search(r"^cu0  created_ms=\d+ disabled=no$", t.log(), re.M)
    t.send_stdin("users cu2\n")
    assert said("(2 users)")
    tail = t.log().split("(5 users)")[1]
    assert "cu3  created_ms" in tail and "cu1  created" not in tail
    t.send_stdin("groups\n")
    assert said("cg  owner=cu0 members=1 pending=0")
    t.send_stdin("sessions\n")
    assert said("user=cu0 node=127.0.0.1:1")
    t.send_stdin("files cg\n")
    assert said("doc.txt  size=100 chunks=1 uploader=cu0")
    t.send_stdin("files\n")
    assert said("usage: files GROUP [CURSOR]")
    t.send_stdin("files a/b\n")
    t.send_stdin("users cu1 cu2\n")
    assert said("bad cursor (one name from the last page)")
    assert cl.status(1) is not None
    t.send_stdin("quit\n")
    assert t.wait(10) == 0
