"""
test_wanbed.py -- the WAN test bed (wanbed.py + tests/tools/wanemu.c)
measured against what it was told to emulate.

Purpose: ping RTT is twice the configured one-way delay, per pair
(jitter spreads it, and reorders only when told); one TCP stream runs at
the host's rate cap, and two senders share a receiver's download cap;
seeded loss drops the configured share of a UDP burst, the same packets
on a rerun with the same seed; a flood into a small queue is dropped at
the tail and the emulator's memory stays within the queue, and within
--max-mem when nothing else bounds it; a pair is cut, healed and slowed
at run time (the control file + SIGUSR2) and a bad control line is
refused while the emulator runs on; bad options are refused before
anything is made; every namespace and process is gone after the bed,
also when the test body raises; a SIGKILLed owner's emulator follows it
and its namespaces are swept by the next bed.  The emulator's CPU at the
TCP rate is printed, not asserted.

Locking: none.  Crash behaviour: every bed is a context manager (see
wanbed.py); a namespace left over by a killed run is swept by the next.
"""

import os
import statistics
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import wanbed  # noqa: E402
from wanbed import WanBed  # noqa: E402

WHY = wanbed.unsupported()
pytestmark = pytest.mark.skipif(WHY is not None, reason=WHY or "")


@pytest.fixture(autouse=True)
def _no_namespace_left():
    yield
    assert wanbed.our_namespaces() == []
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True,
                            text=True, timeout=10).stdout
    assert "tsr-%d-" % os.getpid() not in listed


