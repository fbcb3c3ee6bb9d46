//! rustls set-up for both sides.

use std::path::Path;
use std::sync::Arc;

use dbwarden_config::{ClientTlsConfig, ClientTlsMode, ServerTlsConfig, ServerTlsMode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::error::SetupError;

use dbwarden_tls::{provider, AnyChain};

/// The acceptor for client-facing TLS, or `None` when it is disabled.
pub fn acceptor(cfg: &ClientTlsConfig) -> Result<Option<tokio_rustls::TlsAcceptor>, SetupError> {
    if cfg.mode == ClientTlsMode::Disable {
        return Ok(None);
    }
    let (Some(cert), Some(key)) = (&cfg.cert_file, &cfg.key_file) else {
        return Err(SetupError::Tls(
            "client_tls needs cert_file and key_file".into(),
        ));
    };
    let certs = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| SetupError::Tls(format!("{}: {e}", key.display())))?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| SetupError::Tls(e.to_string()))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

/// The connector for server-facing TLS, or `None` when it is disabled.
pub fn connector(cfg: &ServerTlsConfig) -> Result<Option<tokio_rustls::TlsConnector>, SetupError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Tls(e.to_string()))?;
    let config = match cfg.mode {
        ServerTlsMode::Disable => return Ok(None),
        // libpq's prefer/require encrypt without checking who is on the other end.
        ServerTlsMode::Prefer | ServerTlsMode::Require => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyChain::new(provider())))
            .with_no_client_auth(),
        ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull => {
            let Some(ca) = &cfg.ca_file else {
                return Err(SetupError::Tls(format!(
                    "server_tls mode {} needs ca_file",
                    cfg.mode.as_str()
                )));
            };
            let mut roots = RootCertStore::empty();
            for c in load_certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| SetupError::Tls(format!("{}: {e}", ca.display())))?;
            }
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| SetupError::Tls(e.to_string()))?;
            if cfg.mode == ServerTlsMode::VerifyCa {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
                    .with_no_client_auth()
            } else {
                builder.with_webpki_verifier(webpki).with_no_client_auth()
            }
        }
    };
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| SetupError::Tls(format!("{}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| SetupError::Tls(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(SetupError::Tls(format!(
            "{}: no certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

/// The server name to present and check: an IP address stays an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>, SetupError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| SetupError::Tls(format!("invalid server name {host:?}: {e}")))
}

/// `verify-ca`: the chain must lead to the CA, the name may be anything (libpq semantics).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
