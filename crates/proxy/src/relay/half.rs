//! One direction's bytes: a lent buffer (see `buffers`), where the next frame starts, and
//! what the hooks decided about the stream so far.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use dbwarden_wire::frontend::tag as fe;
use dbwarden_wire::Scanner;
use tokio::io::{AsyncRead, ReadBuf};

use super::buffers;
use crate::stats::PoolStats;
use crate::stream::Stream;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Halt {
    Running,
    Held,
    AfterFrame,
}

/// One direction's buffer. `buf[start..scanned]` is ready to write, `buf[scanned..end]` is
/// read but not yet scanned. `buf` is empty (no allocation) whenever nothing is pending
/// between wakeups: see [`Half::release`].
pub struct Half {
    pub(super) buf: Vec<u8>,
    pub(super) start: usize,
    pub(super) scanned: usize,
    pub(super) end: usize,
    pub(super) scanner: Scanner,
    pub(super) inject: BytesMut,
    pub(super) unflushed: bool,
    pub(super) hold: Halt,
    pub(super) eof: bool,
    /// The peer closed in the middle of a frame (see `mid_message`).
    pub(super) cut: bool,
    /// Where the bytes written are counted (the pool's totals); `true` = client to server.
    pub(super) counted: Option<(Arc<PoolStats>, bool)>,
}

impl Half {
    pub fn new(max_message: u32) -> Half {
        Half {
            buf: Vec::new(),
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
    pub fn count_into(&mut self, pool: Arc<PoolStats>, up: bool) {
        self.counted = Some((pool, up));
    }

    /// A half for the other direction of the same session: same size limit, counted into
    /// the same pool.
    pub fn opposite(&self) -> Half {
        let mut h = Half::new(self.scanner.max_len());
        h.counted = self.counted.as_ref().map(|(pool, up)| (pool.clone(), !up));
        h
    }

    /// Bytes read before relaying began (a client that pipelined past its login).
    pub fn seed(&mut self, bytes: &[u8]) {
        self.insert_at(self.end, bytes);
    }

    /// Nothing held: every byte read has been written.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether a buffer is lent to this half now.
    pub fn has_buffer(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Gives the buffer back when it holds nothing: the half keeps its place in the stream
    /// (scanner, hold, counters), only the bytes' storage goes.
    pub(super) fn release(&mut self) {
        if self.start == self.end && !self.buf.is_empty() {
            (self.start, self.scanned, self.end) = (0, 0, 0);
            buffers::give(std::mem::take(&mut self.buf));
        }
    }

    /// Borrows a buffer if none is lent.
    pub(super) fn acquire(&mut self) {
        if self.buf.is_empty() {
            self.buf = buffers::take();
        }
    }

    /// Reads once from `src` (for a client with no server connection). 0 means EOF. While
    /// nothing has arrived the half holds no buffer: this is where idle clients wait.
    pub fn poll_fill(&mut self, cx: &mut Context<'_>, src: &mut Stream) -> Poll<io::Result<usize>> {
        if !self.has_buffer() {
            std::task::ready!(src.poll_read_ready(cx))?;
            self.acquire();
        }
        self.make_room();
        let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
        match Pin::new(&mut *src).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                self.end += n;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                // The read registered the waker; the buffer is not needed until it fires.
                self.release();
                Poll::Pending
            }
        }
    }

    /// [`Half::poll_fill`] as a future.
    #[cfg(test)]
    pub async fn fill(&mut self, src: &mut Stream) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_fill(cx, src)).await
    }

    /// The next unscanned bytes are a Terminate message.
    pub fn starts_with_terminate(&self) -> bool {
        self.scanner.at_boundary()
            && self.buf[self.scanned..self.end].starts_with(&[fe::TERMINATE, 0, 0, 0, 4])
    }

    /// The first buffered frame when it is here whole and nothing was scanned yet (a client
    /// with no server connection): its tag and bytes, header included.
    pub fn first_frame(&self) -> Option<(u8, &[u8])> {
        self.frame_at(0)
    }

    /// The buffered frame that starts `offset` bytes in, when it is here whole and nothing
    /// was scanned yet (`offset` is the end of earlier frames, as `first_frame` gave them).
    pub fn frame_at(&self, offset: usize) -> Option<(u8, &[u8])> {
        if self.start != 0 || self.scanned != 0 || !self.scanner.at_boundary() {
            return None;
        }
        let head = self.buf.get(offset..(offset + 5).min(self.end))?;
        if head.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let total = 1 + len;
        if len < 4 || offset + total > self.end {
            return None;
        }
        Some((head[0], &self.buf[offset..offset + total]))
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
        if n == 0 {
            return;
        }
        self.acquire();
        if self.end + n > self.buf.len() {
            self.buf.resize((self.end + n).max(self.buf.len() * 2), 0);
        }
        self.buf.copy_within(at..self.end, at + n);
        self.buf[at..at + n].copy_from_slice(bytes);
        self.end += n;
    }

    /// Room to read into at `end`: moves pending bytes to the front, or grows the buffer
    /// when a frame the hooks need whole does not fit (its length was checked).
    pub(super) fn make_room(&mut self) {
        if self.end < self.buf.len() {
            return;
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            (self.scanned, self.end) = (self.scanned - self.start, self.end - self.start);
            self.start = 0;
        } else {
            let len = self.buf.len();
            self.buf.resize(len * 2, 0);
        }
    }

    pub(super) fn drained(&self) -> bool {
        self.start == self.scanned && !self.unflushed
    }

    /// Whether some of what the peer sent has not reached the other side as whole frames.
    /// Conservative: bytes still waiting to be written count even when they are whole frames.
    pub(super) fn mid_message(&self) -> bool {
        !self.scanner.at_boundary() || self.start != self.end
    }
}

impl Drop for Half {
    fn drop(&mut self) {
        buffers::give(std::mem::take(&mut self.buf));
    }
}
