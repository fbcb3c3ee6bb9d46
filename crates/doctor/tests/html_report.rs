//! The HTML report opens in headless Chromium and shows the waterfall chart.
//!
//! With `DOCTOR_DOCS_DIR` set, the run also saves the screenshot and the terminal
//! report there (that is how docs/img/doctor-waterfall.png is made).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cluster, diagnose, options};
use dbwarden_testkit::pg::{HbaAuth, PgOptions};
use dbwarden_testkit::relay::Relay;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

fn headless(bin: &Path, profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_report_shows_the_waterfall_in_chromium() {
    let Some(bin) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is required in CI (apt-get install -y chromium)");
        }
        println!(
            "SKIPPED: chromium is not installed (apt-get install -y chromium); CI runs this test"
        );
        return;
    };
    let certs = dbwarden_testkit::tls::test_certs(&["localhost", "127.0.0.1"]);
    let pg = cluster(PgOptions {
        auth: HbaAuth::Scram,
        users: vec![("app".into(), "pw".into())],
        tls: Some((certs.server_cert.clone(), certs.server_key.clone())),
        ..PgOptions::default()
    })
    .await;
    // A little latency on the path, so each phase's bar has a visible width.
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], pg.port())))
        .await
        .unwrap();
    relay.set_delay(Duration::from_millis(4));
    let url = format!(
        "postgres://app:pw@127.0.0.1:{}/postgres?sslmode=verify-ca&sslrootcert={}",
        relay.addr().port(),
        certs.ca_cert.display()
    );
    let report = diagnose(&url, &options(&[])).await;
    assert!(report.phase("query").is_some_and(|p| p.ok), "{report:#?}");

    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("report.html");
    std::fs::write(&html_path, dbwarden_doctor::render::html::render(&report)).unwrap();
    let file_url = format!("file://{}", html_path.display());

    let dom = headless(
        &bin,
        &dir.path().join("profile-dom"),
        &["--dump-dom".into()],
        &file_url,
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<svg id=\"waterfall\""),
        "no chart in the rendered DOM:\n{dom}"
    );
    for phase in ["dns", "tcp", "tls", "auth", "query"] {
        assert!(
            dom.contains(&format!("class=\"bar\" data-phase=\"{phase}\"")),
            "no bar for {phase} in the rendered DOM"
        );
    }

    let png = dir.path().join("waterfall.png");
    let shot = headless(
        &bin,
        &dir.path().join("profile-shot"),
        &[format!("--screenshot={}", png.display())],
        &file_url,
    );
    let bytes = std::fs::read(&png).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}",
            String::from_utf8_lossy(&shot.stderr)
        )
    });
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot is not a real image"
    );

    if let Some(docs) = std::env::var_os("DOCTOR_DOCS_DIR") {
        let docs = PathBuf::from(docs);
        std::fs::copy(&png, docs.join("doctor-waterfall.png")).unwrap();
        std::fs::write(
            docs.join("doctor-report.txt"),
            dbwarden_doctor::render::text::render(&report, false),
        )
        .unwrap();
        std::fs::write(
            docs.join("doctor-report.html"),
            dbwarden_doctor::render::html::render(&report),
        )
        .unwrap();
    }
}
