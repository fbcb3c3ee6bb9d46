//! Admin console query text: the parser must never panic, must refuse with one of its own
//! SQLSTATEs, and must read a command the same whatever the case of its bare words.
#![no_main]

use dbwarden_proxy::parse_console_command;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse_console_command(text);
    if let Err(refusal) = &got {
        assert!(
            ["42601", "0A000", "22023"].contains(&refusal.code.code()),
            "{text:?}: {refusal:?}"
        );
        assert!(!refusal.message.is_empty());
    }
    // Quoted names keep their case, so only text without quotes is compared.
    if !text.contains('"') {
        let upper = parse_console_command(&text.to_ascii_uppercase());
        assert_eq!(got.is_ok(), upper.is_ok(), "{text:?}");
    }
});
