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

/// Stops PostgreSQL with `-m immediate`, leaves it down for a second and starts it again.
/// Returns when the stop began and when PostgreSQL accepted connections again.
async fn kill_and_restart(pg: &Arc<PgCluster>) -> (Instant, Instant) {
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
    (stopping, Instant::now())
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

    let (stopping, up) = kill_and_restart(&pg).await;
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

/// One short pgbench run of the load loop below.
#[derive(Debug)]
struct BenchRun {
    started: Instant,
    ended: Instant,
    /// Exit status 0 and no failed transaction.
    ok: bool,
    processed: u64,
    stderr: String,
}

/// Runs one-second pgbench runs back to back until `stop`: pgbench 15 ends a client at its
/// first error, so "pgbench keeps going" is a loop of runs, as a load generator or a
/// service's retry loop would do, against one proxy that is never restarted.
async fn pgbench_loop(
    proxy: &TestProxy,
    script: &std::path::Path,
    stop: &AtomicBool,
) -> Vec<BenchRun> {
    let mut runs = Vec::new();
    let script = script.to_str().unwrap();
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let args = ["-n", "-f", script, "-c", "4", "-j", "2", "-T", "1"];
        let out = tokio::time::timeout(ATTEMPT_LIMIT, programs::pgbench(proxy, DB, &args))
            .await
            .unwrap_or_else(|_| panic!("pgbench hung for {ATTEMPT_LIMIT:?}: {runs:#?}"));
        let stdout = programs::text(&out.stdout);
        let report = stdout
            .contains("number of failed transactions: ")
            .then(|| programs::parse_pgbench(&stdout));
        let processed = report.as_ref().map_or(0, |r| r.processed);
        runs.push(BenchRun {
            started,
            ended: Instant::now(),
            ok: out.status.success() && report.is_some_and(|r| r.failed == 0 && r.processed > 0),
            processed,
            stderr: programs::text(&out.stderr),
        });
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_keeps_going_after_postgres_is_killed_and_restarted() {
    let pg = Arc::new(cluster_with_db(DB).await);
    let proxy = TestProxy::start(txn_config(&pg, 4)).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("txn.sql");
    std::fs::write(&script, "BEGIN;\nSELECT 1;\nSELECT now();\nEND;\n").unwrap();
    let stop = AtomicBool::new(false);

    let fault = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (stopping, up) = kill_and_restart(&pg).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        stop.store(true, Ordering::Relaxed);
        (stopping, up)
    };
    let (runs, (stopping, up)) = tokio::join!(pgbench_loop(&proxy, &script, &stop), fault);

    let before: Vec<_> = runs.iter().filter(|r| r.ended < stopping).collect();
    assert!(
        !before.is_empty(),
        "no run finished before the kill: {runs:#?}"
    );
    assert!(
        before.iter().all(|r| r.ok),
        "errors before the kill: {before:#?}"
    );
    let failed: Vec<_> = runs.iter().filter(|r| !r.ok).collect();
    assert!(
        !failed.is_empty(),
        "no run noticed PostgreSQL going away: {runs:#?}"
    );
    for r in &failed {
        // The server's FATAL (57P01 on immediate shutdown, 57P03 while starting), the proxy's
        // 08006 from its breaker or a failed connect, or the connection closed after a FATAL.
        let clear = [
            "ERROR",
            "FATAL",
            "server closed the connection",
            "connection to server",
        ]
        .iter()
        .any(|m| r.stderr.contains(m));
        assert!(clear, "a failed run without a clear error: {r:#?}");
    }
    let recovered = runs
        .iter()
        .find(|r| r.started > up && r.ok)
        .unwrap_or_else(|| panic!("pgbench never ran cleanly again: {runs:#?}"));
    // A failed run can take its whole second before the next one starts, so this allows a
    // run's length on top of the proxy's own recovery (under a second, shown above).
    let recovery = recovered.started - up;
    assert!(
        recovery < Duration::from_secs(3),
        "recovery took {recovery:?}: {runs:#?}"
    );
    let last = runs.last().unwrap();
    assert!(
        last.ok && last.processed > 0,
        "the last run failed: {last:#?}"
    );
    eprintln!(
        "{} pgbench runs, {} failed; a clean run started {recovery:?} after PostgreSQL was back",
        runs.len(),
        failed.len()
    );
    for r in failed.iter().step_by(failed.len().div_ceil(3)) {
        eprintln!("  a failed run said: {}", r.stderr.trim());
    }
    proxy.shutdown().await;
}
