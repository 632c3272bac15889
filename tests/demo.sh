#!/bin/bash
# tests/demo.sh -- the loopback demo (`make demo`): file sharing.
#
# Starts 2 trackers (a temp tracker_info.txt with free 127.0.0.1 ports,
# data dirs under a mktemp dir), 3 seeder nodes and 2 leecher nodes (each
# a ./client --keep-running whose stdin is a FIFO we write commands to and
# whose stdout goes to a file we read back).  Users and a group are set up
# through the client; a random file of DEMO_MIB MiB (default 400) is shared
# by the 3 seeders; both leechers download it at once while show_downloads
# progress lines are printed every 0.2 s; then every copy's SHA1 is checked
# against the original and a summary is printed (time, MiB/s, and the
# chunks each seeder served, read from the nodes' shm counters).  The
# web dashboards' URLs (tracker 1's cluster view and, where the client
# has an HTTP endpoint, leecher1's node view, each with its API key in
# the fragment) are printed before the download; when stdin is a
# terminal the cluster stays up after the summary until Enter.
#
# Every process is stopped by pid on exit (trap), whatever happened; every
# wait is bounded.  Environment: TESSERA_BIN (dir holding tracker and
# client; default build/release/bin), DEMO_MIB, KEEP=1 keeps the temp dir.
# Exit 0 only if every copy is identical.

