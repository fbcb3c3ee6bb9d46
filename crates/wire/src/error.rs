use crate::SqlState;

/// Bytes that are not valid protocol. Every variant maps to SQLSTATE 08P01.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid message length {len}: below the minimum of 4")]
    LengthTooShort { len: u32 },
    #[error("message length {len} exceeds the maximum of {max} bytes")]
    LengthTooLong { len: u32, max: u32 },
    #[error("malformed {what} message")]
    Malformed { what: &'static str },
    #[error("unexpected message type '{}' ({tag:#04x}) {during}", char::from(*tag).escape_default())]
    UnexpectedMessage { tag: u8, during: &'static str },
    #[error("unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0")]
    UnsupportedVersion { major: u16, minor: u16 },
}

impl ProtocolError {
    pub fn sqlstate(&self) -> SqlState {
        match self {
            ProtocolError::UnsupportedVersion { .. } => SqlState::FEATURE_NOT_SUPPORTED,
            _ => SqlState::PROTOCOL_VIOLATION,
        }
    }

    pub(crate) fn malformed(what: &'static str) -> Self {
        ProtocolError::Malformed { what }
    }
}
