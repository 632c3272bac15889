"""
test_burst.py -- 8 concurrent clients, 125 commands each, while one
trk-worker is SIGKILLed mid-burst.  Each client works on its own users
and groups, so a model predicts its exact output; clients must retry
transparently (same request id), so no write is lost or applied twice.
"""

import random
import threading
import time

import tessera

N_CLIENTS = 8
N_COMMANDS = 125


class Model:
    """Predicts the output of one client's script (all commands succeed)."""

    def __init__(self, tag, seed):
        self.rng = random.Random(seed)
        self.tag = tag
        self.users = ["%s%s" % (tag, x) for x in "abc"]
        self.groups = {}        # name -> {"members": [...], "pending": [...]}
        self.ngroups = 0
        self.cur = None
        self.script, self.expect = [], []

    def emit(self, cmd, *out):
        self.script.append(cmd)
        self.expect.extend(out)

    def mine(self, pred):
        return sorted(g for g, v in self.groups.items() if pred(g, v))

    def line(self, g):
        v = self.groups[g]
        return "%s owner=%s members=%d" % (g, v["members"][0],
                                           len(v["members"]))

    def options(self, left):
        cur, ops = self.cur, []
        if len(self.groups) < 12:
            ops.append(("create",))
        for g, v in self.groups.items():
            if cur not in v["members"] and cur not in v["pending"]:
                ops.append(("join", g))
            if cur in v["members"]:
                ops.append(("leave", g))
            if v["members"][0] == cur:
                ops.append(("list_requests", g))
                for u in v["pending"]:
                    ops.append(("accept", g, u))
                    ops.append(("accept", g, u))
                    ops.append(("reject", g, u))
        ops.append(("list_my",))
        if left >= 2:
            ops.append(("switch",))
        return ops

    def step(self, left):
        op = self.rng.choice(self.options(left))
        cur = self.cur
        if op[0] == "create":
            self.ngroups += 1
            g = "%sg%d" % (self.tag, self.ngroups)
            self.groups[g] = {"members": [cur], "pending": []}
            self.emit("create_group " + g, "group %s created" % g)
        elif op[0] == "join":
            self.groups[op[1]]["pending"].append(cur)
            self.emit("join_group " + op[1], "join request sent to " + op[1])
        elif op[0] == "list_requests":
            self.emit("list_requests " + op[1], *self.groups[op[1]]["pending"])
        elif op[0] == "accept":
            v = self.groups[op[1]]
            v["pending"].remove(op[2])
            v["members"].append(op[2])
            self.emit("accept_request %s %s" % (op[1], op[2]),
                      "%s accepted into %s" % (op[2], op[1]))
        elif op[0] == "reject":
            self.groups[op[1]]["pending"].remove(op[2])
            self.emit("reject_request %s %s" % (op[1], op[2]),
                      "request of %s to join %s rejected" % (op[2], op[1]))
        elif op[0] == "leave":
            g = op[1]
            v = self.groups[g]
            was_owner = v["members"][0] == cur
            v["members"].remove(cur)
            if not v["members"]:
                del self.groups[g]
                out = "left %s; group dissolved" % g
            elif was_owner:
                out = "left %s; %s is now the owner" % (g, v["members"][0])
            else:
                out = "left " + g
            self.emit("leave_group " + g, out)
        elif op[0] == "list_my":
            self.emit("list_my_groups",
                      *[self.line(g) for g in
                        self.mine(lambda g, v: cur in v["members"])])
        elif op[0] == "switch":
            other = self.rng.choice([u for u in self.users if u != cur])
            self.emit("logout", "logged out")
            self.emit("login %s pw" % other, "logged in as " + other)
            self.cur = other

    def build(self):
        for u in self.users:
            self.emit("create_user %s pw" % u, "user %s created" % u)
        self.cur = self.users[0]
        self.emit("login %s pw" % self.cur, "logged in as " + self.cur)
        while len(self.script) < N_COMMANDS:
            self.step(N_COMMANDS - len(self.script))
        assert len(self.script) == N_COMMANDS
        return self


def test_burst_with_worker_kill(tracker_factory, tmp_path):
    t = tracker_factory()
    models = [Model("b%d" % i, 1000 + i).build() for i in range(N_CLIENTS)]
    clients = [tessera.Client(t.info, tmp_path) for _ in models]
    outs = [[] for _ in clients]

    def reader(c, out):
        for raw in c.proc.stdout:
            out.append(raw.decode("utf-8", "replace").rstrip("\n"))

    readers = [threading.Thread(target=reader, args=(c, o), daemon=True)
               for c, o in zip(clients, outs)]
    for r in readers:
        r.start()
    before = t.worker_pids()
    assert len(before) == 2
    for c, m in zip(clients, models):
        c.send(m.script)
        c.proc.stdin.close()
    # kill a worker once the burst is well under way (bounded wait)
    total = sum(len(m.expect) for m in models)
    tessera.wait_until(lambda: sum(map(len, outs)) >= total // 3, 60, 0.002)
    done_at_kill = sum(map(len, outs))
    victim = before[0]
    tessera.kill_pid(victim)
    end = time.monotonic() + 120
    for c in clients:
        try:
            c.proc.wait(max(1, end - time.monotonic()))
        except Exception:
            pass
    for r in readers:
        r.join(max(1, end - time.monotonic()))
    assert done_at_kill < total, "the burst ended before the kill"
    for i, (c, out, m) in enumerate(zip(clients, outs, models)):
        rc, err = c.proc.returncode, c.stderr()
        if out != m.expect:
            diff = next((k for k in range(min(len(out), len(m.expect)))
                         if out[k] != m.expect[k]),
                        min(len(out), len(m.expect)))
            raise AssertionError(
                "client %d: output differs at line %d: got %r, expected %r"
                "\nstderr tail:\n%s" % (i, diff, out[diff:diff + 3],
                                        m.expect[diff:diff + 3],
                                        err[-2000:]))
        assert rc == 0, (i, rc, err[-2000:])
    assert tessera.wait_until(
        lambda: victim not in t.worker_pids() and
        len(t.worker_pids()) == 2, 2.0), (before, t.worker_pids())
    assert t.alive()
    assert t.stop() == 0
