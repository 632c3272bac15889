"""
test_groups.py -- every group command, its failures and permission rules,
owner succession and dissolution, through real ./client processes.
"""

import pytest


@pytest.fixture
def grp(cli):
    """Users o (owner of g), a, b, c, d; o has created g."""
    cli.users("o", "a", "b", "c", "d")
    assert cli.as_user("o", ["create_group g"]) == ["group g created"]
    return cli


def test_create_group(cli):
    cli.users("u1", "u2")
    rc, out, _ = cli.run(["login u1 pw", "create_group g1",
                          "create_group g1", "create_group " + "x" * 65,
                          "create_group bad/name", "create_group " + "y" * 64,
                          "list_my_groups"])
    assert out[:3] == ["logged in as u1", "group g1 created",
                       "error: group 'g1' already exists"]
    assert out[3].startswith("error: invalid group id"), out
    assert out[4].startswith("error: invalid group id"), out
    assert out[5:] == ["group %s created" % ("y" * 64),
                       "g1 owner=u1 members=1",
                       "%s owner=u1 members=1" % ("y" * 64)]
    assert rc == 2
    # another user cannot take the name either
    rc, out, _ = cli.run(["login u2 pw", "create_group g1"])
    assert out[1] == "error: group 'g1' already exists" and rc == 5


def test_join_group_paths(grp):
    rc, out, _ = grp.run(["login a pw", "join_group nosuch", "join_group g",
                          "join_group g", "list_my_groups"])
    assert out == ["logged in as a", "error: no such group 'nosuch'",
                   "join request sent to g",
                   "error: a request to join 'g' is already pending"]
    assert rc == 5
    rc, out, _ = grp.run(["login o pw", "join_group g"])
    assert out[1] == "error: already a member of 'g'" and rc == 5
    assert grp.as_user("o", ["accept_request g a"]) == ["a accepted into g"]
    rc, out, _ = grp.run(["login a pw", "join_group g"])
    assert out[1] == "error: already a member of 'g'" and rc == 5


def test_list_requests_in_order_owner_only(grp):
    for u in ("c", "a", "b"):
        assert grp.as_user(u, ["join_group g"]) == ["join request sent to g"]
    assert grp.as_user("o", ["list_requests g"]) == ["c", "a", "b"]
    # a pending requester is not a member
    rc, out, _ = grp.run(["login a pw", "list_requests g"])
    assert out[1] == "error: not a member of 'g'" and rc == 4
    # a member that is not the owner
    assert grp.as_user("o", ["accept_request g c"]) == ["c accepted into g"]
    rc, out, _ = grp.run(["login c pw", "list_requests g",
                          "accept_request g a", "reject_request g b"])
    assert out[1:] == ["error: only the owner of 'g' can do that"] * 3
    assert rc == 4
    # a stranger
    rc, out, _ = grp.run(["login d pw", "list_requests g",
                          "accept_request g a", "reject_request g b"])
    assert out[1:] == ["error: not a member of 'g'"] * 3
    assert rc == 4
    assert grp.as_user("o", ["list_requests g"]) == ["a", "b"]


def test_accept_and_reject(grp):
    for u in ("a", "b"):
        grp.as_user(u, ["join_group g"])
    rc, out, _ = grp.run(["login o pw", "accept_request g c",
                          "reject_request g ghost", "accept_request g a",
                          "accept_request g a", "reject_request g b",
                          "reject_request g b", "list_requests g",
                          "list_groups"])
    assert out == ["logged in as o",
                   "error: no pending request from 'c' for 'g'",
                   "error: no pending request from 'ghost' for 'g'",
                   "a accepted into g",
                   "error: no pending request from 'a' for 'g'",
                   "request of b to join g rejected",
                   "error: no pending request from 'b' for 'g'",
                   "g owner=o members=2"]
    assert rc == 3
    assert grp.as_user("a", ["list_my_groups"]) == ["g owner=o members=2"]
    assert grp.as_user("b", ["list_my_groups"]) == []
    # a rejected user may ask again
    assert grp.as_user("b", ["join_group g"]) == ["join request sent to g"]
    assert grp.as_user("o", ["list_requests g"]) == ["b"]


