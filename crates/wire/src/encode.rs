//! Encoders for the messages the proxy writes itself (it forwards everything else untouched).

use bytes::{BufMut, BytesMut};

use crate::backend::{auth, tag as be, TxStatus};
use crate::frontend::tag as fe;
use crate::SqlState;

/// Writes one tagged frame: the closure writes the body, the length is patched in after.
fn frame(buf: &mut BytesMut, tag: u8, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    let at = buf.len();
    buf.put_u32(0);
    body(buf);
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(buf: &mut BytesMut, s: &str) {
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
}

// ---- backend messages (proxy acting as the server) ----

pub fn auth_request(buf: &mut BytesMut, code: i32, data: &[u8]) {
    frame(buf, be::AUTHENTICATION, |b| {
        b.put_i32(code);
        b.put_slice(data);
    });
}

pub fn auth_ok(buf: &mut BytesMut) {
    auth_request(buf, auth::OK, &[]);
}

pub fn auth_cleartext(buf: &mut BytesMut) {
    auth_request(buf, auth::CLEARTEXT_PASSWORD, &[]);
}

pub fn auth_md5(buf: &mut BytesMut, salt: [u8; 4]) {
    auth_request(buf, auth::MD5_PASSWORD, &salt);
}

pub fn auth_sasl(buf: &mut BytesMut, mechanisms: &[&str]) {
    frame(buf, be::AUTHENTICATION, |b| {
        b.put_i32(auth::SASL);
        for m in mechanisms {
            cstr(b, m);
        }
        b.put_u8(0);
    });
}

pub fn auth_sasl_continue(buf: &mut BytesMut, data: &[u8]) {
    auth_request(buf, auth::SASL_CONTINUE, data);
}

pub fn auth_sasl_final(buf: &mut BytesMut, data: &[u8]) {
    auth_request(buf, auth::SASL_FINAL, data);
}

pub fn parameter_status(buf: &mut BytesMut, name: &str, value: &str) {
    frame(buf, be::PARAMETER_STATUS, |b| {
        cstr(b, name);
        cstr(b, value);
    });
}

pub fn backend_key_data(buf: &mut BytesMut, pid: i32, key: &[u8]) {
    frame(buf, be::BACKEND_KEY_DATA, |b| {
        b.put_i32(pid);
        b.put_slice(key);
    });
}

pub fn ready_for_query(buf: &mut BytesMut, status: TxStatus) {
    frame(buf, be::READY_FOR_QUERY, |b| b.put_u8(status.as_byte()));
}

/// Tells a client asking for 3.x (x > 0) or for `_pq_.` options that we speak 3.0 and which
/// options we did not recognise; the connection then goes on at 3.0.
pub fn negotiate_protocol_version(buf: &mut BytesMut, newest_minor: u16, unrecognized: &[&str]) {
    frame(buf, be::NEGOTIATE_PROTOCOL_VERSION, |b| {
        b.put_u32((3 << 16) | u32::from(newest_minor));
        b.put_u32(unrecognized.len() as u32);
        for o in unrecognized {
            cstr(b, o);
        }
    });
}

/// Severity of a proxy-raised error: FATAL closes the connection, ERROR does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Fatal,
}

pub fn error_response(buf: &mut BytesMut, severity: Severity, code: SqlState, message: &str) {
    notice_like(buf, be::ERROR_RESPONSE, severity, code, message);
}

fn notice_like(buf: &mut BytesMut, tag: u8, severity: Severity, code: SqlState, message: &str) {
    let sev = match severity {
        Severity::Error => "ERROR",
        Severity::Fatal => "FATAL",
    };
    frame(buf, tag, |b| {
        b.put_u8(b'S');
        cstr(b, sev);
        b.put_u8(b'V');
        cstr(b, sev);
        b.put_u8(b'C');
        cstr(b, code.code());
        b.put_u8(b'M');
        cstr(b, message);
        b.put_u8(0);
    });
}

// ---- frontend messages (proxy acting as the client) ----

/// A v3.0 StartupMessage (untagged).
pub fn startup(buf: &mut BytesMut, params: &[(&str, &str)]) {
    let at = buf.len();
    buf.put_u32(0);
    buf.put_u32(3 << 16);
    for (k, v) in params {
        cstr(buf, k);
        cstr(buf, v);
    }
    buf.put_u8(0);
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

pub fn ssl_request(buf: &mut BytesMut) {
    buf.put_u32(8);
    buf.put_u32(80877103);
}

pub fn cancel_request(buf: &mut BytesMut, pid: i32, key: &[u8]) {
    buf.put_u32(12 + key.len() as u32);
    buf.put_u32(80877102);
    buf.put_i32(pid);
    buf.put_slice(key);
}

pub fn password_message(buf: &mut BytesMut, password: &[u8]) {
    frame(buf, fe::PASSWORD, |b| {
        b.put_slice(password);
        b.put_u8(0);
    });
}

pub fn sasl_initial_response(buf: &mut BytesMut, mechanism: &str, data: &[u8]) {
    frame(buf, fe::PASSWORD, |b| {
        cstr(b, mechanism);
        b.put_i32(data.len() as i32);
        b.put_slice(data);
    });
}

pub fn sasl_response(buf: &mut BytesMut, data: &[u8]) {
    frame(buf, fe::PASSWORD, |b| b.put_slice(data));
}

pub fn query(buf: &mut BytesMut, sql: &str) {
    frame(buf, fe::QUERY, |b| cstr(b, sql));
}

pub fn terminate(buf: &mut BytesMut) {
    frame(buf, fe::TERMINATE, |_| {});
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{backend, frontend, startup::Startup, Decoder};

    #[test]
    fn encoded_messages_decode_back() {
        let d = Decoder::new(1 << 20);
        let mut buf = BytesMut::new();
        error_response(
            &mut buf,
            Severity::Fatal,
            SqlState::INVALID_PASSWORD,
            "nope",
        );
        ready_for_query(&mut buf, TxStatus::Idle);
        parameter_status(&mut buf, "TimeZone", "UTC");
        query(&mut buf, "select 1");
        let e = d.decode(&mut buf).unwrap().unwrap();
        let fields = backend::error_fields(e.body()).unwrap();
        assert_eq!(
            (fields.code.as_str(), fields.severity.as_str()),
            ("28P01", "FATAL")
        );
        let z = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(backend::ready_status(z.body()), Ok(TxStatus::Idle));
        let s = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(backend::parameter_status(s.body()), Ok(("TimeZone", "UTC")));
        let q = d.decode(&mut buf).unwrap().unwrap();
        assert_eq!(frontend::query_text(q.body()), Ok("select 1"));

        startup(&mut buf, &[("user", "u"), ("database", "d")]);
        let body = d.decode_startup(&mut buf).unwrap().unwrap();
        assert!(
            matches!(Startup::parse(&body), Ok(Startup::Startup { major: 3, minor: 0, params }) if params.len() == 2)
        );
        cancel_request(&mut buf, 9, &[1, 2, 3, 4]);
        let body = d.decode_startup(&mut buf).unwrap().unwrap();
        assert_eq!(
            Startup::parse(&body),
            Ok(Startup::Cancel {
                pid: 9,
                key: vec![1, 2, 3, 4]
            })
        );
    }
}
