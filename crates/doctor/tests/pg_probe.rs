//! The layered probe against real PostgreSQL: the waterfall names the slow or failing
//! phase (a DNS stub that delays, a relay that stalls), TLS is inspected and judged,
//! the authentication method is reported.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{assert_finding, cluster, diagnose, options};
use dbwarden_doctor::{Options, Severity};
use dbwarden_testkit::pg::{HbaAuth, PgOptions};
use dbwarden_testkit::relay::Relay;
use tokio::net::UdpSocket;

/// A DNS server that answers every A query with 127.0.0.1 (and AAAA with no
/// records), each answer sent only after `delay`.
async fn slow_dns(delay: Duration) -> SocketAddr {
    let sock = std::sync::Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let query = buf[..n].to_vec();
            let sock = sock.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(reply) = answer(&query) {
                    let _ = sock.send_to(&reply, peer).await;
                }
            });
        }
    });
    addr
}

fn answer(q: &[u8]) -> Option<Vec<u8>> {
    // Header (12 bytes), then the question: labels up to a zero byte, type, class.
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += 1 + q[i] as usize;
    }
    let end = i + 5;
    let qtype = u16::from_be_bytes([*q.get(i + 1)?, *q.get(i + 2)?]);
    let is_a = qtype == 1;
    let mut r = Vec::with_capacity(end + 16);
    r.extend_from_slice(&q[0..2]);
    r.extend_from_slice(&[0x81, 0x80, 0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    r.extend_from_slice(&q[12..end]);
    if is_a {
        r.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_dns_is_named_in_the_waterfall() {
    let pg = cluster(PgOptions::default()).await;
    let dns = slow_dns(Duration::from_millis(700)).await;
    let mut opts = options(&[("probe.dns.warn_ms", 300.0)]);
    opts.dns_server = Some(dns);
    opts.filter.only = vec!["probe".into()];
    let url = format!(
        "postgres://postgres@db.doctor.test:{}/postgres?sslmode=disable",
        pg.port()
    );
    let report = diagnose(&url, &opts).await;
    assert_finding(&report, "probe.dns", Severity::Warning);
    assert_eq!(
        report.summary.slowest_phase.as_deref(),
        Some("dns"),
        "{report:#?}"
    );
    let dns_phase = report.phase("dns").unwrap();
    assert!(
        dns_phase.ok && dns_phase.duration_ms >= 600.0,
        "{dns_phase:?}"
    );
    assert!(
        dns_phase.detail.contains("A 127.0.0.1"),
        "{}",
        dns_phase.detail
    );
    // The connection went on to succeed through the stub's answer.
    assert!(report.phase("query").unwrap().ok);
    assert_eq!(report.summary.exit_code, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_relay_is_named_in_the_waterfall() {
    // SCRAM takes three round trips, so on a slow link authentication is clearly the
    // widest bar (a trust login takes one, like the first query).
    let pg = cluster(PgOptions {
        auth: HbaAuth::Scram,
        users: vec![("app".into(), "pw".into())],
        ..PgOptions::default()
    })
    .await;
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], pg.port())))
        .await
        .unwrap();
    relay.stall(true);
    let mut opts = options(&[]);
    opts.timeouts.tls = Duration::from_millis(800);
    opts.timeouts.auth = Duration::from_millis(800);
    let base = format!(
        "postgres://app:pw@127.0.0.1:{}/postgres",
        relay.addr().port()
    );

    // TCP connects (the relay accepts), then nothing comes back: with sslmode=prefer
    // the first thing that waits for the server is the SSLRequest.
    let report = diagnose(&format!("{base}?sslmode=prefer"), &opts).await;
    assert!(report.phase("tcp").unwrap().ok);
    assert_eq!(report.summary.failed_phase.as_deref(), Some("tls"));
    assert_finding(&report, "probe.tls", Severity::Critical);

    // Without TLS the startup message is what stalls.
    let report = diagnose(&format!("{base}?sslmode=disable"), &opts).await;
    assert_eq!(report.summary.failed_phase.as_deref(), Some("auth"));
    assert_finding(&report, "probe.auth", Severity::Critical);
    assert_eq!(report.summary.exit_code, 2);
    assert!(report.phase("query").is_none());

    // A slow link (every chunk delayed) shows as slow authentication: its several
    // round trips make it the widest bar.
    relay.stall(false);
    relay.set_delay(Duration::from_millis(100));
    let opts = options(&[("probe.auth.warn_ms", 400.0)]);
    let report = diagnose(&format!("{base}?sslmode=disable"), &opts).await;
    assert_finding(&report, "probe.auth", Severity::Warning);
    assert_eq!(report.summary.slowest_phase.as_deref(), Some("auth"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_inspected_and_verification_is_enforced() {
    let certs = dbwarden_testkit::tls::test_certs(&["localhost", "127.0.0.1"]);
    let pg = cluster(PgOptions {
        auth: HbaAuth::Scram,
        users: vec![("app".into(), "pw".into())],
        tls: Some((certs.server_cert.clone(), certs.server_key.clone())),
        ..PgOptions::default()
    })
    .await;
    let opts = options(&[]);
    let base = pg.url("app", "pw", "postgres");

    let url = format!(
        "{base}?sslmode=verify-full&sslrootcert={}",
        certs.ca_cert.display()
    );
    let report = diagnose(&url, &opts).await;
    assert_finding(&report, "probe.tls", Severity::Ok);
    let tls = report.phase("tls").unwrap();
    assert!(tls.ok);
    assert_eq!(tls.attrs["tls"]["version"], "TLSv1.3");
    assert_eq!(tls.attrs["tls"]["trusted"], true);
    assert_eq!(tls.attrs["tls"]["name_match"], true);
    assert!(tls.attrs["tls"]["chain"][0]["days_left"].as_f64().unwrap() > 1.0);
    assert_eq!(
        report.phase("auth").unwrap().attrs["method"],
        "scram-sha-256"
    );
    assert_finding(&report, "pg.tls", Severity::Ok);

    // The system roots do not know the test CA: verify-full must stop before any
    // credentials are sent.
    let report = diagnose(&format!("{base}?sslmode=verify-full"), &opts).await;
    assert_finding(&report, "probe.tls", Severity::Critical);
    assert_eq!(report.summary.failed_phase.as_deref(), Some("tls"));
    assert!(report.phase("auth").is_none());

    // require encrypts without verifying: the doctor connects and says so.
    let report = diagnose(&format!("{base}?sslmode=require"), &opts).await;
    assert_finding(&report, "probe.tls", Severity::Info);
    assert!(report.phase("query").unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_method_and_failures_are_reported() {
    let pg = cluster(PgOptions {
        auth: HbaAuth::Md5,
        users: vec![("app".into(), "right".into())],
        ..PgOptions::default()
    })
    .await;
    let opts = Options {
        samples: 3,
        ..options(&[])
    };
    let report = diagnose(
        &format!("{}?sslmode=disable", pg.url("app", "right", "postgres")),
        &opts,
    )
    .await;
    assert_eq!(report.phase("auth").unwrap().attrs["method"], "md5");
    assert_finding(&report, "probe.auth", Severity::Info);
    let rtt = report.finding("probe.round_trips").unwrap();
    assert_eq!(rtt.evidence.values["samples"], 3);

    let report = diagnose(
        &format!("{}?sslmode=disable", pg.url("app", "wrong", "postgres")),
        &opts,
    )
    .await;
    assert_finding(&report, "probe.auth", Severity::Critical);
    let f = report.finding("probe.auth").unwrap();
    assert!(f.title.contains("wrong password"), "{}", f.title);
    assert!(f.evidence.values["error"]
        .as_str()
        .unwrap()
        .contains("28P01"));
    assert_eq!(report.summary.failed_phase.as_deref(), Some("auth"));
    // The password never appears in any output.
    let json = dbwarden_doctor::render::json::render(&report).unwrap();
    assert!(!json.contains("wrong") || !json.contains(":wrong@"));
    assert!(json.contains("app:***@"));
}
