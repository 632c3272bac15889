"""
node_shm.py -- a read-only view of a client node's shm segment.

Purpose: NodeShm maps a node's segment (/dev/shm/tessera-node-<hash of
its state dir>, procs.node_segment) read-only and reads
the counters the client keeps there (chunks served per share, chunks
fetched per source, bytes fetched, claims and in-flight requests of a
download).  The struct offsets of that segment are not hard-coded: they
are taken from the real headers (workers/node_shm.h, shm/ts_shm.h) by
compiling a tiny offsetof() probe once per test session (layout()).

Locking: none; the segment is only read, so a value may be a moment old
or torn between two fields -- the tests poll until what they wait for
holds.

Crash behaviour: the probe lives in a temp dir removed at exit; a view
holds no lock, so a test that dies with one open harms nobody.
"""

import atexit
import mmap
import os
import shutil
import struct
import subprocess
import tempfile

from procs import node_segment
from tessera import REPO

# download states (NODE_DL_* of workers/node_shm.h)
DL_FREE, DL_ACTIVE, DL_DONE, DL_FAILED, DL_PAUSED = 0, 1, 3, 4, 5

_PROBE_FIELDS = [
    # (key, expression)
    ("hdr.ntables", "offsetof(ts_shm_hdr_sh_t, ntables)"),
    ("hdr.tables", "offsetof(ts_shm_hdr_sh_t, tables)"),
    ("tbl.size", "sizeof(ts_shm_table_sh_t)"),
    ("tbl.id", "offsetof(ts_shm_table_sh_t, id)"),
    ("tbl.entry_size", "offsetof(ts_shm_table_sh_t, entry_size)"),
    ("tbl.capacity", "offsetof(ts_shm_table_sh_t, capacity)"),
    ("tbl.offset", "offsetof(ts_shm_table_sh_t, offset)"),
    ("tables_max", "TS_SHM_TABLES_MAX_N"),
    ("T_STATS", "NODE_T_STATS"),
    ("T_SHARES", "NODE_T_SHARES"),
    ("T_DLS", "NODE_T_DLS"),
    ("st.active_uploads", "offsetof(node_stats_sh_t, active_uploads)"),
    ("st.queued", "offsetof(node_stats_sh_t, queued)"),
    ("st.paused", "offsetof(node_stats_sh_t, paused)"),
    ("st.bytes_up", "offsetof(node_stats_sh_t, bytes_up)"),
    ("st.bytes_down", "offsetof(node_stats_sh_t, bytes_down)"),
    ("st.chunks_up", "offsetof(node_stats_sh_t, chunks_up)"),
    ("st.chunks_down", "offsetof(node_stats_sh_t, chunks_down)"),
    ("st.hash_failures", "offsetof(node_stats_sh_t, hash_failures)"),
    ("st.reclaimed_claims", "offsetof(node_stats_sh_t, reclaimed_claims)"),
    ("st.haves_sent", "offsetof(node_stats_sh_t, haves_sent)"),
    ("st.fair_holds", "offsetof(node_stats_sh_t, fair_holds)"),
    ("sh.state", "offsetof(node_share_sh_t, state)"),
    ("sh.group", "offsetof(node_share_sh_t, group)"),
    ("sh.name", "offsetof(node_share_sh_t, name)"),
    ("sh.chunks_served", "offsetof(node_share_sh_t, chunks_served)"),
    ("sh.bytes_served", "offsetof(node_share_sh_t, bytes_served)"),
    ("dl.state", "offsetof(node_dl_sh_t, state)"),
    ("dl.waiting", "offsetof(node_dl_sh_t, waiting)"),
    ("dl.group", "offsetof(node_dl_sh_t, group)"),
    ("dl.name", "offsetof(node_dl_sh_t, name)"),
    ("dl.size", "offsetof(node_dl_sh_t, size)"),
    ("dl.nchunks", "offsetof(node_dl_sh_t, nchunks)"),
    ("dl.bytes_done", "offsetof(node_dl_sh_t, bytes_done)"),
    ("dl.chunks_done", "offsetof(node_dl_sh_t, chunks_done)"),
    ("dl.src", "offsetof(node_dl_sh_t, src)"),
    ("src.size", "sizeof(node_src_sh_t)"),
    ("src.addr", "offsetof(node_src_sh_t, addr)"),
    ("src.state", "offsetof(node_src_sh_t, state)"),
    ("src.failures", "offsetof(node_src_sh_t, failures)"),
    ("src.chunks", "offsetof(node_src_sh_t, chunks)"),
    ("src.bytes", "offsetof(node_src_sh_t, bytes)"),
    ("sources_n", "TS_NODE_SOURCES_N"),
    ("T_DLDATA", "NODE_T_DLDATA"),
    ("off.claims", "NODE_OFF_CLAIMS"),
    ("src.inflight", "offsetof(node_src_sh_t, inflight)"),
    ("src.pushed", "offsetof(node_src_sh_t, pushed)"),
    ("src.push_owner", "offsetof(node_src_sh_t, push_owner)"),
    ("off.maps", "NODE_OFF_MAPS"),
    ("bitmap_words", "NODE_BITMAP_WORDS"),
    ("T_RATE", "NODE_T_RATE"),
    ("rate.up_taken", "offsetof(node_rate_sh_t, up.taken_B)"),
    ("rate.down_taken", "offsetof(node_rate_sh_t, down.taken_B)"),
]

