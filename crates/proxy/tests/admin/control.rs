//! PAUSE/RESUME, RELOAD, KILL, KILL_CLIENT and SHUTDOWN from the console.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::console::{admin, code, find, num, show};
use super::{cluster_with_db, connect, TestProxy, PASSWORD, USER};

async fn command(console: &tokio_postgres::Client, sql: &str) {
    console
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_new_transactions_until_resume() {
    let pg = cluster_with_db("ps").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "ps"))
        .await
        .unwrap();
    let console = admin(&proxy).await;

    command(&console, "PAUSE").await;
    assert!(proxy.proxy.is_paused());
    let state = show(&console, "SHOW STATE").await;
    assert_eq!(
        find(&state, "key", "paused").unwrap()["value"].as_deref(),
        Some("yes")
    );
    let err = console.simple_query("PAUSE").await.unwrap_err();
    assert_eq!(code(&err), "55000", "already paused");
    let held = tokio::spawn(async move {
        let rows = c.simple_query("SELECT 7").await.unwrap();
        (rows.len(), c)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!held.is_finished(), "a new transaction ran while paused");

    command(&console, "RESUME").await;
    let (n, _c) = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("RESUME releases the held transaction")
        .unwrap();
    assert!(n > 0);
    let err = console.simple_query("RESUME").await.unwrap_err();
    assert_eq!(code(&err), "55000", "not paused");
    drop((console, _c));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_of_one_database_holds_only_that_database() {
    let pg = cluster_with_db("p1").await;
    pg.psql("postgres", &format!("CREATE DATABASE p2 OWNER {USER}"))
        .unwrap();
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let one = connect(&proxy.conn_str(USER, PASSWORD, "p1"))
        .await
        .unwrap();
    let two = connect(&proxy.conn_str(USER, PASSWORD, "p2"))
        .await
        .unwrap();
    one.simple_query("SELECT 1").await.unwrap();
    two.simple_query("SELECT 1").await.unwrap();
    let console = admin(&proxy).await;

    command(&console, "PAUSE p1").await;
    let dbs = show(&console, "SHOW DATABASES").await;
    assert_eq!(num(find(&dbs, "name", "p1").unwrap(), "paused"), 1);
    assert_eq!(num(find(&dbs, "name", "p2").unwrap(), "paused"), 0);
    let held = tokio::spawn(async move {
        one.simple_query("SELECT 2").await.unwrap();
        one
    });
    two.simple_query("SELECT 3")
        .await
        .expect("p2 is not paused");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !held.is_finished(),
        "a transaction of p1 ran while p1 was paused"
    );
    let err = console.simple_query("PAUSE p1").await.unwrap_err();
    assert_eq!(code(&err), "55000", "already paused");

    command(&console, "RESUME p1").await;
    let one = tokio::time::timeout(Duration::from_secs(5), held)
        .await
        .expect("RESUME p1 releases it")
        .unwrap();
    let err = console.simple_query("RESUME p1").await.unwrap_err();
    assert_eq!(code(&err), "55000", "not paused");
    let err = console.simple_query("PAUSE nosuchdb").await.unwrap_err();
    assert_eq!(code(&err), "3D000");
    drop((console, one, two));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_changed_pool_size() {
    let pg = cluster_with_db("rl").await;
    let config = super::console::console_config(&pg, 2);
    let proxy = TestProxy::start(config.clone()).await;
    let console = admin(&proxy).await;
    // Without a config source there is nothing to reload from.
    let err = console.simple_query("RELOAD").await.unwrap_err();
    assert_eq!(code(&err), "F0000");

    // The "file" RELOAD reads: changed behind the proxy's back, as an operator would.
    let file = Arc::new(Mutex::new(config));
    let source = file.clone();
    proxy
        .proxy
        .set_reloader(move |p| p.reload(source.lock().clone()).map_err(|e| e.to_string()));
    let c = connect(&proxy.conn_str(USER, PASSWORD, "rl"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let dbs = show(&console, "SHOW DATABASES").await;
    assert_eq!(num(find(&dbs, "name", "rl").unwrap(), "pool_size"), 2);

    file.lock().pool.size = 5;
    command(&console, "RELOAD").await;
    let dbs = show(&console, "SHOW DATABASES").await;
    assert_eq!(num(find(&dbs, "name", "rl").unwrap(), "pool_size"), 5);
    let (pools, _) = proxy.proxy.snapshot();
    let pool = pools.iter().find(|p| p.key.database == "rl").unwrap();
    assert_eq!(pool.size, 5, "the live pool grew");
    let config = show(&console, "SHOW CONFIG").await;
    assert_eq!(
        find(&config, "key", "default_pool_size").unwrap()["value"].as_deref(),
        Some("5")
    );
    drop((console, c));
    proxy.shutdown().await;
}

/// Whether `c` has been closed by the proxy (its next query fails) within a few seconds.
async fn closed(c: &tokio_postgres::Client) -> bool {
    for _ in 0..50 {
        if c.simple_query("SELECT 1").await.is_err() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_closes_a_databases_clients_and_kill_client_exactly_one() {
    let pg = cluster_with_db("k1").await;
    pg.psql("postgres", &format!("CREATE DATABASE k2 OWNER {USER}"))
        .unwrap();
    let proxy = TestProxy::start(super::console::console_config(&pg, 3)).await;
    let named = |db: &str, app: &str| {
        format!(
            "{} application_name={app}",
            proxy.conn_str(USER, PASSWORD, db)
        )
    };
    let a = connect(&named("k1", "a")).await.unwrap();
    let b = connect(&named("k1", "b")).await.unwrap();
    let other = connect(&named("k2", "other")).await.unwrap();
    a.simple_query("BEGIN").await.unwrap(); // one holding a server connection
    b.simple_query("SELECT 1").await.unwrap();
    other.simple_query("SELECT 1").await.unwrap();
    let console = admin(&proxy).await;

    // KILL_CLIENT: exactly that client.
    let clients = show(&console, "SHOW CLIENTS").await;
    let id = find(&clients, "application_name", "b").unwrap()["id"]
        .clone()
        .unwrap();
    command(&console, &format!("KILL_CLIENT {id}")).await;
    assert!(closed(&b).await, "the killed client is closed");
    a.simple_query("SELECT 1")
        .await
        .expect("the other client of k1 goes on");
    let err = console
        .simple_query("KILL_CLIENT 999999")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42704");

    // KILL k1: its clients and its server connections; k2 goes on.
    command(&console, "KILL k1").await;
    assert!(closed(&a).await, "k1's client is closed");
    other
        .simple_query("SELECT 1")
        .await
        .expect("k2 is untouched");
    let mut servers_left = usize::MAX;
    for _ in 0..50 {
        let servers = show(&console, "SHOW SERVERS").await;
        servers_left = servers
            .iter()
            .filter(|s| s["database"].as_deref() == Some("k1"))
            .count();
        if servers_left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(servers_left, 0, "k1's server connections are closed");
    let err = console.simple_query("KILL nosuchdb").await.unwrap_err();
    assert_eq!(code(&err), "3D000");
    // New clients of k1 may connect again.
    let again = connect(&named("k1", "again")).await.unwrap();
    again.simple_query("SELECT 1").await.unwrap();
    drop((other, again, console));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_proxy() {
    let pg = cluster_with_db("sd").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "sd"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let console = admin(&proxy).await;
    // As PgBouncer: no answer, the connection closes with the proxy.
    assert!(console.simple_query("SHUTDOWN").await.is_err());
    assert!(proxy.proxy.is_shutting_down());
    assert!(closed(&c).await, "sessions are closed at once");
    assert!(
        connect(&proxy.conn_str(USER, PASSWORD, "sd"))
            .await
            .is_err(),
        "no longer accepting"
    );
}
