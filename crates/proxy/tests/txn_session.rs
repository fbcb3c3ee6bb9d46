//! Transaction mode and what belongs to a session: cancel requests reach only the client's
//! own query, session-only features pin the client (or are refused), and a client that
//! leaves, however it leaves, leaves nothing behind on the server connection.

mod common;
#[path = "txn_session/pinning.rs"]
mod pinning;

use std::time::Duration;

use common::*;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

const DB: &str = "sessions";

async fn client(proxy: &TestProxy) -> Client {
    connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap()
}

/// How many of the proxy's server connections run a query containing `marker`.
async fn running(monitor: &Client, marker: &str) -> i64 {
    monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE state = 'active' AND query LIKE '%' || $1 || '%' AND pid <> pg_backend_pid()",
            &[&marker],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_stops_only_the_clients_own_query() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    // Two connections for three clients: A and B hold both while they sleep.
    let proxy = TestProxy::start(txn_config(&pg, 2)).await;
    let (a, b, c) = (
        client(&proxy).await,
        client(&proxy).await,
        client(&proxy).await,
    );
    let token = a.cancel_token();
    let a_run = tokio::spawn(async move { a.batch_execute("SELECT pg_sleep(10) /* a */").await });
    let b_run = tokio::spawn(async move { b.batch_execute("SELECT pg_sleep(10) /* b */").await });
    eventually("both queries running", Duration::from_secs(10), || async {
        running(&mon, "/* a */").await == 1 && running(&mon, "/* b */").await == 1
    })
    .await;
    token.cancel_query(NoTls).await.unwrap();
    let err = a_run.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
    assert_eq!(
        running(&mon, "/* b */").await,
        1,
        "B's query was stopped too"
    );
    // C gets A's connection as soon as it is free, while B sleeps on.
    assert_eq!(value(&c, "SELECT 'c'").await, "c");
    b_run.await.unwrap().expect("B's query completes");
    drop(c);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_cancel_key_does_nothing_to_the_next_client() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    // One connection: whatever A ran on it, B runs on it next.
    let proxy = TestProxy::start(txn_config(&pg, 1)).await;
    let (a, b) = (client(&proxy).await, client(&proxy).await);
    let a_pid = value(&a, "SELECT pg_backend_pid()").await;
    let token = a.cancel_token();
    let b_run = tokio::spawn(async move {
        let pid = value(&b, "SELECT pg_backend_pid() FROM pg_sleep(1.5) /* b */").await;
        (b, pid)
    });
    eventually("B's query running", Duration::from_secs(10), || async {
        running(&mon, "/* b */").await == 1
    })
    .await;
    // A's transaction ended long ago; its key now points at nothing.
    token.cancel_query(NoTls).await.unwrap();
    let (b, b_pid) = b_run.await.unwrap();
    assert_eq!(b_pid, a_pid, "B ran on the connection A used");
    // And A's own session is none the worse.
    assert_eq!(value(&a, "SELECT 'a'").await, "a");
    drop((a, b));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_transaction_is_rolled_back_and_its_connection_not_reused() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    let proxy = TestProxy::start(txn_config(&pg, 1)).await;
    let b = client(&proxy).await;
    b.batch_execute("CREATE TABLE ledger (id int)")
        .await
        .unwrap();

    // Killed between statements of a transaction, then killed while a statement runs.
    for (step, last) in [
        ("idle", "SELECT 1"),
        ("busy", "SELECT pg_sleep(30) /* busy */"),
    ] {
        let (a, a_conn) = killable(&proxy.conn_str(USER, PASSWORD, DB)).await;
        a.batch_execute("BEGIN; INSERT INTO ledger VALUES (1)")
            .await
            .unwrap();
        let a_pid = value(&a, "SELECT pg_backend_pid()").await;
        let pending = tokio::spawn(async move {
            let _ = a.batch_execute(last).await;
        });
        if step == "busy" {
            eventually("A's query running", Duration::from_secs(10), || async {
                running(&mon, "/* busy */").await == 1
            })
            .await;
        }
        a_conn.abort();
        let _ = pending.await;

        // B's statement starts its own transaction, on a clean connection.
        let fresh = value(&b, "SELECT now() = statement_timestamp()").await;
        assert_eq!(
            fresh, "t",
            "{step}: B's statement ran inside another transaction"
        );
        assert_eq!(
            value(&b, "SELECT count(*) FROM ledger").await,
            "0",
            "{step}"
        );
        assert_ne!(value(&b, "SELECT pg_backend_pid()").await, a_pid, "{step}");
        eventually("A's backend gone, nothing left running", Duration::from_secs(10), || async {
            let left: i64 = mon
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 OR (query LIKE '%/* busy */%' AND pid <> pg_backend_pid())",
                    &[&a_pid.parse::<i32>().unwrap()],
                )
                .await
                .unwrap()
                .get(0);
            left == 0
        })
        .await;
    }
    drop(b);
    proxy.shutdown().await;
}
