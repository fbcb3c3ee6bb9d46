#!/usr/bin/env bash
# Side-by-side benchmark: pgbench -S against PostgreSQL directly, PgBouncer and
# dbwarden (plus PgCat/PgDog when given), interleaved in rounds on one
# throw-away cluster. See bench/README.md for the method and the columns.
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"32 256"}
MODES=${MODES:-"simple prepared"}
POOL_SIZE=${POOL_SIZE:-20}
POOL_MODE=${POOL_MODE:-session}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
WARMUP=${WARMUP:-3}
LOG_SAMPLING=${LOG_SAMPLING:-1}
STRICT=${STRICT:-0}

# shellcheck source=bench/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$BENCH_DIR/extra_targets.sh"

OUT=${OUT:-$BENCH_DIR/results/latest.md}
RAW=${OUT%.md}.raw

for m in $MODES; do
    [[ $m == simple || $m == extended || $m == prepared ]] || die "MODES: unknown mode '$m'"
done
[[ $POOL_MODE == session || $POOL_MODE == transaction ]] || die "POOL_MODE must be session or transaction"
for c in $CLIENTS; do [[ $c =~ ^[0-9]+$ && $c -gt 0 ]] || die "CLIENTS: '$c' is not a count"; done

max_clients=0
for c in $CLIENTS; do ((c > max_clients)) && max_clients=$c; done

# In session mode a client keeps its server connection until it disconnects,
# and pgbench opens every client before the first transaction, blocking on
# each login. With fewer server connections than clients the extra clients
# would wait for a whole run and then time out, so session mode sizes the pool
# to the largest client count; transaction mode uses POOL_SIZE as given.
PROXY_POOL=$POOL_SIZE
POOL_NOTE=""
if [[ $POOL_MODE == session ]] && ((max_clients > POOL_SIZE)); then
    PROXY_POOL=$max_clients
    POOL_NOTE="Session mode: the pool is sized to the largest client count ($PROXY_POOL), because a session-mode client holds its server connection for its whole session and pgbench opens all clients before the first transaction; with POOL_SIZE=$POOL_SIZE the other clients would only queue until their login timed out."
fi

setup_workdir
trap cleanup EXIT INT TERM
# Thousands of clients need as many descriptors in pgbench and in each proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

n_proxies=$((2 + ${#EXTRA_TARGETS[@]}))
start_postgres $((max_clients + n_proxies * PROXY_POOL + 20))
start_pgbouncer "$PROXY_POOL" "$POOL_MODE"
start_dbwarden "$PROXY_POOL" "$POOL_MODE"
start_extra_targets "$PROXY_POOL" "$POOL_MODE"

CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$(dirname "$OUT")"
: >"$RAW"

# run_one ROUND TARGET MODE CLIENTS SECONDS RECORD(0|1)
run_one() {
    local round=$1 target=$2 mode=$3 clients=$4 secs=$5 record=$6
    local port=${TARGET_PORT[$target]} pid=${TARGET_PID[$target]:-}
    local prefix=$WORK/runs/$target-$mode-$clients-$round
    local jobs=$((JOBS < clients ? JOBS : clients))
    local cpu0="" cpu1="" rss="" alive=1 rc=0
    [[ -n "$pid" ]] && cpu0=$(proc_cpu_ticks "$pid" || true)
    pgbench -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -S -n -T "$secs" -c "$clients" -j "$jobs" \
        -M "$mode" -l --log-prefix="$prefix" --sampling-rate="$LOG_SAMPLING" "$BENCH_DB" \
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
        [[ -n "$cpu0" && -n "$cpu1" ]] && args+=(--cpu-ticks $((cpu1 - cpu0)))
        [[ -n "$rss" ]] && args+=(--rss-kb "$rss")
        $REPORT record "${args[@]}"
    elif [[ $rc -ne 0 ]]; then
        log "warm-up through $target failed: $(head -c 300 "$prefix.err")"
    fi
    # The per-transaction log is only needed until it is parsed; dropping it
    # here bounds the disk use to one run.
    rm -f "$prefix".*
}

ntargets=${#TARGETS[@]}
if ((WARMUP > 0)); then
    log "warm-up: ${WARMUP}s per target"
    for t in "${TARGETS[@]}"; do run_one 0 "$t" simple "$(echo "$CLIENTS" | awk '{print $1}')" "$WARMUP" 0; done
fi

log "targets: ${TARGETS[*]}; modes: $MODES; clients: $CLIENTS; ${ROUNDS} rounds × ${DURATION}s"
for ((round = 1; round <= ROUNDS; round++)); do
    s=0
    for mode in $MODES; do
        for clients in $CLIENTS; do
            # Rotate the start so that no target always runs first (cold) or
            # last (after the machine has warmed up) in a scenario.
            off=$(((round - 1 + s) % ntargets))
            order=("${TARGETS[@]:off}" "${TARGETS[@]:0:off}")
            log "round $round/$ROUNDS · $POOL_MODE · $mode · $clients clients: ${order[*]}"
            for t in "${order[@]}"; do
                run_one "$round" "$t" "$mode" "$clients" "$DURATION" 1
            done
            s=$((s + 1))
        done
    done
done

# What the table header states about the machine and the software.
meta=$WORK/meta.txt
dbw_version="not run"
if [[ -n "${TARGET_PORT[dbwarden]:-}" ]]; then
    dbw_version=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
fi
skipped=$(printf '%s;;' "${SKIPPED[@]+"${SKIPPED[@]}"}")
command="DURATION=$DURATION ROUNDS=$ROUNDS CLIENTS=\"$CLIENTS\" MODES=\"$MODES\" POOL_SIZE=$POOL_SIZE POOL_MODE=$POOL_MODE bench/run.sh"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/^MemTotal:/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "postgres=$(pg_version)"
    echo "pgbouncer=$("$PGBOUNCER_BIN" --version | awk 'NR == 1 {print $2}')"
    echo "pgbench=$(pgbench --version | awk '{print $3}')"
    echo "dbwarden=$dbw_version"
    echo "extra_versions=$EXTRA_VERSIONS"
    echo "rounds=$ROUNDS"
    echo "duration=$DURATION"
    echo "jobs=$JOBS"
    echo "scale=$SCALE"
    echo "pool_mode=$POOL_MODE"
    echo "pool=$PROXY_POOL"
    echo "pool_note=$POOL_NOTE"
    echo "skipped=$skipped"
    echo "command=$command"
} >"$meta"

$REPORT table --raw "$RAW" --meta "$meta" | tee "$OUT"
log "table written to $OUT (per-run figures in $RAW)"

if [[ $STRICT == 1 ]]; then
    $REPORT check --raw "$RAW"
    # A binary that was never built is a skip; one that was given and did
    # not start is a failure.
    ((${#FAILED[@]} == 0)) || die "targets failed to start: ${FAILED[*]}"
fi
