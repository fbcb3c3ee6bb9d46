//! The hot path: bytes between a client and its server connection.
//!
//! Hand-written rather than `tokio::io::copy_bidirectional` because the proxy must see every
//! message boundary (ReadyForQuery status, Terminate, oversized lengths) while still moving
//! bytes in bulk: everything one read returns is forwarded with one write, frames are never
//! copied into messages, and a 50 MB row streams through a fixed buffer. Both directions are
//! polled by one task with their own buffers, so neither side can block the other (a client
//! pipelining thousands of queries while the server answers cannot deadlock the proxy).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use dbwarden_wire::backend::{self, tag as be, TxStatus};
use dbwarden_wire::frontend::{self, tag as fe};
use dbwarden_wire::{ProtocolError, ScanEvent, Scanner};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::stream::Stream;

const BUF_SIZE: usize = 16 * 1024;

/// Why relaying stopped.
#[derive(Debug)]
pub enum RelayEnd {
    /// The client sent Terminate; everything before it reached the server.
    ClientTerminate,
    ClientEof,
    /// The client closed or failed in the middle of a message: the server connection may hold
    /// half of it (or miss the end of what it got), so it can only be closed.
    ClientGoneMidMessage,
    ClientIo(io::Error),
    ClientProtocol(ProtocolError),
    /// The server closed; everything it sent reached the client.
    ServerEof,
    ServerIo(io::Error),
    ServerProtocol(ProtocolError),
}

/// What the relay knows about the server connection's state.
#[derive(Debug)]
pub struct Track {
    /// Queries and Syncs sent that have not had their ReadyForQuery yet.
    pub pending: u32,
    pub status: TxStatus,
    /// ParameterStatus reports seen on the way to the client.
    pub params: Vec<(String, String)>,
}

/// What a frame hook decides.
enum Act {
    Forward,
    /// Hold this frame and everything after it, and end the relay once the rest is written.
    Stop,
}

struct Half {
    buf: Vec<u8>,
    /// `buf[start..scanned]` is ready to write, `buf[scanned..end]` is read but not scanned.
    start: usize,
    scanned: usize,
    end: usize,
    scanner: Scanner,
    unflushed: bool,
    stopped: bool,
    eof: bool,
    /// The peer closed in the middle of a frame (see `mid_message`).
    cut: bool,
}

impl Half {
    fn new(max_message: u32, seed: &[u8]) -> Half {
        let mut buf = vec![0; BUF_SIZE.max(seed.len())];
        buf[..seed.len()].copy_from_slice(seed);
        Half {
            buf,
            start: 0,
            scanned: 0,
            end: seed.len(),
            scanner: Scanner::new(max_message),
            unflushed: false,
            stopped: false,
            eof: false,
            cut: false,
        }
    }

    fn drained(&self) -> bool {
        self.start == self.scanned && !self.unflushed
    }

    /// Whether some of what the peer sent has not reached the other side as whole frames.
    /// Conservative: bytes still waiting to be written count even when they are whole frames.
    fn mid_message(&self) -> bool {
        !self.scanner.at_boundary() || self.start != self.end
    }
}

enum Fail {
    SrcIo(io::Error),
    SrcProtocol(ProtocolError),
    Dst(io::Error),
}

/// Moves bytes one way until both sides would block. Returns whether anything moved.
fn pump<H>(
    h: &mut Half,
    cx: &mut Context<'_>,
    src: &mut Stream,
    dst: &mut Stream,
    want_whole: fn(u8) -> bool,
    hook: &mut H,
) -> Result<bool, Fail>
where
    H: FnMut(u8, &[u8]) -> Result<Act, ProtocolError>,
{
    let mut progress = false;
    loop {
        while h.start < h.scanned {
            match Pin::new(&mut *dst).poll_write(cx, &h.buf[h.start..h.scanned]) {
                Poll::Ready(Ok(0)) => return Err(Fail::Dst(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    h.start += n;
                    h.unflushed = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => return Err(Fail::Dst(e)),
                Poll::Pending => break,
            }
        }
        if h.start == h.scanned && h.unflushed {
            // A no-op for TCP; TLS may hold a record back until flushed.
            match Pin::new(&mut *dst).poll_flush(cx) {
                Poll::Ready(Ok(())) => h.unflushed = false,
                Poll::Ready(Err(e)) => return Err(Fail::Dst(e)),
                Poll::Pending => {}
            }
        }
        if h.start == h.end {
            (h.start, h.scanned, h.end) = (0, 0, 0);
        }
        while h.scanned < h.end && !h.stopped {
            let event = h
                .scanner
                .scan(&h.buf[h.scanned..h.end], want_whole)
                .map_err(Fail::SrcProtocol)?;
            match event {
                ScanEvent::NeedMore => break,
                ScanEvent::Continue(n) => h.scanned += n,
                ScanEvent::Frame { tag, avail, .. } => {
                    let frame = &h.buf[h.scanned..h.scanned + avail];
                    match hook(tag, frame).map_err(Fail::SrcProtocol)? {
                        Act::Forward => h.scanned += avail,
                        Act::Stop => h.stopped = true,
                    }
                }
            }
        }
        if h.eof {
            // Whatever the peer sent before closing still goes through, scanned or not.
            h.cut = h.mid_message();
            h.scanned = h.end;
        }
        if h.stopped || h.eof {
            return Ok(progress);
        }
        if h.end == h.buf.len() {
            if h.start > 0 {
                h.buf.copy_within(h.start..h.end, 0);
                (h.scanned, h.end) = (h.scanned - h.start, h.end - h.start);
                h.start = 0;
            } else if h.scanned == h.start {
                // A frame the hook needs whole does not fit: grow (its length was checked).
                let len = h.buf.len();
                h.buf.resize(len * 2, 0);
            } else {
                return Ok(progress); // full of bytes waiting to be written
            }
        }
        let mut rb = ReadBuf::new(&mut h.buf[h.end..]);
        match Pin::new(&mut *src).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    h.eof = true;
                } else {
                    h.end += n;
                    progress = true;
                }
            }
            Poll::Ready(Err(e)) => return Err(Fail::SrcIo(e)),
            Poll::Pending => return Ok(progress),
        }
    }
}

