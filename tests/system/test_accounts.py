"""
test_accounts.py -- accounts, sessions and the client's command line,
through real ./client processes in non-TTY mode against a real tracker.
"""

import tessera


def test_create_user_and_duplicate(cli):
    rc, out, _ = cli.run(["create_user alice pw1", "create_user alice pw2"])
    assert out == ["user alice created",
                   "error: user 'alice' already exists"]
    assert rc == 5


def test_invalid_user_ids(cli):
    bad = ["a" * 65, "bad/user", "user!", "semi;colon", "'two words'", "''"]
    rc, out, _ = cli.run(["create_user %s pw" % b for b in bad])
    assert rc == 2
    assert len(out) == len(bad), out
    for line in out:
        assert line.startswith("error: invalid user id"), out
    # the longest valid id and every allowed character are accepted
    good = ["b" * 64, "A-z_0.9"]
    assert cli.ok(["create_user %s pw" % g for g in good]) == \
        ["user %s created" % g for g in good]
    assert cli.ok(["login %s pw" % good[0]]) == ["logged in as " + good[0]]


def test_login_success_wrong_password_unknown_user(cli):
    cli.users("bob", pw="secret")
    rc, out, _ = cli.run(["login bob wrong", "login nobody secret",
                          "login bob secret"])
    assert out == ["error: wrong user id or password",
                   "error: wrong user id or password",
                   "logged in as bob"]
    assert rc == 4


def test_commands_before_login(cli):
    cmds = ["logout", "create_group g", "join_group g", "leave_group g",
            "list_requests g", "accept_request g u", "reject_request g u",
            "list_groups", "list_my_groups"]
    rc, out, _ = cli.run(cmds)
    assert rc == 4
    assert out == ["error: not logged in"] * len(cmds)


def test_logout_then_commands_fail(cli):
    cli.users("carol")
    rc, out, _ = cli.run(["login carol pw", "create_group cg", "logout",
                          "list_groups", "logout"])
    assert out == ["logged in as carol", "group cg created", "logged out",
                   "error: not logged in", "error: not logged in"]
    assert rc == 4


def test_same_user_on_two_clients(cli):
    cli.users("dave")
    first = cli.spawn()
    first.send(["login dave pw"])
    # the first client's output may only be flushed at exit; give it a
    # bounded moment to log in either way
    line = first.read_line(10)
    assert line in (None, "logged in as dave"), line
    second = cli.as_user("dave", ["create_group dg1", "list_my_groups"])
    assert second == ["group dg1 created", "dg1 owner=dave members=1"]
    # the first session is still valid after the second login
    first.send(["list_my_groups", "create_group dg2", "list_my_groups"])
    rc, out, err = first.finish(30)
    if line is None:
        out = out[1:] if out[:1] == ["logged in as dave"] else out
    assert out == ["dg1 owner=dave members=1", "group dg2 created",
                   "dg1 owner=dave members=1", "dg2 owner=dave members=1"], \
        (out, err[-2000:])
    assert rc == 0


def test_usage_on_wrong_argument_counts(cli):
    cmds = {
        "create_user": ["create_user", "create_user a", "create_user a b c"],
        "login": ["login", "login a", "login a b c"],
        "logout": ["logout x"],
        "create_group": ["create_group", "create_group a b"],
        "join_group": ["join_group"],
        "leave_group": ["leave_group a b"],
        "list_requests": ["list_requests"],
        "accept_request": ["accept_request g"],
        "reject_request": ["reject_request g u x"],
        "list_groups": ["list_groups x"],
        "list_my_groups": ["list_my_groups x"],
    }
    lines = [c for v in cmds.values() for c in v]
    rc, out, _ = cli.run(lines)
    assert rc == 2
    assert len(out) == len(lines), out
    for cmd, line in zip(lines, out):
        assert line.startswith("usage: " + cmd.split()[0]), (cmd, line)


def test_unknown_command(cli):
    rc, out, _ = cli.run(["frobnicate a b"])
    assert out == ["error: unknown command 'frobnicate' (try help)"]
    assert rc == 2


def test_help_lists_every_command(cli):
    rc, out, _ = cli.run(["help"])
    assert rc == 0
    text = "\n".join(out)
    for c in ("create_user", "login", "logout", "create_group",
              "join_group", "leave_group", "list_requests",
              "accept_request", "reject_request", "list_groups",
              "list_my_groups", "help", "exit"):
        assert c in text, c


def test_quoting(cli):
    out = cli.ok(['create_user q1 "pass word"',
                  "create_user q2 'it s'",
                  r'create_user q3 "a\"b\\c"',
                  "login q1 'pass word'",
                  'login q2 "it s"',
                  "login q3 'a\"b\\c'"])
    assert out == ["user q1 created", "user q2 created", "user q3 created",
                   "logged in as q1", "logged in as q2", "logged in as q3"]
    # unquoted, the password with a space is two arguments
    rc, out, _ = cli.run(["login q1 pass word"])
    assert rc == 2 and out[0].startswith("usage: login"), out


def test_exit_codes_comments_and_blank_lines(cli):
    rc, out, _ = cli.run(["# a comment", "", "   ", "  # indented comment",
                          "create_user eve pw", "", "login eve pw"])
    assert (rc, out) == (0, ["user eve created", "logged in as eve"])
    rc, out, _ = cli.run(["login eve pw", "join_group nosuch",
                          "create_group eg"])
    assert out == ["logged in as eve", "error: no such group 'nosuch'",
                   "group eg created"]
    assert rc == 3
    rc, out, _ = cli.run([])
    assert (rc, out) == (0, [])


def test_exit_command_stops_reading(cli):
    cli.users("frank")
    rc, out, _ = cli.run(["login frank pw", "exit", "create_group fg"])
    assert rc == 0
    assert out[0] == "logged in as frank"
    assert not any("fg" in l or l.startswith("error") for l in out), out
    assert cli.as_user("frank", ["list_my_groups"]) == []


def test_client_options(cli):
    import subprocess
    import os
    exe = os.path.join(tessera.BIN, "client")
    r = subprocess.run([exe, "-V"], capture_output=True, timeout=10)
    assert r.returncode == 0
    assert b"0.1.0" in r.stdout + r.stderr
    r = subprocess.run([exe, "-h"], capture_output=True, timeout=10)
    assert r.returncode == 0
    r = subprocess.run([exe], capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert b"usage" in (r.stdout + r.stderr).lower()
