//! Real client programs through the proxy: psql, pgbench and Python's psycopg 3.

mod common;

use std::process::Output;

use common::programs::*;
use common::*;
use tokio::process::Command;

/// Runs psql on the proxy's database `db` with `args`; panics unless it succeeds.
async fn psql_ok(proxy: &TestProxy, db: &str, args: &[&str]) -> String {
    let out = psql(proxy, db, args).await;
    assert!(
        out.status.success(),
        "psql {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

async fn psql(proxy: &TestProxy, db: &str, args: &[&str]) -> Output {
    let conninfo = format!(
        "host={} port={} user={USER} dbname={db} sslmode=disable",
        proxy.addr.ip(),
        proxy.addr.port()
    );
    pg_command("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", &conninfo])
        .args(args)
        .output()
        .await
        .expect("run psql")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_commands_scripts_and_copy() {
    let pg = cluster_with_db("psqldb").await;
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;
    let dir = tempfile::tempdir().unwrap();

    // -c, including several statements in one simple-protocol Query message.
    let out = psql_ok(&proxy, "psqldb", &["-c", "SELECT current_database()"]).await;
    assert_eq!(out.trim(), "psqldb");
    let out = psql_ok(&proxy, "psqldb", &["-c", "SELECT 1; SELECT 'two'"]).await;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["1", "two"]);

    // A script: DDL, a transaction, a rolled-back transaction, a query.
    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL);\n\
         BEGIN;\n\
         INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g;\n\
         COMMIT;\n\
         BEGIN;\n\
         DELETE FROM items;\n\
         ROLLBACK;\n\
         SELECT count(*), sum(id) FROM items;\n",
    )
    .unwrap();
    let out = psql_ok(&proxy, "psqldb", &["-f", script.to_str().unwrap()]).await;
    assert_eq!(out.lines().last(), Some("10|55"), "{out}");

    // \copy in from a CSV file and out to another: COPY FROM STDIN / TO STDOUT through the relay.
    let csv_in = dir.path().join("in.csv");
    let csv_out = dir.path().join("out.csv");
    let rows: String = (11..=2000).map(|i| format!("{i},\"row, {i}\"\n")).collect();
    std::fs::write(&csv_in, &rows).unwrap();
    let copy_in = format!(r"\copy items FROM '{}' WITH (FORMAT csv)", csv_in.display());
    let out = psql_ok(&proxy, "psqldb", &["-c", &copy_in]).await;
    assert!(out.contains("COPY 1990"), "{out}");
    let copy_out = format!(
        r"\copy (SELECT * FROM items WHERE id > 10 ORDER BY id) TO '{}' WITH (FORMAT csv)",
        csv_out.display()
    );
    psql_ok(&proxy, "psqldb", &["-c", &copy_out]).await;
    assert_eq!(std::fs::read_to_string(&csv_out).unwrap(), rows);

    // An error is reported with its SQLSTATE and the next session is unaffected.
    let out = psql(
        &proxy,
        "psqldb",
        &["-v", "VERBOSITY=verbose", "-c", "SELECT 1 / 0"],
    )
    .await;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("22012"), "{}", text(&out.stderr));
    let out = psql_ok(&proxy, "psqldb", &["-c", "SELECT count(*) FROM items"]).await;
    assert_eq!(out.trim(), "2000");
    proxy.shutdown().await;
}

/// A select-only run with `args`; asserts it processed transactions and none failed.
async fn pgbench_select_only(proxy: &TestProxy, db: &str, args: &[&str]) -> PgbenchRun {
    let mut all = vec!["-S", "-n"];
    all.extend_from_slice(args);
    let out = pgbench(proxy, db, &all).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench {all:?} failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let run = parse_pgbench(&stdout);
    assert!(run.processed > 0, "pgbench {all:?}: {run:?}\n{stdout}");
    assert_eq!(run.failed, 0, "pgbench {all:?}: {run:?}\n{stdout}");
    run
}

