//! From the first byte to a validated StartupMessage: SSL and GSS negotiation, protocol
//! version negotiation, and CancelRequest.

use dbwarden_config::ClientTlsMode;
use dbwarden_wire::startup::Startup;
use dbwarden_wire::{encode, ProtocolError, SqlState};
use tokio::io::AsyncWriteExt;

use crate::conn::{Conn, ReadError};
use crate::error::SessionError;
use crate::stream::Stream;
use crate::Shared;

/// What the client asked for in its StartupMessage.
pub struct StartupInfo {
    pub user: String,
    pub database: String,
    /// Every other parameter (application_name, TimeZone, options, ...), in order.
    pub params: Vec<(String, String)>,
}

pub enum Opening {
    Session(StartupInfo),
    /// A CancelRequest was handled; the connection is done.
    Cancelled,
}

pub fn read_err(e: ReadError) -> SessionError {
    match e {
        ReadError::Io(e) => SessionError::ClientIo(e),
        ReadError::Protocol(e) => SessionError::ClientProtocol(e),
        ReadError::Eof => {
            SessionError::ClientIo(std::io::Error::from(std::io::ErrorKind::UnexpectedEof))
        }
    }
}

/// Reads the opening packets on `conn` (upgrading it to TLS in place when asked).
pub async fn open(conn: &mut Conn, shared: &Shared) -> Result<Opening, SessionError> {
    let tls_mode = shared.config.load().client_tls.mode;
    // Each request may come once, in either order: libpq with GSSAPI credentials sends
    // GSSENCRequest, and after our 'N' an SSLRequest, as PostgreSQL allows.
    let (mut ssl_done, mut gss_done) = (false, false);
    loop {
        let body = conn.read_startup().await.map_err(read_err)?;
        match Startup::parse(&body).map_err(SessionError::ClientProtocol)? {
            Startup::SslRequest if !ssl_done => {
                ssl_done = true;
                let acceptor = shared.tls_acceptor.load_full();
                let Some(acceptor) = acceptor.as_ref().as_ref() else {
                    conn.stream
                        .write_all(b"N")
                        .await
                        .map_err(SessionError::ClientIo)?;
                    continue;
                };
                // Bytes sent after SSLRequest but before the handshake would be accepted
                // unencrypted into the TLS session: refuse them (the CVE-2021-23222 pattern).
                if !conn.rbuf.is_empty() {
                    return Err(SessionError::ClientProtocol(ProtocolError::Malformed {
                        what: "data after SSLRequest",
                    }));
                }
                conn.stream
                    .write_all(b"S")
                    .await
                    .map_err(SessionError::ClientIo)?;
                let Stream::Plain(tcp) = std::mem::replace(&mut conn.stream, Stream::Detached)
                else {
                    unreachable!("TLS is negotiated once, on a plain socket")
                };
                let tls = acceptor.accept(tcp).await.map_err(SessionError::ClientIo)?;
                conn.stream = Stream::ClientTls(Box::new(tls));
            }
            Startup::GssEncRequest if !gss_done => {
                gss_done = true;
                conn.stream
                    .write_all(b"N")
                    .await
                    .map_err(SessionError::ClientIo)?;
            }
            Startup::SslRequest | Startup::GssEncRequest => {
                return Err(SessionError::ClientProtocol(ProtocolError::Malformed {
                    what: "repeated encryption request",
                }))
            }
            Startup::Cancel { pid, key } => {
                if let Some(target) = shared.cancels.lookup(pid, &key) {
                    let ctx = shared.server_ctx.load_full();
                    if let Err(e) = crate::server::send_cancel(&target, &ctx).await {
                        tracing::warn!(error = %e, "forwarding cancel request failed");
                    }
                }
                return Ok(Opening::Cancelled);
            }
            Startup::Startup {
                major,
                minor,
                params,
            } => {
                if major != dbwarden_wire::PROTOCOL_VERSION_3 {
                    return Err(SessionError::ClientProtocol(
                        ProtocolError::UnsupportedVersion { major, minor },
                    ));
                }
                if tls_mode == ClientTlsMode::Require && !conn.stream.is_tls() {
                    return Err(SessionError::refused(
                        SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
                        "dbwarden: SSL is required (client_tls mode is require)",
                    ));
                }
                let info = startup_info(conn, minor, params)?;
                return Ok(Opening::Session(info));
            }
        }
    }
}

fn startup_info(
    conn: &mut Conn,
    minor: u16,
    params: Vec<(String, String)>,
) -> Result<StartupInfo, SessionError> {
    let mut user = None;
    let mut database = None;
    let mut rest = Vec::new();
    let mut unknown_options = Vec::new();
    for (k, v) in params {
        match k.as_str() {
            "user" => user = Some(v),
            "database" => database = Some(v),
            "replication" if v != "false" && v != "0" && v != "off" => {
                return Err(SessionError::refused(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "dbwarden: replication connections are not supported",
                ))
            }
            _ if k.starts_with("_pq_.") => unknown_options.push(k),
            _ => rest.push((k, v)),
        }
    }
    // We speak 3.0 and no protocol extensions; say so rather than fail (libpq 17+ asks for 3.2).
    if minor > 0 || !unknown_options.is_empty() {
        let names: Vec<&str> = unknown_options.iter().map(String::as_str).collect();
        encode::negotiate_protocol_version(&mut conn.wbuf, 0, &names);
    }
    let user = user.filter(|u| !u.is_empty()).ok_or_else(|| {
        SessionError::refused(
            SqlState::INVALID_AUTHORIZATION_SPECIFICATION,
            "no PostgreSQL user name specified in startup packet",
        )
    })?;
    let database = database
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| user.clone());
    Ok(StartupInfo {
        user,
        database,
        params: rest,
    })
}
