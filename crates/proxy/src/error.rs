//! Errors, each knowing its side and what the client should be told.

use std::io;

use dbwarden_wire::backend::ErrorFields;
use dbwarden_wire::{ProtocolError, SqlState};

/// The proxy could not be set up (bad TLS files, listener).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("TLS: {0}")]
    Tls(String),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("invalid user secret for {user:?}: {reason}")]
    Secret { user: String, reason: String },
    #[error("DNS resolver: {0}")]
    Dns(String),
    #[error("OTLP trace exporter: {0}")]
    Tracing(String),
}

/// Something went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("connect to {addr} timed out after {after:?} (pool.server_connect_timeout)")]
    ConnectTimeout {
        addr: String,
        after: std::time::Duration,
    },
    /// One phase of opening a connection ran out of its own time; names the phase and the
    /// setting so an operator knows whether DNS, the network, TLS or the server is slow.
    #[error("connect to {addr}: {phase} phase timed out after {after:?} ({setting})")]
    PhaseTimeout {
        addr: String,
        phase: &'static str,
        setting: &'static str,
        after: std::time::Duration,
    },
    #[error("TLS to {addr}: {reason}")]
    Tls { addr: String, reason: String },
    #[error("server {addr} refused login: {} ({})", .fields.message, .fields.code)]
    Rejected { addr: String, fields: ErrorFields },
    #[error("login to {addr}: {reason}")]
    Auth { addr: String, reason: String },
    #[error("server sent bad protocol: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("server connection: {0}")]
    Io(#[from] io::Error),
    #[error("server closed the connection")]
    Closed,
}

impl ServerError {
    /// What a client is told when its server connection fails. A login the server refused
    /// keeps the server's own code (e.g. 3D000, 28P01), so clients see what PostgreSQL says.
    pub fn for_client(&self) -> (SqlState, String) {
        match self {
            ServerError::Rejected { fields, .. } => (
                SqlState::from_code(&fields.code).unwrap_or(SqlState::CONNECTION_FAILURE),
                fields.message.clone(),
            ),
            other => (
                SqlState::CONNECTION_FAILURE,
                format!("dbwarden: server connection failed: {other}"),
            ),
        }
    }
}

/// Why an idle server connection failed its health check (it is closed, never reused).
#[derive(Debug, thiserror::Error)]
pub enum CheckFailed {
    #[error("no answer within {0:?} (pool.server_check_timeout)")]
    Timeout(std::time::Duration),
    #[error("the check query failed: {} ({})", .0.message, .0.code)]
    Rejected(ErrorFields),
    #[error("the check query left the connection inside a transaction")]
    NotIdle,
    #[error(transparent)]
    Server(#[from] ServerError),
}

/// Why a client session ended in error. Each variant says what the client is told, if anything.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("client I/O: {0}")]
    ClientIo(#[source] io::Error),
    #[error("client protocol violation: {0}")]
    ClientProtocol(#[source] ProtocolError),
    #[error("{message}")]
    Refused { code: SqlState, message: String },
    #[error(transparent)]
    Server(#[from] ServerError),
}

impl SessionError {
    pub fn refused(code: SqlState, message: impl Into<String>) -> Self {
        SessionError::Refused {
            code,
            message: message.into(),
        }
    }

    /// The FATAL error to send the client, or `None` when the client cannot hear it anyway.
    pub fn for_client(&self) -> Option<(SqlState, String)> {
        match self {
            SessionError::ClientIo(_) => None,
            SessionError::ClientProtocol(e) => Some((e.sqlstate(), e.to_string())),
            SessionError::Refused { code, message } => Some((*code, message.clone())),
            SessionError::Server(e) => Some(e.for_client()),
        }
    }
}
