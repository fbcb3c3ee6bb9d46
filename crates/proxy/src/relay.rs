//! The hot path: bytes between a client and its server connection.
//!
//! Hand-written rather than `tokio::io::copy_bidirectional` because the proxy must see every
//! message boundary (ReadyForQuery status, Terminate, statement names, oversized lengths)
//! while still moving bytes in bulk: everything one read returns is forwarded with one write,
//! frames stay where they were read (no copy into message structs), and a 50 MB row streams
//! through a fixed buffer. Both directions are polled by one task with their own buffers, so
//! neither side can block the other (a client pipelining thousands of queries while the
//! server answers cannot deadlock the proxy). What to do with each message is up to a
//! [`Hooks`] implementation: session mode only watches, transaction mode also rewrites.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use dbwarden_wire::frontend::tag as fe;
use dbwarden_wire::{ProtocolError, ScanEvent, Scanner};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Halt {
    Running,
    Held,
    AfterFrame,
}

/// One direction's buffer. `buf[start..scanned]` is ready to write, `buf[scanned..end]` is
/// read but not yet scanned.
pub struct Half {
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    end: usize,
    scanner: Scanner,
    inject: BytesMut,
    unflushed: bool,
    hold: Halt,
    eof: bool,
    /// The peer closed in the middle of a frame (see `mid_message`).
    cut: bool,
    /// Where the bytes written are counted (the pool's totals); `true` = client to server.
    counted: Option<(std::sync::Arc<crate::stats::PoolStats>, bool)>,
}

impl Half {
    pub fn new(max_message: u32) -> Half {
        Half {
            buf: vec![0; BUF_SIZE],
            start: 0,
            scanned: 0,
            end: 0,
            scanner: Scanner::new(max_message),
            inject: BytesMut::new(),
            unflushed: false,
            hold: Halt::Running,
            eof: false,
            cut: false,
            counted: None,
        }
    }

    /// Counts what this half writes into `pool`'s received (`up`) or sent totals: one
    /// relaxed add per write, so the figures are live in session mode too.
    pub fn count_into(&mut self, pool: std::sync::Arc<crate::stats::PoolStats>, up: bool) {
        self.counted = Some((pool, up));
    }

    /// Bytes read before relaying began (a client that pipelined past its login).
    pub fn seed(&mut self, bytes: &[u8]) {
        self.insert_at(self.end, bytes);
    }

    /// Nothing held: every byte read has been written.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Drops whatever is held and starts at a frame boundary again.
    pub fn clear(&mut self) {
        (self.start, self.scanned, self.end) = (0, 0, 0);
        self.scanner = Scanner::new(self.scanner_max());
        (self.unflushed, self.hold, self.eof, self.cut) = (false, Halt::Running, false, false);
    }

    fn scanner_max(&self) -> u32 {
        self.scanner.max_len()
    }

    /// Reads once from `src` (for a client with no server connection). 0 means EOF.
    pub async fn fill(&mut self, src: &mut Stream) -> io::Result<usize> {
        self.make_room();
        let n = src.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The next unscanned bytes are a Terminate message.
    pub fn starts_with_terminate(&self) -> bool {
        self.scanner.at_boundary()
            && self.buf[self.scanned..self.end].starts_with(&[fe::TERMINATE, 0, 0, 0, 4])
    }

    /// The first buffered frame when it is here whole and nothing was scanned yet (a client
    /// with no server connection): its tag and bytes, header included.
    pub fn first_frame(&self) -> Option<(u8, &[u8])> {
        if self.start != 0 || self.scanned != 0 || !self.scanner.at_boundary() {
            return None;
        }
        let head = self.buf.get(..5.min(self.end))?;
        if head.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let total = 1 + len;
        if len < 4 || total > self.end {
            return None;
        }
        Some((head[0], &self.buf[..total]))
    }

    /// Removes the first `n` buffered bytes (a frame the proxy answered itself).
    pub fn consume_front(&mut self, n: usize) {
        self.buf.copy_within(n..self.end, 0);
        self.end -= n;
    }

    /// Puts `bytes` ahead of everything not yet scanned (the proxy's own messages first).
    pub fn insert_front(&mut self, bytes: &[u8]) {
        self.insert_at(self.scanned, bytes);
        self.scanned += bytes.len();
    }

    fn insert_at(&mut self, at: usize, bytes: &[u8]) {
        let n = bytes.len();
        if self.end + n > self.buf.len() {
            self.buf.resize((self.end + n).max(self.buf.len() * 2), 0);
        }
        self.buf.copy_within(at..self.end, at + n);
        self.buf[at..at + n].copy_from_slice(bytes);
        self.end += n;
    }

    fn make_room(&mut self) {
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.scanned, self.end) = (self.scanned - self.start, self.end - self.start);
            self.start = 0;
        } else {
            // A frame the hooks need whole does not fit: grow (its length was checked).
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
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
    poll_fn(|cx| loop {
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
            return Poll::Pending;
        }
    })
    .await
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
