//! Token values: string literal contents and identifier names, decoded as PostgreSQL does.
//! Where PostgreSQL would reject a value (a bad escape), decoding is lossy instead of failing:
//! the server rejects such a query anyway, so the value never takes effect.

use super::lexer::{segments, Kind, StrKind, Token};

/// PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
const MAX_IDENT: usize = 63;

/// The name an identifier token stands for: unquoted ones lower-cased (ASCII only, as
/// PostgreSQL does for UTF-8), quoted ones as written; truncated to 63 bytes. `None` for
/// tokens that are not identifiers.
pub(crate) fn ident(tok: &Token<'_>) -> Option<String> {
    let name = match tok.kind {
        Kind::Word => tok.text.to_ascii_lowercase(),
        Kind::Quoted => quoted_ident(&tok.text[1..]),
        Kind::UnicodeQuoted => unicode_escapes(&quoted_ident(&tok.text[3..]), tok.uescape),
        _ => return None,
    };
    Some(truncate(name))
}

/// The value of a string literal token; `None` for other tokens.
pub(crate) fn string(tok: &Token<'_>) -> Option<String> {
    let Kind::Str(kind) = tok.kind else {
        return None;
    };
    let text = tok.text;
    let b = text.as_bytes();
    if kind == StrKind::Dollar {
        // `$tag$body$tag$`: the body is everything between the delimiters.
        let open = text[1..].find('$').map_or(text.len(), |p| p + 2);
        let delim = &text[..open];
        // An unterminated body (the lexer swallowed the rest) has no closing delimiter.
        let body_end = if text.len() >= 2 * open && text.ends_with(delim) {
            text.len() - open
        } else {
            text.len()
        };
        return Some(text.get(open..body_end).unwrap_or("").to_owned());
    }
    let from = text.find('\'').map_or(text.len(), |q| q + 1);
    let mut raw = Vec::with_capacity(text.len());
    segments(b, from, kind, |s, e| {
        raw.extend_from_slice(&b[s..(e - 1).min(b.len())]);
    });
    let value = match kind {
        StrKind::Escape => escape_string(&raw),
        StrKind::Unicode => unicode_escapes(&undouble(&raw), tok.uescape),
        _ => undouble(&raw),
    };
    Some(value)
}

fn truncate(mut name: String) -> String {
    if name.len() > MAX_IDENT {
        let mut cut = MAX_IDENT;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    name
}

/// `"abc""d"` without its opening quote -> `abc"d`.
fn quoted_ident(after_open: &str) -> String {
    let inner = after_open.strip_suffix('"').unwrap_or(after_open);
    inner.replace("\"\"", "\"")
}

/// Standard string content: `''` stands for `'`.
fn undouble(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).replace("''", "'")
}

/// `E'...'` content: C-style backslash escapes and `''`.
fn escape_string(raw: &[u8]) -> String {
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c == b'\'' {
            // The lexer only leaves doubled quotes inside a segment.
            out.push(b'\'');
            i += 2;
            continue;
        }
        if c != b'\\' || i + 1 >= raw.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = raw[i + 1];
        i += 2;
        match e {
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'0'..=b'7' => {
                let (v, used) = digits(&raw[i - 1..], 8, 3);
                out.push(v as u8);
                i += used - 1;
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let (v, used) = digits(&raw[i..], 16, 2);
                out.push(v as u8);
                i += used;
            }
            b'u' | b'U' => {
                let width = if e == b'u' { 4 } else { 8 };
                let (v, used) = digits(&raw[i..], 16, width);
                if used < width {
                    out.push(e);
                } else {
                    i += used;
                    let mut buf = [0; 4];
                    out.extend_from_slice(code_point(v).encode_utf8(&mut buf).as_bytes());
                }
            }
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Up to `max` digits of `radix` at the start of `s`: (value, digits used).
fn digits(s: &[u8], radix: u32, max: usize) -> (u32, usize) {
    let mut v: u32 = 0;
    let mut used = 0;
    for &c in s.iter().take(max) {
        let Some(d) = (c as char).to_digit(radix) else {
            break;
        };
        v = v.wrapping_mul(radix).wrapping_add(d);
        used += 1;
    }
    (v, used)
}

fn code_point(v: u32) -> char {
    char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// `U&` escapes with escape character `esc`: `esc esc`, `esc XXXX`, `esc +XXXXXX`, with UTF-16
/// surrogate pairs joined.
fn unicode_escapes(s: &str, esc: char) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.char_indices().peekable();
    let mut high: Option<u32> = None;
    while let Some((at, c)) = chars.next() {
        if c != esc {
            out.push(c);
            continue;
        }
        let rest = &s.as_bytes()[at + c.len_utf8()..];
        let (v, width) = match rest.first() {
            Some(b'+') => {
                let (v, used) = digits(&rest[1..], 16, 6);
                (v, (used == 6).then_some(7))
            }
            _ => {
                let (v, used) = digits(rest, 16, 4);
                (v, (used == 4).then_some(4))
            }
        };
        let Some(width) = width else {
            // `esc esc` is the escape character itself; anything else is invalid (lossy).
            if rest.starts_with(esc.to_string().as_bytes()) {
                chars.next();
            }
            out.push(esc);
            continue;
        };
        for _ in 0..width {
            chars.next();
        }
        match (high.take(), v) {
            (Some(h), 0xDC00..=0xDFFF) => {
                out.push(code_point(0x10000 + ((h - 0xD800) << 10) + (v - 0xDC00)));
            }
            (_, 0xD800..=0xDBFF) => high = Some(v),
            (_, v) => out.push(code_point(v)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::tokenize;

    fn value(sql: &str) -> String {
        let toks = tokenize(sql, true);
        string(&toks[0]).or_else(|| ident(&toks[0])).unwrap()
    }

    #[test]
    fn decodes_literals_and_names() {
        let cases = [
            ("'it''s'", "it's"),
            ("E'a\\nb\\'c\\\\'", "a\nb'c\\"),
            ("E'\\163et\\x41\\u00e9'", "setAé"),
            ("E'\\U0001F600'", "\u{1F600}"),
            ("U&'d\\0061t\\+000061'", "data"),
            ("U&'d!0061t!!' UESCAPE '!'", "dat!"),
            ("U&'\\D83D\\DE00'", "\u{1F600}"),
            ("$$a'b$$", "a'b"),
            ("$x$ $$ $x$", " $$ "),
            ("'se'\n  'T'", "seT"),
            ("'a' -- c\n -- d\n'b'", "ab"),
            ("N'x'", "x"),
            ("\"TimeZone\"", "TimeZone"),
            ("\"a\"\"b\"", "a\"b"),
            ("U&\"\\0073et\"", "set"),
            ("SeT", "set"),
            ("'unterminated", "unterminated"),
            ("$$open", "open"),
        ];
        for (sql, want) in cases {
            assert_eq!(value(sql), want, "{sql}");
        }
    }

    #[test]
    fn truncates_identifiers_like_postgresql() {
        let long = "a".repeat(70);
        assert_eq!(value(&long).len(), 63);
        // A multi-byte character straddling byte 63 is dropped whole.
        let mixed = format!("{}é", "b".repeat(62));
        assert_eq!(value(&mixed), "b".repeat(62));
    }

    #[test]
    fn non_standard_strings_take_backslash_escapes() {
        let toks = tokenize("'a\\'b'", false);
        assert_eq!(toks.len(), 1);
        assert_eq!(string(&toks[0]).unwrap(), "a'b");
    }
}
