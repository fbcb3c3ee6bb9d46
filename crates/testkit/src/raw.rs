//! A PostgreSQL client that sends whatever bytes it is told to, for tests of
//! malformed input. Deliberately independent of dbwarden-wire, so that a bug
//! in the proxy's codec cannot hide itself in the tests.

pub mod frame;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// How long a read waits for the peer before failing with `TimedOut`.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`RawClient::is_closed`] waits for the peer to close.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Larger backend messages are treated as garbage rather than buffered.
const MAX_MESSAGE: usize = 64 << 20;

/// One backend message: its type byte and the body after the length field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub tag: u8,
    pub body: Bytes,
}

impl RawMessage {
    /// The SQLSTATE ('C' field) of an ErrorResponse or NoticeResponse.
    pub fn error_code(&self) -> Option<String> {
        self.error_field(b'C')
    }

    /// The message ('M' field) of an ErrorResponse or NoticeResponse.
    pub fn error_message(&self) -> Option<String> {
        self.error_field(b'M')
    }

    /// Any field of an ErrorResponse or NoticeResponse, e.g. `b'S'` for the
    /// severity or `b'D'` for the detail.
    pub fn error_field(&self, field: u8) -> Option<String> {
        if self.tag != b'E' && self.tag != b'N' {
            return None;
        }
        // Fields are a type byte and a NUL-terminated string, ended by a 0 type.
        let mut rest = &self.body[..];
        while let Some((&kind, after)) = rest.split_first() {
            if kind == 0 {
                break;
            }
            let end = after.iter().position(|b| *b == 0)?;
            if kind == field {
                return Some(String::from_utf8_lossy(&after[..end]).into_owned());
            }
            rest = &after[end + 1..];
        }
        None
    }
}

/// A TCP connection plus what was read but not yet handed out.
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    pub async fn connect(addr: SocketAddr) -> io::Result<RawClient> {
        let stream = timeout(READ_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| timed_out("connect"))??;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream,
            buf: BytesMut::with_capacity(8192),
        })
    }

    /// Sends `bytes` as they are (malformed on purpose, if need be).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends a protocol 3.0 StartupMessage for `user` and `database`.
    pub async fn startup(&mut self, user: &str, database: &str) -> io::Result<()> {
        self.send(&frame::startup(
            &[("user", user), ("database", database)],
            0,
        ))
        .await
    }

    /// The next backend message; `None` when the peer closed cleanly between
    /// messages. Fails with `TimedOut` after 10 s without a whole message,
    /// with `UnexpectedEof` when the peer closes mid-message and with
    /// `InvalidData` on a length below 4 or above 64 MiB.
    pub async fn read_message(&mut self) -> io::Result<Option<RawMessage>> {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some(message) = self.take_message()? {
                return Ok(Some(message));
            }
            if self.fill(deadline).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed after {} bytes of a message", self.buf.len()),
                    ))
                };
            }
        }
    }

    /// All messages up to and including the first whose type is `tag`.
    pub async fn read_until(&mut self, tag: u8) -> io::Result<Vec<RawMessage>> {
        let mut messages = Vec::new();
        loop {
            match self.read_message().await? {
                Some(message) => {
                    let done = message.tag == tag;
                    messages.push(message);
                    if done {
                        return Ok(messages);
                    }
                }
                None => {
                    let seen: String = messages.iter().map(|m| m.tag as char).collect();
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("peer closed before '{}' (received: {seen:?})", tag as char),
                    ));
                }
            }
        }
    }

    /// One byte, for the answer to SSLRequest or GSSENCRequest ('S'/'G'/'N').
    pub async fn read_byte(&mut self) -> io::Result<u8> {
        let deadline = Instant::now() + READ_TIMEOUT;
        while self.buf.is_empty() {
            if self.fill(deadline).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.get_u8())
    }

    /// Whether the peer closes the connection (EOF or reset) within 5 s.
    /// Data that arrives meanwhile is kept for later reads.
    pub async fn is_closed(&mut self) -> bool {
        let deadline = Instant::now() + CLOSE_WAIT;
        loop {
            match self.fill(deadline).await {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::TimedOut => return false,
                Err(_) => return true,
            }
        }
    }

    /// The underlying stream, e.g. to shut down the write half.
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Splits a whole message off the buffer, if there is one.
    fn take_message(&mut self) -> io::Result<Option<RawMessage>> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let declared = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len = usize::try_from(declared).unwrap_or(usize::MAX);
        if !(4..=MAX_MESSAGE).contains(&len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "message '{}' declares length {declared}",
                    self.buf[0] as char
                ),
            ));
        }
        if self.buf.len() < 1 + len {
            self.buf.reserve(1 + len - self.buf.len());
            return Ok(None);
        }
        let tag = self.buf.get_u8();
        self.buf.advance(4);
        let body = self.buf.split_to(len - 4).freeze();
        Ok(Some(RawMessage { tag, body }))
    }

    /// Reads more bytes into the buffer; `Ok(0)` on EOF.
    async fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(8192);
        }
        tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| timed_out("read"))?
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} timed out"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_response(fields: &[(u8, &str)]) -> RawMessage {
        let mut body = Vec::new();
        for (kind, value) in fields {
            body.push(*kind);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        RawMessage {
            tag: b'E',
            body: body.into(),
        }
    }

    #[test]
    fn error_fields_are_found_by_type() {
        let err = error_response(&[(b'S', "ERROR"), (b'C', "28P01"), (b'M', "bad password")]);
        assert_eq!(err.error_code().as_deref(), Some("28P01"));
        assert_eq!(err.error_message().as_deref(), Some("bad password"));
        assert_eq!(err.error_field(b'D'), None);
        let other = RawMessage {
            tag: b'Z',
            body: Bytes::from_static(b"I"),
        };
        assert_eq!(other.error_code(), None);
    }

    #[test]
    fn truncated_error_fields_do_not_panic() {
        let err = RawMessage {
            tag: b'E',
            body: Bytes::from_static(b"Cunterminated"),
        };
        assert_eq!(err.error_code(), None);
    }
}
