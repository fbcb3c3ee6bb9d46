//! Real drivers that prepare statements, each with more clients than server connections:
//! psycopg 3 with server-side prepare, asyncpg (which prepares everything) and pgbench.

use std::process::Output;

use tokio::process::Command;

use super::common::*;
use super::{txn_config, DB};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether python3 can import `module`. When it cannot, the test is skipped with a message,
/// unless CI is set: there a missing driver is a failure.
async fn have_python_module(module: &str, install: &str) -> bool {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !ok {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
        assert!(!ci, "{module} is required under CI: pip install {install}");
        println!("skipping: python3 module {module} not found (pip install {install})");
    }
    ok
}

async fn python(script: &str, url: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script, url])
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python3");
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "script failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    stdout
}

/// 16 connections; each runs statements whose text all share, statements whose text is its
/// own (psycopg names them `_pg3_0`, `_pg3_1`, ... per connection, so the names collide
/// across clients while the SQL differs), and explicit transactions.
const PSYCOPG_SCRIPT: &str = r#"
import asyncio, sys
import psycopg

async def client(i, url):
    bad = []
    async with await psycopg.AsyncConnection.connect(url, autocommit=True, prepare_threshold=0) as conn:
        for n in range(40):
            cur = await conn.execute("SELECT %s::int + %s::int", (n, i))
            if (await cur.fetchone())[0] != n + i:
                bad.append(("shared", n))
            cur = await conn.execute("SELECT %s::text || '-" + str(i) + "'", (str(n),))
            if (await cur.fetchone())[0] != "%d-%d" % (n, i):
                bad.append(("own", n))
            async with conn.transaction():
                cur = await conn.execute("SELECT %s::int * 2, %s::int", (n, i))
                if tuple(await cur.fetchone()) != (n * 2, i):
                    bad.append(("txn", n))
        cur = await conn.execute("SELECT count(*) FROM pg_prepared_statements")
        prepared = (await cur.fetchone())[0] > 0
    return bad, prepared

async def main(url):
    results = await asyncio.gather(*(client(i, url) for i in range(16)))
    print("mismatches=%d" % sum(len(b) for b, _ in results))
    print("server_prepared=%s" % all(p for _, p in results))

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg3_with_server_side_prepare() {
    if !have_python_module("psycopg", "\"psycopg[binary]\"").await {
        return;
    }
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 4)).await;
    let out = python(PSYCOPG_SCRIPT, &proxy.url(USER, PASSWORD, DB)).await;
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["mismatches=0", "server_prepared=True"]
    );
    proxy.shutdown().await;
}

/// asyncpg prepares every query (named, cached per connection) and introspects types with
/// statements of its own; explicit `prepare()` statements are reused across transactions.
const ASYNCPG_SCRIPT: &str = r#"
import asyncio, sys, datetime
import asyncpg

async def client(i, url):
    bad = []
    conn = await asyncpg.connect(url)
    try:
        plus = await conn.prepare("SELECT $1::int + 100")
        for n in range(40):
            if await conn.fetchval("SELECT $1::int + $2::int", n, i) != n + i:
                bad.append(("shared", n))
            if await conn.fetchval("SELECT $1::text || '-" + str(i) + "'", str(n)) != "%d-%d" % (n, i):
                bad.append(("own", n))
            async with conn.transaction():
                row = await conn.fetchrow("SELECT $1::int * 2 AS d, $2::timestamptz AS t", n,
                                          datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
                if row["d"] != n * 2 or row["t"].year != 2024:
                    bad.append(("txn", n))
            if await plus.fetchval(n) != n + 100:
                bad.append(("prepared", n))
            await conn.executemany("SELECT $1::int", [(k,) for k in range(3)])
    finally:
        await conn.close()
    return bad

async def main(url):
    results = await asyncio.gather(*(client(i, url) for i in range(16)))
    print("mismatches=%d" % sum(len(b) for b in results))

asyncio.run(main(sys.argv[1]))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_which_prepares_everything() {
    if !have_python_module("asyncpg", "asyncpg").await {
        return;
    }
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 4)).await;
    let out = python(ASYNCPG_SCRIPT, &proxy.url(USER, PASSWORD, DB)).await;
    assert_eq!(out.lines().collect::<Vec<_>>(), ["mismatches=0"]);
    proxy.shutdown().await;
}

async fn pgbench(args: &[&str]) -> Output {
    Command::new("pgbench")
        .env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run pgbench")
}

/// The number after `prefix` on its line of pgbench's report.
fn number_after(stdout: &str, prefix: &str) -> u64 {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in pgbench output:\n{stdout}"));
    line.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("bad number after `{prefix}`: {line}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_prepared_16_clients_through_a_pool_of_4() {
    let pg = cluster_with_db(DB).await;
    // Initialised straight on PostgreSQL: only the run is under test.
    let port = pg.port().to_string();
    let init = [
        "-i",
        "-s",
        "1",
        "-q",
        "-h",
        pg.host(),
        "-p",
        &port,
        "-U",
        USER,
        DB,
    ];
    let out = pgbench(&init).await;
    assert!(out.status.success(), "pgbench -i: {}", text(&out.stderr));

    let proxy = TestProxy::start(txn_config(&pg, 4)).await;
    let (host, port) = (proxy.addr.ip().to_string(), proxy.addr.port().to_string());
    let run = [
        "-M", "prepared", "-S", "-n", "-c", "16", "-j", "2", "-T", "5", "-h", &host, "-p", &port,
        "-U", USER, DB,
    ];
    let out = pgbench(&run).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed:\n{stdout}\n{}",
        text(&out.stderr)
    );
    let processed = number_after(&stdout, "number of transactions actually processed: ");
    let failed = number_after(&stdout, "number of failed transactions: ");
    assert!(processed > 0, "{stdout}");
    assert_eq!(failed, 0, "{stdout}");
    proxy.shutdown().await;
}
