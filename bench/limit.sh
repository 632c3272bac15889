#!/usr/bin/env bash
# limit.sh -- the data plane against the machine's limit, in ONE run.
#
# Each round runs, interleaved and after the same pause (so every item
# meets the same page-cache / memory state, see
# ../shared/bench/LIMIT-RESULTS.md section 2):
#   probe 1->1          the limit probe: receive + SHA1 + pwrite, no
#                       protocol (star -n 1 --send write --pipe), and the
#                       same with AES-128-GCM on every byte (--aead)
#   tessera 1->1        the notls build and the TLS build
#   probe 1->4          swarm -n 4 --send write, plain and --aead
#   tessera 1->4        notls and TLS
#   anchor 1->4         aria2 + opentracker (../shared/bench/anchor_swarm.sh)
#   tessera 1->16       TLS, only with N16=1 (aggregate throughput)
# then prints medians [min-max] of wall time, CPU-s (user+sys of the
# processes of the run: seeder and leechers with their workers; the
# probe's getrusage) and the PSS of leecher 1's node (the sum of
# smaps_rollup Pss over its processes, highest sample during the
# download), and the ratios ours/probe and ours/anchor.
#
# Tessera's clock runs from the download_file commands to the last
# verified file; starting the leecher nodes and logging in happen before
# it and are reported apart (setup_s).  The probe's clock includes its
# process start (it forks its receivers), as in LIMIT-RESULTS.md.
#
# Usage: bench/limit.sh            (`make bench` runs it)
# Environment: SIZE (default 1G), RUNS (rounds, default 3), PAUSE (seconds
#   before each item, default 5), N16=1 (add the 16-leecher run),
#   ANCHOR=no (skip aria2), ITEMS (the items to run, by the names of
#   the summary, e.g. ITEMS="plain4 tls4 probe4 probe4_aead"; default
#   all), TESSERA_BIN (default build/release/bin),
#   NOTLS_BIN (default build/notls/bin; its runs are skipped when not
#   built), KEEP=1 keeps the temp dir, LEECH_TIMEOUT (s, default 300).
#   With ITEMS, tls16 runs when named (no N16=1 needed), aria2 only when
#   anchor4 is named, and the probe is built only for a probe item
#   (e.g. ITEMS="tls4 tls16" for the 16-leecher scaling).  The summary
#   also prints CPU-s per GiB received (CPU-s / (leechers x SIZE)), which
#   the other load on a shared machine disturbs less than wall time.
#   PERF_OUT=DIR records each Tessera item's clocked span with perf(1)
#   (record -a -g at PERF_FREQ Hz, default 499, and stat of context
#   switches, migrations and page faults) into DIR/ITEM-rROUND.{data,stat}.
# Every process is stopped by pid; every wait is bounded.  The probe is
# built from ../shared/bench/limit_probe/probe.c when that is there, and
# skipped with a message when not.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/lib.sh"
BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
NOTLS=${NOTLS_BIN:-$ROOT/build/notls/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
case $NOTLS in /*) ;; *) NOTLS=$ROOT/$NOTLS ;; esac
SIZE=${SIZE:-1G}
RUNS=${RUNS:-3}
PAUSE=${PAUSE:-5}
N16=${N16:-0}
ANCHOR=${ANCHOR:-yes}
ITEMS=${ITEMS:-}
want() { [ -z "$ITEMS" ] || [[ " $ITEMS " == *" $1 "* ]]; } # ITEM: run it?
if [ -n "$ITEMS" ]; then
    want tls16 && N16=1
    want anchor4 || ANCHOR=no
fi
SHARED=
for d in "$ROOT/../shared/bench" "$ROOT/../../shared/bench"; do
    [ -d "$d" ] && { SHARED=$(cd "$d" && pwd); break; }
done

WORK=$(mktemp -d /tmp/tessera-limit.XXXXXX)
LB_PIDS=()
TRK_PID=
cleanup() {
    local p
    for p in "${LB_PIDS[@]}"; do lb_stop_pid "$p"; done
    [ "${KEEP:-0}" = 1 ] && echo "limit: files kept in $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$BIN/tracker" ] && [ -x "$BIN/client" ] || { lb_log "build first (make)"; exit 1; }
[ -x "$NOTLS/client" ] || { lb_log "no notls build in $NOTLS: TLS-off runs skipped"; NOTLS=; }
PROBE=
if [ -n "$ITEMS" ] && ! want probe1 && ! want probe1_aead && ! want probe4 && ! want probe4_aead; then
    :
elif [ -n "$SHARED" ] && [ -f "$SHARED/limit_probe/probe.c" ]; then
    if gcc -O2 -pthread -o "$WORK/probe" "$SHARED/limit_probe/probe.c" -lcrypto; then
        PROBE=$WORK/probe
    else
        lb_log "probe.c did not build: probe runs skipped"
    fi
else
    lb_log "no ../shared/bench/limit_probe/probe.c: probe runs skipped"
fi
[ -n "$SHARED" ] && [ -f "$SHARED/anchor_swarm.sh" ] || ANCHOR=no

SRC=$WORK/data.bin
lb_log "creating $SIZE of random data"
head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom > "$SRC" || exit 1
SRC_SHA1=$(sha1sum "$SRC" | awk '{print $1}')
MIB=$(( $(stat -c %s "$SRC") / 1048576 ))
if [ -n "$PROBE" ]; then
    "$PROBE" prep "$SRC" "$WORK/hashes" > /dev/null || PROBE=
    mkdir -p "$WORK/probe-out"
fi
RES=$WORK/results.tsv       # item wall_s status cpu_s pss_kB setup_s user_s

settle() { sync; sleep "$PAUSE"; }

probe_item() { # NAME ARGS...: one probe run -> a results row
    local name=$1 out w c u
    shift
    settle
    out=$(timeout 120 "$PROBE" run --timeout 100 "$@" "$SRC" "$WORK/hashes" \
        "$WORK/probe-out" 2>&1 | tail -1)
    w=$(sed -n 's/.*wall_s=\([0-9.]*\).*/\1/p' <<< "$out")
    c=$(awk '{for(i=1;i<=NF;i++){split($i,kv,"=");v[kv[1]]=kv[2]}
        printf "%.2f", v["seeder_user_s"]+v["seeder_sys_s"]+v["rx_user_s"]+v["rx_sys_s"]}' <<< "$out")
    u=$(awk '{for(i=1;i<=NF;i++){split($i,kv,"=");v[kv[1]]=kv[2]}
        printf "%.2f", v["seeder_user_s"]+v["rx_user_s"]}' <<< "$out")
    case $out in *verify=OK*) st=OK ;; *) st=FAIL ;; esac
    printf '%s\t%s\t%s\t%s\t0\t0\t%s\n' "$name" "${w:-0}" "$st" "${c:-0}" "${u:-0}" >> "$RES"
    lb_log "$name: ${w}s $st cpu=${c}s"
}