def test_commands_on_missing_group(grp):
    rc, out, _ = grp.run(["login o pw", "list_requests nog",
                          "accept_request nog a", "reject_request nog a",
                          "leave_group nog"])
    assert rc == 3
    for line in out[1:]:
        assert line in ("error: no such group 'nog'",
                        "error: not a member of 'nog'"), out


def test_leave_group_non_member_and_pending(grp):
    grp.as_user("a", ["join_group g"])
    rc, out, _ = grp.run(["login a pw", "leave_group g"])
    assert out[1] == "error: not a member of 'g'" and rc == 4
    rc, out, _ = grp.run(["login d pw", "leave_group g"])
    assert out[1] == "error: not a member of 'g'" and rc == 4
    assert grp.as_user("o", ["list_requests g"]) == ["a"]


def test_owner_succession_and_dissolution(grp):
    for u in ("a", "b", "c"):
        grp.as_user(u, ["join_group g"])
    # accept in join order: b, then a, then c (join order is member order)
    assert grp.as_user("o", ["accept_request g b", "accept_request g a",
                             "accept_request g c", "list_groups"]) == \
        ["b accepted into g", "a accepted into g", "c accepted into g",
         "g owner=o members=4"]
    grp.as_user("d", ["join_group g"])           # stays pending
    assert grp.as_user("o", ["leave_group g"]) == \
        ["left g; b is now the owner"]
    assert grp.as_user("a", ["list_groups"]) == ["g owner=b members=3"]
    rc, out, _ = grp.run(["login o pw", "list_requests g", "list_my_groups"])
    assert out[1:] == ["error: not a member of 'g'"] and rc == 4
    # the new owner has the owner's rights, the old one has none
    assert grp.as_user("b", ["list_requests g"]) == ["d"]
    # a non-owner leaving changes nothing else
    assert grp.as_user("c", ["leave_group g"]) == ["left g"]
    assert grp.as_user("b", ["leave_group g", "list_groups"]) == \
        ["left g; a is now the owner", "g owner=a members=1"]
    assert grp.as_user("a", ["list_requests g", "leave_group g",
                             "list_groups", "list_my_groups"]) == \
        ["d", "left g; group dissolved"]
    # the group is gone, its pending request with it
    rc, out, _ = grp.run(["login d pw", "list_my_groups", "leave_group g"])
    assert out[1:] == ["error: not a member of 'g'"] or \
        out[1:] == ["error: no such group 'g'"], out
    assert grp.as_user("d", ["create_group g", "list_requests g",
                             "list_groups"]) == \
        ["group g created", "g owner=d members=1"]


def test_dissolution_of_single_member_group(grp):
    grp.as_user("a", ["join_group g"])
    assert grp.as_user("o", ["leave_group g", "list_groups"]) == \
        ["left g; group dissolved"]
    rc, out, _ = grp.run(["login a pw", "join_group g"])
    assert out[1] == "error: no such group 'g'" and rc == 3
    # a new group of the same name starts with no requests from before
    assert grp.as_user("b", ["create_group g", "list_requests g"]) == \
        ["group g created"]


def test_list_groups_vs_list_my_groups(grp):
    assert grp.as_user("a", ["create_group ga", "create_group a0"]) == \
        ["group ga created", "group a0 created"]
    grp.as_user("b", ["create_group zz", "join_group g", "join_group ga"])
    grp.as_user("o", ["accept_request g b"])
    everything = ["a0 owner=a members=1", "g owner=o members=2",
                  "ga owner=a members=1", "zz owner=b members=1"]
    assert grp.as_user("c", ["list_groups", "list_my_groups"]) == everything
    assert grp.as_user("b", ["list_groups", "list_my_groups"]) == \
        everything + ["g owner=o members=2", "zz owner=b members=1"]
    assert grp.as_user("a", ["list_my_groups"]) == \
        ["a0 owner=a members=1", "ga owner=a members=1"]
