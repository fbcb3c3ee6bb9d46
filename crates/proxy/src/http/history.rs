//! The last few minutes of each pool, one sample a second, so that the dashboard shows
//! history as soon as it opens. Kept only while the admin listener runs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::State;
use crate::pools::PoolKey;
use crate::stats::metrics::MAX_POOL_LABELS;
use crate::stats::{unix_us, PoolSnapshot, PoolStats};

pub const INTERVAL: Duration = Duration::from_secs(1);
/// Five minutes of one-second samples.
pub const SAMPLES: usize = 300;

/// What one second of one pool looked like.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    pub t_ms: u64,
    pub clients_active: u32,
    pub clients_waiting: u32,
    pub servers_active: u32,
    pub servers_idle: u32,
    /// Mean checkout wait of the checkouts in this second.
    pub wait_avg_ms: f64,
    /// The longest wait of a client still waiting when the sample was taken.
    pub wait_max_ms: f64,
    /// Mean query duration of the queries that ended in this second.
    pub query_avg_ms: f64,
    pub queries_per_s: f64,
}

/// The running totals a sample's rates are the difference of.
#[derive(Clone, Copy, Default)]
struct Totals {
    at: Option<SystemTime>,
    queries: u64,
    query_us: u64,
    assignments: u64,
    wait_us: u64,
}

impl Totals {
    fn read(p: &PoolStats, at: SystemTime) -> Totals {
        Totals {
            at: Some(at),
            queries: p.queries.load(Relaxed),
            query_us: p.query_us.load(Relaxed),
            assignments: p.server_assignments.load(Relaxed),
            wait_us: p.wait_us.load(Relaxed),
        }
    }
}

#[derive(Default)]
struct PoolHistory {
    samples: VecDeque<Sample>,
    last: Totals,
}

#[derive(Default)]
pub struct History {
    pools: HashMap<PoolKey, PoolHistory>,
}

fn mean_ms(us: u64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        us as f64 / n as f64 / 1000.0
    }
}

impl History {
    /// Adds a sample for each pool in `pools` taken at `now`, and forgets pools whose samples
    /// have all aged out.
    pub fn record(&mut self, pools: &[PoolSnapshot], now: SystemTime) {
        let t_ms = unix_us(now) / 1000;
        let window_ms = INTERVAL.as_millis() as u64 * SAMPLES as u64;
        for p in pools {
            if !self.pools.contains_key(&p.key) && self.pools.len() >= MAX_POOL_LABELS {
                continue; // bounded, like the metric labels
            }
            let h = self.pools.entry(p.key.clone()).or_default();
            let now_totals = Totals::read(&p.stats, now);
            let prev = match h.last.at {
                Some(_) => h.last,
                None => now_totals, // first sight: no rates yet
            };
            let secs = prev
                .at
                .and_then(|at| now.duration_since(at).ok())
                .map_or(0.0, |d| d.as_secs_f64());
            let queries = now_totals.queries.saturating_sub(prev.queries);
            let assignments = now_totals.assignments.saturating_sub(prev.assignments);
            h.last = now_totals;
            h.samples.push_back(Sample {
                t_ms,
                clients_active: p.clients.active,
                clients_waiting: p.clients.waiting,
                servers_active: p.servers.active,
                servers_idle: p.servers.idle,
                wait_avg_ms: mean_ms(now_totals.wait_us.saturating_sub(prev.wait_us), assignments),
                wait_max_ms: p.max_wait.as_secs_f64() * 1000.0,
                query_avg_ms: mean_ms(now_totals.query_us.saturating_sub(prev.query_us), queries),
                queries_per_s: if secs > 0.0 {
                    queries as f64 / secs
                } else {
                    0.0
                },
            });
            while h.samples.len() > SAMPLES {
                h.samples.pop_front();
            }
        }
        self.pools.retain(|_, h| {
            while h.samples.front().is_some_and(|s| s.t_ms + window_ms < t_ms) {
                h.samples.pop_front();
            }
            !h.samples.is_empty()
        });
    }

    /// The samples of `key` taken after `since_ms`, as columns (what the charts draw).
    pub fn columns(&self, key: &PoolKey, since_ms: u64) -> Columns {
        let mut c = Columns::default();
        let Some(h) = self.pools.get(key) else {
            return c;
        };
        for s in h.samples.iter().filter(|s| s.t_ms > since_ms) {
            c.t_ms.push(s.t_ms);
            c.clients_active.push(s.clients_active);
            c.clients_waiting.push(s.clients_waiting);
            c.servers_active.push(s.servers_active);
            c.servers_idle.push(s.servers_idle);
            c.wait_avg_ms.push(round3(s.wait_avg_ms));
            c.wait_max_ms.push(round3(s.wait_max_ms));
            c.query_avg_ms.push(round3(s.query_avg_ms));
            c.queries_per_s.push(round3(s.queries_per_s));
        }
        c
    }

    /// Pools that have history but are gone now (their last minutes still show).
    pub fn keys(&self) -> impl Iterator<Item = &PoolKey> {
        self.pools.keys()
    }
}

/// Three decimals are plenty for a chart and keep the JSON short.
fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[derive(Debug, Default, Serialize)]
pub struct Columns {
    pub t_ms: Vec<u64>,
    pub clients_active: Vec<u32>,
    pub clients_waiting: Vec<u32>,
    pub servers_active: Vec<u32>,
    pub servers_idle: Vec<u32>,
    pub wait_avg_ms: Vec<f64>,
    pub wait_max_ms: Vec<f64>,
    pub query_avg_ms: Vec<f64>,
    pub queries_per_s: Vec<f64>,
}

/// Takes a sample every [`INTERVAL`] until the admin listener stops.
pub async fn sample_every_second(state: Weak<State>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let (pools, _) = crate::stats::snapshot::pools(&state.shared);
        state.history.lock().record(&pools, SystemTime::now());
    }
}
