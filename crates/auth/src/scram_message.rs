//! Parsers for the two messages a SCRAM-SHA-256 client sends (RFC 5802 section 7), as
//! PostgreSQL accepts them.

use crate::keys::{self, Key};
use crate::AuthError;

/// Real client messages are well under 200 bytes; anything far larger is an attack or a bug,
/// and refusing it bounds what the server stores and hashes per exchange.
pub(crate) const MAX_MESSAGE_LEN: usize = 4096;

/// The gs2 header when the client does not support channel binding.
const GS2_NO_BINDING: &str = "n,,";
/// The gs2 header when the client supports channel binding but thinks the server does not.
const GS2_BINDING_UNUSED: &str = "y,,";

/// A parsed client-first-message.
#[derive(Debug)]
pub(crate) struct ClientFirst<'a> {
    /// `"n,,"` or `"y,,"`: what the client-final `c=` attribute must encode.
    pub gs2_header: &'static str,
    /// client-first-message-bare, which enters the AuthMessage verbatim.
    pub bare: &'a str,
    pub nonce: &'a str,
}

/// A parsed client-final-message.
#[derive(Debug)]
pub(crate) struct ClientFinal<'a> {
    /// client-final-message-without-proof, which enters the AuthMessage verbatim.
    pub without_proof: &'a str,
    /// The decoded `c=` attribute.
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub proof: Key,
}

pub(crate) fn parse_client_first(data: &[u8]) -> Result<ClientFirst<'_>, AuthError> {
    let text = message_text(data, "client-first-message")?;
    let (flag, rest) = text.split_at_checked(1).unwrap_or(("", ""));
    let gs2_header = match flag {
        "n" => GS2_NO_BINDING,
        // 'y' means "I could bind but you did not offer it": true, since we only advertise
        // SCRAM-SHA-256, so there is no downgrade to detect.
        "y" => GS2_BINDING_UNUSED,
        "p" => {
            return Err(AuthError::protocol(
                "client requires channel binding, but SCRAM-SHA-256-PLUS was not offered",
            ))
        }
        _ => return Err(AuthError::protocol("malformed gs2 channel binding flag")),
    };
    let rest = rest
        .strip_prefix(',')
        .ok_or_else(|| AuthError::protocol("malformed gs2 header"))?;
    if rest.starts_with("a=") {
        return Err(AuthError::protocol(
            "authorization identity is not supported",
        ));
    }
    let bare = rest
        .strip_prefix(',')
        .ok_or_else(|| AuthError::protocol("malformed gs2 header"))?;

    let mut attrs = bare.split(',');
    let user = attrs.next().unwrap_or_default();
    if user.starts_with("m=") {
        return Err(AuthError::protocol(
            "client requires an unsupported SCRAM extension",
        ));
    }
    // PostgreSQL ignores this name (the startup packet names the user), and so do we.
    expect_attr(user, 'n', "client-first-message")?;
    let nonce = expect_attr(
        attrs.next().unwrap_or_default(),
        'r',
        "client-first-message",
    )?;
    check_nonce(nonce)?;
    check_extensions(attrs)?;
    Ok(ClientFirst {
        gs2_header,
        bare,
        nonce,
    })
}

pub(crate) fn parse_client_final(data: &[u8]) -> Result<ClientFinal<'_>, AuthError> {
    let text = message_text(data, "client-final-message")?;
    // The proof is always the last attribute.
    let (without_proof, proof) = text
        .rsplit_once(",p=")
        .ok_or_else(|| AuthError::protocol("client-final-message has no proof"))?;
    let proof = keys::b64_key(proof)
        .ok_or_else(|| AuthError::protocol("proof is not 32 bytes of base64"))?;

    let mut attrs = without_proof.split(',');
    let channel_binding = expect_attr(
        attrs.next().unwrap_or_default(),
        'c',
        "client-final-message",
    )?;
    let channel_binding = keys::b64_decode(channel_binding)
        .ok_or_else(|| AuthError::protocol("channel binding is not valid base64"))?;
    let nonce = expect_attr(
        attrs.next().unwrap_or_default(),
        'r',
        "client-final-message",
    )?;
    check_extensions(attrs)?;
    Ok(ClientFinal {
        without_proof,
        channel_binding,
        nonce,
        proof,
    })
}

fn message_text<'a>(data: &'a [u8], what: &str) -> Result<&'a str, AuthError> {
    if data.len() > MAX_MESSAGE_LEN {
        return Err(AuthError::protocol(format!(
            "{what} is longer than {MAX_MESSAGE_LEN} bytes"
        )));
    }
    std::str::from_utf8(data).map_err(|_| AuthError::protocol(format!("{what} is not UTF-8")))
}

/// Returns the value of `attr` if it is `<name>=<value>`.
fn expect_attr<'a>(attr: &'a str, name: char, what: &str) -> Result<&'a str, AuthError> {
    let mut chars = attr.chars();
    if chars.next() == Some(name) && chars.next() == Some('=') {
        Ok(&attr[2..])
    } else {
        Err(AuthError::protocol(format!(
            "{what}: expected attribute '{name}='"
        )))
    }
}

/// RFC 5802: a nonce is printable ASCII other than ','.
fn check_nonce(nonce: &str) -> Result<(), AuthError> {
    if !nonce.is_empty()
        && nonce
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
    {
        Ok(())
    } else {
        Err(AuthError::protocol("nonce is empty or not printable ASCII"))
    }
}

/// Optional extensions must at least look like attributes; their content is ignored, as
/// PostgreSQL ignores it. A stray `p=` would mean the proof is not last.
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), AuthError> {
    for attr in attrs {
        let bytes = attr.as_bytes();
        let well_formed = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b'=';
        if !well_formed || bytes[0] == b'p' {
            return Err(AuthError::protocol("malformed SCRAM attribute"));
        }
    }
    Ok(())
}
