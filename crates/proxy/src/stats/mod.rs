//! What the proxy knows about itself, for the admin console, `/metrics` and the dashboard.
//!
//! Three kinds of state, chosen so that the hot path pays a few relaxed atomic adds per
//! query and nothing more:
//! - [`PoolStats`]: running totals per pool (PgBouncer's SHOW STATS columns) as atomics,
//!   plus the latency histograms; kept across pool re-creation so counters never go back.
//! - the registries of live clients and server connections ([`ClientInfo`], [`ServerInfo`]),
//!   whose state is a byte stored on each transition;
//! - gauges (clients waiting, servers idle, ...) are not kept at all: they are counted from
//!   the pools and registries when somebody asks.

mod clients;
pub(crate) mod gauges;
pub mod metrics;
mod registry;
mod servers;
pub(crate) mod snapshot;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dbwarden_wire::frontend::tag as fe;
use parking_lot::Mutex;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::histogram::Histogram;

pub use clients::{ClientInfo, ClientLogin, ClientState, ConsoleLogin};
pub use metrics::{Metrics, TimeoutKind};
pub use registry::{Registered, Registry};
pub use servers::{ServerInfo, ServerState};
pub use snapshot::{ClientCounts, PoolSnapshot, ProcessCounts, ServerCounts};

use metrics::{ErrorLabels, PoolLabels, TraceExemplar, MAX_POOL_LABELS};

use crate::pools::PoolKey;

pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX)) as u64
}

/// Running totals of one pool since the proxy started. Field names follow PgBouncer's
/// SHOW STATS (`total_*`).
pub struct PoolStats {
    pub key: PoolKey,
    pub labels: PoolLabels,
    pub server_assignments: AtomicU64,
    pub xacts: AtomicU64,
    pub queries: AtomicU64,
    /// Bytes from clients to servers.
    pub received: AtomicU64,
    /// Bytes from servers to clients.
    pub sent: AtomicU64,
    pub xact_us: AtomicU64,
    pub query_us: AtomicU64,
    pub wait_us: AtomicU64,
    pub client_parses: AtomicU64,
    pub server_parses: AtomicU64,
    pub binds: AtomicU64,
    pub prepared_hits: AtomicU64,
    pub prepared_misses: AtomicU64,
    pub prepared_evictions: AtomicU64,
    /// Server connections being opened now (PgBouncer's `sv_login`).
    pub connecting: AtomicI64,
    checkout_wait: Histogram,
    query_duration: HistogramWithExemplars<TraceExemplar>,
    xact_duration: HistogramWithExemplars<TraceExemplar>,
    metrics: Arc<Metrics>,
}

impl PoolStats {
    /// A checkout that waited `waited` handed a server connection out.
    pub fn assigned(&self, waited: Duration) {
        self.server_assignments.fetch_add(1, Ordering::Relaxed);
        self.wait_us.fetch_add(micros(waited), Ordering::Relaxed);
        self.checkout_wait.observe(waited.as_secs_f64());
    }

    /// An error went to a client of this pool (from the server or made up by the proxy).
    pub fn error(&self, code: &str) {
        let class = code.get(..2).unwrap_or("??").to_owned();
        self.metrics
            .errors
            .get_or_create(&ErrorLabels {
                database: self.labels.database.clone(),
                user: self.labels.user.clone(),
                class,
                code: metrics::notable(code),
            })
            .inc();
    }

