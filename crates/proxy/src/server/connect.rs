use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dbwarden_auth::{md5_response, ScramClient};
use dbwarden_config::ServerTlsMode;
use dbwarden_wire::backend::{self, auth, tag};
use dbwarden_wire::encode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{read_err, CancelTarget, ServerConn};
use crate::conn::Conn;
use crate::error::ServerError;
use crate::stream::{keepalive, tune, Stream, TcpTuning};

/// Everything needed to open server connections, shared by all pools.
#[derive(Clone)]
pub struct ServerCtx {
    pub tls_mode: ServerTlsMode,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub connect_timeout: Duration,
    pub phases: PhaseTimeouts,
    pub dns: crate::dns::Dns,
    /// Keepalive and TCP_USER_TIMEOUT, for server sockets and (from the listener) client ones.
    pub tcp: TcpTuning,
    pub breaker: crate::health::BreakerSettings,
    /// When idle connections may be reused as they are (lifetime, health checks).
    pub reuse: crate::pools::ReuseRules,
    pub max_message: u32,
    /// Where phase durations and connect timeouts are counted.
    pub metrics: Option<std::sync::Arc<crate::stats::Metrics>>,
}

/// The bound on each phase of opening a connection; zero means only `connect_timeout`.
#[derive(Clone, Copy, Debug)]
pub struct PhaseTimeouts {
    pub dns: Duration,
    pub tcp: Duration,
    pub tls: Duration,
    pub login: Duration,
}

impl PhaseTimeouts {
    pub fn from_config(c: &dbwarden_config::ServerConfig) -> PhaseTimeouts {
        PhaseTimeouts {
            dns: c.server_dns_timeout,
            tcp: c.server_tcp_timeout,
            tls: c.server_tls_timeout,
            login: c.server_login_timeout,
        }
    }
}

/// A phase of opening a server connection, for errors that say which one hung.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Dns,
    Tcp,
    Tls,
    Login,
}

impl Phase {
    fn metric(self) -> crate::stats::metrics::Phase {
        use crate::stats::metrics::Phase as M;
        match self {
            Phase::Dns => M::Dns,
            Phase::Tcp => M::Tcp,
            Phase::Tls => M::Tls,
            Phase::Login => M::Auth,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Dns => "DNS",
            Phase::Tcp => "TCP",
            Phase::Tls => "TLS",
            Phase::Login => "login",
        }
    }

    fn setting(self) -> &'static str {
        match self {
            Phase::Dns => "server.server_dns_timeout",
            Phase::Tcp => "server.server_tcp_timeout",
            Phase::Tls => "server.server_tls_timeout",
            Phase::Login => "server.server_login_timeout",
        }
    }

    fn limit(self, t: &PhaseTimeouts) -> Duration {
        match self {
            Phase::Dns => t.dns,
            Phase::Tcp => t.tcp,
            Phase::Tls => t.tls,
            Phase::Login => t.login,
        }
    }
}

/// Runs one phase within its own bound (if it has one).
async fn bounded<T>(
    phase: Phase,
    ctx: &ServerCtx,
    addr: &str,
    fut: impl std::future::Future<Output = Result<T, ServerError>>,
) -> Result<T, ServerError> {
    let limit = phase.limit(&ctx.phases);
    let started = std::time::Instant::now();
    let out = if limit.is_zero() {
        fut.await
    } else {
        match tokio::time::timeout(limit, fut).await {
            Ok(out) => out,
            Err(_) => {
                if let Some(m) = &ctx.metrics {
                    m.timeout(crate::stats::TimeoutKind::ServerConnect);
                }
                return Err(ServerError::PhaseTimeout {
                    addr: addr.to_owned(),
                    phase: phase.name(),
                    setting: phase.setting(),
                    after: limit,
                });
            }
        }
    };
    if let (Ok(_), Some(m)) = (&out, &ctx.metrics) {
        m.connect_phase(phase.metric(), started.elapsed());
    }
    out
}

