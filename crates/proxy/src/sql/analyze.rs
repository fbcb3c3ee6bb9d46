//! Statement rules: splitting a query into statements and reading each one's effects.

use std::ops::Range;

use super::decode::{ident, string};
use super::lexer::{tokenize, Kind, Token};
use super::{calls, settings};
use super::{may_touch_session, Effect};

/// How deep `DO` bodies and the dynamic SQL inside them are followed. Each level is a string
/// inside the previous one, so the work stays linear in the input per level.
const MAX_DEPTH: u32 = 8;

/// Where the text being analysed comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub scs: bool,
    /// A PL/pgSQL body (of a `DO` block) rather than plain SQL.
    pub body: bool,
    pub depth: u32,
}

/// Appends the effects of every statement in `sql`.
pub(crate) fn text(sql: &str, ctx: Ctx, out: &mut Vec<Effect>) {
    if ctx.depth > MAX_DEPTH {
        if may_touch_session(sql) {
            out.push(Effect::Pin("dynamic SQL nested too deeply"));
        }
        return;
    }
    let toks = tokenize(sql, ctx.scs);
    for stmt in split(&toks) {
        statement(stmt, ctx, out);
    }
}

/// Splits at `;`, except inside a `BEGIN ATOMIC ... END` routine body (whose `;` belong to the
/// body). Like psql, it tracks `BEGIN ATOMIC`, `CASE` and `END` only in `CREATE [OR REPLACE]
/// FUNCTION|PROCEDURE` statements, outside parentheses, so a transaction's `BEGIN` never
/// merges statements. A `;` inside parentheses still splits: valid SQL has none there except in
/// rule actions, which do not run when created, so splitting can only find extra statements.
fn split<'t, 'a>(toks: &'t [Token<'a>]) -> Vec<&'t [Token<'a>]> {
    let mut out = Vec::new();
    let (mut start, mut parens, mut atomic) = (0, 0usize, 0usize);
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct(";") {
            if atomic == 0 {
                if i > start {
                    out.push(&toks[start..i]);
                }
                start = i + 1;
                parens = 0;
            }
        } else if t.is_punct("(") {
            parens += 1;
        } else if t.is_punct(")") {
            parens = parens.saturating_sub(1);
        } else if t.kind == Kind::Word && parens == 0 && is_routine(&toks[start..]) {
            // CASE ... END inside the body must not close it.
            let opens = (t.is_word("begin") && word(toks, i + 1, "atomic"))
                || (atomic > 0 && t.is_word("case"));
            if opens {
                atomic += 1;
            } else if atomic > 0 && t.is_word("end") {
                atomic -= 1;
            }
        }
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    out
}

