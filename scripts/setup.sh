#!/usr/bin/env bash
# Installs what dbwarden's demo, tests and benchmark need, and only what is missing, so it is
# safe to run again and again. Debian packages via apt, Python packages via pip, cargo tools
# via cargo. Usage: scripts/setup.sh [demo|test|bench]   (default: test, the superset)
set -euo pipefail
what=${1:-test}

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo_cmd=(sudo); else
    echo "setup: not root and no sudo; install missing packages by hand if any step fails" >&2
  fi
fi

apt_missing=()
need_pkg() { # need_pkg PACKAGE CHECK-COMMAND...
  local pkg=$1; shift
  if ! "$@" >/dev/null 2>&1; then apt_missing+=("$pkg"); fi
}
have() { command -v "$1"; }
pg_bin() { ls /usr/lib/postgresql/*/bin/initdb; }

need_pkg postgresql pg_bin
need_pkg postgresql-client have psql
need_pkg postgresql-contrib have pgbench
if [ "$what" != demo ]; then
  need_pkg pgbouncer test -x /usr/sbin/pgbouncer
  need_pkg chromium have chromium
  need_pkg prometheus have promtool   # promtool checks the /metrics exposition
  need_pkg mariadb-server test -x /usr/sbin/mariadbd
  need_pkg redis-server have redis-server
  need_pkg python3-pip have pip3
  need_pkg valgrind have callgrind_control   # bench/callgrind-check.sh
  need_pkg python3-venv python3 -c 'import ensurepip, venv'
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${apt_missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

if [ "$what" != demo ]; then
  py_missing=()
  python3 -c 'import psycopg' 2>/dev/null || py_missing+=("psycopg[binary]")
  python3 -c 'import asyncpg' 2>/dev/null || py_missing+=("asyncpg")
  if [ ${#py_missing[@]} -gt 0 ]; then
    echo "setup: installing Python packages: ${py_missing[*]}"
    pip3 install -q "${py_missing[@]}" 2>/dev/null \
      || pip3 install -q --break-system-packages "${py_missing[@]}"
  fi
  # PgBouncer's Prometheus exporter, for the admin-console compatibility test, in a venv of
  # its own: it pins psycopg2 2.8.5 (a source build), so its deps are installed by hand with
  # the binary psycopg2 and the old python-json-logger its code imports.
  exporter_venv=${DBWARDEN_EXPORTER_VENV:-$HOME/.cache/dbwarden/pgbouncer-exporter}
  if [ "$what" = test ] && ! "$exporter_venv/bin/pgbouncer-exporter" --help >/dev/null 2>&1; then
    echo "setup: installing prometheus-pgbouncer-exporter into $exporter_venv"
    rm -rf "$exporter_venv"
    python3 -m venv "$exporter_venv"
    "$exporter_venv/bin/pip" install -q psycopg2-binary 'python-json-logger==0.1.11' \
      'prometheus_client==0.8.0' 'PyYAML>=5.4.1'
    "$exporter_venv/bin/pip" install -q --no-deps 'prometheus-pgbouncer-exporter>=2,<3'
  fi
  if [ "$what" = test ] && ! cargo fuzz --version >/dev/null 2>&1; then
    echo "setup: installing cargo-fuzz"
    cargo install -q cargo-fuzz --locked
  fi
fi
echo "setup: ok ($what)"
