//! A connection that is plain TCP or TLS, chosen at run time after SSLRequest.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Either side's socket. An enum rather than a trait object: the relay polls it on every
/// read and write, and a match is cheaper than a virtual call and keeps the future `Send`.
pub enum Stream {
    Plain(TcpStream),
    ClientTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    ServerTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    /// Left behind while the socket is being upgraded to TLS; every operation fails.
    Detached,
}

fn detached() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "stream is being upgraded")
}

impl Stream {
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::ClientTls(_) | Stream::ServerTls(_))
    }

    /// Ready when a read may find bytes, without reading: lets a caller wait for a plain
    /// socket before it borrows a buffer. TLS may hold decrypted bytes the socket does not
    /// show, so it is always "ready" (the read itself finds out).
    pub fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Plain(s) => s.poll_read_ready(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Registers the socket with the calling task's runtime in place of the one it was
    /// registered with: tokio does not promise wake-ups for a socket driven from another
    /// current-thread runtime (`proxy.workers` above 1 runs several). A duplicate of the
    /// descriptor is registered and the old one dropped, so this works under TLS too.
    pub fn rehome(&mut self) -> io::Result<()> {
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::ClientTls(s) => s.get_mut().0,
            Stream::ServerTls(s) => s.get_mut().0,
            Stream::Detached => return Ok(()),
        };
        let dup: std::net::TcpStream = socket2::SockRef::from(&*tcp).try_clone()?.into();
        *tcp = TcpStream::from_std(dup)?;
        Ok(())
    }

    pub fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Plain(s) => Some(s),
            Stream::ClientTls(s) => Some(s.get_ref().0),
            Stream::ServerTls(s) => Some(s.get_ref().0),
            Stream::Detached => None,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Stream::Detached => Poll::Ready(Err(detached())),
        }
    }
}

/// Socket options for every proxied connection: no Nagle delay (the protocol is
/// request/response and we already batch writes). Keepalive is set by [`keepalive`], from
/// the config.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}

/// TCP keepalive and `TCP_USER_TIMEOUT` for one socket, from `[server]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTuning {
    /// Zero turns keepalive off.
    pub keepalive_idle: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_count: u32,
    /// Zero leaves the system default.
    pub user_timeout: Duration,
}

impl TcpTuning {
    pub fn from_config(c: &dbwarden_config::ServerConfig) -> TcpTuning {
        TcpTuning {
            keepalive_idle: c.tcp_keepalive_idle,
            keepalive_interval: c.tcp_keepalive_interval,
            keepalive_count: c.tcp_keepalive_count,
            user_timeout: c.tcp_user_timeout,
        }
    }
}

/// Applies `tuning` to a client or server socket. Failures are logged, not fatal: a
/// connection without keepalive still works, it is only slower to notice a dead peer.
pub fn keepalive(stream: &TcpStream, tuning: &TcpTuning) {
    let sock = socket2::SockRef::from(stream);
    let result = if tuning.keepalive_idle.is_zero() {
        sock.set_keepalive(false)
    } else {
        let ka = socket2::TcpKeepalive::new()
            .with_time(tuning.keepalive_idle)
            .with_interval(tuning.keepalive_interval)
            .with_retries(tuning.keepalive_count);
        sock.set_tcp_keepalive(&ka)
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, "setting TCP keepalive failed");
    }
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia"))]
    if !tuning.user_timeout.is_zero() {
        if let Err(e) = sock.set_tcp_user_timeout(Some(tuning.user_timeout)) {
            tracing::warn!(error = %e, "setting TCP_USER_TIMEOUT failed");
        }
    }
}

#[cfg(test)]
mod tests;
