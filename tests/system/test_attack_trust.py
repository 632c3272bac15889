"""
test_attack_trust.py -- which trackers a client trusts: any tracker of
its cluster CA, whatever its tracker_info.txt says, and nothing else.

Purpose: a tracker is known by its certificate (chain to the cluster CA,
the tracker role, the id inside), not by the line it has in the client's
tracker_info.txt.  Through the real binaries:
  - clients whose tracker_info.txt lists only tracker 2, or the three
    trackers in reverse order, connect, log in, share and download from
    each other (the ticket a peer checks was signed by a tracker the
    peer's own list does not even name) and fail over when the tracker
    they use is SIGKILLed; the client's log names the tracker by the id
    its certificate proves;
  - "trackers" that present a node's self-signed certificate, a
    certificate of the cluster CA without the tracker role, or a tracker
    certificate of another cluster's CA are refused with a message
    naming the reason, and the client goes on with a real tracker (at
    login and when its tracker dies), within the normal failover time.
On the last release both fail: a client there checks the tracker's id
against its line number ("hostname mismatch"), so the subset and
reversed lists cannot connect at all.

No locks (the fake trackers are threads of the test process with their
own sockets); every wait is bounded; every process is stopped by pid (the
conftest fixture reaps the trackers, the nodes and the fake trackers,
which are in procs.REGISTRY).
"""

import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

import nodes as N
from cluster import Cluster
from procs import REGISTRY, wait_until
from proto import node_cert, pki_dir
from tessera import BIN, write_info

FAILOVER_S = 10         # a command after its tracker died: bound
LOGIN_S = 10            # a login past refused fakes: bound


def client_info(tmp_path, name, ports):
    """A tracker_info.txt of the client's own, in a directory without the
    cluster's pki/ (so the client is given --ca)."""
    d = tmp_path / ("info-" + name)
    d.mkdir()
    return write_info(str(d / "tracker_info.txt"), ports)


def node(cl, tmp_path, name, info):
    ca = os.path.join(pki_dir(cl.info), "ca.crt")
    return N.Node(info, tmp_path, name=name, extra=["--ca", ca]).start()


def timed(fn, *a, **kw):
    t0 = time.monotonic()
    fn(*a, **kw)
    return time.monotonic() - t0


# ---- 1: subsets and other orders ---------------------------------------------

def test_any_order_and_subset_of_trackers(tmp_path):
    cl = Cluster(tmp_path, 3, workers=1).start()
    N.create_users(cl.info, tmp_path, "alice", "bob")
    cl.converge()
    # alice knows only tracker 2; bob lists 3, 2, 1
    a = node(cl, tmp_path, "alice", client_info(tmp_path, "a", [cl.port(2)]))
    b = node(cl, tmp_path, "bob", client_info(
        tmp_path, "b", [cl.port(3), cl.port(2), cl.port(1)]))
    t_a = timed(a.login, "alice")
    t_b = timed(b.login, "bob")
    N.group_of(a, [("bob", b)], "tg")
    cl.converge()

    # bob's ticket comes from tracker 3, which alice's list does not name
    size = 6 * N.CHUNK + 123
    path, want = N.seed(a, tmp_path, "f1.bin", size, 11, group="tg")
    cl.converge()
    t0 = time.monotonic()
    dest = b.download("tg", "f1.bin", str(tmp_path / "out1.bin"))
    line = b.wait_download("tg", "f1.bin", 60)
    t_dl = time.monotonic() - t0
    assert line.startswith("[C]"), (line, b.stderr()[-3000:])
    assert N.sha1_file(dest) == want

    # bob's tracker (line 1 of his list) dies: he goes on with tracker 2
    cl.kill(3)
    t0 = time.monotonic()
    b.expect("create_group tg2", "group tg2 created", timeout=30)
    t_fo = time.monotonic() - t0
    assert t_fo < FAILOVER_S, t_fo
    # the log names the dead tracker by the id its certificate proved
    assert wait_until(lambda: "tracker 3 (127.0.0.1:%d) unreachable"
                      % cl.port(3) in b.stderr(), 5), b.stderr()[-3000:]

    # and the other way, a ticket from tracker 2 verified by bob's peer
    path2, want2 = N.seed(b, tmp_path, "f2.bin", 3 * N.CHUNK, 12, group="tg")
    cl.converge([1, 2])
    dest2 = a.download("tg", "f2.bin", str(tmp_path / "out2.bin"))
    line = a.wait_download("tg", "f2.bin", 60)
    assert line.startswith("[C]"), (line, a.stderr()[-3000:])
    assert N.sha1_file(dest2) == want2
    for n in (a, b):
        assert "hostname mismatch" not in n.stderr()
        assert "not a tracker" not in n.stderr()
    print("login: alice (list = [2]) %.2fs, bob (list = [3,2,1]) %.2fs; "
          "download %d B %.2fs; failover after SIGKILL %.2fs"
          % (t_a, t_b, size, t_dl, t_fo))


# ---- 2: what is not a tracker ------------------------------------------------

