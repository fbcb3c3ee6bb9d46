//! The drift tests: hundreds of clients, each with its own value of one setting, run
//! hundreds of transactions each through a small pool and check every one.

use std::time::Instant;

use tokio::task::JoinSet;

use super::common::*;
use super::{column, txn_config, DB};

/// The full 200 clients x 200 transactions under CI or `DBWARDEN_HEAVY=1`; a quarter of
/// each otherwise, which keeps a debug-build run short on a laptop.
fn drift_size() -> (usize, usize) {
    let set = |k: &str| std::env::var(k).is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
    if set("CI") || set("DBWARDEN_HEAVY") {
        (200, 200)
    } else {
        (50, 50)
    }
}

/// One client of a drift test: the setting it wants, how it reads it back, what it expects.
struct Drifter {
    name: &'static str,
    value: String,
    /// A second observation that depends on the setting, as SQL giving text.
    probe: String,
    expect_probe: String,
}

/// Runs every drifter as its own client on a pool of `pool`, each running `txns`
/// transactions that check its setting and the probe; returns every mismatch seen.
async fn drift(proxy: &TestProxy, drifters: Vec<Drifter>, txns: usize) -> Vec<String> {
    let mut tasks = JoinSet::new();
    for (i, d) in drifters.into_iter().enumerate() {
        // Half ask in the startup packet, half with SET after login.
        let extra = if i % 2 == 0 {
            format!("options='-c {}={}'", d.name, d.value)
        } else {
            String::new()
        };
        let conn = format!("{} {extra}", proxy.conn_str(USER, PASSWORD, DB));
        tasks.spawn(async move {
            let c = connect(&conn).await.unwrap();
            if i % 2 == 1 {
                c.batch_execute(&format!("SET {} = '{}'", d.name, d.value))
                    .await
                    .unwrap();
            }
            let show = format!("SHOW {}; SELECT {}", d.name, d.probe);
            let prepared = c
                .prepare(&format!(
                    "SELECT current_setting('{}'), {}",
                    d.name, d.probe
                ))
                .await
                .unwrap();
            let mut bad = Vec::new();
            for n in 0..txns {
                // Three shapes of transaction: one simple query, an explicit transaction
                // over several messages, and a named statement prepared once.
                let seen: Result<Vec<String>, tokio_postgres::Error> = match n % 3 {
                    0 => column(&c, &show).await,
                    1 => {
                        async {
                            c.batch_execute("BEGIN").await?;
                            let mut rows = column(&c, &format!("SHOW {}", d.name)).await?;
                            rows.extend(column(&c, &format!("SELECT {}", d.probe)).await?);
                            c.batch_execute("COMMIT").await?;
                            Ok(rows)
                        }
                        .await
                    }
                    _ => c
                        .query_one(&prepared, &[])
                        .await
                        .map(|r| vec![r.get(0), r.get(1)]),
                };
                let want = [d.value.clone(), d.expect_probe.clone()];
                match seen {
                    Ok(rows) if rows == want => {}
                    other => bad.push(format!("client {i} txn {n}: want {want:?}, got {other:?}")),
                }
            }
            bad
        });
    }
    let mut bad = Vec::new();
    while let Some(r) = tasks.join_next().await {
        bad.extend(r.unwrap());
    }
    bad
}

fn assert_no_mismatch(bad: &[String], what: &str) {
    assert!(
        bad.is_empty(),
        "{} {what} mismatches, first ones:\n{}",
        bad.len(),
        bad.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timezone_never_drifts_between_clients() {
    let (clients, txns) = drift_size();
    let pg = cluster_with_db(DB).await;
    let proxy = TestProxy::start(txn_config(&pg, 8)).await;
    // Distinct zone names, spread over as many UTC offsets as possible so that a leaked
    // zone also shows in now()'s offset.
    let direct = connect(&pg.url(pg.superuser(), "postgres", "postgres"))
        .await
        .unwrap();
    let zones = direct
        .query(
            "SELECT name, extract(epoch FROM utc_offset)::int::text FROM (
               SELECT name, utc_offset,
                      row_number() OVER (PARTITION BY utc_offset ORDER BY name) AS rn
               FROM pg_timezone_names
               WHERE name LIKE '%/%' AND name NOT LIKE 'posix/%' AND name NOT LIKE 'Etc/%'
             ) z ORDER BY rn, utc_offset LIMIT $1",
            &[&(clients as i64)],
        )
        .await
        .unwrap();
    assert_eq!(zones.len(), clients);
    let drifters = zones
        .iter()
        .map(|z| Drifter {
            name: "TimeZone",
            value: z.get(0),
            probe: "extract(timezone FROM now())::int::text".into(),
            expect_probe: z.get(1),
        })
        .collect();
    let started = Instant::now();
    let bad = drift(&proxy, drifters, txns).await;
    println!(
        "{clients} clients x {txns} transactions in {:?}",
        started.elapsed()
    );
    assert_no_mismatch(&bad, "TimeZone");
    proxy.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_path_never_drifts_between_clients() {
    let (clients, txns) = drift_size();
    let pg = cluster_with_db(DB).await;
    // Every client's schema holds a table of the same name: a leaked search_path reads
    // another client's table (or none at all).
    let schemas = format!(
        "SET ROLE {USER}; DO $$ BEGIN FOR i IN 0..{} LOOP
           EXECUTE format('CREATE SCHEMA s%s; CREATE TABLE s%s.t AS SELECT %s AS v', i, i, i);
         END LOOP; END $$",
        clients - 1
    );
    pg.psql(DB, &schemas).unwrap();
    let proxy = TestProxy::start(txn_config(&pg, 8)).await;
    let drifters = (0..clients)
        .map(|i| Drifter {
            name: "search_path",
            value: format!("s{i}"),
            probe: "(SELECT v FROM t)::text".into(),
            expect_probe: i.to_string(),
        })
        .collect();
    let started = Instant::now();
    let bad = drift(&proxy, drifters, txns).await;
    println!(
        "{clients} clients x {txns} transactions in {:?}",
        started.elapsed()
    );
    assert_no_mismatch(&bad, "search_path");
    proxy.shutdown().await;
}
