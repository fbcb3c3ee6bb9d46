//! /healthz, /readyz, /api/pools and /api/clients of a proxy with traffic.

use serde_json::Value;

use super::client::Admin;
use super::*;

fn pool<'a>(pools: &'a Value, db: &str) -> &'a Value {
    pools["pools"]
        .as_array()
        .expect("pools is a list")
        .iter()
        .find(|p| p["database"] == db)
        .unwrap_or_else(|| panic!("no pool {db} in {pools:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_json_api_describe_the_running_proxy() {
    let pg = cluster_with_db("api").await;
    let admin = Admin::start(txn_config(&pg, 3)).await;

    let health = admin.get("/healthz").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let ready = admin.json("/readyz").await;
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["reasons"], serde_json::json!([]));

    let conn = format!(
        "{} application_name=api-test",
        admin.proxy().conn_str(USER, PASSWORD, "api")
    );
    let c = connect(&conn).await.unwrap();
    for _ in 0..20 {
        c.simple_query("SELECT 1").await.unwrap();
    }
    // Named statements: one Parse, then Binds that find it on the server connection.
    let stmt = c.prepare("SELECT $1::int + 1").await.unwrap();
    for i in 0..5 {
        c.query_one(&stmt, &[&i]).await.unwrap();
    }
    // A second client holds a transaction open: it is active and holds a server.
    let busy = connect(&admin.proxy().conn_str(USER, PASSWORD, "api"))
        .await
        .unwrap();
    busy.simple_query("BEGIN").await.unwrap();
    // The session marks a client idle just after the client read its last answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while admin.handle.snapshot().1.idle != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first client stays active"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    let pools = admin.json("/api/pools").await;
    assert_eq!(pools["clients"]["idle"], 1, "{pools:#}");
    assert_eq!(pools["clients"]["active"], 1, "{pools:#}");
    let p = pool(&pools, "api");
    assert_eq!(p["user"], USER);
    assert_eq!(p["mode"], "transaction");
    assert_eq!(p["size"], 3);
    assert_eq!(
        p["backend"].as_str(),
        Some(format!("{}:{}", pg.host(), pg.port()).as_str())
    );
    assert_eq!(p["clients"]["idle"], 1, "{p:#}");
    assert_eq!(p["clients"]["active"], 1, "{p:#}");
    assert_eq!(p["clients"]["waiting"], 0, "{p:#}");
    assert_eq!(p["servers"]["active"], 1, "{p:#}");
    assert_eq!(p["breaker"], Value::Null);
    let totals = &p["totals"];
    // 20 simple queries, prepare (one Sync), 5 executions, BEGIN.
    assert_eq!(totals["queries"], 27, "{totals:#}");
    assert!(totals["received_bytes"].as_u64().unwrap() > 0);
    assert!(totals["sent_bytes"].as_u64().unwrap() > 0);
    assert!(totals["server_assignments"].as_u64().unwrap() >= 26);
    assert_eq!(totals["client_parses"], 1, "{totals:#}");
    assert_eq!(totals["binds"], 5, "{totals:#}");
    // Parse, Describe and each Bind look the statement up once on the server connection
    // they reach: the Parse misses (it prepares it); later ones hit unless they land on
    // another connection, which then prepares it too (a miss, and a Parse to that server).
    let (hits, misses) = (
        totals["prepared_hits"].as_u64().unwrap(),
        totals["prepared_misses"].as_u64().unwrap(),
    );
    assert_eq!(hits + misses, 7, "{totals:#}");
    assert!(misses >= 1 && hits >= 3, "{totals:#}");
    assert_eq!(totals["server_parses"], misses, "{totals:#}");
    assert_eq!(totals["prepared_evictions"], 0, "{totals:#}");
    for column in ["t_ms", "clients_active", "wait_avg_ms", "query_avg_ms"] {
        assert!(p["history"][column].is_array(), "{column}: {p:#}");
    }

    let clients = admin.json("/api/clients").await;
    let list = clients["clients"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{clients:#}");
    let me = list
        .iter()
        .find(|c| c["application_name"] == "api-test")
        .expect("the named client");
    assert_eq!(me["state"], "idle");
    assert_eq!(me["database"], "api");
    assert_eq!(me["user"], USER);
    assert_eq!(me["server_pid"], Value::Null);
    assert_eq!(me["tls"], false);
    assert!(me["addr"].as_str().unwrap().starts_with("127.0.0.1:"));
    let other = list.iter().find(|c| c["id"] != me["id"]).unwrap();
    assert_eq!(other["state"], "active");
    assert!(other["server_pid"].as_i64().unwrap() > 0, "{other:#}");

    // Paths and methods it does not serve.
    assert_eq!(admin.get("/nope").await.status, 404);
    assert_eq!(admin.get("/api/pools?since=yesterday").await.status, 400);
    busy.simple_query("COMMIT").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_fills_once_a_second_and_since_returns_only_newer_samples() {
    let pg = cluster_with_db("hist").await;
    let admin = Admin::start(txn_config(&pg, 2)).await;
    let c = connect(&admin.proxy().conn_str(USER, PASSWORD, "hist"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    // Three samples need a bit over two seconds; allow generously more on a busy machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let history = loop {
        c.simple_query("SELECT 1").await.unwrap();
        let pools = admin.json("/api/pools").await;
        let h = pool(&pools, "hist")["history"].clone();
        if h["t_ms"].as_array().unwrap().len() >= 3 {
            break h;
        }
        assert!(std::time::Instant::now() < deadline, "no history: {h:#}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let t: Vec<u64> = history["t_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(t.windows(2).all(|w| w[0] < w[1]), "{t:?}");
    let qps = history["queries_per_s"].as_array().unwrap();
    assert!(qps.iter().any(|v| v.as_f64().unwrap() > 0.0), "{history:#}");

    let since = t[t.len() - 2];
    let newer = admin.json(&format!("/api/pools?since={since}")).await;
    let newer: Vec<u64> = pool(&newer, "hist")["history"]["t_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert!(
        !newer.is_empty() && newer.iter().all(|&x| x > since),
        "{newer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_connection_being_health_checked_shows_as_tested() {
    let pg = cluster_with_db("chk").await;
    let mut config = txn_config(&pg, 1);
    // Every checkout checks the connection, and the check takes a while.
    config.pool.server_check_delay = std::time::Duration::ZERO;
    config.pool.server_check_query = "SELECT pg_sleep(0.5)".into();
    config.pool.server_check_timeout = std::time::Duration::from_secs(5);
    let admin = Admin::start(config).await;
    let c = connect(&admin.proxy().conn_str(USER, PASSWORD, "chk"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let query = tokio::spawn(async move { c.simple_query("SELECT 2").await.map(drop) });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pools = admin.json("/api/pools").await;
        if pool(&pools, "chk")["servers"]["tested"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && !query.is_finished(),
            "never seen tested: {pools:#}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    query.await.unwrap().unwrap();
    let pools = admin.json("/api/pools").await;
    assert_eq!(pool(&pools, "chk")["servers"]["tested"], 0, "{pools:#}");
}
