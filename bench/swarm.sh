#!/usr/bin/env bash
# swarm.sh -- Tessera swarm benchmark, and the BitTorrent anchor in the same run.
#
# Workload (the same as ../shared/bench/anchor_swarm.sh): one seeder, N
# leechers, one random file of SIZE bytes, 512 KiB chunks, everything on
# 127.0.0.1.  The clock starts just before the leechers are launched and
# stops when every leecher holds a verified copy (the final file appears
# only after the whole-file SHA1 verified: .part -> rename).  Each copy is
# then checked with sha1sum against the source.
#
# Usage: bench/swarm.sh [SIZE] [N] [RUNS] [ANCHOR]
#   SIZE    e.g. 256M, 1G (default 1G)      N     leechers (default 4)
#   RUNS    runs of each system (default 3)
#   ANCHOR  yes|no: also run aria2+opentracker, interleaved (default yes,
#           when ../shared/bench/anchor_swarm.sh exists)
# Environment: TESSERA_BIN (dir of tracker/client, default build/release/bin),
#   NOTLS_BIN (dir of a `make BUILD=notls` build: when set, every round
#   also runs that build, so TLS on and off are compared in one run),
#   KEEP=1 keeps the temp dir.  Every process is stopped by pid; every wait
#   is bounded (LEECH_TIMEOUT, default 300 s).
#   HTTP_POLL=1: every round also runs Tessera with a dashboard's load on
#   the HTTP endpoints (bench/http_poll.py: leecher 1's API, chunk map and
#   /metrics, and the tracker's cluster view, every 200 ms), so the cost
#   of being watched is measured in the same run.
set -u -o pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
SIZE=${1:-1G}
N=${2:-4}
RUNS=${3:-3}
ANCHOR=${4:-yes}
ANCHOR_SH=$ROOT/../shared/bench/anchor_swarm.sh
LEECH_TIMEOUT=${LEECH_TIMEOUT:-300}
[ -x "$ANCHOR_SH" ] || [ -f "$ANCHOR_SH" ] || ANCHOR=no

WORK=$(mktemp -d /tmp/tessera-swarm.XXXXXX)
PIDS=()
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

. "$ROOT/bench/lib.sh"          # lb_stop_pid, lb_wait_port
stop_pid() { lb_stop_pid "$1"; }
cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
bytes_of() { numfmt --from=iec "$1"; }

wait_port() { lb_wait_port "$1"; }

