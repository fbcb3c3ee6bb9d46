//! SHOW POOLS, the SHOW STATS family, LISTS, STATE, VERSION, HELP and PREPARED. Column
//! names, order and type letters are PgBouncer 1.25's (`src/admin.c`, `src/stats.c`).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::BytesMut;
use dbwarden_config::PoolMode;

use super::averages::Totals;
use super::rows::{notice, Cell, Table};
use crate::stats::{snapshot, ClientState};
use crate::Shared;

/// What SHOW VERSION reports: PgBouncer's version this console follows, so that tools
/// that check it accept the answer, and ours.
pub const VERSION: &str = concat!(
    "PgBouncer 1.25.0 (dbwarden ",
    env!("CARGO_PKG_VERSION"),
    ")"
);

pub fn mode_name(mode: PoolMode) -> &'static str {
    match mode {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
    }
}

pub const POOLS: (&str, [&str; 17]) = (
    "ssiiiiiiiiiiiiiss",
    [
        "database",
        "user",
        "cl_active",
        "cl_waiting",
        "cl_active_cancel_req",
        "cl_waiting_cancel_req",
        "sv_active",
        "sv_active_cancel",
        "sv_being_canceled",
        "sv_idle",
        "sv_used",
        "sv_tested",
        "sv_login",
        "maxwait",
        "maxwait_us",
        "pool_mode",
        "load_balance_hosts",
    ],
);

pub fn pools(buf: &mut BytesMut, shared: &Shared) {
    let (pools, _) = snapshot::pools(shared);
    let default_mode = shared.config.load().pool.mode;
    let mut t = Table::new(buf, POOLS.0, &POOLS.1);
    for p in &pools {
        let (c, s) = (p.clients, p.servers);
        let int = |v: u32| Cell::Int(i64::from(v));
        t.row(&[
            Cell::Text(&p.key.database),
            Cell::Text(&p.key.user),
            // PgBouncer's cl_active counts logged-in clients not waiting: linked or idle.
            int(c.active + c.idle),
            int(c.waiting),
            int(0),
            int(0),
            int(s.active),
            int(0),
            int(0),
            int(s.idle),
            int(0),
            int(s.tested),
            int(s.login),
            Cell::Int(p.max_wait.as_secs() as i64),
            Cell::Int(i64::from(p.max_wait.subsec_micros())),
            Cell::Text(mode_name(p.mode.unwrap_or(default_mode))),
            Cell::Null,
        ]);
    }
    t.finish();
}

/// SHOW TOTALS row names after `total_`/`avg_`: PgBouncer prints its struct field names.
const TOTALS_NAMES: [&str; 11] = [
    "server_assignment_count",
    "xact_count",
    "query_count",
    "client_bytes",
    "server_bytes",
    "xact_time",
    "query_time",
    "wait_time",
    "ps_client_parse_count",
    "ps_server_parse_count",
    "ps_bind_count",
];

pub const STATS: (&str, [&str; 23]) = (
    "sNNNNNNNNNNNNNNNNNNNNNN",
    [
        "database",
        "total_server_assignment_count",
        "total_xact_count",
        "total_query_count",
        "total_received",
        "total_sent",
        "total_xact_time",
        "total_query_time",
        "total_wait_time",
        "total_client_parse_count",
        "total_server_parse_count",
        "total_bind_count",
        "avg_server_assignment_count",
        "avg_xact_count",
        "avg_query_count",
        "avg_recv",
        "avg_sent",
        "avg_xact_time",
        "avg_query_time",
        "avg_wait_time",
        "avg_client_parse_count",
        "avg_server_parse_count",
        "avg_bind_count",
    ],
);

pub const STATS_TOTALS: (&str, [&str; 12]) = (
    "sNNNNNNNNNNN",
    [
        "database",
        "server_assignment_count",
        "xact_count",
        "query_count",
        "bytes_received",
        "bytes_sent",
        "xact_time",
        "query_time",
        "wait_time",
        "client_parse_count",
        "server_parse_count",
        "bind_count",
    ],
);

pub const STATS_AVERAGES: (&str, [&str; 12]) = (
    "sNNNNNNNNNNN",
    [
        "database",
        "server_assignment_count",
        "xact_count",
        "query_count",
        "bytes_received",
        "bytes_sent",
        "xact_time",
        "query_time",
        "wait_time",
        "avg_client_parse_count",
        "avg_server_parse_count",
        "avg_bind_count",
    ],
);

fn values(t: &Totals) -> [u64; 11] {
    [
        t.server_assignments,
        t.xacts,
        t.queries,
        t.received,
        t.sent,
        t.xact_us,
        t.query_us,
        t.wait_us,
        t.client_parses,
        t.server_parses,
        t.binds,
    ]
}

