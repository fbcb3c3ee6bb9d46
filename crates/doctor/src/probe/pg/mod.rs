//! The PostgreSQL probe: SSLRequest and TLS, startup and authentication, the first
//! query and the round trips, all on the one connection the checks then use.

mod auth;
pub mod conn;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use postgres_protocol::message::frontend;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub use conn::{PgConn, PgError, Rows};

use super::stats::Latency;
use super::{attrs, dns, ms, tcp, tls, Io, Recorder};
use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::target::{Target, TlsMode};

/// Connects and measures every phase; `None` when a phase failed (already recorded).
pub async fn connect(target: &Target, opts: &Options, rec: &mut Recorder) -> Option<PgConn> {
    let addrs = dns::resolve(&target.host, opts, rec).await?;
    let tcp_timeout = target.connect_timeout.unwrap_or(opts.timeouts.connect);
    let stream = tcp::connect(&addrs, target.port, tcp_timeout, opts, rec).await?;
    let peer = stream.peer_addr().ok();
    let io = negotiate_tls(stream, target, opts, rec).await?;
    let mut conn = PgConn::new(io);
    conn.peer = peer;
    auth::authenticate(&mut conn, target, opts, rec).await?;
    first_query(&mut conn, opts, rec).await?;
    round_trips(&mut conn, opts, rec).await;
    // Safety for the checks that follow: read-only, and every statement bounded.
    let setup = format!(
        "SET default_transaction_read_only = on; SET statement_timeout = {}; SET lock_timeout = 1000; SET idle_in_transaction_session_timeout = 10000",
        opts.timeouts.query.as_millis()
    );
    if let Err(e) = conn
        .query(&setup, opts.timeouts.query + Duration::from_secs(1))
        .await
    {
        tracing::warn!(error = %e, "could not set session safety settings");
        return None;
    }
    Some(conn)
}

