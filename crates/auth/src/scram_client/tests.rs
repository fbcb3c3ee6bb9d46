use crate::test_vectors::*;
use crate::{AuthError, ScramClient, ScramServer, ScramVerifier, Secret};

/// Runs a full exchange; returns the server's verdict and, if it accepted, the client's.
fn exchange(verifier: ScramVerifier, password: &str) -> Result<(), AuthError> {
    let mut server = ScramServer::new(verifier);
    let mut client = ScramClient::new(password);
    assert_eq!(client.mechanism(), ScramServer::MECHANISM);
    let server_first = server.client_first(&client.client_first())?;
    let client_final = client.server_first(&server_first)?;
    let server_final = server.client_final(&client_final)?;
    client.server_final(&server_final)
}

#[test]
fn round_trip_with_derived_verifier() {
    let verifier = Secret::parse("hunter2").unwrap().scram_verifier().unwrap();
    exchange(verifier.clone(), "hunter2").unwrap();
    assert!(matches!(
        exchange(verifier, "hunter3"),
        Err(AuthError::WrongPassword)
    ));
}

#[test]
fn round_trip_with_postgres_verifiers() {
    for (stored, password) in [
        (PG_SCRAM_ASCII, PG_SCRAM_ASCII_PASSWORD),
        (PG_SCRAM_UNICODE, PG_SCRAM_UNICODE_PASSWORD),
        (PG_SCRAM_UNICODE, "p\u{e4}ss w\u{f6}rdIV"),
    ] {
        let verifier = ScramVerifier::parse(stored).unwrap();
        exchange(verifier.clone(), password).unwrap();
        assert!(matches!(
            exchange(verifier, "wrong"),
            Err(AuthError::WrongPassword)
        ));
    }
}

#[test]
fn client_rejects_a_server_that_does_not_know_the_verifier() {
    let verifier = ScramVerifier::parse(PG_SCRAM_ASCII).unwrap();
    let mut server = ScramServer::new(verifier.clone());
    let mut client = ScramClient::new(PG_SCRAM_ASCII_PASSWORD);
    let server_first = server.client_first(&client.client_first()).unwrap();
    let client_final = client.server_first(&server_first).unwrap();
    server.client_final(&client_final).unwrap();
    // An impostor that knows only the salt: its signature is made with the wrong ServerKey.
    let forged = format!("v={}", crate::keys::b64(&[7u8; 32]));
    assert!(matches!(
        client.server_final(forged.as_bytes()),
        Err(AuthError::Protocol(_))
    ));
}

#[test]
fn client_rejects_malformed_server_messages() {
    let mut client = ScramClient::new("pw");
    assert!(matches!(
        client.server_first(b"r=someone-elses-nonce,s=QUJD,i=4096"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        client.server_final(b"v=AAAA"),
        Err(AuthError::Protocol(_))
    ));

    for bad in [&b""[..], b"garbage", b"\xff", b"e=other-error"] {
        let mut client = ScramClient::new("pw");
        assert!(matches!(
            client.server_first(bad),
            Err(AuthError::Protocol(_))
        ));
    }

    // A huge iteration count would make the client burn CPU for the server; refused.
    let mut client = ScramClient::new("pw");
    let first = String::from_utf8(client.client_first()).unwrap();
    let nonce = first.strip_prefix("n,,n=,r=").unwrap();
    let greedy = format!("r={nonce}xyz,s=QUJD,i=4000000000");
    assert!(matches!(
        client.server_first(greedy.as_bytes()),
        Err(AuthError::Protocol(_))
    ));
}

#[test]
fn messages_out_of_order_are_rejected() {
    let mut client = ScramClient::new("pw");
    assert!(matches!(
        client.server_final(b"v=AAAA"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        client.server_first(b"r=x,s=QUJD,i=1"),
        Err(AuthError::Protocol(_))
    ));
    // Still answers after the exchange is over, rather than panicking.
    assert!(client.client_first().starts_with(b"n,,n=,r="));
}

#[test]
fn channel_binding_client_is_refused_by_our_server() {
    let client = ScramClient::with_tls_server_end_point("pw", vec![0xab; 32]);
    assert_eq!(client.mechanism(), "SCRAM-SHA-256-PLUS");
    assert!(client
        .client_first()
        .starts_with(b"p=tls-server-end-point,,"));
    let mut server = ScramServer::new(ScramVerifier::from_password("pw", b"salt", 1));
    assert!(matches!(
        server.client_first(&client.client_first()),
        Err(AuthError::Protocol(_))
    ));
}
