//! `SET` and `RESET`: which settings a statement changes, by name.

use super::analyze::word;
use super::decode::ident;
use super::lexer::Token;
use super::Effect;

/// `SET ...`; false if the setting's name is not spelled out (`SET %I = 1` in dynamic SQL).
pub(super) fn set(t: &[Token<'_>], out: &mut Vec<Effect>) -> bool {
    // SET LOCAL ends with the transaction.
    if word(t, 1, "local") {
        return true;
    }
    // SESSION is the scope unless it begins SESSION AUTHORIZATION / CHARACTERISTICS.
    let i = if word(t, 1, "session")
        && !word(t, 2, "authorization")
        && !word(t, 2, "characteristics")
    {
        2
    } else {
        1
    };
    let assigns = |j: usize| word(t, j, "to") || t.get(j).is_some_and(|x| x.is_op("="));
    if word(t, i, "session") && word(t, i + 1, "authorization") {
        out.push(Effect::Pin("set session authorization"));
    } else if word(t, i, "session") && word(t, i + 1, "characteristics") {
        characteristics(&t[i + 2..], out);
    } else if word(t, i, "transaction") || word(t, i, "constraints") {
        // Both last until the end of the transaction.
    } else if word(t, i, "time") && word(t, i + 1, "zone") {
        if word(t, i + 2, "default") || word(t, i + 2, "local") {
            out.push(reset_effect("timezone".into()));
        } else {
            out.push(set_effect("timezone".into()));
        }
    } else if !assigns(i + 1) && word(t, i, "schema") {
        out.push(set_effect("search_path".into()));
    } else if !assigns(i + 1) && word(t, i, "names") {
        if t.len() == i + 1 || word(t, i + 1, "default") {
            out.push(reset_effect("client_encoding".into()));
        } else {
            out.push(set_effect("client_encoding".into()));
        }
    } else if !assigns(i + 1) && word(t, i, "xml") && word(t, i + 1, "option") {
        out.push(set_effect("xmloption".into()));
    } else if let Some((name, next)) = var_name(t, i) {
        // `SET ROLE NONE` lands here as a plain `Set("role")`.
        if assigns(next) && word(t, next + 1, "default") && t.len() == next + 2 {
            out.push(reset_effect(name));
        } else {
            out.push(set_effect(name));
        }
    } else {
        return false;
    }
    true
}

/// `SET SESSION CHARACTERISTICS AS TRANSACTION` modes: each default it sets, once.
fn characteristics(t: &[Token<'_>], out: &mut Vec<Effect>) {
    let mut seen: Vec<&'static str> = Vec::new();
    for i in 0..t.len() {
        let name = if word(t, i, "isolation") {
            "default_transaction_isolation"
        } else if word(t, i, "read") && (word(t, i + 1, "only") || word(t, i + 1, "write")) {
            "default_transaction_read_only"
        } else if word(t, i, "deferrable") {
            "default_transaction_deferrable"
        } else {
            continue;
        };
        if !seen.contains(&name) {
            seen.push(name);
            out.push(Effect::Set(name.into()));
        }
    }
}

/// `RESET ...`; false if the setting's name is not spelled out.
pub(super) fn reset(t: &[Token<'_>], out: &mut Vec<Effect>) -> bool {
    if word(t, 1, "all") {
        out.push(Effect::ResetAll);
    } else if word(t, 1, "time") && word(t, 2, "zone") {
        out.push(reset_effect("timezone".into()));
    } else if word(t, 1, "session") && word(t, 2, "authorization") {
        out.push(Effect::Pin("set session authorization"));
    } else if word(t, 1, "transaction") {
        // RESET TRANSACTION ISOLATION LEVEL: transaction-scoped.
    } else if let Some((name, _)) = var_name(t, 1) {
        out.push(reset_effect(name));
    } else {
        return false;
    }
    true
}

/// A possibly dotted setting name at `i` (`search_path`, `"TimeZone"`, `myapp.user_id`),
/// lower-cased because setting names are case-insensitive; and the index after it.
fn var_name(t: &[Token<'_>], i: usize) -> Option<(String, usize)> {
    let mut name = t.get(i).and_then(ident)?;
    let mut next = i + 1;
    while t.get(next).is_some_and(|x| x.is_punct(".")) {
        let Some(part) = t.get(next + 1).and_then(ident) else {
            break;
        };
        name.push('.');
        name.push_str(&part);
        next += 2;
    }
    Some((name.to_ascii_lowercase(), next))
}

/// Setting `session_authorization` by name is `SET SESSION AUTHORIZATION` in disguise.
pub(crate) fn set_effect(name: String) -> Effect {
    if name == "session_authorization" {
        Effect::Pin("set session authorization")
    } else {
        Effect::Set(name)
    }
}

pub(super) fn reset_effect(name: String) -> Effect {
    if name == "session_authorization" {
        Effect::Pin("set session authorization")
    } else {
        Effect::Reset(name)
    }
}