# ---------------------------------------------------------------- one run
tessera_run() { # RUN [BIN] [POLL] -> prints "wall_s status verified pss"
    local run=$1
    local BIN=${2:-$BIN}
    local poll=${3:-0} poller=''
    local lport1; lport1=$(free_port)
    local rd=$WORK/t$run i
    mkdir -p "$rd"
    local tport; tport=$(free_port)
    echo "127.0.0.1:$tport" > "$rd/trackers.txt"
    local thttp; thttp=$(free_port)
    "$BIN/tracker" -d "$rd/trk" --kdf-iterations 1000 --http "127.0.0.1:$thttp" \
        "$rd/trackers.txt" 1 < /dev/null 2> "$rd/tracker.log" &
    local tpid=$!; PIDS+=("$tpid")
    wait_port "$tport" || die "tracker did not start: $(tail -3 "$rd/tracker.log")"

    # seeder: shares the file, keeps running (stdin stays open on a fifo)
    local sport; sport=$(free_port)
    mkfifo "$rd/seed.in"
    "$BIN/client" --keep-running -s "$rd/seed" "127.0.0.1:$sport" "$rd/trackers.txt" \
        < "$rd/seed.in" > "$rd/seed.out" 2> "$rd/seed.log" &
    local spid=$!; PIDS+=("$spid")
    exec 7> "$rd/seed.in"
    {
        echo "create_user seed pw"; echo "login seed pw"; echo "create_group g"
        echo "upload_file $SRC g"
    } >&7
    for ((i = 0; i < 600; i++)); do
        grep -q '^shared ' "$rd/seed.out" 2>/dev/null && break
        grep -q '^error' "$rd/seed.out" 2>/dev/null && die "seeder: $(cat "$rd/seed.out")"
        sleep 0.1
    done
    grep -q '^shared ' "$rd/seed.out" || die "seeder did not share the file"
    # leechers' accounts and memberships (setup, not timed)
    for ((i = 1; i <= N; i++)); do
        printf 'create_user l%d pw\nlogin l%d pw\njoin_group g\n' "$i" "$i" |
            timeout 30 "$BIN/client" -s "$rd/setup$i" "127.0.0.1:$(free_port)" \
                "$rd/trackers.txt" > /dev/null 2>&1 || die "leecher $i setup failed"
        echo "accept_request g l$i" >&7
    done
    sleep 0.3
    timeout 60 cat "$SRC" > /dev/null    # the seeder's file is warm, as the anchor's

    local lpids=() t0 t1
    t0=${EPOCHREALTIME/./}
    for ((i = 1; i <= N; i++)); do
        mkdir -p "$rd/l$i/dl"
        local lp; lp=$(free_port); [ "$i" = 1 ] && lp=$lport1
        printf 'login l%d pw\ndownload_file g data.bin %s\n' "$i" "$rd/l$i/dl" |
            "$BIN/client" --keep-running -s "$rd/l$i/state" "127.0.0.1:$lp" \
                "$rd/trackers.txt" > "$rd/l$i.out" 2> "$rd/l$i.log" &
        lpids[i]=$!; PIDS+=("${lpids[i]}")
    done
    if [ "$poll" = 1 ]; then
        /usr/bin/python3 "$ROOT/bench/http_poll.py" --interval 0.2 \
            --node "127.0.0.1:$((lport1 + 1000))" --node-key "$rd/l1/state/http-api.key" \
            --tracker "127.0.0.1:$thttp" --tracker-key "$rd/trk/http-api.key" \
            --seconds "$LEECH_TIMEOUT" > "$rd/poll.out" 2>&1 &
        poller=$!; PIDS+=("$poller")
    fi
    local status=OK all deadline=$((t0 + LEECH_TIMEOUT * 1000000))
    while :; do
        all=1
        for ((i = 1; i <= N; i++)); do [ -f "$rd/l$i/dl/data.bin" ] || all=0; done
        [ "$all" = 1 ] && break
        [ "${EPOCHREALTIME/./}" -gt "$deadline" ] && { status=TIMEOUT; break; }
        sleep 0.01
    done
    t1=${EPOCHREALTIME/./}
    local pss=0 p
    for p in $(pgrep -P "${lpids[1]}" 2>/dev/null) "${lpids[1]}"; do
        for q in $p $(pgrep -P "$p" 2>/dev/null); do
            v=$(awk '/^Pss:/{print $2}' "/proc/$q/smaps_rollup" 2>/dev/null)
            pss=$((pss + ${v:-0}))
        done
    done
    exec 7>&-
    [ -n "$poller" ] && { stop_pid "$poller"; log "poller: $(tail -1 "$rd/poll.out")"; }
    for ((i = 1; i <= N; i++)); do stop_pid "${lpids[i]}"; done
    stop_pid "$spid"; stop_pid "$tpid"
    PIDS=()
    local ok=0 s
    for ((i = 1; i <= N; i++)); do
        [ -f "$rd/l$i/dl/data.bin" ] || continue
        s=$(sha1sum "$rd/l$i/dl/data.bin" | awk '{print $1}')
        [ "$s" = "$SRC_SHA1" ] && ok=$((ok + 1))
    done
    [ "$status" = OK ] && [ "$ok" != "$N" ] && status=BADHASH
    [ "$status" = OK ] || { mkdir -p "$WORK/failed$run"; cp "$rd"/*.log "$rd"/*.out "$WORK/failed$run/" 2>/dev/null; }
    [ "${KEEP:-0}" = 1 ] || rm -rf "$rd"
    sync
    awk -v a="$t0" -v b="$t1" -v st="$status" -v ok="$ok" -v n="$N" -v pss="$pss" \
        'BEGIN{printf "%.3f %s %d/%d %d\n", (b-a)/1e6, st, ok, n, pss}'
}

anchor_run() { # -> prints wall seconds or NA
    local rdir=$WORK/anchor
    mkdir -p "$rdir"
    RESULTS_DIR=$rdir bash "$ANCHOR_SH" swarm "$SIZE" "$N" 1 exit > "$rdir/out.log" 2>&1
    local w
    w=$(awk -F'\t' 'NR>1{l=$7; s=$6} END{print (s=="OK")?l:"NA"}' "$rdir/swarm.tsv" 2>/dev/null)
    rm -f "$rdir/swarm.tsv"
    echo "${w:-NA}"
}

median() { sort -n | awk '{v[NR]=$1} END{if(NR==0){print "NA"; exit} if(NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'; }

# ---------------------------------------------------------------- main
[ -x "$BIN/tracker" ] && [ -x "$BIN/client" ] || die "build first (make)"
BYTES=$(bytes_of "$SIZE")
SRC=$WORK/data.bin
log "creating $SIZE of random data"
head -c "$BYTES" /dev/urandom > "$SRC" || die "cannot create $SRC"
SRC_SHA1=$(sha1sum "$SRC" | awk '{print $1}')

ours=() theirs=() plain=() polled=()
NOTLS_BIN=${NOTLS_BIN:-}
HTTP_POLL=${HTTP_POLL:-0}
for ((r = 1; r <= RUNS; r++)); do
    if [ "$HTTP_POLL" = 1 ]; then
        read -r w st ver pss < <(tessera_run "h$r" "$BIN" 1)
        log "tessera polled run $r: ${w}s $st verified=$ver"
        [ "$st" = OK ] && polled+=("$w")
        echo "$r $w $st $ver $pss" >> "$WORK/polled.tsv"
    fi
    if [ -n "$NOTLS_BIN" ]; then
        read -r w st ver pss < <(tessera_run "p$r" "$NOTLS_BIN")
        log "tessera TLS-off run $r: ${w}s $st verified=$ver"
        [ "$st" = OK ] && plain+=("$w")
        echo "$r $w $st $ver $pss" >> "$WORK/plain.tsv"
    fi
    if [ "$ANCHOR" = yes ]; then
        a=$(anchor_run); theirs+=("$a"); log "anchor run $r: ${a}s"
    fi
    read -r w st ver pss < <(tessera_run "$r")
    log "tessera run $r: ${w}s $st verified=$ver leecher-1 PSS=${pss} kB"
    [ "$st" = OK ] && ours+=("$w")
    echo "$r $w $st $ver $pss" >> "$WORK/tessera.tsv"
done
mo=$(printf '%s\n' "${ours[@]}" | median)
echo
echo "swarm: $SIZE to $N leechers, $RUNS runs (medians, wall seconds)"
printf '  tessera          %s s  (runs: %s)\n' "$mo" "$(cut -d' ' -f2 "$WORK/tessera.tsv" | tr '\n' ' ')"
if [ -n "$NOTLS_BIN" ]; then
    mp=$(printf '%s\n' "${plain[@]}" | median)
    printf '  tessera TLS off  %s s  (runs: %s)\n' "$mp" "$(cut -d' ' -f2 "$WORK/plain.tsv" | tr '\n' ' ')"
    awk -v a="$mo" -v b="$mp" 'BEGIN{if(a!="NA"&&b!="NA") printf "  TLS extra = %.2f s\n", a-b}'
fi
if [ "$HTTP_POLL" = 1 ]; then
    mh=$(printf '%s\n' "${polled[@]}" | median)
    printf '  tessera polled   %s s  (runs: %s)\n' "$mh" "$(cut -d' ' -f2 "$WORK/polled.tsv" | tr '\n' ' ')"
    awk -v a="$mh" -v b="$mo" 'BEGIN{if(a!="NA"&&b!="NA"&&b>0) printf "  HTTP polling every 200 ms: %+.1f %%\n", 100*(a-b)/b}'
fi
if [ "$ANCHOR" = yes ]; then
    ma=$(printf '%s\n' "${theirs[@]}" | grep -v NA | median)
    printf '  aria2+opentracker %s s  (runs: %s)\n' "$ma" "${theirs[*]}"
    awk -v a="$mo" -v b="$ma" 'BEGIN{if(a!="NA"&&b!="NA"&&b>0) printf "  ratio tessera/anchor = %.2f\n", a/b}'
fi
