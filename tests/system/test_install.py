"""
test_install.py -- `make install` / `make uninstall` and the daemon
conventions they carry: installed names, --help and --version, man pages,
systemd units.

Purpose: `make install DESTDIR=<tmp> PREFIX=/usr` lays out both binaries
(as tessera-tracker and tessera-client), both man pages and both units;
the installed binaries name themselves as installed in --help and in
usage errors; the man pages lint clean (groff -ww, no warnings) and list
every option --help lists and every client command; the units run the
installed binaries and carry the hardening; systemd-analyze verify
accepts them when systemd is present; `make uninstall` removes every
file again.

No locks and no processes left behind (every command is run to its end
with a timeout).
"""

import os
import re
import shutil
import subprocess

import pytest

import tessera

REPO = tessera.REPO
MAKE_TIMEOUT_S = 300


def build_kind():
    """The BUILD the tests run against (release, asan, ...)."""
    parts = os.path.normpath(tessera.BIN).split(os.sep)
    if len(parts) >= 3 and parts[-1] == "bin" and parts[-3] == "build":
        return parts[-2]
    return "release"


def make(*args):
    r = subprocess.run(["make", "-s", "-C", REPO, "BUILD=" + build_kind()] +
                       list(args), capture_output=True, text=True,
                       timeout=MAKE_TIMEOUT_S)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


FILES = ["usr/bin/tessera-tracker", "usr/bin/tessera-client",
         "usr/share/man/man8/tessera-tracker.8",
         "usr/share/man/man1/tessera-client.1",
         "usr/lib/systemd/system/tessera-tracker@.service",
         "usr/lib/systemd/system/tessera-client.service"]


@pytest.fixture(scope="module")
def dest(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("destdir"))
    make("install", "DESTDIR=" + d, "PREFIX=/usr")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_layout_and_uninstall(tmp_path):
    d = str(tmp_path / "root")
    make("install", "DESTDIR=" + d, "PREFIX=/usr")
    for f in FILES:
        p = os.path.join(d, f)
        assert os.path.isfile(p), f
        mode = os.stat(p).st_mode & 0o777
        assert mode == (0o755 if "/bin/" in f else 0o644), (f, oct(mode))
    make("uninstall", "DESTDIR=" + d, "PREFIX=/usr")
    left = [os.path.join(r, n) for r, _, ns in os.walk(d) for n in ns]
    assert left == [], left


