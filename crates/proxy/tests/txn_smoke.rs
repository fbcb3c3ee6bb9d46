//! Transaction pooling basics: many clients share few server connections, and each one's
//! settings and named statements follow it from connection to connection.

mod common;

use common::*;
use dbwarden_config::PoolMode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_and_statements_follow_each_client() {
    let pg = cluster_with_db("txn").await;
    let mut config = upstream_config(&pg, 2);
    config.pool.mode = PoolMode::Transaction;
    let proxy = TestProxy::start(config).await;
    let zones = [
        "UTC",
        "Asia/Tokyo",
        "America/New_York",
        "Europe/Paris",
        "Australia/Sydney",
        "Asia/Kolkata",
    ];
    let mut tasks = Vec::new();
    for (i, zone) in zones.iter().enumerate() {
        let base = proxy.conn_str(USER, PASSWORD, "txn");
        let zone = zone.to_string();
        tasks.push(tokio::spawn(async move {
            // Half the clients ask in the startup packet, half with SET.
            let conn = if i % 2 == 0 {
                format!("{base} options='-c TimeZone={zone}'")
            } else {
                base
            };
            let c = connect(&conn).await.unwrap();
            if i % 2 == 1 {
                c.batch_execute(&format!("SET TimeZone = '{zone}'"))
                    .await
                    .unwrap();
            }
            let stmt = c
                .prepare("SELECT current_setting('TimeZone'), $1::int")
                .await
                .unwrap();
            let mut pids = std::collections::HashSet::new();
            for n in 0..50 {
                let row = c.query_one(&stmt, &[&n]).await.unwrap();
                let tz: String = row.get(0);
                assert_eq!(tz, zone, "client {i} saw another client's TimeZone");
                let back: i32 = row.get(1);
                assert_eq!(back, n);
                let pid: i32 = c
                    .query_one("SELECT pg_backend_pid()", &[])
                    .await
                    .unwrap()
                    .get(0);
                pids.insert(pid);
            }
            pids.len()
        }));
    }
    let mut moved = 0;
    for t in tasks {
        if t.await.unwrap() > 1 {
            moved += 1;
        }
    }
    assert!(
        moved > 0,
        "with 6 clients on 2 connections some client must have moved"
    );
    let n: i64 = pg
        .psql("txn", "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbwarden' OR usename = 'app'")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(n <= 2, "{n} server connections for a pool of 2");
    proxy.shutdown().await;
}
