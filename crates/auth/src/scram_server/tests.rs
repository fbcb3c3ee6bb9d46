use crate::scram_message::MAX_MESSAGE_LEN;
use crate::{scram_mock_verifier, AuthError, ScramClient, ScramServer, ScramVerifier};

// RFC 7677 section 3: user "user", password "pencil".
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_NONCE_SUFFIX: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const RFC_PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

fn rfc_verifier() -> ScramVerifier {
    let salt = crate::keys::b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
    ScramVerifier::from_password("pencil", &salt, 4096)
}

/// A server that has answered `client_first` and waits for the client-final-message.
fn rfc_server_after_first(client_first: &str) -> ScramServer {
    let mut server = ScramServer::with_nonce_suffix(rfc_verifier(), RFC_NONCE_SUFFIX);
    server.client_first(client_first.as_bytes()).unwrap();
    server
}

fn is_protocol<T: std::fmt::Debug>(result: Result<T, AuthError>) -> bool {
    matches!(result, Err(AuthError::Protocol(_)))
}

#[test]
fn rfc7677_example() {
    let mut server = ScramServer::with_nonce_suffix(rfc_verifier(), RFC_NONCE_SUFFIX);
    let server_first = server.client_first(RFC_CLIENT_FIRST.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(server_first).unwrap(), RFC_SERVER_FIRST);
    let server_final = server.client_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert_eq!(String::from_utf8(server_final).unwrap(), RFC_SERVER_FINAL);
}

#[test]
fn wrong_proof_is_wrong_password() {
    let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
    let tampered = RFC_CLIENT_FINAL.replace("p=dHzb", "p=dHzc");
    assert!(matches!(
        server.client_final(tampered.as_bytes()),
        Err(AuthError::WrongPassword)
    ));
    // The exchange is over: replaying the right proof does not help.
    assert!(is_protocol(
        server.client_final(RFC_CLIENT_FINAL.as_bytes())
    ));
}

#[test]
fn random_server_nonce_extends_client_nonce() {
    let mut server = ScramServer::new(rfc_verifier());
    let reply =
        String::from_utf8(server.client_first(RFC_CLIENT_FIRST.as_bytes()).unwrap()).unwrap();
    let nonce = reply
        .strip_prefix("r=rOprNGfwEbeRWgbNEkqO")
        .unwrap()
        .split(',')
        .next()
        .unwrap();
    assert_eq!(nonce.len(), 24, "18 random bytes in base64");
    assert!(reply.ends_with(",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"));
    let mut other = ScramServer::new(rfc_verifier());
    let other_reply = other.client_first(RFC_CLIENT_FIRST.as_bytes()).unwrap();
    assert_ne!(reply.as_bytes(), other_reply.as_slice());
}

#[test]
fn channel_binding_flag_y_is_accepted_and_must_be_echoed() {
    let client_first = "y,,n=,r=rOprNGfwEbeRWgbNEkqO";
    let mut server = rfc_server_after_first(client_first);
    // Right flag, but the proof was computed for another AuthMessage.
    let final_y = RFC_CLIENT_FINAL.replace("c=biws", "c=eSws");
    assert!(matches!(
        server.client_final(final_y.as_bytes()),
        Err(AuthError::WrongPassword)
    ));

    let mut server = rfc_server_after_first(client_first);
    assert!(
        is_protocol(server.client_final(RFC_CLIENT_FINAL.as_bytes())),
        "c=biws is 'n,,'"
    );
}

#[test]
fn malformed_client_first_is_rejected() {
    let huge = format!("n,,n=,r={}", "a".repeat(MAX_MESSAGE_LEN));
    let cases: Vec<&[u8]> = vec![
        b"",
        b"garbage",
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=,r=abc",
        b"p=tls-server-end-point,,n=,r=abc",
        b"p,,n=,r=abc",
        b"n,a=admin,n=,r=abc",
        b"n,,m=ext,n=,r=abc",
        b"n,,r=abc",
        b"n,,n=user",
        b"n,,n=user,",
        b"n,,n=user,r=",
        b"n,,n=user,r=ab\x01c",
        b"n,,n=user,r=ab c",
        b"n,,n=user,r=abc,",
        b"n,,n=user,r=abc,=x",
        b"n,,n=user,r=abc,p=proof",
        b"n,,n=user,r=abc\xff",
        b"\xc3\xa9,,n=,r=abc",
        huge.as_bytes(),
    ];
    for case in cases {
        let mut server = ScramServer::new(rfc_verifier());
        assert!(
            is_protocol(server.client_first(case)),
            "{}",
            String::from_utf8_lossy(case)
        );
        // A failed first step ends the exchange.
        assert!(is_protocol(
            server.client_first(RFC_CLIENT_FIRST.as_bytes())
        ));
    }
}