def test_installed_names(dest):
    trk = os.path.join(dest, "usr/bin/tessera-tracker")
    cli = os.path.join(dest, "usr/bin/tessera-client")
    r = subprocess.run([trk, "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: tessera-tracker "), r.stdout[:80]
    assert "usage: tracker" not in r.stdout
    r = subprocess.run([trk, "--workers", "999", "x", "1"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert r.stderr.startswith("tessera-tracker: bad --workers"), r.stderr
    assert "usage: tessera-tracker" in r.stderr
    r = subprocess.run([cli, "--help"], capture_output=True, text=True,
                       timeout=10)
    assert r.returncode == 0
    assert r.stdout.startswith("usage: tessera-client "), r.stdout[:80]
    for b, what in ((trk, "tracker"), (cli, "client")):
        r = subprocess.run([b, "--version"], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 0
        assert re.match(r"tessera %s \d+\.\d+\.\d+\n$" % what, r.stdout), \
            r.stdout


def man_text(path):
    """The rendered page, and groff's warnings (must be none)."""
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", path],
                       capture_output=True, timeout=20,
                       env=dict(os.environ, GROFF_NO_SGR="1"))
    txt = re.sub(r".\x08", "", r.stdout.decode("utf-8", "replace"))
    return txt.replace("\u2010", "-").replace("\u2212", "-"), \
        r.stderr.decode()


@pytest.mark.skipif(shutil.which("groff") is None, reason="no groff")
def test_man_pages(dest):
    trk = os.path.join(dest, "usr/bin/tessera-tracker")
    cli = os.path.join(dest, "usr/bin/tessera-client")
    for page, binary in (("man8/tessera-tracker.8", trk),
                         ("man1/tessera-client.1", cli)):
        txt, warn = man_text(os.path.join(dest, "usr/share/man", page))
        assert warn == "", warn
        name = os.path.basename(binary)
        assert re.search(r"NAME\s+%s " % name, txt), txt[:300]
        for sect in ("SYNOPSIS", "OPTIONS", "SIGNALS", "EXIT STATUS",
                     "FILES"):
            assert sect in txt, (page, sect)
        helptext = subprocess.run([binary, "--help"], capture_output=True,
                                  text=True, timeout=10).stdout
        opts = set(re.findall(r"(--[a-z][a-z0-9-]+)", helptext))
        assert len(opts) > 8
        missing = sorted(o for o in opts if o not in txt)
        assert missing == [], (page, missing)
    # every client command of the command tables is documented
    cmds = []
    for src in ("client/cli_cmds.c", "client/cli_files.c"):
        with open(os.path.join(REPO, src)) as f:
            cmds += re.findall(r'^\s*\{ "([a-z_]+)", "', f.read(), re.M)
    assert "download_file" in cmds and "login" in cmds
    txt, _ = man_text(os.path.join(dest, "usr/share/man/man1/"
                                   "tessera-client.1"))
    assert [c for c in cmds if c not in txt] == []
    # every exit code of cli_exit.h is in the page
    with open(os.path.join(REPO, "client/cli_exit.h")) as f:
        codes = re.findall(r"CLI_EXIT_\w+\s*=\s*(\d+)", f.read())
    assert len(codes) >= 10
    for c in codes:
        assert re.search(r"^\s+%s(\s|$)" % c, txt, re.M), c


HARDENING = {"ProtectSystem": "strict", "NoNewPrivileges": "yes",
             "PrivateTmp": "yes", "DynamicUser": "yes",
             "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
             "SystemCallFilter": "@system-service",
             "ExecReload": "/bin/kill -HUP $MAINPID",
             "KillSignal": "SIGTERM"}


def unit_keys(path):
    keys = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(("#", "[")):
                k, _, v = line.partition("=")
                keys.setdefault(k, []).append(v)
    return keys


def test_units(dest):
    sysd = os.path.join(dest, "usr/lib/systemd/system")
    for unit, binary in (("tessera-tracker@.service", "tessera-tracker"),
                         ("tessera-client.service", "tessera-client")):
        k = unit_keys(os.path.join(sysd, unit))
        exe = k["ExecStart"][0].split()[0]
        assert exe == "/usr/bin/" + binary, exe
        assert os.access(os.path.join(dest, exe.lstrip("/")), os.X_OK)
        for key, want in HARDENING.items():
            assert k.get(key) == [want], (unit, key, k.get(key))
        assert k.get("ProtectHome", ["no"])[0] in ("yes", "read-only")
        assert k["StateDirectory"][0].startswith("tessera")
        assert "@BINDIR@" not in open(os.path.join(sysd, unit)).read()
        # every option the unit passes is one the binary knows
        for o in re.findall(r"(--[a-z-]+)", k["ExecStart"][0]):
            h = subprocess.run([os.path.join(dest, exe.lstrip("/")),
                                "--help"], capture_output=True, text=True,
                               timeout=10).stdout
            assert o in h, (unit, o)
    k = unit_keys(os.path.join(sysd, "tessera-tracker@.service"))
    assert k["ExecStart"][0].endswith(" %i"), "instance = tracker id"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="no systemd-analyze")
def test_units_verify(tmp_path):
    # installed under a real PREFIX (no DESTDIR) so ExecStart= exists
    pre = str(tmp_path / "pre")
    make("install", "PREFIX=" + pre)
    sysd = os.path.join(pre, "lib/systemd/system")
    inst = str(tmp_path / "tessera-tracker@1.service")
    shutil.copy(os.path.join(sysd, "tessera-tracker@.service"), inst)
    for u in (inst, os.path.join(sysd, "tessera-client.service")):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", u],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stderr.strip() == "", r.stderr
