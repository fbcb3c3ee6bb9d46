//! Builders for frontend messages, written out by hand on purpose: the point
//! is to test a server's parser without sharing code (or bugs) with it.

/// Protocol major version 3 in the high 16 bits of the version field.
const PROTOCOL_3: u32 = 3 << 16;
const SSL_REQUEST_CODE: u32 = 80_877_103;
const GSSENC_REQUEST_CODE: u32 = 80_877_104;
const CANCEL_REQUEST_CODE: u32 = 80_877_102;

/// A StartupMessage for protocol 3.`minor` with these parameters.
pub fn startup(params: &[(&str, &str)], minor: u16) -> Vec<u8> {
    let mut body = (PROTOCOL_3 | u32::from(minor)).to_be_bytes().to_vec();
    for (name, value) in params {
        push_cstr(&mut body, name);
        push_cstr(&mut body, value);
    }
    body.push(0);
    untagged(&body)
}

/// SSLRequest: the server answers with one byte, 'S' or 'N'.
pub fn ssl_request() -> Vec<u8> {
    untagged(&SSL_REQUEST_CODE.to_be_bytes())
}

/// GSSENCRequest: the server answers with one byte, 'G' or 'N'.
pub fn gssenc_request() -> Vec<u8> {
    untagged(&GSSENC_REQUEST_CODE.to_be_bytes())
}

/// CancelRequest for the backend `pid` with secret `key` (from BackendKeyData).
pub fn cancel_request(pid: i32, key: i32) -> Vec<u8> {
    let mut body = CANCEL_REQUEST_CODE.to_be_bytes().to_vec();
    body.extend_from_slice(&pid.to_be_bytes());
    body.extend_from_slice(&key.to_be_bytes());
    untagged(&body)
}

/// Query ('Q'): a simple-protocol query string.
pub fn query(sql: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(sql.len() + 1);
    push_cstr(&mut body, sql);
    tagged(b'Q', &body)
}

/// PasswordMessage ('p') with a cleartext (or already hashed) password.
pub fn password(p: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(p.len() + 1);
    push_cstr(&mut body, p);
    tagged(b'p', &body)
}

/// Terminate ('X').
pub fn terminate() -> Vec<u8> {
    tagged(b'X', &[])
}

/// A tagged message whose length field says `declared_len` whatever the body
/// really holds, for lying lengths (the length counts itself, not the tag).
pub fn raw(tag: u8, declared_len: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(tag);
    out.extend_from_slice(&declared_len.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// A tagged message with a truthful length.
pub fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
    raw(tag, length_of(body), body)
}

/// A message without a tag byte (startup-phase messages).
fn untagged(body: &[u8]) -> Vec<u8> {
    let mut out = length_of(body).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

fn length_of(body: &[u8]) -> u32 {
    u32::try_from(body.len() + 4).expect("message longer than 4 GiB")
}

fn push_cstr(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
    out.push(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_carries_version_and_terminated_parameters() {
        let msg = startup(&[("user", "u"), ("database", "d")], 0);
        let mut expected = vec![0, 0, 0, 27, 0, 3, 0, 0];
        expected.extend_from_slice(b"user\0u\0database\0d\0\0");
        assert_eq!(msg, expected);
        assert_eq!(&startup(&[], 2)[4..8], &[0, 3, 0, 2]);
    }

    #[test]
    fn special_requests_use_their_magic_codes() {
        assert_eq!(ssl_request(), [0, 0, 0, 8, 4, 210, 22, 47]);
        assert_eq!(gssenc_request(), [0, 0, 0, 8, 4, 210, 22, 48]);
        assert_eq!(
            cancel_request(1, -1),
            [0, 0, 0, 16, 4, 210, 22, 46, 0, 0, 0, 1, 255, 255, 255, 255]
        );
    }

    #[test]
    fn tagged_messages_count_their_length_but_not_the_tag() {
        assert_eq!(query("SELECT 1"), b"Q\0\0\0\rSELECT 1\0");
        assert_eq!(password("pw"), b"p\0\0\0\x07pw\0");
        assert_eq!(terminate(), b"X\0\0\0\x04");
        assert_eq!(raw(b'Q', 1, b"ab"), b"Q\0\0\0\x01ab");
    }
}
