//! Which statements change *session* state, for transaction pooling.
//!
//! In transaction mode a client's server connection changes between transactions, so the proxy
//! must know when a statement changes state that outlives its transaction (GUCs, prepared
//! statements, listens, advisory locks, temporary objects, held cursors).
//!
//! **Why a hand-written lexer and not `pg_query`:** `pg_query` embeds PostgreSQL's real grammar,
//! but it needs a C toolchain and libclang to build and costs about a hundred times more per
//! call than a lexer. The analyser only needs the first few keywords of each statement and the
//! literals of a few function calls, and getting the *lexical* structure right (comments,
//! quoting, dollar quoting, string continuation, `BEGIN ATOMIC` bodies) is what decides whether
//! a keyword is real. [`lexer`] follows PostgreSQL's scanner rules for exactly that.
//!
//! **Cost:** [`may_touch_session`] is the hot-path filter: one pass over the bytes, no
//! allocation. [`analyze`] runs only on the statements it lets through.
//!
//! **Conservative by design:** when unsure, the analyser reports an effect (a spurious `Set`
//! costs a re-read of a setting; a spurious `Pin` costs pooling for one client) rather than miss
//! one (a leak into another client's session). `DO` bodies are analysed as PL/pgSQL, including
//! the string literals their `EXECUTE` statements run. Functions and procedures called by name
//! remain opaque: what `SELECT my_func()` does inside cannot be known from its text.

mod analyze;
mod calls;
mod decode;
mod lexer;
mod settings;

/// A change to session state made by a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// `SET [SESSION] name {TO|=} ...`, with the setting's name lower-cased (`TIME ZONE` is
    /// `timezone`, `SCHEMA` is `search_path`, `NAMES` is `client_encoding`, `ROLE` is `role`,
    /// `XML OPTION` is `xmloption`). `SET SESSION CHARACTERISTICS AS TRANSACTION ...` gives
    /// `default_transaction_isolation`, `default_transaction_read_only` and
    /// `default_transaction_deferrable`, each only if set. `SET LOCAL` and `SET TRANSACTION`
    /// end with the transaction and are not reported.
    Set(String),
    /// `RESET name`, `SET name TO DEFAULT`, `SET TIME ZONE DEFAULT|LOCAL`, `SET NAMES DEFAULT`.
    Reset(String),
    /// `RESET ALL`.
    ResetAll,
    /// `set_config('name', value, is_local)` anywhere in a statement, unless `is_local` is
    /// literally true; the name lower-cased. A computed name is a [`Effect::Pin`] instead.
    SetConfig(String),
    /// `DISCARD ALL`: clears GUCs, prepared statements, listens, advisory locks and temporary
    /// tables. (`DISCARD PLANS|SEQUENCES|TEMP` report nothing.)
    DiscardAll,
    /// `DEALLOCATE [PREPARE] ALL`.
    DeallocateAll,
    /// `DEALLOCATE [PREPARE] name`.
    Deallocate(String),
    /// `PREPARE name [(types)] AS statement`. It is followed by the effects the statement
    /// would have when executed (say `SetConfig`), so that a caller can remember them for
    /// `EXECUTE`. `PREPARE TRANSACTION` (two-phase commit) reports nothing.
    Prepare(String),
    /// `EXECUTE name [(args)]`, also inside `EXPLAIN` and `CREATE TABLE ... AS EXECUTE`.
    Execute(String),
    /// The session cannot move to another server connection after this statement; the reason
    /// is for logs and metrics: `"listen"`, `"session advisory lock"`, `"cursor with hold"`,
    /// `"temporary table"` (also views, sequences and anything created in `pg_temp`; not for
    /// `ON COMMIT DROP` tables, which end with their transaction), `"set session
    /// authorization"`, `"load"`, `"set_config with a computed name"`, `"dynamic SQL with a
    /// computed name"` (`EXECUTE format('SET %I = 1', n)` in a `DO` body), `"dynamic SQL
    /// nested too deeply"`.
    Pin(&'static str),
}

/// Every effect of every statement in `sql` (a simple Query may hold several), in order, read
/// with `standard_conforming_strings` on. Empty for ordinary statements. Never panics.
pub fn analyze(sql: &str) -> Vec<Effect> {
    analyze_with(sql, true)
}

