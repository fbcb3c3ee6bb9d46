//! Function calls that change session state wherever they appear in a statement:
//! `set_config(...)` and the session-level advisory lock functions.

use super::decode::{ident, string};
use super::lexer::{Kind, Token};
use super::Effect;

/// Session-level advisory locks outlive the transaction (the `_xact_` variants do not).
const ADVISORY: &[&str] = &[
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// Appends the effects of every call in `t`, in order. Schema qualification is ignored on
/// purpose: `myschema.set_config(...)` is treated as the real one, which can only over-report.
pub(crate) fn scan(t: &[Token<'_>], out: &mut Vec<Effect>) {
    let mut closers = None;
    for i in 0..t.len().saturating_sub(1) {
        let callable = matches!(t[i].kind, Kind::Word | Kind::Quoted | Kind::UnicodeQuoted);
        if !callable || !t[i + 1].is_punct("(") {
            continue;
        }
        let Some(name) = ident(&t[i]) else {
            continue;
        };
        if name == "set_config" {
            let closers = closers.get_or_insert_with(|| closers_of(t));
            set_config(&args(t, i + 1, closers), out);
        } else if ADVISORY.contains(&name.as_str()) {
            out.push(Effect::Pin("session advisory lock"));
        }
    }
}

/// `set_config(setting_name, new_value, is_local)`, positional or named (`is_local => true`).
fn set_config(args: &[&[Token<'_>]], out: &mut Vec<Effect>) {
    let mut positional = Vec::new();
    let (mut name_arg, mut local_arg) = (None, None);
    for &arg in args {
        let named = arg.len() >= 2 && (arg[1].is_op("=>") || arg[1].is_op(":="));
        match named.then(|| ident(&arg[0])).flatten() {
            Some(param) if param == "setting_name" => name_arg = Some(&arg[2..]),
            Some(param) if param == "is_local" => local_arg = Some(&arg[2..]),
            Some(_) => {}
            None => positional.push(arg),
        }
    }
    let name_arg = name_arg.or(positional.first().copied());
    let local_arg = local_arg.or(positional.get(2).copied());
    let Some(name) = name_arg.and_then(literal_string) else {
        out.push(Effect::Pin("set_config with a computed name"));
        return;
    };
    if local_arg.is_some_and(literally_true) {
        return;
    }
    out.push(
        match super::settings::set_effect(name.to_ascii_lowercase()) {
            Effect::Set(name) => Effect::SetConfig(name),
            other => other,
        },
    );
}

fn opens(t: &Token<'_>) -> bool {
    t.is_punct("(") || t.is_punct("[")
}

fn closes(t: &Token<'_>) -> bool {
    t.is_punct(")") || t.is_punct("]")
}

/// For each `(` or `[` in `t`, the index of its closer (`t.len()` if it has none).
fn closers_of(t: &[Token<'_>]) -> Vec<usize> {
    let mut closer = vec![t.len(); t.len()];
    let mut open = Vec::new();
    for (i, tok) in t.iter().enumerate() {
        if opens(tok) {
            open.push(i);
        } else if closes(tok) {
            if let Some(o) = open.pop() {
                closer[o] = i;
            }
        }
    }
    closer
}

/// The arguments of the call whose `(` is at `open`, split at its top-level commas. Nested
/// brackets are jumped over, so nested calls cost no rescans (`set_config(set_config(...))`
/// stays linear).
fn args<'t, 'a>(t: &'t [Token<'a>], open: usize, closers: &[usize]) -> Vec<&'t [Token<'a>]> {
    let end = closers[open];
    let mut out = Vec::new();
    let (mut start, mut i) = (open + 1, open + 1);
    while i < end {
        if opens(&t[i]) {
            i = closers[i] + 1;
            continue;
        }
        if t[i].is_punct(",") {
            out.push(&t[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&t[start.min(end)..end.min(t.len())]);
    out
}

/// A string literal, optionally cast (`'TimeZone'::text`).
fn literal_string(arg: &[Token<'_>]) -> Option<String> {
    let first = arg.first()?;
    if arg.len() > 1 && !arg[1].is_op("::") {
        return None;
    }
    string(first)
}

/// `true`, or a string PostgreSQL reads as true (`'t'`, `'yes'`, `'on'`, `'1'`, ...),
/// optionally cast. Anything else, even an expression that is always true, is not.
fn literally_true(arg: &[Token<'_>]) -> bool {
    let Some(first) = arg.first() else {
        return false;
    };
    if arg.len() > 1 && !arg[1].is_op("::") {
        return false;
    }
    if first.is_word("true") {
        return true;
    }
    let Some(s) = string(first) else {
        return false;
    };
    let s = s.trim().to_ascii_lowercase();
    !s.is_empty() && ("true".starts_with(&s) || "yes".starts_with(&s) || s == "on" || s == "1")
}