tessera_item() { # NAME BIN N: one Tessera run -> a results row
    local w st ver pss cpu setup user
    settle
    read -r w st ver pss cpu setup user < <(lb_tessera "$1-r$r" "$2" "$3")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$w" "$st" "$cpu" "$pss" "$setup" "$user" >> "$RES"
    lb_log "$1: ${w}s $st verified=$ver cpu=${cpu}s (user ${user}s) leecher-1 PSS=${pss} kB setup=${setup}s"
}

anchor_item() { # aria2 + opentracker, 1 -> 4
    local rdir=$WORK/anchor w
    settle
    mkdir -p "$rdir"
    RESULTS_DIR=$rdir bash "$SHARED/anchor_swarm.sh" swarm "$SIZE" 4 1 exit > "$rdir/out.log" 2>&1
    w=$(awk -F'\t' 'NR>1{l=$7; s=$6} END{print (s=="OK")?l:"NA"}' "$rdir/swarm.tsv" 2>/dev/null)
    rm -f "$rdir/swarm.tsv"
    [ -n "$w" ] && [ "$w" != NA ] && printf 'anchor4\t%s\tOK\t0\t0\t0\t0\n' "$w" >> "$RES"
    lb_log "anchor 1->4: ${w:-NA}s"
}

for ((r = 1; r <= RUNS; r++)); do
    lb_log "round $r of $RUNS"
    [ -n "$PROBE" ] && want probe1 && probe_item probe1 --shape star -n 1 --send write --pipe
    [ -n "$PROBE" ] && want probe1_aead && probe_item probe1_aead --shape star -n 1 --send write --pipe --aead
    [ -n "$NOTLS" ] && want plain1 && tessera_item plain1 "$NOTLS" 1
    want tls1 && tessera_item tls1 "$BIN" 1
    [ -n "$PROBE" ] && want probe4 && probe_item probe4 --shape swarm -n 4 --send write
    [ -n "$PROBE" ] && want probe4_aead && probe_item probe4_aead --shape swarm -n 4 --send write --aead
    [ -n "$NOTLS" ] && want plain4 && tessera_item plain4 "$NOTLS" 4
    want tls4 && tessera_item tls4 "$BIN" 4
    [ "$ANCHOR" = yes ] && want anchor4 && anchor_item
    [ "$N16" = 1 ] && want tls16 && tessera_item tls16 "$BIN" 16
