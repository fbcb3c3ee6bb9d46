//! SHOW STATS averages, from snapshots of the running totals taken every `stats_period` by
//! a background task, never on a client's path. Same arithmetic as PgBouncer's `stats.c`:
//! an average covers the time since the snapshot before last, so it always spans at least
//! one whole period; counts and bytes are per second, times are per transaction, query or
//! server assignment.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::pools::PoolKey;
use crate::stats::PoolStats;
use crate::Shared;

/// The SHOW STATS totals of one pool (or a sum of pools).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub server_assignments: u64,
    pub xacts: u64,
    pub queries: u64,
    pub received: u64,
    pub sent: u64,
    pub xact_us: u64,
    pub query_us: u64,
    pub wait_us: u64,
    pub client_parses: u64,
    pub server_parses: u64,
    pub binds: u64,
}

impl Totals {
    pub fn of(p: &PoolStats) -> Totals {
        Totals {
            server_assignments: p.server_assignments.load(Relaxed),
            xacts: p.xacts.load(Relaxed),
            queries: p.queries.load(Relaxed),
            received: p.received.load(Relaxed),
            sent: p.sent.load(Relaxed),
            xact_us: p.xact_us.load(Relaxed),
            query_us: p.query_us.load(Relaxed),
            wait_us: p.wait_us.load(Relaxed),
            client_parses: p.client_parses.load(Relaxed),
            server_parses: p.server_parses.load(Relaxed),
            binds: p.binds.load(Relaxed),
        }
    }

    pub fn add(&mut self, o: &Totals) {
        self.server_assignments += o.server_assignments;
        self.xacts += o.xacts;
        self.queries += o.queries;
        self.received += o.received;
        self.sent += o.sent;
        self.xact_us += o.xact_us;
        self.query_us += o.query_us;
        self.wait_us += o.wait_us;
        self.client_parses += o.client_parses;
        self.server_parses += o.server_parses;
        self.binds += o.binds;
    }

    /// The averages between snapshot `old` and `self`, taken `dur` apart.
    pub fn average_since(&self, old: &Totals, dur: Duration) -> Totals {
        let us = dur.as_micros().min(u128::from(u64::MAX)) as u64;
        if us == 0 {
            return Totals::default();
        }
        let per_sec = |cur: u64, old: u64| {
            (u128::from(cur.saturating_sub(old)) * 1_000_000 / u128::from(us)) as u64
        };
        let per = |cur: u64, old: u64, n: u64| cur.saturating_sub(old).checked_div(n).unwrap_or(0);
        let xacts = self.xacts.saturating_sub(old.xacts);
        let queries = self.queries.saturating_sub(old.queries);
        let assignments = self
            .server_assignments
            .saturating_sub(old.server_assignments);
        Totals {
            server_assignments: per_sec(self.server_assignments, old.server_assignments),
            xacts: per_sec(self.xacts, old.xacts),
            queries: per_sec(self.queries, old.queries),
            received: per_sec(self.received, old.received),
            sent: per_sec(self.sent, old.sent),
            xact_us: per(self.xact_us, old.xact_us, xacts),
            query_us: per(self.query_us, old.query_us, queries),
            wait_us: per(self.wait_us, old.wait_us, assignments),
            client_parses: per_sec(self.client_parses, old.client_parses),
            server_parses: per_sec(self.server_parses, old.server_parses),
            binds: per_sec(self.binds, old.binds),
        }
    }
}

struct Snapshots {
    /// When `older` was taken.
    old_stamp: Instant,
    new_stamp: Instant,
    older: HashMap<PoolKey, Totals>,
    newer: HashMap<PoolKey, Totals>,
}

/// The two latest snapshots of every pool's totals.
pub struct Averages(Mutex<Snapshots>);

impl Default for Averages {
    fn default() -> Self {
        let now = Instant::now();
        // As PgBouncer: before the first period ends, averages cover the time since start
        // plus one second (so they are never divided by zero).
        Averages(Mutex::new(Snapshots {
            old_stamp: now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
            new_stamp: now,
            older: HashMap::new(),
            newer: HashMap::new(),
        }))
    }
}

impl Averages {
    /// Takes a snapshot of `pools` now.
    pub fn tick(&self, pools: &[Arc<PoolStats>]) {
        let snap: HashMap<PoolKey, Totals> = pools
            .iter()
            .map(|p| (p.key.clone(), Totals::of(p)))
            .collect();
        let mut s = self.0.lock();
        s.older = std::mem::replace(&mut s.newer, snap);
        s.old_stamp = s.new_stamp;
        s.new_stamp = Instant::now();
    }

    /// The snapshot an average of `key` starts from, and how long ago it was taken.
    pub fn baseline(&self, key: &PoolKey) -> (Totals, Duration) {
        let s = self.0.lock();
        let old = s.older.get(key).copied().unwrap_or_default();
        (old, s.old_stamp.elapsed())
    }
}

/// Snapshots every pool's totals each `period` until the proxy is gone.
pub async fn sample(shared: Weak<Shared>, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        shared.averages.tick(&shared.stats.pools());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_per_second_and_times_per_event() {
        let old = Totals {
            xacts: 10,
            queries: 20,
            xact_us: 1_000,
            query_us: 2_000,
            server_assignments: 10,
            wait_us: 100,
            received: 1_000,
            ..Totals::default()
        };
        let cur = Totals {
            xacts: 30,
            queries: 60,
            xact_us: 5_000,
            query_us: 6_000,
            server_assignments: 12,
            wait_us: 300,
            received: 3_000,
            ..Totals::default()
        };
        let avg = cur.average_since(&old, Duration::from_secs(2));
        assert_eq!(avg.xacts, 10);
        assert_eq!(avg.queries, 20);
        assert_eq!(avg.received, 1_000);
        assert_eq!(avg.server_assignments, 1);
        assert_eq!(avg.xact_us, 200);
        assert_eq!(avg.query_us, 100);
        assert_eq!(avg.wait_us, 100);
        assert_eq!(
            cur.average_since(&cur, Duration::from_secs(2)),
            Totals::default()
        );
        assert_eq!(cur.average_since(&old, Duration::ZERO), Totals::default());
    }
}
