#!/usr/bin/env bash
# One command for a newcomer: install what is missing, build, run `dbwarden demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh demo
cargo build -q -p dbwarden
exec target/debug/dbwarden demo "$@"
