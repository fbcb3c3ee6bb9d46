use crate::test_vectors::*;
use crate::{plain_verify, AuthError, ScramVerifier, Secret};

#[test]
fn reproduces_postgres_verifiers() {
    for (stored, password) in [
        (PG_SCRAM_ASCII, PG_SCRAM_ASCII_PASSWORD),
        (PG_SCRAM_UNICODE, PG_SCRAM_UNICODE_PASSWORD),
    ] {
        let parsed = ScramVerifier::parse(stored).unwrap();
        assert_eq!(parsed.iterations, 4096);
        assert_eq!(parsed.salt.len(), 16);
        let derived = ScramVerifier::from_password(password, &parsed.salt, parsed.iterations);
        assert_eq!(derived, parsed);
        assert_eq!(derived.to_string(), stored);
    }
}

#[test]
fn saslprep_is_applied_before_hashing() {
    // Without SASLprep, U+2163 would be hashed as its UTF-8 bytes instead of "IV".
    let parsed = ScramVerifier::parse(PG_SCRAM_UNICODE).unwrap();
    let prepared = ScramVerifier::from_password("p\u{e4}ss w\u{f6}rdIV", &parsed.salt, 4096);
    assert_eq!(prepared, parsed);
    let raw = ScramVerifier::from_password_bytes(
        b"p\xc3\xa4ss w\xc3\xb6rd\xe2\x85\xa3",
        &parsed.salt,
        4096,
    );
    assert_eq!(
        raw, parsed,
        "the same text given as bytes is prepared the same way"
    );
    // Hashing the raw UTF-8 bytes, as an implementation without SASLprep would, does not
    // reproduce PostgreSQL's keys.
    let salted = pbkdf2::pbkdf2_hmac_array::<sha2::Sha256, 32>(
        PG_SCRAM_UNICODE_PASSWORD.as_bytes(),
        &parsed.salt,
        4096,
    );
    let raw_stored_key = crate::keys::sha256(&crate::keys::client_key(&salted));
    assert_ne!(raw_stored_key, parsed.stored_key);
}

#[test]
fn secret_parse_recognises_each_form() {
    assert!(
        matches!(Secret::parse(PG_SCRAM_ASCII), Ok(Secret::Scram(v)) if v.to_string() == PG_SCRAM_ASCII)
    );
    assert!(matches!(Secret::parse(PG_MD5), Ok(Secret::Md5(s)) if s == PG_MD5));
    let upper = format!("md5{}", PG_MD5[3..].to_ascii_uppercase());
    assert!(matches!(Secret::parse(&upper), Ok(Secret::Md5(s)) if s == PG_MD5));
    assert!(matches!(Secret::parse("hunter2"), Ok(Secret::Plain(p)) if p == "hunter2"));
    // Not exactly 32 hex digits after "md5": an ordinary password that happens to start so.
    for plain in [
        "md5",
        "md5abc",
        &PG_MD5[..34],
        format!("{PG_MD5}0").as_str(),
        "md5zz13e4d0d5792b064442db7988e9f4c4",
    ] {
        assert!(
            matches!(Secret::parse(plain), Ok(Secret::Plain(p)) if p == plain),
            "{plain}"
        );
    }
    assert!(matches!(
        Secret::parse(""),
        Err(AuthError::InvalidSecret(_))
    ));
}

#[test]
fn malformed_scram_verifiers_are_rejected() {
    let key = "t2JZ2/DmlQjR92WXrDzmXsoCmAEtP6IkJGVFNnki1t0=";
    let cases = [
        "SCRAM-SHA-256$".to_owned(),
        format!("SCRAM-SHA-256$4096:ESII+fDn9TTJ1NgmpyVRzg==${key}"),
        format!("SCRAM-SHA-256$4096${key}:{key}"),
        format!("SCRAM-SHA-256$0:ESII+fDn9TTJ1NgmpyVRzg==${key}:{key}"),
        format!("SCRAM-SHA-256$-1:ESII+fDn9TTJ1NgmpyVRzg==${key}:{key}"),
        format!("SCRAM-SHA-256$99999999999:ESII+fDn9TTJ1NgmpyVRzg==${key}:{key}"),
        format!("SCRAM-SHA-256$4096:${key}:{key}"),
        format!("SCRAM-SHA-256$4096:not*base64${key}:{key}"),
        format!("SCRAM-SHA-256$4096:ESII+fDn9TTJ1NgmpyVRzg==${key}:c2uZCI++jnz9kPo2"),
        format!("SCRAM-SHA-256$4096:ESII+fDn9TTJ1NgmpyVRzg==${key}AAAA:{key}"),
        format!("SCRAM-SHA-256$4096:ESII+fDn9TTJ1NgmpyVRzg==${key}:{key}$extra"),
    ];
    for case in &cases {
        assert!(
            matches!(Secret::parse(case), Err(AuthError::InvalidSecret(_))),
            "{case}"
        );
        assert!(ScramVerifier::parse(case).is_err(), "{case}");
    }
    assert!(ScramVerifier::parse("md5abc").is_err());
}

#[test]
fn scram_verifier_from_each_secret() {
    let stored = Secret::parse(PG_SCRAM_ASCII).unwrap();
    assert_eq!(stored.scram_verifier().unwrap().to_string(), PG_SCRAM_ASCII);

    let plain = Secret::parse("hunter2").unwrap();
    let first = plain.scram_verifier().unwrap();
    let second = plain.scram_verifier().unwrap();
    assert_eq!((first.iterations, first.salt.len()), (4096, 16));
    assert_ne!(
        first.salt, second.salt,
        "each derivation draws a fresh salt"
    );
    assert!(plain_verify(&Secret::Scram(first.clone()), b"hunter2"));
    assert!(!plain_verify(&Secret::Scram(first), b"hunter3"));

    let md5 = Secret::parse(PG_MD5).unwrap();
    assert!(matches!(
        md5.scram_verifier(),
        Err(AuthError::Unsupported(_))
    ));
}

#[test]
fn plaintext_only_for_plain_secrets() {
    assert_eq!(
        Secret::parse("hunter2").unwrap().plaintext(),
        Some("hunter2")
    );
    assert_eq!(Secret::parse(PG_MD5).unwrap().plaintext(), None);
    assert_eq!(Secret::parse(PG_SCRAM_ASCII).unwrap().plaintext(), None);
}

#[test]
fn debug_output_hides_secret_material() {
    let verifier = ScramVerifier::parse(PG_SCRAM_ASCII).unwrap();
    let printed = [
        format!("{:?}", Secret::parse("hunter2").unwrap()),
        format!("{:?}", Secret::parse(PG_MD5).unwrap()),
        format!("{:?}", Secret::Scram(verifier.clone())),
        format!("{verifier:?}"),
    ];
    for text in &printed {
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains(&PG_MD5[3..]), "{text}");
        assert!(!text.contains("t2JZ2"), "{text}");
        assert!(!text.contains("c2uZCI"), "{text}");
    }
    assert!(printed[3].contains("4096"));
}