/// One pool's upstream: where to connect and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTarget {
    pub host: String,
    pub port: u16,
    pub dbname: String,
    pub user: String,
    pub password: Option<String>,
}

impl ServerTarget {
    pub fn addr_text(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Opens and logs in one server connection, all within `connect_timeout`.
pub async fn connect(target: &ServerTarget, ctx: &ServerCtx) -> Result<ServerConn, ServerError> {
    let addr_text = target.addr_text();
    tokio::time::timeout(ctx.connect_timeout, connect_inner(target, ctx))
        .await
        .map_err(|_| ServerError::ConnectTimeout {
            addr: addr_text,
            after: ctx.connect_timeout,
        })?
}

async fn connect_inner(target: &ServerTarget, ctx: &ServerCtx) -> Result<ServerConn, ServerError> {
    let addr_text = target.addr_text();
    let connect_err = |source| ServerError::Connect {
        addr: addr_text.clone(),
        source,
    };
    let lookup = async {
        ctx.dns
            .resolve(&target.host, target.port)
            .await
            .map_err(connect_err)
    };
    let addrs: Vec<SocketAddr> = bounded(Phase::Dns, ctx, &addr_text, lookup).await?;
    let mut last = None;
    for addr in addrs {
        match open_stream(addr, &target.host, ctx, None).await {
            Ok(conn) => {
                let addr_s = addr.to_string();
                return bounded(Phase::Login, ctx, &addr_s, login(conn, addr, target)).await;
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        connect_err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "host name resolved to no address",
        ))
    }))
}

/// TCP connect plus TLS: as `server_tls.mode` asks for a new session (`cancel_tls` is
/// `None`), or, for a CancelRequest, exactly as the session connection it cancels has it.
/// A cancel for a plaintext session must not ask for TLS first: that costs a round trip,
/// and when the server's replies are stuck (the very case a timeout cancels for) the
/// answer to the SSLRequest never comes and the cancel is never sent.
pub(super) async fn open_stream(
    addr: SocketAddr,
    host: &str,
    ctx: &ServerCtx,
    cancel_tls: Option<bool>,
) -> Result<Conn, ServerError> {
    let addr_s = addr.to_string();
    let tcp = bounded(Phase::Tcp, ctx, &addr_s, async {
        TcpStream::connect(addr)
            .await
            .map_err(|source| ServerError::Connect {
                addr: addr_s.clone(),
                source,
            })
    })
    .await?;
    tune(&tcp);
    keepalive(&tcp, &ctx.tcp);
    let want_tls = cancel_tls.unwrap_or(ctx.tls_mode != ServerTlsMode::Disable);
    let stream = match (&ctx.tls, ctx.tls_mode) {
        (Some(connector), mode) if want_tls => {
            let tls = negotiate_tls(tcp, addr, host, connector, mode);
            bounded(Phase::Tls, ctx, &addr_s, tls).await?
        }
        _ => Stream::Plain(tcp),
    };
    Ok(Conn::new(stream, ctx.max_message))
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    addr: SocketAddr,
    host: &str,
    connector: &tokio_rustls::TlsConnector,
    mode: ServerTlsMode,
) -> Result<Stream, ServerError> {
    let tls_err = |reason: String| ServerError::Tls {
        addr: addr.to_string(),
        reason,
    };
    let mut req = BytesMut::new();
    encode::ssl_request(&mut req);
    tcp.write_all(&req).await?;
    match tcp.read_u8().await? {
        b'S' => {
            let name = crate::tls::server_name(host).map_err(|e| tls_err(e.to_string()))?;
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| tls_err(e.to_string()))?;
            Ok(Stream::ServerTls(Box::new(tls)))
        }
        b'N' if mode == ServerTlsMode::Prefer => Ok(Stream::Plain(tcp)),
        b'N' => Err(tls_err(format!(
            "server does not support TLS, but server_tls mode is {}",
            mode.as_str()
        ))),
        other => Err(tls_err(format!(
            "unexpected answer {other:#04x} to SSLRequest"
        ))),
    }
}

