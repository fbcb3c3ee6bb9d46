//! TLS handshake with a recording verifier: the handshake always completes so the
//! chain can be inspected and reported, then trust and name are judged separately
//! (a diagnosis tool must be able to say *why* a certificate is bad). Callers abort
//! before sending credentials when the sslmode asked for verification and it failed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use dbwarden_tls::{provider, AnyChain};

use crate::model::{Finding, Severity};
use crate::target::{Target, TlsMode};
use crate::thresholds::Thresholds;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub days_left: f64,
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TlsInfo {
    pub version: String,
    pub cipher: String,
    pub chain: Vec<CertInfo>,
    /// The chain verifies against the configured roots (sslrootcert or the system's).
    pub trusted: bool,
    /// The leaf certificate names the host we connected to.
    pub name_match: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_error: Option<String>,
    pub roots: String,
}

/// Runs the handshake over `stream` with a timeout.
pub async fn handshake<S>(
    stream: S,
    target: &Target,
    timeout: Duration,
) -> Result<(TlsStream<S>, TlsInfo), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyChain::new(provider.clone())))
        .with_no_client_auth();
    let name = ServerName::try_from(target.tls_name().to_string()).map_err(|e| e.to_string())?;
    let connector = TlsConnector::from(Arc::new(config));
    let tls = match tokio::time::timeout(timeout, connector.connect(name.clone(), stream)).await {
        Err(_) => return Err(format!("handshake timed out after {timeout:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(s)) => s,
    };
    let conn = tls.get_ref().1;
    let version = conn
        .protocol_version()
        .and_then(|v| v.as_str())
        .unwrap_or("unknown")
        .replace('_', ".");
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|c| format!("{:?}", c.suite()))
        .unwrap_or_default();
    let certs: Vec<CertificateDer<'static>> = conn
        .peer_certificates()
        .unwrap_or_default()
        .iter()
        .map(|c| c.clone().into_owned())
        .collect();
    let chain: Vec<CertInfo> = certs.iter().filter_map(|c| describe(c)).collect();
    let name_match =
        match X509Certificate::from_der(certs.first().map(|c| c.as_ref()).unwrap_or(&[])) {
            Ok((_, leaf)) => names_match(&leaf, target.tls_name()),
            Err(_) => false,
        };
    let (trusted, verify_error, roots) = verify(&certs, &name, target, provider);
    Ok((
        tls,
        TlsInfo {
            version,
            cipher,
            chain,
            trusted,
            name_match,
            verify_error,
            roots,
        },
    ))
}

fn verify(
    certs: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    target: &Target,
    provider: Arc<CryptoProvider>,
) -> (bool, Option<String>, String) {
    let (roots, label) = match load_roots(target) {
        Ok(r) => r,
        Err(e) => return (false, Some(e), "none".into()),
    };
    let Some((leaf, rest)) = certs.split_first() else {
        return (false, Some("server sent no certificate".into()), label);
    };
    let verifier =
        match WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build() {
            Ok(v) => v,
            Err(e) => return (false, Some(e.to_string()), label),
        };
    match verifier.verify_server_cert(leaf, rest, name, &[], UnixTime::now()) {
        Ok(_) => (true, None, label),
        // The name is checked after the chain, so a name error means the chain is good.
        Err(rustls::Error::InvalidCertificate(
            e @ (CertificateError::NotValidForName
            | CertificateError::NotValidForNameContext { .. }),
        )) => (true, Some(format!("{e:?}")), label),
        Err(e) => (false, Some(e.to_string()), label),
    }
}

fn load_roots(target: &Target) -> Result<(RootCertStore, String), String> {
    let mut store = RootCertStore::empty();
    let label = match &target.root_cert {
        Some(path) => {
            let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
                .filter_map(Result::ok)
                .collect();
            store.add_parsable_certificates(certs);
            path.display().to_string()
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            "system roots".to_string()
        }
    };
    if store.is_empty() {
        return Err(format!("no usable root certificates in {label}"));
    }
    Ok((store, label))
}

fn describe(der: &CertificateDer<'_>) -> Option<CertInfo> {
    let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
    let v = cert.validity();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: rfc3339(v.not_before.timestamp()),
        not_after: rfc3339(v.not_after.timestamp()),
        days_left: ((v.not_after.timestamp() - now) as f64 / 86400.0 * 10.0).round() / 10.0,
        names: san_names(&cert),
    })
}

