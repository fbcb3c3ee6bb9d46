//! Someone dies in the middle of a transaction. A client process killed with SIGKILL leaves
//! nothing `idle in transaction` on the server; a backend killed under a client gives that
//! client an error, never a silent retry elsewhere, and everyone else carries on.

use std::process::Stdio;
use std::time::Duration;

use dbwarden_config::PoolMode;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::*;

fn config(pg: &PgCluster, mode: PoolMode) -> dbwarden_config::Config {
    let mut c = upstream_config(pg, 2);
    c.pool.mode = mode;
    c
}

async fn in_transaction(monitor: &Client) -> usize {
    app_backends(monitor)
        .await
        .iter()
        .filter(|(_, state)| state.starts_with("idle in transaction"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psql_killed_mid_transaction_leaves_nothing_idle_in_transaction() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    run_direct(
        &pg,
        "CREATE TABLE counter (n int); INSERT INTO counter VALUES (0)",
    )
    .await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let proxy = TestProxy::start(config(&pg, mode)).await;
        let conninfo = format!(
            "host={} port={} user={USER} dbname={DB} sslmode=disable",
            proxy.addr.ip(),
            proxy.addr.port()
        );
        let mut psql = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &conninfo])
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("run psql");
        // psql runs each statement as soon as it reads it; stdin stays open.
        let mut stdin = psql.stdin.take().unwrap();
        stdin
            .write_all(b"BEGIN;\nUPDATE counter SET n = n + 1;\n")
            .await
            .unwrap();
        stdin.flush().await.unwrap();
        eventually(
            "psql's transaction is open on the server",
            Duration::from_secs(10),
            || async { in_transaction(&mon).await == 1 },
        )
        .await;

        psql.kill().await.unwrap(); // SIGKILL: no Terminate, no ROLLBACK
        eventually(
            "no session left idle in transaction",
            Duration::from_secs(5),
            || async { in_transaction(&mon).await == 0 },
        )
        .await;
        let n = direct_count(&pg, "SELECT n::bigint FROM counter").await;
        assert_eq!(n, 0, "{mode:?}: the killed client's update was rolled back");
        // The pool is whole: a new client gets a connection and works.
        let b = client(&proxy).await;
        assert_eq!(value(&b, "SELECT 1").await, "1", "{mode:?}");
        drop((b, stdin));
        proxy.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_transaction_fails_its_client_and_is_not_retried() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    run_direct(&pg, "CREATE TABLE t (a int)").await;
    for mode in [PoolMode::Session, PoolMode::Transaction] {
        let proxy = TestProxy::start(config(&pg, mode)).await;
        let bystander = client(&proxy).await;
        assert_eq!(value(&bystander, "SELECT 1").await, "1");

        let a = client(&proxy).await;
        a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let pid = backend_pid(&a).await;
        mon.execute("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap();

        // The rest of the transaction must fail. Run anywhere else, the INSERT and COMMIT
        // would succeed and store a row: that would be the silent retry.
        let err = tokio::time::timeout(
            Duration::from_secs(5),
            a.batch_execute("INSERT INTO t VALUES (2); COMMIT"),
        )
        .await
        .expect("the client gets its error promptly")
        .expect_err("the transaction's backend is gone");
        if let Some((code, message)) = db_error(&err) {
            // The server's own FATAL, passed on.
            assert_eq!(code, "57P01", "{mode:?}: {message}");
        }
        assert_eq!(
            direct_count(&pg, "SELECT count(*) FROM t").await,
            0,
            "{mode:?}"
        );

        // Others carry on, and newcomers get a working connection.
        assert_eq!(value(&bystander, "SELECT 2").await, "2", "{mode:?}");
        let b = client(&proxy).await;
        assert_eq!(value(&b, "SELECT 3").await, "3", "{mode:?}");
        assert_eq!(in_transaction(&mon).await, 0, "{mode:?}");
        drop((a, b, bystander));
        proxy.shutdown().await;
    }
}