async fn login(
    mut conn: Conn,
    addr: SocketAddr,
    target: &ServerTarget,
) -> Result<ServerConn, ServerError> {
    let addr_text = addr.to_string();
    let auth_err = |reason: String| ServerError::Auth {
        addr: addr_text.clone(),
        reason,
    };
    let tls = conn.stream.is_tls();
    encode::startup(
        &mut conn.wbuf,
        &[
            ("user", &target.user),
            ("database", &target.dbname),
            ("application_name", "dbwarden"),
        ],
    );
    conn.flush().await?;
    let password = || {
        target
            .password
            .as_deref()
            .ok_or_else(|| auth_err("server asked for a password and none is configured".into()))
    };
    let mut scram: Option<ScramClient> = None;
    let mut params = Vec::new();
    let mut key = None;
    loop {
        let frame = conn.read_frame().await.map_err(read_err)?;
        match frame.tag() {
            tag::AUTHENTICATION => {
                let (code, data) = backend::authentication(frame.body())?;
                match code {
                    auth::OK => {}
                    auth::CLEARTEXT_PASSWORD => {
                        encode::password_message(&mut conn.wbuf, password()?.as_bytes())
                    }
                    auth::MD5_PASSWORD => {
                        let salt: [u8; 4] = data
                            .try_into()
                            .map_err(|_| auth_err("bad md5 salt".into()))?;
                        let resp = md5_response(&target.user, password()?, salt);
                        encode::password_message(&mut conn.wbuf, resp.as_bytes());
                    }
                    auth::SASL => {
                        let offers_scram = data.split(|&b| b == 0).any(|m| m == b"SCRAM-SHA-256");
                        if !offers_scram {
                            return Err(auth_err("server offers no SCRAM-SHA-256".into()));
                        }
                        let client = ScramClient::new(password()?);
                        encode::sasl_initial_response(
                            &mut conn.wbuf,
                            client.mechanism(),
                            &client.client_first(),
                        );
                        scram = Some(client);
                    }
                    auth::SASL_CONTINUE => {
                        let client = scram
                            .as_mut()
                            .ok_or_else(|| auth_err("SASLContinue before SASL".into()))?;
                        let reply = client
                            .server_first(data)
                            .map_err(|e| auth_err(e.to_string()))?;
                        encode::sasl_response(&mut conn.wbuf, &reply);
                    }
                    auth::SASL_FINAL => {
                        scram
                            .as_mut()
                            .ok_or_else(|| auth_err("SASLFinal before SASL".into()))?
                            .server_final(data)
                            .map_err(|e| auth_err(e.to_string()))?;
                    }
                    other => {
                        return Err(auth_err(format!(
                            "unsupported authentication request {other}"
                        )))
                    }
                }
                conn.flush().await?;
            }
            tag::PARAMETER_STATUS => {
                let (k, v) = backend::parameter_status(frame.body())?;
                params.push((k.to_owned(), v.to_owned()));
            }
            tag::BACKEND_KEY_DATA => {
                let (pid, k) = backend::backend_key(frame.body())?;
                key = Some((pid, k.to_vec()));
            }
            tag::ERROR_RESPONSE => {
                return Err(ServerError::Rejected {
                    addr: addr_text,
                    fields: backend::error_fields(frame.body())?,
                })
            }
            tag::READY_FOR_QUERY => {
                let status = backend::ready_status(frame.body())?;
                let (pid, key) = key.ok_or_else(|| auth_err("no BackendKeyData".into()))?;
                return Ok(ServerConn {
                    conn,
                    params,
                    cancel: Arc::new(CancelTarget {
                        addr,
                        host: target.host.clone(),
                        pid,
                        key,
                        tls,
                    }),
                    status,
                    gucs: Default::default(),
                    statements: Default::default(),
                    runtime: tokio::runtime::Handle::try_current().ok().map(|h| h.id()),
                    info: None,
                });
            }
            // NoticeResponse, NegotiateProtocolVersion: nothing to act on.
            _ => {}
        }
    }
}
