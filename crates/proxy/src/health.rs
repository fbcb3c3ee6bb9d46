//! Backend health: a circuit breaker per backend (host and port).
//!
//! Without it, every client that arrives while PostgreSQL is down pays a full connect attempt
//! (up to `server_connect_timeout` when packets vanish) and the backend gets a storm of
//! connects the moment it comes back. After `breaker_failures` consecutive failures the
//! breaker opens: checkouts fail at once, and a single background probe retries with
//! backoff; its first successful login closes the breaker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant, SystemTime};

use dbwarden_wire::SqlState;
use parking_lot::{Mutex, RwLock};

use crate::error::{ServerError, SessionError};
use crate::server::{connect, ServerCtx, ServerTarget};

/// The breaker settings from `[server]`.
#[derive(Clone, Copy, Debug)]
pub struct BreakerSettings {
    /// Zero: the breaker never opens.
    pub failures: u32,
    pub probe_interval: Duration,
    pub probe_max_interval: Duration,
}

impl BreakerSettings {
    pub fn from_config(c: &dbwarden_config::ServerConfig) -> BreakerSettings {
        BreakerSettings {
            failures: c.breaker_failures,
            probe_interval: c.breaker_probe_interval,
            probe_max_interval: c.breaker_probe_max_interval,
        }
    }
}

/// Why and since when a breaker is open.
#[derive(Clone, Debug)]
struct Open {
    since: SystemTime,
    since_instant: Instant,
    reason: String,
}

#[derive(Default)]
struct State {
    consecutive_failures: u32,
    open: Option<Open>,
}

/// One backend's breaker.
pub struct Breaker {
    backend: String,
    state: Mutex<State>,
    /// `state.open.is_some()`, readable without the lock: every checkout asks, and every
    /// client of the backend would otherwise take this one lock per transaction.
    is_open: AtomicBool,
}

impl Breaker {
    fn new(backend: String) -> Breaker {
        Breaker {
            backend,
            state: Mutex::default(),
            is_open: AtomicBool::new(false),
        }
    }

    /// `Err` with the client's 08006 error while the breaker is open.
    pub fn admit(&self) -> Result<(), SessionError> {
        if !self.is_open.load(Ordering::Acquire) {
            return Ok(());
        }
        let open = self.state.lock().open.clone();
        match open {
            None => Ok(()),
            Some(open) => Err(SessionError::refused(
                SqlState::CONNECTION_FAILURE,
                format!(
                    "dbwarden: backend {} is unavailable since {} ({:.1?} ago): {}; \
                     a background probe is retrying",
                    self.backend,
                    humantime::format_rfc3339_millis(open.since),
                    open.since_instant.elapsed(),
                    open.reason
                ),
            )),
        }
    }

    /// A connect succeeded: the backend is healthy.
    pub fn succeeded(&self) {
        let was_open = {
            let mut s = self.state.lock();
            s.consecutive_failures = 0;
            self.is_open.store(false, Ordering::Release);
            s.open.take()
        };
        if let Some(open) = was_open {
            tracing::info!(
                backend = %self.backend,
                down_for = ?open.since_instant.elapsed(),
                "backend is reachable again; circuit breaker closed"
            );
        }
    }

    /// A connect failed. Returns true when this failure opened the breaker, so that the
    /// caller starts the one probe.
    fn failed(&self, error: &ServerError, settings: &BreakerSettings) -> bool {
        if settings.failures == 0 || !is_backend_failure(error) {
            return false;
        }
        let mut s = self.state.lock();
        s.consecutive_failures = s.consecutive_failures.saturating_add(1);
        if s.open.is_some() || s.consecutive_failures < settings.failures {
            return false;
        }
        s.open = Some(Open {
            since: SystemTime::now(),
            since_instant: Instant::now(),
            reason: format!(
                "{} consecutive connect failures, last: {error}",
                s.consecutive_failures
            ),
        });
        self.is_open.store(true, Ordering::Release);
        true
    }

