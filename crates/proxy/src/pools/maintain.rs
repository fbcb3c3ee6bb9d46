//! The background task that keeps pools in shape without waiting for a client.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbwarden_pool::Lease;
use parking_lot::Mutex;

use super::PoolEntry;
use crate::server::{ServerConn, ServerCtx};
use crate::Shared;

/// How often the task runs; also the shortest interval between background health checks.
const TICK: Duration = Duration::from_secs(1);

/// One pool's background health checks.
pub(crate) struct Checks {
    last: Mutex<Instant>,
    /// Checks (and replacements) in flight: while any runs, the connections it holds are
    /// not idle, and `min_idle` must not be topped up as if they were gone.
    running: Arc<AtomicU32>,
}

impl Default for Checks {
    fn default() -> Checks {
        Checks {
            last: Mutex::new(Instant::now()),
            running: Arc::default(),
        }
    }
}

impl Checks {
    /// Whether the pool's idle connections are due for a check, once per `delay` (at most
    /// once per tick); if so, the time is taken.
    fn due(&self, delay: Duration) -> bool {
        let mut last = self.last.lock();
        if last.elapsed() < delay.max(TICK) {
            return false;
        }
        *last = Instant::now();
        true
    }

    fn idle(&self) -> bool {
        self.running.load(Ordering::Acquire) == 0
    }
}

/// Counts one check in flight for as long as it lives.
struct Running(Arc<AtomicU32>);

impl Running {
    fn start(counter: &Arc<AtomicU32>) -> Running {
        counter.fetch_add(1, Ordering::AcqRel);
        Running(counter.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps pools in shape in the background, every second: closes connections idle past
/// `server_idle_timeout` or older than their `server_lifetime` (keeping `min_idle`),
/// health-checks idle connections every `server_check_delay` and replaces broken ones,
/// opens connections ahead of demand up to `min_idle`, and re-resolves each backend name
/// so that connections to an address it no longer has are drained.
pub async fn maintain(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let config = shared.config.load_full();
        let ctx = shared.server_ctx.load_full();
        shared.pools.sweep_empty();
        for entry in shared.pools.all() {
            let expired = entry.pool.take_expired(
                config.pool.server_idle_timeout,
                config.pool.server_lifetime,
                entry.min_idle(),
            );
            for conn in expired {
                tokio::spawn(conn.close());
            }
            entry
                .addrs
                .refresh(&ctx.dns, &entry.target.host, entry.target.port);
            if entry.breaker.admit().is_err() {
                continue; // the breaker's probe is already retrying
            }
            if entry.checks.due(ctx.reuse.check_delay) {
                for lease in entry.pool.take_idle_for_check(ctx.reuse.check_delay) {
                    let running = Running::start(&entry.checks.running);
                    let (entry, ctx) = (entry.clone(), ctx.clone());
                    tokio::spawn(async move {
                        check_or_replace(lease, &entry, &ctx).await;
                        drop(running);
                    });
                }
            }
            if !entry.checks.idle() {
                continue;
            }
            for permit in entry.pool.permits_for_min_idle(entry.min_idle()) {
                let (entry, ctx) = (entry.clone(), ctx.clone());
                tokio::spawn(async move { entry.open_idle(permit, &ctx, "min_idle").await });
            }
        }
    }
}

/// Checks one idle connection: a healthy one goes back to the pool, a broken one is closed
/// and a new connection opened in its place, so that the pool is as ready as it was.
async fn check_or_replace(mut lease: Lease<ServerConn>, entry: &PoolEntry, ctx: &ServerCtx) {
    let rules = &ctx.reuse;
    let server = lease.conn_mut();
    let pid = server.pid();
    match server.check(&rules.check_query, rules.check_timeout).await {
        Ok(()) => {
            lease.mark_checked();
            lease.release();
            return;
        }
        Err(e) => {
            tracing::info!(server.pid = pid, error = %e, "idle server connection failed its health check; replacing it");
            drop(lease);
        }
    }
    if entry.breaker.admit().is_err() {
        return;
    }
    for permit in entry.pool.reserve(1) {
        entry.open_idle(permit, ctx, "replacement").await;
    }
}
