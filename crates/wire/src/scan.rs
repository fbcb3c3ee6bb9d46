//! Frame boundaries on the forwarding path.
//!
//! The proxy must not buffer a 50 MB DataRow to forward it, yet it must see every message's type
//! byte (and the whole of the few small messages it acts on, such as ReadyForQuery). The scanner
//! keeps just enough state for that: how many bytes of the current frame are still to come.
//! Hand-written because it runs on every byte the proxy forwards.

use crate::{Decoder, ProtocolError};

/// What the next bytes of a stream are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanEvent {
    /// The first `n` bytes continue a frame already announced: pass them through.
    Continue(usize),
    /// A frame starts at the first byte. `total` is its size including the 5-byte header;
    /// `avail` of those bytes are in the buffer now (all of them when the caller asked for the
    /// whole frame) and are consumed by this event.
    Frame { tag: u8, total: usize, avail: usize },
    /// Not enough bytes to say; read more and scan again from the same position.
    NeedMore,
}

#[derive(Clone, Copy, Debug)]
pub struct Scanner {
    decoder: Decoder,
    remaining: usize,
}

impl Scanner {
    pub fn new(max_len: u32) -> Scanner {
        Scanner {
            decoder: Decoder::new(max_len),
            remaining: 0,
        }
    }

    pub fn max_len(&self) -> u32 {
        self.decoder.max_len()
    }

    /// True between frames, i.e. when the stream is at a message boundary.
    pub fn at_boundary(&self) -> bool {
        self.remaining == 0
    }

    /// Looks at `buf` (the bytes not scanned yet). `want_whole(tag)` says which frames the caller
    /// must see in one piece; for those, `NeedMore` is returned until the whole frame is buffered.
    pub fn scan(
        &mut self,
        buf: &[u8],
        want_whole: impl Fn(u8) -> bool,
    ) -> Result<ScanEvent, ProtocolError> {
        if buf.is_empty() {
            return Ok(ScanEvent::NeedMore);
        }
        if self.remaining > 0 {
            let n = self.remaining.min(buf.len());
            self.remaining -= n;
            return Ok(ScanEvent::Continue(n));
        }
        if buf.len() < 5 {
            return Ok(ScanEvent::NeedMore);
        }
        let tag = buf[0];
        let len = self
            .decoder
            .check_len(u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]))?;
        let total = len as usize + 1;
        if want_whole(tag) && buf.len() < total {
            return Ok(ScanEvent::NeedMore);
        }
        let avail = total.min(buf.len());
        self.remaining = total - avail;
        Ok(ScanEvent::Frame { tag, total, avail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// Drives the scanner the way the proxy does, over a stream cut into `chunk`-sized reads,
    /// and returns the tags it saw and how many bytes it passed.
    fn drive(stream: &[u8], chunk: usize, whole: &[u8]) -> (Vec<u8>, usize) {
        let mut s = Scanner::new(1 << 20);
        let mut buf: Vec<u8> = Vec::new();
        let (mut tags, mut passed) = (Vec::new(), 0);
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            loop {
                match s.scan(&buf, |t| whole.contains(&t)).unwrap() {
                    ScanEvent::NeedMore => break,
                    ScanEvent::Continue(n) => {
                        passed += n;
                        buf.drain(..n);
                    }
                    ScanEvent::Frame { tag, total, avail } => {
                        if whole.contains(&tag) {
                            assert_eq!(avail, total);
                        }
                        tags.push(tag);
                        passed += avail;
                        buf.drain(..avail);
                    }
                }
            }
        }
        (tags, passed)
    }

    #[test]
    fn sees_every_type_byte_whatever_the_read_sizes() {
        let mut stream = frame(b'T', b"row description");
        stream.extend(frame(b'D', &vec![7u8; 100_000]));
        stream.extend(frame(b'C', b"SELECT 1\0"));
        stream.extend(frame(b'Z', b"I"));
        for chunk in [1, 2, 3, 5, 7, 64, 4096, 1 << 20] {
            let (tags, passed) = drive(&stream, chunk, b"Z");
            assert_eq!(tags, b"TDCZ", "chunk {chunk}");
            assert_eq!(passed, stream.len(), "chunk {chunk}");
        }
    }

    #[test]
    fn large_frames_pass_in_pieces_without_waiting_for_the_whole() {
        let mut s = Scanner::new(1 << 30);
        let big = frame(b'D', &vec![0u8; 10_000]);
        let ev = s.scan(&big[..100], |t| t == b'Z').unwrap();
        assert_eq!(
            ev,
            ScanEvent::Frame {
                tag: b'D',
                total: 10_005,
                avail: 100
            }
        );
        assert!(!s.at_boundary());
        assert_eq!(
            s.scan(&big[100..], |_| false).unwrap(),
            ScanEvent::Continue(9_905)
        );
        assert!(s.at_boundary());
    }

    #[test]
    fn bad_lengths_are_protocol_errors() {
        let mut s = Scanner::new(1000);
        assert!(s.scan(&[b'Q', 0, 0, 0, 2], |_| false).is_err());
        assert!(s.scan(&[b'Q', 0, 0, 0x10, 0], |_| false).is_err());
    }
}
