//! SHOW DATABASES, SHOW USERS and SHOW CONFIG: the config as PgBouncer shows its own.
//! SHOW CONFIG uses PgBouncer's setting names where dbwarden has the same setting, so
//! tools that read `max_client_conn` or `default_pool_size` find them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::BytesMut;
use dbwarden_config::{Config, WILDCARD};

use super::rows::{Cell, Table};
use super::show::mode_name;
use crate::Shared;

pub const DATABASES: (&str, [&str; 17]) = (
    "ssissiiiissiiiiii",
    [
        "name",
        "host",
        "port",
        "database",
        "force_user",
        "pool_size",
        "min_pool_size",
        "reserve_pool_size",
        "server_lifetime",
        "pool_mode",
        "load_balance_hosts",
        "max_connections",
        "current_connections",
        "max_client_connections",
        "current_client_connections",
        "paused",
        "disabled",
    ],
);

/// Server connections and clients per (database) and per (user).
#[derive(Default)]
struct Counts {
    servers: BTreeMap<String, i64>,
    clients: BTreeMap<String, i64>,
}

fn counts(shared: &Shared, by_user: bool) -> Counts {
    let mut n = Counts::default();
    for s in shared.stats.servers.all() {
        let k = if by_user {
            &s.pool.key.user
        } else {
            &s.pool.key.database
        };
        *n.servers.entry(k.clone()).or_default() += 1;
    }
    for c in shared.stats.clients.all() {
        if let Some(l) = c.login() {
            let k = if by_user { &l.user } else { &l.database };
            *n.clients.entry(k.clone()).or_default() += 1;
        }
    }
    n
}

pub fn databases(buf: &mut BytesMut, shared: &Shared) {
    let config = shared.config.load();
    // Configured names, plus names served through the `*` entry that have a pool now.
    let mut names: BTreeSet<String> = config
        .databases
        .keys()
        .filter(|n| n.as_str() != WILDCARD)
        .cloned()
        .collect();
    names.extend(shared.pools.all().iter().map(|e| e.key.database.clone()));
    let n = counts(shared, false);
    let paused_all = *shared.paused.borrow();
    let paused_dbs = shared.paused_dbs.borrow().clone();
    let lifetime = config.pool.server_lifetime.as_secs() as i64;
    let mut t = Table::new(buf, DATABASES.0, &DATABASES.1);
    for name in &names {
        let Some(db) = config.database(name) else {
            continue;
        };
        let entry = config
            .databases
            .get(name.as_str())
            .or_else(|| config.databases.get(WILDCARD));
        let mode = entry.and_then(|e| e.pool_mode).map(mode_name);
        t.row(&[
            Cell::Text(name),
            Cell::Text(&db.host),
            Cell::Int(i64::from(db.port)),
            Cell::Text(&db.dbname),
            db.user.as_deref().map_or(Cell::Null, Cell::Text),
            Cell::Int(i64::from(db.pool_size)),
            Cell::Int(i64::from(db.min_idle)),
            Cell::Int(0),
            Cell::Int(lifetime),
            mode.map_or(Cell::Null, Cell::Text),
            Cell::Null,
            Cell::Int(0),
            Cell::Int(n.servers.get(name).copied().unwrap_or(0)),
            Cell::Int(0),
            Cell::Int(n.clients.get(name).copied().unwrap_or(0)),
            Cell::Int(i64::from(paused_all || paused_dbs.contains(name))),
            Cell::Int(0),
        ]);
    }
    t.finish();
}

pub const USERS: (&str, [&str; 8]) = (
    "ssssiiii",
    [
        "name",
        "pool_size",
        "reserve_pool_size",
        "pool_mode",
        "max_user_connections",
        "current_connections",
        "max_user_client_connections",
        "current_client_connections",
    ],
);

pub fn users(buf: &mut BytesMut, shared: &Shared) {
    let config = shared.config.load();
    let n = counts(shared, true);
    let mut t = Table::new(buf, USERS.0, &USERS.1);
    for u in &config.users {
        let size = u.pool_size.map(|s| s.to_string()).unwrap_or_default();
        t.row(&[
            Cell::Text(&u.name),
            Cell::Text(&size),
            Cell::Text(""),
            Cell::Null,
            Cell::Int(0),
            Cell::Int(n.servers.get(&u.name).copied().unwrap_or(0)),
            Cell::Int(0),
            Cell::Int(n.clients.get(&u.name).copied().unwrap_or(0)),
        ]);
    }
    t.finish();
}

