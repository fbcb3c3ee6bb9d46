//! The circuit breaker against a real PostgreSQL that is stopped and started again.

use std::time::{Duration, Instant};

use dbwarden_testkit::StopMode;

use super::*;

/// Connects and runs `SELECT 1`; the error's message, or `None` on success.
async fn try_query(proxy: &TestProxy) -> Result<(), (Option<SqlState>, String)> {
    let run = async {
        let client = connect(&proxy.conn_str(USER, PASSWORD, DB)).await?;
        client.simple_query("SELECT 1").await
    };
    match run.await {
        Ok(_) => Ok(()),
        Err(e) => Err(match e.as_db_error() {
            Some(db) => (Some(db.code().clone()), db.message().to_owned()),
            None => (None, e.to_string()),
        }),
    }
}

#[tokio::test]
async fn stopped_backend_fails_fast_with_reason_and_recovers_within_a_second() {
    let pg = cluster_with_db(DB).await;
    let mut config = upstream_config(&pg, 4);
    config.server.breaker_failures = 2;
    config.server.breaker_probe_interval = Duration::from_millis(50);
    config.server.breaker_probe_max_interval = Duration::from_millis(500);
    let proxy = TestProxy::start(config).await;
    try_query(&proxy).await.expect("healthy backend");

    let pg = std::sync::Arc::new(pg);
    let stopper = pg.clone();
    tokio::task::spawn_blocking(move || stopper.stop(StopMode::Immediate))
        .await
        .unwrap()
        .unwrap();

    // The first clients pay for a real connect attempt; then the breaker answers at once.
    let mut breaker_message = None;
    for _ in 0..5 {
        let start = Instant::now();
        let (code, message) = try_query(&proxy).await.expect_err("backend is down");
        assert_eq!(code, Some(SqlState::CONNECTION_FAILURE), "{message}");
        if message.contains("is unavailable since") {
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "{:?}",
                start.elapsed()
            );
            breaker_message = Some(message);
            break;
        }
    }
    let message = breaker_message.expect("the breaker never opened");
    assert!(
        message.contains("consecutive connect failures"),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");

    let starter = pg.clone();
    tokio::task::spawn_blocking(move || starter.start_again())
        .await
        .unwrap()
        .unwrap();
    // start_again returns once PostgreSQL accepts connections; the probe (at most 500ms
    // apart) must notice within about a second.
    let back = Instant::now();
    loop {
        match try_query(&proxy).await {
            Ok(()) => break,
            Err((_, message)) => {
                assert!(
                    back.elapsed() < Duration::from_secs(3),
                    "still failing: {message}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    assert!(
        back.elapsed() < Duration::from_millis(1500),
        "{:?}",
        back.elapsed()
    );
}