    /// The probe failed again: keep the breaker open with the newest reason.
    fn still_failing(&self, error: &ServerError) {
        if let Some(open) = self.state.lock().open.as_mut() {
            open.reason = format!("still failing: {error}");
        }
    }

    fn is_open(&self) -> bool {
        self.is_open.load(Ordering::Acquire)
    }

    /// The backend's `host:port`.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// Since when and why the breaker is open; `None` while it is closed.
    pub fn open_since(&self) -> Option<(SystemTime, String)> {
        let s = self.state.lock();
        s.open.as_ref().map(|o| (o.since, o.reason.clone()))
    }
}

/// Errors that say the backend itself is unreachable or not accepting connections, as
/// opposed to this login being refused (wrong password, unknown database).
fn is_backend_failure(error: &ServerError) -> bool {
    match error {
        ServerError::Rejected { fields, .. } => fields.code.starts_with("57P"),
        ServerError::Auth { .. } | ServerError::Protocol(_) => false,
        ServerError::Connect { .. }
        | ServerError::ConnectTimeout { .. }
        | ServerError::PhaseTimeout { .. }
        | ServerError::Tls { .. }
        | ServerError::Io(_)
        | ServerError::Closed => true,
    }
}

/// The breakers, one per backend address, shared by every pool that connects there.
#[derive(Default)]
pub struct Registry {
    map: RwLock<HashMap<String, Arc<Breaker>>>,
}

impl Registry {
    pub fn breaker(&self, target: &ServerTarget) -> Arc<Breaker> {
        let key = target.addr_text();
        if let Some(b) = self.map.read().get(&key) {
            return b.clone();
        }
        self.map
            .write()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(Breaker::new(key)))
            .clone()
    }

    /// Every breaker: those of live pools and those still open for a backend nobody uses.
    pub fn all(&self) -> Vec<Arc<Breaker>> {
        self.map.read().values().cloned().collect()
    }

    /// Forgets breakers no pool uses and that are closed.
    pub fn sweep(&self) {
        self.map
            .write()
            .retain(|_, b| Arc::strong_count(b) > 1 || b.is_open());
    }
}

/// Opens a server connection for a pool, keeping its backend's breaker up to date; when
/// this failure opens the breaker, starts the background probe.
pub async fn connect_tracked(
    breaker: &Arc<Breaker>,
    target: &ServerTarget,
    ctx: &ServerCtx,
) -> Result<crate::server::ServerConn, ServerError> {
    match connect(target, ctx).await {
        Ok(conn) => {
            breaker.succeeded();
            Ok(conn)
        }
        Err(e) => {
            if breaker.failed(&e, &ctx.breaker) {
                tracing::warn!(backend = %breaker.backend, error = %e, "circuit breaker opened");
                tokio::spawn(probe(Arc::downgrade(breaker), target.clone(), ctx.clone()));
            }
            Err(e)
        }
    }
}

/// Retries the backend with exponential backoff until a login succeeds. Holds the breaker
/// weakly so that a proxy that is dropped does not leave probes running.
async fn probe(breaker: Weak<Breaker>, target: ServerTarget, ctx: ServerCtx) {
    let mut wait = ctx.breaker.probe_interval;
    loop {
        tokio::time::sleep(wait).await;
        let Some(b) = breaker.upgrade() else { return };
        if !b.is_open() {
            return;
        }
        match connect(&target, &ctx).await {
            Ok(conn) => {
                b.succeeded();
                conn.close().await;
                return;
            }
            // The backend answered and refused this login for its own reasons: it is up.
            Err(e) if !is_backend_failure(&e) => {
                b.succeeded();
                return;
            }
            Err(e) => {
                tracing::debug!(backend = %b.backend, error = %e, "breaker probe failed");
                b.still_failing(&e);
            }
        }
        wait = (wait * 2).min(ctx.breaker.probe_max_interval);
    }
}

#[cfg(test)]
mod tests;
