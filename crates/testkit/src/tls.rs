//! Throw-away TLS material: a CA and a server certificate signed by it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// PEM files in a temporary directory that is removed on drop.
#[derive(Debug)]
pub struct TestCerts {
    pub dir: tempfile::TempDir,
    /// The CA certificate clients trust (`sslrootcert`).
    pub ca_cert: PathBuf,
    /// The server certificate, signed by the CA.
    pub server_cert: PathBuf,
    /// The server's private key (PKCS#8), mode 0600.
    pub server_key: PathBuf,
}

/// Creates a CA and a server certificate whose subject alternative names are
/// `names` (IP addresses become IP SANs, anything else DNS names; the first
/// name is also the common name). When running as root the files belong to
/// the `postgres` user, since PostgreSQL refuses a key that others can read.
///
/// Panics on failure: this is test setup.
pub fn test_certs(names: &[&str]) -> TestCerts {
    let dir = tempfile::Builder::new()
        .prefix("dbwarden-certs-")
        .tempdir()
        .expect("create a directory for test certificates");

    let ca_key = KeyPair::generate().expect("generate the CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dbwarden test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).expect("self-sign the CA");

    let server_key = KeyPair::generate().expect("generate the server key");
    let sans: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = CertificateParams::new(sans)
        .unwrap_or_else(|e| panic!("invalid certificate names {names:?}: {e}"));
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("localhost"),
    );
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params
        .signed_by(&server_key, &ca, &ca_key)
        .expect("sign the server certificate");

    let certs = TestCerts {
        ca_cert: dir.path().join("ca.crt"),
        server_cert: dir.path().join("server.crt"),
        server_key: dir.path().join("server.key"),
        dir,
    };
    write(&certs.ca_cert, &ca.pem(), 0o644);
    write(&certs.server_cert, &server.pem(), 0o644);
    write(&certs.server_key, &server_key.serialize_pem(), 0o600);
    // Let other accounts (the server's) reach the files; the key itself stays
    // private to its owner.
    std::fs::set_permissions(certs.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("open the certificate directory");
    if let Some(user) = crate::pg::server_account() {
        for file in [&certs.ca_cert, &certs.server_cert, &certs.server_key] {
            user.chown(file)
                .unwrap_or_else(|e| panic!("chown {}: {e}", file.display()));
        }
    }
    certs
}

fn write(path: &Path, pem: &str, mode: u32) {
    std::fs::write(path, pem).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_pem_files_with_a_private_key() {
        let certs = test_certs(&["localhost", "127.0.0.1"]);
        let ca = std::fs::read_to_string(&certs.ca_cert).unwrap();
        let cert = std::fs::read_to_string(&certs.server_cert).unwrap();
        let key = std::fs::read_to_string(&certs.server_key).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(ca, cert);
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"));
        let mode = std::fs::metadata(&certs.server_key)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