/// `CREATE [OR REPLACE] FUNCTION|PROCEDURE`: its body does not run when it is created.
fn is_routine(t: &[Token<'_>]) -> bool {
    let i = if word(t, 1, "or") && word(t, 2, "replace") {
        3
    } else {
        1
    };
    word(t, 0, "create") && (word(t, i, "function") || word(t, i, "procedure"))
}

fn statement(t: &[Token<'_>], ctx: Ctx, out: &mut Vec<Effect>) {
    if ctx.body {
        // In PL/pgSQL a statement may also start right after a block keyword (`BEGIN SET
        // search_path = x;`, `IF c THEN LISTEN q;`), with no `;` before it. Each piece ends
        // at the next such keyword, which keeps the work linear in the length of the body.
        let mut start = 0;
        let mut skip = Vec::new();
        for i in 1..=t.len() {
            if i == t.len() || starts_block(&t[i - 1]) {
                leading(&t[start..i], ctx, out);
                if word(t, start, "do") {
                    // Its strings were just read as a body; not again as dynamic SQL.
                    skip.push(start..i);
                }
                start = i;
            }
        }
        dynamic_sql(t, &skip, ctx, out);
    } else {
        leading(t, ctx, out);
    }
    if !is_routine(t) {
        calls::scan(t, out);
        into_temp(t, out);
    }
}

fn starts_block(t: &Token<'_>) -> bool {
    ["begin", "then", "else", "loop"]
        .iter()
        .any(|kw| t.is_word(kw))
        || t.is_op(">>")
}

/// The rules keyed on a statement's first keyword.
fn leading(mut t: &[Token<'_>], ctx: Ctx, out: &mut Vec<Effect>) {
    // A loop, not recursion: `EXPLAIN EXPLAIN ...` must not grow the stack.
    while word(t, 0, "explain") {
        t = skip_explain(t);
    }
    let Some(first) = t.first().filter(|f| f.kind == Kind::Word) else {
        return;
    };
    match first.text.to_ascii_lowercase().as_str() {
        "set" | "reset" | "prepare" => {
            let named = match t[0].text.to_ascii_lowercase().as_str() {
                "set" => settings::set(t, out),
                "reset" => settings::reset(t, out),
                _ => prepare(t, out),
            };
            // Dynamic SQL may build the name at run time (`format('SET %I = 1', n)`, `'SET '
            // || n`): which setting it changes is unknown, so the session cannot move.
            if !named && !ctx.body && ctx.depth > 0 {
                out.push(Effect::Pin("dynamic SQL with a computed name"));
            }
        }
        "discard" if word(t, 1, "all") => out.push(Effect::DiscardAll),
        "deallocate" => deallocate(t, out),
        // In PL/pgSQL, EXECUTE runs a string instead: see `dynamic_sql`.
        "execute" if !ctx.body => {
            if let Some(name) = t.get(1).and_then(ident) {
                out.push(Effect::Execute(name));
            }
        }
        "listen" => out.push(Effect::Pin("listen")),
        "load" => out.push(Effect::Pin("load")),
        "declare" => {
            let options = t.iter().take_while(|x| !x.is_word("for"));
            let options: Vec<_> = options.collect();
            if options
                .windows(2)
                .any(|w| w[0].is_word("with") && w[1].is_word("hold"))
            {
                out.push(Effect::Pin("cursor with hold"));
            }
        }
        "create" => create(t, out),
        "do" => {
            // The body is PL/pgSQL, given as any string literal of the statement.
            let inner = Ctx {
                body: true,
                depth: ctx.depth + 1,
                ..ctx
            };
            for body in t.iter().filter_map(string) {
                text(&body, inner, out);
            }
        }
        _ => {}
    }
}

/// `PREPARE name ...`; false if the name is not spelled out.
fn prepare(t: &[Token<'_>], out: &mut Vec<Effect>) -> bool {
    // `PREPARE TRANSACTION 'gid'` is two-phase commit, not a prepared statement.
    if word(t, 1, "transaction") && t.get(2).is_some_and(Token::is_str) {
        return true;
    }
    match t.get(1).and_then(ident) {
        Some(name) => {
            out.push(Effect::Prepare(name));
            true
        }
        None => false,
    }
}

fn deallocate(t: &[Token<'_>], out: &mut Vec<Effect>) {
    // `DEALLOCATE prepare` deallocates a statement named "prepare".
    let i = if word(t, 1, "prepare") && t.len() > 2 {
        2
    } else {
        1
    };
    if word(t, i, "all") {
        out.push(Effect::DeallocateAll);
    } else if let Some(name) = t.get(i).and_then(ident) {
        out.push(Effect::Deallocate(name));
    }
}

fn create(t: &[Token<'_>], out: &mut Vec<Effect>) {
    let mut i = 1;
    if word(t, i, "or") && word(t, i + 1, "replace") {
        i += 2;
    }
    if word(t, i, "global") || word(t, i, "local") {
        i += 1;
    }
    let temp = word(t, i, "temp") || word(t, i, "temporary");
    // An ON COMMIT DROP table is gone when its transaction ends, so it holds nothing.
    let on_commit_drop = (0..t.len())
        .any(|j| word(t, j, "on") && word(t, j + 1, "commit") && word(t, j + 2, "drop"));
    if (temp && !on_commit_drop) || (!temp && (0..t.len()).any(|j| pg_temp_at(t, j))) {
        out.push(Effect::Pin("temporary table"));
    }
    for j in 0..t.len() {
        if word(t, j, "as") && word(t, j + 1, "execute") {
            if let Some(name) = t.get(j + 2).and_then(ident) {
                out.push(Effect::Execute(name));
            }
        }
    }
}

/// `SELECT ... INTO TEMP t` (but not `INSERT INTO temp`, a table named "temp").
fn into_temp(t: &[Token<'_>], out: &mut Vec<Effect>) {
    let found = (0..t.len()).any(|i| {
        word(t, i, "into")
            && !(i > 0 && (word(t, i - 1, "insert") || word(t, i - 1, "merge")))
            && (word(t, i + 1, "temp") || word(t, i + 1, "temporary") || pg_temp_at(t, i + 1))
    });
    if found {
        out.push(Effect::Pin("temporary table"));
    }
}

/// A name qualified by the session's temporary schema: `pg_temp.x` or `pg_temp_3.x`.
fn pg_temp_at(t: &[Token<'_>], i: usize) -> bool {
    let Some(name) = t.get(i).and_then(ident) else {
        return false;
    };
    let temp_schema = name == "pg_temp"
        || name
            .strip_prefix("pg_temp_")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()));
    temp_schema && t.get(i + 1).is_some_and(|x| x.is_punct("."))
}

/// PL/pgSQL `EXECUTE`: every string literal after it may be (part of) the SQL it runs.
fn dynamic_sql(t: &[Token<'_>], skip: &[Range<usize>], ctx: Ctx, out: &mut Vec<Effect>) {
    let Some(at) = t.iter().position(|x| x.is_word("execute")) else {
        return;
    };
    let inner = Ctx {
        body: false,
        depth: ctx.depth + 1,
        ..ctx
    };
    // `skip` is in ascending order, so one cursor walks it.
    let mut skip = skip.iter().peekable();
    for (i, tok) in t.iter().enumerate().skip(at + 1) {
        while skip.next_if(|r| r.end <= i).is_some() {}
        if skip.peek().is_some_and(|r| r.contains(&i)) {
            continue;
        }
        if let Some(sql) = string(tok) {
            text(&sql, inner, out);
        }
    }
}

/// The statement an `EXPLAIN [ANALYZE] [VERBOSE]` or `EXPLAIN (options)` wraps.
fn skip_explain<'t, 'a>(t: &'t [Token<'a>]) -> &'t [Token<'a>] {
    let mut i = 1;
    if t.get(1).is_some_and(|x| x.is_punct("(")) {
        let mut depth = 0usize;
        while i < t.len() {
            if t[i].is_punct("(") {
                depth += 1;
            } else if t[i].is_punct(")") {
                depth -= 1;
                if depth == 0 {
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
    } else {
        while word(t, i, "analyze") || word(t, i, "analyse") || word(t, i, "verbose") {
            i += 1;
        }
    }
    &t[i.min(t.len())..]
}

/// Token `i` is the unquoted keyword `kw`.
pub(crate) fn word(t: &[Token<'_>], i: usize, kw: &str) -> bool {
    t.get(i).is_some_and(|x| x.is_word(kw))
}