def _wait_for(pred, timeout):
    """pred() within timeout seconds (polled), bounded."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


def _link(stats, src, dst):
    for ln in stats:
        if ln["ev"] == "link" and ln["src"] == src and ln["dst"] == dst:
            return ln
    return {"pkts": 0, "lost": 0}


def _host(stats, i):
    return [ln for ln in stats if ln["ev"] == "host" and ln["host"] == i][0]


def test_rtt_is_twice_the_one_way_delay_per_pair(tmp_path):
    # 0<->1 at 20 ms one way; 0<->2 at 5 ms; 1->2 at 30 ms, 2->1 at 2 ms
    # (the last two from a config file)
    conf = tmp_path / "wan.conf"
    conf.write_text("# pairs 1,2\nlink 1>2:delay=30ms\n"
                    "  link\t2>1:delay=2000us   # back\n")
    with WanBed(3, delay_ms=20, workdir=tmp_path,
                links=["0-2:delay=5ms"],
                emu_args=["--config", conf]) as bed:
        for dst, src, want in ((1, 0, 40), (2, 0, 10), (2, 1, 32)):
            r = bed.tool_json(src, "ping", bed.addr(dst), "--count", "15",
                              "--interval", "20")
            assert r["recv"] == 15, r
            med = statistics.median(r["rtt_ms"])
            print("ping h%d->h%d: configured %d ms, median %.2f ms, "
                  "min %.2f ms" % (src, dst, want, med, min(r["rtt_ms"])))
            assert min(r["rtt_ms"]) >= want - 0.1
            assert med <= want + 4


def test_one_tcp_stream_runs_at_the_rate_cap(tmp_path):
    cap = 50.0
    with WanBed(2, delay_ms=20, rate_mbit=cap, workdir=tmp_path) as bed:
        sink = bed.sink(1, "tcp-sink", 5001, "--bind", bed.addr(1))
        cpu0, t0 = bed.emu_cpu_s(), time.monotonic()
        snd = bed.tool(0, "tcp-send", bed.addr(1), 5001, "--secs", 3.5)
        samples = wanbed.result(sink, 20)["samples"]
        wanbed.result(snd, 10)
        cpu, wall = bed.emu_cpu_s() - cpu0, time.monotonic() - t0
        # the steady state: past slow start (1 s) to the end
        a = [s for s in samples if s[0] >= 1.0][0]
        b = samples[-1]
        rate = (b[1] - a[1]) * 8 / (b[0] - a[0]) / 1e6
        st = bed.stats()
        print("TCP at a %.0f Mbit/s cap, 40 ms RTT: %.2f Mbit/s steady; "
              "emulator CPU %.2f s over %.1f s (%.1f%%); up-queue drops %d"
              % (cap, rate, cpu, wall, 100 * cpu / wall,
                 _host(st, 0)["drop_up"]))
        assert abs(rate - cap) <= 0.1 * cap
        # the default queue: one BDP (cap x 40 ms), at least 4 MTU
        assert _host(st, 0)["up_bps"] == cap * 1e6
        assert _host(st, 0)["queue_bytes"] == max(int(cap * 1e6 / 8 * 0.04),
                                                  4 * 65000)
        # reverse direction carried only ACKs, nothing was lost by chance
        assert _link(st, 0, 1)["lost"] == 0


def _udp_burst(bed, src, dst, count, port=6001, interval=0.5, size=100,
               what="recv"):
    sink = bed.sink(dst, "udp-sink", port, "--bind", bed.addr(dst),
                    "--idle", 0.3)
    bed.tool_json(src, "udp-send", bed.addr(dst), port, "--count", count,
                  "--interval", interval, "--size", size)
    return wanbed.result(sink, 20)[what]


def test_jitter_spreads_delay_and_keeps_order_unless_told(tmp_path):
    # 0->1 and 1->0: 10 ms + uniform 0..8 ms each way; 0->2 may reorder
    with WanBed(3, delay_ms=10, jitter_ms=8, workdir=tmp_path,
                links=["0>2:reorder"]) as bed:
        r = bed.tool_json(0, "ping", bed.addr(1), "--count", "40",
                          "--interval", "10")
        rtt = r["rtt_ms"]
        in_order = _udp_burst(bed, 0, 1, 400, interval=0.25,
                              what="reordered")
        shuffled = _udp_burst(bed, 0, 2, 400, port=6002, interval=0.25,
                              what="reordered")
    print("jitter 0..8 ms each way: RTT %.1f..%.1f ms, median %.1f; "
          "reordered %d of 400 kept in order, %d of 400 with reorder"
          % (min(rtt), max(rtt), statistics.median(rtt), in_order, shuffled))
    assert r["recv"] == 40
    assert min(rtt) >= 20 - 0.1
    assert sorted(rtt)[int(0.9 * len(rtt))] <= 36 + 4   # at most 2 x 8 ms
    assert max(rtt) - min(rtt) >= 4             # it does spread
    assert 22 <= statistics.median(rtt) <= 33   # about 20 + 8
    # the emulator keeps the order; the kernel may swap a rare pair when
    # the emulator moves to another CPU between two writes into a TUN
    assert in_order <= 2
    assert shuffled >= 40


def test_seeded_loss_drops_its_share_reproducibly(tmp_path):
    n = 2000
    got = []
    for seed in (7, 7, 8):
        with WanBed(3, delay_ms=2, workdir=tmp_path, seed=seed,
                    links=["0>1:loss=5"]) as bed:
            recv = _udp_burst(bed, 0, 1, n, interval=0.25)
            if not got:                     # loss is per pair
                assert _udp_burst(bed, 0, 2, 200, port=6002,
                                  interval=0.25) == 200
            st = bed.stats()
        lost = _link(st, 0, 1)["lost"]
        print("seed %d: %d of %d datagrams lost (%.2f%%)"
              % (seed, n - recv, n, 100.0 * (n - recv) / n))
        assert lost == n - recv             # every loss is the emulator's
        assert 0.035 * n <= lost <= 0.065 * n
        got.append(lost)
    assert got[0] == got[1]                 # same seed, same fate
    assert got[0] != got[2]


def test_flood_is_dropped_at_the_tail_and_memory_stays_bounded(tmp_path):
    q = 64 * 1024
    # MTU 1500: the token buckets' depth (one MTU) is one packet here
    with WanBed(2, delay_ms=10, rate_mbit=5, queue="64K", mtu=1500,
                workdir=tmp_path) as bed:
        # 1000 x 1 KB in 0.25 s = 32 Mbit/s into a 5 Mbit/s cap
        recv = _udp_burst(bed, 0, 1, 1000, interval=0.25, size=1000)
        st = bed.stats()
    h0 = _host(st, 0)
    summary = st[-1]
    print("flood: %d of 1000 delivered, %d tail drops, mem peak %d"
          % (recv, h0["drop_up"], summary["mem_peak"]))
    assert h0["drop_up"] > 500
    assert recv == 1000 - h0["drop_up"]
    # the up queue, one bucket depth, what 5 Mbit/s puts in 10 ms of
    # flight and in up to 10 ms of a late wakeup on a busy machine, a
    # packet or two: far below the 1 MB offered
    assert summary["mem_peak"] <= q + 1500 + 5e6 / 8 * 0.020 + 2 * 1100


def test_two_senders_share_the_receivers_download_cap(tmp_path):
    # hosts 0 and 1 send 20 Mbit/s each (up caps 100) into host 2, whose
    # download is capped at 20: it gets 20, the rest drops at its queue
    with WanBed(3, delay_ms=5, up_mbit=100, down_mbit=100, mtu=1500,
                hosts={2: {"down_mbit": 20, "queue": "64K"}},
                workdir=tmp_path) as bed:
        sink = bed.sink(2, "udp-sink", 6003, "--bind", bed.addr(2),
                        "--idle", 0.3)
        # 1000-byte datagrams every 0.4 ms = 20 Mbit/s, for 1.2 s
        snd = [bed.tool(i, "udp-send", bed.addr(2), 6003, "--count", 3000,
                        "--interval", 0.4, "--size", 1000,
                        "--base", 100000 * i) for i in (0, 1)]
        for p in snd:
            wanbed.result(p, 20)
        r = wanbed.result(sink, 20)
        st = bed.stats()
    rate = r["bytes"] * 8 / r["secs"] / 1e6
    h = [_host(st, i) for i in range(3)]
    print("two 20 Mbit/s senders into a 20 Mbit/s download: %.2f Mbit/s "
          "received, %d down-queue drops" % (rate, h[2]["drop_down"]))
    assert abs(rate - 20) <= 2
    assert h[0]["drop_up"] == 0 and h[1]["drop_up"] == 0
    assert h[2]["drop_down"] > 1000
    assert r["recv"] + h[2]["drop_down"] == 6000     # no other loss


def test_memory_bound_drops_past_max_mem(tmp_path):
    # no rate caps, 50 ms of delay: the delay line would hold the whole
    # burst; --max-mem 32K holds it to 32 KiB
    with WanBed(2, delay_ms=50, mtu=1500, emu_args=["--max-mem", "32K"],
                workdir=tmp_path) as bed:
        recv = _udp_burst(bed, 0, 1, 400, interval=0.05, size=1000)
        st = bed.stats()
    h0, summary = _host(st, 0), st[-1]
    print("max-mem 32K: %d of 400 delivered, %d dropped for memory, "
          "peak %d" % (recv, h0["drop_mem"], summary["mem_peak"]))
    assert summary["mem_peak"] <= 32 * 1024
    assert h0["drop_mem"] > 100
    assert recv + h0["drop_mem"] == 400


def test_a_pair_is_cut_and_healed_at_run_time(tmp_path):
    """SIGUSR2 + the control file: a partition between host 0 and hosts
    1, 2 drops every packet between them (and only those: 1 and 2 still
    talk), a heal brings the pair back with its delay, a bad control line
    is refused with its reason while the emulator keeps running, and a
    delay change takes effect."""
    with WanBed(3, delay_ms=5, workdir=tmp_path) as bed:
        assert bed.tool_json(0, "ping", bed.addr(1), "--count", 5)["recv"] \
            == 5
        assert bed.partition([0], [1, 2]) == 2      # lines applied
        cut = bed.tool_json(0, "ping", bed.addr(1), "--count", 10,
                            "--wait", 0.5)
        assert cut["sent"] == 10 and cut["recv"] == 0, cut
        assert bed.tool_json(2, "ping", bed.addr(0), "--count", 5,
                             "--wait", 0.5)["recv"] == 0
        assert bed.tool_json(1, "ping", bed.addr(2), "--count", 5)["recv"] \
            == 5
        lost = _link(bed.stats(), 0, 1)["lost"]
        assert lost >= 10, lost
        bed.heal([0], [1, 2])
        back = bed.tool_json(0, "ping", bed.addr(1), "--count", 10)
        assert back["recv"] == 10 and 9 <= min(back["rtt_ms"]) < 30, back
        with pytest.raises(RuntimeError, match="bad host"):
            bed.set_links(["0-3:loss=100"])         # no host 3
        with pytest.raises(RuntimeError, match="bad loss"):
            bed.set_links(["0-1:loss=200"])
        assert bed.emu.poll() is None
        bed.set_links(["0-1:delay=40ms"])
        slow = bed.tool_json(0, "ping", bed.addr(1), "--count", 5)
        assert slow["recv"] == 5 and min(slow["rtt_ms"]) >= 79, slow


def test_bad_options_are_refused_before_anything_is_made(tmp_path):
    emu = os.path.join(wanbed.TOOLS, "wanemu")
    bad = tmp_path / "bad.conf"
    bad.write_text("host a,10.77.0.1/24\nhost b,10.77.0.2/24\n"
                   "link 0-1:delay=soon\n")
    for argv in (["--host", "tsr-x,10.77.0.1/24"],           # one host
                 ["--host", "a,10.77.0.1", "--host", "b,10.77.0.2/24"],
                 ["--host", "a,10.77.0.1/24,up=fast", "--host",
                  "b,10.77.0.2/24"],
                 ["--host", "a,10.77.0.1/24", "--host", "b,10.77.0.1/24"],
                 ["--link", "0-1:loss=150", "--host", "a,10.77.0.1/24"],
                 ["--host", "a,10.77.0.1/24x", "--host", "b,10.77.0.2/24"],
                 ["--host", "a,10.77.0.1/24", "--host", "b,10.77.0.2/24",
                  "--link", "0-2:delay=1ms"],                 # no host 2
                 ["--link", "x-1:delay=1ms"], ["--link", "0-1"],
                 ["--mtu", "100"], ["--mtu", "9000x"], ["--bogus", "1"],
                 ["--delay", "nan"], ["--loss", "inf"],
                 ["--host", "a,10.77.0.1/24,up=nanM"],
                 ["--config", str(bad)], ["--config", str(tmp_path / "no")]):
        r = subprocess.run([emu] + argv, capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (argv, r.stderr)
        assert r.stderr.startswith("wanemu: "), r.stderr


def test_teardown_when_the_test_body_fails_and_stale_sweep(tmp_path):
    # a namespace of a crashed earlier run: its owner pid is dead
    dead = subprocess.Popen(["true"])
    dead.wait(timeout=10)
    stale = "tsr-%d-b0-h0" % dead.pid
    subprocess.run(["ip", "netns", "add", stale], check=True, timeout=10)
    bed = WanBed(2, delay_ms=1, workdir=tmp_path)
    with pytest.raises(ZeroDivisionError):
        with bed:
            assert not os.path.exists("/run/netns/" + stale)
            child = bed.run(1, ["sleep", "60"])
            emu = bed.emu.pid
            assert len(wanbed.our_namespaces()) == 2
            1 / 0
    assert child.poll() is not None
    assert not wanbed._pid_alive(emu)
    assert wanbed.our_namespaces() == []
    # the emulator wrote its last stats as it went
    assert bed._stats_lines()[-1]["exiting"] is True


CRASHER = """
import os, signal, sys
sys.path.insert(0, %r)
from wanbed import WanBed
bed = WanBed(2, delay_ms=1, workdir=%r).start()
p = bed.run(1, ["sleep", "60"], stdout=-3, stderr=-3)   # DEVNULL
print(bed.emu.pid, p.pid, " ".join(bed.names), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_owner_is_swept_by_the_next_bed(tmp_path):
    # the test process dies by SIGKILL with a bed open: no teardown ran
    r = subprocess.run([sys.executable, "-c",
                        CRASHER % (os.path.dirname(__file__), str(tmp_path))],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == -9, r.stderr
    emu, sleeper, *names = r.stdout.split()
    # the emulator follows its parent (PR_SET_PDEATHSIG)
    assert _wait_for(lambda: not wanbed._pid_alive(int(emu)), 5)
    assert all(os.path.exists("/run/netns/" + n) for n in names)
    with WanBed(2, workdir=tmp_path):
        assert not any(os.path.exists("/run/netns/" + n) for n in names)
        assert _wait_for(lambda: not wanbed._pid_alive(int(sleeper)), 5)
