#!/usr/bin/env bash
# CI regression check of the transaction-mode hot path: instructions per transaction
# (bench/callgrind.sh, one client, pgbench -S) for the simple, extended and prepared
# protocols, each compared with its committed baseline in bench/callgrind-baseline/.
# Fails when any of them is more than TOLERANCE percent (default 10) above its baseline.
#
#   bench/callgrind-check.sh                    # build the release binary, check all three
#   WRITE_BASELINE=1 bench/callgrind-check.sh   # measure and rewrite the baselines
#
# The release binary, because that is what users run and what the baselines describe; a
# debug build spends its instructions elsewhere. Instruction counts do not depend on how
# busy the machine is, so this is safe to run next to other work; they do depend on the
# compiler and valgrind versions, so rewrite the baselines (and say why in the commit)
# after upgrading either.
#
# Env: DBWARDEN_BIN (skip the build and use this binary), TXNS (transactions per measured
# pass, default 2000), MODES (default "simple extended prepared"), TOLERANCE.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."
if [[ -z "${DBWARDEN_BIN:-}" ]]; then
    cargo build --release -q -p dbwarden
    DBWARDEN_BIN=$PWD/target/release/dbwarden
fi
export DBWARDEN_BIN
baselines=$here/callgrind-baseline
mkdir -p "$baselines"

failed=()
for mode in ${MODES:-simple extended prepared}; do
    file=$baselines/transaction-$mode.txt
    if [[ "${WRITE_BASELINE:-0}" != 1 && ! -f "$file" ]]; then
        echo "callgrind-check: no baseline $file (WRITE_BASELINE=1 $0 writes it)" >&2
        failed+=("$mode")
        continue
    fi
    MODE=$mode POOL_MODE=transaction TXNS=${TXNS:-2000} BASELINE=$file \
        "$here/callgrind.sh" dbwarden || failed+=("$mode")
done
if ((${#failed[@]} > 0)); then
    echo "callgrind-check: failed for ${failed[*]}" >&2
    exit 1
fi
echo "callgrind-check: instructions per transaction within ${TOLERANCE:-10}% of the baselines" >&2
