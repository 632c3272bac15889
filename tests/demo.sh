#!/bin/bash
# tests/demo.sh -- the loopback demo (`make demo`).
#
# Starts one tracker on a free 127.0.0.1 port (temp tracker_info.txt, data
# dir under a mktemp dir, the production-like --kdf-iterations 100000),
# then plays a scripted session of every command with two users, printing
# each command before its output.  Every process is stopped by pid on exit
# (trap), whatever happened; every wait is bounded.
# Environment: TESSERA_BIN (dir holding tracker and client; default
# build/release/bin), KEEP=1 keeps the temp dir.

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

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-demo.XXXXXX")
TRK_PID=

cleanup() {
    local i
    if [ -n "$TRK_PID" ] && kill -0 "$TRK_PID" 2>/dev/null; then
        kill -TERM "$TRK_PID" 2>/dev/null
        for i in $(seq 50); do
            kill -0 "$TRK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$TRK_PID" 2>/dev/null && kill -KILL "$TRK_PID" 2>/dev/null
        wait "$TRK_PID" 2>/dev/null
    fi
    exec 9>&-
    if [ "${KEEP:-0}" = 1 ]; then
        echo "demo: files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

TPORT=$(free_port)
printf '# demo tracker\n127.0.0.1:%s\n' "$TPORT" >"$WORK/tracker_info.txt"

echo "== starting tracker 1 on 127.0.0.1:$TPORT (log: tracker.log)"
mkfifo "$WORK/tracker.stdin"
"$BIN/tracker" -d "$WORK/tracker-data" --kdf-iterations 100000 \
    "$WORK/tracker_info.txt" 1 <"$WORK/tracker.stdin" \
    >"$WORK/tracker.log" 2>&1 &
TRK_PID=$!
# keep the tracker's stdin open (EOF does not stop it, but "quit" could)
exec 9>"$WORK/tracker.stdin"

ready=0
for i in $(seq 100); do
    if grep -q "ready on" "$WORK/tracker.log" 2>/dev/null; then
        ready=1
        break
    fi
    kill -0 "$TRK_PID" 2>/dev/null || break
    sleep 0.1
done
if [ $ready -ne 1 ]; then
    echo "demo: tracker did not become ready within 10 s:" >&2
    cat "$WORK/tracker.log" >&2
    exit 1
fi
sed -n 's/^/   | /p' "$WORK/tracker.log"

# step USER PASSWORD CMD: one command as USER, printed before its output
step() {
    local user=$1 pw=$2 cmd=$3 port out
    port=$(free_port)
    if [ "$user" = "-" ]; then
        printf '%16s %s\n' "tessera>" "$cmd"
    else
        printf '%16s %s\n' "$user@tessera>" "$cmd"
    fi
    if [ "$user" = "-" ]; then
        out=$(timeout 60 "$BIN/client" -s "$WORK/node-$port" \
                  "127.0.0.1:$port" "$WORK/tracker_info.txt" \
                  <<<"$cmd" 2>>"$WORK/client.log")
    else
        out=$(timeout 60 "$BIN/client" -s "$WORK/node-$port" \
                  "127.0.0.1:$port" "$WORK/tracker_info.txt" \
                  <<<"$(printf 'login %s %s\n%s\n' "$user" "$pw" "$cmd")" \
                  2>>"$WORK/client.log" | tail -n +2)
    fi
    if [ -n "$out" ]; then
        printf '%s\n' "$out" | sed 's/^/                  /'
    else
        echo "                  (nothing)"
    fi
}

echo
echo "== accounts (each command runs in a fresh client process; as"
echo "   user@tessera it logs in first, and that login is not shown)"
step - - "help"
step - - "create_user alice 'alice pw'"
step - - "create_user bob bobpw"
step - - "create_user alice again"
step - - "login alice wrong"
step - - "list_groups"
step alice "'alice pw'" "list_groups"

echo
echo "== groups"
step alice "'alice pw'" "create_group films"
step alice "'alice pw'" "create_group books"
step bob bobpw "join_group films"
step bob bobpw "join_group films"
step bob bobpw "list_requests films"
step alice "'alice pw'" "list_requests films"
step alice "'alice pw'" "accept_request films bob"
step bob bobpw "join_group books"
step alice "'alice pw'" "reject_request books bob"
step alice "'alice pw'" "list_groups"
step bob bobpw "list_my_groups"
step alice "'alice pw'" "leave_group films"
step bob bobpw "list_groups"
step bob bobpw "leave_group films"
step bob bobpw "list_groups"

step alice "'alice pw'" "logout"
step alice "'alice pw'" "exit"

echo
echo "== stopping tracker (pid $TRK_PID)"
exit 0
