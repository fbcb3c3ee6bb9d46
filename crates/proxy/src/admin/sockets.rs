//! SHOW CLIENTS and SHOW SERVERS: one row per connection, PgBouncer's 21 columns.
//! `ptr` and `link` are PgBouncer's object addresses; here they are `c<id>` and `s<id>`,
//! stable names that pair a client with its server connection the same way.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;

use super::rows::{Cell, Table};
use crate::stats::{unix_us, ClientInfo, ClientState, ServerInfo, ServerState};
use crate::Shared;

pub const SOCKETS: (&str, [&str; 21]) = (
    "ssssssisiTTiiississii",
    [
        "type",
        "user",
        "database",
        "replication",
        "state",
        "addr",
        "port",
        "local_addr",
        "local_port",
        "connect_time",
        "request_time",
        "wait",
        "wait_us",
        "close_needed",
        "ptr",
        "link",
        "remote_pid",
        "tls",
        "application_name",
        "prepared_statements",
        "id",
    ],
);

fn at_us(us: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(us)
}

fn ip(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.ip().to_string()).unwrap_or_default()
}

fn port(addr: Option<SocketAddr>) -> Cell<'static> {
    Cell::Int(addr.map_or(0, |a| i64::from(a.port())))
}

/// Who a client is: (user, database, application_name), from its pool or console login.
fn identity(c: &ClientInfo) -> Option<(&str, &str, &str)> {
    if let Some(l) = c.login() {
        return Some((&l.user, &l.database, &l.application_name));
    }
    c.console().map(|l| {
        (
            l.user.as_str(),
            l.database.as_str(),
            l.application_name.as_str(),
        )
    })
}

fn sorted_clients(shared: &Shared) -> Vec<Arc<ClientInfo>> {
    let mut clients = shared.stats.clients.all();
    clients.sort_by_key(|c| c.id);
    clients
}

pub fn clients(buf: &mut BytesMut, shared: &Shared) {
    let servers = shared.stats.servers.all();
    let server_by_pid: HashMap<i32, u64> = servers.iter().map(|s| (s.pid, s.id)).collect();
    let now_us = unix_us(SystemTime::now());
    let mut t = Table::new(buf, SOCKETS.0, &SOCKETS.1);
    for c in sorted_clients(shared) {
        // Clients still logging in are not listed, as in PgBouncer (it has SHOW SOCKETS).
        let Some((user, database, app)) = identity(&c) else {
            continue;
        };
        let state = c.state();
        let waited = match state {
            ClientState::Waiting => Duration::from_micros(now_us.saturating_sub(c.since_us())),
            _ => Duration::ZERO,
        };
        let link = server_by_pid
            .get(&c.server_pid())
            .filter(|_| c.server_pid() != 0)
            .map(|id| format!("s{id}"))
            .unwrap_or_default();
        let ptr = format!("c{}", c.id);
        let local_ip = ip(c.local);
        let tls = if c.tls.load(std::sync::atomic::Ordering::Relaxed) {
            "TLS"
        } else {
            ""
        };
        t.row(&[
            Cell::Text("C"),
            Cell::Text(user),
            Cell::Text(database),
            Cell::Text("none"),
            Cell::Text(match state {
                ClientState::Active => "active",
                ClientState::Waiting => "waiting",
                ClientState::Idle | ClientState::Login => "idle",
            }),
            Cell::Text(&c.addr.ip().to_string()),
            port(Some(c.addr)),
            Cell::Text(&local_ip),
            port(c.local),
            Cell::Time(c.connected_at),
            Cell::Time(at_us(c.since_us())),
            Cell::Int(waited.as_secs() as i64),
            Cell::Int(i64::from(waited.subsec_micros())),
            Cell::Int(0),
            Cell::Text(&ptr),
            Cell::Text(&link),
            Cell::Int(0),
            Cell::Text(tls),
            Cell::Text(app),
            Cell::Int(0),
            Cell::Int(c.id as i64),
        ]);
    }
    t.finish();
}

pub fn servers(buf: &mut BytesMut, shared: &Shared) {
    let clients: HashMap<u64, Arc<ClientInfo>> = shared
        .stats
        .clients
        .all()
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let mut servers: Vec<Arc<ServerInfo>> = shared.stats.servers.all();
    servers.sort_by_key(|s| s.id);
    let mut t = Table::new(buf, SOCKETS.0, &SOCKETS.1);
    for s in &servers {
        let client = s.client().and_then(|id| clients.get(&id));
        let app = client
            .and_then(|c| c.login())
            .map(|l| l.application_name.as_str())
            .unwrap_or("");
        let link = s.client().map(|id| format!("c{id}")).unwrap_or_default();
        let ptr = format!("s{}", s.id);
        let local_ip = ip(s.local);
        t.row(&[
            Cell::Text("S"),
            Cell::Text(&s.pool.key.user),
            Cell::Text(&s.pool.key.database),
            Cell::Text("none"),
            Cell::Text(match s.state() {
                ServerState::Active => "active",
                ServerState::Idle => "idle",
                ServerState::Tested => "tested",
            }),
            Cell::Text(&s.addr.ip().to_string()),
            port(Some(s.addr)),
            Cell::Text(&local_ip),
            port(s.local),
            Cell::Time(s.connected_at),
            Cell::Time(at_us(s.since_us())),
            Cell::Int(0),
            Cell::Int(0),
            Cell::Int(0),
            Cell::Text(&ptr),
            Cell::Text(&link),
            Cell::Int(i64::from(s.pid)),
            Cell::Text(if s.tls { "TLS" } else { "" }),
            Cell::Text(app),
            Cell::Int(0),
            Cell::Int(s.id as i64),
        ]);
    }
    t.finish();
}
