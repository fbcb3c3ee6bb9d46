use bytes::{Buf, Bytes, BytesMut};

use crate::ProtocolError;

/// One whole tagged message exactly as it was on the wire: tag, length, body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// Wraps bytes that hold exactly one frame (tag + length + body). The caller has checked the length.
    pub fn from_wire(bytes: Bytes) -> Result<Frame, ProtocolError> {
        if bytes.len() < 5 {
            return Err(ProtocolError::malformed("frame"));
        }
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        if len + 1 != bytes.len() {
            return Err(ProtocolError::malformed("frame"));
        }
        Ok(Frame { bytes })
    }

    pub fn tag(&self) -> u8 {
        self.bytes[0]
    }

    /// The payload after the 5-byte header.
    pub fn body(&self) -> &[u8] {
        &self.bytes[5..]
    }

    /// The whole frame, header included, ready to forward without a copy.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }

    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
}

/// Splits a byte stream into frames.
///
/// Cancel-safe by construction: it only looks at the buffer it is given and consumes a frame
/// only when the whole frame is there, so a read that is interrupted loses nothing.
#[derive(Clone, Copy, Debug)]
pub struct Decoder {
    max_len: u32,
}

impl Decoder {
    /// `max_len` bounds the length field (which counts itself but not the tag).
    pub fn new(max_len: u32) -> Decoder {
        Decoder {
            max_len: max_len.max(4),
        }
    }

    pub fn max_len(&self) -> u32 {
        self.max_len
    }

    /// A tagged message: `Ok(None)` means "need more bytes".
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Frame>, ProtocolError> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let len = self.check_len(u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]))?;
        let total = len as usize + 1;
        if buf.len() < total {
            // Reserve only what the validated length needs, never more.
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        Ok(Some(Frame {
            bytes: buf.split_to(total).freeze(),
        }))
    }

    /// The untagged first message of a connection (startup, SSLRequest, cancel): the body after
    /// the length word. Startup packets are small, so they get a tighter cap than `max_len`.
    pub fn decode_startup(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        const MAX_STARTUP: u32 = 10_000;
        if buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        if len < 8 {
            return Err(ProtocolError::LengthTooShort { len });
        }
        if len > MAX_STARTUP.min(self.max_len) {
            return Err(ProtocolError::LengthTooLong {
                len,
                max: MAX_STARTUP.min(self.max_len),
            });
        }
        if buf.len() < len as usize {
            buf.reserve(len as usize - buf.len());
            return Ok(None);
        }
        let mut packet = buf.split_to(len as usize);
        packet.advance(4);
        Ok(Some(packet.freeze()))
    }

    pub(crate) fn check_len(&self, len: u32) -> Result<u32, ProtocolError> {
        if len < 4 {
            Err(ProtocolError::LengthTooShort { len })
        } else if len > self.max_len {
            Err(ProtocolError::LengthTooLong {
                len,
                max: self.max_len,
            })
        } else {
            Ok(len)
        }
    }
}

#[cfg(test)]
mod tests;
