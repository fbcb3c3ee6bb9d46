//! `proxy.workers`: the proxy on one current-thread runtime, and on several, each with its own
//! listening socket on the same port. Clients, a transaction, the admin console and SIGTERM
//! must behave the same whichever runtime a client lands on.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use dbwarden_testkit::PgCluster;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::timeout;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

const BIN: &str = env!("CARGO_BIN_EXE_dbwarden");
const USER: &str = "app";
const PASSWORD: &str = "app-secret";
const DB: &str = "workersdb";
/// Generous bound for anything the binary should do promptly; only reached on a hang.
const PATIENCE: Duration = Duration::from_secs(20);
/// Enough clients that, spread by the kernel's SO_REUSEPORT hash, every runtime gets some.
const CLIENTS: usize = 8;

async fn cluster() -> PgCluster {
    let pg = common::scram_cluster(USER, PASSWORD, DB).await;
    tokio::task::spawn_blocking(move || {
        pg.psql(
            DB,
            &format!("CREATE TABLE t (a int); ALTER TABLE t OWNER TO {USER}"),
        )
        .expect("create table");
        pg
    })
    .await
    .unwrap()
}

fn write_config(path: &Path, pg: &PgCluster, workers: u32) {
    let toml = format!(
        r#"
[proxy]
workers = {workers}
shutdown_timeout = "30s"

[pool]
mode = "transaction"
size = 4

[auth]
method = "scram-sha-256"
admin_users = ["{USER}"]

[[users]]
name = "{USER}"
password = "{PASSWORD}"

[databases."*"]
host = "{host}"
port = {port}
"#,
        host = pg.host(),
        port = pg.port()
    );
    std::fs::write(path, toml).unwrap();
}

/// `dbwarden proxy --config FILE` on a port the kernel picks, once it says it listens.
async fn start(file: &Path) -> (Child, SocketAddr) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(BIN)
        .env_remove("DBWARDEN_UPSTREAM")
        .env("DBWARDEN_LOG", "info")
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .args(["proxy", "--config", file.to_str().unwrap()])
        .args(["--listen", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbwarden proxy");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("dbwarden proxy listening") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(listening, Ok(true), "the proxy did not start");
    // Keep reading, so that a full pipe never blocks the proxy's logging.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, port)
}

async fn connect(addr: SocketAddr, db: &str) -> Result<Client, tokio_postgres::Error> {
    let conn_str = format!(
        "host={} port={} user={USER} password={PASSWORD} dbname={db}",
        addr.ip(),
        addr.port()
    );
    let (client, conn) = tokio_postgres::connect(&conn_str, NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// A SHOW command's rows as `column=value` lists, for failure messages.
async fn rows(console: &Client, command: &str) -> Vec<String> {
    let messages = console.simple_query(command).await.unwrap();
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{}={}", c.name(), r.get(i).unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        })
        .collect()
}

/// A SHOW POOLS column of the pool for `DB`, as a number.
async fn pool_number(console: &Client, column: &str) -> i64 {
    let rows = console.simple_query("SHOW POOLS").await.unwrap();
    let value = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) if r.get("database") == Some(DB) => {
            r.get(column).map(str::to_owned)
        }
        _ => None,
    });
    value.expect("a pool for the database").parse().unwrap()
}

async fn serves_clients_and_stops_on_sigterm(workers: u32) {
    let pg = cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dbwarden.toml");
    write_config(&file, &pg, workers);
    let (mut child, addr) = start(&file).await;

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let c = connect(addr, DB).await.unwrap();
        let n: i32 = c
            .query_one("SELECT $1::int + 1", &[&(i as i32)])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, i as i32 + 1);
        clients.push(c);
    }
    // Transaction pooling: the transaction keeps its server connection to the end.
    let txn = &clients[0];
    txn.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    let pid = || async {
        let row = txn.query_one("SELECT pg_backend_pid()", &[]).await.unwrap();
        row.get::<_, i32>(0)
    };
    assert_eq!(pid().await, pid().await);
    let console = connect(addr, "pgbouncer").await.unwrap();
    // The other clients' connections go back to the pool a moment after their answers.
    let mut last = (0, 0);
    let settled = timeout(PATIENCE, async {
        loop {
            last.0 = pool_number(&console, "cl_active").await;
            last.1 = pool_number(&console, "sv_active").await;
            if last == (CLIENTS as i64, 1) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if settled.is_err() {
        let servers = rows(&console, "SHOW SERVERS").await;
        let clients = rows(&console, "SHOW CLIENTS").await;
        panic!("SHOW POOLS does not show {CLIENTS} clients and one transaction: cl_active and sv_active are {last:?}\nservers: {servers:?}\nclients: {clients:?}");
    }
    drop(console);

    let child_pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    // Every runtime's listener closes: each attempt, whichever socket the kernel would pick,
    // is refused.
    let refused = timeout(PATIENCE, async {
        let mut refusals = 0;
        while refusals < 2 * CLIENTS {
            match connect(addr, DB).await {
                Err(e) => {
                    assert!(e.as_db_error().is_none(), "{e}");
                    refusals += 1;
                }
                // Accepted a moment before its listener closed; start counting again.
                Ok(_) => refusals = 0,
            }
        }
    })
    .await;
    assert!(refused.is_ok(), "a listener still accepts after SIGTERM");
    // The running transaction and the idle clients are not cut short.
    txn.batch_execute("INSERT INTO t VALUES (2); COMMIT")
        .await
        .expect("the transaction commits after SIGTERM");
    for c in &clients[1..] {
        c.simple_query("SELECT 1")
            .await
            .expect("an idle client still works");
    }
    let rows = pg
        .psql(DB, "SELECT string_agg(a::text, ',' ORDER BY a) FROM t")
        .unwrap();
    assert_eq!(rows, "1,2");

    drop(clients);
    let status = timeout(PATIENCE, child.wait())
        .await
        .expect("the proxy exits once its last session ends")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // The pools were closed, those connections opened on another runtime included.
    let closed = timeout(PATIENCE, async {
        let count = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{DB}'");
        while pg.psql("postgres", &count).unwrap() != "0" {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "server connections left open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_serves_clients_and_stops_on_sigterm() {
    serves_clients_and_stops_on_sigterm(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_serve_clients_and_stop_on_sigterm() {
    serves_clients_and_stops_on_sigterm(2).await;
}
