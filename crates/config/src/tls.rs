//! `[client_tls]` and `[server_tls]`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// TLS between clients and the proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientTlsMode {
    /// Refuse TLS; clients speak plaintext.
    #[default]
    Disable,
    /// Offer TLS; clients may still connect in plaintext.
    Allow,
    /// Refuse clients that do not negotiate TLS.
    Require,
}

impl ClientTlsMode {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientTlsMode::Disable => "disable",
            ClientTlsMode::Allow => "allow",
            ClientTlsMode::Require => "require",
        }
    }
}

/// The `[client_tls]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTlsConfig {
    /// `"disable"`, `"allow"` or `"require"`.
    /// Default: `"disable"`. Reload: yes (new connections).
    pub mode: ClientTlsMode,
    /// PEM certificate chain presented to clients; needed by `allow` and `require`.
    /// Default: none. Reload: yes (the file is re-read; new connections use it).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`; needed by `allow` and `require`.
    /// Default: none. Reload: yes (the file is re-read; new connections use it).
    pub key_file: Option<PathBuf>,
}

/// TLS between the proxy and PostgreSQL; the names and meanings follow libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerTlsMode {
    /// Never use TLS.
    Disable,
    /// Use TLS when the server offers it, without verifying its certificate.
    #[default]
    Prefer,
    /// Always use TLS, without verifying the server's certificate.
    Require,
    /// Always use TLS and verify the certificate chain against `ca_file`.
    VerifyCa,
    /// As `verify-ca`, and the certificate must also name the host connected to.
    VerifyFull,
}

impl ServerTlsMode {
    /// The name used in the config file (and in libpq's `sslmode`).
    pub fn as_str(self) -> &'static str {
        match self {
            ServerTlsMode::Disable => "disable",
            ServerTlsMode::Prefer => "prefer",
            ServerTlsMode::Require => "require",
            ServerTlsMode::VerifyCa => "verify-ca",
            ServerTlsMode::VerifyFull => "verify-full",
        }
    }

    /// Whether this mode checks the server certificate (and so needs a CA file).
    pub fn verifies(self) -> bool {
        matches!(self, ServerTlsMode::VerifyCa | ServerTlsMode::VerifyFull)
    }
}

/// The `[server_tls]` section.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTlsConfig {
    /// `"disable"`, `"prefer"`, `"require"`, `"verify-ca"` or `"verify-full"`.
    /// Default: `"prefer"` (as libpq). Reload: yes (new server connections).
    pub mode: ServerTlsMode,
    /// PEM file of the certificate authorities trusted for server certificates; needed by
    /// `verify-ca` and `verify-full`, ignored by the other modes.
    /// Default: none. Reload: yes (the file is re-read; new server connections use it).
    pub ca_file: Option<PathBuf>,
}
