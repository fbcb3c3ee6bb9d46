//! A small RESP2 client. Hand-written (rather than the `redis` crate) because the
//! doctor times TCP, TLS and AUTH/HELLO separately on one socket and must know which
//! authentication command the server accepted; it sends a few dozen commands, so
//! pipelining and reconnection logic would be dead weight.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::probe::Io;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl Reply {
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) | Reply::Error(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Reply::Bulk(None) | Reply::Array(None) => String::new(),
            Reply::Array(Some(v)) => v.iter().map(Reply::text).collect::<Vec<_>>().join(" "),
        }
    }
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(v)) => v,
            _ => &[],
        }
    }
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(i) => Some(*i),
            other => other.text().parse().ok(),
        }
    }
}

#[derive(Debug, Error)]
pub enum RedisError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Server(String),
    #[error("protocol error: {0}")]
    Protocol(String),
}

pub struct RedisConn {
    io: Box<dyn Io>,
    buf: BytesMut,
    timeout: Duration,
}

/// A cap on any single reply: the doctor never asks for big values.
const MAX_REPLY: usize = 64 * 1024 * 1024;

impl RedisConn {
    pub fn new(io: Box<dyn Io>, timeout: Duration) -> RedisConn {
        RedisConn {
            io,
            buf: BytesMut::with_capacity(16 * 1024),
            timeout,
        }
    }

    /// One command; a server error reply becomes `Err(Server)`.
    pub async fn cmd(&mut self, args: &[&str]) -> Result<Reply, RedisError> {
        let mut replies = self
            .pipeline(&[args.iter().map(|s| s.to_string()).collect()])
            .await?;
        match replies.pop() {
            Some(Reply::Error(e)) => Err(RedisError::Server(e)),
            Some(r) => Ok(r),
            None => Err(RedisError::Protocol("no reply".into())),
        }
    }

    /// Several commands in one write; replies (errors included) in order.
    pub async fn pipeline(&mut self, cmds: &[Vec<String>]) -> Result<Vec<Reply>, RedisError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.pipeline_inner(cmds))
            .await
            .map_err(|_| RedisError::Timeout(timeout))?
    }

    async fn pipeline_inner(&mut self, cmds: &[Vec<String>]) -> Result<Vec<Reply>, RedisError> {
        let mut out = Vec::new();
        for args in cmds {
            out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
            for a in args {
                out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                out.extend_from_slice(a.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            match parse(&self.buf, 0)? {
                Some((r, used)) => {
                    self.buf.advance(used);
                    replies.push(r);
                }
                None => {
                    if self.buf.len() > MAX_REPLY {
                        return Err(RedisError::Protocol("reply too large".into()));
                    }
                    if self.io.read_buf(&mut self.buf).await? == 0 {
                        return Err(RedisError::Io(io::ErrorKind::UnexpectedEof.into()));
                    }
                }
            }
        }
        Ok(replies)
    }

    pub async fn close(mut self) {
        let _ = self.cmd(&["QUIT"]).await;
        let _ = self.io.shutdown().await;
    }
}

fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(at..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], at + end + 2))
}

fn number(b: &[u8]) -> Result<i64, RedisError> {
    std::str::from_utf8(b)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RedisError::Protocol("bad length".into()))
}

/// Parses one reply starting at `at`; `Ok(None)` when more bytes are needed. Returns
/// the reply and the offset just past it.
pub fn parse(buf: &[u8], at: usize) -> Result<Option<(Reply, usize)>, RedisError> {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    let Some((body, next)) = line(buf, at + 1) else {
        return Ok(None);
    };
    let text = || String::from_utf8_lossy(body).into_owned();
    Ok(Some(match kind {
        b'+' => (Reply::Simple(text()), next),
        b'-' => (Reply::Error(text()), next),
        b':' => (Reply::Int(number(body)?), next),
        b'$' => {
            let n = number(body)?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), next)));
            }
            let n = n as usize;
            if n > MAX_REPLY {
                return Err(RedisError::Protocol("bulk too large".into()));
            }
            if buf.len() < next + n + 2 {
                return Ok(None);
            }
            (
                Reply::Bulk(Some(buf[next..next + n].to_vec())),
                next + n + 2,
            )
        }
        b'*' => {
            let n = number(body)?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), next)));
            }
            let mut items = Vec::with_capacity((n as usize).min(1024));
            let mut pos = next;
            for _ in 0..n {
                match parse(buf, pos)? {
                    Some((r, p)) => {
                        items.push(r);
                        pos = p;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(Some(items)), pos)
        }
        other => {
            return Err(RedisError::Protocol(format!(
                "unexpected reply type {:?}",
                other as char
            )))
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_and_partial_replies() {
        let full = b"*3\r\n+OK\r\n$5\r\nhello\r\n*2\r\n:42\r\n$-1\r\n";
        let (r, used) = parse(full, 0).unwrap().unwrap();
        assert_eq!(used, full.len());
        assert_eq!(
            r,
            Reply::Array(Some(vec![
                Reply::Simple("OK".into()),
                Reply::Bulk(Some(b"hello".to_vec())),
                Reply::Array(Some(vec![Reply::Int(42), Reply::Bulk(None)])),
            ]))
        );
        for cut in 0..full.len() {
            assert!(parse(&full[..cut], 0).unwrap().is_none(), "cut at {cut}");
        }
        assert!(parse(b"?x\r\n", 0).is_err());
    }
}
