# shellcheck shell=bash disable=SC2153
# (SC2153: the upper-case settings are set by run.sh before it sources this.)
# One measured run of each kind, used by run.sh. Sourced after lib.sh; reads
# the settings run.sh parsed (JOBS, LOG_SAMPLING, POOL_MODE, PROXY_POOL, RAW,
# CLK_TCK, IDLE_TIMEOUT).

# run_load ROUND TARGET MODE CLIENTS SECONDS RECORD(0|1)
# MODE is a pgbench protocol, or `storm`: the simple protocol with a new
# connection (and SCRAM login) per transaction, so TPS is connections/second.
run_load() {
    local round=$1 target=$2 mode=$3 clients=$4 secs=$5 record=$6
    # A target dropped earlier in the run (it did not come back after a
    # restart) has no port any more.
    [[ -n "${TARGET_PORT[$target]:-}" ]] || return 0
    local port=${TARGET_PORT[$target]} pid=${TARGET_PID[$target]:-}
    local prefix=$WORK/runs/$target-$mode-$clients-$round
    local jobs=$((JOBS < clients ? JOBS : clients))
    local cpu0="" cpu1="" rss="" alive=1 rc=0
    local proto=(-M "$mode")
    if [[ $mode == storm ]]; then proto=(-M simple -C); fi
    # pgbench's -T counts its connection phase too, and thousands of SCRAM logins take
    # seconds (2,000 took ~10 s here), which left no time for transactions; so large
    # client counts get a second per hundred clients on top. TPS excludes the logins.
    if ((clients >= 1000)) && [[ $mode != storm ]]; then secs=$((secs + clients / 100)); fi
    if [[ -n "$pid" ]]; then cpu0=$(proc_cpu_ticks "$pid" || true); fi
    pgbench -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -S -n -T "$secs" -c "$clients" -j "$jobs" \
        "${proto[@]}" -l --log-prefix="$prefix" --sampling-rate="$LOG_SAMPLING" "$BENCH_DB" \
        >"$prefix.out" 2>"$prefix.err" || rc=$?
    if [[ -n "$pid" ]]; then
        if kill -0 "$pid" 2>/dev/null; then
            cpu1=$(proc_cpu_ticks "$pid" || true)
            rss=$(proc_rss_kb "$pid" || true)
        else
            alive=0
            log "$target (pid $pid) is gone"
        fi
    fi
    if [[ $record == 1 ]]; then
        local args=(--raw "$RAW" --round "$round" --pool-mode "$POOL_MODE" --mode "$mode"
            --clients "$clients" --target "$target" --stdout "$prefix.out" --stderr "$prefix.err"
            --log-prefix "$prefix" --rc "$rc" --clk-tck "$CLK_TCK" --proxy-alive "$alive")
        if [[ $target == direct ]]; then args+=(--pool "—"); else args+=(--pool "$PROXY_POOL"); fi
        if [[ -n "$cpu0" && -n "$cpu1" ]]; then args+=(--cpu-ticks $((cpu1 - cpu0))); fi
        if [[ -n "$rss" ]]; then args+=(--rss-kb "$rss"); fi
        $REPORT record "${args[@]}"
    elif [[ $rc -ne 0 ]]; then
        log "warm-up through $target failed: $(head -c 300 "$prefix.err")"
    fi
    # The per-transaction log is only needed until it is parsed; dropping it
    # here bounds the disk use to one run.
    rm -f "$prefix".*
}

# run_idle ROUND TARGET CLIENTS
# Memory per idle client: the RSS of a freshly started proxy before, and with,
# CLIENTS logged-in clients that send nothing (a pgbench script that only
# sleeps). Fresh, because an allocator keeps what earlier runs freed, and the
# second round would otherwise show almost no growth.
run_idle() {
    local round=$1 target=$2 clients=$3
    local prefix=$WORK/runs/$target-idle-$clients-$round
    local jobs=$((JOBS < clients ? JOBS : clients))
    local pid port rss0 rss1 pgb deadline alive=1 connected
    [[ -n "${TARGET_PORT[$target]:-}" ]] || return 0
    restart_target "$target"
    if [[ -z "${TARGET_PORT[$target]:-}" ]]; then return; fi
    pid=${TARGET_PID[$target]} port=${TARGET_PORT[$target]}
    printf '\\sleep 1 s\n' >"$WORK/runs/idle.sql"
    sleep 1
    rss0=$(proc_rss_kb "$pid")
    pgbench -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -n -f "$WORK/runs/idle.sql" -T 3600 \
        -c "$clients" -j "$jobs" "$BENCH_DB" >"$prefix.out" 2>"$prefix.err" &
    pgb=$!
    # Logins are SCRAM, so thousands take a while; pgbench completes each one
    # before it opens the next, so once the proxy holds CLIENTS established
    # connections all of them are in (or nearly: give the last one a moment).
    deadline=$((SECONDS + IDLE_TIMEOUT))
    while (($(tcp_established "$port") < clients)); do
        if ((SECONDS >= deadline)) || ! kill -0 "$pgb" 2>/dev/null || ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.5
    done
    sleep 2
    connected=$(tcp_established "$port")
    if kill -0 "$pid" 2>/dev/null; then rss1=$(proc_rss_kb "$pid"); else rss1=$rss0 alive=0; fi
    # SIGTERM, not SIGINT: a background job of a script ignores SIGINT.
    kill -TERM "$pgb" 2>/dev/null || true
    wait "$pgb" 2>/dev/null || true
    $REPORT record-idle --raw "$RAW" --round "$round" --pool-mode "$POOL_MODE" --target "$target" \
        --clients "$clients" --connected "$connected" --rss-before-kb "$rss0" --rss-kb "$rss1" \
        --proxy-alive "$alive" --stderr "$prefix.err"
    rm -f "$prefix".*
    # A fresh proxy for the runs that follow, too: one that just held
    # thousands of sessions would carry their memory and timers along.
    restart_target "$target"
}
