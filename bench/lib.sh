# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are read by the scripts that source this.)
# Shared plumbing for bench/run.sh and bench/smoke.sh: a throw-away PostgreSQL,
# the proxies under test, and one pgbench run with the proxy's CPU and RSS read
# from /proc. Sourced, never executed; the caller sets `set -euo pipefail`.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/.." && pwd)
PYTHON=${PYTHON:-python3}
REPORT="$PYTHON $BENCH_DIR/report.py"

BENCH_USER=bench
BENCH_DB=bench
# A fresh password per run: the cluster only lives as long as the run, and a
# hex string needs no escaping in a URL, a conninfo string or an ini file.
BENCH_PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(12))')
export PGPASSWORD=$BENCH_PASSWORD

WORK=""
PG_PORT=""
PG_PID=""
declare -A TARGET_PORT=()
declare -A TARGET_PID=()
TARGETS=()        # targets that started, in the order they were declared
SKIPPED=()        # "target: reason" for targets that were not measured
FAILED=()         # the subset that was given but did not start

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Find the newest PostgreSQL server binaries unless PG_BIN is given.
find_pg_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then return; fi
    local d
    for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
        if [[ -x "$d/initdb" ]]; then PG_BIN=$d; return; fi
    done
    die "no PostgreSQL server binaries found (set PG_BIN)"
}

