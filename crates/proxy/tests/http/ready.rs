//! /readyz says why it is not ready: a backend that is down, a proxy that is shutting down.

use std::time::{Duration, Instant};

use dbwarden_testkit::StopMode;

use super::client::Admin;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_with_the_reason_while_the_backend_is_down_and_recovers() {
    let pg = std::sync::Arc::new(cluster_with_db("rdy").await);
    let mut config = txn_config(&pg, 2);
    config.server.breaker_failures = 2;
    config.server.breaker_probe_interval = Duration::from_millis(50);
    config.server.breaker_probe_max_interval = Duration::from_millis(300);
    let admin = Admin::start(config).await;
    let conn = admin.proxy().conn_str(USER, PASSWORD, "rdy");
    connect(&conn)
        .await
        .unwrap()
        .simple_query("SELECT 1")
        .await
        .unwrap();
    assert_eq!(admin.get("/readyz").await.status, 200);

    let stopper = pg.clone();
    tokio::task::spawn_blocking(move || stopper.stop(StopMode::Immediate))
        .await
        .unwrap()
        .unwrap();
    // Clients that try to connect are what tells the proxy (readiness is passive).
    for _ in 0..4 {
        if let Ok(c) = connect(&conn).await {
            let _ = c.simple_query("SELECT 1").await;
        }
    }
    let down = admin.get("/readyz").await;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(down.header("content-type"), Some("application/json"));
    let body: serde_json::Value = serde_json::from_str(&down.body).unwrap();
    assert_eq!(body["ready"], false);
    let reason = body["reasons"][0].as_str().expect("a reason").to_owned();
    let backend = format!("{}:{}", pg.host(), pg.port());
    assert!(
        reason.contains(&backend) && reason.contains("unreachable since"),
        "{reason}"
    );
    // The gauge agrees.
    let metrics = admin.get("/metrics").await.body;
    let line = format!("dbwarden_backend_circuit_open{{backend=\"{backend}\"}} 1");
    assert!(metrics.contains(&line), "{line} not in\n{metrics}");

    let starter = pg.clone();
    tokio::task::spawn_blocking(move || starter.start_again())
        .await
        .unwrap()
        .unwrap();
    // The breaker's probe notices on its own, no client needed.
    let back = Instant::now();
    loop {
        let r = admin.get("/readyz").await;
        if r.status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "still not ready: {}",
            r.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_once_the_proxy_stops_accepting() {
    let pg = cluster_with_db("bye").await;
    let mut admin = Admin::start(txn_config(&pg, 2)).await;
    assert_eq!(admin.get("/readyz").await.status, 200);
    // The admin listener outlives the client listener (as in `dbwarden proxy`, where it
    // answers while sessions drain).
    admin.stop_proxy().await;
    assert!(admin.handle.is_shutting_down());
    let metrics = admin.get("/metrics").await.body;
    assert!(metrics.contains("dbwarden_shutting_down 1"), "{metrics}");
    let r = admin.get("/readyz").await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.body.contains("shutting down"), "{}", r.body);
    assert_eq!(admin.get("/healthz").await.status, 200);
}
