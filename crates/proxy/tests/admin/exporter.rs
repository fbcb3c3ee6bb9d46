//! PgBouncer's own Prometheus exporter (`prometheus-pgbouncer-exporter` 2.x from PyPI,
//! installed into a venv by scripts/setup.sh) scrapes dbwarden's console unchanged: its pool
//! and stats metrics are there, with the numbers of the queries the test made.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{cluster_with_db, connect, TestProxy, PASSWORD, USER};

/// Where scripts/setup.sh installs the exporter.
fn exporter() -> PathBuf {
    if let Ok(venv) = std::env::var("DBWARDEN_EXPORTER_VENV") {
        return PathBuf::from(venv).join("bin/pgbouncer-exporter");
    }
    let home = std::env::var("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/dbwarden/pgbouncer-exporter/bin/pgbouncer-exporter")
}

async fn get(port: u16, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut body = String::new();
    s.read_to_string(&mut body).await?;
    Ok(body)
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbouncer_exporter_reads_pools_and_stats() {
    let bin = exporter();
    if !bin.exists() {
        let msg = format!(
            "{} is not installed: run scripts/setup.sh test",
            bin.display()
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("skipped: {msg}");
        return;
    }
    let pg = cluster_with_db("exp").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "exp"))
        .await
        .unwrap();
    const N: u64 = 12;
    for i in 0..N {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "exporter_host: 127.0.0.1\nexporter_port: {port}\npgbouncers:\n  - dsn: \
             postgresql://{USER}:{PASSWORD}@{}:{}/pgbouncer\n    connect_timeout: 5\n",
            proxy.addr.ip(),
            proxy.addr.port()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(&bin)
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the exporter");

    let mut text = String::new();
    for _ in 0..100 {
        if let Ok(body) = get(port, "/metrics").await {
            if body.contains("pgbouncer_up") {
                text = body;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if text.is_empty() {
        let _ = child.kill().await;
        let out = child.wait_with_output().await.unwrap();
        panic!(
            "no metrics; exporter said: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every SHOW the exporter runs succeeded.
    assert_eq!(sample(&text, "pgbouncer_up"), Some(1.0), "{text}");
    let pool = r#"{database="exp",user="app"}"#;
    assert_eq!(
        sample(
            &text,
            &format!("pgbouncer_pools_client_active_connections{pool}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("pgbouncer_pools_client_waiting_connections{pool}")
        ),
        Some(0.0)
    );
    let idle = sample(
        &text,
        &format!("pgbouncer_pools_server_idle_connections{pool}"),
    );
    assert!(idle.is_some_and(|v| v >= 1.0), "{text}");
    assert!(sample(
        &text,
        &format!("pgbouncer_pools_client_maxwait_seconds{pool}")
    )
    .is_some());
    let db = r#"{database="exp"}"#;
    let queries = sample(&text, &format!("pgbouncer_stats_queries_total{db}")).expect("queries");
    assert_eq!(queries, N as f64, "{text}");
    let xacts = sample(&text, &format!("pgbouncer_stats_transactions_total{db}"));
    assert_eq!(xacts, Some(N as f64));
    let received = sample(&text, &format!("pgbouncer_stats_received_bytes_total{db}"));
    assert!(received.is_some_and(|v| v > 0.0), "{text}");
    // prometheus_client 0.8 adds `_total` to counter names that lack it.
    let query_us = sample(
        &text,
        &format!("pgbouncer_stats_queries_duration_microseconds_total{db}"),
    );
    assert!(query_us.is_some_and(|v| v > 0.0), "{text}");
    assert!(
        text.contains("pgbouncer_databases_database_pool_size{"),
        "{text}"
    );
    assert_eq!(
        sample(&text, "pgbouncer_config_max_client_conn"),
        Some(1000.0)
    );
    let _ = child.kill().await;
    drop(c);
    proxy.shutdown().await;
}
