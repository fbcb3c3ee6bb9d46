//! Errors that stop the doctor from running at all (exit code 3).
//!
//! Problems *found* on the target are never errors: they become findings.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum DoctorError {
    #[error("invalid URL: {0}")]
    Url(#[from] url::ParseError),
    #[error("unsupported URL scheme {0:?} (expected postgres://, postgresql://, mysql://, mariadb://, redis:// or rediss://)")]
    Scheme(String),
    #[error("invalid value {value:?} for URL parameter {name}")]
    Param { name: String, value: String },
    #[error("URL has no host")]
    NoHost,
    #[error("unknown threshold {0:?} (see `dbwarden doctor list --thresholds`)")]
    UnknownThreshold(String),
    #[error("invalid threshold {0:?}: expected KEY=NUMBER")]
    BadThreshold(String),
    #[error("unknown check id or group {0:?} (see `dbwarden doctor list`)")]
    UnknownCheck(String),
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serialize report: {0}")]
    Json(#[from] serde_json::Error),
}
