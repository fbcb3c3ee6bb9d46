//! Messages a server sends. Only the fields the proxy acts on are decoded.

use crate::startup::cstr;
use crate::ProtocolError;

/// Type bytes of backend messages.
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const COPY_BOTH_RESPONSE: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_IN_RESPONSE: u8 = b'G';
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    pub const DATA_ROW: u8 = b'D';
    pub const EMPTY_QUERY_RESPONSE: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    pub const NO_DATA: u8 = b'n';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const ROW_DESCRIPTION: u8 = b'T';
}

/// Transaction status carried by ReadyForQuery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TxStatus {
    pub fn from_byte(b: u8) -> Result<TxStatus, ProtocolError> {
        match b {
            b'I' => Ok(TxStatus::Idle),
            b'T' => Ok(TxStatus::InTransaction),
            b'E' => Ok(TxStatus::Failed),
            _ => Err(ProtocolError::malformed("ReadyForQuery")),
        }
    }

    pub fn as_byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

pub fn ready_status(body: &[u8]) -> Result<TxStatus, ProtocolError> {
    match body {
        [b] => TxStatus::from_byte(*b),
        _ => Err(ProtocolError::malformed("ReadyForQuery")),
    }
}

/// ParameterStatus: name and value.
pub fn parameter_status(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let err = || ProtocolError::malformed("ParameterStatus");
    let (name, rest) = cstr(body).ok_or_else(err)?;
    match cstr(rest) {
        Some((value, [])) => Ok((name, value)),
        _ => Err(err()),
    }
}

/// BackendKeyData: process id and secret key (4 bytes in 3.0, longer from 3.2).
pub fn backend_key(body: &[u8]) -> Result<(i32, &[u8]), ProtocolError> {
    if body.len() < 8 || body.len() > 4 + 256 {
        return Err(ProtocolError::malformed("BackendKeyData"));
    }
    Ok((
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        &body[4..],
    ))
}

/// The authentication request code and its data (salt, mechanisms, SASL payload).
pub fn authentication(body: &[u8]) -> Result<(i32, &[u8]), ProtocolError> {
    if body.len() < 4 {
        return Err(ProtocolError::malformed("Authentication"));
    }
    Ok((
        i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
        &body[4..],
    ))
}

/// Authentication request codes.
pub mod auth {
    pub const OK: i32 = 0;
    pub const CLEARTEXT_PASSWORD: i32 = 3;
    pub const MD5_PASSWORD: i32 = 5;
    pub const SASL: i32 = 10;
    pub const SASL_CONTINUE: i32 = 11;
    pub const SASL_FINAL: i32 = 12;
}

/// DataRow: each column as text (`None` for NULL). For the proxy's own small queries only;
/// rows on the forwarding path are never decoded.
pub fn data_row(body: &[u8]) -> Result<Vec<Option<String>>, ProtocolError> {
    let err = || ProtocolError::malformed("DataRow");
    if body.len() < 2 {
        return Err(err());
    }
    let count = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut rest = &body[2..];
    let mut out = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        if rest.len() < 4 {
            return Err(err());
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        rest = &rest[4..];
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if rest.len() < len {
            return Err(err());
        }
        out.push(Some(String::from_utf8_lossy(&rest[..len]).into_owned()));
        rest = &rest[len..];
    }
    if !rest.is_empty() {
        return Err(err());
    }
    Ok(out)
}

/// The fields of an ErrorResponse or NoticeResponse the proxy looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
}

pub fn error_fields(body: &[u8]) -> Result<ErrorFields, ProtocolError> {
    let mut fields = ErrorFields::default();
    let mut rest = body;
    loop {
        let (&kind, after) = rest
            .split_first()
            .ok_or(ProtocolError::malformed("ErrorResponse"))?;
        if kind == 0 {
            return Ok(fields);
        }
        let (value, after) = cstr(after).ok_or(ProtocolError::malformed("ErrorResponse"))?;
        match kind {
            // 'V' is the non-localized severity; prefer it over 'S' when both are present.
            b'V' => fields.severity = value.to_owned(),
            b'S' if fields.severity.is_empty() => fields.severity = value.to_owned(),
            b'C' => fields.code = value.to_owned(),
            b'M' => fields.message = value.to_owned(),
            b'D' => fields.detail = Some(value.to_owned()),
            _ => {}
        }
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_the_proxy_acts_on() {
        assert_eq!(ready_status(b"T"), Ok(TxStatus::InTransaction));
        assert!(ready_status(b"X").is_err());
        assert!(ready_status(b"II").is_err());
        assert_eq!(
            parameter_status(b"TimeZone\0UTC\0"),
            Ok(("TimeZone", "UTC"))
        );
        let e = error_fields(b"SERROR\0VERROR\0C57014\0Mcanceled\0\0").unwrap();
        assert_eq!(e.code, "57014");
        assert_eq!(e.severity, "ERROR");
        assert!(error_fields(b"SERROR\0C57014").is_err());
        assert_eq!(backend_key(&[0, 0, 0, 7, 1, 2, 3, 4]).unwrap().0, 7);
        assert!(backend_key(&[0, 0, 0, 7]).is_err());
        let row = [0, 2, 0, 0, 0, 1, b'x', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(data_row(&row), Ok(vec![Some("x".into()), None]));
        assert!(data_row(&row[..6]).is_err());
        assert!(data_row(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
    }
}