fn client_whole(tag: u8) -> bool {
    tag == fe::TERMINATE
}

fn server_whole(tag: u8) -> bool {
    tag == be::READY_FOR_QUERY || tag == be::PARAMETER_STATUS
}

/// Relays until one side ends the session. `client_seed` and `server_seed` are bytes already
/// read past the login (a client that pipelined its first query).
pub async fn relay(
    client: &mut Stream,
    server: &mut Stream,
    track: &mut Track,
    max_message: u32,
    client_seed: &[u8],
    server_seed: &[u8],
) -> RelayEnd {
    let mut up = Half::new(max_message, client_seed);
    let mut down = Half::new(max_message, server_seed);
    poll_fn(|cx| loop {
        let mut client_hook = |tag: u8, _frame: &[u8]| {
            if tag == fe::TERMINATE {
                return Ok(Act::Stop);
            }
            if frontend::expects_ready(tag) {
                track.pending += 1;
            }
            Ok(Act::Forward)
        };
        let up_moved = match pump(&mut up, cx, client, server, client_whole, &mut client_hook) {
            Ok(p) => p,
            Err(Fail::SrcIo(_)) if up.mid_message() => {
                return Poll::Ready(RelayEnd::ClientGoneMidMessage)
            }
            Err(Fail::SrcIo(e)) => return Poll::Ready(RelayEnd::ClientIo(e)),
            Err(Fail::SrcProtocol(e)) => return Poll::Ready(RelayEnd::ClientProtocol(e)),
            Err(Fail::Dst(e)) => return Poll::Ready(RelayEnd::ServerIo(e)),
        };
        let mut server_hook = |tag: u8, frame: &[u8]| {
            match tag {
                be::READY_FOR_QUERY => {
                    track.status = backend::ready_status(&frame[5..])?;
                    track.pending = track.pending.saturating_sub(1);
                }
                be::PARAMETER_STATUS => {
                    let (k, v) = backend::parameter_status(&frame[5..])?;
                    track.params.push((k.to_owned(), v.to_owned()));
                }
                _ => {}
            }
            Ok(Act::Forward)
        };
        let down_moved = match pump(
            &mut down,
            cx,
            server,
            client,
            server_whole,
            &mut server_hook,
        ) {
            Ok(p) => p,
            Err(Fail::SrcIo(e)) => return Poll::Ready(RelayEnd::ServerIo(e)),
            Err(Fail::SrcProtocol(e)) => return Poll::Ready(RelayEnd::ServerProtocol(e)),
            Err(Fail::Dst(_)) if up.mid_message() => {
                return Poll::Ready(RelayEnd::ClientGoneMidMessage)
            }
            Err(Fail::Dst(e)) => return Poll::Ready(RelayEnd::ClientIo(e)),
        };
        if up.eof && up.cut {
            return Poll::Ready(RelayEnd::ClientGoneMidMessage);
        }
        if up.eof {
            return Poll::Ready(RelayEnd::ClientEof);
        }
        if up.stopped && up.drained() {
            return Poll::Ready(RelayEnd::ClientTerminate);
        }
        if down.eof && down.start == down.end && down.drained() {
            return Poll::Ready(RelayEnd::ServerEof);
        }
        if !up_moved && !down_moved {
            return Poll::Pending;
        }
    })
    .await
}