/// Per database (PgBouncer sums a database's pools): the totals since start and the
/// averages over the last stats period. Pools that are gone still count.
fn per_database(shared: &Shared) -> (BTreeMap<String, (Totals, Totals)>, Duration) {
    let mut dbs: BTreeMap<String, (Totals, Totals)> = BTreeMap::new();
    let mut since = Duration::ZERO;
    for p in shared.stats.pools() {
        let (old, dur) = shared.averages.baseline(&p.key);
        since = dur;
        let entry = dbs.entry(p.key.database.clone()).or_default();
        entry.0.add(&Totals::of(&p));
        entry.1.add(&old);
    }
    (dbs, since)
}

#[derive(Clone, Copy)]
pub enum StatsView {
    All,
    Totals,
    Averages,
}

pub fn stats(buf: &mut BytesMut, shared: &Shared, view: StatsView) {
    let (letters, names): (&str, &[&str]) = match view {
        StatsView::All => (STATS.0, &STATS.1),
        StatsView::Totals => (STATS_TOTALS.0, &STATS_TOTALS.1),
        StatsView::Averages => (STATS_AVERAGES.0, &STATS_AVERAGES.1),
    };
    let (dbs, since) = per_database(shared);
    let mut t = Table::new(buf, letters, names);
    for (db, (cur, old)) in &dbs {
        let avg = cur.average_since(old, since);
        let mut cells = vec![Cell::Text(db)];
        if !matches!(view, StatsView::Averages) {
            cells.extend(values(cur).map(Cell::Uint));
        }
        if !matches!(view, StatsView::Totals) {
            cells.extend(values(&avg).map(Cell::Uint));
        }
        t.row(&cells);
    }
    t.finish();
}

/// SHOW TOTALS: the same, summed over every database, one row per figure.
pub fn totals(buf: &mut BytesMut, shared: &Shared) {
    let (dbs, since) = per_database(shared);
    let (mut cur, mut old) = (Totals::default(), Totals::default());
    for (c, o) in dbs.values() {
        cur.add(c);
        old.add(o);
    }
    let avg = cur.average_since(&old, since);
    let mut t = Table::new(buf, "sN", &["name", "value"]);
    for (prefix, v) in [("total_", values(&cur)), ("avg_", values(&avg))] {
        for (name, value) in TOTALS_NAMES.iter().zip(v) {
            t.row(&[Cell::Text(&format!("{prefix}{name}")), Cell::Uint(value)]);
        }
    }
    t.finish();
}

pub fn lists(buf: &mut BytesMut, shared: &Shared) {
    let config = shared.config.load();
    let clients = shared.stats.clients.all();
    let login = clients
        .iter()
        .filter(|c| c.state() == ClientState::Login)
        .count();
    let rows = [
        ("databases", config.databases.len()),
        ("users", config.users.len()),
        ("peers", 0),
        ("pools", shared.pools.all().len()),
        ("peer_pools", 0),
        ("free_clients", 0),
        ("used_clients", clients.len()),
        ("login_clients", login),
        ("free_servers", 0),
        ("used_servers", shared.stats.servers.len()),
        ("dns_names", 0),
        ("dns_zones", 0),
        ("dns_queries", 0),
        ("dns_pending", 0),
    ];
    let mut t = Table::new(buf, "si", &["list", "items"]);
    for (name, n) in rows {
        t.row(&[Cell::Text(name), Cell::Int(n as i64)]);
    }
    t.finish();
}

pub fn state(buf: &mut BytesMut, shared: &Shared) {
    let paused = *shared.paused.borrow();
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    let mut t = Table::new(buf, "ss", &["key", "value"]);
    t.row(&["active".into(), yes_no(!paused).into()]);
    t.row(&["paused".into(), yes_no(paused).into()]);
    t.row(&["suspended".into(), "no".into()]);
    t.finish();
}

pub fn version(buf: &mut BytesMut) {
    let mut t = Table::new(buf, "s", &["version"]);
    t.row(&[Cell::Text(VERSION)]);
    t.finish();
}

pub fn help(buf: &mut BytesMut) {
    notice(buf, "Console usage", Some(super::command::HELP));
    super::rows::command_complete(buf, "SHOW");
}

/// SHOW PREPARED, dbwarden's own: per pool, what the named-statement cache did.
pub const PREPARED: (&str, [&str; 8]) = (
    "ssNNNNNN",
    [
        "database",
        "user",
        "client_parse_count",
        "server_parse_count",
        "bind_count",
        "hits",
        "misses",
        "evictions",
    ],
);

pub fn prepared(buf: &mut BytesMut, shared: &Shared) {
    let mut pools = shared.stats.pools();
    pools.sort_by(|a, b| (&a.key.database, &a.key.user).cmp(&(&b.key.database, &b.key.user)));
    let mut t = Table::new(buf, PREPARED.0, &PREPARED.1);
    for p in &pools {
        let n = |a: &std::sync::atomic::AtomicU64| Cell::Uint(a.load(Relaxed));
        t.row(&[
            Cell::Text(&p.key.database),
            Cell::Text(&p.key.user),
            n(&p.client_parses),
            n(&p.server_parses),
            n(&p.binds),
            n(&p.prepared_hits),
            n(&p.prepared_misses),
            n(&p.prepared_evictions),
        ]);
    }
    t.finish();
}