_layout = None
_probe_dir = None


def _cleanup_probe():
    if _probe_dir:
        shutil.rmtree(_probe_dir, ignore_errors=True)


def layout():
    """Field offsets of the node segment, from the real headers."""
    global _layout, _probe_dir
    if _layout is not None:
        return _layout
    _probe_dir = tempfile.mkdtemp(prefix="tessera-probe.")
    atexit.register(_cleanup_probe)
    src = os.path.join(_probe_dir, "probe.c")
    with open(src, "w") as f:
        f.write("#include <stddef.h>\n#include <stdio.h>\n"
                "#include \"ts_shm.h\"\n#include \"node_shm.h\"\n"
                "int main(void) {\n")
        for key, expr in _PROBE_FIELDS:
            f.write('    printf("%%s %%zu\\n", "%s", (size_t) (%s));\n'
                    % (key, expr))
        f.write("    return 0;\n}\n")
    exe = os.path.join(_probe_dir, "probe")
    inc = []
    for d in ("common", "net", "shm", "master", "workers"):
        inc += ["-I", os.path.join(REPO, d)]
    r = subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE"] + inc +
                       ["-o", exe, src], capture_output=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("shm layout probe did not compile:\n%s"
                             % r.stderr.decode(errors="replace"))
    out = subprocess.run([exe], capture_output=True, timeout=10,
                         check=True).stdout.decode()
    _layout = {k: int(v) for k, v in (l.split() for l in out.splitlines())}
    return _layout


