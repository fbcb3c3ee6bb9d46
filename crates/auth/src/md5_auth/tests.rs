use crate::test_vectors::*;
use crate::{md5_response, md5_salt, md5_verify, ScramVerifier, Secret};

#[test]
fn response_matches_postgres() {
    assert_eq!(
        md5_response(PG_MD5_USER, PG_MD5_PASSWORD, PG_MD5_SALT),
        PG_MD5_RESPONSE
    );
}

#[test]
fn verifies_against_plain_and_md5_secrets() {
    for secret in [
        Secret::Plain(PG_MD5_PASSWORD.into()),
        Secret::parse(PG_MD5).unwrap(),
    ] {
        assert!(md5_verify(
            &secret,
            PG_MD5_USER,
            PG_MD5_SALT,
            PG_MD5_RESPONSE.as_bytes()
        ));
        let with_nul = format!("{PG_MD5_RESPONSE}\0");
        assert!(md5_verify(
            &secret,
            PG_MD5_USER,
            PG_MD5_SALT,
            with_nul.as_bytes()
        ));

        let wrong_password = md5_response(PG_MD5_USER, "s3cre7", PG_MD5_SALT);
        let wrong_user = md5_response("bob", PG_MD5_PASSWORD, PG_MD5_SALT);
        let upper = PG_MD5_RESPONSE.to_ascii_uppercase();
        let rejected: [&[u8]; 7] = [
            wrong_password.as_bytes(),
            wrong_user.as_bytes(),
            upper.as_bytes(),
            &PG_MD5_RESPONSE.as_bytes()[..34],
            b"",
            b"\0",
            PG_MD5_PASSWORD.as_bytes(),
        ];
        for response in rejected {
            assert!(!md5_verify(&secret, PG_MD5_USER, PG_MD5_SALT, response));
        }
        assert!(!md5_verify(
            &secret,
            PG_MD5_USER,
            [1, 2, 3, 5],
            PG_MD5_RESPONSE.as_bytes()
        ));
    }
}

#[test]
fn plain_secret_is_salted_with_the_user_name() {
    // An md5 secret already embeds the user it was made for; a plaintext one gets the
    // startup packet's user, so the same response must fail for another user.
    let secret = Secret::Plain(PG_MD5_PASSWORD.into());
    assert!(!md5_verify(
        &secret,
        "bob",
        PG_MD5_SALT,
        PG_MD5_RESPONSE.as_bytes()
    ));
}

#[test]
fn unusable_secrets_never_verify() {
    let response = md5_response(PG_MD5_USER, "", PG_MD5_SALT);
    assert!(!md5_verify(
        &Secret::Plain(String::new()),
        PG_MD5_USER,
        PG_MD5_SALT,
        response.as_bytes()
    ));
    let scram = Secret::Scram(ScramVerifier::from_password(PG_MD5_PASSWORD, b"salt", 1));
    let right = md5_response(PG_MD5_USER, PG_MD5_PASSWORD, PG_MD5_SALT);
    assert!(!md5_verify(
        &scram,
        PG_MD5_USER,
        PG_MD5_SALT,
        right.as_bytes()
    ));
    // Built by hand, bypassing `Secret::parse`.
    assert!(!md5_verify(
        &Secret::Md5("md5".into()),
        PG_MD5_USER,
        PG_MD5_SALT,
        right.as_bytes()
    ));
    assert!(!md5_verify(
        &Secret::Md5(String::new()),
        PG_MD5_USER,
        PG_MD5_SALT,
        right.as_bytes()
    ));
}

#[test]
fn salts_are_random() {
    let salts: Vec<[u8; 4]> = (0..8).map(|_| md5_salt()).collect();
    // Eight equal draws of 32 random bits would mean the salt is not random.
    assert!(salts.iter().any(|s| *s != salts[0]));
}