async fn negotiate_tls(
    mut stream: TcpStream,
    target: &Target,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<Box<dyn Io>> {
    if target.tls == TlsMode::Disable {
        rec.push(Finding::new(
            "probe.tls",
            Severity::Info,
            "TLS not attempted (sslmode=disable): credentials and data travel in clear text",
        ));
        return Some(Box::new(stream));
    }
    let t = rec.begin("tls", "negotiating TLS");
    let timeout = opts.timeouts.tls;
    let mut buf = BytesMut::new();
    frontend::ssl_request(&mut buf);
    let answer = tokio::time::timeout(timeout, async {
        stream.write_all(&buf).await?;
        stream.read_u8().await
    })
    .await;
    let negotiation_ms = t.elapsed_ms();
    let byte = match answer {
        Err(_) => {
            let err = format!("no answer to SSLRequest within {timeout:?}");
            let took = rec.end(t, false, err.clone(), Default::default());
            rec.failed(
                "probe.tls",
                "TLS negotiation stalled: the server never answered the SSLRequest".into(),
                &err,
                took,
            );
            return None;
        }
        Ok(Err(e)) => {
            let err = e.to_string();
            let took = rec.end(t, false, err.clone(), Default::default());
            rec.failed(
                "probe.tls",
                format!("TLS negotiation failed: {err}"),
                &err,
                took,
            );
            return None;
        }
        Ok(Ok(b)) => b,
    };
    if byte != b'S' {
        let detail = format!(
            "server refused TLS (answered {:?} to SSLRequest)",
            byte as char
        );
        let ok = target.tls.allows_plain();
        let took = rec.end(
            t,
            ok,
            detail.clone(),
            attrs([("negotiation_ms", json!(negotiation_ms))]),
        );
        if ok {
            rec.push(
                Finding::new(
                    "probe.tls",
                    Severity::Warning,
                    "server does not offer TLS: credentials and data travel in clear text",
                )
                .value("duration_ms", took),
            );
            return Some(Box::new(stream));
        }
        rec.failed(
            "probe.tls",
            format!(
                "server does not offer TLS but sslmode={} requires it",
                target.tls.as_str()
            ),
            &detail,
            took,
        );
        return None;
    }
    let remaining = timeout.saturating_sub(Duration::from_secs_f64(negotiation_ms / 1000.0));
    match tls::handshake(stream, target, remaining).await {
        Err(e) => {
            let took = rec.end(
                t,
                false,
                format!("handshake failed: {e}"),
                Default::default(),
            );
            rec.failed("probe.tls", format!("TLS handshake failed: {e}"), &e, took);
            None
        }
        Ok((s, info)) => {
            let handshake_ms = t.elapsed_ms() - negotiation_ms;
            let refusal = tls::refusal(&info, target.tls);
            let detail = format!(
                "{} {}; {}{}",
                info.version,
                info.cipher,
                if info.trusted {
                    "verified"
                } else {
                    "not verified"
                },
                info.chain
                    .first()
                    .map(|c| format!("; expires {}", c.not_after))
                    .unwrap_or_default()
            );
            let took = rec.end(
                t,
                refusal.is_none(),
                detail,
                attrs([
                    ("negotiation_ms", json!(negotiation_ms)),
                    ("handshake_ms", json!(handshake_ms)),
                    ("tls", json!(info)),
                ]),
            );
            rec.push(tls::assess(
                &info,
                target.tls,
                target.tls_name(),
                took,
                &opts.thresholds,
            ));
            if refusal.is_some() {
                return None;
            }
            Some(Box::new(s))
        }
    }
}

async fn first_query(conn: &mut PgConn, opts: &Options, rec: &mut Recorder) -> Option<()> {
    let t = rec.begin("query", "running the first query");
    let q = "SELECT 1";
    match conn.query(q, opts.timeouts.query).await {
        Ok(_) => {
            let took = rec.end(t, true, q, Default::default());
            rec.timed("probe.query", "first query", took, &opts.thresholds, q);
            Some(())
        }
        Err(e) => {
            let took = rec.end(t, false, e.to_string(), Default::default());
            rec.failed(
                "probe.query",
                format!("first query failed: {e}"),
                &e.to_string(),
                took,
            );
            None
        }
    }
}

async fn round_trips(conn: &mut PgConn, opts: &Options, rec: &mut Recorder) {
    if opts.samples == 0 {
        return;
    }
    let t = rec.begin(
        "round_trips",
        &format!("measuring {} round trips", opts.samples),
    );
    let mut v = Vec::with_capacity(opts.samples as usize);
    for _ in 0..opts.samples {
        let s = Instant::now();
        if conn.query("SELECT 1", opts.timeouts.query).await.is_err() {
            break;
        }
        v.push(ms(s.elapsed()));
    }
    latency_finding(
        rec,
        t,
        v,
        "SELECT 1",
        opts,
        "probe.round_trips",
        "probe.round_trips.p99_warn_ms",
    );
}

/// Records the `round_trips` phase and the `probe.round_trips` finding.
pub(crate) fn latency_finding(
    rec: &mut Recorder,
    t: super::Timer,
    v: Vec<f64>,
    what: &str,
    opts: &Options,
    id: &str,
    threshold: &str,
) {
    let Some(l) = Latency::from_samples(v) else {
        rec.end(t, false, "no round trip completed", Default::default());
        return;
    };
    rec.end(t, true, l.line(), attrs([("latency", json!(l))]));
    let limit = opts.thresholds.get(threshold);
    let sev = if l.p99_ms > limit {
        Severity::Warning
    } else {
        Severity::Ok
    };
    rec.push(
        Finding::new(id, sev, format!("{what}: {}", l.line()))
            .value("min_ms", l.min_ms)
            .value("p50_ms", l.p50_ms)
            .value("p99_ms", l.p99_ms)
            .value("max_ms", l.max_ms)
            .value("samples", l.samples)
            .value("threshold_p99_ms", limit)
            .query(what),
    );
}
