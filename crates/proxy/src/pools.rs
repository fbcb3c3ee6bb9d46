//! The pools, one per (database, user), created on first use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dbwarden_config::ResolvedDatabase;
use dbwarden_pool::{Grant, Lease, Pool, PoolError};
use dbwarden_wire::SqlState;
use parking_lot::RwLock;

use crate::dns::Addresses;
use crate::error::SessionError;
use crate::health::{connect_tracked, Breaker, Registry};
use crate::server::{ServerConn, ServerCtx, ServerTarget};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub database: String,
    pub user: String,
}

pub struct PoolEntry {
    pub key: PoolKey,
    pub pool: Pool<ServerConn>,
    pub target: ServerTarget,
    pub min_idle: u32,
    /// The health of `target`, shared with every pool that connects there.
    pub breaker: Arc<Breaker>,
    /// What `target.host` resolves to now; connections elsewhere are drained.
    pub addrs: Arc<Addresses>,
}

#[derive(Default)]
pub struct Pools {
    map: RwLock<HashMap<PoolKey, Arc<PoolEntry>>>,
    breakers: Registry,
}

impl Pools {
    pub fn get_or_create(
        &self,
        db: &ResolvedDatabase,
        user: &str,
        size: u32,
        target: ServerTarget,
    ) -> Arc<PoolEntry> {
        let key = PoolKey {
            database: db.name.clone(),
            user: user.to_owned(),
        };
        if let Some(e) = self.map.read().get(&key) {
            if e.target == target {
                return e.clone();
            }
        }
        let mut map = self.map.write();
        if let Some(e) = map.get(&key) {
            if e.target == target {
                return e.clone();
            }
        }
        // New, or its upstream changed (a reload): the old pool drains as its leases end.
        let entry = Arc::new(PoolEntry {
            key: key.clone(),
            pool: Pool::new(size),
            breaker: self.breakers.breaker(&target),
            addrs: Arc::default(),
            target,
            min_idle: db.min_idle,
        });
        if let Some(old) = map.insert(key, entry.clone()) {
            drop(old.pool.close());
        }
        entry
    }

    /// Forgets pools with no connections and nobody waiting, so that database names tried
    /// through the `*` entry (even ones that do not exist) cannot grow the map for ever.
    pub fn sweep_empty(&self) {
        self.map.write().retain(|_, e| {
            let s = e.pool.stats();
            s.total > 0 || s.waiting > 0 || e.min_idle > 0 || Arc::strong_count(e) > 1
        });
        self.breakers.sweep();
    }

    pub fn all(&self) -> Vec<Arc<PoolEntry>> {
        self.map.read().values().cloned().collect()
    }
}

/// A server connection for a client: an idle one that is still alive, or a new one.
pub async fn checkout(
    entry: &PoolEntry,
    ctx: &ServerCtx,
    wait: Duration,
) -> Result<Lease<ServerConn>, SessionError> {
    // Fail fast while the backend is known to be down, rather than queue for a connect
    // that will fail too.
    entry.breaker.admit()?;
    loop {
        match entry.pool.checkout(wait).await {
            Ok(Grant::Ready(lease)) => {
                if is_alive(lease.conn()) && entry.addrs.is_current(lease.conn().cancel.addr) {
                    return Ok(lease);
                }
                // Dead while idle (server restarted, idle timeout), or connected to an address
                // the backend's name no longer has: close it, take the next.
                tracing::debug!(server.pid = lease.conn().pid(), "dropping dead idle server connection");
                drop(lease);
            }
            Ok(Grant::Open(permit)) => {
                let conn = connect_tracked(&entry.breaker, &entry.target, ctx).await?;
                tracing::debug!(server.pid = conn.pid(), pool.db = %entry.key.database, "opened server connection");
                return Ok(permit.fulfil(conn));
            }
            Err(PoolError::Timeout(after, size)) => {
                return Err(SessionError::refused(
                    SqlState::QUERY_CANCELED,
                    format!(
                        "dbwarden: query_wait_timeout: no server connection free within {after:?} (pool size {size})"
                    ),
                ))
            }
            Err(PoolError::Closed) => {
                return Err(SessionError::refused(
                    SqlState::ADMIN_SHUTDOWN,
                    "dbwarden: the pool is closing",
                ))
            }
        }
    }
}

/// An idle connection has nothing to say: readable means EOF or an unsolicited FATAL,
/// either way it cannot be used. One non-blocking read, no round trip.
fn is_alive(conn: &ServerConn) -> bool {
    if !conn.conn.rbuf.is_empty() {
        return false;
    }
    let mut probe = [0u8; 1];
    match conn.conn.stream.tcp() {
        Some(tcp) => {
            matches!(tcp.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
        None => false,
    }
}

/// Keeps pools in shape in the background: closes connections idle past
/// `server_idle_timeout` or older than `server_lifetime` (keeping `min_idle`), and opens
/// connections ahead of demand up to `min_idle`. Also re-resolves each backend name, so
/// that connections to an address it no longer has are drained.
pub async fn maintain(shared: std::sync::Arc<crate::Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
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
                entry.min_idle,
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
            for permit in entry.pool.permits_for_min_idle(entry.min_idle) {
                let (entry, ctx) = (entry.clone(), ctx.clone());
                tokio::spawn(async move {
                    match connect_tracked(&entry.breaker, &entry.target, &ctx).await {
                        Ok(conn) => permit.fulfil(conn).release(),
                        Err(e) => {
                            tracing::warn!(error = %e, "opening a min_idle connection failed")
                        }
                    }
                });
            }
        }
    }
}
