//! A PostgreSQL lexer, just precise enough to find statement boundaries and keywords.
//!
//! It follows the token rules of PostgreSQL's own scanner (`scan.l`) for everything that decides
//! where a token starts and ends: comments (nested `/* */`), standard, `E''`, `U&''`, `B''`,
//! `X''` and `N''` strings with `''` doubling and string continuation across newlines, quoted
//! identifiers, dollar quoting, parameters, numbers and operators. Where PostgreSQL would reject
//! the input, this lexer picks the reading that finds *more* tokens (control characters count as
//! whitespace) or swallows the rest (an unterminated string or comment), because the server then
//! rejects the whole query and nothing in it runs.
//!
//! Token values (string contents, identifier names) are decoded lazily by [`super::decode`],
//! since the analyser looks at very few of them.

mod quoted;

pub(crate) use quoted::segments;
use quoted::{block_comment_end, line_end, string_end};

/// What a token is; string flavours matter for decoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Unquoted identifier or keyword.
    Word,
    /// `"quoted identifier"`.
    Quoted,
    /// `U&"quoted identifier"` with Unicode escapes.
    UnicodeQuoted,
    /// A string literal.
    Str(StrKind),
    Number,
    /// `$1`.
    Param,
    /// An operator (`=`, `=>`, `::`, `:=`, `>>`, ...).
    Op,
    /// One of `( ) [ ] , ; . :` or a character PostgreSQL has no rule for.
    Punct,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrKind {
    /// `'...'` (with `standard_conforming_strings` on) and `N'...'`.
    Standard,
    /// `E'...'`, and `'...'` when `standard_conforming_strings` is off.
    Escape,
    /// `U&'...'`.
    Unicode,
    /// `$tag$...$tag$`.
    Dollar,
    /// `B'...'` and `X'...'`: no `''` doubling inside.
    Bit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: Kind,
    /// The token's source text, prefixes and quotes included.
    pub text: &'a str,
    /// The escape character of a `U&` token (changed by a following `UESCAPE 'c'`).
    pub uescape: char,
}

impl<'a> Token<'a> {
    /// An unquoted keyword or identifier equal to `kw` (lower case) in any letter case.
    pub fn is_word(&self, kw: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(kw)
    }

    pub fn is_punct(&self, p: &str) -> bool {
        self.kind == Kind::Punct && self.text == p
    }

    pub fn is_op(&self, op: &str) -> bool {
        self.kind == Kind::Op && self.text == op
    }

    pub fn is_str(&self) -> bool {
        matches!(self.kind, Kind::Str(_))
    }
}

/// PostgreSQL identifier characters: letters, `_` and every byte of a multi-byte character.
pub(crate) fn ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

pub(crate) fn ident_cont(c: u8) -> bool {
    ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Characters an operator is made of (PostgreSQL's `op_chars`).
fn op_char(c: u8) -> bool {
    b"~!@#^&|`?+-*/%<>=".contains(&c)
}

/// Whitespace, plus every other control character: PostgreSQL rejects those, and treating them
/// as separators can only make the analyser see more statements, never fewer.
pub(crate) fn space(c: u8) -> bool {
    c <= b' ' || c == 0x7f
}

/// Splits `src` into tokens. Comments and whitespace are dropped. `UESCAPE 'c'` after a `U&`
/// token is folded into that token.
pub(crate) fn tokenize(src: &str, standard_conforming_strings: bool) -> Vec<Token<'_>> {
    let mut lexer = Lexer {
        src,
        b: src.as_bytes(),
        pos: 0,
        scs: standard_conforming_strings,
    };
    let mut out: Vec<Token<'_>> = Vec::new();
    while let Some(tok) = lexer.next_token() {
        // `U&'...' UESCAPE '!'`: PostgreSQL applies the clause to the preceding literal.
        let n = out.len();
        if tok.is_str()
            && n >= 2
            && out[n - 1].is_word("uescape")
            && matches!(
                out[n - 2].kind,
                Kind::UnicodeQuoted | Kind::Str(StrKind::Unicode)
            )
        {
            if let Some(c) = single_char(tok.text) {
                out[n - 2].uescape = c;
                out.pop();
                continue;
            }
        }
        out.push(tok);
    }
    out
}

/// The character of a one-character literal `'c'`, if `text` is one.
fn single_char(text: &str) -> Option<char> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut chars = inner.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c)
}

struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    scs: bool,
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> u8 {
        self.b.get(self.pos + ahead).copied().unwrap_or(0)
    }

    fn starts(&self, at: usize, s: &[u8]) -> bool {
        self.b.get(at..at + s.len()) == Some(s)
    }

    fn next_token(&mut self) -> Option<Token<'a>> {
        self.skip_space_and_comments();
        if self.pos >= self.b.len() {
            return None;
        }
        let start = self.pos;
        let c = self.b[start];
        let c1 = self.peek(1);
        let kind = match c {
            b'\'' => {
                let kind = if self.scs {
                    StrKind::Standard
                } else {
                    StrKind::Escape
                };
                self.quoted_string(start + 1, kind)
            }
            b'"' => {
                self.pos = self.quoted_ident_end(start + 1);
                Kind::Quoted
            }
            b'e' | b'E' if c1 == b'\'' => self.quoted_string(start + 2, StrKind::Escape),
            b'b' | b'B' | b'x' | b'X' if c1 == b'\'' => self.quoted_string(start + 2, StrKind::Bit),
            b'n' | b'N' if c1 == b'\'' => {
                let kind = if self.scs {
                    StrKind::Standard
                } else {
                    StrKind::Escape
                };
                self.quoted_string(start + 2, kind)
            }
            b'u' | b'U' if c1 == b'&' && self.peek(2) == b'\'' => {
                self.quoted_string(start + 3, StrKind::Unicode)
            }
            b'u' | b'U' if c1 == b'&' && self.peek(2) == b'"' => {
                self.pos = self.quoted_ident_end(start + 3);
                Kind::UnicodeQuoted
            }
            b'$' => self.dollar(start),
            b'0'..=b'9' => self.number(),
            b'.' if c1.is_ascii_digit() => self.number(),
            c if ident_start(c) => {
                self.pos = start + 1;
                while self.pos < self.b.len() && ident_cont(self.b[self.pos]) {
                    self.pos += 1;
                }
                Kind::Word
            }
            b':' if c1 == b':' || c1 == b'=' => {
                self.pos = start + 2;
                Kind::Op
            }
            c if op_char(c) => self.operator(),
            _ => {
                // Only ASCII reaches here (bytes >= 0x80 start identifiers), so one byte is
                // one character and the slice below stays on a character boundary.
                self.pos = start + 1;
                Kind::Punct
            }
        };
        Some(Token {
            kind,
            text: &self.src[start..self.pos],
            uescape: '\\',
        })
    }

    fn skip_space_and_comments(&mut self) {
        while self.pos < self.b.len() {
            let c = self.b[self.pos];
            if space(c) {
                self.pos += 1;
            } else if self.starts(self.pos, b"--") {
                self.pos = line_end(self.b, self.pos);
            } else if self.starts(self.pos, b"/*") {
                self.pos = block_comment_end(self.b, self.pos);
            } else {
                return;
            }
        }
    }

    /// Lexes a quote-delimited string whose content starts at `from`.
    fn quoted_string(&mut self, from: usize, kind: StrKind) -> Kind {
        self.pos = string_end(self.b, from, kind);
        Kind::Str(kind)
    }

    /// After `"` (or `U&"`): up to and including the closing `"`; `""` is an escaped quote.
    fn quoted_ident_end(&self, mut i: usize) -> usize {
        while i < self.b.len() {
            if self.b[i] == b'"' {
                if self.b.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return i + 1;
            }
            i += 1;
        }
        self.b.len()
    }

    /// `$1`, `$tag$...$tag$`, or a lone `$`.
    fn dollar(&mut self, start: usize) -> Kind {
        let b = self.b;
        let mut i = start + 1;
        if b.get(i).is_some_and(u8::is_ascii_digit) {
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            self.pos = i;
            return Kind::Param;
        }
        if b.get(i).is_some_and(|&c| ident_start(c)) {
            while b
                .get(i)
                .is_some_and(|&c| ident_start(c) || c.is_ascii_digit())
            {
                i += 1;
            }
        }
        if b.get(i) != Some(&b'$') {
            // Not a dollar quote: PostgreSQL returns the `$` alone and lexes on after it.
            self.pos = start + 1;
            return Kind::Punct;
        }
        let delim = &self.src[start..=i];
        // The first occurrence of the exact opening delimiter closes the body; an unterminated
        // body swallows the rest (the server rejects the query).
        self.pos = match self.src[i + 1..].find(delim) {
            Some(at) => i + 1 + at + delim.len(),
            None => b.len(),
        };
        Kind::Str(StrKind::Dollar)
    }

    /// Digits with an optional fraction and exponent; never consumes a letter that is not part
    /// of a complete exponent, so a following identifier starts where PostgreSQL starts it.
    fn number(&mut self) -> Kind {
        let b = self.b;
        let mut i = self.pos;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if b.get(i) == Some(&b'.') && b.get(i + 1) != Some(&b'.') {
            i += 1;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            let mut j = i + 1;
            if matches!(b.get(j), Some(b'+' | b'-')) {
                j += 1;
            }
            if b.get(j).is_some_and(u8::is_ascii_digit) {
                while b.get(j).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                }
                i = j;
            }
        }
        self.pos = i;
        Kind::Number
    }

    /// A run of operator characters, cut before a comment start; a trailing `+`/`-` is dropped
    /// unless the operator has one of `~!@#^&|`?%`, as PostgreSQL does (`=-1` is `=` then `-1`).
    fn operator(&mut self) -> Kind {
        let b = self.b;
        let start = self.pos;
        let mut end = start;
        while end < b.len() && op_char(b[end]) {
            if end > start && (self.starts(end, b"--") || self.starts(end, b"/*")) {
                break;
            }
            end += 1;
        }
        let run = &b[start..end];
        if run.len() > 1 && !run.iter().any(|c| b"~!@#^&|`?%".contains(c)) {
            while end > start + 1 && matches!(b[end - 1], b'+' | b'-') {
                end -= 1;
            }
        }
        self.pos = end;
        Kind::Op
    }
}

#[cfg(test)]
mod tests;