    /// Named statements a transaction found prepared, had to prepare (each a Parse to the
    /// server), and closed for room: `[hits, misses, evictions]`.
    pub fn prepared(&self, [hits, misses, evictions]: [u64; 3]) {
        if hits + misses + evictions == 0 {
            return;
        }
        self.prepared_hits.fetch_add(hits, Ordering::Relaxed);
        self.prepared_misses.fetch_add(misses, Ordering::Relaxed);
        self.server_parses.fetch_add(misses, Ordering::Relaxed);
        self.prepared_evictions
            .fetch_add(evictions, Ordering::Relaxed);
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// `n` bytes went from a client to its server (`up`) or back.
    #[inline]
    pub fn moved(&self, up: bool, n: usize) {
        let total = if up { &self.received } else { &self.sent };
        total.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Process-wide state: one per [`crate::Proxy`].
pub struct Stats {
    pub started: SystemTime,
    pub registry: Mutex<prometheus_client::registry::Registry>,
    pub metrics: Arc<Metrics>,
    pub clients: Arc<Registry<ClientInfo>>,
    pub servers: Arc<Registry<ServerInfo>>,
    pools: Mutex<HashMap<PoolKey, Arc<PoolStats>>>,
    next_server_id: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        let mut registry = prometheus_client::registry::Registry::with_prefix("dbwarden");
        let metrics = Arc::new(Metrics::new(&mut registry));
        Stats {
            started: SystemTime::now(),
            registry: Mutex::new(registry),
            metrics,
            clients: Arc::default(),
            servers: Arc::default(),
            pools: Mutex::default(),
            next_server_id: AtomicU64::new(1),
        }
    }
}

impl Stats {
    /// The totals of pool `key`, created on first use. Kept when the pool itself is
    /// replaced (a reload that changes its backend), so counters only go up.
    pub fn pool(&self, key: &PoolKey) -> Arc<PoolStats> {
        let mut pools = self.pools.lock();
        if let Some(p) = pools.get(key) {
            return p.clone();
        }
        let labels = if pools.len() < MAX_POOL_LABELS {
            PoolLabels {
                database: key.database.clone(),
                user: key.user.clone(),
            }
        } else {
            PoolLabels {
                database: "_other".to_owned(),
                user: "_other".to_owned(),
            }
        };
        let m = &self.metrics;
        let stats = Arc::new(PoolStats {
            key: key.clone(),
            server_assignments: AtomicU64::new(0),
            xacts: AtomicU64::new(0),
            queries: AtomicU64::new(0),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            xact_us: AtomicU64::new(0),
            query_us: AtomicU64::new(0),
            wait_us: AtomicU64::new(0),
            client_parses: AtomicU64::new(0),
            server_parses: AtomicU64::new(0),
            binds: AtomicU64::new(0),
            prepared_hits: AtomicU64::new(0),
            prepared_misses: AtomicU64::new(0),
            prepared_evictions: AtomicU64::new(0),
            connecting: AtomicI64::new(0),
            checkout_wait: m.checkout_wait.get_or_create(&labels).clone(),
            query_duration: m.query_duration.get_or_create(&labels).clone(),
            xact_duration: m.transaction_duration.get_or_create(&labels).clone(),
            metrics: m.clone(),
            labels,
        });
        pools.insert(key.clone(), stats.clone());
        stats
    }

    /// Every pool's totals, including pools that no longer exist.
    pub fn pools(&self) -> Vec<Arc<PoolStats>> {
        self.pools.lock().values().cloned().collect()
    }

    pub fn next_server_id(&self) -> u64 {
        self.next_server_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Times queries and transactions as their messages pass, for one client's relay.
///
/// A query starts when a message that the server answers with ReadyForQuery (Query, Sync)
/// arrives with nothing outstanding, and ends at that ReadyForQuery; a pipelined one starts
/// when the previous one ends. A transaction runs from its first query to the
/// ReadyForQuery that reports idle (so pipelined autocommit queries are a transaction each).
pub struct Meter {
    pool: Arc<PoolStats>,
    query_start: Option<Instant>,
    xact_start: Option<Instant>,
    /// The trace id of the request being timed, attached to the observations as exemplar.
    pub trace_id: Option<u128>,
    /// Sets `trace_id` from the client's traceparent; the slow-query log and spans.
    watch: Option<Box<crate::trace::Watch>>,
}

impl Meter {
    pub fn new(pool: Arc<PoolStats>) -> Meter {
        Meter {
            pool,
            query_start: None,
            xact_start: None,
            trace_id: None,
            watch: None,
        }
    }

    pub fn watched(mut self, watch: crate::trace::Watch) -> Meter {
        self.watch = Some(Box::new(watch));
        self
    }

    pub fn pool(&self) -> &Arc<PoolStats> {
        &self.pool
    }

    /// A message from the client: `frame` is all of it for Query and Parse, else at least
    /// its header.
    #[inline]
    pub fn client_message(&mut self, tag: u8, frame: &[u8]) {
        if let Some(w) = &mut self.watch {
            w.client_frame(tag, frame, &mut self.trace_id);
        }
        match tag {
            fe::QUERY | fe::SYNC if self.query_start.is_none() => {
                let now = Instant::now();
                self.query_start = Some(now);
                self.xact_start.get_or_insert(now);
            }
            fe::PARSE => {
                self.pool.client_parses.fetch_add(1, Ordering::Relaxed);
            }
            fe::BIND => {
                self.pool.binds.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// A ReadyForQuery went to the client. `more`: the server still owes answers to
    /// pipelined messages; `idle`: it reported no open transaction.
    #[inline]
    pub fn ready(&mut self, more: bool, idle: bool) {
        let Some(start) = self.query_start.take() else {
            return; // the proxy's own query, or one it answered itself
        };
        let now = Instant::now();
        let took = now - start;
        let p = &self.pool;
        p.queries.fetch_add(1, Ordering::Relaxed);
        p.query_us.fetch_add(micros(took), Ordering::Relaxed);
        let exemplar = self.exemplar();
        p.query_duration
            .observe(took.as_secs_f64(), exemplar.clone(), None);
        if let Some(w) = &mut self.watch {
            w.query_done(took, self.trace_id, p);
        }
        if more {
            self.query_start = Some(now);
        }
        // Idle ends the transaction, whatever else is pipelined behind it.
        if idle {
            if let Some(begun) = self.xact_start.take() {
                let took = now - begun;
                p.xacts.fetch_add(1, Ordering::Relaxed);
                p.xact_us.fetch_add(micros(took), Ordering::Relaxed);
                p.xact_duration.observe(took.as_secs_f64(), exemplar, None);
                if let Some(w) = &mut self.watch {
                    w.transaction_done(took, self.trace_id, p);
                }
            }
            if more {
                self.xact_start = Some(now);
            } else {
                self.trace_id = None;
                if let Some(w) = &mut self.watch {
                    w.end();
                }
            }
        }
    }

    /// A message from the server (at least its header).
    #[inline]
    pub fn server_message(&mut self, frame: &[u8]) {
        if let Some(w) = &mut self.watch {
            w.server_frame(frame);
        }
    }

    /// An error went to the client.
    pub fn error(&mut self, code: &str) {
        self.pool.error(code);
        if let Some(w) = &mut self.watch {
            w.error(code);
        }
    }

    fn exemplar(&self) -> Option<TraceExemplar> {
        self.trace_id.map(|id| TraceExemplar {
            trace_id: format!("{id:032x}"),
        })
    }
}

#[cfg(test)]
mod tests;
