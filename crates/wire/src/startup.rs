//! The untagged first message of a connection.

use crate::ProtocolError;

const SSL_REQUEST: u32 = 80877103;
const GSSENC_REQUEST: u32 = 80877104;
const CANCEL_REQUEST: u32 = 80877102;

/// What a client opened its connection with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Startup {
    SslRequest,
    GssEncRequest,
    /// The secret key is 4 bytes in protocol 3.0 and up to 256 bytes from 3.2 on.
    Cancel {
        pid: i32,
        key: Vec<u8>,
    },
    Startup {
        major: u16,
        minor: u16,
        params: Vec<(String, String)>,
    },
}

impl Startup {
    /// Parses the packet body after its length word (as `Decoder::decode_startup` returns it).
    pub fn parse(body: &[u8]) -> Result<Startup, ProtocolError> {
        if body.len() < 4 {
            return Err(ProtocolError::malformed("startup"));
        }
        let code = u32::from_be_bytes([body[0], body[1], body[2], body[3]]);
        let rest = &body[4..];
        match code {
            SSL_REQUEST if rest.is_empty() => Ok(Startup::SslRequest),
            GSSENC_REQUEST if rest.is_empty() => Ok(Startup::GssEncRequest),
            SSL_REQUEST | GSSENC_REQUEST => Err(ProtocolError::malformed("negotiation request")),
            CANCEL_REQUEST => {
                if rest.len() < 8 || rest.len() > 4 + 256 {
                    return Err(ProtocolError::malformed("CancelRequest"));
                }
                let pid = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
                Ok(Startup::Cancel {
                    pid,
                    key: rest[4..].to_vec(),
                })
            }
            version => {
                let (major, minor) = ((version >> 16) as u16, version as u16);
                // Another major version lays its packet out differently: report the version
                // (so the client hears "unsupported protocol") without parsing the rest.
                let params = if major == crate::PROTOCOL_VERSION_3 {
                    parse_params(rest)?
                } else {
                    Vec::new()
                };
                Ok(Startup::Startup {
                    major,
                    minor,
                    params,
                })
            }
        }
    }
}

/// Name/value pairs of C strings, ended by an empty name.
fn parse_params(mut rest: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let mut params = Vec::new();
    loop {
        let (name, after) = cstr(rest).ok_or(ProtocolError::malformed("startup"))?;
        if name.is_empty() {
            if !after.is_empty() {
                return Err(ProtocolError::malformed("startup"));
            }
            return Ok(params);
        }
        let (value, after) = cstr(after).ok_or(ProtocolError::malformed("startup"))?;
        params.push((name.to_owned(), value.to_owned()));
        rest = after;
    }
}

/// A NUL-terminated UTF-8 string at the start of `buf`, and what follows it. Every Query
/// and Parse goes through here: `memchr` finds the NUL a vector at a time.
pub(crate) fn cstr(buf: &[u8]) -> Option<(&str, &[u8])> {
    let nul = memchr::memchr(0, buf)?;
    let s = std::str::from_utf8(&buf[..nul]).ok()?;
    Some((s, &buf[nul + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            Startup::parse(&SSL_REQUEST.to_be_bytes()),
            Ok(Startup::SslRequest)
        );
        assert_eq!(
            Startup::parse(&GSSENC_REQUEST.to_be_bytes()),
            Ok(Startup::GssEncRequest)
        );
        let mut cancel = CANCEL_REQUEST.to_be_bytes().to_vec();
        cancel.extend(42i32.to_be_bytes());
        cancel.extend([1, 2, 3, 4]);
        assert_eq!(
            Startup::parse(&cancel),
            Ok(Startup::Cancel {
                pid: 42,
                key: vec![1, 2, 3, 4]
            })
        );
        let mut s = 0x0003_0002u32.to_be_bytes().to_vec();
        s.extend(b"user\0alice\0database\0db\0_pq_.x\0y\0\0");
        match Startup::parse(&s).unwrap() {
            Startup::Startup {
                major,
                minor,
                params,
            } => {
                assert_eq!((major, minor), (3, 2));
                assert_eq!(params.len(), 3);
                assert_eq!(params[0], ("user".into(), "alice".into()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn another_major_version_is_reported_not_parsed() {
        // A protocol 2.0 packet: fixed-size fields, no name/value pairs.
        let mut s = 0x0002_0000u32.to_be_bytes().to_vec();
        s.extend([b'd'; 64]);
        assert_eq!(
            Startup::parse(&s),
            Ok(Startup::Startup {
                major: 2,
                minor: 0,
                params: vec![]
            })
        );
    }

    #[test]
    fn rejects_malformed() {
        assert!(Startup::parse(&[0, 3]).is_err());
        let mut s = 0x0003_0000u32.to_be_bytes().to_vec();
        s.extend(b"user\0alice"); // no terminator
        assert!(Startup::parse(&s).is_err());
        let mut s = 0x0003_0000u32.to_be_bytes().to_vec();
        s.extend(b"user\0alice\0\0trailing");
        assert!(Startup::parse(&s).is_err());
        let mut s = SSL_REQUEST.to_be_bytes().to_vec();
        s.push(1);
        assert!(Startup::parse(&s).is_err());
    }
}
