#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, format, lints, every test against real
# servers, the protocol fuzzer for a bounded time, the benchmark smoke run, and the check that
# the transaction-mode hot path costs no more instructions than its committed baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
step() { echo; echo "=== $* ==="; }

step "set-up"
scripts/setup.sh test

step "format"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi

step "fuzz (${FUZZ_SECONDS:=60}s per target)"
for target in $(cd fuzz && cargo +nightly fuzz list); do
  (cd fuzz && cargo +nightly fuzz run "$target" -- -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1 | tail -n 3)
done

step "bench smoke"
if [ -x bench/smoke.sh ]; then
  DBWARDEN_BIN=target/debug/dbwarden REQUIRE_DBWARDEN=1 bench/smoke.sh
fi
step "callgrind regression check (instructions per transaction, release build)"
bench/callgrind-check.sh
echo; echo "all checks passed"
