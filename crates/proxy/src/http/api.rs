//! `/api/pools` and `/api/clients`: the same numbers as the metrics, as JSON for scripts and
//! the dashboard. Field names are part of the API (docs/metrics.md lists them).

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dbwarden_config::PoolMode;
use serde::Serialize;

use super::history::{self, Columns};
use super::State;
use crate::stats::{ClientCounts, ClientState, PoolStats, ProcessCounts, ServerCounts};
use crate::Shared;

#[derive(Serialize)]
pub struct PoolsReply {
    pub now_ms: u64,
    pub version: &'static str,
    pub started: String,
    pub paused: bool,
    pub shutting_down: bool,
    pub interval_ms: u64,
    pub window_s: u64,
    pub clients: ClientsByState,
    pub pools: Vec<PoolReply>,
}

#[derive(Serialize)]
pub struct ClientsByState {
    pub login: u32,
    pub idle: u32,
    pub waiting: u32,
    pub active: u32,
}

#[derive(Serialize)]
pub struct PoolReply {
    pub database: String,
    pub user: String,
    /// `session` or `transaction`; null when the database left the config.
    pub mode: Option<&'static str>,
    pub backend: Option<String>,
    pub size: u32,
    pub clients: ClientCountsReply,
    pub servers: ServerCountsReply,
    pub max_wait_ms: f64,
    pub breaker: Option<BreakerReply>,
    pub totals: TotalsReply,
    pub history: Columns,
}

#[derive(Serialize)]
pub struct ClientCountsReply {
    pub idle: u32,
    pub waiting: u32,
    pub active: u32,
}

#[derive(Serialize)]
pub struct ServerCountsReply {
    pub active: u32,
    pub idle: u32,
    pub tested: u32,
    pub login: u32,
}

#[derive(Serialize)]
pub struct BreakerReply {
    pub open_since: String,
    pub reason: String,
}

/// Running totals since the proxy started (PgBouncer's SHOW STATS `total_*`).
#[derive(Serialize)]
pub struct TotalsReply {
    pub transactions: u64,
    pub queries: u64,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub server_assignments: u64,
    pub transaction_time_us: u64,
    pub query_time_us: u64,
    pub wait_time_us: u64,
    pub client_parses: u64,
    pub server_parses: u64,
    pub binds: u64,
    pub prepared_hits: u64,
    pub prepared_misses: u64,
    pub prepared_evictions: u64,
}

impl TotalsReply {
    fn read(p: &PoolStats) -> TotalsReply {
        TotalsReply {
            transactions: p.xacts.load(Relaxed),
            queries: p.queries.load(Relaxed),
            received_bytes: p.received.load(Relaxed),
            sent_bytes: p.sent.load(Relaxed),
            server_assignments: p.server_assignments.load(Relaxed),
            transaction_time_us: p.xact_us.load(Relaxed),
            query_time_us: p.query_us.load(Relaxed),
            wait_time_us: p.wait_us.load(Relaxed),
            client_parses: p.client_parses.load(Relaxed),
            server_parses: p.server_parses.load(Relaxed),
            binds: p.binds.load(Relaxed),
            prepared_hits: p.prepared_hits.load(Relaxed),
            prepared_misses: p.prepared_misses.load(Relaxed),
            prepared_evictions: p.prepared_evictions.load(Relaxed),
        }
    }
}

fn ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn mode_name(m: PoolMode) -> &'static str {
    match m {
        PoolMode::Session => "session",
        PoolMode::Transaction => "transaction",
    }
}

