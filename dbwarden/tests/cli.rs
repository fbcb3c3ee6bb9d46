//! The `dbwarden` binary as users run it: check-config, the proxy as a child process (flags,
//! config file, SIGHUP, SIGTERM) and the demo.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use dbwarden_config::{Config, REDACTED};
use dbwarden_testkit::PgCluster;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const BIN: &str = env!("CARGO_BIN_EXE_dbwarden");
const USER: &str = "app";
const PASSWORD: &str = "app-secret";
const DB: &str = "clidb";
/// Generous bound for anything the binary should do promptly; only reached on a hang.
const PATIENCE: Duration = Duration::from_secs(20);

fn dbwarden() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("DBWARDEN_UPSTREAM")
        .env("DBWARDEN_LOG", "info")
        .env("NO_COLOR", "1")
        .kill_on_drop(true);
    cmd
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dbwarden.example.toml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The address in a log line's `key=ADDR` field.
fn logged_addr(line: &str, key: &str) -> SocketAddr {
    let prefix = format!("{key}=");
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}=ADDR in {line:?}"))
}

async fn cluster() -> PgCluster {
    common::scram_cluster(USER, PASSWORD, DB).await
}

fn upstream_url(pg: &PgCluster) -> String {
    format!("postgres://{USER}:{PASSWORD}@{}:{}", pg.host(), pg.port())
}

