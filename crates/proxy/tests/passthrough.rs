//! Everything a session sends must pass through the proxy intact: COPY both ways, notices,
//! notifications, tens-of-MB rows and parameters, pipelined extended-protocol batches, empty
//! queries, errors inside transactions and multi-statement queries.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use dbwarden_config::{AuthMethod, Config};
use dbwarden_testkit::{frame, PgCluster, RawClient, RawMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

const DB: &str = "pass";

/// Raw-bytes clients cannot do SCRAM: these proxies trust the configured user.
fn trust_config(pg: &PgCluster) -> Config {
    let mut c = upstream_config(pg, 4);
    c.auth.method = AuthMethod::Trust;
    c
}

async fn setup() -> (PgCluster, TestProxy) {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(trust_config(&pg)).await;
    (pg, proxy)
}

async fn client(proxy: &TestProxy) -> tokio_postgres::Client {
    connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap()
}

/// A client whose notices and notifications arrive on the returned channel.
async fn client_with_messages(
    proxy: &TestProxy,
) -> (
    tokio_postgres::Client,
    mpsc::UnboundedReceiver<AsyncMessage>,
) {
    let (client, mut conn) = tokio_postgres::connect(&proxy.conn_str(USER, PASSWORD, DB), NoTls)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Keep driving the connection even when nobody listens any more.
        while let Some(Ok(m)) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            let _ = tx.send(m);
        }
    });
    (client, rx)
}

async fn next_message(rx: &mut mpsc::UnboundedReceiver<AsyncMessage>) -> AsyncMessage {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("an asynchronous message within 10 s")
        .expect("the connection is still open")
}

async fn raw_login(proxy: &TestProxy) -> RawClient {
    let mut c = RawClient::connect(proxy.addr).await.unwrap();
    c.startup(USER, DB).await.unwrap();
    let messages = c.read_until(b'Z').await.unwrap();
    assert!(messages.iter().all(|m| m.tag != b'E'), "login failed");
    c
}

/// The `ReadyForQuery` status byte ('I', 'T' or 'E') of the last message.
fn status(messages: &[RawMessage]) -> u8 {
    let z = messages.last().expect("messages");
    assert_eq!(z.tag, b'Z');
    z.body[0]
}

fn tags(messages: &[RawMessage]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}

/// Extended-protocol messages, built by hand like the test kit's own frames.
mod ext {
    use dbwarden_testkit::frame::tagged;

    fn cstr(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    pub fn parse(name: &str, sql: &str) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, name);
        cstr(&mut b, sql);
        b.extend_from_slice(&0u16.to_be_bytes()); // parameter types left to the server
        tagged(b'P', &b)
    }

    /// Binds text-format `params` to statement `stmt` in the unnamed portal.
    pub fn bind(stmt: &str, params: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, "");
        cstr(&mut b, stmt);
        b.extend_from_slice(&0u16.to_be_bytes()); // all parameters in text
        b.extend_from_slice(&(params.len() as u16).to_be_bytes());
        for p in params {
            b.extend_from_slice(&(p.len() as i32).to_be_bytes());
            b.extend_from_slice(p.as_bytes());
        }
        b.extend_from_slice(&0u16.to_be_bytes()); // all results in text
        tagged(b'B', &b)
    }

    pub fn execute() -> Vec<u8> {
        let mut b = Vec::new();
        cstr(&mut b, "");
        b.extend_from_slice(&0i32.to_be_bytes()); // no row limit
        tagged(b'E', &b)
    }

    pub fn sync() -> Vec<u8> {
        tagged(b'S', &[])
    }
}

/// Runs `sql` with the simple protocol; the messages through ReadyForQuery.
async fn q(c: &mut RawClient, sql: &str) -> Vec<RawMessage> {
    c.send(&frame::query(sql)).await.unwrap();
    c.read_until(b'Z').await.unwrap()
}

