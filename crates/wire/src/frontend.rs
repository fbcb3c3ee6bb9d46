//! Messages a client sends. Only the fields the proxy routes on are decoded, lazily.

use crate::startup::cstr;
use crate::ProtocolError;

/// Type bytes of frontend messages.
pub mod tag {
    pub const BIND: u8 = b'B';
    pub const CLOSE: u8 = b'C';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const FLUSH: u8 = b'H';
    pub const FUNCTION_CALL: u8 = b'F';
    pub const PARSE: u8 = b'P';
    /// PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse share this byte.
    pub const PASSWORD: u8 = b'p';
    pub const QUERY: u8 = b'Q';
    pub const SYNC: u8 = b'S';
    pub const TERMINATE: u8 = b'X';
}

/// True for the messages after which the server sends exactly one ReadyForQuery.
pub fn expects_ready(tag: u8) -> bool {
    matches!(tag, tag::QUERY | tag::SYNC | tag::FUNCTION_CALL)
}

/// The SQL text of a simple Query.
pub fn query_text(body: &[u8]) -> Result<&str, ProtocolError> {
    match cstr(body) {
        Some((sql, [])) => Ok(sql),
        _ => Err(ProtocolError::malformed("Query")),
    }
}

/// Parse: statement name and SQL.
pub fn parse_names(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let err = || ProtocolError::malformed("Parse");
    let (name, rest) = cstr(body).ok_or_else(err)?;
    let (sql, _) = cstr(rest).ok_or_else(err)?;
    Ok((name, sql))
}

/// Bind: portal name and statement name.
pub fn bind_names(body: &[u8]) -> Result<(&str, &str), ProtocolError> {
    let err = || ProtocolError::malformed("Bind");
    let (portal, rest) = cstr(body).ok_or_else(err)?;
    let (statement, _) = cstr(rest).ok_or_else(err)?;
    Ok((portal, statement))
}

/// Close and Describe: `b'S'` (statement) or `b'P'` (portal), and the name.
pub fn target(body: &[u8]) -> Result<(u8, &str), ProtocolError> {
    let err = || ProtocolError::malformed("Close/Describe");
    let (&kind, rest) = body.split_first().ok_or_else(err)?;
    if kind != b'S' && kind != b'P' {
        return Err(err());
    }
    match cstr(rest) {
        Some((name, [])) => Ok((kind, name)),
        _ => Err(err()),
    }
}

/// SASLInitialResponse: mechanism and the client-first-message (`None` for length -1).
pub fn sasl_initial(body: &[u8]) -> Result<(&str, &[u8]), ProtocolError> {
    let err = || ProtocolError::malformed("SASLInitialResponse");
    let (mechanism, rest) = cstr(body).ok_or_else(err)?;
    if rest.len() < 4 {
        return Err(err());
    }
    let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let data = &rest[4..];
    if len < 0 || len as usize != data.len() {
        return Err(err());
    }
    Ok((mechanism, data))
}

/// PasswordMessage: the password (or md5 response) without its terminator.
pub fn password(body: &[u8]) -> Result<&[u8], ProtocolError> {
    match body.split_last() {
        Some((0, pw)) if !pw.contains(&0) => Ok(pw),
        _ => Err(ProtocolError::malformed("PasswordMessage")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_routing_fields() {
        assert_eq!(query_text(b"select 1\0"), Ok("select 1"));
        assert!(query_text(b"select 1").is_err());
        assert_eq!(parse_names(b"s1\0select $1\0\0\0"), Ok(("s1", "select $1")));
        assert_eq!(bind_names(b"\0s1\0\0\0"), Ok(("", "s1")));
        assert_eq!(target(b"Ss1\0"), Ok((b'S', "s1")));
        assert!(target(b"Xs1\0").is_err());
        assert_eq!(password(b"secret\0"), Ok(&b"secret"[..]));
        assert!(password(b"sec\0ret\0").is_err());
        let mut sasl = b"SCRAM-SHA-256\0".to_vec();
        sasl.extend(3i32.to_be_bytes());
        sasl.extend(b"abc");
        assert_eq!(sasl_initial(&sasl), Ok(("SCRAM-SHA-256", &b"abc"[..])));
        sasl.push(b'x');
        assert!(sasl_initial(&sasl).is_err());
    }
}