async fn connect(addr: SocketAddr) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let conn_str = format!(
        "host={} port={} user={USER} password={PASSWORD} dbname={DB}",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

async fn query_int(c: &tokio_postgres::Client, sql: &str) -> i32 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

/// `dbwarden proxy` running as a child process, with its log lines collected.
struct ProxyProcess {
    child: Child,
    addr: SocketAddr,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl ProxyProcess {
    /// Starts `dbwarden proxy ARGS` on any free port and waits until it says it is listening
    /// (and where: the port the system gave it).
    async fn start(args: &[&str]) -> ProxyProcess {
        ProxyProcess::start_on(args, "127.0.0.1:0".parse().unwrap()).await
    }

    /// The same on a given address.
    async fn start_on(args: &[&str], addr: SocketAddr) -> ProxyProcess {
        let mut child = dbwarden()
            .arg("proxy")
            .args(args)
            .args(["--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dbwarden proxy");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut proxy = ProxyProcess {
            child,
            addr,
            lines,
            seen: Vec::new(),
        };
        let listening = proxy.wait_log("dbwarden proxy listening").await;
        proxy.addr = logged_addr(&listening, "listen");
        proxy
    }

    /// The next log line containing `needle`; panics with the log so far if none comes.
    async fn wait_log(&mut self, needle: &str) -> String {
        let found = timeout(PATIENCE, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line.clone());
                if line.contains(needle) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => line,
            _ => panic!(
                "no log line with {needle:?}; the proxy logged:\n{}",
                self.seen.join("\n")
            ),
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the proxy is running").to_string();
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {pid}");
    }

    /// SIGTERM, then the exit status.
    async fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        match timeout(PATIENCE, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!(
                "the proxy did not exit after SIGTERM; it logged:\n{}",
                self.seen.join("\n")
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_prints_the_effective_example_config() {
    let example = example_config();
    let out = dbwarden()
        .arg("check-config")
        .arg(&example)
        .output()
        .await
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check-config failed: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("OK"), "{}", text(&out.stderr));

    // The output is a complete config that reads back to the same settings, secrets hidden.
    let printed = Config::from_toml_str(&stdout).expect("the effective config is valid TOML");
    let original = Config::load(&example).unwrap();
    assert_eq!(printed.proxy, original.proxy);
    assert_eq!(printed.pool, original.pool);
    assert_eq!(printed.auth, original.auth);
    assert_eq!(
        printed.databases.keys().collect::<Vec<_>>(),
        original.databases.keys().collect::<Vec<_>>()
    );
    assert!(printed
        .users
        .iter()
        .all(|u| u.password.as_deref() == Some(REDACTED)));
    assert!(!stdout.contains("ops-secret") && !stdout.contains("reporter-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_names_an_unknown_field_and_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[proxy]\nlisten = \"127.0.0.1:6432\"\n\n[pool]\nsize = 5\nmax_size = 9\n",
    )
    .unwrap();
    let out = dbwarden()
        .arg("check-config")
        .arg(&file)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("max_size") && stderr.contains("line 6"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing printed for a bad config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zero_config_proxy_serves_clients_and_stops_on_sigterm() {
    let pg = cluster().await;
    let url = upstream_url(&pg);
    let proxy = ProxyProcess::start(&[
        "--upstream",
        &url,
        "--pool-size",
        "3",
        "--pool-mode",
        "session",
    ])
    .await;

    let first = connect(proxy.addr).await.unwrap();
    let db: String = first
        .query_one("SELECT current_database()::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, DB);
    let stmt = first.prepare("SELECT $1::int * 2").await.unwrap();
    let n: i32 = first.query_one(&stmt, &[&21i32]).await.unwrap().get(0);
    assert_eq!(n, 42);

    // --pool-size 3: three sessions hold all server connections, a fourth waits for one.
    let mut held = vec![first];
    for _ in 0..2 {
        held.push(connect(proxy.addr).await.unwrap());
    }
    let addr = proxy.addr;
    let waiting = tokio::spawn(async move { connect(addr).await });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !waiting.is_finished(),
        "a fourth session got in past pool size 3"
    );
    let servers = pg
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}'"),
        )
        .unwrap();
    assert_eq!(servers, "3");
    held.pop();
    let fourth = timeout(PATIENCE, waiting)
        .await
        .expect("the waiting session gets the freed connection")
        .unwrap()
        .unwrap();
    assert_eq!(query_int(&fourth, "SELECT 4").await, 4);
    drop(fourth);
    drop(held);

    let status = proxy.terminate().await;
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
}

/// A config file for `pg`: pool size 10 everywhere, a short checkout wait.
fn write_config(path: &Path, pg: &PgCluster) {
    let toml = format!(
        r#"
[proxy]
shutdown_timeout = "2s"

[pool]
size = 10
query_wait_timeout = "1s"

[auth]
method = "scram-sha-256"

[[users]]
name = "{USER}"
password = "{PASSWORD}"

[databases."*"]
host = "{host}"
port = {port}
pool_size = 10
"#,
        host = pg.host(),
        port = pg.port()
    );
    std::fs::write(path, toml).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_size_flag_overrides_the_config_file() {
    let pg = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &pg);
    let proxy = ProxyProcess::start(&[
        "--config",
        file.to_str().unwrap(),
        "--pool-size",
        "2",
        "--pool-mode",
        "session",
    ])
    .await;

    let a = connect(proxy.addr).await.unwrap();
    let b = connect(proxy.addr).await.unwrap();
    assert_eq!(
        query_int(&a, "SELECT 1").await + query_int(&b, "SELECT 1").await,
        2
    );
    // The file says 10 (pool.size and the database's pool_size); the flag says 2, and the
    // file's 1 s query_wait_timeout still applies.
    let Err(err) = connect(proxy.addr).await else {
        panic!("a third session got a server connection past --pool-size 2");
    };
    let db_err = err.as_db_error().expect("the proxy's error");
    assert_eq!(db_err.code().code(), "57014", "{}", db_err.message());
    assert!(
        db_err.message().contains("query_wait_timeout") && db_err.message().contains("pool size 2"),
        "{}",
        db_err.message()
    );
    drop((a, b));
    let status = proxy.terminate().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_config_keeps_the_proxy_serving() {
    let pg = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &pg);
    let mut proxy = ProxyProcess::start(&["--config", file.to_str().unwrap()]).await;
    let before = connect(proxy.addr).await.unwrap();
    assert_eq!(query_int(&before, "SELECT 1").await, 1);

    std::fs::write(&file, "[pool]\nsize = 2\nbogus_setting = true\n").unwrap();
    proxy.signal("HUP");
    let line = proxy.wait_log("reload rejected").await;
    assert!(line.contains("bogus_setting"), "{line}");

    // The old config is still in force: the open session and new ones work.
    assert_eq!(query_int(&before, "SELECT 2").await, 2);
    let after = connect(proxy.addr).await.unwrap();
    assert_eq!(query_int(&after, "SELECT 3").await, 3);

    // A good file is taken on the next SIGHUP.
    write_config(&file, &pg);
    proxy.signal("HUP");
    proxy.wait_log("config reloaded").await;
    let again = connect(proxy.addr).await.unwrap();
    assert_eq!(query_int(&again, "SELECT 4").await, 4);
    drop((before, after, again));
    let status = proxy.terminate().await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_once_runs_the_workload_and_exits() {
    let out = timeout(
        Duration::from_secs(180),
        dbwarden().args(["demo", "--once"]).output(),
    )
    .await
    .expect("demo --once finishes")
    .unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("What happened"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("psql \"postgres://")),
        "{stdout}"
    );
    assert!(stdout.contains(", 0 client errors"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_closes_at_once_and_a_second_proxy_can_share_the_port() {
    let pg = cluster().await;
    let url = upstream_url(&pg);
    let proxy = ProxyProcess::start(&["--upstream", &url]).await;

    // SO_REUSEPORT: a second proxy binds the same address (a rolling restart drops nothing).
    let second = ProxyProcess::start_on(&["--upstream", &url], proxy.addr).await;
    assert_eq!(second.terminate().await.code(), Some(0));

    // A session inside a transaction does not hold SIGINT up, and PostgreSQL rolls it back.
    let c = connect(proxy.addr).await.unwrap();
    c.batch_execute("BEGIN; SELECT 1").await.unwrap();
    let mut proxy = proxy;
    proxy.signal("INT");
    let status = timeout(Duration::from_secs(3), proxy.child.wait())
        .await
        .expect("SIGINT closes the proxy at once")
        .unwrap();
    assert!(status.success(), "exit status after SIGINT: {status:?}");
    let mut left = String::new();
    for _ in 0..50 {
        left = pg
            .psql(
                "postgres",
                &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' AND state LIKE 'idle in transaction%'"),
            )
            .unwrap();
        if left == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, "0", "a transaction was left open on the server");
}

/// Rewrites one `key = value` line of a config file written by `write_config`.
fn set_in_config(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in the config");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// The number of this test's sessions on `pg` (the proxy's server connections).
fn sessions_on(pg: &PgCluster, filter: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}' {filter}"),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_a_running_transaction_commit_and_refuses_new_clients() {
    let pg = cluster().await;
    pg.psql(
        DB,
        &format!("CREATE TABLE t (a int); ALTER TABLE t OWNER TO {USER}"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &pg);
    set_in_config(
        &file,
        "shutdown_timeout = \"2s\"",
        "shutdown_timeout = \"30s\"",
    );
    let mut proxy = ProxyProcess::start(&["--config", file.to_str().unwrap()]).await;

    let a = connect(proxy.addr).await.unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (42)")
        .await
        .unwrap();
    proxy.signal("TERM");
    proxy.wait_log("SIGTERM").await;

    // The listener is closed: a new client is refused by the kernel, not answered.
    let refused = timeout(PATIENCE, async {
        loop {
            match connect(proxy.addr).await {
                Err(e) => break e,
                // Accepted a moment before the listener closed; try again.
                Ok(c) => drop(c),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("new connections are refused after SIGTERM");
    assert!(refused.as_db_error().is_none(), "{refused}");

    // The running transaction is not cut short.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.batch_execute("INSERT INTO t VALUES (43); COMMIT")
        .await
        .expect("the transaction commits after SIGTERM");
    let rows = pg
        .psql(DB, "SELECT string_agg(a::text, ',' ORDER BY a) FROM t")
        .unwrap();
    assert_eq!(rows, "42,43");

    // Its client leaves; the proxy exits well before shutdown_timeout.
    drop(a);
    let status = timeout(PATIENCE, proxy.child.wait())
        .await
        .expect("the proxy exits once its last session ends")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        sessions_on(&pg, "AND state LIKE 'idle in transaction%'"),
        "0"
    );
}

/// Which PostgreSQL a client's statement ran on.
async fn port_of(c: &tokio_postgres::Client) -> u16 {
    query_int(c, "SELECT current_setting('port')::int").await as u16
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_moves_the_backend_and_resizes_without_dropping_clients() {
    let (old, new) = tokio::join!(cluster(), cluster());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &old);
    let mut proxy = ProxyProcess::start(&["--config", file.to_str().unwrap()]).await;

    // A is inside a transaction on the old backend when the config moves the database to
    // the new one, with room for one connection.
    let a = connect(proxy.addr).await.unwrap();
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(port_of(&a).await, old.port());
    write_config(&file, &new);
    set_in_config(&file, "pool_size = 10", "pool_size = 1");
    proxy.signal("HUP");
    proxy.wait_log("config reloaded").await;

    let b = connect(proxy.addr).await.unwrap();
    assert_eq!(port_of(&b).await, new.port());
    a.batch_execute("COMMIT")
        .await
        .expect("A's transaction ends where it began");
    // A's next transaction is on the new backend, and holds its only connection.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(port_of(&a).await, new.port());
    let Err(err) = connect(proxy.addr).await else {
        panic!("a third client got a connection past the reloaded pool_size 1");
    };
    let db_err = err.as_db_error().expect("the proxy's error");
    assert!(
        db_err.message().contains("pool size 1"),
        "{}",
        db_err.message()
    );
    a.batch_execute("COMMIT").await.unwrap();

    // Nothing of the proxy's is left on the old backend.
    let mut left = String::new();
    for _ in 0..50 {
        left = sessions_on(&old, "");
        if left == "0" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, "0", "the old backend's connections were not drained");
    drop((a, b));
    let status = proxy.terminate().await;
    assert_eq!(status.code(), Some(0));
}

/// One `GET path` over HTTP/1.1 (connection closed after it): the status line and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut raw = String::new();
        s.read_to_string(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = timeout(PATIENCE, exchange).await.unwrap().unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP reply");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_listen_serves_health_and_metrics() {
    let pg = cluster().await;
    let url = upstream_url(&pg);
    // The HTTP listener is up before the proxy says it is listening, and its line says
    // which port it was given.
    let proxy = ProxyProcess::start(&["--upstream", &url, "--admin-listen", "127.0.0.1:0"]).await;
    let line = proxy
        .seen
        .iter()
        .find(|l| l.contains("HTTP admin listener"))
        .expect("the admin listener's log line");
    let admin = logged_addr(line, "admin_listen");
    let c = connect(proxy.addr).await.unwrap();
    assert_eq!(query_int(&c, "SELECT 7").await, 7);
    assert_eq!(
        http_get(admin, "/healthz").await,
        ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned())
    );
    assert_eq!(http_get(admin, "/readyz").await.0, "HTTP/1.1 200 OK");
    let (status, metrics) = http_get(admin, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        metrics.contains(&format!(
            "dbwarden_pool_queries_total{{database=\"{DB}\",user=\"{USER}\"}}"
        )),
        "{metrics}"
    );
    drop(c);
    assert_eq!(proxy.terminate().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_reload_reads_the_file_again_and_shutdown_exits() {
    let pg = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &pg);
    let admin = "method = \"scram-sha-256\"\nadmin_users = [\"app\"]";
    set_in_config(&file, "method = \"scram-sha-256\"", admin);
    let mut proxy = ProxyProcess::start(&["--config", file.to_str().unwrap()]).await;
    let conn_str = format!(
        "host={} port={} user={USER} password={PASSWORD} dbname=pgbouncer",
        proxy.addr.ip(),
        proxy.addr.port()
    );
    let (console, conn) = tokio_postgres::connect(&conn_str, tokio_postgres::NoTls)
        .await
        .expect("the admin console");
    tokio::spawn(conn);
    let pool_size = |rows: Vec<tokio_postgres::SimpleQueryMessage>| {
        rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r)
                if r.get("key") == Some("default_pool_size") =>
            {
                r.get("value").map(str::to_owned)
            }
            _ => None,
        })
    };
    let before = console.simple_query("SHOW CONFIG").await.unwrap();
    assert_eq!(pool_size(before).as_deref(), Some("10"));

    // RELOAD is SIGHUP: the file is read again, and a broken one is refused.
    set_in_config(&file, "size = 10", "size = 4");
    console.simple_query("RELOAD").await.expect("RELOAD");
    proxy.wait_log("config reloaded").await;
    let after = console.simple_query("SHOW CONFIG").await.unwrap();
    assert_eq!(pool_size(after).as_deref(), Some("4"));
    set_in_config(&file, "size = 4", "size = 0");
    let err = console
        .simple_query("RELOAD")
        .await
        .expect_err("a bad file");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("F0000"));

    // SHUTDOWN ends the process.
    let _ = console.simple_query("SHUTDOWN").await;
    let status = timeout(PATIENCE, proxy.child.wait())
        .await
        .expect("the proxy exits after SHUTDOWN")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
