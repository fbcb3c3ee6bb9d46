//! The hot path: bytes between a client and its server connection.
//!
//! Hand-written rather than `tokio::io::copy_bidirectional` because the proxy must see every
//! message boundary (ReadyForQuery status, Terminate, statement names, oversized lengths)
//! while still moving bytes in bulk: everything one read returns is forwarded with one write,
//! frames stay where they were read (no copy into message structs), and a 50 MB row streams
//! through a fixed buffer, lent only while bytes are pending (see `buffers`). Both directions are polled by one task with their own buffers, so
//! neither side can block the other (a client pipelining thousands of queries while the
//! server answers cannot deadlock the proxy). What to do with each message is up to a
//! [`Hooks`] implementation: session mode only watches, transaction mode also rewrites.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use dbwarden_wire::{ProtocolError, ScanEvent};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use crate::stream::Stream;

mod buffers;
mod half;

pub use half::Half;
use half::Halt;

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
    /// A server hook said the exchange is over (transaction done) and it all reached the client.
    Done,
    /// The hooks' [`Hooks::deadline`] passed. Nothing is lost: calling `relay` again with
    /// the same halves carries on where this stopped.
    Deadline,
}

/// What a hook decides for one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Forward,
    /// Leave the frame out (a hook may put a replacement in `inject`).
    Drop,
    /// Hold this frame and everything after it, and end once the rest is written.
    Stop,
    /// Forward this frame, hold everything after it, and end once it is written.
    ForwardStop,
}

/// Decisions per message. `frame` is the whole frame (header included) when the matching
/// `*_whole` says so, else the part of it at hand. Bytes a hook writes to `inject` go out
/// just before the current frame.
pub trait Hooks {
    fn client_whole(&self, tag: u8) -> bool;
    fn server_whole(&self, tag: u8) -> bool;
    fn client_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError>;
    fn server_frame(
        &mut self,
        tag: u8,
        frame: &[u8],
        inject: &mut BytesMut,
    ) -> Result<Act, ProtocolError>;
    /// The server side is between frames with nothing unread: a chance to send the client
    /// answers the proxy made up.
    fn server_at_rest(&mut self, _inject: &mut BytesMut) {}
    /// When relaying should stop with [`RelayEnd::Deadline`]. Asked only when both sides
    /// would block, and a timer is armed only while this says `Some`.
    fn deadline(&self) -> Option<Instant> {
        None
    }
}

enum Fail {
    SrcIo(io::Error),
    SrcProtocol(ProtocolError),
    Dst(io::Error),
}

/// Scans what is buffered, letting the hooks decide on each frame.
fn scan<H: Hooks>(h: &mut Half, hooks: &mut H, up: bool) -> Result<(), ProtocolError> {
    while h.scanned < h.end && h.hold == Halt::Running {
        let whole = |t: u8| {
            if up {
                hooks.client_whole(t)
            } else {
                hooks.server_whole(t)
            }
        };
        let event = h.scanner.scan(&h.buf[h.scanned..h.end], whole)?;
        let (tag, avail) = match event {
            ScanEvent::NeedMore => break,
            ScanEvent::Continue(n) => {
                h.scanned += n;
                continue;
            }
            ScanEvent::Frame { tag, avail, .. } => (tag, avail),
        };
        let frame = &h.buf[h.scanned..h.scanned + avail];
        let act = if up {
            hooks.client_frame(tag, frame, &mut h.inject)?
        } else {
            hooks.server_frame(tag, frame, &mut h.inject)?
        };
        if !h.inject.is_empty() {
            let inject = std::mem::take(&mut h.inject);
            h.insert_front(&inject);
            h.inject = inject;
            h.inject.clear();
        }
        match act {
            Act::Forward => h.scanned += avail,
            Act::Drop => {
                h.buf.copy_within(h.scanned + avail..h.end, h.scanned);
                h.end -= avail;
            }
            Act::Stop => h.hold = Halt::Held,
            Act::ForwardStop => {
                h.scanned += avail;
                h.hold = Halt::AfterFrame;
            }
        }
    }
    if !up && h.scanned == h.end && h.scanner.at_boundary() && h.hold == Halt::Running {
        hooks.server_at_rest(&mut h.inject);
        if !h.inject.is_empty() {
            let inject = std::mem::take(&mut h.inject);
            h.insert_front(&inject);
            h.inject = inject;
            h.inject.clear();
        }
    }
    Ok(())
}

