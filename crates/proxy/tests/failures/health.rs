//! Health of idle server connections: dead ones are never handed out, hung ones fail their
//! check, the background check replaces broken ones without a client, lifetimes end.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use dbwarden_config::Config;

use super::*;

/// Transaction mode, so that clients hold server connections only inside transactions.
fn config(pg: &PgCluster, size: u32) -> Config {
    txn_config(pg, size)
}

/// Leaves `n` idle server connections in the pool (each client holds one inside a
/// transaction at the same time, then all commit); returns the clients and the pids.
async fn idle_connections(proxy: &TestProxy, n: usize) -> (Vec<Client>, HashSet<i32>) {
    let mut clients = Vec::new();
    let mut pids = HashSet::new();
    for _ in 0..n {
        let c = client(proxy).await;
        c.batch_execute("BEGIN").await.unwrap();
        pids.insert(backend_pid(&c).await);
        clients.push(c);
    }
    assert_eq!(pids.len(), n, "each transaction has its own connection");
    for c in &clients {
        c.batch_execute("COMMIT").await.unwrap();
    }
    (clients, pids)
}

/// The pids of `n` transactions open at once, one per client.
async fn concurrent_pids(clients: &[Client]) -> HashSet<i32> {
    let mut pids = HashSet::new();
    for c in clients {
        c.batch_execute("BEGIN").await.unwrap();
        pids.insert(backend_pid(c).await);
    }
    for c in clients {
        c.batch_execute("COMMIT").await.unwrap();
    }
    pids
}

async fn terminate_all(monitor: &Client, pids: &HashSet<i32>) {
    for pid in pids {
        monitor
            .execute("SELECT pg_terminate_backend($1)", &[pid])
            .await
            .unwrap();
    }
    eventually(
        "the terminated backends are gone",
        Duration::from_secs(5),
        || async {
            let live: HashSet<i32> = app_backends(monitor)
                .await
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            pids.is_disjoint(&live)
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_idle_connections_are_never_handed_out() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    let proxy = TestProxy::start(config(&pg, 3)).await;
    let (clients, old) = idle_connections(&proxy, 3).await;

    terminate_all(&mon, &old).await;

    // Every client's next transaction works, each on a new connection.
    let new = concurrent_pids(&clients).await;
    assert_eq!(new.len(), 3);
    assert!(new.is_disjoint(&old), "old {old:?}, new {new:?}");
    drop(clients);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_check_replaces_broken_idle_connections() {
    let pg = cluster_with_db(DB).await;
    let mon = monitor(&pg).await;
    let mut c = config(&pg, 3);
    c.pool.server_check_delay = Duration::from_secs(1);
    let proxy = TestProxy::start(c).await;
    let (clients, old) = idle_connections(&proxy, 3).await;

    terminate_all(&mon, &old).await;

    // No client does anything: the periodic check finds the three broken and opens three
    // new ones in their place.
    let deadline = Instant::now() + Duration::from_secs(5);
    let replaced: HashSet<i32> = loop {
        let live = app_backends(&mon).await;
        if live.len() == 3 && live.iter().all(|(p, s)| s == "idle" && !old.contains(p)) {
            break live.into_iter().map(|(p, _)| p).collect();
        }
        assert!(
            Instant::now() < deadline,
            "not replaced within 5 s: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // And the clients use the replacements: no connect happens for them.
    assert_eq!(concurrent_pids(&clients).await, replaced);
    drop(clients);
    proxy.shutdown().await;
}

/// Sends `signal` to a backend process (the test runs as root or as the cluster's owner).
fn signal_backend(pid: i32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// Resumes a stopped backend however the test ends, so it can see its socket closed.
struct Resume(i32);

impl Drop for Resume {
    fn drop(&mut self) {
        signal_backend(self.0, "CONT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_backend_fails_its_check_and_the_client_gets_another_connection() {
    let pg = cluster_with_db(DB).await;
    let mut c = config(&pg, 2);
    c.pool.server_check_delay = Duration::ZERO;
    c.pool.server_check_timeout = Duration::from_millis(300);
    let proxy = TestProxy::start(c).await;
    let a = client(&proxy).await;
    let pid = backend_pid(&a).await;
    // Checked at every checkout and healthy: the same connection is reused.
    assert_eq!(backend_pid(&a).await, pid);

    // The backend hangs (SIGSTOP): its socket is open and quiet, which no non-blocking read
    // can tell from a healthy idle connection. Only the check's round trip can.
    signal_backend(pid, "STOP");
    let _resume = Resume(pid);
    let started = Instant::now();
    let next = tokio::time::timeout(Duration::from_secs(10), backend_pid(&a))
        .await
        .expect("the client must not get the hung connection");
    let took = started.elapsed();
    assert_ne!(next, pid);
    assert!(took < Duration::from_secs(3), "took {took:?}");
    drop(a);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_query_runs_only_on_connections_unused_for_the_delay() {
    let pg = cluster_with_db(DB).await;
    let mut c = config(&pg, 2);
    // A check that always fails shows exactly when a check runs: the connection is closed.
    c.pool.server_check_query = "SELECT 1/0".into();
    let proxy = TestProxy::start(c.clone()).await;
    let a = client(&proxy).await;

    // server_check_delay 30s: a connection used a moment ago is handed out unchecked.
    let pid = backend_pid(&a).await;
    assert_eq!(backend_pid(&a).await, pid);
    assert_eq!(backend_pid(&a).await, pid);

    // A reload applies the rules to the next checkout: now every checkout checks, every
    // check fails, and each transaction runs on a new connection.
    c.pool.server_check_delay = Duration::ZERO;
    proxy.proxy.reload(c.clone()).unwrap();
    let mut seen = HashSet::from([pid]);
    for _ in 0..3 {
        assert!(
            seen.insert(backend_pid(&a).await),
            "a connection that failed its check was reused"
        );
    }

    // A check that passes keeps the connection.
    c.pool.server_check_query = "SELECT 1".into();
    proxy.proxy.reload(c).unwrap();
    let pid = backend_pid(&a).await;
    assert_eq!(backend_pid(&a).await, pid);
    drop(a);
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_server_lifetime_are_replaced_without_disturbing_clients() {
    let pg = cluster_with_db(DB).await;
    let mut c = config(&pg, 2);
    c.pool.server_lifetime = Duration::from_millis(500);
    let proxy = TestProxy::start(c).await;
    let a = client(&proxy).await;
    let first = backend_pid(&a).await;
    // At most 550 ms with the jitter, and the background task looks every second.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let second = backend_pid(&a).await;
    assert_ne!(first, second, "the connection outlived server_lifetime");
    // A transaction is never cut short by the lifetime: it ends on its own connection.
    a.batch_execute("BEGIN").await.unwrap();
    let pid = backend_pid(&a).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(backend_pid(&a).await, pid);
    a.batch_execute("COMMIT").await.unwrap();
    drop(a);
    proxy.shutdown().await;
}
