//! The raw client against a real PostgreSQL server.

use std::net::SocketAddr;

use dbwarden_testkit::{frame, PgCluster, RawClient};

fn shared_addr() -> SocketAddr {
    let pg = PgCluster::shared();
    SocketAddr::from(([127, 0, 0, 1], pg.port()))
}

#[tokio::test]
async fn startup_and_simple_query() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.startup("postgres", "postgres").await.unwrap();
    let login = client.read_until(b'Z').await.unwrap();
    assert_eq!(login[0].tag, b'R', "authentication comes first");
    assert_eq!(&login[0].body[..], &[0, 0, 0, 0], "AuthenticationOk");
    assert!(login.iter().any(|m| m.tag == b'K'), "BackendKeyData");
    assert_eq!(&login.last().unwrap().body[..], b"I", "idle");

    client.send(&frame::query("SELECT 41 + 1")).await.unwrap();
    let reply = client.read_until(b'Z').await.unwrap();
    let tags: Vec<u8> = reply.iter().map(|m| m.tag).collect();
    assert_eq!(tags, b"TDCZ");
    // DataRow: 1 column, length 2, "42".
    assert_eq!(&reply[1].body[..], b"\0\x01\0\0\0\x0242");

    client.send(&frame::query("SELEC oops")).await.unwrap();
    let reply = client.read_until(b'Z').await.unwrap();
    assert_eq!(reply[0].tag, b'E');
    assert_eq!(reply[0].error_code().as_deref(), Some("42601"));
    assert!(reply[0].error_message().unwrap().contains("SELEC"));

    client.send(&frame::terminate()).await.unwrap();
    assert!(client.read_message().await.unwrap().is_none());
}

#[tokio::test]
async fn ssl_request_is_answered_with_one_byte() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.send(&frame::ssl_request()).await.unwrap();
    assert_eq!(client.read_byte().await.unwrap(), b'N', "no TLS configured");
    // The connection carries on in plaintext.
    client.startup("postgres", "postgres").await.unwrap();
    assert_eq!(
        client.read_until(b'Z').await.unwrap().last().unwrap().tag,
        b'Z'
    );
}

#[tokio::test]
async fn unknown_user_gets_an_error_code() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.startup("nobody_here", "postgres").await.unwrap();
    // Trust authenticates first; the role is looked up afterwards.
    let reply = client.read_until(b'E').await.unwrap();
    let err = reply.last().unwrap();
    assert_eq!(err.error_code().as_deref(), Some("28000"));
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn a_lying_length_closes_the_connection() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.startup("postgres", "postgres").await.unwrap();
    client.read_until(b'Z').await.unwrap();
    // A Query whose length field claims 3 bytes, less than the field itself:
    // PostgreSQL logs it and hangs up without a word to the client.
    client
        .send(&frame::raw(b'Q', 3, b"SELECT 1\0"))
        .await
        .unwrap();
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn an_unknown_message_type_is_a_protocol_violation() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.startup("postgres", "postgres").await.unwrap();
    client.read_until(b'Z').await.unwrap();
    client.send(&frame::tagged(b'?', b"")).await.unwrap();
    let reply = client.read_until(b'E').await.unwrap();
    assert_eq!(reply.last().unwrap().error_code().as_deref(), Some("08P01"));
    assert!(client.is_closed().await);
}

#[tokio::test]
async fn an_idle_open_connection_is_not_closed() {
    let mut client = RawClient::connect(shared_addr()).await.unwrap();
    client.startup("postgres", "postgres").await.unwrap();
    client.read_until(b'Z').await.unwrap();
    assert!(!client.is_closed().await);
    // Nothing was lost while waiting.
    client.send(&frame::query("SELECT 1")).await.unwrap();
    assert_eq!(client.read_until(b'Z').await.unwrap().len(), 4);
}

#[tokio::test]
async fn cancel_request_cancels_a_running_query() {
    let addr = shared_addr();
    let mut client = RawClient::connect(addr).await.unwrap();
    client.startup("postgres", "postgres").await.unwrap();
    let login = client.read_until(b'Z').await.unwrap();
    let key = login.iter().find(|m| m.tag == b'K').unwrap();
    let pid = i32::from_be_bytes(key.body[0..4].try_into().unwrap());
    let secret = i32::from_be_bytes(key.body[4..8].try_into().unwrap());

    client
        .send(&frame::query("SELECT pg_sleep(30)"))
        .await
        .unwrap();
    // Let the query start before cancelling it.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut canceller = RawClient::connect(addr).await.unwrap();
    canceller
        .send(&frame::cancel_request(pid, secret))
        .await
        .unwrap();
    assert!(canceller.is_closed().await);

    let reply = client.read_until(b'Z').await.unwrap();
    let error = reply.iter().find(|m| m.tag == b'E').expect("an error");
    assert_eq!(error.error_code().as_deref(), Some("57014"));
}