# The kernel picks a free port; the socket is closed again right away, so a
# collision needs another process to grab the same port in that instant.
free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root and PgBouncer refuses too. setpriv (unlike
# su/runuser) execs in place, so `$!` is the server's own pid, and it skips
# PAM, which would reset the open-file limit that thousands of clients need.
# It is a command prefix rather than a function so that `prefix cmd &` leaves
# the server's pid in `$!`, not that of a subshell running the function.
AS_SERVICE_USER=()
if [[ $EUID -eq 0 ]]; then
    AS_SERVICE_USER=(setpriv --reuid=postgres --regid=postgres --init-groups --)
fi
as_service_user() { "${AS_SERVICE_USER[@]+"${AS_SERVICE_USER[@]}"}" "$@"; }

# Put before a proxy's command line, e.g. (valgrind --tool=callgrind ...).
LAUNCH_PREFIX=()
# Seconds a proxy gets to answer its first query (valgrind makes startup slow).
START_TIMEOUT=${START_TIMEOUT:-30}

# wait_tcp PORT PID [SECONDS]: gives up early if the process has exited.
wait_tcp() {
    local port=$1 pid=$2 deadline=$((SECONDS + ${3:-30}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
}

# A real query through the target, with SCRAM auth, proves it is usable.
wait_sql() {
    local port=$1 pid=$2 deadline=$((SECONDS + ${3:-30}))
    until psql -X -q -At -h 127.0.0.1 -p "$port" -U "$BENCH_USER" -d "$BENCH_DB" \
        -c 'select 1' >/dev/null 2>&1; do
        ((SECONDS < deadline)) && kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.2
    done
}

setup_workdir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/dbwarden-bench.XXXXXX")
    chmod 755 "$WORK"
    mkdir -p "$WORK/pg" "$WORK/pgbouncer" "$WORK/runs"
    if [[ $EUID -eq 0 ]]; then chown postgres:postgres "$WORK/pg" "$WORK/pgbouncer"; fi
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local t pid
    for t in "${!TARGET_PID[@]}"; do
        pid=${TARGET_PID[$t]}
        if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; fi
    done
    for t in "${!TARGET_PID[@]}"; do
        pid=${TARGET_PID[$t]}
        if [[ -n "$pid" ]]; then wait "$pid" 2>/dev/null || true; fi
    done
    if [[ -n "$PG_PID" && -d "$WORK/pg/data" ]]; then
        as_service_user "$PG_BIN/pg_ctl" stop -D "$WORK/pg/data" -m immediate -w >/dev/null 2>&1 || true
    fi
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ $rc -ne 0 && "${KEEP_LOGS_ON_FAILURE:-1}" == 1 ]]; then
            # Server logs are what explains a failed run; keep them, drop the data.
            rm -rf "$WORK/pg/data" "$WORK/runs"
            log "logs kept in $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}

# start_postgres MAX_CONNECTIONS
start_postgres() {
    local max_conn=$1
    find_pg_bin
    PG_PORT=$(free_port)
    local data=$WORK/pg/data
    as_service_user "$PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --no-sync \
        --auth-local=trust --auth-host=scram-sha-256 >"$WORK/pg/initdb.log" 2>&1 ||
        die "initdb failed (see $WORK/pg/initdb.log)"
    # Only TCP on 127.0.0.1 and a private socket directory, so nothing collides
    # with a server already running on this machine. Durability is irrelevant
    # for a select-only benchmark on a throw-away cluster.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
max_connections = $max_conn
shared_buffers = 256MB
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
EOF
    as_service_user "$PG_BIN/pg_ctl" start -D "$data" -l "$WORK/pg/postgres.log" -w -t 60 >/dev/null ||
        die "PostgreSQL did not start (see $WORK/pg/postgres.log)"
    PG_PID=$(head -1 "$data/postmaster.pid")
    local sql=(psql -X -q -v ON_ERROR_STOP=1 -h "$WORK/pg" -p "$PG_PORT" -U postgres -d postgres)
    "${sql[@]}" -c "CREATE ROLE $BENCH_USER LOGIN PASSWORD '$BENCH_PASSWORD'" >/dev/null
    "${sql[@]}" -c "CREATE DATABASE $BENCH_DB OWNER $BENCH_USER" >/dev/null
    log "PostgreSQL $(pg_version) on 127.0.0.1:$PG_PORT (max_connections $max_conn)"
    pgbench -i -q -s "${SCALE:-10}" -h 127.0.0.1 -p "$PG_PORT" -U "$BENCH_USER" "$BENCH_DB" \
        >"$WORK/pg/pgbench-init.log" 2>&1 || die "pgbench -i failed (see $WORK/pg/pgbench-init.log)"
    TARGET_PORT[direct]=$PG_PORT
    TARGETS+=(direct)
}

pg_version() { "$PG_BIN/postgres" --version | awk '{print $3}'; }

# The SCRAM verifier, so PgBouncer authenticates clients exactly as
# PostgreSQL would and never sees the plaintext password.
scram_verifier() {
    psql -X -q -At -h "$WORK/pg" -p "$PG_PORT" -U postgres -d postgres \
        -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$BENCH_USER'"
}

ensure_pgbouncer() {
    if [[ -n "${PGBOUNCER_BIN:-}" ]]; then
        [[ -x "$PGBOUNCER_BIN" ]] || die "PGBOUNCER_BIN=$PGBOUNCER_BIN is not executable"
        return
    fi
    if ! command -v pgbouncer >/dev/null 2>&1 && [[ ! -x /usr/sbin/pgbouncer ]]; then
        [[ $EUID -eq 0 ]] || die "pgbouncer is not installed (apt-get install pgbouncer, or set PGBOUNCER_BIN)"
        log "installing pgbouncer from apt"
        # policy-rc.d-less containers would otherwise start the packaged service.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null 2>&1; } ||
            die "could not install pgbouncer"
    fi
    PGBOUNCER_BIN=$(command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer)
}

# start_pgbouncer POOL_SIZE POOL_MODE
start_pgbouncer() {
    local pool=$1 mode=$2 dir=$WORK/pgbouncer port
    ensure_pgbouncer
    port=$(free_port)
    printf '"%s" "%s"\n' "$BENCH_USER" "$(scram_verifier)" >"$dir/userlist.txt"
    # Connection logging is off: it is per-connection work that the benchmark
    # is not about, and dbwarden runs at log level warn for the same reason.
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$PG_PORT

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = $mode
default_pool_size = $pool
max_client_conn = ${MAX_CLIENT_CONN:-10000}
max_db_connections = 0
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
logfile = $dir/pgbouncer.log
EOF
    if [[ $EUID -eq 0 ]]; then chown -R postgres:postgres "$dir"; fi
    "${AS_SERVICE_USER[@]+"${AS_SERVICE_USER[@]}"}" "${LAUNCH_PREFIX[@]+"${LAUNCH_PREFIX[@]}"}" \
        "$PGBOUNCER_BIN" "$dir/pgbouncer.ini" \
        >>"$dir/stderr.log" 2>&1 &
    register_target pgbouncer "$port" $! "$dir/pgbouncer.log"
}

# start_dbwarden POOL_SIZE POOL_MODE — skipped with a message if not built.
# DBWARDEN_WORKERS sets proxy.workers (unset: dbwarden's default).
start_dbwarden() {
    local pool=$1 mode=$2 port bin=${DBWARDEN_BIN:-$REPO_ROOT/target/release/dbwarden}
    if [[ ! -x "$bin" ]]; then
        skip_target dbwarden "binary $bin not found (cargo build --release -p dbwarden)"
        return
    fi
    port=$(free_port)
    mkdir -p "$WORK/dbwarden"
    # What `--upstream URL` would configure, plus PgBouncer's client limit.
    cat >"$WORK/dbwarden/dbwarden.toml" <<EOF
[proxy]
max_client_conn = ${MAX_CLIENT_CONN:-10000}
${DBWARDEN_WORKERS:+workers = $DBWARDEN_WORKERS}

[auth]
method = "scram-sha-256"

[[users]]
name = "$BENCH_USER"
password = "$BENCH_PASSWORD"

[databases."*"]
host = "127.0.0.1"
port = $PG_PORT
EOF
    RUST_LOG=${DBWARDEN_LOG:-warn} "${LAUNCH_PREFIX[@]+"${LAUNCH_PREFIX[@]}"}" "$bin" proxy \
        --config "$WORK/dbwarden/dbwarden.toml" \
        --listen "127.0.0.1:$port" --pool-size "$pool" --pool-mode "$mode" \
        >"$WORK/dbwarden/dbwarden.log" 2>&1 &
    register_target dbwarden "$port" $! "$WORK/dbwarden/dbwarden.log"
}

# register_target NAME PORT PID LOGFILE: wait until it answers a query.
register_target() {
    local name=$1 port=$2 pid=$3 logfile=$4
    TARGET_PID[$name]=$pid
    if wait_tcp "$port" "$pid" "$START_TIMEOUT" && wait_sql "$port" "$pid" "$START_TIMEOUT" &&
        kill -0 "$pid" 2>/dev/null; then
        TARGET_PORT[$name]=$port
        TARGETS+=("$name")
        log "$name (pid $pid) on 127.0.0.1:$port"
    else
        kill "$pid" 2>/dev/null || true
        unset "TARGET_PID[$name]"
        FAILED+=("$name")
        skip_target "$name" "exited or did not answer a query within $((2 * START_TIMEOUT)) s; last log lines: $(tail -3 "$logfile" 2>/dev/null | tr '\n' ' ')"
    fi
}

# stop_target NAME: SIGTERM, then SIGKILL after 30 s. SIGTERM rather than
# SIGINT because a background job of a script ignores SIGINT unless the program
# installs a handler; valgrind writes its output either way.
stop_target() {
    local name=$1 pid=${TARGET_PID[$1]:-} i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "TARGET_PID[$name]" "TARGET_PORT[$name]"
    local kept=() t
    for t in "${TARGETS[@]}"; do [[ $t == "$name" ]] || kept+=("$t"); done
    TARGETS=("${kept[@]+"${kept[@]}"}")
}

# restart_target NAME: a fresh process in the same place in the rotation; a
# target that does not come back is dropped from the rest of the run.
restart_target() {
    local name=$1 saved=("${TARGETS[@]}") t
    stop_target "$name"
    "start_$name" "$PROXY_POOL" "$POOL_MODE"
    TARGETS=()
    for t in "${saved[@]}"; do
        if [[ -n "${TARGET_PORT[$t]:-}" ]]; then TARGETS+=("$t"); fi
    done
}

# Established TCP connections whose local port is PORT: the proxy's side of
# each client connection (IPv4 only, as everything here is on 127.0.0.1).
tcp_established() {
    awk -v p=":$(printf '%04X' "$1")" \
        'NR > 1 && $4 == "01" && substr($2, length($2) - 4) == p { n++ } END { print n + 0 }' \
        /proc/net/tcp
}

skip_target() {
    SKIPPED+=("$1: $2")
    log "skipping $1: $2"
}

# utime + stime of a whole process (all threads), in clock ticks. The command
# name in field 2 may hold spaces, so split after its closing parenthesis.
proc_cpu_ticks() {
    local line rest
    read -r line <"/proc/$1/stat" || return 1
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}

proc_rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}
