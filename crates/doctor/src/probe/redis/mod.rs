//! The Redis probe: DNS, TCP, TLS (rediss://, no negotiation request), AUTH or HELLO,
//! the first PING, then PINGs for the latency distribution; the checklist follows on
//! the same connection.

pub mod resp;

use std::time::Instant;

use serde_json::json;

use super::{attrs, dns, ms, tcp, tls, Io, Recorder};
use crate::model::{Finding, Severity};
use crate::options::Options;
use crate::target::{Target, TlsMode};
use resp::{RedisConn, RedisError};

pub async fn run(target: &Target, opts: &Options, rec: &mut Recorder) {
    let Some(mut conn) = connect(target, opts, rec).await else {
        return;
    };
    if crate::runner::checks_allowed(rec, "redis") {
        let t = rec.begin("checks", "running Redis checks");
        crate::checks::redis::run(&mut conn, opts, rec).await;
        rec.end(t, true, "Redis checklist", Default::default());
    }
    conn.close().await;
}

async fn connect(target: &Target, opts: &Options, rec: &mut Recorder) -> Option<RedisConn> {
    let addrs = dns::resolve(&target.host, opts, rec).await?;
    let tcp_timeout = target.connect_timeout.unwrap_or(opts.timeouts.connect);
    let stream = tcp::connect(&addrs, target.port, tcp_timeout, opts, rec).await?;
    let io: Box<dyn Io> = if target.tls >= TlsMode::Require {
        let t = rec.begin("tls", "TLS handshake");
        match tls::handshake(stream, target, opts.timeouts.tls).await {
            Err(e) => {
                let took = rec.end(
                    t,
                    false,
                    format!("handshake failed: {e}"),
                    Default::default(),
                );
                rec.failed("probe.tls", format!("TLS handshake failed: {e}"), &e, took);
                return None;
            }
            Ok((s, info)) => {
                let refusal = tls::refusal(&info, target.tls);
                let detail = format!("{} {}", info.version, info.cipher);
                let took = rec.end(t, refusal.is_none(), detail, attrs([("tls", json!(info))]));
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
                Box::new(s)
            }
        }
    } else {
        rec.push(Finding::new(
            "probe.tls",
            Severity::Info,
            "plain redis:// (no TLS): commands and AUTH travel in clear text",
        ));
        Box::new(stream)
    };
    let mut conn = RedisConn::new(io, opts.timeouts.query);
    authenticate(&mut conn, target, opts, rec).await?;
    let t = rec.begin("query", "first PING");
    match conn.cmd(&["PING"]).await {
        Ok(_) => {
            let took = rec.end(t, true, "PING", Default::default());
            rec.timed("probe.query", "first PING", took, &opts.thresholds, "PING");
        }
        Err(e) => {
            let took = rec.end(t, false, e.to_string(), Default::default());
            rec.failed(
                "probe.query",
                format!("PING failed: {e}"),
                &e.to_string(),
                took,
            );
            return None;
        }
    }
    pings(&mut conn, opts, rec).await;
    Some(conn)
}

async fn authenticate(
    conn: &mut RedisConn,
    target: &Target,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<()> {
    let t = rec.begin("auth", "authenticating");
    let timeout = target.connect_timeout.unwrap_or(opts.timeouts.auth);
    let r = tokio::time::timeout(timeout, auth_steps(conn, target)).await;
    let r = match r {
        Err(_) => Err((format!("no answer within {timeout:?}"), "unknown")),
        Ok(r) => r,
    };
    match r {
        Ok((method, version)) => {
            let took = rec.end(
                t,
                true,
                format!("{method}; redis {version}"),
                attrs([
                    ("method", json!(method)),
                    ("server_version", json!(version)),
                ]),
            );
            let limit = opts.thresholds.get("probe.auth.warn_ms");
            let f = if took > limit {
                Finding::new(
                    "probe.auth",
                    Severity::Warning,
                    format!("{method} took {took:.1} ms (threshold {limit} ms)"),
                )
            } else {
                Finding::new(
                    "probe.auth",
                    Severity::Ok,
                    format!("{method} in {took:.1} ms"),
                )
            };
            rec.push(f.value("method", method).value("duration_ms", took));
            Some(())
        }
        Err((err, method)) => {
            let took = rec.end(
                t,
                false,
                format!("{method}: {err}"),
                attrs([("method", json!(method))]),
            );
            let title = if err.contains("NOAUTH") {
                "server requires a password and none was given (URL or REDISCLI_AUTH)".to_string()
            } else if err.contains("WRONGPASS") || err.contains("invalid password") {
                format!("authentication failed ({method}): wrong user or password")
            } else {
                format!("startup or authentication failed: {err}")
            };
            rec.failed("probe.auth", title, &err, took);
            None
        }
    }
}

/// HELLO 2 (Redis 6+) authenticates and names the server in one round trip; older
/// servers only know AUTH. Returns the method used and the server version.
async fn auth_steps(
    conn: &mut RedisConn,
    target: &Target,
) -> Result<(&'static str, String), (String, &'static str)> {
    let user = target.user.clone().unwrap_or_else(|| "default".into());
    let mut hello: Vec<String> = vec!["HELLO".into(), "2".into()];
    let mut method = "none (no password)";
    if let Some(pw) = &target.password {
        hello.extend(["AUTH".into(), user.clone(), pw.expose().to_string()]);
        method = if target.user.is_some() {
            "HELLO AUTH (ACL user)"
        } else {
            "HELLO AUTH (default user)"
        };
    }
    let replies = conn
        .pipeline(&[hello])
        .await
        .map_err(|e| (e.to_string(), method))?;
    let version = match replies.into_iter().next() {
        Some(resp::Reply::Error(e)) if e.to_ascii_lowercase().contains("unknown command") => {
            // Redis < 6: AUTH with the password alone.
            method = "AUTH (legacy password)";
            if let Some(pw) = &target.password {
                conn.cmd(&["AUTH", pw.expose()])
                    .await
                    .map_err(|e| (e.to_string(), method))?;
            } else {
                method = "none (no password)";
            }
            let info = conn
                .cmd(&["INFO", "server"])
                .await
                .map_err(|e| (e.to_string(), method))?;
            crate::checks::redis::info_map(&info.text())
                .get("redis_version")
                .cloned()
                .unwrap_or_default()
        }
        Some(resp::Reply::Error(e)) => return Err((e, method)),
        Some(r) => {
            let items = r.items();
            items
                .chunks(2)
                .find(|kv| kv[0].text() == "version")
                .and_then(|kv| kv.get(1))
                .map(|v| v.text())
                .unwrap_or_default()
        }
        None => return Err(("no reply to HELLO".into(), method)),
    };
    if let Some(db) = &target.database {
        if db != "0" {
            conn.cmd(&["SELECT", db])
                .await
                .map_err(|e: RedisError| (e.to_string(), method))?;
        }
    }
    Ok((method, version))
}

async fn pings(conn: &mut RedisConn, opts: &Options, rec: &mut Recorder) {
    if opts.samples == 0 {
        return;
    }
    let t = rec.begin("round_trips", &format!("{} PINGs", opts.samples));
    let mut v = Vec::with_capacity(opts.samples as usize);
    for _ in 0..opts.samples {
        let s = Instant::now();
        if conn.cmd(&["PING"]).await.is_err() {
            break;
        }
        v.push(ms(s.elapsed()));
    }
    super::pg::latency_finding(
        rec,
        t,
        v,
        "PING",
        opts,
        "redis.latency",
        "redis.latency.p99_warn_ms",
    );
}
