# bench/lib.sh -- what the tracker benchmarks share (sourced by
# bench/run.sh and bench/scale.sh): a free port, stopping the tracker they
# started by its pid, and the exit cleanup of their temp dir.
#
# The caller sets WORK (its temp dir) and TRK_PID (the tracker it
# started, empty when none); STOP_TENTHS is how long stop_tracker waits
# after SIGTERM, in tenths of a second (default 100), before SIGKILL.

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_tracker() {
    local i
    [ -n "$TRK_PID" ] || return 0
    if kill -0 "$TRK_PID" 2>/dev/null; then
        kill -TERM "$TRK_PID" 2>/dev/null
        for i in $(seq "${STOP_TENTHS:-100}"); do
            kill -0 "$TRK_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$TRK_PID" 2>/dev/null && kill -KILL "$TRK_PID" 2>/dev/null
    fi
    wait "$TRK_PID" 2>/dev/null
    TRK_PID=
}

cleanup() {
    stop_tracker
    if [ "${KEEP:-0}" = 1 ]; then
        echo "bench: files kept in $WORK"
    else
        rm -rf "$WORK"
    fi
}
