use std::io;
use std::time::Duration;

use dbwarden_wire::backend::ErrorFields;

use super::*;

fn settings(failures: u32) -> BreakerSettings {
    BreakerSettings {
        failures,
        probe_interval: Duration::from_millis(100),
        probe_max_interval: Duration::from_secs(1),
    }
}

fn refused() -> ServerError {
    ServerError::Connect {
        addr: "10.0.0.1:5432".into(),
        source: io::Error::from(io::ErrorKind::ConnectionRefused),
    }
}

fn rejected(code: &str) -> ServerError {
    let fields = ErrorFields {
        code: code.into(),
        message: "nope".into(),
        ..ErrorFields::default()
    };
    ServerError::Rejected {
        addr: "10.0.0.1:5432".into(),
        fields,
    }
}

#[test]
fn opens_after_the_configured_consecutive_failures_and_says_why() {
    let b = Breaker::new("10.0.0.1:5432".into());
    let s = settings(3);
    assert!(!b.failed(&refused(), &s));
    assert!(!b.failed(&refused(), &s));
    assert!(b.admit().is_ok());
    assert!(b.failed(&refused(), &s), "the third failure opens it");
    assert!(
        !b.failed(&refused(), &s),
        "only the opening failure starts a probe"
    );
    let (code, message) = b.admit().unwrap_err().for_client().unwrap();
    assert_eq!(code, SqlState::CONNECTION_FAILURE);
    assert!(
        message.contains("10.0.0.1:5432 is unavailable since 20"),
        "{message}"
    );
    assert!(
        message.contains("3 consecutive connect failures"),
        "{message}"
    );
    b.succeeded();
    assert!(b.admit().is_ok());
}

#[test]
fn a_success_resets_the_count() {
    let b = Breaker::new("h:1".into());
    let s = settings(2);
    assert!(!b.failed(&refused(), &s));
    b.succeeded();
    assert!(!b.failed(&refused(), &s));
    assert!(b.admit().is_ok());
}

#[test]
fn login_refusals_are_not_backend_failures_but_shutdowns_are() {
    let b = Breaker::new("h:1".into());
    let s = settings(1);
    assert!(!b.failed(&rejected("28P01"), &s));
    assert!(!b.failed(&rejected("3D000"), &s));
    assert!(b.admit().is_ok());
    assert!(b.failed(&rejected("57P03"), &s));
    assert!(b.admit().is_err());
}

#[test]
fn zero_failures_never_opens() {
    let b = Breaker::new("h:1".into());
    for _ in 0..10 {
        assert!(!b.failed(&refused(), &settings(0)));
    }
    assert!(b.admit().is_ok());
}
