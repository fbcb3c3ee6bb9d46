//! Untrusted bytes from either peer, after login: the frame decoder, the forwarding scanner
//! (driven with every read size the input suggests) and every typed view must never panic,
//! never allocate past the length cap, and agree on where frames start.
#![no_main]

use bytes::BytesMut;
use dbwarden_wire::{backend, frontend, Decoder, ScanEvent, Scanner};
use libfuzzer_sys::fuzz_target;

const MAX: u32 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);

    // Whole-frame decoder.
    let decoder = Decoder::new(MAX);
    let mut buf = BytesMut::new();
    let mut decoded = Vec::new();
    'feed: for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.as_bytes().len() <= MAX as usize + 1);
                    views(frame.tag(), frame.body());
                    decoded.push(frame.tag());
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
        assert!(buf.capacity() <= 2 * (MAX as usize + 1) + data.len());
    }

    // The scanner must see the same frame starts as the decoder, in the same order.
    let mut scanner = Scanner::new(MAX);
    let mut pending: Vec<u8> = Vec::new();
    let mut seen = Vec::new();
    'scan: for piece in data.chunks(chunk) {
        pending.extend_from_slice(piece);
        loop {
            match scanner.scan(&pending, |t| t == b'Z' || t == b'X') {
                Ok(ScanEvent::NeedMore) => break,
                Ok(ScanEvent::Continue(n)) => {
                    assert!(n > 0 && n <= pending.len());
                    pending.drain(..n);
                }
                Ok(ScanEvent::Frame { tag, total, avail }) => {
                    assert!(avail <= total && avail <= pending.len() && avail > 0);
                    seen.push(tag);
                    pending.drain(..avail);
                }
                Err(_) => break 'scan,
            }
        }
    }
    // The decoder only reports whole frames; the scanner may also report the last partial one.
    assert!(seen.len() >= decoded.len());
    assert_eq!(&seen[..decoded.len()], &decoded[..]);
});

fn views(tag: u8, body: &[u8]) {
    match tag {
        b'Q' => drop(frontend::query_text(body)),
        b'P' => drop(frontend::parse_names(body)),
        b'B' => drop(frontend::bind_names(body)),
        b'C' | b'D' => drop(frontend::target(body)),
        b'p' => {
            let _ = frontend::sasl_initial(body);
            let _ = frontend::password(body);
        }
        _ => {}
    }
    let _ = backend::ready_status(body);
    let _ = backend::parameter_status(body);
    let _ = backend::error_fields(body);
    let _ = backend::backend_key(body);
    let _ = backend::authentication(body);
}
