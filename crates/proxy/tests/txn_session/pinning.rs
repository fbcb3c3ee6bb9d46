//! Session-only features in transaction mode: pinned (LISTEN/NOTIFY end to end, nothing
//! left behind when the client goes) or refused with 0A000.

use std::time::Duration;

use dbwarden_config::SessionFeatures;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};

use super::common::*;
use super::{client, DB};
use crate::common::{killable, txn_config, value, PASSWORD, USER};

/// A client whose notifications arrive on the returned channel as (channel, payload).
async fn listening_client(
    proxy: &TestProxy,
) -> (
    tokio_postgres::Client,
    mpsc::UnboundedReceiver<(String, String)>,
) {
    let (client, mut conn) = tokio_postgres::connect(&proxy.conn_str(USER, PASSWORD, DB), NoTls)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    (client, rx)
}

async fn next_notification(rx: &mut mpsc::UnboundedReceiver<(String, String)>) -> (String, String) {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s")
        .expect("the connection is still open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_and_notify_work_end_to_end_through_pinning() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 2)).await;
    let (a, mut notes) = listening_client(&proxy).await;
    a.batch_execute("LISTEN jobs").await.unwrap();
    let pinned = value(&a, "SELECT pg_backend_pid()").await;

    // B and C share the one connection A leaves free.
    let (b, c) = (client(&proxy).await, client(&proxy).await);
    for n in 0..3 {
        b.batch_execute(&format!("NOTIFY jobs, 'job {n}'"))
            .await
            .unwrap();
        assert_eq!(value(&c, "SELECT 'c'").await, "c");
    }
    // Delivered while A is idle, in order.
    for n in 0..3 {
        assert_eq!(
            next_notification(&mut notes).await,
            ("jobs".to_owned(), format!("job {n}"))
        );
    }
    // A stays on its connection and keeps working; a NOTIFY inside a transaction arrives
    // when it commits.
    assert_eq!(value(&a, "SELECT pg_backend_pid()").await, pinned);
    b.batch_execute("BEGIN; NOTIFY jobs, 'committed'; COMMIT")
        .await
        .unwrap();
    assert_eq!(next_notification(&mut notes).await.1, "committed");
    c.batch_execute("SELECT pg_notify('jobs', 'from c')")
        .await
        .unwrap();
    assert_eq!(next_notification(&mut notes).await.1, "from c");
    assert_eq!(
        value(&b, "SELECT count(*) FROM pg_listening_channels()").await,
        "0"
    );
    drop((a, b, c));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_session_features_get_0a000_and_the_session_carries_on() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 1);
    config.pool.session_features = SessionFeatures::Refuse;
    let proxy = TestProxy::start(config).await;
    let (a, b) = (client(&proxy).await, client(&proxy).await);
    for (sql, feature) in [
        ("LISTEN jobs", "listen"),
        ("SELECT pg_advisory_lock(42)", "advisory lock"),
        ("CREATE TEMP TABLE scratch (i int)", "temporary table"),
        (
            "DECLARE held CURSOR WITH HOLD FOR SELECT 1",
            "cursor with hold",
        ),
        ("PREPARE twice(int) AS SELECT $1 * 2", "PREPARE"),
    ] {
        let err = a.batch_execute(sql).await.unwrap_err();
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(
            db.code(),
            &tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED
        );
        assert!(db.message().contains(feature), "{sql}: {}", db.message());
        // A carries on, and does not keep the only server connection from B meanwhile.
        assert_eq!(value(&b, "SELECT 'b'").await, "b", "{sql}");
        assert_eq!(value(&a, "SELECT 'a'").await, "a", "{sql}");
    }
    assert_eq!(
        value(&b, "SELECT count(*) FROM pg_listening_channels()").await,
        "0"
    );
    assert_eq!(
        value(
            &b,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        )
        .await,
        "0"
    );
    drop((a, b));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_inside_a_transaction_fails_that_transaction() {
    let pg = cluster_with_db(DB).await;
    let mut config = txn_config(&pg, 1);
    config.pool.session_features = SessionFeatures::Refuse;
    let proxy = TestProxy::start(config).await;
    let a = client(&proxy).await;
    a.batch_execute("CREATE TABLE ledger (id int)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO ledger VALUES (1)")
        .await
        .unwrap();
    let err = a.batch_execute("LISTEN jobs").await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
    );
    // As after any error in a transaction block: nothing more runs, COMMIT rolls back.
    let err = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::IN_FAILED_SQL_TRANSACTION)
    );
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(value(&a, "SELECT count(*) FROM ledger").await, "0");
    drop(a);
    proxy.shutdown().await;
}

/// What a session can leave on its server connection, as seen from that connection.
const LEFTOVERS: &str = "SELECT (SELECT count(*) FROM pg_listening_channels())
     + (SELECT count(*) FROM pg_cursors)
     + (SELECT count(*) FROM pg_prepared_statements WHERE from_sql)
     + (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory')
     + (CASE WHEN to_regclass('pg_temp.scratch') IS NULL THEN 0 ELSE 1 END)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_client_that_leaves_leaves_nothing_behind() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 1)).await;
    // Leaving politically (Terminate) and being killed (the socket just closes).
    for killed in [false, true] {
        let (a, a_conn) = killable(&proxy.conn_str(USER, PASSWORD, DB)).await;
        a.batch_execute(
            "LISTEN jobs; CREATE TEMP TABLE scratch (i int); SELECT pg_advisory_lock(42);
             DECLARE held CURSOR WITH HOLD FOR SELECT 1; PREPARE twice(int) AS SELECT $1 * 2",
        )
        .await
        .unwrap();
        assert_eq!(value(&a, LEFTOVERS).await, "5", "the set-up took effect");
        let a_pid = value(&a, "SELECT pg_backend_pid()").await;
        if killed {
            a_conn.abort();
        } else {
            drop(a);
        }
        // The next client gets the one server connection: A's, reset, or a new one.
        let b = client(&proxy).await;
        b.batch_execute("BEGIN").await.unwrap();
        let b_pid = value(&b, "SELECT pg_backend_pid()").await;
        assert_eq!(
            value(&b, LEFTOVERS).await,
            "0",
            "killed={killed}, A on {a_pid}, B on {b_pid}"
        );
        b.batch_execute("COMMIT").await.unwrap();
    }
    proxy.shutdown().await;
}
