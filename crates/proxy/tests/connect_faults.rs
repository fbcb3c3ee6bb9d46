//! Faults while opening server connections: each phase (DNS, TCP, TLS, login) is bounded by
//! its own setting, and the client hears which one hung, fast, with SQLSTATE 08006. Host
//! names go through the configured resolver (`dns`, against a stub DNS server); a backend
//! that keeps failing opens its circuit breaker (`breaker`).

#[path = "connect_faults/breaker.rs"]
mod breaker;
mod common;
#[path = "connect_faults/dns.rs"]
mod dns;
#[path = "connect_faults/dns_stub.rs"]
mod dns_stub;

use std::time::{Duration, Instant};

use common::*;
use dbwarden_config::{Config, ServerTlsMode};
use dbwarden_testkit::{PgCluster, Relay};
use tokio_postgres::error::SqlState;

const DB: &str = "faults";

/// The proxy's upstream is `host:port` instead of PostgreSQL itself.
fn config_via(pg: &PgCluster, host: &str, port: u16) -> Config {
    let mut c = upstream_config(pg, 4);
    for db in c.databases.values_mut() {
        db.host = host.to_owned();
        db.port = port;
    }
    // A generous overall cap, so a phase bound is what fires.
    c.pool.server_connect_timeout = Duration::from_secs(20);
    c
}

/// Connects through the proxy and runs one query; returns the error the client got and how
/// long it took to get it.
async fn failing_query(proxy: &TestProxy) -> (tokio_postgres::Error, Duration) {
    let start = Instant::now();
    let result = async {
        let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await?;
        client.simple_query("SELECT 1").await
    }
    .await;
    let err = result.expect_err("the query must fail while the backend is unreachable");
    (err, start.elapsed())
}

fn assert_phase_error(err: &tokio_postgres::Error, phase: &str, setting: &str) {
    let db = err
        .as_db_error()
        .unwrap_or_else(|| panic!("expected a server error, got {err:?}"));
    assert_eq!(db.code(), &SqlState::CONNECTION_FAILURE, "{db:?}");
    let needle = format!("{phase} phase timed out");
    assert!(db.message().contains(&needle), "{}", db.message());
    assert!(db.message().contains(setting), "{}", db.message());
}

#[tokio::test]
async fn stalled_login_fails_within_server_login_timeout() {
    let pg = cluster_with_db(DB).await;
    let relay = Relay::start(format!("{}:{}", pg.host(), pg.port()).parse().unwrap())
        .await
        .unwrap();
    relay.stall(true);
    let mut config = config_via(&pg, "127.0.0.1", relay.addr().port());
    config.server_tls.mode = ServerTlsMode::Disable;
    config.server.server_login_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;

    let (err, took) = failing_query(&proxy).await;
    assert_phase_error(&err, "login", "server.server_login_timeout");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    // The same proxy works once the network does.
    relay.stall(false);
    let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn stalled_tls_handshake_fails_within_server_tls_timeout() {
    let pg = cluster_with_db(DB).await;
    let relay = Relay::start(format!("{}:{}", pg.host(), pg.port()).parse().unwrap())
        .await
        .unwrap();
    relay.stall(true);
    let mut config = config_via(&pg, "127.0.0.1", relay.addr().port());
    config.server_tls.mode = ServerTlsMode::Require;
    config.server.server_tls_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;

    let (err, took) = failing_query(&proxy).await;
    assert_phase_error(&err, "TLS", "server.server_tls_timeout");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn overall_cap_still_applies_when_phases_are_unbounded() {
    let pg = cluster_with_db(DB).await;
    let relay = Relay::start(format!("{}:{}", pg.host(), pg.port()).parse().unwrap())
        .await
        .unwrap();
    relay.stall(true);
    let mut config = config_via(&pg, "127.0.0.1", relay.addr().port());
    config.server_tls.mode = ServerTlsMode::Disable;
    config.server.server_login_timeout = Duration::ZERO;
    config.pool.server_connect_timeout = Duration::from_millis(400);
    let proxy = TestProxy::start(config).await;

    let (err, took) = failing_query(&proxy).await;
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code(), &SqlState::CONNECTION_FAILURE);
    assert!(
        db.message().contains("pool.server_connect_timeout"),
        "{}",
        db.message()
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}
