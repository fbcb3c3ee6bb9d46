//! The dashboard page in headless Chromium: it renders the pools of a running proxy, and its
//! numbers move when queries run through the proxy between two loads.
//!
//! With `DBWARDEN_DOCS_DIR` set, the test first runs a minute of mixed load and saves the
//! screenshot there as `dashboard.png` (that is how docs/img/dashboard.png is made).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::client::Admin;
use super::*;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = std::process::Command::new("which")
                .arg(name)
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// Runs headless Chromium on `url` (asynchronously: the proxy it looks at runs in this
/// process, on this runtime).
async fn headless(
    bin: &Path,
    profile: &Path,
    size: Option<&str>,
    extra: &[String],
    url: &str,
) -> String {
    let run = tokio::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Enough virtual time for the first fetch and a few refreshes.
            "--virtual-time-budget=4000",
        ])
        .arg(format!("--window-size={}", size.unwrap_or("1280,1000")))
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium did not finish within 90 s")
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `data-v` of number `key` in the card of `pool`.
fn shown(dom: &str, pool: &str, key: &str) -> f64 {
    let card = dom
        .find(&format!("data-pool=\"{pool}\""))
        .unwrap_or_else(|| panic!("no card for {pool} in the rendered page:\n{dom}"));
    let card = &dom[card..];
    let card = &card[..card[1..].find("data-pool=").map_or(card.len(), |i| i + 1)];
    let marker = format!("data-k=\"{key}\" data-v=\"");
    let at = card
        .find(&marker)
        .unwrap_or_else(|| panic!("no {key} in the card of {pool}:\n{card}"));
    let rest = &card[at + marker.len()..];
    rest[..rest.find('"').unwrap()].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_renders_the_pools_and_its_numbers_move_under_load() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is required in CI (apt-get install -y chromium)");
        }
        println!("SKIPPED: chromium is not installed (apt-get install -y chromium)");
        return;
    };
    let docs = std::env::var_os("DBWARDEN_DOCS_DIR").map(PathBuf::from);
    let pg = cluster_with_db("shop").await;
    pg.psql("postgres", &format!("CREATE DATABASE reports OWNER {USER}"))
        .unwrap();
    let admin = Admin::start(txn_config(&pg, 4)).await;
    let url = format!("http://{}/", admin.http);
    let dir = tempfile::tempdir().unwrap();
    let shop = connect(&admin.proxy().conn_str(USER, PASSWORD, "shop"))
        .await
        .unwrap();
    shop.simple_query("SELECT 1").await.unwrap();
    let reports = connect(&admin.proxy().conn_str(USER, PASSWORD, "reports"))
        .await
        .unwrap();
    reports.simple_query("SELECT 1").await.unwrap();

    let first = headless(
        &bin,
        &dir.path().join("p1"),
        None,
        &["--dump-dom".into()],
        &url,
    )
    .await;
    let pool = format!("shop/{USER}");
    assert!(
        first.contains(&format!("data-pool=\"reports/{USER}\"")),
        "{first}"
    );
    let queries_before = shown(&first, &pool, "queries");
    assert_eq!(shown(&first, &pool, "clients_active"), 0.0);
    assert!(first.contains("<polyline"), "no charts drawn:\n{first}");

    // Load between the two looks: queries, and a client holding a transaction open.
    for _ in 0..200 {
        shop.simple_query("SELECT 1").await.unwrap();
    }
    shop.simple_query("BEGIN").await.unwrap();
    let second = headless(
        &bin,
        &dir.path().join("p2"),
        None,
        &["--dump-dom".into()],
        &url,
    )
    .await;
    let queries_after = shown(&second, &pool, "queries");
    assert!(
        queries_after >= queries_before + 200.0,
        "queries shown {queries_before} then {queries_after}"
    );
    assert_eq!(shown(&second, &pool, "clients_active"), 1.0);
    assert_eq!(shown(&second, &pool, "servers_active"), 1.0);

    let png = dir.path().join("dashboard.png");
    headless(
        &bin,
        &dir.path().join("p3"),
        None,
        &[format!("--screenshot={}", png.display())],
        &url,
    )
    .await;
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot is not a real image"
    );
    shop.simple_query("COMMIT").await.unwrap();

    if let Some(docs) = docs {
        // The picture for the README: taken while a minute and a half of load is running.
        let load = tokio::spawn(mixed_load(
            admin.proxy().conn_str(USER, PASSWORD, "shop"),
            admin.proxy().conn_str(USER, PASSWORD, "reports"),
            Duration::from_secs(100),
        ));
        tokio::time::sleep(Duration::from_secs(90)).await;
        let shot = docs.join("dashboard.png");
        headless(
            &bin,
            &dir.path().join("p4"),
            Some("1280,640"),
            &[format!("--screenshot={}", shot.display())],
            &url,
        )
        .await;
        load.await.unwrap();
    }
}

/// For the screenshot: a while of traffic whose shape shows on the charts. Ten clients
/// share four server connections, so some wait; the load rises and falls.
async fn mixed_load(shop: String, reports: String, how_long: Duration) {
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..10u64 {
        let (db, conn) = if i < 7 {
            ("shop", shop.clone())
        } else {
            ("reports", reports.clone())
        };
        tasks.spawn(async move {
            let c = connect(&conn).await.unwrap();
            while start.elapsed() < how_long {
                let phase = (start.elapsed().as_secs() / 10 + i) % 4;
                let sleep_ms = if db == "reports" {
                    20 + 5 * phase
                } else {
                    phase * 2
                };
                let sql = format!("SELECT pg_sleep({})", sleep_ms as f64 / 1000.0);
                c.simple_query(&sql).await.unwrap();
                if phase == 0 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}
