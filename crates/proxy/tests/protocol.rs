//! The wire protocol at the proxy's front door, driven byte by byte with the test kit's raw
//! client: malformed and oversized lengths, encryption requests, version negotiation, login
//! errors, cancel requests and garbage. Every bad client must get the right SQLSTATE (or be
//! dropped) while a bystander client on the same proxy keeps working.

mod common;

use std::time::Duration;

use common::*;
use dbwarden_config::{AuthMethod, Config};
use dbwarden_testkit::{frame, PgCluster, RawClient, RawMessage};
use tokio::io::AsyncWriteExt;

/// Small enough that a test can cross it cheaply, large enough for ordinary queries.
const MAX_MESSAGE: u32 = 64 * 1024;

/// Raw-bytes clients cannot do SCRAM, so these proxies trust the configured user (the proxy
/// still logs in to PostgreSQL with SCRAM).
fn trust_config(pg: &PgCluster) -> Config {
    let mut c = upstream_config(pg, 4);
    c.auth.method = AuthMethod::Trust;
    c.proxy.max_message_size = MAX_MESSAGE;
    c
}

/// A raw client logged in through the proxy, with the BackendKeyData the proxy gave it.
struct RawSession {
    client: RawClient,
    pid: i32,
    key: i32,
}

async fn raw_login(proxy: &TestProxy, db: &str) -> RawSession {
    let mut client = RawClient::connect(proxy.addr).await.unwrap();
    client.startup(USER, db).await.unwrap();
    let messages = client.read_until(b'Z').await.unwrap();
    assert_no_error(&messages);
    let key = messages
        .iter()
        .find(|m| m.tag == b'K')
        .expect("BackendKeyData");
    let int = |at: usize| i32::from_be_bytes(key.body[at..at + 4].try_into().unwrap());
    RawSession {
        pid: int(0),
        key: int(4),
        client,
    }
}

fn assert_no_error(messages: &[RawMessage]) {
    if let Some(e) = messages.iter().find(|m| m.tag == b'E') {
        panic!("unexpected error: {:?}", e.error_message());
    }
}

/// Runs `sql` with the simple protocol and returns the messages through ReadyForQuery.
async fn raw_query(client: &mut RawClient, sql: &str) -> Vec<RawMessage> {
    client.send(&frame::query(sql)).await.unwrap();
    client.read_until(b'Z').await.unwrap()
}

/// The first DataRow's first column as text.
fn first_value(messages: &[RawMessage]) -> String {
    let row = messages.iter().find(|m| m.tag == b'D').expect("a DataRow");
    let len = i32::from_be_bytes(row.body[2..6].try_into().unwrap());
    String::from_utf8(row.body[6..6 + len as usize].to_vec()).unwrap()
}

/// Reads the next message, which must be an ErrorResponse with `code`; then the proxy must close.
async fn expect_fatal(client: &mut RawClient, code: &str, what: &str) {
    let msg = client
        .read_message()
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: an ErrorResponse before the close"));
    assert_eq!(msg.tag, b'E', "{what}: expected ErrorResponse, got {msg:?}");
    assert_eq!(
        msg.error_code().as_deref(),
        Some(code),
        "{what}: message {:?}",
        msg.error_message()
    );
    assert!(client.is_closed().await, "{what}: the proxy must close");
}

