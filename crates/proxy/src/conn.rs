//! Message-at-a-time I/O for the login and control phases (startup, auth, reset queries).
//! The hot path does not use this: it relays raw bytes (see `relay`).

use std::io;

use bytes::{Bytes, BytesMut};
use dbwarden_wire::{Decoder, Frame, ProtocolError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::stream::Stream;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("connection closed")]
    Eof,
}

/// A stream with a read buffer and a decoder. Bytes read past a message stay buffered, so
/// nothing a pipelining peer sent is lost when the session moves on to relaying.
pub struct Conn {
    pub stream: Stream,
    pub rbuf: BytesMut,
    pub wbuf: BytesMut,
    pub decoder: Decoder,
}

impl Conn {
    pub fn new(stream: Stream, max_message: u32) -> Conn {
        Conn {
            stream,
            rbuf: BytesMut::with_capacity(1024),
            wbuf: BytesMut::with_capacity(1024),
            decoder: Decoder::new(max_message),
        }
    }

    /// Frees the buffers once login is over and they hold nothing: the relay reads and writes
    /// through buffers of its own, and an idle client should not keep two kilobytes it may
    /// never use again (an error message still gets written: an empty `BytesMut` grows).
    pub fn shrink(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    async fn fill(&mut self) -> Result<(), ReadError> {
        if self.rbuf.capacity() - self.rbuf.len() < 512 {
            self.rbuf.reserve(4096);
        }
        match self.stream.read_buf(&mut self.rbuf).await? {
            0 => Err(ReadError::Eof),
            _ => Ok(()),
        }
    }

    pub async fn read_frame(&mut self) -> Result<Frame, ReadError> {
        loop {
            if let Some(f) = self.decoder.decode(&mut self.rbuf)? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// The untagged first packet (startup, SSLRequest, GSSENCRequest, CancelRequest).
    pub async fn read_startup(&mut self) -> Result<Bytes, ReadError> {
        loop {
            if let Some(b) = self.decoder.decode_startup(&mut self.rbuf)? {
                return Ok(b);
            }
            self.fill().await?;
        }
    }

    /// Writes and flushes whatever was encoded into `wbuf`.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        self.stream.flush().await
    }
}
