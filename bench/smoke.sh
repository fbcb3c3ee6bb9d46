#!/usr/bin/env bash
# CI smoke test of the bench harness: one 3-second round per protocol through
# every target. It checks that everything starts and that pgbench sees zero
# errors through each target; the figures it prints mean nothing.
#
# Exits non-zero if a target fails to start, a proxy dies, or any pgbench run
# reports an error. dbwarden is skipped (with a message) while
# target/release/dbwarden is not built, unless REQUIRE_DBWARDEN=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${DBWARDEN_BIN:-$here/../target/release/dbwarden}
if [[ ! -x "$bin" ]]; then
    if [[ "${REQUIRE_DBWARDEN:-0}" == 1 ]]; then
        echo "smoke: $bin is missing and REQUIRE_DBWARDEN=1" >&2
        exit 1
    fi
    echo "smoke: $bin not built; checking direct and PgBouncer only" >&2
fi

out=$(mktemp -d "${TMPDIR:-/tmp}/dbwarden-smoke.XXXXXX")
trap 'rm -rf "$out"' EXIT

DURATION=${DURATION:-3} ROUNDS=1 WARMUP=0 SCALE=${SCALE:-1} \
    CLIENTS=${CLIENTS:-"8 32"} MODES=${MODES:-"simple extended prepared"} \
    STRICT=1 OUT="$out/smoke.md" \
    "$here/run.sh"
echo "smoke: all targets answered with zero errors" >&2