async fn pgbench_init(proxy: &TestProxy, db: &str) {
    let out = pgbench(proxy, db, &["-i", "-s", "1", "-q"]).await;
    assert!(
        out.status.success(),
        "pgbench -i failed: {}",
        text(&out.stderr)
    );
    let rows = psql_ok(proxy, db, &["-c", "SELECT count(*) FROM pgbench_accounts"]).await;
    assert_eq!(rows.trim(), "100000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_simple_extended_and_prepared() {
    let pg = cluster_with_db("bench").await;
    // Session mode: each pgbench client holds a server connection for its whole run, so the
    // pool has room for all 8 (a smaller pool would leave the rest waiting out the run).
    let proxy = TestProxy::start(upstream_config(&pg, 8)).await;
    pgbench_init(&proxy, "bench").await;
    for mode in ["simple", "extended", "prepared"] {
        pgbench_select_only(
            &proxy,
            "bench",
            &["-M", mode, "-T", "3", "-c", "8", "-j", "2"],
        )
        .await;
    }
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_with_32_clients_has_no_errors() {
    const CLIENTS: u64 = 32;
    const PER_CLIENT: u64 = 200;
    let pg = cluster_with_db("bench32").await;
    // Pool size 32: one server connection per client, as session mode needs.
    let proxy = TestProxy::start(upstream_config(&pg, CLIENTS as u32)).await;
    pgbench_init(&proxy, "bench32").await;
    // A transaction count rather than -T: 32 SCRAM logins on a busy 2-core machine can take
    // longer than a short -T run, which would then count nothing. A fixed count also tells
    // exactly how many must succeed.
    let (clients, per_client) = (CLIENTS.to_string(), PER_CLIENT.to_string());
    let run = pgbench_select_only(
        &proxy,
        "bench32",
        &[
            "-M",
            "prepared",
            "-t",
            &per_client,
            "-c",
            &clients,
            "-j",
            "2",
        ],
    )
    .await;
    assert_eq!(run.processed, CLIENTS * PER_CLIENT);
    // Every client gave its server connection back clean: the pool still serves.
    let out = psql_ok(&proxy, "bench32", &["-c", "SELECT 1"]).await;
    assert_eq!(out.trim(), "1");
    proxy.shutdown().await;
}

/// Whether psycopg 3 can be imported; when it cannot, the test is skipped unless CI is set.
async fn have_psycopg() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import psycopg"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(
            !ci,
            "psycopg 3 is required under CI: pip install \"psycopg[binary]\""
        );
        println!("skipping: python3 with psycopg 3 not found (pip install \"psycopg[binary]\")");
    }
    ok
}

/// Prints one `key=value` line per check, which the test compares.
const PSYCOPG_SCRIPT: &str = r#"
import sys
import psycopg

with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    print("simple=%s" % conn.execute("SELECT 'hello', 6 * 7").fetchone().__repr__())

    conn.prepare_threshold = 0
    cur = conn.cursor()
    cur.execute("SELECT %s::int + %s::int, %s::text", (40, 2, "param"))
    print("param=%r" % (cur.fetchone(),))
    cur.execute("SELECT %s::int * 2", (21,))
    print("param2=%r" % (cur.fetchone(),))
    n = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()[0]
    print("server_prepared=%s" % (n > 0))

    conn.execute("CREATE TABLE ledger (id int PRIMARY KEY, amount numeric NOT NULL)")
    with conn.transaction():
        conn.execute("INSERT INTO ledger VALUES (1, 10.5), (2, 20.25)")
    try:
        with conn.transaction():
            conn.execute("INSERT INTO ledger VALUES (3, 99)")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    print("ledger=%s" % conn.execute("SELECT count(*), sum(amount) FROM ledger").fetchone().__repr__())

    with cur.copy("COPY ledger (id, amount) FROM STDIN") as copy:
        for i in range(10, 1010):
            copy.write_row((i, i))
    out = []
    with cur.copy("COPY (SELECT id FROM ledger WHERE id >= 1000 ORDER BY id) TO STDOUT") as copy:
        for row in copy.rows():
            out.append(row[0])
    print("copy_out=%s" % ",".join(out))
    print("total=%s" % conn.execute("SELECT count(*) FROM ledger").fetchone()[0])
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg3_client() {
    if !have_psycopg().await {
        return;
    }
    let pg = cluster_with_db("pydb").await;
    let proxy = TestProxy::start(upstream_config(&pg, 2)).await;
    let out = Command::new("python3")
        .args(["-c", PSYCOPG_SCRIPT])
        .arg(proxy.conn_str(USER, PASSWORD, "pydb"))
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python3");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "psycopg script failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let expected = [
        "simple=('hello', 42)",
        "param=(42, 'param')",
        "param2=(42,)",
        "server_prepared=True",
        "ledger=(2, Decimal('30.75'))",
        "copy_out=1000,1001,1002,1003,1004,1005,1006,1007,1008,1009",
        "total=1002",
    ];
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    proxy.shutdown().await;
}
