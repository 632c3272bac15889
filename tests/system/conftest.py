"""
conftest.py -- pytest fixtures for the Tessera system tests.

Purpose: give each test a started tracker (or a factory for several) and a
client runner bound to it; at teardown every process started through
procs.Proc (tessera.Tracker, tessera.Client, nodes.Node) is stopped by
pid, whatever the test did.  No locks; each test
gets its own temp dir, free ports and data dir.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import tessera  # noqa: E402


def pytest_configure(config):
    for name in ("tracker", "client"):
        path = os.path.join(tessera.BIN, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise pytest.UsageError("%s not built (TESSERA_BIN=%s)"
                                    % (path, tessera.BIN))


def _shm_segments():
    try:
        return {n for n in os.listdir("/dev/shm") if n.startswith("tessera-")}
    except OSError:
        return set()


@pytest.fixture(scope="session", autouse=True)
def _unlink_leftover_segments():
    """Segments of nodes and trackers the tests SIGKILLed stay in /dev/shm
    (nobody was left to unlink them); remove the ones this session made,
    after every process it started is gone -- only those named after its
    own ports (tessera.SEGMENTS): another test session on the machine may
    have live ones."""
    before = _shm_segments()
    yield
    tessera.reap_all()
    for name in (_shm_segments() - before) & tessera.SEGMENTS:
        try:
            os.unlink(os.path.join("/dev/shm", name))
        except OSError:
            pass


@pytest.fixture(autouse=True)
def _reap_everything():
    yield
    tessera.reap_all()


@pytest.fixture
def tracker_factory(tmp_path):
    """tracker_factory(**kw) -> a started Tracker in its own sub dir."""
    n = [0]

    def make(start=True, **kw):
        n[0] += 1
        t = tessera.Tracker(tmp_path / ("trk%d" % n[0]), **kw)
        return t.start() if start else t
    return make


@pytest.fixture
def tracker(tracker_factory):
    return tracker_factory()


class Runner:
    """Runs client scripts against one tracker_info.txt."""

    def __init__(self, info, tmp_path):
        self.info = info
        self.tmp = tmp_path

    def run(self, lines, timeout=60):
        return tessera.run_client(self.info, lines, self.tmp, timeout)

    def ok(self, lines, timeout=60):
        """Runs lines; asserts exit 0; returns stdout lines."""
        rc, out, err = self.run(lines, timeout)
        assert rc == 0, "rc=%s out=%r\nstderr:\n%s" % (rc, out, err[-3000:])
        return out

    def as_user(self, user, lines, pw="pw", expect_rc=None):
        """Logs in as user, runs lines; returns the output after login."""
        rc, out, err = self.run(["login %s %s" % (user, pw)] + list(lines))
        assert out[:1] == ["logged in as %s" % user], (out, err[-3000:])
        if expect_rc is not None:
            assert rc == expect_rc, (rc, out, err[-3000:])
        return out[1:]

    def users(self, *names, pw="pw"):
        out = self.ok(["create_user %s %s" % (u, pw) for u in names])
        assert out == ["user %s created" % u for u in names], out

    def spawn(self):
        return tessera.Client(self.info, self.tmp)


@pytest.fixture
def cli(tracker, tmp_path):
    return Runner(tracker.info, tmp_path)
