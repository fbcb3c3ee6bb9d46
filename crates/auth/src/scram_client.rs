//! The client side of SCRAM-SHA-256, used by the proxy to log in to PostgreSQL.
//!
//! A thin state-checking wrapper around `postgres-protocol`'s implementation (the one
//! tokio-postgres uses), so the upstream login reuses well-exercised code.

use postgres_protocol::authentication::sasl::{
    ChannelBinding, ScramSha256, SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};

use crate::AuthError;

/// One SCRAM-SHA-256 login. Send [`ScramClient::mechanism`] and [`ScramClient::client_first`]
/// in `SASLInitialResponse`; pass the `AuthenticationSASLContinue` payload to
/// [`ScramClient::server_first`] and send its result in `SASLResponse`; pass the
/// `AuthenticationSASLFinal` payload to [`ScramClient::server_final`], which checks that the
/// server knew the verifier. Any error ends the exchange.
pub struct ScramClient {
    inner: ScramSha256,
    mechanism: &'static str,
    client_first: Vec<u8>,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitServerFirst,
    AwaitServerFinal,
    Done,
}

impl ScramClient {
    /// A login without channel binding (gs2 flag `n`), for mechanism `SCRAM-SHA-256`.
    pub fn new(password: &str) -> Self {
        Self::build(password, ChannelBinding::unsupported(), SCRAM_SHA_256)
    }

    /// A login bound to the TLS connection (`tls-server-end-point`, mechanism
    /// `SCRAM-SHA-256-PLUS`). `cert_hash` is the hash of the server's certificate as
    /// RFC 5929 defines it (SHA-256 for the usual SHA-256-signed certificates). Use only when
    /// the server offered `SCRAM-SHA-256-PLUS`.
    pub fn with_tls_server_end_point(password: &str, cert_hash: Vec<u8>) -> Self {
        Self::build(
            password,
            ChannelBinding::tls_server_end_point(cert_hash),
            SCRAM_SHA_256_PLUS,
        )
    }

    fn build(password: &str, binding: ChannelBinding, mechanism: &'static str) -> Self {
        let inner = ScramSha256::new(password.as_bytes(), binding);
        // Copied now: the library's `message()` panics once the exchange is over, and this
        // method must stay callable at any time.
        let client_first = inner.message().to_vec();
        ScramClient {
            inner,
            mechanism,
            client_first,
            state: State::AwaitServerFirst,
        }
    }

    /// The SASL mechanism name to put in `SASLInitialResponse`.
    pub fn mechanism(&self) -> &'static str {
        self.mechanism
    }

    /// The client-first-message, the `SASLInitialResponse` payload.
    pub fn client_first(&self) -> Vec<u8> {
        self.client_first.clone()
    }

    /// Takes the server-first-message and returns the client-final-message.
    pub fn server_first(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.advance(State::AwaitServerFirst, "server-first-message")?;
        self.inner
            .update(data)
            .map_err(|e| AuthError::protocol(format!("server-first-message: {e}")))?;
        self.state = State::AwaitServerFinal;
        Ok(self.inner.message().to_vec())
    }

    /// Takes the server-final-message and checks the server signature in it.
    pub fn server_final(&mut self, data: &[u8]) -> Result<(), AuthError> {
        self.advance(State::AwaitServerFinal, "server-final-message")?;
        self.inner
            .finish(data)
            .map_err(|e| AuthError::protocol(format!("server-final-message: {e}")))
    }

    /// Checks the exchange is at `expected` and marks it over, so a failure anywhere leaves it
    /// finished.
    fn advance(&mut self, expected: State, what: &str) -> Result<(), AuthError> {
        let current = std::mem::replace(&mut self.state, State::Done);
        if current == expected {
            Ok(())
        } else {
            Err(AuthError::protocol(format!("unexpected {what}")))
        }
    }
}

#[cfg(test)]
mod tests;
