//! `/metrics` of a proxy with traffic: the scrape-time gauges and counters are there with
//! the right values, promtool accepts the exposition, and every metric the Grafana dashboard
//! queries exists.

use std::collections::BTreeSet;
use std::path::Path;

use super::client::Admin;
use super::*;

/// The series names a scrape can have, from its `# TYPE` lines (a counter `x` is sampled as
/// `x_total`, a histogram as `x_bucket`, `x_sum`, `x_count`, an info as `x_info`).
fn series_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", "_created"],
            "histogram" => &["_bucket", "_sum", "_count", "_created"],
            "info" => &["_info"],
            _ => &[""],
        };
        for s in suffixes {
            names.insert(format!("{name}{s}"));
        }
    }
    names
}

/// What Prometheus sends.
const PROMETHEUS_ACCEPT: &str = "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n";

/// Drives a few queries through the proxy, one of them failing; returns the client, still
/// connected.
async fn traffic(admin: &Admin, db: &str) -> tokio_postgres::Client {
    let c = connect(&admin.proxy().conn_str(USER, PASSWORD, db))
        .await
        .unwrap();
    for _ in 0..10 {
        c.simple_query("SELECT 1").await.unwrap();
    }
    let stmt = c.prepare("SELECT $1::int").await.unwrap();
    c.query_one(&stmt, &[&1]).await.unwrap();
    // Dropping it sends a Close and a Sync in the background: let that happen before the
    // last query rather than during a scrape.
    drop(stmt);
    assert!(c.simple_query("SELECT * FROM nowhere").await.is_err());
    c.simple_query("SELECT 1").await.unwrap();
    c
}

/// Waits until no client is active: the session marks its client idle just after the
/// client has read its last answer, and a scrape must not race that.
async fn settle(admin: &Admin) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while admin.handle.snapshot().1.active > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a client stays active"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The OpenMetrics scrape (as Prometheus asks for it) of a proxy that has had traffic.
async fn scrape_with_traffic(admin: &Admin, db: &str) -> String {
    let _client = traffic(admin, db).await;
    settle(admin).await;
    let r = admin.get_with("/metrics", PROMETHEUS_ACCEPT).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"), "not OpenMetrics: no # EOF");
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_pool_gauges_and_totals() {
    let pg = cluster_with_db("met").await;
    let admin = Admin::start(txn_config(&pg, 3)).await;
    let text = scrape_with_traffic(&admin, "met").await;
    let pool = r#"database="met",user="app""#;
    for line in [
        format!("dbwarden_pool_clients{{{pool},state=\"idle\"}} 1"),
        format!("dbwarden_pool_clients{{{pool},state=\"waiting\"}} 0"),
        format!("dbwarden_pool_servers{{{pool},state=\"active\"}} 0"),
        format!("dbwarden_pool_size{{{pool}}} 3"),
        format!("dbwarden_pool_max_wait_seconds{{{pool}}} 0.0"),
        // 10 + prepare + execute + the failed one + 1. The statement's Close and its Sync
        // are answered by the proxy: no server saw them, so they are no transaction.
        format!("dbwarden_pool_queries_total{{{pool}}} 14"),
        format!("dbwarden_pool_transactions_total{{{pool}}} 14"),
        format!("dbwarden_pool_client_parses_total{{{pool}}} 1"),
        format!("dbwarden_errors_total{{{pool},class=\"42\",code=\"other\"}} 1"),
        "dbwarden_clients{state=\"idle\"} 1".to_owned(),
        "dbwarden_paused 0".to_owned(),
        "dbwarden_shutting_down 0".to_owned(),
        format!(
            "dbwarden_backend_circuit_open{{backend=\"{}:{}\"}} 0",
            pg.host(),
            pg.port()
        ),
        format!(
            "dbwarden_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    let idle: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix(&format!("dbwarden_pool_servers{{{pool},state=\"idle\"}} ")))
        .and_then(|v| v.parse().ok())
        .expect("idle servers");
    assert!((1..=3).contains(&idle), "{idle} idle servers");
    for name in [
        "dbwarden_pool_received_bytes_total",
        "dbwarden_pool_sent_bytes_total",
        "dbwarden_pool_server_assignments_total",
        "dbwarden_pool_prepared_hits_total",
        "dbwarden_pool_prepared_misses_total",
        "dbwarden_start_time_seconds",
    ] {
        assert!(text.contains(name), "no {name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_exposition() {
    let promtool = std::process::Command::new("promtool")
        .arg("--version")
        .output();
    if promtool.is_err() {
        if std::env::var_os("CI").is_some() {
            panic!("promtool is required in CI (apt-get install -y prometheus)");
        }
        println!("SKIPPED: promtool is not installed (apt-get install -y prometheus)");
        return;
    }
    let pg = cluster_with_db("prom").await;
    let admin = Admin::start(txn_config(&pg, 2)).await;
    let _client = traffic(&admin, "prom").await;
    // Without an Accept header: the Prometheus text format, the one promtool parses.
    let r = admin.get("/metrics").await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.body;
    assert!(
        text.contains("# TYPE dbwarden_pool_queries_total counter"),
        "{text}"
    );
    let mut check = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    let mut stdin = check.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, text.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = check.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n--- scrape:\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `dbwarden_*` name in the dashboard's queries.
fn dashboard_metrics(dashboard: &serde_json::Value, out: &mut BTreeSet<String>) {
    match dashboard {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", serde_json::Value::String(expr)) => {
                        let mut rest = expr.as_str();
                        while let Some(at) = rest.find("dbwarden_") {
                            let name: String = rest[at..]
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                                .collect();
                            rest = &rest[at + name.len()..];
                            out.insert(name);
                        }
                    }
                    _ => dashboard_metrics(v, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| dashboard_metrics(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grafana_dashboard_queries_only_metrics_that_exist() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/grafana/dbwarden.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut wanted = BTreeSet::new();
    dashboard_metrics(&dashboard, &mut wanted);
    assert!(
        wanted.len() >= 15,
        "few metrics in the dashboard: {wanted:?}"
    );

    let pg = cluster_with_db("graf").await;
    let admin = Admin::start(txn_config(&pg, 2)).await;
    // A pin: transaction mode keeps a LISTENing client on its server connection. (The pin
    // is counted when the pinned session ends.)
    let listener = connect(&admin.proxy().conn_str(USER, PASSWORD, "graf"))
        .await
        .unwrap();
    listener.simple_query("LISTEN news").await.unwrap();
    drop(listener);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = scrape_with_traffic(&admin, "graf").await;
        if text.contains("dbwarden_pins_total{") || std::time::Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let have = series_names(&text);
    let missing: Vec<_> = wanted.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics /metrics does not have: {missing:?}\nhave: {have:?}"
    );
}
