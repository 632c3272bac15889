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