done

# ---------------------------------------------------------------- summary
col() { # ITEM COLUMN: the OK rows' values
    awk -F'\t' -v it="$1" -v c="$2" '$1==it && $3=="OK"{print $c}' "$RES"
}
med() { col "$1" "$2" | lb_median | awk '{print $1}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if(a!="NA"&&b!="NA"&&b>0) printf "%.2f", a/b; else print "NA"}'; }

echo
echo "limit: $SIZE, $RUNS rounds, ${PAUSE}s pause before each item, $(date -u '+%F %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '  %-12s %-26s %-7s %-22s %-8s %-8s %s\n' item "wall s median [range]" "MiB/s" "CPU-s median [range]" "user s" "CPU-s/GiB" "PSS kB / setup s"
for it in probe1 probe1_aead plain1 tls1 probe4 probe4_aead plain4 tls4 anchor4 tls16; do
    [ -n "$(col "$it" 2)" ] || continue
    n=1; case $it in *4*) n=4 ;; *16) n=16 ;; esac
    w=$(med "$it" 2)
    extra=
    case $it in plain* | tls*) extra="$(med "$it" 5 | cut -d. -f1) / $(med "$it" 6)" ;; esac
    printf '  %-12s %-26s %-7s %-22s %-8s %-8s %s\n' "$it" "$(col "$it" 2 | lb_median)" \
        "$(awk -v w="$w" -v m="$MIB" -v n="$n" 'BEGIN{printf "%.0f", n*m/w}')" \
        "$(col "$it" 4 | lb_median)" "$(med "$it" 7)" \
        "$(awk -v c="$(med "$it" 4)" -v m="$MIB" -v n="$n" 'BEGIN{if(c!="NA"&&m>0) printf "%.2f", c*1024/(n*m); else print "NA"}')" \
        "$extra"
done
echo "ratios (medians):"
echo "  1->1 speed TLS off / probe       $(ratio "$(med probe1 2)" "$(med plain1 2)")   (targets: >= 1000 MiB/s off, >= 650 MiB/s TLS)"
echo "  1->1 speed TLS / probe AES       $(ratio "$(med probe1_aead 2)" "$(med tls1 2)")"
echo "  1->4 TLS off / probe             $(ratio "$(med plain4 2)" "$(med probe4 2)")   (target <= 1.15)"
p_x=$(awk -v a="$(med probe4_aead 2)" -v b="$(med probe4 2)" 'BEGIN{if(a!="NA"&&b!="NA") printf "%.3f", a-b; else print "NA"}')
o_x=$(awk -v a="$(med tls4 2)" -v b="$(med plain4 2)" 'BEGIN{if(a!="NA"&&b!="NA") printf "%.3f", a-b; else print "NA"}')
echo "  1->4 TLS extra ours / probe AES  $o_x s / $p_x s = $(ratio "$o_x" "$p_x")   (target <= 1.3)"
echo "  1->4 TLS / anchor                $(ratio "$(med tls4 2)" "$(med anchor4 2)")   (target <= 0.50)"
echo "  1->4 CPU-s TLS off / probe       $(ratio "$(med plain4 4)" "$(med probe4 4)")"
echo "  1->1 CPU-s TLS off / probe       $(ratio "$(med plain1 4)" "$(med probe1 4)")"
if [ -n "$(col tls16 2)" ]; then
    echo "  16 -> aggregate / 4-leecher      $(ratio "$(awk -v w="$(med tls16 2)" 'BEGIN{print 16/w}')" "$(awk -v w="$(med tls4 2)" 'BEGIN{print 4/w}')")   (target >= 0.80)"
fi
echo "  rows: $RES$([ "${KEEP:-0}" = 1 ] || echo ' (removed; KEEP=1 keeps it)')"
cp "$RES" "${LIMIT_TSV:-/dev/null}" 2>/dev/null || true
