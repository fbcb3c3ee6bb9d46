//! PAUSE holds new transactions and lets running ones finish; RESUME releases them.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_transactions_and_resume_releases_them() {
    let pg = cluster_with_db("paused").await;
    let proxy = TestProxy::start(txn_config(&pg, 2)).await;
    let running = connect(&proxy.conn_str(USER, PASSWORD, "paused"))
        .await
        .unwrap();
    let waiting = connect(&proxy.conn_str(USER, PASSWORD, "paused"))
        .await
        .unwrap();

    // A transaction already holding its server connection carries on through PAUSE.
    running.batch_execute("BEGIN").await.unwrap();
    proxy.proxy.pause();
    assert!(proxy.proxy.is_paused());
    let n: i32 = running
        .query_one("SELECT 41 + 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 42);
    running.batch_execute("COMMIT").await.unwrap();

    // A new transaction waits...
    let held = tokio::spawn(async move {
        let v: i32 = waiting.query_one("SELECT 7", &[]).await.unwrap().get(0);
        (v, waiting)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "a new transaction ran while paused");

    // ...until RESUME.
    proxy.proxy.resume();
    let (v, waiting) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("RESUME releases the held transaction")
        .unwrap();
    assert_eq!(v, 7);
    drop((running, waiting));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_longer_than_query_wait_timeout_fails_the_waiter_with_57014() {
    let pg = cluster_with_db("paused").await;
    let mut config = txn_config(&pg, 2);
    config.pool.query_wait_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(config).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "paused"))
        .await
        .unwrap();
    proxy.proxy.pause();
    let err = c
        .query_one("SELECT 1", &[])
        .await
        .expect_err("bounded wait");
    let db = err.as_db_error().expect("a server-style error");
    assert_eq!(db.code().code(), "57014");
    assert!(db.message().contains("paused"), "{}", db.message());
    proxy.proxy.resume();
    proxy.shutdown().await;
}
