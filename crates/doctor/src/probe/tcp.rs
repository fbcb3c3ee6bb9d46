//! TCP connect to each resolved address, each attempt with its own timeout. The first
//! address that connects is kept for the session; the others are closed at once.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpStream;

use super::{attrs, ms, Recorder};
use crate::model::{Finding, Severity};
use crate::options::Options;

/// More addresses than this is a round-robin pool; a handful tells the story.
const MAX_ADDRESSES: usize = 4;

pub async fn connect(
    addrs: &[IpAddr],
    port: u16,
    timeout: Duration,
    opts: &Options,
    rec: &mut Recorder,
) -> Option<TcpStream> {
    let t = rec.begin("tcp", "connecting");
    let mut kept: Option<(TcpStream, SocketAddr)> = None;
    let mut tries = Vec::new();
    let mut failures = Vec::new();
    let mut lines = Vec::new();
    // What a client trying the addresses in order pays before it has a connection.
    let mut client_cost = 0.0;
    for ip in addrs.iter().take(MAX_ADDRESSES) {
        let sa = SocketAddr::new(*ip, port);
        let started = Instant::now();
        let r = tokio::time::timeout(timeout, TcpStream::connect(sa)).await;
        let took = ms(started.elapsed());
        if kept.is_none() {
            client_cost += took;
        }
        let outcome = match r {
            Err(_) => Err(format!("timed out after {timeout:?}")),
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(s)) => Ok(s),
        };
        match outcome {
            Ok(s) => {
                lines.push(format!("{sa} {took:.1} ms"));
                tries.push(json!({"address": sa.to_string(), "duration_ms": took, "ok": true}));
                if kept.is_none() {
                    // Small queries; Nagle would add delay to every round trip we time.
                    let _ = s.set_nodelay(true);
                    kept = Some((s, sa));
                }
            }
            Err(e) => {
                lines.push(format!("{sa} failed after {took:.1} ms: {e}"));
                tries.push(json!({"address": sa.to_string(), "duration_ms": took, "ok": false, "error": e}));
                failures.push(format!("{sa}: {e}"));
            }
        }
        // Once one address works we only keep testing the others briefly: they matter
        // to clients that try them first, but we have our connection.
        if kept.is_some() && tries.len() >= 2 {
            break;
        }
    }
    let ok = kept.is_some();
    let detail = lines.join("; ");
    let took = rec.end_with(
        t,
        Some(client_cost),
        ok,
        detail.clone(),
        attrs([("attempts", json!(tries))]),
    );
    match kept {
        None => {
            let err = failures.join("; ");
            rec.failed(
                "probe.tcp",
                format!("cannot connect to port {port}: {err}"),
                &err,
                took,
            );
            None
        }
        Some((s, sa)) => {
            if failures.is_empty() {
                rec.timed(
                    "probe.tcp",
                    &format!("TCP connect to {sa}"),
                    took,
                    &opts.thresholds,
                    &detail,
                );
            } else {
                rec.push(
                    Finding::new(
                        "probe.tcp",
                        Severity::Warning,
                        format!(
                            "{} of {} addresses do not accept connections",
                            failures.len(),
                            tries.len()
                        ),
                    )
                    .value("duration_ms", took)
                    .items(lines),
                );
            }
            Some(s)
        }
    }
}
