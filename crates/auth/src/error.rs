/// Why an authentication step failed.
///
/// Messages never include secret material (passwords, keys, proofs), so an error can be logged
/// or shown to a client as is.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credentials were well formed but wrong.
    #[error("password authentication failed")]
    WrongPassword,
    /// The peer sent a malformed or out-of-sequence authentication message.
    #[error("invalid authentication message: {0}")]
    Protocol(String),
    /// The request is valid but asks for something this implementation does not do.
    #[error("unsupported authentication request: {0}")]
    Unsupported(&'static str),
    /// A stored secret (from configuration or an auth query) could not be parsed.
    #[error("invalid stored secret: {0}")]
    InvalidSecret(String),
}

impl AuthError {
    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        AuthError::Protocol(message.into())
    }
}
