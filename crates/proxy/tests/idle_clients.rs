//! Many idle clients in transaction mode. An idle client holds no relay buffer (they are lent
//! only while bytes are pending), so every one of these checks that a client gets buffers
//! back after idling: small queries, a 1 MB row and a 1 MB query, several times over. And
//! what an idle client costs the proxy, in bytes, is bounded.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use common::*;
use dbwarden_proxy::stats::ClientState;
use dbwarden_testkit::PgCluster;
use futures_util::stream::{self, StreamExt};

/// Bytes this process has allocated and not freed. The proxy runs in this process and the
/// idle clients (pgbench) in another, so what this grows by while they sit idle is the
/// proxy's own cost per client: the task, its socket's registration, the client's entry in
/// the registry, its settings. Allocator overhead and fragmentation are not in it (the
/// bench's RSS figures show those).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to `System` unchanged; only the sizes are counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

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

/// Idle clients for the memory bound: enough that the registry's and the runtime's own
/// growth is spread thin, few enough for a quick login storm.
const IDLE_CLIENTS: usize = 500;
/// What one idle logged-in client may cost the proxy in live heap bytes: its task, its
/// state between transactions, its registry entry, its socket's registration. Measured at
/// 1,787 when this was written (2,008 before the task's future fell below a 512-byte cell,
/// 7.7 KB of RSS per client before that; issue 7 asks for 1.5 KB).
const IDLE_CLIENT_BYTES: isize = 1850;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_client_costs_the_proxy_at_most_1850_bytes() {
    let pg = cluster_with_db("idle_bytes").await;
    // One server connection: made by the warm-up below, before counting starts.
    let proxy = TestProxy::start(txn_config(&pg, 1)).await;
    let warm = connect(&proxy.conn_str(USER, PASSWORD, "idle_bytes"))
        .await
        .unwrap();
    assert_eq!(value(&warm, "SELECT 1").await, "1");
    let before = LIVE.load(Ordering::Relaxed);

    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("idle.sql");
    std::fs::write(&script, "\\sleep 600 s\n").unwrap();
    let mut pgbench = tokio::process::Command::new(PgCluster::bin_dir().join("pgbench"))
        .args([
            "-n",
            "-j",
            "2",
            "-T",
            "600",
            "-c",
            &IDLE_CLIENTS.to_string(),
        ])
        .arg("-f")
        .arg(&script)
        .args(["-h", &proxy.addr.ip().to_string()])
        .args(["-p", &proxy.addr.port().to_string()])
        .args(["-U", USER, "idle_bytes"])
        .env("PGPASSWORD", PASSWORD)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("pgbench from the PostgreSQL binaries");

    // Every client logged in and waiting for its first query (the warm-up one too).
    let idle = || {
        proxy
            .proxy
            .stats()
            .clients
            .all()
            .iter()
            .filter(|c| c.state() == ClientState::Idle && c.login().is_some())
            .count()
    };
    let mut waited = 0;
    while idle() < IDLE_CLIENTS + 1 {
        assert!(
            pgbench.try_wait().unwrap().is_none(),
            "pgbench ended before its clients were in"
        );
        assert!(
            waited < 2400,
            "{} of {IDLE_CLIENTS} clients logged in",
            idle()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    // A client is marked idle just before its last login step: let those finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let per_client = (LIVE.load(Ordering::Relaxed) - before) / IDLE_CLIENTS as isize;
    eprintln!("live heap per idle client: {per_client} bytes");
    pgbench.kill().await.unwrap();
    assert!(
        per_client <= IDLE_CLIENT_BYTES,
        "an idle client costs {per_client} bytes (bound {IDLE_CLIENT_BYTES})"
    );
    assert_eq!(value(&warm, "SELECT 2").await, "2");
}