#[test]
fn extensions_are_ignored() {
    let mut server = ScramServer::new(rfc_verifier());
    assert!(server
        .client_first(b"n,,n=user,r=abc,x=anything,y=")
        .is_ok());
}

#[test]
fn malformed_client_final_is_rejected() {
    let wrong_nonce = RFC_CLIENT_FINAL.replace("r=rOprNGfwEbeRWgbNEkqO", "r=rOprNGfwEbeRWgbNEkqX");
    let short_nonce = RFC_CLIENT_FINAL.replace(RFC_NONCE_SUFFIX, "");
    let huge = format!(
        "c=biws,r={RFC_NONCE},x={},p={RFC_PROOF}",
        "a".repeat(MAX_MESSAGE_LEN)
    );
    let cases: Vec<String> = vec![
        String::new(),
        "garbage".into(),
        format!("c=biws,r={RFC_NONCE}"),
        format!("c=biws,r={RFC_NONCE},p="),
        format!("c=biws,r={RFC_NONCE},p=not*base64"),
        format!("c=biws,r={RFC_NONCE},p=dHzbZapWIk4jUhN+Ute9"),
        format!("c=biws,r={RFC_NONCE},p={RFC_PROOF}AAAA"),
        format!("c=biws,r={RFC_NONCE},p={RFC_PROOF},x=1"),
        format!("c=b!ws,r={RFC_NONCE},p={RFC_PROOF}"),
        format!("c=eSws,r={RFC_NONCE},p={RFC_PROOF}"),
        format!("c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r={RFC_NONCE},p={RFC_PROOF}"),
        format!("r={RFC_NONCE},c=biws,p={RFC_PROOF}"),
        format!("c=biws,p={RFC_PROOF}"),
        format!("c=biws,r={RFC_NONCE},p={RFC_PROOF},p={RFC_PROOF}"),
        format!("c=biws,r={RFC_NONCE},,p={RFC_PROOF}"),
        wrong_nonce,
        short_nonce,
        huge,
    ];
    for case in &cases {
        let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
        assert!(is_protocol(server.client_final(case.as_bytes())), "{case}");
    }
    let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
    assert!(is_protocol(server.client_final(b"c=biws,r=\xff,p=")));
}

#[test]
fn final_extensions_are_part_of_the_auth_message() {
    // An extension before the proof is accepted, and covered by the proof: adding one to the
    // RFC message changes the AuthMessage, so the RFC proof no longer matches.
    let with_extension = RFC_CLIENT_FINAL.replace(",p=", ",x=1,p=");
    let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
    assert!(matches!(
        server.client_final(with_extension.as_bytes()),
        Err(AuthError::WrongPassword)
    ));
}

#[test]
fn messages_out_of_order_are_rejected() {
    let mut server = ScramServer::new(rfc_verifier());
    assert!(is_protocol(
        server.client_final(RFC_CLIENT_FINAL.as_bytes())
    ));

    let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
    assert!(is_protocol(
        server.client_first(RFC_CLIENT_FIRST.as_bytes())
    ));
    assert!(is_protocol(
        server.client_final(RFC_CLIENT_FINAL.as_bytes())
    ));

    let mut server = rfc_server_after_first(RFC_CLIENT_FIRST);
    server.client_final(RFC_CLIENT_FINAL.as_bytes()).unwrap();
    assert!(is_protocol(
        server.client_final(RFC_CLIENT_FINAL.as_bytes())
    ));
}

#[test]
fn mock_verifier_is_stable_per_user_and_rejects_every_password() {
    assert_eq!(scram_mock_verifier("ghost"), scram_mock_verifier("ghost"));
    let ghost = scram_mock_verifier("ghost");
    let other = scram_mock_verifier("other");
    assert_ne!(ghost.salt, other.salt);
    assert_eq!(
        (ghost.iterations, ghost.salt.len()),
        (4096, 16),
        "shaped like a real verifier"
    );

    for password in ["", "ghost", "password"] {
        let mut server = ScramServer::new(scram_mock_verifier("ghost"));
        let mut client = ScramClient::new(password);
        let server_first = server.client_first(&client.client_first()).unwrap();
        let client_final = client.server_first(&server_first).unwrap();
        assert!(matches!(
            server.client_final(&client_final),
            Err(AuthError::WrongPassword)
        ));
    }
}

#[test]
fn iteration_counts_are_written_in_decimal() {
    for n in [0, 7, 10, 4096, 600_000, u32::MAX] {
        let mut out = String::from("i=");
        super::push_decimal(&mut out, n);
        assert_eq!(out, format!("i={n}"));
    }
}
