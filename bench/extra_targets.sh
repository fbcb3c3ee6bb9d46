# shellcheck shell=bash
# Optional extra targets: PgCat (PGCAT_BIN) and PgDog (PGDOG_BIN). Neither is
# packaged for Debian, so they run only when a binary is given. Each gets the
# same pool size and mode as PgBouncer and dbwarden, one database, one user,
# SCRAM towards the client, and statement logging off. Sourced after lib.sh.

EXTRA_TARGETS=()
if [[ -n "${PGCAT_BIN:-}" ]]; then EXTRA_TARGETS+=(pgcat); fi
if [[ -n "${PGDOG_BIN:-}" ]]; then EXTRA_TARGETS+=(pgdog); fi
EXTRA_VERSIONS=""

# start_extra_targets POOL_SIZE POOL_MODE
start_extra_targets() {
    local t
    for t in "${EXTRA_TARGETS[@]+"${EXTRA_TARGETS[@]}"}"; do
        "start_$t" "$1" "$2"
    done
}

start_pgcat() {
    local pool=$1 mode=$2 dir=$WORK/pgcat port
    if [[ ! -x "$PGCAT_BIN" ]]; then
        skip_target pgcat "PGCAT_BIN=$PGCAT_BIN is not executable"
        return
    fi
    port=$(free_port)
    mkdir -p "$dir"
    # The admin password only guards PgCat's own console, which the bench
    # never uses; it is random so that nothing guessable listens.
    cat >"$dir/pgcat.toml" <<EOF
[general]
host = "127.0.0.1"
port = $port
admin_username = "pgcat_admin"
admin_password = "$BENCH_PASSWORD-admin"
log_client_connections = false
log_client_disconnections = false

[pools.$BENCH_DB]
pool_mode = "$mode"
query_parser_enabled = false

[pools.$BENCH_DB.users.0]
username = "$BENCH_USER"
password = "$BENCH_PASSWORD"
pool_size = $pool

[pools.$BENCH_DB.shards.0]
servers = [["127.0.0.1", $PG_PORT, "primary"]]
database = "$BENCH_DB"
EOF
    RUST_LOG=warn "$PGCAT_BIN" "$dir/pgcat.toml" >"$dir/pgcat.log" 2>&1 &
    register_target pgcat "$port" $! "$dir/pgcat.log"
    EXTRA_VERSIONS+="PgCat $("$PGCAT_BIN" --version 2>/dev/null | head -1 || echo '?') "
}

start_pgdog() {
    local pool=$1 mode=$2 dir=$WORK/pgdog port
    if [[ ! -x "$PGDOG_BIN" ]]; then
        skip_target pgdog "PGDOG_BIN=$PGDOG_BIN is not executable"
        return
    fi
    port=$(free_port)
    mkdir -p "$dir"
    cat >"$dir/pgdog.toml" <<EOF
[general]
host = "127.0.0.1"
port = $port
default_pool_size = $pool
pooler_mode = "$mode"

[[databases]]
name = "$BENCH_DB"
host = "127.0.0.1"
port = $PG_PORT
EOF
    cat >"$dir/users.toml" <<EOF
[[users]]
name = "$BENCH_USER"
database = "$BENCH_DB"
password = "$BENCH_PASSWORD"
pool_size = $pool
EOF
    RUST_LOG=warn "$PGDOG_BIN" --config "$dir/pgdog.toml" --users "$dir/users.toml" \
        >"$dir/pgdog.log" 2>&1 &
    register_target pgdog "$port" $! "$dir/pgdog.log"
    EXTRA_VERSIONS+="PgDog $("$PGDOG_BIN" --version 2>/dev/null | head -1 || echo '?') "
}
