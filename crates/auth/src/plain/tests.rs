use crate::test_vectors::*;
use crate::{plain_verify, plain_verify_user, Secret};

#[test]
fn plain_secret() {
    let secret = Secret::parse("hunter2").unwrap();
    assert!(plain_verify(&secret, b"hunter2"));
    assert!(plain_verify(&secret, b"hunter2\0"));
    for wrong in [
        &b"hunter"[..],
        b"hunter22",
        b"Hunter2",
        b"",
        b"\0",
        b"hunter2\0\0",
    ] {
        assert!(!plain_verify(&secret, wrong), "{wrong:?}");
    }
    assert!(!plain_verify(&Secret::Plain(String::new()), b""));
    assert!(!plain_verify(&Secret::Plain(String::new()), b"\0"));
}

#[test]
fn scram_secret_made_by_postgres() {
    let ascii = Secret::parse(PG_SCRAM_ASCII).unwrap();
    assert!(plain_verify(&ascii, PG_SCRAM_ASCII_PASSWORD.as_bytes()));
    assert!(!plain_verify(&ascii, b"correct horse battery stapler"));

    let unicode = Secret::parse(PG_SCRAM_UNICODE).unwrap();
    assert!(plain_verify(&unicode, PG_SCRAM_UNICODE_PASSWORD.as_bytes()));
    // SASLprep maps U+2163 to "IV", as PostgreSQL does, so both spellings log in.
    assert!(plain_verify(&unicode, "p\u{e4}ss w\u{f6}rdIV".as_bytes()));
    assert!(!plain_verify(&unicode, b"pass word"));
    assert!(!plain_verify(&unicode, b"\xff\xfe"));
}

#[test]
fn md5_secret_needs_the_user() {
    let secret = Secret::parse(PG_MD5).unwrap();
    assert!(!plain_verify(&secret, PG_MD5_PASSWORD.as_bytes()));
    assert!(plain_verify_user(
        &secret,
        PG_MD5_USER,
        PG_MD5_PASSWORD.as_bytes()
    ));
    assert!(plain_verify_user(&secret, PG_MD5_USER, b"s3cret\0"));
    assert!(!plain_verify_user(
        &secret,
        "bob",
        PG_MD5_PASSWORD.as_bytes()
    ));
    assert!(!plain_verify_user(&secret, PG_MD5_USER, b"s3cre7"));
    assert!(!plain_verify_user(&secret, PG_MD5_USER, b""));
    // The other kinds behave as in `plain_verify`.
    let plain = Secret::parse("hunter2").unwrap();
    assert!(plain_verify_user(&plain, "anyone", b"hunter2"));
    assert!(!plain_verify_user(&plain, "anyone", b"hunter3"));
}
