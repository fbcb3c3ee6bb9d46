//! `dbwarden proxy` as users run it, logging JSON: a slow query that carries a traceparent
//! logs one line with the trace id, `/metrics` shows the trace id as exemplar, and the span
//! reaches an OTLP receiver before the process exits on SIGTERM.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use dbwarden_testkit::{OtlpReceiver, PgCluster};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::time::timeout;

const USER: &str = "app";
const PASSWORD: &str = "app-secret";
/// Generous bound for anything that should happen promptly; only reached on a failure.
const PATIENCE: Duration = Duration::from_secs(20);

async fn cluster() -> PgCluster {
    common::scram_cluster(USER, PASSWORD, "logs").await
}

/// The address in a JSON log line's field `key` (where the proxy says what it bound).
fn logged_addr(v: &serde_json::Value, key: &str) -> SocketAddr {
    v.get(key)
        .or_else(|| v.get("fields").and_then(|f| f.get(key)))
        .and_then(|a| a.as_str())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no {key} address in {v}"))
}

/// The body of `GET path` as Prometheus asks for it (OpenMetrics, which has exemplars).
/// HTTP/1.0, so the answer is neither chunked nor kept alive.
async fn get_openmetrics(addr: SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    timeout(PATIENCE, tcp.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("HTTP head and body");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    body.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_and_span_carry_the_clients_trace_id() {
    let pg = cluster().await;
    let otlp = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[proxy]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
shutdown_timeout = "2s"

[log]
format = "json"
level = "info"
slow_query_threshold = "20ms"
log_query_text = true

[tracing]
otlp_endpoint = "{endpoint}"

[[users]]
name = "{USER}"
password = "{PASSWORD}"

[databases."*"]
host = "{host}"
port = {port}
"#,
            endpoint = otlp.endpoint(),
            host = pg.host(),
            port = pg.port()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dbwarden"))
        .args(["proxy", "--config"])
        .arg(&file)
        .env_remove("DBWARDEN_LOG")
        .env_remove("DBWARDEN_UPSTREAM")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dbwarden proxy");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut next_json = async |needle: &str| -> serde_json::Value {
        let found = timeout(PATIENCE, async {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: serde_json::Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
                seen.push(line.clone());
                if line.contains(needle) {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => v,
            _ => panic!("no log line with {needle:?}; logged:\n{}", seen.join("\n")),
        }
    };
    // Any free ports: the lines say which (the admin listener's comes first).
    let admin = logged_addr(&next_json("HTTP admin listener").await, "admin_listen");
    let addr = logged_addr(&next_json("dbwarden proxy listening").await, "listen");

    let conn = format!(
        "host={} port={} user={USER} password={PASSWORD} dbname=logs",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (trace, span) = (
        0x0af7651916cd43dd8448eb211c80319cu128,
        0xb7ad6b7169203331u64,
    );
    let sql = format!(
        "SELECT pg_sleep(0.05) /*action='report',traceparent='00-{trace:032x}-{span:016x}-01'*/"
    );
    client.simple_query(&sql).await.unwrap();

    let hex = format!("{trace:032x}");
    let slow = next_json("slow query").await;
    assert_eq!(slow["trace_id"], hex.as_str(), "{slow}");
    assert_eq!(slow["target"], "dbwarden_proxy::slow_query");
    assert_eq!(slow["pool"], "logs/app");
    assert!(slow["server.pid"].as_i64().is_some(), "{slow}");
    assert!(slow["client.addr"].is_string(), "{slow}");
    assert!(slow["query"]
        .as_str()
        .unwrap()
        .starts_with("SELECT pg_sleep(0.05)"));

    let metrics = get_openmetrics(admin, "/metrics").await;
    let exemplar = format!("# {{trace_id=\"{hex}\"}}");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("dbwarden_pool_query_duration_seconds_bucket")
                && l.contains(&exemplar)
        ),
        "no exemplar {exemplar} in /metrics:\n{metrics}"
    );

    drop(client);
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = timeout(PATIENCE, child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Flushed before the process exited: no waiting for the batch interval.
    let got = otlp
        .wait_for(Duration::from_millis(500), |s| s.trace_id() == trace)
        .await
        .unwrap_or_else(|| panic!("no span exported: {:#?}", otlp.spans()));
    assert_eq!(got.parent_span_id(), span);
    assert_eq!(got.service_name.as_deref(), Some("dbwarden"));
    assert!(got
        .str_attr("db.query.text")
        .is_some_and(|t| t.starts_with("SELECT pg_sleep")));
}
