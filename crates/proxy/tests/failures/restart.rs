//! PostgreSQL killed (`pg_ctl stop -m immediate`) and started again while clients keep
//! hammering the proxy: a burst of clear errors, no hang, no proxy restart, and service
//! again within about a second of PostgreSQL accepting connections.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbwarden_testkit::StopMode;
use parking_lot::Mutex;

use super::*;

const WORKERS: usize = 8;
/// No single attempt may take longer than this: a hang, not an error.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(10);

/// One attempt: when it ended, and its error (SQLSTATE, or the client's text when the
/// connection just closed).
type Outcome = (Instant, Result<(), String>);

/// Connects once and runs `SELECT 1` in a loop; after an error, connects again.
async fn worker(conn_str: String, stop: Arc<AtomicBool>, log: Arc<Mutex<Vec<Outcome>>>) {
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::Relaxed) {
        let attempt = async {
            if client.is_none() {
                client = Some(connect(&conn_str).await?);
            }
            client
                .as_ref()
                .unwrap()
                .simple_query("SELECT 1")
                .await
                .map(drop)
        };
        let outcome = match tokio::time::timeout(ATTEMPT_LIMIT, attempt).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                Err(db_error(&e).map_or_else(|| format!("closed: {e}"), |(code, _)| code))
            }
            Err(_) => Err("HANG".to_owned()),
        };
        let failed = outcome.is_err();
        log.lock().push((Instant::now(), outcome));
        if failed {
            client = None;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_and_restarted_under_load_serves_again_within_a_second() {
    let pg = Arc::new(cluster_with_db(DB).await);
    let proxy = TestProxy::start(txn_config(&pg, 4)).await;
    let stop = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            tokio::spawn(worker(
                proxy.conn_str(USER, PASSWORD, DB),
                stop.clone(),
                log.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let stopping = Instant::now();
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.stop(StopMode::Immediate))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let p = pg.clone();
    tokio::task::spawn_blocking(move || p.start_again())
        .await
        .unwrap()
        .unwrap();
    let up = Instant::now(); // PostgreSQL accepts connections again
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let log = std::mem::take(&mut *log.lock());
    let before = |t: Instant| log.iter().filter(move |(at, _)| *at < t);
    assert!(
        before(stopping).all(|(_, r)| r.is_ok()),
        "errors before PostgreSQL stopped"
    );
    let errors: Vec<&String> = log.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(!errors.is_empty(), "nobody noticed PostgreSQL going away");
    for e in &errors {
        // 08xxx (connection failure, breaker open), 57Pxx (shutdown, starting up), or the
        // connection closed after the server's own FATAL: never a hang or anything else.
        let clear = e.starts_with("08") || e.starts_with("57P") || e.starts_with("closed");
        assert!(clear, "unexpected error {e}; all errors: {errors:?}");
    }
    let first_ok = log
        .iter()
        .filter(|(at, r)| *at > up && r.is_ok())
        .map(|(at, _)| *at)
        .min()
        .expect("the proxy never served again");
    let recovery = first_ok - up;
    eprintln!(
        "{} attempts, {} errors; served again {recovery:?} after PostgreSQL was back",
        log.len(),
        errors.len()
    );
    assert!(
        recovery < Duration::from_secs(2),
        "recovery took {recovery:?}"
    );
    // Once back, it stays back: the last second has no errors at all.
    let settled = Instant::now() - Duration::from_secs(1);
    let late: Vec<_> = log
        .iter()
        .filter(|(at, r)| *at > settled && r.is_err())
        .collect();
    assert!(late.is_empty(), "still failing after recovery: {late:?}");
    proxy.shutdown().await;
}
