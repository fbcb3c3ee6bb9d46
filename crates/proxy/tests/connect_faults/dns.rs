//! Backend host names: a resolver that never answers, an answer that changes (new
//! connections move, old ones drain), the cap on a record's TTL, and literal addresses that
//! need no resolver.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbwarden_testkit::Relay;
use tokio::net::{TcpListener, TcpStream};

use super::dns_stub::DnsStub;
use super::*;

const HOST: &str = "db.dbwarden.test";

/// Forwards `listener`'s connections to `target`, counting them.
fn forward(listener: TcpListener, target: SocketAddr) -> Arc<AtomicUsize> {
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    accepted
}

#[tokio::test]
async fn silent_resolver_fails_within_server_dns_timeout() {
    let pg = cluster_with_db(DB).await;
    let stub = DnsStub::silent().await;
    let mut config = config_via(&pg, HOST, pg.port());
    config.server.dns_servers = vec![stub.addr().to_string()];
    config.server.server_dns_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;

    let (err, took) = failing_query(&proxy).await;
    assert_phase_error(&err, "DNS", "server.server_dns_timeout");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(
        stub.queries() > 0,
        "the proxy never asked the configured resolver"
    );
}

#[tokio::test]
async fn literal_ip_skips_dns() {
    let pg = cluster_with_db(DB).await;
    let stub = DnsStub::silent().await;
    let mut config = config_via(&pg, "127.0.0.1", pg.port());
    config.server.dns_servers = vec![stub.addr().to_string()];
    let proxy = TestProxy::start(config).await;

    let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();
    assert_eq!(stub.queries(), 0);
}

#[tokio::test]
async fn changed_answer_moves_new_connections_and_drains_old_ones() {
    let pg = cluster_with_db(DB).await;
    let pg_addr: SocketAddr = format!("{}:{}", pg.host(), pg.port()).parse().unwrap();
    // The old address: a relay on 127.0.0.1; the new one: a forwarder on 127.0.0.2 at the
    // same port, both in front of the same PostgreSQL.
    let relay = Relay::start(pg_addr).await.unwrap();
    let port = relay.addr().port();
    let moved = TcpListener::bind((Ipv4Addr::new(127, 0, 0, 2), port))
        .await
        .expect("bind 127.0.0.2 at the relay's port");
    let moved_accepts = forward(moved, pg_addr);
    // The record says an hour; dns_max_ttl must cut that short.
    let stub = DnsStub::answering(Ipv4Addr::LOCALHOST, 3600).await;
    let mut config = config_via(&pg, HOST, port);
    config.server.dns_servers = vec![stub.addr().to_string()];
    config.server.dns_max_ttl = Duration::from_millis(500);
    let proxy = TestProxy::start(config).await;

    // Session mode: the first client keeps its server connection, so the second one needs
    // a new server connection.
    let first = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    first.simple_query("SELECT 1").await.unwrap();
    assert_eq!(relay.connections(), 1);
    assert_eq!(moved_accepts.load(Ordering::SeqCst), 0);

    stub.set_answer(Ipv4Addr::new(127, 0, 0, 2));
    // Past dns_max_ttl and at least one background re-resolution (every second).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let second = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    second.simple_query("SELECT 1").await.unwrap();
    assert_eq!(moved_accepts.load(Ordering::SeqCst), 1);
    assert_eq!(
        relay.connections(),
        1,
        "the old address got the new connection"
    );

    // The old connection keeps serving its client, and is drained once released: the
    // next client gets a connection to the new address, not the idle old one.
    first.simple_query("SELECT 1").await.unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    third.simple_query("SELECT 1").await.unwrap();
    assert_eq!(moved_accepts.load(Ordering::SeqCst), 2);
    for _ in 0..50 {
        if relay.connections() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        relay.connections(),
        0,
        "the old address's connection was not drained"
    );
}