class FakeTracker(threading.Thread):
    """A TLS 1.3 server on 127.0.0.1 that shows (crt, key) and then says
    nothing; counts the handshakes clients began with it."""

    def __init__(self, crt, key):
        threading.Thread.__init__(self, daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ctx.load_cert_chain(crt, key)
        self.ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.ls.settimeout(0.2)
        self.port = self.ls.getsockname()[1]
        self.tried = 0
        self.completed = 0
        self.halt = threading.Event()
        REGISTRY.append(self)
        self.start()

    def run(self):
        while not self.halt.is_set():
            try:
                c, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            self.tried += 1
            c.settimeout(3)
            try:
                s = self.ctx.wrap_socket(c, server_side=True)
                # TLS 1.3: the client's verdict on our certificate arrives
                # after our side is done; a read shows it (alert or EOF)
                s.recv(1)
                self.completed += 1
                s.close()
            except (ssl.SSLError, OSError):
                c.close()

    def reap(self):                     # tessera.reap_all() calls this
        self.halt.set()
        self.join(5)
        self.ls.close()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True, capture_output=True,
                   timeout=30)


def ca_signed(pki, d, name, cn, san):
    """A certificate of the cluster CA in pki (its key is there) with
    the given CN and subjectAltName: what a leaked CA key, or a CA that
    also signs other roles, could make.  (crt, key)."""
    key, csr, crt, ext = (os.path.join(d, name + s)
                          for s in (".key", ".csr", ".crt", ".ext"))
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature\n"
                "extendedKeyUsage=serverAuth,clientAuth\n"
                "subjectAltName=%s\n" % san)
    openssl("req", "-new", "-newkey", "ed25519", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/O=Tessera/CN=" + cn)
    openssl("x509", "-req", "-in", csr, "-CA", os.path.join(pki, "ca.crt"),
            "-CAkey", os.path.join(pki, "ca.key"), "-set_serial", "4242",
            "-days", "2", "-extfile", ext, "-out", crt)
    return crt, key


def other_cluster_tracker(tmp_path):
    """tracker-1.crt/.key of another cluster, made by the real tracker
    (--init-pki): a genuine tracker certificate, of the wrong CA."""
    d = tmp_path / "other-cluster"
    d.mkdir()
    info = write_info(str(d / "tracker_info.txt"), [1, 2])
    subprocess.run([os.path.join(BIN, "tracker"), "--pki", str(d / "pki"),
                    "--init-pki", info], check=True, capture_output=True,
                   timeout=30)
    return (str(d / "pki" / "tracker-1.crt"), str(d / "pki" / "tracker-1.key"))


def test_fake_trackers_refused_and_failover(tmp_path):
    cl = Cluster(tmp_path, 2, workers=1).start()
    N.create_users(cl.info, tmp_path, "carol")
    cl.converge()
    pki = pki_dir(cl.info)
    d = str(tmp_path / "fakes")
    os.makedirs(d)
    f_node = FakeTracker(*node_cert(d, "selfsigned"))
    f_role = FakeTracker(*ca_signed(pki, d, "noderole", "tessera-node",
                                    "DNS:tessera-node"))
    f_other = FakeTracker(*other_cluster_tracker(tmp_path))
    order = [f_node.port, cl.port(1), f_role.port, f_other.port, cl.port(2)]
    c = node(cl, tmp_path, "carol", client_info(tmp_path, "c", order))

    # login: the fake on line 1 is refused, tracker 1 answers
    t_login = timed(c.login, "carol")
    assert t_login < LOGIN_S, t_login
    c.expect("create_group cg", "group cg created")
    # tracker 1 dies: the two fakes after it are refused, tracker 2 answers
    cl.kill(1)
    t0 = time.monotonic()
    c.expect("create_group cg2", "group cg2 created", timeout=30)
    t_fo = time.monotonic() - t0
    assert t_fo < FAILOVER_S, t_fo
    out = c.cmd("list_my_groups")
    assert any(l.startswith("cg2") for l in out), out

    err = c.stderr()
    want = {
        f_node: "self-signed (a node's certificate?), not issued by this "
                "cluster's CA",
        f_role: "a certificate of the cluster CA without the tracker role "
                "(CN \"tessera-node\"",
        f_other: "not issued by this cluster's CA",
    }
    for f, why in want.items():
        line = order.index(f.port) + 2      # write_info's comment is line 1
        assert f.tried >= 1, "the client never tried the fake on line %d" \
            % line
        head = ("tracker 127.0.0.1:%d (line %d of the tracker list): TLS: "
                "not a tracker of our cluster: peer certificate rejected: "
                % (f.port, line))
        hits = [l for l in err.splitlines() if head in l]
        assert hits and why in hits[0], (head, why, err[-4000:])
        # logged once per address, not once per attempt
        assert len(hits) == 1, hits
    print("login past a refused fake %.2fs; failover past two refused "
          "fakes %.2fs; fake handshakes: node %d, node-role %d, other CA %d"
          % (t_login, t_fo, f_node.tried, f_role.tried, f_other.tried))


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