set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${TESSERA_BIN:-$ROOT/build/release/bin}
case $BIN in /*) ;; *) BIN=$ROOT/$BIN ;; esac
for b in tracker client; do
    if ! [ -f "$BIN/$b" ] || ! [ -x "$BIN/$b" ]; then
        echo "demo: $BIN/$b is not built (run make)" >&2
        exit 1
    fi
done
MIB=${DEMO_MIB:-400}
PY=/usr/bin/python3
[ -x $PY ] || PY=python3

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-demo.XXXXXX")
PIDS=()            # every process we started, stopped by pid at exit
FDS=()             # FIFO write ends we hold open

cleanup() {
    local p i fd
    trap - EXIT INT TERM
    for fd in "${FDS[@]}"; do
        eval "exec $fd>&-" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for i in $(seq 50); do
        local alive=0
        for p in "${PIDS[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            echo "demo: pid $p did not stop; killing it" >&2
            kill -KILL "$p" 2>/dev/null
        fi
        wait "$p" 2>/dev/null
    done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "demo: files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "demo: $*" >&2
    exit 1
}
# a client that exits closes its stdin FIFO: writing to it then fails
# with EPIPE (and a message), not a SIGPIPE that ends the demo silently
trap '' PIPE

free_port() {
    $PY -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

now_ms() {
    date +%s%3N
}

# ---- trackers ---------------------------------------------------------------
TP1=$(free_port)
TP2=$(free_port)
while [ "$TP2" = "$TP1" ]; do TP2=$(free_port); done
INFO=$WORK/tracker_info.txt
printf '# demo trackers\n127.0.0.1:%s\n127.0.0.1:%s\n' "$TP1" "$TP2" >"$INFO"

# each tracker's HTTP endpoint (metrics, JSON API, the web dashboard)
HP1=$(free_port)
HP2=$(free_port)
while [ "$HP2" = "$HP1" ]; do HP2=$(free_port); done
HPORT=([1]=$HP1 [2]=$HP2)

start_tracker() {
    local id=$1 fd
    mkfifo "$WORK/tracker$id.stdin"
    "$BIN/tracker" -d "$WORK/tracker$id-data" --kdf-iterations 100000 \
        --http "127.0.0.1:${HPORT[$id]}" \
        "$INFO" "$id" <"$WORK/tracker$id.stdin" \
        >"$WORK/tracker$id.log" 2>&1 &
    PIDS+=($!)
    # keep its stdin open (EOF does not stop it, but "quit" would)
    exec {fd}>"$WORK/tracker$id.stdin"
    FDS+=("$fd")
}

echo "== starting 2 trackers on 127.0.0.1:$TP1 and 127.0.0.1:$TP2"
start_tracker 1
start_tracker 2
for id in 1 2; do
    ok=0
    for i in $(seq 150); do
        if grep -q "ready on" "$WORK/tracker$id.log" 2>/dev/null; then
            ok=1
            break
        fi
        sleep 0.1
    done
    [ $ok -eq 1 ] || { cat "$WORK/tracker$id.log" >&2;
                       die "tracker $id not ready within 15 s"; }
    grep "ready on" "$WORK/tracker$id.log" | sed 's/^/   | /'
done
# the dashboard URL carries the key in its fragment (#key=...), which the
# browser keeps to itself: it is never sent to the server
dash_url() {           # dash_url PORT KEYFILE
    local i
    for i in $(seq 50); do
        [ -s "$2" ] && break
        sleep 0.1
    done
    [ -s "$2" ] || return 1
    echo "http://127.0.0.1:$1/#key=$(cat "$2")"
}
TRK_URL=$(dash_url "$HP1" "$WORK/tracker1-data/http-api.key") ||
    TRK_URL="(no HTTP endpoint: $WORK/tracker1-data/http-api.key missing)"
echo "   dashboard of the cluster (tracker 1): $TRK_URL"
if [ -f "$WORK/pki/ca.crt" ]; then
    echo "   every link is TLS 1.3: cluster CA and tracker certificates made in"
    echo "   $WORK/pki/ ($(cd "$WORK/pki" && ls -- *.crt | tr '\n' ' '))"
fi

# ---- users ------------------------------------------------------------------
SEEDERS=(seeder1 seeder2 seeder3)
LEECHERS=(leecher1 leecher2)
ALL=("${SEEDERS[@]}" "${LEECHERS[@]}")

echo
echo "== creating users through the client: ${ALL[*]}"
port=$(free_port)
out=$(for u in "${ALL[@]}"; do echo "create_user $u pw-$u"; done |
      timeout 60 "$BIN/client" -s "$WORK/setup-node" "127.0.0.1:$port" \
          "$INFO" 2>>"$WORK/setup.log") || {
    echo "$out"; die "create_user failed"; }
echo "$out" | sed 's/^/   /'

# ---- nodes ------------------------------------------------------------------
declare -A NODE_FD NODE_OUT NODE_PORT NODE_MARK NODE_TRK
NODE_NPID=()

NODE_COUNT=0
# a node's own HTTP endpoint (its dashboard), where the client has one:
# the first leecher gets it
NODE_HTTP=""
if "$BIN/client" --help 2>&1 | grep -q -- '--http'; then
    NODE_HTTP=$(free_port)
fi
start_node() {
    local u=$1 port fd trk http=()
    port=$(free_port)
    if [ "$u" = leecher1 ] && [ -n "$NODE_HTTP" ]; then
        http=(--http "127.0.0.1:$NODE_HTTP")
    fi
    mkdir -p "$WORK/$u"
    mkfifo "$WORK/$u/stdin"
    # nodes alternate between the two trackers: the cluster keeps them in
    # one view (users, groups, files and sources replicate both ways)
    trk=$((NODE_COUNT % 2 + 1))
    NODE_COUNT=$((NODE_COUNT + 1))
    NODE_TRK[$u]=$trk
    # results and error lines in one file, in order; the log apart
    "$BIN/client" -s "$WORK/$u/state" -l warn --keep-running --tracker "$trk" \
        --log-file "$WORK/$u/err" "${http[@]}" "127.0.0.1:$port" "$INFO" \
        <"$WORK/$u/stdin" >"$WORK/$u/out" 2>&1 &
    PIDS+=($!)
    exec {fd}>"$WORK/$u/stdin"
    FDS+=("$fd")
    NODE_FD[$u]=$fd
    NODE_OUT[$u]=$WORK/$u/out
    NODE_PORT[$u]=$port
    NODE_MARK[$u]=0
    printf '   %-9s node on 127.0.0.1:%s (pid %s), tracker %s\n' "$u" "$port" "$!" "$trk"
}

# ncmd USER CMD [QUIET]: runs CMD on USER's node; its output lines go to
# stdout (prefixed unless QUIET).  A marker after it ("echo MARK", which
# prints MARK) tells where the output ends.
ncmd() {
    local u=$1 cmd=$2 quiet=${3:-} mark out n0 i
    NODE_MARK[$u]=$((NODE_MARK[$u] + 1))
    mark="zz-demo-mark-${NODE_MARK[$u]}"
    out=${NODE_OUT[$u]}
    n0=$(wc -l <"$out")
    printf '%s\necho %s\n' "$cmd" "$mark" >&"${NODE_FD[$u]}" || {
        tail -n 5 "$out" "$WORK/$u/err" 2>/dev/null | sed 's/^/   /' >&2
        die "$u: its client exited (stdin closed)"; }
    for i in $(seq 600); do
        if tail -n +$((n0 + 1)) "$out" | grep -qx "$mark"; then
            tail -n +$((n0 + 1)) "$out" | sed "/^$mark\$/,\$d" |
                grep -v '^notice: ' |
                if [ -n "$quiet" ]; then cat; else
                    sed "s/^/$(printf '%16s' '') /"; fi
            return 0
        fi
        sleep 0.05
    done
    die "$u: no answer to '$cmd' within 30 s (see $WORK/$u/err)"
}

# show USER CMD: prints the command as a prompt line, then its output
show() {
    printf '%16s %s\n' "$1@tessera>" "$2"
    ncmd "$1" "$2"
}

echo
echo "== starting 5 nodes (3 seeders, 2 leechers)"
for u in "${ALL[@]}"; do
    start_node "$u"
done
for u in "${ALL[@]}"; do
    show "$u" "login $u pw-$u"
done
LEECH_URL=""
if [ -n "$NODE_HTTP" ]; then
    LEECH_URL=$(dash_url "$NODE_HTTP" "$WORK/leecher1/state/http-api.key") ||
        LEECH_URL=""
fi
print_urls() {
    echo "   dashboard of the cluster:   $TRK_URL"
    if [ -n "$LEECH_URL" ]; then
        echo "   dashboard of leecher1:      $LEECH_URL"
    else
        echo "   (this client has no HTTP endpoint: no node dashboard)"
    fi
}
echo
echo "== dashboards (open them in a browser now to watch the transfer)"
print_urls

echo
echo "== a group, through the client"
show seeder1 "create_group demo"
for u in seeder2 seeder3 leecher1 leecher2; do
    show "$u" "join_group demo"
done
show seeder1 "list_requests demo"
for u in seeder2 seeder3 leecher1 leecher2; do
    show seeder1 "accept_request demo $u"
done
show leecher1 "list_groups"

# ---- the file -----------------------------------------------------------------
echo
echo "== making a random file of $MIB MiB"
mkdir -p "$WORK/share"
FILE=$WORK/share/movie.bin
head -c $((MIB * 1024 * 1024)) /dev/urandom >"$FILE" || die "no room"
ORIG=$(sha1sum "$FILE" | cut -d' ' -f1)
echo "   sha1 $ORIG"
for u in "${SEEDERS[@]}"; do
    show "$u" "upload_file $FILE demo"
done
show leecher1 "list_files demo"

# ---- both leechers download at once -----------------------------------------
echo
echo "== both leechers download it at once (show_downloads every 0.2 s)"
for u in "${LEECHERS[@]}"; do
    mkdir -p "$WORK/$u/downloads"
    show "$u" "download_file demo movie.bin $WORK/$u/downloads"
done
T0=$(now_ms)
finished=0
for i in $(seq 3000); do         # at most 600 s
    finished=1
    line=""
    for u in "${LEECHERS[@]}"; do
        l=$(ncmd "$u" "show_downloads" quiet | grep -F "] movie.bin" |
            head -n 1)
        line="$line$(printf '  %-8s %-58s' "$u" "${l:-(none)}")"
        case $l in "[C]"*|"[F]"*) ;; *) finished=0 ;; esac
    done
    printf '%6.1fs%s\n' "$(awk -v a="$(now_ms)" -v b="$T0" \
        'BEGIN { print (a - b) / 1000 }')" "$line"
    [ $finished -eq 1 ] && break
    sleep 0.2
done
T1=$(now_ms)
[ $finished -eq 1 ] || die "downloads did not finish within 600 s"

# ---- verify and summarize ---------------------------------------------------
echo
echo "== verifying every copy against the original ($ORIG)"
bad=0
for u in "${LEECHERS[@]}"; do
    f=$WORK/$u/downloads/movie.bin
    if [ -f "$f" ]; then
        s=$(sha1sum "$f" | cut -d' ' -f1)
    else
        s="(missing)"
    fi
    if [ "$s" = "$ORIG" ]; then
        printf '   %-9s %s  OK\n' "$u" "$s"
    else
        printf '   %-9s %s  MISMATCH\n' "$u" "$s"
        bad=1
    fi
done

ms=$((T1 - T0))
[ $ms -gt 0 ] || ms=1
echo
echo "== summary"
awk -v mib="$MIB" -v ms="$ms" 'BEGIN {
    printf "   %d MiB to each of 2 leechers in %.2f s: %.1f MiB/s in total\n",
        mib, ms / 1000, 2 * mib * 1000 / ms }'
# chunks each seeder served: the shares' counters in the nodes' shm
# segments, named after each node's state directory; offsets come from
# the real headers through tests/system/nodes.py.
args=()
for u in "${SEEDERS[@]}" "${LEECHERS[@]}"; do
    args+=("$u" "$WORK/$u/state")
done
ROOT=$ROOT $PY - "${args[@]}" <<'EOF' 2>/dev/null || echo "   (chunks per source: shm counters not readable)"
import os, sys
sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests/system"))
import nodes
a = sys.argv[1:]
for u, state in zip(a[::2], a[1::2]):
    s = nodes.NodeShm(state)
    served = sum(x["chunks_served"] for x in s.shares()
                 if x["name"] == "movie.bin")
    st = s.stats()
    print("   %-9s served %5d chunks of movie.bin   (node: %d chunks up, "
          "%d down, %d hash failures)" % (u, served, st["chunks_up"],
                                          st["chunks_down"],
                                          st["hash_failures"]))
    s.close()
EOF

# from a terminal, the cluster stays up for the dashboards until Enter
if [ -t 0 ]; then
    echo
    echo "== the cluster keeps running for the dashboards:"
    print_urls
    printf '   press Enter to stop everything... '
    read -r _ || true
fi

echo
echo "== stopping everything by pid"
exit $bad