/// Moves bytes one way until both sides would block. Returns whether anything moved.
fn pump<H: Hooks>(
    h: &mut Half,
    cx: &mut Context<'_>,
    src: &mut Stream,
    dst: &mut Stream,
    hooks: &mut H,
    up: bool,
) -> Result<bool, Fail> {
    let mut progress = false;
    loop {
        while h.start < h.scanned {
            match Pin::new(&mut *dst).poll_write(cx, &h.buf[h.start..h.scanned]) {
                Poll::Ready(Ok(0)) => return Err(Fail::Dst(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    h.start += n;
                    if let Some((pool, up)) = &h.counted {
                        pool.moved(*up, n);
                    }
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
        let before = h.scanned;
        scan(h, hooks, up).map_err(Fail::SrcProtocol)?;
        if h.eof {
            // Whatever the peer sent before closing still goes through, scanned or not.
            // Sticky: once the cut bytes are forced through, the half looks clean again.
            h.cut |= h.mid_message();
            h.scanned = h.end;
        }
        if h.scanned != before {
            continue; // write what was just scanned (or injected) before reading more
        }
        if h.hold != Halt::Running || h.eof {
            return Ok(progress);
        }
        if !h.has_buffer() {
            // Nothing pending: borrow a buffer only once the socket has something.
            match src.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(Fail::SrcIo(e)),
                Poll::Pending => return Ok(progress),
            }
            h.acquire();
        }
        if h.end == h.buf.len() {
            if h.start == 0 && h.scanned > 0 {
                return Ok(progress); // full of bytes waiting to be written
            }
            h.make_room();
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

/// Relays until one side ends the exchange or a hook stops it.
pub async fn relay<H: Hooks>(
    client: &mut Stream,
    server: &mut Stream,
    up: &mut Half,
    down: &mut Half,
    hooks: &mut H,
) -> RelayEnd {
    // Created the first time the hooks name a deadline, so relaying without timeouts
    // configured never touches the timer wheel.
    let mut timer: Pin<&mut Option<Sleep>> = std::pin::pin!(None);
    let end = poll_fn(|cx| loop {
        // Once the server side says the exchange is over, take nothing more from the client.
        let up_moved = if down.hold == Halt::Running {
            match pump(up, cx, client, server, hooks, true) {
                Ok(p) => p,
                Err(Fail::SrcIo(_)) if up.mid_message() => {
                    return Poll::Ready(RelayEnd::ClientGoneMidMessage)
                }
                Err(Fail::SrcIo(e)) => return Poll::Ready(RelayEnd::ClientIo(e)),
                Err(Fail::SrcProtocol(e)) => return Poll::Ready(RelayEnd::ClientProtocol(e)),
                Err(Fail::Dst(e)) => return Poll::Ready(RelayEnd::ServerIo(e)),
            }
        } else {
            false
        };
        let down_moved = match pump(down, cx, server, client, hooks, false) {
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
        if up.hold == Halt::Held && up.drained() {
            return Poll::Ready(RelayEnd::ClientTerminate);
        }
        if down.hold == Halt::AfterFrame && down.drained() {
            return Poll::Ready(RelayEnd::Done);
        }
        if down.eof && down.start == down.end && down.drained() {
            return Poll::Ready(RelayEnd::ServerEof);
        }
        if !up_moved && !down_moved {
            if let Some(at) = hooks.deadline() {
                if timer_fired(timer.as_mut(), at, cx) {
                    return Poll::Ready(RelayEnd::Deadline);
                }
            }
            // Both sides would block: a half with nothing pending needs no buffer until a
            // read is ready again (the reads above registered the wakers).
            up.release();
            down.release();
            return Poll::Pending;
        }
    })
    .await;
    up.release();
    down.release();
    end
}

/// Arms (or re-arms) the timer for `at` and polls it.
fn timer_fired(mut timer: Pin<&mut Option<Sleep>>, at: Instant, cx: &mut Context<'_>) -> bool {
    let at = tokio::time::Instant::from_std(at);
    match timer.as_mut().as_pin_mut() {
        Some(sleep) if sleep.deadline() == at => {}
        Some(sleep) => sleep.reset(at),
        None => timer.set(Some(tokio::time::sleep_until(at))),
    }
    match timer.as_pin_mut() {
        Some(sleep) => sleep.poll(cx).is_ready(),
        None => false,
    }
}

#[cfg(test)]
mod tests;