pub fn pools(state: &State, since_ms: u64) -> PoolsReply {
    let shared = &state.shared;
    let (pools, process) = crate::stats::snapshot::pools(shared);
    let history = state.history.lock();
    let mut out: Vec<PoolReply> = pools
        .iter()
        .map(|p| {
            let (c, s): (ClientCounts, ServerCounts) = (p.clients, p.servers);
            PoolReply {
                database: p.key.database.clone(),
                user: p.key.user.clone(),
                mode: p.mode.map(mode_name),
                backend: p.backend.clone(),
                size: p.size,
                clients: ClientCountsReply {
                    idle: c.idle,
                    waiting: c.waiting,
                    active: c.active,
                },
                servers: ServerCountsReply {
                    active: s.active,
                    idle: s.idle,
                    tested: s.tested,
                    login: s.login,
                },
                max_wait_ms: p.max_wait.as_secs_f64() * 1000.0,
                breaker: p.breaker_open.as_ref().map(|(since, reason)| BreakerReply {
                    open_since: rfc3339(*since),
                    reason: reason.clone(),
                }),
                totals: TotalsReply::read(&p.stats),
                history: history.columns(&p.key, since_ms),
            }
        })
        .collect();
    // Pools forgotten since (idle, swept) keep showing their last minutes.
    let all_stats = shared.stats.pools();
    for key in history.keys() {
        if pools.iter().any(|p| &p.key == key) {
            continue;
        }
        let Some(stats) = all_stats.iter().find(|s| &s.key == key) else {
            continue;
        };
        out.push(PoolReply {
            database: key.database.clone(),
            user: key.user.clone(),
            mode: None,
            backend: None,
            size: 0,
            clients: ClientCountsReply {
                idle: 0,
                waiting: 0,
                active: 0,
            },
            servers: ServerCountsReply {
                active: 0,
                idle: 0,
                tested: 0,
                login: 0,
            },
            max_wait_ms: 0.0,
            breaker: None,
            totals: TotalsReply::read(stats),
            history: history.columns(key, since_ms),
        });
    }
    drop(history);
    out.sort_by(|a, b| (&a.database, &a.user).cmp(&(&b.database, &b.user)));
    let ProcessCounts {
        login,
        idle,
        waiting,
        active,
    } = process;
    PoolsReply {
        now_ms: ms(SystemTime::now()),
        version: env!("CARGO_PKG_VERSION"),
        started: rfc3339(shared.stats.started),
        paused: *shared.paused.borrow(),
        shutting_down: shared.shutting_down.load(Relaxed),
        interval_ms: history::INTERVAL.as_millis() as u64,
        window_s: history::INTERVAL.as_secs() * history::SAMPLES as u64,
        clients: ClientsByState {
            login,
            idle,
            waiting,
            active,
        },
        pools: out,
    }
}

#[derive(Serialize)]
pub struct ClientsReply {
    pub clients: Vec<ClientReply>,
}

#[derive(Serialize)]
pub struct ClientReply {
    pub id: u64,
    pub addr: String,
    pub state: &'static str,
    pub database: Option<String>,
    pub user: Option<String>,
    pub application_name: Option<String>,
    pub tls: bool,
    pub connected_at: String,
    /// When the client entered its current state.
    pub state_since: String,
    /// How long it has waited for a server connection, while waiting.
    pub wait_ms: Option<f64>,
    pub server_pid: Option<i32>,
    /// The W3C trace id of its current request, when it sent one.
    pub trace_id: Option<String>,
}

pub fn clients(shared: &Shared) -> ClientsReply {
    let now_us = crate::stats::unix_us(SystemTime::now());
    let mut all = shared.stats.clients.all();
    all.sort_by_key(|c| c.id);
    let clients = all
        .iter()
        .map(|c| {
            let state = c.state();
            let since_us = c.since_us();
            let login = c.login();
            let pid = c.server_pid();
            ClientReply {
                id: c.id,
                addr: c.addr.to_string(),
                state: state.as_str(),
                // A console session has no pool; it shows the name it logged in with.
                database: login
                    .map(|l| l.database.clone())
                    .or_else(|| c.console().map(|l| l.database.clone())),
                user: login
                    .map(|l| l.user.clone())
                    .or_else(|| c.console().map(|l| l.user.clone())),
                application_name: login
                    .map(|l| l.application_name.clone())
                    .or_else(|| c.console().map(|l| l.application_name.clone())),
                tls: c.tls.load(Relaxed),
                connected_at: rfc3339(c.connected_at),
                state_since: rfc3339(UNIX_EPOCH + Duration::from_micros(since_us)),
                wait_ms: (state == ClientState::Waiting)
                    .then(|| now_us.saturating_sub(since_us) as f64 / 1000.0),
                server_pid: (pid != 0).then_some(pid),
                trace_id: c.trace_id().map(|t| format!("{t:032x}")),
            }
        })
        .collect();
    ClientsReply { clients }
}