/// A DataRow's first column as text.
fn column0(row: &RawMessage) -> &[u8] {
    let len = i32::from_be_bytes(row.body[2..6].try_into().unwrap()) as usize;
    &row.body[6..6 + len]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_round_trip_exactly() {
    let (_pg, proxy) = setup().await;
    let c = client(&proxy).await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, s text, n numeric)")
        .await
        .unwrap();

    // COPY text format, already canonical so that COPY TO must give back the same bytes:
    // escapes, NULLs, non-ASCII, and enough rows (~1.5 MB) to span many reads and writes.
    let mut data = String::new();
    for i in 0..20_000 {
        let s = match i % 4 {
            0 => format!("tab\\there, newline\\nthere, backslash \\\\ {i}"),
            1 => "\\N".to_owned(),
            2 => format!("ünïcödé ✓ {}", "é".repeat(i % 50)),
            _ => "x".repeat(i % 97),
        };
        data.push_str(&format!("{i}\t{s}\t{}.{:03}\n", i * 7, i % 1000));
    }
    let sink = c.copy_in("COPY t FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    // Sent in uneven pieces, so that frames and rows do not line up.
    for piece in data.as_bytes().chunks(7919) {
        sink.send(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 20_000);

    let stream = c
        .copy_out("COPY (SELECT * FROM t ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out.len(), data.len());
    if let Some(at) = out.iter().zip(data.as_bytes()).position(|(a, b)| a != b) {
        let from = at.saturating_sub(60);
        panic!(
            "COPY TO differs from what COPY FROM took at byte {at}:\n got {:?}\nsent {:?}",
            String::from_utf8_lossy(&out[from..(at + 60).min(out.len())]),
            String::from_utf8_lossy(&data.as_bytes()[from..(at + 60).min(data.len())]),
        );
    }

    // A bad row fails the COPY with the server's error and leaves the session usable.
    let sink = c.copy_in("COPY t FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"not-a-number\tx\t1\n"))
        .await
        .unwrap();
    let err = sink.finish().await.expect_err("a bad row fails");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INVALID_TEXT_REPRESENTATION)
    );
    let n: i64 = c
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_and_notifications_reach_the_client() {
    let (_pg, proxy) = setup().await;
    let (listener, mut messages) = client_with_messages(&proxy).await;
    let notifier = client(&proxy).await;

    listener
        .batch_execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$")
        .await
        .unwrap();
    match next_message(&mut messages).await {
        AsyncMessage::Notice(n) => {
            assert_eq!(n.message(), "hello 42");
            assert_eq!(n.severity(), "NOTICE");
        }
        other => panic!("expected a notice, got {other:?}"),
    }

    // Session mode: each client has its own server connection, so LISTEN stays where it was.
    listener.batch_execute("LISTEN chan").await.unwrap();
    let listener_pid: i32 = listener
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let notifier_pid: i32 = notifier
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    assert_ne!(listener_pid, notifier_pid);

    // The listener sits idle: the notification must be forwarded without a query to carry it.
    for payload in ["first", "second, with ünïcödé"] {
        notifier
            .execute("SELECT pg_notify('chan', $1)", &[&payload])
            .await
            .unwrap();
        match next_message(&mut messages).await {
            AsyncMessage::Notification(n) => {
                assert_eq!(n.channel(), "chan");
                assert_eq!(n.payload(), payload);
                assert_eq!(n.process_id(), notifier_pid);
            }
            other => panic!("expected a notification, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_megabyte_row_and_parameter_pass_intact() {
    let (_pg, proxy) = setup().await;
    let c = client(&proxy).await;
    const SIZE: usize = 30_000_000;

    let row = c
        .query_one("SELECT repeat('x', 30000000)", &[])
        .await
        .unwrap();
    let s: &str = row.get(0);
    assert_eq!(s.len(), SIZE);
    assert!(s.bytes().all(|b| b == b'x'));

    // Every byte value, in a pattern that shows any lost, doubled or reordered chunk.
    let sent: Vec<u8> = (0..SIZE as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8)
        .collect();
    let row = c.query_one("SELECT $1::bytea", &[&sent]).await.unwrap();
    let back: &[u8] = row.get(0);
    assert_eq!(back.len(), SIZE);
    assert!(back == &sent[..], "the 30 MB parameter came back changed");

    // The same through the simple protocol (text), then the session is still in step.
    let text = "abcdefghij".repeat(SIZE / 10);
    let rows = c
        .simple_query(&format!(
            "SELECT md5('{text}') = md5(repeat('abcdefghij', {}))",
            SIZE / 10
        ))
        .await
        .unwrap();
    let same = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(same.as_deref(), Some("t"));
    let n: i32 = c.query_one("SELECT 1", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_extended_batch_gets_every_result_in_order() {
    let (_pg, proxy) = setup().await;
    let mut c = raw_login(&proxy).await;

    // 1000 unnamed Parse/Bind/Execute and one Sync, in a single write.
    let mut batch = Vec::new();
    for i in 0..1000 {
        batch.extend(ext::parse("", "SELECT $1::int + 1"));
        batch.extend(ext::bind("", &[&i.to_string()]));
        batch.extend(ext::execute());
    }
    batch.extend(ext::sync());
    c.send(&batch).await.unwrap();
    let messages = c.read_until(b'Z').await.unwrap();
    assert_eq!(status(&messages), b'I');
    let count = |t: u8| messages.iter().filter(|m| m.tag == t).count();
    assert_eq!(
        (count(b'1'), count(b'2'), count(b'C'), count(b'Z')),
        (1000, 1000, 1000, 1)
    );
    let values: Vec<&[u8]> = messages
        .iter()
        .filter(|m| m.tag == b'D')
        .map(column0)
        .collect();
    let expected: Vec<String> = (1..=1000).map(|i: i32| i.to_string()).collect();
    assert_eq!(values.len(), 1000);
    for (got, want) in values.iter().zip(&expected) {
        assert_eq!(*got, want.as_bytes());
    }

    // tokio-postgres pipelines concurrent queries on one connection on its own.
    let tp = client(&proxy).await;
    let stmt = tp.prepare("SELECT $1::int * 3").await.unwrap();
    let queries = (0..200i32).map(|i| {
        let (tp, stmt) = (&tp, &stmt);
        async move { tp.query_one(stmt, &[&i]).await.unwrap().get::<_, i32>(0) }
    });
    let results = futures_util::future::join_all(queries).await;
    assert_eq!(results, (0..200).map(|i| i * 3).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_pipeline_written_before_reading_does_not_deadlock() {
    let (_pg, proxy) = setup().await;
    let mut c = raw_login(&proxy).await;

    // ~0.5 MB of requests answered by ~20 MB: a proxy that stops reading one side while the
    // other is blocked would wedge here, because this client reads nothing until it has
    // written everything.
    const N: usize = 20_000;
    let mut batch = ext::parse("s", "SELECT repeat('y', 1000)");
    for _ in 0..N {
        batch.extend(ext::bind("s", &[]));
        batch.extend(ext::execute());
    }
    batch.extend(ext::sync());
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        c.send(&batch).await.unwrap();
        c.read_until(b'Z').await.unwrap()
    })
    .await
    .expect("the batch completes within 60 s");
    let rows: Vec<&RawMessage> = outcome.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), N);
    assert!(rows.iter().all(|r| column0(r) == [b'y'; 1000]));
    assert_eq!(outcome.iter().filter(|m| m.tag == b'C').count(), N);
    assert_eq!(status(&outcome), b'I');
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_queries_errors_in_transactions_and_multi_statement_queries() {
    let (_pg, proxy) = setup().await;
    let mut c = raw_login(&proxy).await;

    // The empty query, simple and extended.
    assert_eq!(tags(&q(&mut c, "").await), "IZ");
    assert_eq!(tags(&q(&mut c, "  ;  ").await), "IZ");
    let mut batch = ext::parse("", "");
    batch.extend(ext::bind("", &[]));
    batch.extend(ext::execute());
    batch.extend(ext::sync());
    c.send(&batch).await.unwrap();
    assert_eq!(tags(&c.read_until(b'Z').await.unwrap()), "12IZ");

    // An error inside a transaction: status 'E', later statements refused, ROLLBACK recovers.
    assert_eq!(status(&q(&mut c, "BEGIN").await), b'T');
    let r = q(&mut c, "SELECT 1/0").await;
    assert_eq!(r[0].error_code().as_deref(), Some("22012"));
    assert_eq!(status(&r), b'E');
    let r = q(&mut c, "SELECT 1").await;
    assert_eq!(r[0].error_code().as_deref(), Some("25P02"));
    assert_eq!(status(&r), b'E');
    let r = q(&mut c, "ROLLBACK").await;
    assert_eq!(tags(&r), "CZ");
    assert_eq!(status(&r), b'I');

    // Several statements in one Query: one result set each, one ReadyForQuery in all.
    let r = q(&mut c, "CREATE TEMP TABLE m (a int); INSERT INTO m VALUES (1), (2); SELECT a FROM m ORDER BY a; SELECT 'last'").await;
    assert_eq!(tags(&r), "CCTDDCTDCZ");
    // An error stops the rest of the string, and its implicit transaction rolls back.
    let r = q(
        &mut c,
        "INSERT INTO m VALUES (3); SELECT 1/0; INSERT INTO m VALUES (4)",
    )
    .await;
    assert_eq!(tags(&r), "CEZ");
    assert_eq!(status(&r), b'I');
    let r = q(&mut c, "SELECT count(*) FROM m").await;
    assert_eq!(column0(&r[1]), b"2");
}
