//! The first bytes of every connection, before any authentication: the most exposed parser.
#![no_main]

use bytes::BytesMut;
use dbwarden_wire::startup::Startup;
use dbwarden_wire::Decoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoder = Decoder::new(1 << 20);
    let mut buf = BytesMut::from(data);
    if let Ok(Some(body)) = decoder.decode_startup(&mut buf) {
        assert!(body.len() <= 10_000);
        let _ = Startup::parse(&body);
    }
    let _ = Startup::parse(data);
});
