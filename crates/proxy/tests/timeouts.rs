//! Client-side limits against a real PostgreSQL: query and transaction timeouts cancel the
//! backend work, client deadlines (past and mid-query), client idle and idle in transaction.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dbwarden_config::{Config, PoolMode};
use dbwarden_testkit::PgCluster;
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

const DB: &str = "limits";

/// A client whose connection task's outcome is kept, to read the FATAL the proxy sends.
async fn connect_watched(
    conn_str: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (client, conn) = tokio_postgres::connect(conn_str, NoTls).await.unwrap();
    (client, tokio::spawn(conn))
}

/// Backends of the test user (other than the asking one) matching `filter`, polled until
/// none is left or two seconds pass.
async fn backends_left(pg: &PgCluster, filter: &str) -> i64 {
    let direct = connect(&format!(
        "host={} port={} user={USER} password={PASSWORD} dbname={DB}",
        pg.host(),
        pg.port()
    ))
    .await
    .unwrap();
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE usename = '{USER}' \
         AND pid <> pg_backend_pid() AND {filter}"
    );
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        let n: i64 = direct.query_one(&sql, &[]).await.unwrap().get(0);
        if n == 0 || Instant::now() > until {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn config(pg: &PgCluster, mode: PoolMode) -> Config {
    let mut c = upstream_config(pg, 2);
    c.pool.mode = mode;
    c
}

/// The server's (or proxy's) message, which `Display` leaves out.
fn text(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

fn db_code(e: &tokio_postgres::Error) -> Option<SqlState> {
    e.as_db_error().map(|d| d.code().clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_timeout_cancels_the_backend_query_in_both_modes() {
    let pg = cluster_with_db(DB).await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let mut c = config(&pg, mode);
        c.pool.query_timeout = Duration::from_millis(500);
        let proxy = TestProxy::start(c).await;
        let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
        let started = Instant::now();
        let err = client
            .simple_query("SELECT pg_sleep(30)")
            .await
            .expect_err("the query must be cancelled");
        let took = started.elapsed();
        assert_eq!(
            db_code(&err),
            Some(SqlState::QUERY_CANCELED),
            "{mode:?}: {err}"
        );
        let message = err.as_db_error().unwrap().message().to_owned();
        assert!(message.contains("query_timeout"), "{mode:?}: {message}");
        assert!(took < Duration::from_secs(3), "{mode:?}: took {took:?}");
        assert_eq!(
            backends_left(&pg, "query LIKE '%pg_sleep(30)%' AND state = 'active'").await,
            0,
            "{mode:?}: the backend query is still running"
        );
        // The session goes on, on a clean connection.
        let row = client.query_one("SELECT 1 + 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 2, "{mode:?}");
        // Leave first, so shutdown does not wait out shutdown_timeout for this session.
        drop(client);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_timeout_cancels_the_running_query() {
    let pg = cluster_with_db(DB).await;
    let mut c = config(&pg, PoolMode::Transaction);
    c.pool.transaction_timeout = Duration::from_millis(600);
    let proxy = TestProxy::start(c).await;
    let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
    client.batch_execute("BEGIN").await.unwrap();
    let err = client
        .simple_query("SELECT pg_sleep(30)")
        .await
        .expect_err("the transaction's query must be cancelled");
    assert_eq!(db_code(&err), Some(SqlState::QUERY_CANCELED), "{err}");
    assert!(text(&err).contains("transaction_timeout"), "{err}");
    client.batch_execute("ROLLBACK").await.unwrap();
    let row = client.query_one("SELECT 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
    assert_eq!(
        backends_left(&pg, "query LIKE '%pg_sleep(30)%' AND state = 'active'").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_deadline_is_refused_at_once() {
    let pg = cluster_with_db(DB).await;
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let proxy = TestProxy::start(config(&pg, mode)).await;
        let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
        let started = Instant::now();
        for sql in [
            "/* dbwarden_deadline_at=1000 */ SELECT pg_sleep(30)",
            "SELECT pg_sleep(30) /*dbwarden_deadline_ms='0'*/",
        ] {
            let err = client.simple_query(sql).await.expect_err("refused");
            assert_eq!(
                db_code(&err),
                Some(SqlState::QUERY_CANCELED),
                "{mode:?}: {err}"
            );
            assert!(text(&err).contains("dbwarden_deadline"), "{err}");
        }
        assert!(started.elapsed() < Duration::from_secs(1), "{mode:?}");
        let row = client.query_one("SELECT 3", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 3);
        drop(client);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_mid_query_cancels_it() {
    let pg = cluster_with_db(DB).await;
    for mode in [PoolMode::Transaction, PoolMode::Session] {
        let proxy = TestProxy::start(config(&pg, mode)).await;
        let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap();
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 400;
        for sql in [
            "/* dbwarden_deadline_ms=300 */ SELECT pg_sleep(30)".to_owned(),
            format!("SELECT pg_sleep(30) /*dbwarden_deadline_at='{at}'*/"),
        ] {
            let started = Instant::now();
            let err = client.simple_query(&sql).await.expect_err("cancelled");
            assert_eq!(
                db_code(&err),
                Some(SqlState::QUERY_CANCELED),
                "{mode:?}: {err}"
            );
            assert!(text(&err).contains("dbwarden_deadline"), "{err}");
            let took = started.elapsed();
            assert!(took < Duration::from_secs(3), "{mode:?} {sql}: {took:?}");
        }
        assert_eq!(
            backends_left(&pg, "query LIKE '%pg_sleep(30)%' AND state = 'active'").await,
            0
        );
        // A deadline that leaves enough time changes nothing.
        let rows = client
            .simple_query("/* dbwarden_deadline_ms=5000 */ SELECT 1")
            .await
            .unwrap();
        let got_row = rows.iter().any(
            |m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("1")),
        );
        assert!(got_row, "{mode:?}");
        drop(client);
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_client_is_closed_in_both_modes() {
    let pg = cluster_with_db(DB).await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let mut c = config(&pg, mode);
        c.pool.client_idle_timeout = Duration::from_millis(300);
        let proxy = TestProxy::start(c).await;
        let (client, conn) = connect_watched(&proxy.conn_str(USER, PASSWORD, DB)).await;
        client.batch_execute("SELECT 1").await.unwrap();
        let err = tokio::time::timeout(Duration::from_secs(3), conn)
            .await
            .expect("closed within the timeout")
            .unwrap()
            .expect_err("a FATAL error");
        assert_eq!(
            db_code(&err).map(|c| c.code().to_owned()),
            Some("57P05".into())
        );
        assert!(text(&err).contains("client_idle_timeout"), "{err}");
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_in_transaction_is_rolled_back_in_both_modes() {
    let pg = cluster_with_db(DB).await;
    let direct = pg.url(USER, PASSWORD, DB);
    connect(&direct)
        .await
        .unwrap()
        .batch_execute("CREATE TABLE IF NOT EXISTS t (n int)")
        .await
        .unwrap();
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let mut c = config(&pg, mode);
        c.pool.idle_transaction_timeout = Duration::from_millis(300);
        let proxy = TestProxy::start(c).await;
        let (client, conn) = connect_watched(&proxy.conn_str(USER, PASSWORD, DB)).await;
        client
            .batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let err = tokio::time::timeout(Duration::from_secs(3), conn)
            .await
            .expect("closed within the timeout")
            .unwrap()
            .expect_err("a FATAL error");
        assert_eq!(
            db_code(&err),
            Some(SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT),
            "{mode:?}: {err}"
        );
        assert!(text(&err).contains("idle_transaction_timeout"), "{err}");
        assert_eq!(
            backends_left(&pg, "state LIKE 'idle in transaction%'").await,
            0
        );
        let n: i64 = connect(&direct)
            .await
            .unwrap()
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{mode:?}: the insert was rolled back");
        proxy.shutdown().await;
    }
}
