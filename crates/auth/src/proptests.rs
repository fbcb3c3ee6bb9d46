//! Random input must never make a parser or state machine panic.

use proptest::prelude::*;

use crate::{ScramServer, ScramVerifier, Secret};

fn verifier() -> ScramVerifier {
    // One iteration: the key derivation is not what these tests exercise.
    ScramVerifier::from_password("pw", b"salt", 1)
}

/// Strings shaped like SCRAM messages reach deeper into the parsers than uniform bytes do.
fn scramish() -> impl Strategy<Value = String> {
    "[nyp]?(=[a-z-]{0,8})?,(a=[a-z]*)?,((n|r|c|p|m|x)=[!-~&&[^,]]{0,40},?){0,6}"
}

proptest! {
    #[test]
    fn client_first_never_panics(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = ScramServer::new(verifier()).client_first(&data);
    }

    #[test]
    fn client_first_shaped_never_panics(text in scramish()) {
        let _ = ScramServer::new(verifier()).client_first(text.as_bytes());
    }

    #[test]
    fn client_final_never_panics(
        data in prop::collection::vec(any::<u8>(), 0..512),
        text in scramish(),
    ) {
        for input in [&data[..], text.as_bytes()] {
            let mut server = ScramServer::new(verifier());
            server.client_first(b"n,,n=,r=abc").unwrap();
            let _ = server.client_final(input);
        }
    }

    #[test]
    fn secret_parse_never_panics(text in ".{0,200}", suffix in "[A-Za-z0-9+/=:$]{0,120}") {
        let _ = Secret::parse(&text);
        let _ = Secret::parse(&format!("SCRAM-SHA-256${suffix}"));
        let _ = ScramVerifier::parse(&format!("SCRAM-SHA-256${suffix}"));
    }
}