class NodeShm:
    """Read-only view of the segment of the node whose state directory is
    state_dir (OSError if absent)."""

    def __init__(self, state_dir):
        self.path = os.path.join("/dev/shm", node_segment(state_dir))
        self.L = layout()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            size = os.fstat(fd).st_size
            self.m = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ)
        finally:
            os.close(fd)

    def close(self):
        self.m.close()

    def _u(self, off, fmt):
        return struct.unpack_from("<" + fmt, self.m, off)[0]

    def _str(self, off, maxlen):
        b = self.m[off:off + maxlen]
        return b.split(b"\0", 1)[0].decode("utf-8", "replace")

    def table(self, tid):
        L = self.L
        n = self._u(L["hdr.ntables"], "I")
        for i in range(min(n, L["tables_max"])):
            t = L["hdr.tables"] + i * L["tbl.size"]
            if self._u(t + L["tbl.id"], "I") == tid:
                return (self._u(t + L["tbl.offset"], "Q"),
                        self._u(t + L["tbl.entry_size"], "I"),
                        self._u(t + L["tbl.capacity"], "I"))
        raise AssertionError("no table %d in %s" % (tid, self.path))

    def stats(self):
        base, _, _ = self.table(self.L["T_STATS"])
        small = ("st.paused", "st.active_uploads", "st.queued")
        return {k[3:]: self._u(base + v, "I" if k in small else "Q")
                for k, v in self.L.items() if k.startswith("st.")}

    def rate_totals(self):
        """(bytes sent, bytes received) as the node's rate buckets
        counted them: every byte on a peer link, not whole chunks."""
        base, _, _ = self.table(self.L["T_RATE"])
        return (self._u(base + self.L["rate.up_taken"], "Q"),
                self._u(base + self.L["rate.down_taken"], "Q"))

    def _entries(self, tid, state_key):
        """(index, offset, state) of every non-FREE entry of table tid."""
        base, esz, cap = self.table(self.L[tid])
        for i in range(cap):
            e = base + i * esz
            st = self._u(e + self.L[state_key], "I")
            if st != 0:
                yield i, e, st

    def shares(self):
        """[{group, name, state, chunks_served, bytes_served}] non-FREE."""
        L = self.L
        out = []
        for _, e, st in self._entries("T_SHARES", "sh.state"):
            out.append({"state": st,
                        "group": self._str(e + L["sh.group"], 65),
                        "name": self._str(e + L["sh.name"], 256),
                        "chunks_served": self._u(e + L["sh.chunks_served"],
                                                 "Q"),
                        "bytes_served": self._u(e + L["sh.bytes_served"],
                                                "Q")})
        return out

    def find_dl(self, group, name):
        """Index of the non-FREE download group/name, or None."""
        L = self.L
        for i, e, _ in self._entries("T_DLS", "dl.state"):
            if self._str(e + L["dl.group"], 65) == group and \
                    self._str(e + L["dl.name"], 256) == name:
                return i
        return None

    def dl_claims(self, i):
        """Chunk claims of download i still held: [(chunk, owner word)]."""
        L = self.L
        e = self.table(L["T_DLS"])
        nch = self._u(e[0] + i * e[1] + L["dl.nchunks"], "I")
        base, esz, _ = self.table(L["T_DLDATA"])
        c0 = base + i * esz + L["off.claims"]
        return [(c, w) for c, w in
                ((c, self._u(c0 + 8 * c, "Q")) for c in range(nch)) if w]

    def dl_inflight(self, i):
        """Sum of the in-flight counts of download i's sources."""
        L = self.L
        base, esz, _ = self.table(L["T_DLS"])
        e = base + i * esz
        return sum(self._u(e + L["dl.src"] + k * L["src.size"]
                           + L["src.inflight"], "I")
                   for k in range(L["sources_n"]))

    def dl_src_views(self, i):
        """What download i knows of each of its sources: {addr: {"map":
        chunks its map shows, "pushed": chunk indices it pushed
        (PEER_HAVE), "push": 1 while it pushes to us, "inflight": our
        GETs to it now, "chunks": chunks we took from it}}."""
        L = self.L
        base, esz, _ = self.table(L["T_DLS"])
        e = base + i * esz
        nw = (self._u(e + L["dl.nchunks"], "I") + 63) // 64
        dbase, desz, _ = self.table(L["T_DLDATA"])
        out = {}
        for k in range(L["sources_n"]):
            s = e + L["dl.src"] + k * L["src.size"]
            if self._u(s + L["src.state"], "I") == 0:
                continue
            m0 = dbase + i * desz + L["off.maps"] + 8 * L["bitmap_words"] * k
            bits = sum(bin(self._u(m0 + 8 * w, "Q")).count("1")
                       for w in range(nw))
            out[self._str(s + L["src.addr"], 64)] = {
                "map": bits,
                "pushed": self._u(s + L["src.pushed"], "Q"),
                "push": int(self._u(s + L["src.push_owner"], "Q") != 0),
                "inflight": self._u(s + L["src.inflight"], "I"),
                "chunks": self._u(s + L["src.chunks"], "Q")}
        return out

    def dl_progress(self, i):
        """(state, bytes_done, size) of download i, cheaply."""
        L = self.L
        base, esz, _ = self._dls if hasattr(self, "_dls") else \
            self.table(L["T_DLS"])
        self._dls = (base, esz, 0)
        e = base + i * esz
        return (self._u(e + L["dl.state"], "I"),
                self._u(e + L["dl.bytes_done"], "Q"),
                self._u(e + L["dl.size"], "Q"))

    def downloads(self):
        """[{group, name, state, waiting, bytes_done, chunks_done,
        sources: {addr: {state, chunks, bytes, failures}}}] non-FREE."""
        L = self.L
        out = []
        for _, e, st in self._entries("T_DLS", "dl.state"):
            srcs = {}
            for k in range(L["sources_n"]):
                s = e + L["dl.src"] + k * L["src.size"]
                sst = self._u(s + L["src.state"], "I")
                if sst == 0:
                    continue
                srcs[self._str(s + L["src.addr"], 64)] = {
                    "state": sst,
                    "chunks": self._u(s + L["src.chunks"], "Q"),
                    "bytes": self._u(s + L["src.bytes"], "Q"),
                    "failures": self._u(s + L["src.failures"], "I")}
            out.append({"state": st,
                        "waiting": self._u(e + L["dl.waiting"], "I"),
                        "group": self._str(e + L["dl.group"], 65),
                        "name": self._str(e + L["dl.name"], 256),
                        "size": self._u(e + L["dl.size"], "Q"),
                        "bytes_done": self._u(e + L["dl.bytes_done"], "Q"),
                        "chunks_done": self._u(e + L["dl.chunks_done"], "I"),
                        "sources": srcs})
        return out
