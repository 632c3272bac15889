"""
test_backup.py -- `tracker --backup` of a running tracker and `tracker
--restore` into a fresh data directory (docs/OPERATIONS.md).

Purpose: a 2-tracker cluster with users; tracker 1 is backed up while it
serves; more users are written after the backup; tracker 1 then loses
its data directory, is restored from the backup and restarted: it
converges with tracker 2 (equal STATUS digests), serves the users of the
backup and the later ones, and a write made on it afterwards replicates
(its new ops do not reuse the lost directory's seqs).  The backup alone
also serves: a one-tracker cluster started from a second restore logs
the backed-up users in.  Bad input: restore over an existing database,
a file that is not a tracker backup, both modes at once.

No locks; every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers).
"""

import os
import subprocess

from cluster import Cluster
from proto import OK
import tessera

CONV_S = 30


def trk(*args):
    return subprocess.run([os.path.join(tessera.BIN, "tracker")] +
                          list(args), capture_output=True, text=True,
                          timeout=30)


def test_backup_restore_converges(tmp_path):
    cl = Cluster(tmp_path / "cl", n=2).start()
    for i in range(5):
        st, msg, _ = cl.create_user(1, "early%d" % i)
        assert st == OK, msg
    cl.converge(None, CONV_S)
    bk = str(tmp_path / "t1.backup")
    r = trk("--backup", bk, "-d", cl.t(1).data_dir, cl.info, "1")
    assert r.returncode == 0, r.stderr
    assert "records" in r.stdout
    assert os.stat(bk).st_mode & 0o077 == 0, "backup readable by others"
    # tracker 1 kept serving while it was copied, and still does
    st, msg, _ = cl.create_user(1, "late1")
    assert st == OK, msg
    st, msg, _ = cl.create_user(2, "late2")
    assert st == OK, msg
    cl.converge(None, CONV_S)

    # the disk of tracker 1 is lost
    cl.kill(1)
    cl.wipe(1)
    r = trk("--restore", bk, "-d", cl.t(1).data_dir, cl.info, "1")
    assert r.returncode == 0, r.stderr
    r = trk("--restore", bk, "-d", cl.t(1).data_dir, cl.info, "1")
    assert r.returncode == 1 and "fresh data directory" in r.stderr, r
    cl.restart(1)
    d, st, took = cl.converge(None, CONV_S)
    print("restored tracker converged in %.2fs, digest %s" % (took, d))
    for u in ("early0", "early4", "late1", "late2"):
        st, msg, tok = cl.login(1, u)
        assert st == OK, (u, msg)
    # a write on the restored tracker reaches the other one
    st, msg, _ = cl.create_user(1, "after")
    assert st == OK, msg
    cl.converge(None, CONV_S)
    st, msg, _ = cl.login(2, "after")
    assert st == OK, msg

    # the backup by itself serves its users (a one-tracker cluster)
    solo_dir = str(tmp_path / "solo-data")
    r = trk("--restore", bk, "-d", solo_dir, cl.info, "1")
    assert r.returncode == 0, r.stderr
    solo = tessera.Tracker(tmp_path / "solo", workers=1,
                           data_dir=solo_dir).start()
    c = tessera.Raw(solo.port)
    node = tessera.pstr("127.0.0.1:1")
    st, msg, _ = c.request("LOGIN", tessera.pstr("early3") +
                           tessera.pstr("pw") + node)
    assert st == OK, msg
    st, msg, _ = c.request("LOGIN", tessera.pstr("late1") +
                           tessera.pstr("pw") + node)
    assert st != OK, "late1 was written after the backup"
    c.close()


def test_backup_bad_input(tmp_path):
    t = tessera.Tracker(tmp_path / "t", workers=1).start()
    # a file that is not a tracker database
    junk = tmp_path / "junk"
    junk.write_bytes(b"not a tdb\n" * 100)
    r = trk("--restore", str(junk), "-d", str(tmp_path / "fresh"), t.info,
            "1")
    assert r.returncode == 1 and "backup" in r.stderr, r
    assert not os.path.exists(tmp_path / "fresh" / "tracker.tdb")
    # a database of something else (a tdb without x/epoch)
    other = tmp_path / "other.tdb"
    subprocess.run(["tdbtool"], input="create %s\ninsert a b\nquit\n"
                   % other, capture_output=True, text=True, timeout=10)
    assert other.exists()
    r = trk("--restore", str(other), "-d", str(tmp_path / "fresh2"),
            t.info, "1")
    assert r.returncode == 1 and "not a tracker database" in r.stderr, r
    # no database to back up
    r = trk("--backup", str(tmp_path / "b"), "-d", str(tmp_path / "none"),
            t.info, "1")
    assert r.returncode == 1 and "cannot open" in r.stderr, r
    # both at once
    r = trk("--backup", "a", "--restore", "b", t.info, "1")
    assert r.returncode == 2 and "one of --backup, --restore" in r.stderr, r
    # an existing backup file is replaced whole, not appended to
    bk = tmp_path / "bk"
    bk.write_bytes(b"x" * 10)
    r = trk("--backup", str(bk), "-d", t.data_dir, t.info, "1")
    assert r.returncode == 0, r.stderr
    assert bk.read_bytes()[:10] != b"x" * 10
    assert not os.path.exists(str(bk) + ".tmp")
