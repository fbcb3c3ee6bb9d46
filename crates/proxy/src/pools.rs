//! The pools, one per (database, user), created on first use and retargeted on reload.

mod checkout;
mod maintain;

pub use checkout::{PoolHandle, ReuseRules};
pub use maintain::maintain;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use dbwarden_config::Config;
use dbwarden_pool::Pool;
use parking_lot::RwLock;

use crate::dns::Addresses;
use crate::health::{connect_tracked, Breaker, Registry};
use crate::server::{ServerConn, ServerCtx, ServerTarget};
use crate::stats::{PoolStats, ServerInfo, Stats};

/// Ids for SHOW SERVERS, unique within the process.
static NEXT_SERVER_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PoolKey {
    pub database: String,
    pub user: String,
}

pub struct PoolEntry {
    pub key: PoolKey,
    pub pool: Pool<ServerConn>,
    pub target: ServerTarget,
    min_idle: AtomicU32,
    /// The health of `target`, shared with every pool that connects there.
    pub breaker: Arc<Breaker>,
    /// What `target.host` resolves to now; connections elsewhere are drained.
    pub addrs: Arc<Addresses>,
    /// A reload moved this pool's database (or removed it): the pool is closed and drains as
    /// its leases end, and clients holding it move to the pool that replaced it.
    retired: AtomicBool,
    /// The background health checks of this pool's idle connections.
    pub(crate) checks: maintain::Checks,
    /// Shared by every pool with this key, so a pool replaced on reload counts on.
    pub stats: Arc<PoolStats>,
    servers: Arc<crate::stats::Registry<ServerInfo>>,
}

impl PoolEntry {
    fn new(up: Upstream, breakers: &Registry, stats: &Stats) -> PoolEntry {
        PoolEntry {
            stats: stats.pool(&up.key),
            servers: stats.servers.clone(),
            key: up.key,
            pool: Pool::new(up.size),
            breaker: breakers.breaker(&up.target),
            addrs: Arc::default(),
            target: up.target,
            min_idle: AtomicU32::new(up.min_idle),
            retired: AtomicBool::new(false),
            checks: maintain::Checks::default(),
        }
    }

    /// Opens a server connection for this pool and lists it in SHOW SERVERS.
    pub async fn open(&self, ctx: &ServerCtx) -> Result<ServerConn, crate::error::ServerError> {
        self.stats.connecting.fetch_add(1, Ordering::Relaxed);
        let opened = connect_tracked(&self.breaker, &self.target, ctx).await;
        self.stats.connecting.fetch_sub(1, Ordering::Relaxed);
        let mut conn = opened?;
        let id = NEXT_SERVER_ID.fetch_add(1, Ordering::Relaxed);
        let local = conn.conn.stream.tcp().and_then(|t| t.local_addr().ok());
        let info = ServerInfo::new(
            id,
            self.stats.clone(),
            conn.cancel.addr,
            local,
            conn.pid(),
            conn.cancel.tls,
        );
        conn.info = Some(self.servers.insert(id, info));
        Ok(conn)
    }

    /// Opens a connection that goes straight into the pool idle (min_idle, replacements).
    async fn open_idle(
        &self,
        permit: dbwarden_pool::Permit<ServerConn>,
        ctx: &ServerCtx,
        what: &str,
    ) {
        match self.open(ctx).await {
            Ok(conn) => {
                if let Some(info) = &conn.info {
                    info.link(None);
                }
                permit.fulfil(conn).release()
            }
            Err(e) => tracing::warn!(error = %e, what, "opening an idle server connection failed"),
        }
    }

    pub fn min_idle(&self) -> u32 {
        self.min_idle.load(Ordering::Relaxed)
    }

    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Closes the pool for good: waiters fail, idle connections close now, leased ones when
    /// their clients let go of them.
    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let idle = self.pool.close();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                for conn in idle {
                    rt.spawn(conn.close());
                }
            }
            Err(_) => drop(idle),
        }
    }
}

/// Where a pool connects and how big it is.
struct Upstream {
    key: PoolKey,
    target: ServerTarget,
    size: u32,
    min_idle: u32,
}

