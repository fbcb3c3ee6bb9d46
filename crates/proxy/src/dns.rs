//! Backend host names resolved with hickory-resolver rather than the blocking libc resolver,
//! so a lookup has a timeout and cannot tie up a blocking-pool thread, and so answers are
//! cached no longer than `server.dns_max_ttl`: every new server connection asks the cache,
//! which re-resolves once the record expires, so a moved backend is followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use dbwarden_config::ServerConfig;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use crate::error::SetupError;

/// A shared resolver with its cache; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// The system's resolver configuration (`/etc/resolv.conf`), or `dns_servers` when set.
    pub fn from_config(c: &ServerConfig) -> Result<Dns, SetupError> {
        let provider = TokioConnectionProvider::default();
        let mut builder = if c.dns_servers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| SetupError::Dns(format!("system resolver configuration: {e}")))?
        } else {
            let mut group = NameServerConfigGroup::new();
            for text in &c.dns_servers {
                let addr = parse_server(text).ok_or_else(|| {
                    SetupError::Dns(format!("server.dns_servers: `{text}` is not IP or IP:port"))
                })?;
                group.merge(NameServerConfigGroup::from_ips_clear(
                    &[addr.ip()],
                    addr.port(),
                    true,
                ));
            }
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                provider,
            )
        };
        let opts = builder.options_mut();
        if !c.server_dns_timeout.is_zero() {
            opts.timeout = c.server_dns_timeout;
        }
        opts.positive_max_ttl = Some(c.dns_max_ttl);
        // A failed lookup is retried on the next connect, not remembered.
        opts.negative_max_ttl = Some(std::time::Duration::ZERO);
        Ok(Dns {
            resolver: builder.build(),
        })
    }

    /// The addresses for `host:port`, in the resolver's preferred order. A literal IP
    /// address is used as it is, without asking anyone.
    pub async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::NotFound, e))?;
        Ok(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }
}

/// The addresses a pool's backend host resolved to most recently, refreshed in the
/// background, so that connections to an address the name no longer has are drained
/// (closed instead of reused) and new ones go to the new address.
#[derive(Default)]
pub struct Addresses {
    /// `None` until a lookup succeeds: every connection counts as current.
    current: parking_lot::Mutex<Option<Vec<IpAddr>>>,
    refreshing: AtomicBool,
}

impl Addresses {
    /// Whether a connection to `addr` still matches what the name resolves to.
    pub fn is_current(&self, addr: SocketAddr) -> bool {
        match self.current.lock().as_ref() {
            Some(ips) => ips.contains(&addr.ip()),
            None => true,
        }
    }

    /// Resolves `host` again in a task of its own (the cache makes this cheap until the
    /// record expires); at most one lookup per pool is in flight, so a stalled resolver
    /// cannot pile up tasks. Literal addresses never change.
    pub fn refresh(self: &Arc<Self>, dns: &Dns, host: &str, port: u16) {
        if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
            || self.refreshing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (this, dns, host) = (self.clone(), dns.clone(), host.to_owned());
        tokio::spawn(async move {
            match dns.resolve(&host, port).await {
                Ok(addrs) if !addrs.is_empty() => {
                    let ips = addrs.iter().map(SocketAddr::ip).collect();
                    *this.current.lock() = Some(ips);
                }
                // Keep the last known answer: a failed lookup says nothing about where
                // the backend is, and draining on it would close good connections.
                Ok(_) | Err(_) => {}
            }
            this.refreshing.store(false, Ordering::Release);
        });
    }
}

fn parse_server(text: &str) -> Option<SocketAddr> {
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}