fn rfc3339(ts: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn san_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for n in &ext.value.general_names {
            match n {
                GeneralName::DNSName(d) => out.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => out.push(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                    16 => {
                        let a: [u8; 16] = (*b).try_into().unwrap_or([0; 16]);
                        out.push(std::net::Ipv6Addr::from(a).to_string())
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    out
}

/// Host-name match on subjectAltName (with a single left-most wildcard label), falling
/// back to the CN only when there are no SANs, as clients do.
fn names_match(cert: &X509Certificate<'_>, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    let mut names = san_names(cert);
    if names.is_empty() {
        names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(str::to_string))
            .collect();
    }
    names.iter().any(|n| {
        let n = n.to_ascii_lowercase();
        if let Some(rest) = n.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail == rest)
        } else {
            n == host
        }
    })
}

/// Why the connection must stop here: the sslmode asked for a verification that
/// failed. Credentials are never sent to such a server.
pub fn refusal(info: &TlsInfo, mode: TlsMode) -> Option<String> {
    if mode.verifies_chain() && !info.trusted {
        return Some(format!(
            "certificate does not verify against {}: {}",
            info.roots,
            info.verify_error.as_deref().unwrap_or("unknown error")
        ));
    }
    if mode == TlsMode::VerifyFull && !info.name_match {
        return Some("certificate does not name the host (sslmode=verify-full)".to_string());
    }
    None
}

/// The `probe.tls` finding for a completed handshake.
pub fn assess(info: &TlsInfo, mode: TlsMode, host: &str, took_ms: f64, th: &Thresholds) -> Finding {
    let mut sev = Severity::Ok;
    let mut notes = Vec::new();
    let mut raise = |s: Severity, note: String| {
        sev = sev.max(s);
        notes.push(note);
    };
    if let Some(reason) = refusal(info, mode) {
        raise(Severity::Critical, reason);
    } else if !info.trusted {
        raise(
            Severity::Info,
            format!(
                "certificate not verified by the client (sslmode={}): {}",
                mode.as_str(),
                info.verify_error.as_deref().unwrap_or("untrusted")
            ),
        );
    }
    if !info.name_match && mode != TlsMode::VerifyFull {
        raise(Severity::Info, format!("certificate does not name {host}"));
    }
    if let Some(leaf) = info.chain.first() {
        let (warn, crit) = (
            th.get("probe.tls.expiry_warn_days"),
            th.get("probe.tls.expiry_crit_days"),
        );
        if leaf.days_left < 0.0 {
            raise(
                Severity::Critical,
                format!("certificate expired on {}", leaf.not_after),
            );
        } else if leaf.days_left < crit {
            raise(
                Severity::Critical,
                format!(
                    "certificate expires in {:.1} days ({})",
                    leaf.days_left, leaf.not_after
                ),
            );
        } else if leaf.days_left < warn {
            raise(
                Severity::Warning,
                format!(
                    "certificate expires in {:.1} days ({})",
                    leaf.days_left, leaf.not_after
                ),
            );
        }
    }
    let limit = th.get("probe.tls.warn_ms");
    if took_ms > limit {
        raise(
            Severity::Warning,
            format!("handshake took {took_ms:.1} ms (threshold {limit} ms)"),
        );
    }
    let title = match notes.first() {
        Some(n) if sev > Severity::Info => n.clone(),
        _ => format!("{} {} in {took_ms:.1} ms", info.version, info.cipher),
    };
    let mut f = Finding::new("probe.tls", sev, title)
        .value("version", info.version.as_str())
        .value("cipher", info.cipher.as_str())
        .value("duration_ms", took_ms)
        .value("trusted", info.trusted)
        .value("name_match", info.name_match);
    if let Some(leaf) = info.chain.first() {
        f = f
            .value("not_after", leaf.not_after.as_str())
            .value("days_left", leaf.days_left);
    }
    f.items(
        notes.into_iter().chain(
            info.chain
                .iter()
                .map(|c| format!("{} (issuer {}, until {})", c.subject, c.issuer, c.not_after)),
        ),
    )
}
