//! DNS: A and AAAA looked up in parallel and timed separately, because the classic
//! slow connect is an AAAA query that times out while the A answer came back at once.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use serde_json::json;

use super::{attrs, ms, Recorder};
use crate::model::{Finding, Severity};
use crate::options::Options;

struct Family {
    rtype: &'static str,
    took_ms: f64,
    result: Result<Vec<IpAddr>, String>,
}

fn resolver(opts: &Options, strategy: LookupIpStrategy) -> Result<TokioResolver, String> {
    let (config, mut ropts) = match opts.dns_server {
        Some(addr) => {
            let mut ropts = ResolverOpts::default();
            // The user asked about this server: do not answer from /etc/hosts.
            ropts.use_hosts_file = ResolveHosts::Never;
            let group = NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true);
            (ResolverConfig::from_parts(None, vec![], group), ropts)
        }
        None => hickory_resolver::system_conf::read_system_conf().map_err(|e| e.to_string())?,
    };
    ropts.ip_strategy = strategy;
    ropts.timeout = opts.timeouts.dns;
    // One attempt: a retry would hide the very delay we are measuring.
    ropts.attempts = 1;
    ropts.cache_size = 0;
    Ok(
        TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(ropts)
            .build(),
    )
}

async fn lookup(
    host: &str,
    opts: &Options,
    strategy: LookupIpStrategy,
    rtype: &'static str,
) -> Family {
    let started = Instant::now();
    let result = match resolver(opts, strategy) {
        Err(e) => Err(e),
        Ok(r) => match tokio::time::timeout(opts.timeouts.dns, r.lookup_ip(host)).await {
            Err(_) => Err(format!("timed out after {:?}", opts.timeouts.dns)),
            Ok(Ok(l)) => Ok(l.iter().collect()),
            Ok(Err(e)) if e.is_no_records_found() && !e.is_nx_domain() => Ok(vec![]),
            Ok(Err(e)) => Err(e.to_string()),
        },
    };
    Family {
        rtype,
        took_ms: ms(started.elapsed()),
        result,
    }
}

/// Resolves `host`; records the `dns` phase and the `probe.dns` finding. Returns the
/// addresses to try, IPv4 first.
pub async fn resolve(host: &str, opts: &Options, rec: &mut Recorder) -> Option<Vec<IpAddr>> {
    let t = rec.begin("dns", &format!("resolving {host}"));
    if let Ok(ip) = host.parse::<IpAddr>() {
        let took = rec.end(
            t,
            true,
            format!("{ip} (address literal, no lookup)"),
            Default::default(),
        );
        rec.push(
            Finding::new("probe.dns", Severity::Ok, "address literal, no DNS lookup")
                .value("duration_ms", took),
        );
        return Some(vec![ip]);
    }
    let (a, aaaa) = tokio::join!(
        lookup(host, opts, LookupIpStrategy::Ipv4Only, "A"),
        lookup(host, opts, LookupIpStrategy::Ipv6Only, "AAAA"),
    );
    let server = opts
        .dns_server
        .map(|s: SocketAddr| s.to_string())
        .unwrap_or_else(|| "system resolver".into());
    let mut addrs = Vec::new();
    let mut parts = Vec::new();
    let mut errors = Vec::new();
    let mut per_family = Vec::new();
    for f in [&a, &aaaa] {
        match &f.result {
            Ok(v) => {
                addrs.extend(v.iter().copied());
                let shown = if v.is_empty() {
                    "none".to_string()
                } else {
                    v.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                parts.push(format!("{} {shown} ({:.1} ms)", f.rtype, f.took_ms));
            }
            Err(e) => {
                parts.push(format!("{} failed: {e} ({:.1} ms)", f.rtype, f.took_ms));
                errors.push(format!("{}: {e}", f.rtype));
            }
        }
        per_family.push(json!({
            "type": f.rtype,
            "duration_ms": f.took_ms,
            "addresses": f.result.as_ref().map(|v| v.iter().map(|i| i.to_string()).collect::<Vec<_>>()).unwrap_or_default(),
            "error": f.result.as_ref().err(),
        }));
    }
    addrs.dedup();
    let detail = format!("{} via {server}", parts.join("; "));
    let took = rec.end(
        t,
        !addrs.is_empty(),
        detail.clone(),
        attrs([("lookups", json!(per_family)), ("server", json!(server))]),
    );
    if addrs.is_empty() {
        let why = if errors.is_empty() {
            "no A or AAAA records".to_string()
        } else {
            errors.join("; ")
        };
        rec.failed(
            "probe.dns",
            format!("cannot resolve {host}: {why}"),
            &why,
            took,
        );
        return None;
    }
    if !errors.is_empty() {
        rec.push(
            Finding::new(
                "probe.dns",
                Severity::Warning,
                format!(
                    "{host}: one lookup failed while the other answered ({})",
                    errors.join("; ")
                ),
            )
            .value("duration_ms", took)
            .items(parts),
        );
    } else {
        rec.timed(
            "probe.dns",
            &format!("DNS lookup of {host}"),
            took,
            &opts.thresholds,
            &detail,
        );
    }
    Some(addrs)
}
