//! What the admin console and the HTTP API show of one server connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use super::{unix_us, PoolStats};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ServerState {
    /// In the pool, ready to hand out.
    Idle = 0,
    /// Linked to a client.
    Active = 1,
    /// Running a health check.
    Tested = 2,
}

impl ServerState {
    fn from_u8(v: u8) -> ServerState {
        match v {
            1 => ServerState::Active,
            2 => ServerState::Tested,
            _ => ServerState::Idle,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Idle => "idle",
            ServerState::Active => "active",
            ServerState::Tested => "tested",
        }
    }
}

pub struct ServerInfo {
    pub id: u64,
    pub pool: Arc<PoolStats>,
    pub addr: SocketAddr,
    pub local: Option<SocketAddr>,
    pub pid: i32,
    pub tls: bool,
    pub connected_at: SystemTime,
    state: AtomicU8,
    since_us: AtomicU64,
    /// The client using it (0 = none).
    client: AtomicU64,
}

impl ServerInfo {
    pub fn new(
        id: u64,
        pool: Arc<PoolStats>,
        addr: SocketAddr,
        local: Option<SocketAddr>,
        pid: i32,
        tls: bool,
    ) -> ServerInfo {
        let now = SystemTime::now();
        ServerInfo {
            id,
            pool,
            addr,
            local,
            pid,
            tls,
            connected_at: now,
            state: AtomicU8::new(ServerState::Active as u8),
            since_us: AtomicU64::new(unix_us(now)),
            client: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> ServerState {
        ServerState::from_u8(self.state.load(Ordering::Relaxed))
    }

    pub fn since_us(&self) -> u64 {
        self.since_us.load(Ordering::Relaxed)
    }

    pub fn client(&self) -> Option<u64> {
        let c = self.client.load(Ordering::Relaxed);
        (c != 0).then_some(c)
    }

    /// Linked to client `client` (Active), or back in the pool (`None`: Idle).
    pub fn link(&self, client: Option<u64>) {
        self.link_at(client, unix_us(SystemTime::now()));
    }

    /// [`Self::link`] as of `now_us` (Unix microseconds), a time the caller just read.
    pub fn link_at(&self, client: Option<u64>, now_us: u64) {
        let (state, id) = match client {
            Some(c) => (ServerState::Active, c),
            None => (ServerState::Idle, 0),
        };
        self.client.store(id, Ordering::Relaxed);
        self.state.store(state as u8, Ordering::Relaxed);
        self.since_us.store(now_us, Ordering::Relaxed);
    }

    pub fn set_state(&self, state: ServerState) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.since_us
            .store(unix_us(SystemTime::now()), Ordering::Relaxed);
    }
}
