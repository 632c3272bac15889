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
    [ -n "$TRK_PID" ] || return 0
    lb_stop_pid "$TRK_PID" "${STOP_TENTHS:-100}"
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

# ---- the data-plane benchmark (bench/limit.sh) ---------------------------
# One Tessera distribution: a tracker, one seeder sharing $SRC, N leecher
# nodes started and logged in BEFORE the clock; the clock runs from the
# download_file commands to the last verified file (the file appears only
# after its whole-file check: .part -> rename).  The caller sets WORK,
# SRC, SRC_SHA1 and LB_PIDS=() (every process started here is added and
# stopped by pid); LB_LEECH_ARGS, when set, are extra options of the
# leecher clients (e.g. --downloaders 2).  lb_ names keep clear of the
# callers' own helpers.

lb_log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

lb_stop_pid() { # PID [TENTHS]: SIGTERM, a bounded wait (default 5 s), SIGKILL
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < ${2:-50}; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

lb_wait_port() { # PORT: bounded wait (10 s) until something accepts on it
    local i
    for ((i = 0; i < 100; i++)); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

lb_wait_line() { # FILE REGEX TENTHS: bounded wait for a line in FILE
    local i
    for ((i = 0; i < $3; i++)); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# The sampling below runs every 0.1 s beside the download on the same
# cores, so it forks as little as it can (bash builtins; one awk a sample).
lb_tree_set() { # PID...: LB_TREE = the live pids and all their descendants
    local p t kids todo=("$@")
    LB_TREE=()
    while ((${#todo[@]} > 0)); do
        p=${todo[0]}
        todo=("${todo[@]:1}")
        [ -d "/proc/$p" ] || continue
        LB_TREE+=("$p")
        for t in "/proc/$p/task/"*/children; do
            kids=()
            { read -r -a kids < "$t"; } 2>/dev/null
            todo+=("${kids[@]}")
        done
    done
}

lb_tree() { # PID...: the pids and all their descendants
    lb_tree_set "$@"
    echo "${LB_TREE[@]}"
}

lb_pss_kb() { # PID...: the sum of Pss (kB) over the trees
    local p f=()
    lb_tree_set "$@"
    for p in "${LB_TREE[@]}"; do f+=("/proc/$p/smaps_rollup"); done
    ((${#f[@]} > 0)) || { echo 0; return; }
    # getline, not awk's file arguments: a process gone meanwhile is
    # skipped (mawk stops at a missing file argument)
    awk 'BEGIN{for (i = 1; i < ARGC; i++) {
            while ((getline l < ARGV[i]) > 0)
                if (l ~ /^Pss:/) { split(l, a, " "); s += a[2] }
            close(ARGV[i]) }
        print s + 0}' "${f[@]}"
}

lb_cpu_ticks() { # PID...: "utime+stime utime" (clock ticks) over the live trees
    local p s=0 u=0 v
    for p in $(lb_tree "$@"); do
        read -r v w < <(awk '{sub(/^.*\) /, ""); print $12 + $13, $12}' "/proc/$p/stat" 2>/dev/null)
        s=$((s + ${v:-0})); u=$((u + ${w:-0}))
    done
    echo "$s $u"
}

lb_read_bytes() { # PID...: bytes the live trees had read from disk (io read_bytes)
    local p s=0 v
    for p in $(lb_tree "$@"); do
        v=$(awk '$1 == "read_bytes:" {print $2}' "/proc/$p/io" 2>/dev/null)
        s=$((s + ${v:-0}))
    done
    echo "$s"
}

# lb_tessera TAG BIN N -> "wall_s status ok/N pss_max_kB cpu_s setup_s user_s"
# cpu_s (user_s): user+sys (user) time of the seeder's and the leechers'
# processes (workers included) while the clock ran; pss_max_kB: the highest sum of Pss over
# leecher 1's processes, sampled every 0.1 s during the download.
lb_tessera() {
    local tag=$1 bin=$2 n=$3 rd=$WORK/$1 i ts tport sport spid tpid
    mkdir -p "$rd"
    ts=${EPOCHREALTIME/./}
    tport=$(free_port)
    echo "127.0.0.1:$tport" > "$rd/trackers.txt"
    "$bin/tracker" -d "$rd/trk" --kdf-iterations 1000 "$rd/trackers.txt" 1 \
        < /dev/null 2> "$rd/tracker.log" &
    tpid=$!; LB_PIDS+=("$tpid")
    lb_wait_port "$tport" || { lb_log "tracker did not start"; echo "0 NOTRACKER 0/$n 0 0 0"; return; }
    sport=$(free_port)
    mkfifo "$rd/seed.in"
    "$bin/client" --keep-running -s "$rd/seed" "127.0.0.1:$sport" "$rd/trackers.txt" \
        < "$rd/seed.in" > "$rd/seed.out" 2> "$rd/seed.log" &
    spid=$!; LB_PIDS+=("$spid")
    exec 7> "$rd/seed.in"
    printf 'create_user seed pw\nlogin seed pw\ncreate_group g\nupload_file %s g\n' "$SRC" >&7
    lb_wait_line "$rd/seed.out" '^shared ' 600 || { lb_log "seeder: $(tail -2 "$rd/seed.out")"; echo "0 NOSEED 0/$n 0 0 0"; return; }
    local lp=() lfd=()
    for ((i = 1; i <= n; i++)); do
        printf 'create_user l%d pw\nlogin l%d pw\njoin_group g\n' "$i" "$i" |
            timeout 30 "$bin/client" -s "$rd/setup$i" "127.0.0.1:$(free_port)" \
                "$rd/trackers.txt" > /dev/null 2>&1
        echo "accept_request g l$i" >&7
    done
    # the leecher nodes: started and logged in outside the clock
    for ((i = 1; i <= n; i++)); do
        mkdir -p "$rd/l$i/dl"
        mkfifo "$rd/l$i.in"
        "$bin/client" --keep-running ${LB_LEECH_ARGS:-} -s "$rd/l$i/state" \
            "127.0.0.1:$(free_port)" "$rd/trackers.txt" < "$rd/l$i.in" > "$rd/l$i.out" 2> "$rd/l$i.log" &
        lp[i]=$!; LB_PIDS+=("${lp[i]}")
        exec {lfd[i]}> "$rd/l$i.in"
        printf 'login l%d pw\n' "$i" >&"${lfd[i]}"
    done
    for ((i = 1; i <= n; i++)); do
        lb_wait_line "$rd/l$i.out" '^logged in' 300 || lb_log "leecher $i: no login"
    done
    timeout 60 cat "$SRC" > /dev/null          # the seeder's file is warm
    local c0 u0 t0 t1 st=OK all pss=0 v k=0 deadline
    # PERF_OUT=DIR: the clock's span recorded system-wide (perf record
    # -a -g, and perf stat of switches/migrations/faults) into DIR/TAG.*
    local perf_pid= stat_pid=
    if [ -n "${PERF_OUT:-}" ]; then
        mkdir -p "$PERF_OUT"
        perf record -q -F "${PERF_FREQ:-499}" -a -g -o "$PERF_OUT/$tag.data" 2> /dev/null &
        perf_pid=$!
        perf stat -a -e context-switches,cpu-migrations,page-faults,task-clock \
            -o "$PERF_OUT/$tag.stat" 2> /dev/null &
        stat_pid=$!
        sleep 0.5
    fi
    local io0 io1
    io0=$(lb_read_bytes "$spid" "${lp[@]}")
    read -r c0 u0 < <(lb_cpu_ticks "$spid" "${lp[@]}")
    t0=${EPOCHREALTIME/./}
    for ((i = 1; i <= n; i++)); do
        printf 'download_file g data.bin %s\n' "$rd/l$i/dl" >&"${lfd[i]}"
    done
    deadline=$((t0 + ${LEECH_TIMEOUT:-300} * 1000000))
    # the 10 ms pause without forking sleep(1): a read timing out on a fifo
    # nobody writes (opened read-write, so the open does not block)
    local tick
    mkfifo "$rd/tick" && exec {tick}<> "$rd/tick"
    while :; do
        all=1
        for ((i = 1; i <= n; i++)); do [ -f "$rd/l$i/dl/data.bin" ] || { all=0; break; }; done
        [ "$all" = 1 ] && break
        [ "${EPOCHREALTIME/./}" -gt "$deadline" ] && { st=TIMEOUT; break; }
        if ((k++ % 10 == 0)); then
            grep -q '^error' "$rd"/l*.out && { st=ERROR; break; }
            v=$(lb_pss_kb "${lp[1]}"); [ "$v" -gt "$pss" ] && pss=$v
        fi
        if [ -n "$tick" ]; then read -r -t 0.01 -u "$tick"; else sleep 0.01; fi
    done
    t1=${EPOCHREALTIME/./}
    [ -n "$tick" ] && exec {tick}<&-
    v=$(lb_pss_kb "${lp[1]}"); [ "$v" -gt "$pss" ] && pss=$v
    local c1 u1; read -r c1 u1 < <(lb_cpu_ticks "$spid" "${lp[@]}")
    io1=$(lb_read_bytes "$spid" "${lp[@]}")
    # what the nodes read from disk meanwhile (re-serves of chunks no
    # longer in the page cache show here)
    lb_log "$tag: $(( (io1 - io0) >> 20 )) MiB read from disk by the nodes during the clock"
    local pp
    for pp in $perf_pid $stat_pid; do   # SIGINT: perf writes its file and exits
        kill -INT "$pp" 2> /dev/null
        timeout 60 tail --pid="$pp" -f /dev/null
        wait "$pp" 2> /dev/null
    done
    exec 7>&-
    for ((i = 1; i <= n; i++)); do exec {lfd[i]}>&-; lb_stop_pid "${lp[i]}"; done
    lb_stop_pid "$spid"; lb_stop_pid "$tpid"
    LB_PIDS=()
    # each leecher's copy against the source, by sha1sum(1)
    local ok
    ok=$(ls "$rd"/l*/dl/data.bin 2>/dev/null | xargs -r sha1sum |
        awk -v h="$SRC_SHA1" '$1 == h {c++} END {print c + 0}')
    if [ "$st" = OK ] && [ "$ok" != "$n" ]; then st=BADHASH; fi
    if [ "$st" != OK ]; then
        mkdir -p "$WORK/failed-$tag"
        cp "$rd"/*.log "$rd"/*.out "$WORK/failed-$tag/" 2>/dev/null
    fi
    [ "${KEEP:-0}" = 1 ] || rm -rf "$rd"
    awk -v a="$t0" -v b="$t1" -v s="$ts" -v st="$st" -v ok="$ok" -v n="$n" \
        -v pss="$pss" -v c="$((c1 - c0))" -v u="$((u1 - u0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN{printf "%.3f %s %d/%d %d %.2f %.1f %.2f\n", (b-a)/1e6, st, ok, n, pss, c/hz, (a-s)/1e6, u/hz}'
}

lb_median() { # numbers on stdin -> "median [min-max]" (NA when none)
    sort -g | awk '{v[NR]=$1} END{if(NR==0){print "NA"; exit}
        m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2
        printf "%.3f [%.3f-%.3f]\n", m, v[1], v[NR]}'
}
