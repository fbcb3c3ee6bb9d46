#!/usr/bin/env bash
# Instructions per transaction of a proxy's hot path, counted by callgrind.
#
#   bench/callgrind.sh [dbwarden|pgbouncer]
#
# Wall-clock figures on a shared 2-core machine move by 10% and more between
# identical runs; instruction counts barely move. The proxy runs under
# callgrind while pgbench does N and then 2N transactions (pgbench -t: a fixed
# amount of work, not a duration), counting only while pgbench runs; the
# difference divided by N is the cost of one transaction, with the logins
# cancelled out.
#
# One client by default: with several, the count depends on how many ready
# events each wakeup happens to find, which is timing again (PgBouncer moved by
# about ±4% with 4 clients, by under 0.1% with one).
#
# Env: TXNS (N, default 10000), CLIENTS (1), MODE (simple|extended|prepared),
# POOL_SIZE (20), POOL_MODE (session), SCALE (1), CONNECT (set: pgbench -C, a new
# connection and SCRAM login per transaction), KEEP_PROFILE (a file to copy
# the callgrind profile of the 2N pass to, for callgrind_annotate).
# BASELINE=FILE compares with the number in FILE (lines starting with # are
# comments) and exits 1 if the count is more than TOLERANCE percent (default
# 10) above it; WRITE_BASELINE=1 writes the count to FILE instead.
# bench/callgrind-check.sh runs this for the committed baselines (CI).
set -euo pipefail

TARGET=${1:-dbwarden}
TXNS=${TXNS:-10000}
CLIENTS=${CLIENTS:-1}
MODE=${MODE:-simple}
POOL_SIZE=${POOL_SIZE:-20}
POOL_MODE=${POOL_MODE:-session}
TOLERANCE=${TOLERANCE:-10}
SCALE=${SCALE:-1}

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $TARGET == dbwarden || $TARGET == pgbouncer ]] || die "target must be dbwarden or pgbouncer"
command -v valgrind >/dev/null || die "valgrind is not installed (apt-get install valgrind)"
((TXNS % CLIENTS == 0)) || die "TXNS must be a multiple of CLIENTS"

setup_workdir
trap cleanup EXIT INT TERM
start_postgres $((POOL_SIZE + CLIENTS + 20))
# Valgrind runs the proxy many times slower; give it time to come up.
START_TIMEOUT=${START_TIMEOUT:-120}

mkdir -p "$WORK/$TARGET"
if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$WORK/$TARGET"; fi
OUTFILE=$WORK/$TARGET/callgrind.out
# Each callgrind_control --dump writes OUTFILE.<n>, numbered from 1.
# shellcheck disable=SC2034 # read by start_pgbouncer / start_dbwarden
# Uncompressed names, so that each dump can be read on its own by callgrind_annotate.
LAUNCH_PREFIX=(valgrind --tool=callgrind --callgrind-out-file="$OUTFILE" --compress-strings=no
    --log-file="$WORK/$TARGET/valgrind.log")
"start_$TARGET" "$POOL_SIZE" "$POOL_MODE"
[[ -n "${TARGET_PORT[$TARGET]:-}" ]] || die "$TARGET did not start under valgrind"
PID=${TARGET_PID[$TARGET]}
DUMPS=0
# callgrind_control talks to valgrind through pipes named after the user that
# runs it, so it must run as the proxy's user; a timeout, because it waits
# forever for a process it cannot reach.
CONTROL=(timeout 120 callgrind_control)
if [[ $TARGET == pgbouncer ]]; then CONTROL=("${AS_SERVICE_USER[@]+"${AS_SERVICE_USER[@]}"}" "${CONTROL[@]}"); fi

# instructions TXNS: sets IR to the instructions the proxy executed while
# pgbench ran TXNS transactions (one login included). Counting is reset just
# before and dumped just after, so the slow start under valgrind and the idle
# time between runs do not count. Not a $(...) subshell, so that a failure
# exits the script and its cleanup trap stops the proxy.
IR=""
instructions() {
    local txns=$1 log=$WORK/$TARGET/pgbench.$1.log
    "${CONTROL[@]}" --zero "$PID" >/dev/null 2>&1 || die "callgrind_control --zero failed"
    pgbench -h 127.0.0.1 -p "${TARGET_PORT[$TARGET]}" -U "$BENCH_USER" -S -n \
        -t $((txns / CLIENTS)) -c "$CLIENTS" -j 1 -M "$MODE" ${CONNECT:+-C} "$BENCH_DB" >"$log" 2>&1 ||
        die "pgbench through $TARGET failed: $(tail -3 "$log")"
    "${CONTROL[@]}" --dump "$PID" >/dev/null 2>&1 || die "callgrind_control --dump failed"
    DUMPS=$((DUMPS + 1))
    [[ -s "$OUTFILE.$DUMPS" ]] || die "callgrind wrote no $OUTFILE.$DUMPS"
    IR=$(awk '/^(summary|totals):/ {print $2; exit}' "$OUTFILE.$DUMPS")
}

log "$TARGET under callgrind: $MODE protocol, $CLIENTS clients, $TXNS and $((2 * TXNS)) transactions"
# A first pass warms what is lazily set up (the pool's server connection,
# caches, prepared statements) so that it counts in neither measurement.
instructions "$TXNS"
instructions "$TXNS"
one=$IR
instructions $((2 * TXNS))
two=$IR
stop_target "$TARGET"
if [[ -n "${KEEP_PROFILE:-}" ]]; then
    # The 2N-transaction profile, for callgrind_annotate.
    cp "$OUTFILE.$DUMPS" "$KEEP_PROFILE"
    log "profile of the $((2 * TXNS))-transaction pass in $KEEP_PROFILE"
fi
per_txn=$(((two - one) / TXNS))
log "instructions: $one for $TXNS transactions, $two for $((2 * TXNS))"
echo "$TARGET $MODE: $per_txn instructions per transaction"

if [[ -n "${BASELINE:-}" ]]; then
    if [[ "${WRITE_BASELINE:-0}" == 1 ]]; then
        {
            echo "# Instructions per transaction, $TARGET, $POOL_MODE pooling, $MODE protocol,"
            echo "# $CLIENTS client(s), release build; written by bench/callgrind.sh with WRITE_BASELINE=1"
            echo "# (for the committed ones: WRITE_BASELINE=1 bench/callgrind-check.sh)."
            echo "$per_txn"
        } >"$BASELINE"
        log "baseline written to $BASELINE"
    else
        # Lines starting with # are comments; the number is the rest.
        base=$(grep -v '^#' "$BASELINE" | tr -dc '0-9')
        [[ -n "$base" ]] || die "no number in $BASELINE"
        limit=$((base + base * TOLERANCE / 100))
        if ((per_txn > limit)); then
            die "$per_txn instructions per transaction is more than $TOLERANCE% above the baseline $base"
        fi
        log "within $TOLERANCE% of the baseline $base (limit $limit)"
    fi
fi
