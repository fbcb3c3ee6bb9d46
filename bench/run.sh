#!/usr/bin/env bash
# Side-by-side benchmark: pgbench -S against PostgreSQL directly, PgBouncer and
# dbwarden (plus PgCat/PgDog when given), interleaved in rounds on one
# throw-away cluster. See bench/README.md for the method and the columns.
set -euo pipefail

DURATION=${DURATION:-15}
ROUNDS=${ROUNDS:-3}
# An empty CLIENTS (set but empty) runs only the storm and idle scenarios.
CLIENTS=${CLIENTS-"32 256"}
MODES=${MODES:-"simple prepared"}
POOL_SIZE=${POOL_SIZE:-20}
POOL_MODE=${POOL_MODE:-session}
JOBS=${JOBS:-2}
SCALE=${SCALE:-10}
WARMUP=${WARMUP:-3}
LOG_SAMPLING=${LOG_SAMPLING:-1}
STRICT=${STRICT:-0}
STORM_CLIENTS=${STORM_CLIENTS:-}
IDLE_CLIENTS=${IDLE_CLIENTS:-}
IDLE_TIMEOUT=${IDLE_TIMEOUT:-300}
# Above this many clients the direct target is left out: thousands of backends
# would measure PostgreSQL's process model, not a proxy, and need a
# max_connections that only the pools should need.
DIRECT_MAX_CLIENTS=${DIRECT_MAX_CLIENTS:-1000}

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=extra_targets.sh
source "$BENCH_DIR/extra_targets.sh"
# shellcheck source=runs.sh
source "$BENCH_DIR/runs.sh"

OUT=${OUT:-$BENCH_DIR/results/latest.md}
RAW=${OUT%.md}.raw

for m in $MODES; do
    [[ $m == simple || $m == extended || $m == prepared ]] || die "MODES: unknown mode '$m'"
done
[[ $POOL_MODE == session || $POOL_MODE == transaction ]] || die "POOL_MODE must be session or transaction"
for c in $CLIENTS $STORM_CLIENTS $IDLE_CLIENTS; do
    [[ $c =~ ^[0-9]+$ && $c -gt 0 ]] || die "'$c' is not a client count"
done

# Clients that run queries at the same time; idle clients send none. Only the
# direct target opens a backend per client.
max_clients=0 max_direct=0
for c in $CLIENTS $STORM_CLIENTS; do
    if ((c > max_clients)); then max_clients=$c; fi
    if ((c > max_direct && c <= DIRECT_MAX_CLIENTS)); then max_direct=$c; fi
done
max_idle=0
for c in $IDLE_CLIENTS; do
    if ((c > max_idle)); then max_idle=$c; fi
done
MAX_CLIENT_CONN=$((max_idle + 100 > 10000 ? max_idle + 100 : 10000))
if ((max_clients + 100 > MAX_CLIENT_CONN)); then MAX_CLIENT_CONN=$((max_clients + 100)); fi

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

if ((max_clients > DIRECT_MAX_CLIENTS)); then
    SKIPPED+=("direct: not run above $DIRECT_MAX_CLIENTS clients (DIRECT_MAX_CLIENTS): a backend per client would measure PostgreSQL, not a proxy")
fi

# The scenarios of one round, as KIND:MODE:CLIENTS.
SCENARIOS=()
for mode in $MODES; do
    for c in $CLIENTS; do SCENARIOS+=("load:$mode:$c"); done
done
for c in $STORM_CLIENTS; do SCENARIOS+=("load:storm:$c"); done
for c in $IDLE_CLIENTS; do SCENARIOS+=("idle:idle:$c"); done

setup_workdir
trap cleanup EXIT INT TERM
# Thousands of clients need as many descriptors in pgbench and in each proxy.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

n_proxies=$((2 + ${#EXTRA_TARGETS[@]}))
start_postgres $((max_direct + n_proxies * PROXY_POOL + 20))
start_pgbouncer "$PROXY_POOL" "$POOL_MODE"
start_dbwarden "$PROXY_POOL" "$POOL_MODE"
start_extra_targets "$PROXY_POOL" "$POOL_MODE"

CLK_TCK=$(getconf CLK_TCK)
mkdir -p "$(dirname "$OUT")"
: >"$RAW"

first_clients=$(echo "$CLIENTS" | awk '{print $1}')
if ((WARMUP > 0)) && [[ -n $first_clients ]]; then
    log "warm-up: ${WARMUP}s per target"
    for t in "${TARGETS[@]}"; do
        if [[ $t == direct ]] && ((first_clients > DIRECT_MAX_CLIENTS)); then continue; fi
        run_load 0 "$t" simple "$first_clients" "$WARMUP" 0
    done
fi

# Load from other work on the machine is the main source of noise; the
# header states it so that a reader can judge the spread.
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "targets: ${TARGETS[*]}; scenarios: ${SCENARIOS[*]}; ${ROUNDS} rounds × ${DURATION}s"
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${!SCENARIOS[@]}"; do
        IFS=: read -r kind mode clients <<<"${SCENARIOS[$s]}"
        # Rotate the start so that no target always runs first (cold) or
        # last (after the machine has warmed up) in a scenario.
        off=$(((round - 1 + s) % ${#TARGETS[@]}))
        order=("${TARGETS[@]:off}" "${TARGETS[@]:0:off}")
        log "round $round/$ROUNDS · $POOL_MODE · $mode · $clients clients: ${order[*]}"
        for t in "${order[@]}"; do
            if [[ $kind == idle ]]; then
                # Thousands of backends would measure PostgreSQL, not a proxy.
                [[ $t == direct ]] || run_idle "$round" "$t" "$clients"
            elif [[ $t == direct ]] && ((clients > DIRECT_MAX_CLIENTS)); then
                continue
            else
                run_load "$round" "$t" "$mode" "$clients" "$DURATION" 1
            fi
        done
    done
done

# What the table header states about the machine and the software.
meta=$WORK/meta.txt
dbw_version="not run"
if [[ -n "${TARGET_PORT[dbwarden]:-}" ]]; then
    dbw_version="$("${DBWARDEN_BIN:-$REPO_ROOT/target/release/dbwarden}" --version 2>/dev/null | awk 'NR == 1 {print $NF}')"
    # The work tree's commit says which source the binary most likely came
    # from; its build time tells whether it is older than that commit.
    dbw_version+=" (tree at commit $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown),"
    dbw_version+=" binary built $(date -u -r "${DBWARDEN_BIN:-$REPO_ROOT/target/release/dbwarden}" '+%Y-%m-%d %H:%M UTC'))"
fi
skipped=$(printf '%s;;' "${SKIPPED[@]+"${SKIPPED[@]}"}")
command="DURATION=$DURATION ROUNDS=$ROUNDS CLIENTS=\"$CLIENTS\" MODES=\"$MODES\" POOL_SIZE=$POOL_SIZE POOL_MODE=$POOL_MODE"
if [[ -n $STORM_CLIENTS ]]; then command+=" STORM_CLIENTS=\"$STORM_CLIENTS\""; fi
if [[ -n $IDLE_CLIENTS ]]; then command+=" IDLE_CLIENTS=\"$IDLE_CLIENTS\""; fi
command+=" bench/run.sh"
{
    echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "nproc=$(nproc)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "mem=$(awk '/^MemTotal:/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -r)"
    echo "load=$LOAD_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
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
