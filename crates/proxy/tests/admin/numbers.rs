//! The console's numbers follow real traffic: queries counted in SHOW STATS, clients and
//! server connections by state in SHOW POOLS, the test's own connections in SHOW CLIENTS.

use super::console::{admin, find, num, show};
use super::{cluster_with_db, connect, eventually, TestProxy, PASSWORD, USER};

/// Bound on waiting for what follows a client's answer; only reached when it never happens.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_counts_each_query_made_through_the_proxy() {
    let pg = cluster_with_db("num").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "num"))
        .await
        .unwrap();
    c.simple_query("SELECT 1").await.unwrap();
    let console = admin(&proxy).await;

    let before = show(&console, "SHOW STATS").await;
    let before = num(
        find(&before, "database", "num").expect("a row for num"),
        "total_query_count",
    );
    const N: u64 = 7;
    for i in 0..N {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    let after = show(&console, "SHOW STATS").await;
    let row = find(&after, "database", "num").unwrap();
    assert_eq!(num(row, "total_query_count"), before + N);
    assert_eq!(
        num(row, "total_xact_count"),
        before + N,
        "autocommit: one each"
    );
    assert!(num(row, "total_received") > 0 && num(row, "total_sent") > 0);
    // The console's own commands are not queries of any pool.
    assert!(find(&after, "database", "pgbouncer").is_none());

    let totals = show(&console, "SHOW STATS_TOTALS").await;
    let totals = find(&totals, "database", "num").unwrap();
    assert_eq!(num(totals, "query_count"), before + N);
    let sum = show(&console, "SHOW TOTALS").await;
    assert_eq!(
        num(find(&sum, "name", "total_query_count").unwrap(), "value"),
        before + N
    );
    drop((c, console));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_pools_and_clients_follow_the_sessions() {
    let pg = cluster_with_db("pl").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    let idle = connect(&format!(
        "{} application_name=idle-one",
        proxy.conn_str(USER, PASSWORD, "pl")
    ))
    .await
    .unwrap();
    let busy = connect(&format!(
        "{} application_name=busy-one",
        proxy.conn_str(USER, PASSWORD, "pl")
    ))
    .await
    .unwrap();
    idle.simple_query("SELECT 1").await.unwrap();
    busy.simple_query("BEGIN").await.unwrap();
    let console = admin(&proxy).await;

    // Transaction pooling: `busy` holds a server connection, `idle` holds none. `idle`'s
    // connection goes back just after its ReadyForQuery was forwarded, so wait for that.
    let busy_only = || async {
        let pools = show(&console, "SHOW POOLS").await;
        find(&pools, "database", "pl").is_some_and(|p| num(p, "sv_active") == 1)
    };
    eventually("only busy's server connection active", PATIENCE, busy_only).await;
    let pools = show(&console, "SHOW POOLS").await;
    let pool = find(&pools, "database", "pl").expect("the pool");
    assert_eq!(pool["user"].as_deref(), Some(USER));
    assert_eq!(num(pool, "cl_active"), 2, "{pool:?}");
    assert_eq!(num(pool, "cl_waiting"), 0, "{pool:?}");
    assert_eq!(num(pool, "sv_active"), 1, "{pool:?}");
    assert_eq!(pool["pool_mode"].as_deref(), Some("transaction"));
    let servers = show(&console, "SHOW SERVERS").await;
    let idle_servers = servers
        .iter()
        .filter(|s| s["database"].as_deref() == Some("pl") && s["state"].as_deref() == Some("idle"))
        .count() as u64;
    assert_eq!(num(pool, "sv_idle"), idle_servers, "{pool:?} {servers:?}");

    // The test's own connections, each as it is now.
    let clients = show(&console, "SHOW CLIENTS").await;
    let me = find(&clients, "application_name", "busy-one").expect("busy client listed");
    assert_eq!(me["type"].as_deref(), Some("C"));
    assert_eq!(me["database"].as_deref(), Some("pl"));
    assert_eq!(me["user"].as_deref(), Some(USER));
    assert_eq!(me["state"].as_deref(), Some("active"));
    let link = me["link"]
        .clone()
        .filter(|l| !l.is_empty())
        .expect("linked to its server");
    let server = find(&servers, "ptr", &link).expect("the linked server is listed");
    assert_eq!(server["state"].as_deref(), Some("active"));
    assert_eq!(server["link"], me["ptr"]);
    assert_eq!(server["application_name"].as_deref(), Some("busy-one"));
    let other = find(&clients, "application_name", "idle-one").expect("idle client listed");
    assert_eq!(other["state"].as_deref(), Some("idle"));
    assert_eq!(other["link"].as_deref(), Some(""));
    let console_row = find(&clients, "application_name", "console").expect("the console itself");
    assert_eq!(console_row["database"].as_deref(), Some("pgbouncer"));

    // The transaction ends: its server connection goes back to the pool.
    busy.simple_query("COMMIT").await.unwrap();
    let none_active = || async {
        let pools = show(&console, "SHOW POOLS").await;
        find(&pools, "database", "pl").is_some_and(|p| num(p, "sv_active") == 0)
    };
    eventually(
        "busy's server connection back in the pool",
        PATIENCE,
        none_active,
    )
    .await;
    let pools = show(&console, "SHOW POOLS").await;
    let pool = find(&pools, "database", "pl").unwrap();
    assert_eq!(num(pool, "sv_active"), 0, "{pool:?}");
    assert!(num(pool, "sv_idle") >= 1, "{pool:?}");
    assert_eq!(num(pool, "cl_active"), 2, "{pool:?}");

    let dbs = show(&console, "SHOW DATABASES").await;
    let db = find(&dbs, "name", "pl").expect("the database");
    assert_eq!(num(db, "pool_size"), 2);
    assert_eq!(num(db, "current_client_connections"), 2);
    drop((idle, busy, console));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_averages_come_from_the_periodic_snapshots() {
    let pg = cluster_with_db("avg").await;
    let mut config = super::console::console_config(&pg, 2);
    config.proxy.stats_period = std::time::Duration::from_secs(2);
    let proxy = TestProxy::start(config).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "avg"))
        .await
        .unwrap();
    let console = admin(&proxy).await;
    for i in 0..20 {
        c.simple_query(&format!("SELECT {i}")).await.unwrap();
    }
    // The averages cover the time since the snapshot before last (one to two periods): after
    // 20 queries they are non-zero, and once the queries are two periods old they are zero.
    let averages = show(&console, "SHOW STATS_AVERAGES").await;
    let row = find(&averages, "database", "avg").expect("a row for avg");
    assert!(num(row, "query_count") > 0, "{row:?}");
    assert!(num(row, "query_time") > 0, "{row:?}");
    assert!(num(row, "bytes_received") > 0, "{row:?}");
    let mut quiet = None;
    for _ in 0..150 {
        let averages = show(&console, "SHOW STATS").await;
        let row = find(&averages, "database", "avg").unwrap().clone();
        if num(&row, "avg_query_count") == 0 {
            quiet = Some(row);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let quiet = quiet.expect("the averages fall to zero once the traffic stops");
    assert_eq!(
        num(&quiet, "avg_query_time"),
        0,
        "no queries, no time per query"
    );
    assert!(num(&quiet, "total_query_count") >= 20, "the totals stay");
    drop((c, console));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prepared_counts_the_statement_cache() {
    let pg = cluster_with_db("prep").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 1)).await;
    let c = connect(&proxy.conn_str(USER, PASSWORD, "prep"))
        .await
        .unwrap();
    let console = admin(&proxy).await;
    let stmt = c.prepare("SELECT $1::int").await.unwrap();
    for i in 0..3 {
        c.query_one(&stmt, &[&i]).await.unwrap();
    }
    let rows = show(&console, "SHOW PREPARED").await;
    let row = find(&rows, "database", "prep").expect("a row for the pool");
    assert_eq!(row["user"].as_deref(), Some(USER));
    assert_eq!(num(row, "client_parse_count"), 1, "{row:?}");
    assert_eq!(num(row, "bind_count"), 3, "{row:?}");
    // One server connection: the statement is prepared there once (a miss, one server
    // Parse), and every later use finds it there.
    assert_eq!(num(row, "misses"), 1, "{row:?}");
    assert_eq!(num(row, "server_parse_count"), 1, "{row:?}");
    assert!(num(row, "hits") >= 3, "each Bind found it: {row:?}");
    assert_eq!(num(row, "evictions"), 0, "{row:?}");
    drop((c, console));
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_leaves_its_server_connection_idle_and_unlinked() {
    let pg = cluster_with_db("lg").await;
    let proxy = TestProxy::start(super::console::console_config(&pg, 2)).await;
    // Transaction mode: the login borrows a server connection for its settings and gives it
    // back at once, before the client sends anything.
    let c = connect(&proxy.conn_str(USER, PASSWORD, "lg"))
        .await
        .unwrap();
    let console = admin(&proxy).await;
    let servers = show(&console, "SHOW SERVERS").await;
    let ours: Vec<_> = servers
        .iter()
        .filter(|s| s["database"].as_deref() == Some("lg"))
        .collect();
    assert_eq!(
        ours.len(),
        1,
        "the login's connection stays pooled: {servers:?}"
    );
    assert_eq!(ours[0]["state"].as_deref(), Some("idle"), "{servers:?}");
    assert_eq!(ours[0]["link"].as_deref(), Some(""), "{servers:?}");
    let pools = show(&console, "SHOW POOLS").await;
    let pool = find(&pools, "database", "lg").expect("the pool");
    assert_eq!(num(pool, "sv_active"), 0, "{pool:?}");
    assert_eq!(num(pool, "sv_idle"), 1, "{pool:?}");
    drop((c, console));
    proxy.shutdown().await;
}
