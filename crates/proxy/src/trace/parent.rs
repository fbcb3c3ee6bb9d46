//! The W3C `traceparent` a client puts in a sqlcommenter comment on its query:
//! `SELECT … /*traceparent='00-<32 hex trace id>-<16 hex span id>-<2 hex flags>'*/`, with
//! the value URL-encoded as sqlcommenter writes it (`%2D` for `-` is accepted).
//!
//! Hand-written because it runs on every Query and Parse: a statement without the marker
//! costs one SIMD substring search (memchr's `memmem`) and nothing else.

use std::sync::LazyLock;

use memchr::memmem;

const MARKER: &[u8] = b"traceparent";
/// Longest value looked at; a version-00 traceparent is 55 characters (more when encoded).
const MAX_VALUE: usize = 256;

static FIND: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(MARKER));

/// A remote parent span: what the client's tracer says its current span is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

impl Parent {
    /// The client's tracer recorded (and will export) its span: so should we.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// The first valid `traceparent` inside a block comment of `text` (a statement, or a whole
/// Query/Parse frame), if any. Invalid values are ignored, as W3C Trace Context asks.
pub fn find(text: &[u8]) -> Option<Parent> {
    if text.len() < MARKER.len() {
        return None; // `SELECT 1`: not even the searcher's set-up
    }
    let mut from = 0;
    while let Some(off) = FIND.find(&text[from..]) {
        let at = from + off;
        if let Some(p) = parse_at(text, at) {
            return Some(p);
        }
        from = at + MARKER.len();
    }
    None
}

/// `text[at..]` starts with the marker: is it a sqlcommenter key with a valid value?
fn parse_at(text: &[u8], at: usize) -> Option<Parent> {
    let before = &text[..at];
    if before
        .last()
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None; // part of a longer name
    }
    // Only inside a block comment: the last `/*` before it is not closed yet. (A string
    // literal that holds a comment-like text can still fool this; the worst outcome is a
    // wrong parent for one span, never an error for the client.)
    let open = memmem::rfind(before, b"/*")?;
    if memmem::find(&before[open..], b"*/").is_some() {
        return None;
    }
    let rest = skip_spaces(&text[at + MARKER.len()..]);
    let rest = skip_spaces(rest.strip_prefix(b"=")?);
    let rest = rest.strip_prefix(b"'").unwrap_or(rest);
    let end = rest
        .iter()
        .take(MAX_VALUE)
        .position(|&b| matches!(b, b'\'' | b',' | b'*' | b'/') || b.is_ascii_whitespace())
        .unwrap_or(rest.len().min(MAX_VALUE));
    let mut value = [0u8; MAX_VALUE];
    let n = url_decode(&rest[..end], &mut value)?;
    parse_value(&value[..n])
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

/// Percent-decodes `src` into `dst`; `None` on a malformed escape.
fn url_decode(src: &[u8], dst: &mut [u8]) -> Option<usize> {
    let (mut i, mut n) = (0, 0);
    while i < src.len() {
        let b = if src[i] == b'%' {
            let hi = hex_digit(*src.get(i + 1)?, true)?;
            let lo = hex_digit(*src.get(i + 2)?, true)?;
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            src[i - 1]
        };
        *dst.get_mut(n)? = b;
        n += 1;
    }
    Some(n)
}

/// `version-traceid-parentid-flags`, lower-case hex, as W3C Trace Context version 00 has it.
/// A later version may append `-…` fields, which are ignored; version `ff` is invalid.
fn parse_value(v: &[u8]) -> Option<Parent> {
    if v.len() < 55 || (v.len() > 55 && (v[..2] == *b"00" || v[55] != b'-')) {
        return None;
    }
    if v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex(&v[..2])?;
    let trace_id = hex(&v[3..35])?;
    let span_id = hex(&v[36..52])? as u64;
    let flags = hex(&v[53..55])? as u8;
    if version == 0xff || trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        flags,
    })
}

/// Lower-case hex digits (at most 32) as a number.
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |acc, &d| {
        Some(acc << 4 | u128::from(hex_digit(d, false)?))
    })
}

fn hex_digit(d: u8, upper_ok: bool) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' if upper_ok => Some(d - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
