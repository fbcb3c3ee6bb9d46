//! Where comments and quote-delimited strings end, following PostgreSQL's scanner.

use super::{space, StrKind};

/// The end of a `--` comment: at the newline, which is left as whitespace.
pub(super) fn line_end(b: &[u8], from: usize) -> usize {
    b[from..]
        .iter()
        .position(|&c| c == b'\n' || c == b'\r')
        .map_or(b.len(), |p| from + p)
}

/// After a `/*` at `from`: the position after its matching `*/`, counting nested `/*`.
pub(super) fn block_comment_end(b: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        if b[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if b[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

/// The end of a quote-delimited string whose content starts at `from`, after the closing quote
/// of its last continuation segment. See [`segments`].
pub(super) fn string_end(b: &[u8], from: usize, kind: StrKind) -> usize {
    let mut end = from;
    segments(b, from, kind, |_, e| end = e.min(b.len()));
    end
}

/// Walks a quote-delimited string starting at content position `from`, calling `part(s, e)` for
/// each segment's raw content `b[s..e-1]` (`e` is after the segment's closing quote). Segments
/// are joined by PostgreSQL's string continuation: a closing quote, whitespace holding a
/// newline (and `--` comments), then an opening quote. An unterminated segment ends at the end.
pub(crate) fn segments(
    b: &[u8],
    mut from: usize,
    kind: StrKind,
    mut part: impl FnMut(usize, usize),
) {
    loop {
        let Some(close) = closing_quote(b, from, kind) else {
            part(from, b.len() + 1);
            return;
        };
        part(from, close + 1);
        match continuation(b, close + 1) {
            Some(next) => from = next,
            None => return,
        }
    }
}

/// The index of the quote that closes a segment starting at `i`.
fn closing_quote(b: &[u8], mut i: usize, kind: StrKind) -> Option<usize> {
    while i < b.len() {
        match b[i] {
            b'\\' if kind == StrKind::Escape => i += 2,
            b'\'' if kind != StrKind::Bit && b.get(i + 1) == Some(&b'\'') => i += 2,
            b'\'' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// If a string continues after position `i`, the content position of its next segment.
fn continuation(b: &[u8], mut i: usize) -> Option<usize> {
    let mut newline = false;
    while i < b.len() {
        match b[i] {
            b'\n' | b'\r' => {
                newline = true;
                i += 1;
            }
            c if space(c) => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = line_end(b, i),
            b'\'' if newline => return Some(i + 1),
            _ => return None,
        }
    }
    None
}
