//! The MySQL/MariaDB probe. DNS, TCP, the greeting and TLS are measured on our own
//! socket (the client library hides them); authentication and queries then go through
//! `mysql_async` on a second connection, whose connect time is the `auth` phase.
//! The first socket is closed after the handshake, which the server counts as one
//! aborted connect (subtracted again in `mysql.aborted`).

mod greeting;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, SslOpts};
use serde_json::json;

use super::{attrs, dns, ms, tcp, tls, Recorder};
use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::target::{Target, TlsMode};
pub use greeting::Greeting;

pub async fn run(target: &Target, opts: &Options, rec: &mut Recorder) {
    let Some((mut conn, greeting, loopback)) = connect(target, opts, rec).await else {
        return;
    };
    if crate::runner::checks_allowed(rec, "mysql") {
        let t = rec.begin("checks", "running MySQL checks");
        let ctx = crate::checks::mysql::Ctx {
            opts,
            loopback,
            greeting: &greeting,
        };
        crate::checks::mysql::run(&mut conn, &ctx, rec).await;
        rec.end(t, true, "MySQL checklist", Default::default());
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
}

async fn connect(
    target: &Target,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<(Conn, Greeting, bool)> {
    let addrs = dns::resolve(&target.host, opts, rec).await?;
    let tcp_timeout = target.connect_timeout.unwrap_or(opts.timeouts.connect);
    let mut stream = tcp::connect(&addrs, target.port, tcp_timeout, opts, rec).await?;
    let peer = stream.peer_addr().ok()?;
    let t = rec.begin("greeting", "reading the server greeting");
    let g = match greeting::read(&mut stream, opts.timeouts.auth).await {
        Ok(g) => g,
        Err(e) => {
            let took = rec.end(t, false, e.clone(), Default::default());
            rec.failed("probe.auth", e.clone(), &e, took);
            return None;
        }
    };
    rec.end(
        t,
        true,
        format!(
            "{}; default auth {}; TLS {}",
            g.server_version,
            g.auth_plugin,
            if g.offers_tls() {
                "offered"
            } else {
                "not offered"
            }
        ),
        attrs([
            ("server_version", json!(g.server_version)),
            ("auth_plugin", json!(g.auth_plugin)),
            ("tls_offered", json!(g.offers_tls())),
        ]),
    );
    let use_tls = probe_tls(stream, &g, target, opts, rec).await?;
    let conn = authenticate(target, opts, &g, peer.ip().to_string(), use_tls, rec).await?;
    Some((conn, g, peer.ip().is_loopback()))
}

/// Returns whether the real connection should use TLS, or `None` to stop.
async fn probe_tls(
    mut stream: tokio::net::TcpStream,
    g: &Greeting,
    target: &Target,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<bool> {
    if target.tls == TlsMode::Disable {
        rec.push(Finding::new(
            "probe.tls",
            Severity::Info,
            "TLS not attempted (ssl-mode=DISABLED): credentials and data travel in clear text",
        ));
        return Some(false);
    }
    if !g.offers_tls() {
        if target.tls.allows_plain() {
            rec.push(Finding::new(
                "probe.tls",
                Severity::Warning,
                "server does not offer TLS: credentials and data travel in clear text",
            ));
            return Some(false);
        }
        rec.failed(
            "probe.tls",
            format!(
                "server does not offer TLS but ssl-mode={} requires it",
                target.tls.as_str()
            ),
            "no CLIENT_SSL capability",
            0.0,
        );
        return None;
    }
    let t = rec.begin("tls", "TLS handshake");
    if let Err(e) = greeting::ssl_request(&mut stream).await {
        let took = rec.end(t, false, e.to_string(), Default::default());
        rec.failed(
            "probe.tls",
            format!("SSLRequest failed: {e}"),
            &e.to_string(),
            took,
        );
        return None;
    }
    match tls::handshake(stream, target, opts.timeouts.tls).await {
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
        Ok((_closed_on_drop, info)) => {
            let refusal = tls::refusal(&info, target.tls);
            let took = rec.end(
                t,
                refusal.is_none(),
                format!("{} {}", info.version, info.cipher),
                attrs([("tls", json!(info))]),
            );
            rec.push(tls::assess(
                &info,
                target.tls,
                target.tls_name(),
                took,
                &opts.thresholds,
            ));
            refusal.is_none().then_some(true)
        }
    }
}

async fn authenticate(
    target: &Target,
    opts: &Options,
    g: &Greeting,
    ip: String,
    use_tls: bool,
    rec: &mut Recorder,
) -> Option<Conn> {
    let t = rec.begin("auth", "connecting and authenticating");
    let ssl = use_tls.then(|| {
        let mut s = SslOpts::default()
            .with_danger_accept_invalid_certs(!target.tls.verifies_chain())
            .with_danger_skip_domain_validation(target.tls != TlsMode::VerifyFull);
        if let Some(ca) = &target.root_cert {
            s = s.with_root_certs(vec![ca.clone().into()]);
        }
        s
    });
    // The address the probe measured, so both connections reach the same server.
    let builder = OptsBuilder::default()
        .ip_or_hostname(ip)
        .tcp_port(target.port)
        .user(target.user.clone())
        .pass(target.password.as_ref().map(|p| p.expose().to_string()))
        .db_name(target.database.clone())
        .prefer_socket(false)
        .stmt_cache_size(0)
        .ssl_opts(ssl);
    let timeout = target.connect_timeout.unwrap_or(opts.timeouts.auth);
    let r = tokio::time::timeout(timeout, Conn::new(builder)).await;
    let mut conn = match r {
        Err(_) => {
            let err = format!("no answer within {timeout:?}");
            let took = rec.end(t, false, err.clone(), Default::default());
            rec.failed(
                "probe.auth",
                format!("connect and login stalled: {err}"),
                &err,
                took,
            );
            return None;
        }
        Ok(Err(e)) => {
            let err = e.to_string();
            let took = rec.end(t, false, err.clone(), Default::default());
            let title = if err.contains("1045") {
                "authentication failed: wrong user or password".to_string()
            } else {
                format!("login failed: {err}")
            };
            rec.failed("probe.auth", title, &err, took);
            return None;
        }
        Ok(Ok(c)) => c,
    };
    let took = t.elapsed_ms();
    let method: String = conn
        .query_first::<String, _>(
            "SELECT plugin FROM mysql.user WHERE CONCAT(user, '@', host) = CURRENT_USER()",
        )
        .await
        .ok()
        .flatten()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{} (server default; the account's plugin is not readable)",
                g.auth_plugin
            )
        });
    rec.end_with(
        t,
        Some(took),
        true,
        format!("{method}; full connect by the client library (TCP, TLS and login)"),
        attrs([("method", json!(method)), ("tls", json!(use_tls))]),
    );
    let limit = opts.thresholds.get("probe.auth.warn_ms");
    let f = if took > limit {
        Finding::new(
            "probe.auth",
            Severity::Warning,
            format!("connect and {method} login took {took:.1} ms (threshold {limit} ms)"),
        )
    } else {
        Finding::new(
            "probe.auth",
            Severity::Ok,
            format!("connected and logged in with {method} in {took:.1} ms"),
        )
    };
    rec.push(
        f.value("method", method.as_str())
            .value("duration_ms", took),
    );
    // Safety for what follows: read-only and bounded statements.
    let limit_stmt = if g.is_mariadb() {
        format!(
            "SET SESSION max_statement_time = {}",
            opts.timeouts.query.as_secs_f64()
        )
    } else {
        format!(
            "SET SESSION max_execution_time = {}",
            opts.timeouts.query.as_millis()
        )
    };
    let _ = conn.query_drop(limit_stmt).await;
    let _ = conn.query_drop("SET SESSION TRANSACTION READ ONLY").await;
    first_query(&mut conn, opts, rec).await?;
    Some(conn)
}

async fn first_query(conn: &mut Conn, opts: &Options, rec: &mut Recorder) -> Option<()> {
    let t = rec.begin("query", "first query");
    match tokio::time::timeout(opts.timeouts.query, conn.query_drop("SELECT 1")).await {
        Ok(Ok(())) => {
            let took = rec.end(t, true, "SELECT 1", Default::default());
            rec.timed(
                "probe.query",
                "first query",
                took,
                &opts.thresholds,
                "SELECT 1",
            );
        }
        Ok(Err(e)) => {
            let took = rec.end(t, false, e.to_string(), Default::default());
            rec.failed(
                "probe.query",
                format!("first query failed: {e}"),
                &e.to_string(),
                took,
            );
            return None;
        }
        Err(_) => {
            let took = rec.end(t, false, "timed out", Default::default());
            rec.failed(
                "probe.query",
                "first query timed out".into(),
                "timeout",
                took,
            );
            return None;
        }
    }
    if opts.samples > 0 {
        let t = rec.begin("round_trips", "round trips");
        let mut v = Vec::new();
        for _ in 0..opts.samples {
            let s = Instant::now();
            if !matches!(
                tokio::time::timeout(opts.timeouts.query, conn.ping()).await,
                Ok(Ok(()))
            ) {
                break;
            }
            v.push(ms(s.elapsed()));
        }
        super::pg::latency_finding(
            rec,
            t,
            v,
            "COM_PING",
            opts,
            "probe.round_trips",
            "probe.round_trips.p99_warn_ms",
        );
    }
    Some(())
}
