#!/usr/bin/python3
"""layout_check.py [ROOT] -- the source tree's shape rules, checked.

Rules (docs/ARCHITECTURE.md explains the layers):
  - no C source or header over MAX_FILE lines (tests included);
  - no function body over MAX_FUNC lines (from its opening brace at
    column 0 to its closing brace at column 0);
  - a folder includes only the folders below it (LAYERS);
  - no include circle between modules (a module is a .c with its .h:
    a.c/a.h including b.h and b.c/b.h including a.h is a circle).

Prints one line per violation and a summary; exits 1 if any rule is
broken.  Reads files only; takes well under a second.
"""

import os
import re
import sys

MAX_FILE = 800
WARN_FILE = 600
MAX_FUNC = 150

# folder -> the folders its files may include (itself always allowed)
LAYERS = {
    "common": set(),
    "net": {"common"},
    "shm": {"common"},
    "master": {"common"},
    "http": {"common"},
    "workers": {"common", "net", "shm", "master"},
    "tracker": {"common", "net", "shm", "master", "http"},
    "client": {"common", "net", "shm", "master", "http", "workers"},
}
TEST_DIRS = ["tests/unit", "tests/fuzz", "tests/tools"]

INC = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def c_files(root, folder):
    d = os.path.join(root, folder)
    if not os.path.isdir(d):
        return []
    out = []
    for dp, _, names in os.walk(d):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                out.append(os.path.relpath(os.path.join(dp, n), root))
    return sorted(out)


def func_lengths(lines):
    """(name, first line, length) of every function definition whose
    body opens with '{' at column 0 (this tree's style), or with a
    signature line at column 0 ending in '{'."""
    res = []
    i = 0
    n = len(lines)
    while i < n:
        ln = lines[i]
        opens = ln.rstrip() == "{"
        if not opens and re.match(r"^[A-Za-z_].*\)\s*\{\s*$", ln) \
                and not re.match(r"^(struct|union|enum|typedef)\b", ln) \
                and "=" not in ln:
            opens = True
        if not opens:
            i += 1
            continue
        # the function's name: nearest line above (or this one) with '('
        name = "?"
        for k in range(i, max(-1, i - 6), -1):
            m = re.match(r"^\**\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[k])
            if m:
                name = m.group(1)
                break
            m = re.search(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[k])
            if m and not lines[k].startswith((" ", "\t", "#", "/", "*")):
                name = m.group(1)
                break
        j = i + 1
        while j < n and not lines[j].startswith("}"):
            j += 1
        if name != "?":
            res.append((name, i + 1, j - i + 1))
        i = j + 1
    return res


def module_of(path):
    return os.path.splitext(path)[0]


def resolve(root, src, hdr, index):
    """The repo path of header hdr included from src: same folder first,
    else the one folder that has it (None for a system-like header)."""
    same = os.path.normpath(os.path.join(os.path.dirname(src), hdr))
    if os.path.exists(os.path.join(root, same)):
        return same
    return index.get(os.path.basename(hdr))


def sccs(graph):
    """Tarjan's strongly connected components of size > 1."""
    idx, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        idx[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in idx:
            visit(v)
    return out


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                           os.path.join(os.path.dirname(__file__), "..", ".."))
    bad = []
    big = []
    prod = []
    for f in LAYERS:
        prod += c_files(root, f)
    tests = []
    for f in TEST_DIRS:
        tests += c_files(root, f)
    index = {}
    for p in prod:
        if p.endswith(".h"):
            index.setdefault(os.path.basename(p), p)

    graph = {}
    for p in prod + tests:
        with open(os.path.join(root, p), errors="replace") as fh:
            lines = fh.read().split("\n")
        nl = len(lines) - (1 if lines and lines[-1] == "" else 0)
        if nl > MAX_FILE:
            bad.append("%s: %d lines (at most %d)" % (p, nl, MAX_FILE))
        elif nl > WARN_FILE:
            big.append(p)
        for name, at, length in func_lengths(lines):
            if length > MAX_FUNC:
                bad.append("%s:%d: %s() is %d lines (at most %d)"
                           % (p, at, name, length, MAX_FUNC))
        if p in tests:
            continue
        folder = p.split("/")[0]
        mod = module_of(p)
        for ln in lines:
            m = INC.match(ln)
            if not m:
                continue
            h = resolve(root, p, m.group(1), index)
            if h is None:
                continue
            hf = h.split("/")[0]
            if hf != folder and hf not in LAYERS[folder]:
                bad.append("%s: includes %s (%s/ may include only %s)"
                           % (p, h, folder,
                              ", ".join(sorted(LAYERS[folder])) or
                              "itself"))
            hm = module_of(h)
            if hm != mod:
                graph.setdefault(mod, set()).add(hm)
    for comp in sccs(graph):
        bad.append("include circle: %s" % " <-> ".join(comp))

    for b in bad:
        print(b)
    print("layout: %d files, %d over %d lines, %d violations"
          % (len(prod) + len(tests), len(big), WARN_FILE, len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
