//! Many idle clients in transaction mode. An idle client holds no relay buffer (they are lent
//! only while bytes are pending), so every one of these checks that a client gets buffers
//! back after idling: small queries, a 1 MB row and a 1 MB query, several times over.

mod common;

use common::*;
use futures_util::stream::{self, StreamExt};

const CLIENTS: usize = 300;
/// Logins at once: SCRAM on both sides, on a shared two-core machine.
const LOGINS_AT_ONCE: usize = 16;
const MB: usize = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_idle_clients_all_work_after_idling() {
    let pg = cluster_with_db("idle").await;
    let pool_size = 4;
    let proxy = TestProxy::start(txn_config(&pg, pool_size)).await;
    let conn_str = proxy.conn_str(USER, PASSWORD, "idle");

    let clients: Vec<tokio_postgres::Client> = stream::iter(0..CLIENTS)
        .map(|_| connect(&conn_str))
        .buffered(LOGINS_AT_ONCE)
        .map(|c| c.expect("login through the proxy"))
        .collect()
        .await;
    assert_eq!(proxy.proxy.client_count(), CLIENTS);
    // All of them logged in and idle on a handful of server connections.
    let mon = monitor(&pg).await;
    let backends: i64 = value(
        &mon,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'idle'",
    )
    .await
    .parse()
    .unwrap();
    assert!(
        backends <= i64::from(pool_size),
        "{backends} server connections"
    );

    for round in 0..3 {
        // Every client, after idling, answers with its own number (extended protocol).
        let answers: Vec<i32> = stream::iter(clients.iter().enumerate())
            .map(|(i, c)| async move {
                let row = c
                    .query_one("SELECT $1::int + $2::int", &[&(i as i32), &round])
                    .await
                    .unwrap();
                row.get::<_, i32>(0)
            })
            .buffer_unordered(64)
            .collect()
            .await;
        let mut answers = answers;
        answers.sort_unstable();
        let expected: Vec<i32> = (0..CLIENTS as i32).map(|i| i + round).collect();
        assert_eq!(answers, expected, "round {round}");

        // Some clients get a 1 MB row and some send a 1 MB query: the buffers they are lent
        // grow past their usual size for that one message.
        for (i, c) in clients.iter().enumerate().skip(round as usize).step_by(50) {
            let row = c
                .query_one(
                    "SELECT repeat(chr(65 + $1::int % 26), $2::int)",
                    &[&(i as i32), &(MB as i32)],
                )
                .await
                .unwrap();
            let text: String = row.get(0);
            let letter = char::from(b'A' + (i % 26) as u8);
            assert_eq!(text.len(), MB);
            assert!(
                text.chars().all(|ch| ch == letter),
                "client {i}: row changed"
            );

            let literal = "z".repeat(MB);
            let len = value(c, &format!("SELECT length('{literal}') + {i}")).await;
            assert_eq!(len, (MB + i).to_string(), "client {i}: 1 MB query");
        }
    }

    // Clients that leave while idle leave nothing behind.
    drop(clients);
    let mut left = proxy.proxy.client_count();
    for _ in 0..200 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        left = proxy.proxy.client_count();
    }
    assert_eq!(left, 0, "clients still registered after all disconnected");
}