/// The bystander: a normal client that must be unaffected by everyone else's bad input.
async fn assert_serving(bystander: &tokio_postgres::Client) {
    let n: i32 = bystander
        .query_one("SELECT $1::int * 2", &[&21i32])
        .await
        .expect("the bystander's query")
        .get(0);
    assert_eq!(n, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_startup_lengths_get_08p01_and_others_carry_on() {
    let pg = cluster_with_db("proto").await;
    let proxy = TestProxy::start(trust_config(&pg)).await;
    let bystander = connect(&proxy.conn_str(USER, PASSWORD, "proto"))
        .await
        .unwrap();

    let too_long = frame::startup(&[("user", USER), ("x", &"y".repeat(20_000))], 0);
    let cases: [(&str, Vec<u8>); 4] = [
        ("length 3", vec![0, 0, 0, 3]),
        ("length 0", vec![0, 0, 0, 0]),
        ("negative length", vec![0xff, 0xff, 0xff, 0xf0, 0, 3, 0, 0]),
        ("startup over 10000 bytes", too_long),
    ];
    for (what, bytes) in cases {
        let mut c = RawClient::connect(proxy.addr).await.unwrap();
        // A client that hangs up early may reset the write; only the answer matters.
        let _ = c.send(&bytes).await;
        let msg = c.read_message().await.unwrap().expect(what);
        assert_eq!(msg.tag, b'E', "{what}");
        assert_eq!(msg.error_code().as_deref(), Some("08P01"), "{what}");
        assert!(c.is_closed().await, "{what}: connection must close");
        assert_serving(&bystander).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_message_lengths_after_login_get_08p01_and_close_the_server_connection() {
    let pg = cluster_with_db("proto").await;
    let proxy = TestProxy::start(trust_config(&pg)).await;
    let bystander = connect(&proxy.conn_str(USER, PASSWORD, "proto"))
        .await
        .unwrap();
    let monitor = connect(&pg.url(pg.superuser(), "postgres", "postgres"))
        .await
        .unwrap();

    // Just under the limit is fine: the limit is on frames, not on what is usual.
    let mut s = raw_login(&proxy, "proto").await;
    let big = "z".repeat(MAX_MESSAGE as usize - 100);
    let reply = raw_query(&mut s.client, &format!("SELECT length('{big}')")).await;
    assert_no_error(&reply);
    assert_eq!(first_value(&reply), big.len().to_string());

    let cases: [(&str, Vec<u8>); 3] = [
        ("length 3", frame::raw(b'Q', 3, b"")),
        ("length 0", frame::raw(b'Q', 0, b"SELECT 1\0")),
        (
            "over max_message_size",
            frame::raw(b'Q', MAX_MESSAGE + 1, b"SELECT 1"),
        ),
    ];
    for (what, bytes) in cases {
        let mut s = raw_login(&proxy, "proto").await;
        let pid = first_value(&raw_query(&mut s.client, "SELECT pg_backend_pid()").await);
        let _ = s.client.send(&bytes).await;
        expect_fatal(&mut s.client, "08P01", what).await;
        assert_serving(&bystander).await;
        // The server connection saw half a conversation: it must be closed, not pooled.
        wait_until_gone(&monitor, &pid).await;
    }
    assert_serving(&bystander).await;
}

/// Waits until the backend `pid` has left pg_stat_activity.
async fn wait_until_gone(monitor: &tokio_postgres::Client, pid: &str) {
    let pid: i32 = pid.parse().unwrap();
    for _ in 0..100 {
        let n: i64 = monitor
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server backend {pid} is still there after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_requests_are_declined_without_client_tls() {
    let pg = cluster_with_db("proto").await;
    let proxy = TestProxy::start(trust_config(&pg)).await;

    let orders: [&[Vec<u8>]; 3] = [
        &[frame::ssl_request()],
        &[frame::gssenc_request()],
        // libpq with GSSAPI credentials tries GSS first, then SSL; PostgreSQL allows each once.
        &[frame::gssenc_request(), frame::ssl_request()],
    ];
    for requests in orders {
        let mut c = RawClient::connect(proxy.addr).await.unwrap();
        for request in requests {
            c.send(request).await.unwrap();
            assert_eq!(c.read_byte().await.unwrap(), b'N', "{requests:?}");
        }
        c.startup(USER, "proto").await.unwrap();
        assert_no_error(&c.read_until(b'Z').await.unwrap());
        let reply = raw_query(&mut c, "SELECT current_database()").await;
        assert_eq!(first_value(&reply), "proto");
    }

    // The same request twice is a protocol violation, as in PostgreSQL.
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    c.send(&frame::ssl_request()).await.unwrap();
    assert_eq!(c.read_byte().await.unwrap(), b'N');
    c.send(&frame::ssl_request()).await.unwrap();
    expect_fatal(&mut c, "08P01", "a second SSLRequest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_protocol_is_negotiated_down_and_protocol_2_refused() {
    let pg = cluster_with_db("proto").await;
    let proxy = TestProxy::start(trust_config(&pg)).await;

    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    let startup = frame::startup(
        &[("user", USER), ("database", "proto"), ("_pq_.foo", "bar")],
        2,
    );
    c.send(&startup).await.unwrap();
    let messages = c.read_until(b'Z').await.unwrap();
    assert_no_error(&messages);
    let npv = &messages[0];
    assert_eq!(npv.tag, b'v', "NegotiateProtocolVersion comes first");
    let mut expected = 0x0003_0000u32.to_be_bytes().to_vec(); // newest supported: 3.0
    expected.extend_from_slice(&1u32.to_be_bytes());
    expected.extend_from_slice(b"_pq_.foo\0");
    assert_eq!(&npv.body[..], &expected[..]);
    assert!(messages.iter().any(|m| m.tag == b'R'), "AuthenticationOk");
    let reply = raw_query(&mut c, "SELECT 1").await;
    assert_eq!(first_value(&reply), "1");

    // Protocol 2.0 with a version-3 style body: the version alone is refused.
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    let mut v2 = frame::startup(&[("user", USER), ("database", "proto")], 0);
    v2[4..8].copy_from_slice(&0x0002_0000u32.to_be_bytes());
    c.send(&v2).await.unwrap();
    expect_fatal(&mut c, "0A000", "protocol 2.0").await;

    // A real protocol-2 startup packet (fixed-size fields): refused too.
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    let mut body = 0x0002_0000u32.to_be_bytes().to_vec();
    for (value, width) in [("proto", 64), (USER, 32), ("", 64), ("", 64), ("", 64)] {
        let mut field = value.as_bytes().to_vec();
        field.resize(width, 0);
        body.extend_from_slice(&field);
    }
    let mut packet = (body.len() as u32 + 4).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    c.send(&packet).await.unwrap();
    let msg = c.read_message().await.unwrap().expect("an error");
    assert_eq!(msg.tag, b'E');
    assert!(c.is_closed().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors_carry_the_right_sqlstate() {
    let pg = cluster_with_db("proto").await;
    // The zero-config proxy: SCRAM for clients, every database name passed upstream.
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;
    let bystander = connect(&proxy.conn_str(USER, PASSWORD, "proto"))
        .await
        .unwrap();

    let code = |r: Result<tokio_postgres::Client, tokio_postgres::Error>| match r {
        Ok(_) => panic!("login succeeded"),
        Err(e) => e.code().cloned(),
    };
    assert_eq!(
        code(connect(&proxy.conn_str(USER, PASSWORD, "no_such_db")).await),
        Some(tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
    );
    assert_serving(&bystander).await;

    for (user, password) in [(USER, "wrong"), ("nobody", PASSWORD)] {
        assert_eq!(
            code(connect(&proxy.conn_str(user, password, "proto")).await),
            Some(tokio_postgres::error::SqlState::INVALID_PASSWORD),
            "user {user}"
        );
        assert_serving(&bystander).await;
    }

    // No user at all: refused before authentication.
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    c.send(&frame::startup(&[("database", "proto")], 0))
        .await
        .unwrap();
    expect_fatal(&mut c, "28000", "no user").await;

    // Unknown database seen by a raw client (a trusting proxy, so it gets that far): the
    // server's 3D000 reaches the client, then the close.
    let trusting = TestProxy::start(trust_config(&pg)).await;
    let mut c = RawClient::connect(trusting.addr).await.unwrap();
    c.startup(USER, "no_such_db").await.unwrap();
    expect_fatal(&mut c, "3D000", "unknown database").await;
    assert_serving(&bystander).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_with_own_key_cancels_only_its_own_query() {
    let pg = cluster_with_db("proto").await;
    let proxy = TestProxy::start(trust_config(&pg)).await;
    let mut victim = raw_login(&proxy, "proto").await;
    let other = raw_login(&proxy, "proto").await;

    // Wrong keys while the victim's query runs: a wrong secret, another client's pid and key,
    // a pid nobody has. None of them may touch the query.
    victim
        .client
        .send(&frame::query("SELECT pg_sleep(1.5), 'done'"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for (pid, key) in [
        (victim.pid, victim.key.wrapping_add(1)),
        (other.pid, other.key),
        (victim.pid ^ 0x5555, victim.key),
    ] {
        let mut c = RawClient::connect(proxy.addr).await.unwrap();
        c.send(&frame::cancel_request(pid, key)).await.unwrap();
        assert!(c.is_closed().await, "a cancel connection gets no answer");
    }
    let reply = victim.client.read_until(b'Z').await.unwrap();
    assert_no_error(&reply);
    assert!(reply.iter().any(|m| m.tag == b'C'), "the query completed");

    // The right key cancels the running query, and the session goes on.
    victim
        .client
        .send(&frame::query("SELECT pg_sleep(30)"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    c.send(&frame::cancel_request(victim.pid, victim.key))
        .await
        .unwrap();
    let reply = victim.client.read_until(b'Z').await.unwrap();
    let err = reply.iter().find(|m| m.tag == b'E').expect("an error");
    assert_eq!(err.error_code().as_deref(), Some("57014"));
    assert!(started.elapsed() < Duration::from_secs(10));
    let reply = raw_query(&mut victim.client, "SELECT 'still here'").await;
    assert_eq!(first_value(&reply), "still here");

    // The other client was never disturbed.
    let mut other = other.client;
    assert_eq!(first_value(&raw_query(&mut other, "SELECT 7").await), "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_truncated_frames_do_not_disturb_others() {
    let pg = cluster_with_db("proto").await;
    let mut config = trust_config(&pg);
    // One server connection: whatever the bad clients leave behind, the bystanders need it.
    config.pool.size = 1;
    let proxy = TestProxy::start(config).await;
    let conn_str = proxy.conn_str(USER, PASSWORD, "proto");

    // Before login: an HTTP request, random bytes, a startup cut short, a bare EOF.
    let mut noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    noise[..4].copy_from_slice(&[0, 0, 0, 200]); // a plausible length, then nonsense
    let startup = frame::startup(&[("user", USER), ("database", "proto")], 0);
    let openings: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        &noise,
        &startup[..startup.len() / 2],
        &startup[..2],
        b"",
    ];
    for bytes in openings {
        let mut c = RawClient::connect(proxy.addr).await.unwrap();
        let _ = c.send(bytes).await;
        let _ = c.stream_mut().shutdown().await;
        // Whether it gets an error first or not, it must be let go.
        assert!(c.is_closed().await);
        let bystander = connect(&conn_str).await.unwrap();
        assert_serving(&bystander).await;
    }

    // After login: half a header, half a message, a message claiming more than follows; each
    // then hangs up. The pool's only connection must come back clean for the next client.
    let query = frame::query("SELECT 1");
    let cuts: [Vec<u8>; 4] = [
        query[..3].to_vec(),
        query[..query.len() - 3].to_vec(),
        frame::raw(b'Q', 1000, b"SELECT 1"),
        frame::raw(b'P', 40, b"stmt\0SELECT"),
    ];
    for bytes in cuts {
        let mut s = raw_login(&proxy, "proto").await;
        let pid = first_value(&raw_query(&mut s.client, "SELECT pg_backend_pid()").await);
        s.client.send(&bytes).await.unwrap();
        s.client.stream_mut().shutdown().await.unwrap();
        drop(s);
        let started = std::time::Instant::now();
        let bystander = connect(&conn_str).await.unwrap();
        assert_serving(&bystander).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the next client waited {:?} for the pool's connection",
            started.elapsed()
        );
        // Half a message went (or may have gone) upstream: that connection is not reused.
        let next: i32 = bystander
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        assert_ne!(next.to_string(), pid, "the cut connection was reused");
    }
}