/// Seconds, as PgBouncer prints its time settings (`0.5` for half a second).
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{:.3}", d.as_secs_f64())
    }
}

/// (PgBouncer's name, value, whether a reload changes it) for the settings dbwarden shares
/// with PgBouncer.
fn settings(c: &Config) -> Vec<(&'static str, String, bool)> {
    let (addr, port) = c
        .proxy
        .listen
        .rsplit_once(':')
        .map(|(a, p)| (a.trim_matches(['[', ']']).to_owned(), p.to_owned()))
        .unwrap_or_default();
    let (p, s) = (&c.pool, &c.server);
    vec![
        ("admin_users", c.auth.admin_users.join(","), true),
        ("auth_type", c.auth.method.as_str().to_owned(), true),
        ("client_idle_timeout", secs(p.client_idle_timeout), true),
        (
            "client_login_timeout",
            secs(c.proxy.client_login_timeout),
            true,
        ),
        (
            "client_tls_sslmode",
            c.client_tls.mode.as_str().to_owned(),
            true,
        ),
        ("default_pool_size", p.size.to_string(), true),
        ("dns_max_ttl", secs(s.dns_max_ttl), true),
        (
            "idle_transaction_timeout",
            secs(p.idle_transaction_timeout),
            true,
        ),
        ("listen_addr", addr, false),
        ("listen_port", port, false),
        ("max_client_conn", c.proxy.max_client_conn.to_string(), true),
        ("max_db_connections", "0".to_owned(), true),
        (
            "max_packet_size",
            c.proxy.max_message_size.to_string(),
            true,
        ),
        (
            "max_prepared_statements",
            p.max_prepared_statements.to_string(),
            true,
        ),
        ("max_user_connections", "0".to_owned(), true),
        ("min_pool_size", p.min_idle.to_string(), true),
        ("pool_mode", mode_name(p.mode).to_owned(), true),
        ("query_timeout", secs(p.query_timeout), true),
        ("query_wait_timeout", secs(p.query_wait_timeout), true),
        ("server_check_delay", secs(p.server_check_delay), true),
        ("server_check_query", p.server_check_query.clone(), true),
        (
            "server_connect_timeout",
            secs(p.server_connect_timeout),
            true,
        ),
        ("server_idle_timeout", secs(p.server_idle_timeout), true),
        ("server_lifetime", secs(p.server_lifetime), true),
        ("server_reset_query", p.reset_query.clone(), true),
        (
            "server_tls_sslmode",
            c.server_tls.mode.as_str().to_owned(),
            true,
        ),
        ("shutdown_timeout", secs(c.proxy.shutdown_timeout), true),
        ("so_reuseport", "1".to_owned(), false),
        ("stats_period", secs(c.proxy.stats_period), false),
        ("stats_users", c.auth.stats_users.join(","), true),
        ("tcp_keepcnt", s.tcp_keepalive_count.to_string(), true),
        ("tcp_keepidle", secs(s.tcp_keepalive_idle), true),
        ("tcp_keepintvl", secs(s.tcp_keepalive_interval), true),
        (
            "tcp_user_timeout",
            s.tcp_user_timeout.as_millis().to_string(),
            true,
        ),
        ("transaction_timeout", secs(p.transaction_timeout), true),
    ]
}

pub fn config(buf: &mut BytesMut, shared: &Shared) {
    let config = shared.config.load();
    let defaults = settings(&Config::default());
    let mut t = Table::new(buf, "ssss", &["key", "value", "default", "changeable"]);
    for ((key, value, reloads), (_, default, _)) in settings(&config).iter().zip(&defaults) {
        t.row(&[
            Cell::Text(key),
            Cell::Text(value),
            Cell::Text(default),
            Cell::Text(if *reloads { "yes" } else { "no" }),
        ]);
    }
    t.finish();
}