/// The pool for clients of `database` logging in as `client_user` under `config`; `None`
/// when the config does not know the database.
fn upstream(config: &Config, database: &str, client_user: &str) -> Option<Upstream> {
    let db = config.database(database)?;
    let (user, password) = match &db.user {
        Some(u) => (u.clone(), db.password.clone()),
        None => (
            client_user.to_owned(),
            config
                .user(client_user)
                .and_then(|u| u.upstream_password())
                .map(str::to_owned),
        ),
    };
    Some(Upstream {
        key: PoolKey {
            database: database.to_owned(),
            user: user.clone(),
        },
        target: ServerTarget {
            host: db.host.clone(),
            port: db.port,
            dbname: db.dbname.clone(),
            user,
            password,
        },
        size: config.pool_size_for(&db, client_user),
        min_idle: db.min_idle,
    })
}

#[derive(Default)]
pub struct Pools {
    map: RwLock<HashMap<PoolKey, Arc<PoolEntry>>>,
    breakers: Registry,
}

impl Pools {
    /// The pool for a client of `database` logging in as `client_user`; `None` when the
    /// database is unknown.
    pub fn pool_for(
        &self,
        config: &ArcSwap<Config>,
        stats: &Stats,
        database: &str,
        client_user: &str,
    ) -> Option<Arc<PoolEntry>> {
        let up = upstream(&config.load(), database, client_user)?;
        if let Some(e) = self.map.read().get(&up.key) {
            return Some(e.clone());
        }
        let mut map = self.map.write();
        // Read the config again under the lock: a reload stores its config and then
        // retargets under this lock, so either this sees the new config, or the reload
        // retargets the pool made here. No pool is left pointing at an old backend.
        let up = upstream(&config.load(), database, client_user)?;
        let entry = map
            .entry(up.key.clone())
            .or_insert_with(|| Arc::new(PoolEntry::new(up, &self.breakers, stats)));
        Some(entry.clone())
    }

    /// Applies a reloaded config to the pools: sizes change at once; a pool whose backend
    /// (host, port, database name, user or password) changed is replaced by a new one, and
    /// the old one drains; a pool whose database is gone is closed.
    pub fn retarget(&self, config: &Config, stats: &Stats) {
        let mut map = self.map.write();
        let keys: Vec<PoolKey> = map.keys().cloned().collect();
        for key in keys {
            let old = map[&key].clone();
            let forced_user_changed = config
                .database(&key.database)
                .and_then(|db| db.user)
                .is_some_and(|u| u != key.user);
            let up = upstream(config, &key.database, &key.user).filter(|_| !forced_user_changed);
            match up {
                Some(up) if up.target == old.target => {
                    old.pool.set_max(up.size);
                    old.min_idle.store(up.min_idle, Ordering::Relaxed);
                }
                Some(up) => {
                    tracing::info!(
                        pool.db = %key.database,
                        pool.user = %key.user,
                        from = %old.target.addr_text(),
                        to = %up.target.addr_text(),
                        "reload moved the pool's backend; the old connections drain"
                    );
                    map.insert(key, Arc::new(PoolEntry::new(up, &self.breakers, stats)));
                    old.retire();
                }
                None => {
                    map.remove(&key);
                    old.retire();
                }
            }
        }
    }

    /// Forgets pools with no connections and nobody waiting, so that database names tried
    /// through the `*` entry (even ones that do not exist) cannot grow the map for ever.
    pub fn sweep_empty(&self) {
        self.map.write().retain(|_, e| {
            let s = e.pool.stats();
            s.total > 0 || s.waiting > 0 || e.min_idle() > 0 || Arc::strong_count(e) > 1
        });
        self.breakers.sweep();
    }

    pub fn all(&self) -> Vec<Arc<PoolEntry>> {
        self.map.read().values().cloned().collect()
    }

    /// The circuit breakers of every backend, for readiness and the breaker gauge.
    pub fn breakers(&self) -> &Registry {
        &self.breakers
    }
}
