//! The server side of SCRAM-SHA-256, as PostgreSQL runs it.

use std::mem;

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::keys::{self, b64};
use crate::scram_message::{parse_client_final, parse_client_first};
use crate::{AuthError, ScramVerifier};

/// Random bytes the server appends to the client's nonce (PostgreSQL uses 18 too).
const SERVER_NONCE_LEN: usize = 18;

/// One SCRAM-SHA-256 exchange, verifying a client against a [`ScramVerifier`].
///
/// Send [`ScramServer::MECHANISM`] in `AuthenticationSASL`, pass the `SASLInitialResponse`
/// payload to [`ScramServer::client_first`] and send its result in `AuthenticationSASLContinue`,
/// then pass the `SASLResponse` payload to [`ScramServer::client_final`] and send its result in
/// `AuthenticationSASLFinal`. Any error ends the exchange: later calls fail too.
///
/// The user name inside the client-first-message is ignored, as in PostgreSQL: the user is
/// the one named in the startup packet, whose verifier the caller chose. For an unknown user,
/// run the exchange with [`crate::scram_mock_verifier`] so it fails the same way.
pub struct ScramServer {
    verifier: ScramVerifier,
    state: State,
    /// Replaces the random nonce suffix, only so tests can replay RFC 7677's example.
    nonce_suffix: Option<String>,
}

enum State {
    AwaitClientFirst,
    AwaitClientFinal(Exchange),
    Done,
}

/// What the server-first step must remember for the final step.
struct Exchange {
    gs2_header: &'static str,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

impl ScramServer {
    /// The SASL mechanism this server implements (without channel binding).
    pub const MECHANISM: &'static str = "SCRAM-SHA-256";

    pub fn new(verifier: ScramVerifier) -> Self {
        ScramServer {
            verifier,
            state: State::AwaitClientFirst,
            nonce_suffix: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_nonce_suffix(verifier: ScramVerifier, suffix: &str) -> Self {
        ScramServer {
            nonce_suffix: Some(suffix.to_owned()),
            ..ScramServer::new(verifier)
        }
    }

    /// Takes the client-first-message (the `SASLInitialResponse` payload) and returns the
    /// server-first-message: `r=<client nonce><server nonce>,s=<salt>,i=<iterations>`.
    pub fn client_first(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::AwaitClientFirst) {
            self.state = State::Done;
            return Err(AuthError::protocol("unexpected client-first-message"));
        }
        self.state = State::Done;
        let message = parse_client_first(data)?;
        let suffix = self.nonce_suffix.take().unwrap_or_else(random_nonce_suffix);
        // Built by appending, not with `format!`: a connection storm logs in thousands of
        // clients a second, and the formatting machinery was a tenth of a login's own work.
        let mut nonce = String::with_capacity(message.nonce.len() + suffix.len());
        nonce.push_str(message.nonce);
        nonce.push_str(&suffix);
        let mut server_first = String::with_capacity(nonce.len() + 48);
        server_first.push_str("r=");
        server_first.push_str(&nonce);
        server_first.push_str(",s=");
        keys::b64_append(&self.verifier.salt, &mut server_first);
        server_first.push_str(",i=");
        push_decimal(&mut server_first, self.verifier.iterations);
        let reply = server_first.clone().into_bytes();
        self.state = State::AwaitClientFinal(Exchange {
            gs2_header: message.gs2_header,
            nonce,
            client_first_bare: message.bare.to_owned(),
            server_first,
        });
        Ok(reply)
    }

    /// Takes the client-final-message (the `SASLResponse` payload). Returns the
    /// server-final-message `v=<ServerSignature>` when the proof is right,
    /// [`AuthError::WrongPassword`] when it is not, and [`AuthError::Protocol`] when the
    /// message is malformed or does not continue this exchange.
    pub fn client_final(&mut self, data: &[u8]) -> Result<Vec<u8>, AuthError> {
        let exchange = match mem::replace(&mut self.state, State::Done) {
            State::AwaitClientFinal(exchange) => exchange,
            State::AwaitClientFirst | State::Done => {
                return Err(AuthError::protocol("unexpected client-final-message"))
            }
        };
        let message = parse_client_final(data)?;
        if message.channel_binding != exchange.gs2_header.as_bytes() {
            return Err(AuthError::protocol(
                "channel binding data does not match the client-first-message",
            ));
        }
        // The nonce is public (both sides sent it in the clear), so no constant-time need.
        if message.nonce != exchange.nonce {
            return Err(AuthError::protocol("nonce does not match"));
        }

        // AuthMessage = client-first-bare "," server-first "," client-final-without-proof,
        // fed to the MACs in parts rather than joined first.
        let auth_message: [&[u8]; 5] = [
            exchange.client_first_bare.as_bytes(),
            b",",
            exchange.server_first.as_bytes(),
            b",",
            message.without_proof.as_bytes(),
        ];
        let client_signature = keys::hmac(&self.verifier.stored_key, &auth_message);
        let client_key = keys::xor(&message.proof, &client_signature);
        let matches = keys::sha256(&client_key).ct_eq(&self.verifier.stored_key);
        if !bool::from(matches) {
            return Err(AuthError::WrongPassword);
        }
        let server_signature = keys::hmac(&self.verifier.server_key, &auth_message);
        let mut reply = String::with_capacity(2 + 44);
        reply.push_str("v=");
        keys::b64_append(&server_signature, &mut reply);
        Ok(reply.into_bytes())
    }
}

/// Appends `n` in decimal.
fn push_decimal(out: &mut String, n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits only.
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

fn random_nonce_suffix() -> String {
    let mut bytes = [0u8; SERVER_NONCE_LEN];
    rand::thread_rng().fill_bytes(&mut bytes);
    b64(&bytes)
}

#[cfg(test)]
mod tests;
