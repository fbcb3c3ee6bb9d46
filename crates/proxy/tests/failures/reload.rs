//! Reloads under traffic (`Proxy::reload`, what SIGHUP calls): pool sizes and timeouts
//! change without dropping anyone, and a database moved to another PostgreSQL drains its old
//! pool while connected clients keep working.

use std::time::{Duration, Instant};

use dbwarden_config::{Config, PoolMode};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changes_pool_size_and_timeouts_without_dropping_clients() {
    let pg = cluster_with_db(DB).await;
    let mut c = txn_config(&pg, 1);
    c.pool.query_wait_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(c.clone()).await;

    // A holds the only server connection inside a transaction: B cannot get one.
    let a = client(&proxy).await;
    a.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let Err(err) = connect(&proxy.conn_str(USER, PASSWORD, DB)).await else {
        panic!("pool size 1 is taken");
    };
    let (code, message) = db_error(&err).expect("the proxy's error");
    assert_eq!(code, "57014", "{message}");
    assert!(message.contains("pool size 1"), "{message}");

    c.pool.size = 3;
    c.pool.query_timeout = Duration::from_millis(300);
    proxy.proxy.reload(c).unwrap();

    // Room at once, while A is still in its transaction.
    let b = client(&proxy).await;
    assert_eq!(value(&b, "SELECT 2").await, "2");
    // New clients get the new query_timeout...
    let started = Instant::now();
    let err = b
        .simple_query("SELECT pg_sleep(5)")
        .await
        .expect_err("query_timeout applies to a client that logged in after the reload");
    let (code, message) = db_error(&err).unwrap();
    assert_eq!(
        (code.as_str(), started.elapsed() < Duration::from_secs(3)),
        ("57014", true),
        "{message}"
    );
    assert!(message.contains("query_timeout"), "{message}");
    // ... while A, connected before, keeps its session and the limits it logged in with.
    a.batch_execute("SELECT pg_sleep(0.5); COMMIT")
        .await
        .unwrap();
    assert_eq!(value(&a, "SELECT 4").await, "4");
    drop((a, b));
    proxy.shutdown().await;
}

/// `SHOW port`: which PostgreSQL a client's statement ran on.
async fn port_of(c: &Client) -> String {
    value(c, "SHOW port").await
}

fn config_for(pg: &PgCluster, mode: PoolMode) -> Config {
    let mut c = upstream_config(pg, 2);
    c.pool.mode = mode;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_to_another_backend_drains_the_old_pool_and_keeps_clients() {
    let (old, new) = tokio::join!(cluster_with_db(DB), cluster_with_db(DB));
    let old_mon = monitor(&old).await;
    for pg in [&old, &new] {
        run_direct(pg, "CREATE TABLE t (a int)").await;
    }
    let (old_port, new_port) = (old.port().to_string(), new.port().to_string());
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let proxy = TestProxy::start(config_for(&old, mode)).await;
        let a = client(&proxy).await;
        assert_eq!(port_of(&a).await, old_port);
        a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();

        proxy.proxy.reload(config_for(&new, mode)).unwrap();

        // Newcomers go to the new backend at once.
        let b = client(&proxy).await;
        assert_eq!(port_of(&b).await, new_port, "{mode:?}");
        // A's transaction finishes where it started.
        a.batch_execute("INSERT INTO t VALUES (2); COMMIT")
            .await
            .unwrap();
        let n = direct_count(&old, "SELECT count(*) FROM t").await;
        assert_eq!(
            n, 2,
            "{mode:?}: A's transaction committed on the old backend"
        );
        match mode {
            // A session keeps its server connection until it ends...
            PoolMode::Session => {
                assert_eq!(port_of(&a).await, old_port);
                drop(a);
            }
            // ... a transaction-mode client moves with its next transaction.
            PoolMode::Transaction => {
                assert_eq!(port_of(&a).await, new_port);
                a.batch_execute("INSERT INTO t VALUES (3)").await.unwrap();
                drop(a);
            }
        }
        // Either way the old connections close as their leases end: nothing of the
        // proxy's is left on the old backend.
        eventually("the old pool drained", Duration::from_secs(5), || async {
            app_backends(&old_mon).await.is_empty()
        })
        .await;
        assert_eq!(value(&b, "SELECT 5").await, "5");
        drop(b);
        proxy.shutdown().await;
        for pg in [&old, &new] {
            run_direct(pg, "TRUNCATE t").await;
        }
    }
}
