//! Session pooling against a real PostgreSQL: the pool bound, FIFO waiting, the reset that
//! keeps one client's session state from the next, connections that must be closed rather
//! than reused, and the limits that turn clients away with the right SQLSTATE.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use dbwarden_config::Config;
use dbwarden_testkit::{PgCluster, StopMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

const DB: &str = "pooled";

fn config(pg: &PgCluster, size: u32) -> Config {
    upstream_config(pg, size)
}

async fn client(proxy: &TestProxy) -> Client {
    connect(&proxy.conn_str(USER, PASSWORD, DB)).await.unwrap()
}

async fn server_connections(monitor: &Client) -> i64 {
    monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbwarden'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn backend_pid(c: &Client) -> i32 {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

async fn pid_gone(monitor: &Client, pid: i32) -> bool {
    let n: i64 = monitor
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    n == 0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_clients_share_a_pool_of_two() {
    let pg = cluster_with_db(DB).await;
    let proxy = Arc::new(TestProxy::start(config(&pg, 2)).await);
    let mon = monitor(&pg).await;

    let mut tasks = Vec::new();
    for i in 0..6i32 {
        let proxy = proxy.clone();
        tasks.push(tokio::spawn(async move {
            let c = client(&proxy).await;
            let row = c
                .query_one(
                    "SELECT pg_backend_pid(), $1::int, pg_sleep(0.2)::text",
                    &[&i],
                )
                .await
                .unwrap();
            assert_eq!(row.get::<_, i32>(1), i);
            row.get::<_, i32>(0)
        }));
    }
    let mut most = 0;
    while tasks.iter().any(|t| !t.is_finished()) {
        most = most.max(server_connections(&mon).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut pids = Vec::new();
    for t in tasks {
        pids.push(t.await.expect("every client completes"));
    }
    pids.sort_unstable();
    pids.dedup();
    assert!(most <= 2, "saw {most} server connections with a pool of 2");
    assert!(pids.len() <= 2, "six clients used server pids {pids:?}");
    assert!(server_connections(&mon).await <= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_clients_are_served_in_arrival_order() {
    let pg = cluster_with_db(DB).await;
    let proxy = Arc::new(TestProxy::start(config(&pg, 1)).await);
    let holder = client(&proxy).await;
    backend_pid(&holder).await;

    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let (proxy, order) = (proxy.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let c = client(&proxy).await;
            order.lock().unwrap().push(i);
            backend_pid(&c).await;
        }));
        // Far more than a login takes, so the arrival order is the spawn order.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert!(order.lock().unwrap().is_empty(), "nobody got in yet");
    drop(holder);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("every waiter is served")
            .unwrap();
    }
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_does_not_reach_the_next_client() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(config(&pg, 1)).await;

    let a = client(&proxy).await;
    let default_tz = value(&a, "SHOW TimeZone").await;
    let default_path = value(&a, "SHOW search_path").await;
    let pid = backend_pid(&a).await;
    a.batch_execute(
        "SET TimeZone = 'Pacific/Chatham';
         CREATE SCHEMA leak; SET search_path = leak, public;
         CREATE TEMP TABLE leaky_temp (a int);
         PREPARE leaky_plan AS SELECT 1;
         LISTEN leaky_channel;
         SELECT pg_advisory_lock(4242);
         SET statement_timeout = '1s';",
    )
    .await
    .unwrap();
    // A protocol-level prepared statement too: tokio-postgres names them s0, s1, ... on every
    // connection, so a leftover would collide with the next client's.
    let kept = a.prepare("SELECT 2").await.unwrap();
    assert_eq!(value(&a, "SHOW TimeZone").await, "Pacific/Chatham");
    // Dropped after the client, so it is never Closed: only the reset can remove it.
    drop(a);
    drop(kept);

    let b = client(&proxy).await;
    assert_eq!(backend_pid(&b).await, pid, "same server connection");
    assert_eq!(value(&b, "SHOW TimeZone").await, default_tz);
    assert_eq!(value(&b, "SHOW search_path").await, default_path);
    assert_eq!(value(&b, "SHOW statement_timeout").await, "0");
    let leftovers = [
        "SELECT count(*) FROM pg_prepared_statements",
        "SELECT count(*) FROM pg_class WHERE relname = 'leaky_temp'",
        "SELECT count(*) FROM pg_listening_channels()",
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
    ];
    for sql in leftovers {
        assert_eq!(value(&b, sql).await, "0", "{sql}");
    }
    let stmt = b.prepare("SELECT 3").await.expect("no name collision");
    let n: i32 = b.query_one(&stmt, &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_mid_transaction_commits_nothing_and_its_connection_is_closed() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(config(&pg, 1)).await;
    let mon = monitor(&pg).await;
    let setup = client(&proxy).await;
    setup.batch_execute("CREATE TABLE t (a int)").await.unwrap();
    drop(setup);

    // Once with a polite Terminate (tokio-postgres on drop), once with a dead socket.
    for polite in [true, false] {
        let (c, task) = killable(&proxy.conn_str(USER, PASSWORD, DB)).await;
        let pid = backend_pid(&c).await;
        c.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        if polite {
            drop(c);
        } else {
            task.abort();
        }
        eventually(
            "the server connection is closed",
            Duration::from_secs(5),
            || pid_gone(&mon, pid),
        )
        .await;

        let next = client(&proxy).await;
        assert_ne!(backend_pid(&next).await, pid, "not reused");
        assert_eq!(value(&next, "SELECT count(*) FROM t").await, "0");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_gone_during_a_long_query_leaves_nothing_running() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(config(&pg, 2)).await;
    let mon = monitor(&pg).await;

    let (c, task) = killable(&proxy.conn_str(USER, PASSWORD, DB)).await;
    let pid = backend_pid(&c).await;
    let sleeper = tokio::spawn(async move {
        let _ = c.simple_query("SELECT pg_sleep(30)").await;
    });
    let running = || async {
        let n: i64 = mon
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        n
    };
    eventually("the query is running", Duration::from_secs(5), || async {
        running().await == 1
    })
    .await;
    let started = Instant::now();
    task.abort();
    sleeper.abort();
    eventually("the query stopped", Duration::from_secs(5), || async {
        running().await == 0
    })
    .await;
    eventually("its connection closed", Duration::from_secs(5), || {
        pid_gone(&mon, pid)
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    // The pool slot came back.
    let a = client(&proxy).await;
    let b = client(&proxy).await;
    assert_ne!(backend_pid(&a).await, backend_pid(&b).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_reset_query_replaces_discard_all() {
    let pg = cluster_with_db(DB).await;
    let mut cfg = config(&pg, 1);
    // Visible on its own: resets settings, then leaves a mark; no DISCARD, so temp tables stay.
    cfg.pool.reset_query =
        "RESET ALL; SELECT set_config('dbwarden.mark', 'reset-ran', false)".into();
    let proxy = TestProxy::start(cfg.clone()).await;

    let a = client(&proxy).await;
    let default_tz = value(&a, "SHOW TimeZone").await;
    a.batch_execute("SET TimeZone = 'Pacific/Chatham'; CREATE TEMP TABLE kept (a int)")
        .await
        .unwrap();
    let pid = backend_pid(&a).await;
    drop(a);

    let b = client(&proxy).await;
    assert_eq!(backend_pid(&b).await, pid);
    assert_eq!(value(&b, "SHOW TimeZone").await, default_tz);
    assert_eq!(value(&b, "SHOW dbwarden.mark").await, "reset-ran");
    assert_eq!(
        value(&b, "SELECT count(*) FROM pg_class WHERE relname = 'kept'").await,
        "1",
        "only the configured reset ran"
    );
    drop(b);
    drop(proxy);

    // A reset query that fails means the connection cannot be vouched for: it is closed.
    cfg.pool.reset_query = "SELECT 1/0".into();
    let proxy = TestProxy::start(cfg).await;
    let a = client(&proxy).await;
    let pid = backend_pid(&a).await;
    drop(a);
    let b = client(&proxy).await;
    assert_ne!(backend_pid(&b).await, pid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_turn_clients_away_with_the_right_sqlstate() {
    let pg = cluster_with_db(DB).await;
    let mut cfg = config(&pg, 1);
    cfg.proxy.max_client_conn = 2;
    cfg.pool.query_wait_timeout = Duration::from_millis(500);
    let proxy = TestProxy::start(cfg).await;
    let url = proxy.conn_str(USER, PASSWORD, DB);

    // Pool of one: the second client waits query_wait_timeout, then gets 57014.
    let holder = client(&proxy).await;
    let started = Instant::now();
    let err = match connect(&url).await {
        Ok(_) => panic!("the pool is full"),
        Err(e) => e,
    };
    let waited = started.elapsed();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED));
    let db_err = err.as_db_error().expect("a server error");
    assert!(
        db_err.message().contains("query_wait_timeout"),
        "{}",
        db_err.message()
    );
    assert!(
        waited >= Duration::from_millis(450),
        "gave up after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "gave up after {waited:?}");

    // Two clients connected (one waiting for the pool): a third is one too many.
    let url2 = url.clone();
    let waiter = tokio::spawn(async move { connect(&url2).await.map(drop) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = match connect(&url).await {
        Ok(_) => panic!("over max_client_conn"),
        Err(e) => e,
    };
    assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS));
    let _ = waiter.await;

    // Turned-away clients hold nothing: with the holder gone, a newcomer gets in at once.
    drop(holder);
    let c = connect(&url).await.unwrap();
    backend_pid(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_idle_connections_are_replaced_after_a_server_restart() {
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(config(&pg, 2)).await;

    // Two idle connections in the pool.
    let (a, b) = (client(&proxy).await, client(&proxy).await);
    let old = [backend_pid(&a).await, backend_pid(&b).await];
    drop((a, b));
    tokio::time::sleep(Duration::from_millis(200)).await;

    tokio::task::block_in_place(|| {
        pg.stop(StopMode::Immediate).unwrap();
        pg.start_again().unwrap();
    });

    // Both pooled connections are dead; each client still gets a working one.
    let (a, b) = (client(&proxy).await, client(&proxy).await);
    let new = [backend_pid(&a).await, backend_pid(&b).await];
    assert!(
        new.iter().all(|p| !old.contains(p)),
        "old {old:?}, new {new:?}"
    );
    assert_eq!(value(&a, "SELECT current_database()").await, DB);
}
