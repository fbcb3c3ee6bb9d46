//! `/readyz`: may a load balancer send clients here?
//!
//! Not when the proxy is shutting down, and not while the backend of a configured database is
//! known to be down. "Known" is the circuit breaker's judgement: `breaker_failures`
//! consecutive failed connects open it and its probe's first successful login closes it. The
//! check is passive on purpose: a readiness probe every few seconds from every load balancer
//! must not turn into logins on the database.

use std::collections::HashSet;

use serde::Serialize;

use crate::Shared;

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub shutting_down: bool,
    /// Paused proxies stay ready: clients wait (bounded by `query_wait_timeout`) rather
    /// than being sent elsewhere mid-failover.
    pub paused: bool,
    /// Why not ready, one line per cause; empty when ready.
    pub reasons: Vec<String>,
}

pub fn check(shared: &Shared) -> Readiness {
    let shutting_down = shared
        .shutting_down
        .load(std::sync::atomic::Ordering::Relaxed);
    let mut reasons = Vec::new();
    if shutting_down {
        reasons.push("shutting down: no longer accepting clients".to_owned());
    }
    // Only backends the current config points at: a breaker left open for a backend that a
    // reload removed must not keep the proxy unready.
    let config = shared.config.load();
    let configured: HashSet<String> = config
        .databases
        .values()
        .map(|d| format!("{}:{}", d.host, d.port))
        .collect();
    let mut breakers = shared.pools.breakers().all();
    breakers.sort_by(|a, b| a.backend().cmp(b.backend()));
    for b in breakers {
        if !configured.contains(b.backend()) {
            continue;
        }
        if let Some((since, why)) = b.open_since() {
            reasons.push(format!(
                "backend {} unreachable since {}: {why}",
                b.backend(),
                humantime::format_rfc3339_millis(since)
            ));
        }
    }
    Readiness {
        ready: reasons.is_empty(),
        shutting_down,
        paused: *shared.paused.borrow(),
        reasons,
    }
}
