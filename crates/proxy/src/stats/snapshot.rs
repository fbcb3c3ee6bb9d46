//! Each pool as it is right now, counted from the pools and the client and server registries
//! when somebody asks: the gauges of `/metrics`, `/api/pools` and the dashboard all read this,
//! so they agree with each other.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dbwarden_config::PoolMode;

use super::{unix_us, ClientState, PoolStats, ServerState};
use crate::pools::PoolKey;
use crate::Shared;

/// Clients of one pool by state (a client in login has no pool yet).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientCounts {
    pub idle: u32,
    pub waiting: u32,
    pub active: u32,
}

/// Server connections of one pool by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerCounts {
    pub active: u32,
    pub idle: u32,
    pub tested: u32,
    /// Being opened (DNS, TCP, TLS, login).
    pub login: u32,
}

pub struct PoolSnapshot {
    pub key: PoolKey,
    pub stats: Arc<PoolStats>,
    /// Pool mode from the current config (`None`: the database left the config).
    pub mode: Option<PoolMode>,
    /// The backend's `host:port` (`None`: only draining connections are left).
    pub backend: Option<String>,
    /// Most server connections the pool may open.
    pub size: u32,
    pub clients: ClientCounts,
    pub servers: ServerCounts,
    /// How long the client that has waited longest for a server connection has waited.
    pub max_wait: Duration,
    /// Since when and why the backend's circuit breaker is open.
    pub breaker_open: Option<(SystemTime, String)>,
}

/// Every client, by state, including those still logging in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessCounts {
    pub login: u32,
    pub idle: u32,
    pub waiting: u32,
    pub active: u32,
}

/// The pools with a live entry, plus any pool whose clients or servers outlive its entry
/// (a reload moved it), in (database, user) order.
pub(crate) fn pools(shared: &Shared) -> (Vec<PoolSnapshot>, ProcessCounts) {
    let config = shared.config.load();
    let mut map: HashMap<PoolKey, PoolSnapshot> = HashMap::new();
    for entry in shared.pools.all() {
        let snap = slot(&mut map, &entry.stats);
        snap.size = entry.pool.stats().max;
        snap.backend = Some(entry.target.addr_text());
        snap.breaker_open = entry.breaker.open_since();
        snap.mode = config.database(&entry.key.database).map(|d| d.mode);
    }
    let now_us = unix_us(SystemTime::now());
    let mut process = ProcessCounts::default();
    for client in shared.stats.clients.all() {
        let state = client.state();
        match state {
            ClientState::Login => process.login += 1,
            ClientState::Idle => process.idle += 1,
            ClientState::Waiting => process.waiting += 1,
            ClientState::Active => process.active += 1,
        }
        let Some(login) = client.login() else {
            continue;
        };
        let snap = slot(&mut map, &login.pool);
        match state {
            ClientState::Login => {}
            ClientState::Idle => snap.clients.idle += 1,
            ClientState::Active => snap.clients.active += 1,
            ClientState::Waiting => {
                snap.clients.waiting += 1;
                let waited = Duration::from_micros(now_us.saturating_sub(client.since_us()));
                snap.max_wait = snap.max_wait.max(waited);
            }
        }
    }
    for server in shared.stats.servers.all() {
        let snap = slot(&mut map, &server.pool);
        match server.state() {
            ServerState::Active => snap.servers.active += 1,
            ServerState::Idle => snap.servers.idle += 1,
            ServerState::Tested => snap.servers.tested += 1,
        }
    }
    for snap in map.values_mut() {
        let connecting = snap.stats.connecting.load(Ordering::Relaxed);
        snap.servers.login = u32::try_from(connecting).unwrap_or(0);
    }
    let mut pools: Vec<PoolSnapshot> = map.into_values().collect();
    pools.sort_by(|a, b| (&a.key.database, &a.key.user).cmp(&(&b.key.database, &b.key.user)));
    (pools, process)
}

fn slot<'m>(
    map: &'m mut HashMap<PoolKey, PoolSnapshot>,
    stats: &Arc<PoolStats>,
) -> &'m mut PoolSnapshot {
    // Looked up by reference first: most calls find the pool, and cloning its key for every
    // client would allocate on each scrape.
    if !map.contains_key(&stats.key) {
        map.insert(
            stats.key.clone(),
            PoolSnapshot {
                key: stats.key.clone(),
                stats: stats.clone(),
                mode: None,
                backend: None,
                size: 0,
                clients: ClientCounts::default(),
                servers: ServerCounts::default(),
                max_wait: Duration::ZERO,
                breaker_open: None,
            },
        );
    }
    map.get_mut(&stats.key).expect("inserted above")
}