/// [`analyze`] for a session whose `standard_conforming_strings` is as given: when it is off,
/// a backslash escapes a quote in `'...'`, which moves statement boundaries.
pub fn analyze_with(sql: &str, standard_conforming_strings: bool) -> Vec<Effect> {
    let mut out = Vec::new();
    analyze::text(
        sql,
        analyze::Ctx {
            scs: standard_conforming_strings,
            body: false,
            depth: 0,
        },
        &mut out,
    );
    out
}

/// Cheap pre-check for the hot path: `false` means `sql` certainly changes no session state
/// (and [`analyze`] would return nothing). One pass, no allocation.
///
/// It looks, case-insensitively, for the start of an identifier (a letter not preceded by a
/// letter, `_` or a non-ASCII byte, which would make it the middle of a longer identifier)
/// that begins with a keyword or function name the analyser acts on: `set` (also `set_config`),
/// `reset`, `discard`, `deallocate`, `prepare`, `execute`, `listen`, `load`, `hold`, `temp` (also
/// `temporary`), `pg_temp`, `pg_advisory_lock`, `pg_try_advisory_lock`. Two more: the word `do`,
/// because a `DO` body may spell its keywords with escapes or string continuation, and `u&`,
/// because a `U&"..."` identifier may spell `set_config`. Quoting is ignored, which can only
/// add matches.
///
/// Every query in transaction mode passes through here: it steps over whole identifiers (one
/// table lookup per byte) and looks closer only where an identifier starts with one of the
/// trigger letters; for `SELECT abalance FROM pgbench_accounts WHERE aid = 1` that is two
/// short prefix comparisons, each stopping at the first byte that differs.
pub fn may_touch_session(sql: &str) -> bool {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let class = CLASS[usize::from(b[i])];
        if class == OTHER {
            i += 1;
            continue;
        }
        if class == TRIGGER && trigger_at(&b[i..]) {
            return true;
        }
        // The rest of this identifier: its letters start nothing.
        i += 1;
        while i < b.len() && CLASS[usize::from(b[i])] != OTHER {
            i += 1;
        }
    }
    false
}

/// Byte classes for [`may_touch_session`]: a letter that may start a trigger word, a byte
/// that continues an identifier (see [`continues_identifier`]), anything else.
const OTHER: u8 = 0;
const CONTINUES: u8 = 1;
const TRIGGER: u8 = 2;
const CLASS: [u8; 256] = {
    let mut t = [OTHER; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if continues_identifier(b) {
            t[c] = CONTINUES;
        }
        c += 1;
    }
    let triggers = b"srdpelhtu";
    let mut k = 0;
    while k < triggers.len() {
        t[triggers[k] as usize] = TRIGGER;
        t[triggers[k].to_ascii_uppercase() as usize] = TRIGGER;
        k += 1;
    }
    t
};

/// Whether an identifier starting at `rest[0]` may matter, dispatched on its first letter.
fn trigger_at(rest: &[u8]) -> bool {
    let prefixes: &[&[u8]] = match rest[0] | 0x20 {
        b's' => &[b"set"],
        b'r' => &[b"reset"],
        b'd' => {
            let word_do =
                starts_ci(rest, b"do") && !rest.get(2).is_some_and(|&c| lexer::ident_cont(c));
            return word_do || starts_ci(rest, b"discard") || starts_ci(rest, b"deallocate");
        }
        b'p' => &[
            b"prepare",
            b"pg_temp",
            b"pg_advisory_lock",
            b"pg_try_advisory_lock",
        ],
        b'e' => &[b"execute"],
        b'l' => &[b"listen", b"load"],
        b'h' => &[b"hold"],
        b't' => &[b"temp"],
        b'u' => return rest.get(1) == Some(&b'&'),
        _ => return false,
    };
    prefixes.iter().any(|p| starts_ci(rest, p))
}

/// A byte that, before a letter, makes the letter part of a longer identifier. Digits and `$`
/// are left out on purpose: a number or `$$` can end right before an identifier (`1set`,
/// `$$x$$set`), so a letter after them may start a token.
const fn continues_identifier(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

/// `needle` is lower case. Stops at the first byte that differs (`eq_ignore_ascii_case`
/// compares them all, and `pgbench_accounts` is compared with four `p` words).
fn starts_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len()
        && hay
            .iter()
            .zip(needle)
            .all(|(h, n)| h.to_ascii_lowercase() == *n)
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
