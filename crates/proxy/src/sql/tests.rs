use super::Effect::{self, *};
use super::{analyze, analyze_with, may_touch_session};

fn set(n: &str) -> Effect {
    Set(n.into())
}
fn reset(n: &str) -> Effect {
    Reset(n.into())
}
fn cfg(n: &str) -> Effect {
    SetConfig(n.into())
}

/// (query, expected effects in order).
fn cases() -> Vec<(&'static str, Vec<Effect>)> {
    vec![
        // Ordinary statements.
        ("SELECT 1", vec![]),
        ("", vec![]),
        (";;  ;", vec![]),
        ("UPDATE t SET a = 1", vec![]),
        ("SELECT offset, dataset FROM settings", vec![]),
        ("SHOW TimeZone", vec![]),
        // SET and its special forms.
        ("SET TimeZone = 'UTC'", vec![set("timezone")]),
        ("set timezone to 'UTC'", vec![set("timezone")]),
        ("SET SESSION search_path TO a, b", vec![set("search_path")]),
        ("SET search_path = a, b", vec![set("search_path")]),
        ("SET \"TimeZone\" = 'UTC'", vec![set("timezone")]),
        ("SET U&\"Time\\005Aone\" = 'UTC'", vec![set("timezone")]),
        ("SET TIME ZONE 'Europe/Paris'", vec![set("timezone")]),
        ("SET TIME ZONE LOCAL", vec![reset("timezone")]),
        ("SET TIME ZONE DEFAULT", vec![reset("timezone")]),
        ("SET SCHEMA 'app'", vec![set("search_path")]),
        ("SET NAMES 'UTF8'", vec![set("client_encoding")]),
        ("SET NAMES DEFAULT", vec![reset("client_encoding")]),
        ("SET ROLE app_reader", vec![set("role")]),
        ("SET ROLE NONE", vec![set("role")]),
        ("SET XML OPTION DOCUMENT", vec![set("xmloption")]),
        ("SET myapp.User_ID = '42'", vec![set("myapp.user_id")]),
        ("SET statement_timeout=-1", vec![set("statement_timeout")]),
        ("SET x FROM CURRENT", vec![set("x")]),
        ("SET search_path TO DEFAULT", vec![reset("search_path")]),
        ("SET lock_timeout = default", vec![reset("lock_timeout")]),
        ("SET search_path = 'default'", vec![set("search_path")]),
        ("SET LOCAL search_path = a", vec![]),
        ("SET LOCAL SESSION AUTHORIZATION bob", vec![]),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", vec![]),
        ("SET SESSION TRANSACTION READ ONLY", vec![]),
        ("SET CONSTRAINTS ALL DEFERRED", vec![]),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY, NOT DEFERRABLE",
            vec![
                set("default_transaction_isolation"),
                set("default_transaction_read_only"),
                set("default_transaction_deferrable"),
            ],
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            vec![set("default_transaction_read_only")],
        ),
        ("SET SESSION AUTHORIZATION bob", vec![Pin("set session authorization")]),
        ("SET SESSION SESSION AUTHORIZATION DEFAULT", vec![Pin("set session authorization")]),
        ("SET session_authorization = bob", vec![Pin("set session authorization")]),
        // RESET.
        ("RESET TimeZone", vec![reset("timezone")]),
        ("RESET TIME ZONE", vec![reset("timezone")]),
        ("RESET ROLE", vec![reset("role")]),
        ("RESET ALL", vec![ResetAll]),
        ("RESET SESSION AUTHORIZATION", vec![Pin("set session authorization")]),
        ("RESET TRANSACTION ISOLATION LEVEL", vec![]),
        // set_config.
        ("SELECT set_config('TimeZone', 'UTC', false)", vec![cfg("timezone")]),
        ("SELECT pg_catalog.set_config('search_path', 'a', 'f')", vec![cfg("search_path")]),
        ("SELECT set_config('a.b', 'x', true)", vec![]),
        ("SELECT set_config('a.b', 'x', 'on')", vec![]),
        ("SELECT set_config('a.b', 'x', 1 = 1)", vec![cfg("a.b")]),
        ("SELECT SET_CONFIG($$a.b$$, 'x', is_local => false)", vec![cfg("a.b")]),
        ("SELECT set_config(is_local => true, new_value => 'x', setting_name => 'a.b')", vec![]),
        ("SELECT set_config('a'::text, 'x', false)", vec![cfg("a")]),
        ("SELECT set_config(name, 'x', false) FROM t", vec![Pin("set_config with a computed name")]),
        ("SELECT \"SET_CONFIG\"('a', 'b', false)", vec![]),
        ("SELECT U&\"\\0073et_config\"('a', 'b', false)", vec![cfg("a")]),
        ("SELECT set_config('session_authorization', 'bob', false)", vec![Pin("set session authorization")]),
        (
            "SELECT set_config('a', set_config('b', 'x', false), false)",
            vec![cfg("a"), cfg("b")],
        ),
        // DISCARD, PREPARE, EXECUTE, DEALLOCATE.
        ("DISCARD ALL", vec![DiscardAll]),
        ("DISCARD PLANS", vec![]),
        ("DISCARD TEMP", vec![]),
        ("PREPARE q1 (int) AS SELECT $1", vec![Prepare("q1".into())]),
        ("PREPARE \"Q1\" AS SELECT 1", vec![Prepare("Q1".into())]),
        ("PREPARE TRANSACTION 'gid-1'", vec![]),
        (
            "PREPARE q AS SELECT set_config('a', 'b', false)",
            vec![Prepare("q".into()), cfg("a")],
        ),
        ("EXECUTE Q1(1, 2)", vec![Execute("q1".into())]),
        ("EXPLAIN ANALYZE EXECUTE q1", vec![Execute("q1".into())]),
        ("EXPLAIN (ANALYZE, BUFFERS) EXECUTE q1", vec![Execute("q1".into())]),
        ("CREATE TABLE t AS EXECUTE q1", vec![Execute("q1".into())]),
        ("DEALLOCATE q1", vec![Deallocate("q1".into())]),
        ("DEALLOCATE PREPARE q1", vec![Deallocate("q1".into())]),
        ("DEALLOCATE prepare", vec![Deallocate("prepare".into())]),
        ("DEALLOCATE ALL", vec![DeallocateAll]),
        ("DEALLOCATE PREPARE ALL", vec![DeallocateAll]),
        // Pinning.
        ("LISTEN jobs", vec![Pin("listen")]),
        ("UNLISTEN *", vec![]),
        ("NOTIFY jobs", vec![]),
        ("SELECT pg_advisory_lock(1)", vec![Pin("session advisory lock")]),
        ("SELECT pg_try_advisory_lock_shared(1, 2)", vec![Pin("session advisory lock")]),
        ("SELECT pg_advisory_xact_lock(1)", vec![]),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT 1", vec![Pin("cursor with hold")]),
        ("DECLARE c NO SCROLL CURSOR WITHOUT HOLD FOR SELECT 1", vec![]),
        ("DECLARE c CURSOR FOR SELECT hold FROM t", vec![]),
        ("CREATE TEMP TABLE t (id int)", vec![Pin("temporary table")]),
        ("CREATE GLOBAL TEMPORARY TABLE t (id int)", vec![Pin("temporary table")]),
        ("create or replace temp view v as select 1", vec![Pin("temporary table")]),
        ("CREATE TEMP SEQUENCE s", vec![Pin("temporary table")]),
        ("CREATE TEMP TABLE t (id int) ON COMMIT DROP", vec![]),
        ("CREATE TABLE pg_temp.t (id int)", vec![Pin("temporary table")]),
        ("CREATE FUNCTION pg_temp.f() RETURNS int AS 'select 1' LANGUAGE sql", vec![Pin("temporary table")]),
        ("CREATE TABLE temp (id int)", vec![]),
        ("SELECT * INTO TEMP t2 FROM t", vec![Pin("temporary table")]),
        ("SELECT * INTO TEMPORARY TABLE t2 FROM t", vec![Pin("temporary table")]),
        ("INSERT INTO temp VALUES (1)", vec![]),
        ("LOAD 'auto_explain'", vec![Pin("load")]),
        // Keywords inside strings, identifiers and comments do nothing.
        ("SELECT 'SET TimeZone = 1'", vec![]),
        ("SELECT $$ LISTEN x $$, $t$ RESET ALL $t$", vec![]),
        ("SELECT 1 -- ; SET TimeZone = 1", vec![]),
        ("SELECT 1 /* ; SET a = 1 /* nested */ ; LISTEN x */", vec![]),
        ("SELECT \"set\", \"LISTEN\" FROM t", vec![]),
        ("SELECT 'it''s; SET a = 1'", vec![]),
        ("SELECT E'\\'; SET a = 1; --'", vec![]),
        ("SELECT U&'\\0041'; SET a = 1", vec![set("a")]),
        ("SELECT 'a'\n'; SET b = 1'", vec![]),
        ("SELECT 'set_config(''a'', ''b'', false)'", vec![]),
        // Several statements, in order.
        (
            "SET a = 1; SELECT 2; RESET b; LISTEN c",
            vec![set("a"), reset("b"), Pin("listen")],
        ),
        ("BEGIN; SET search_path = x; COMMIT", vec![set("search_path")]),
        // BEGIN ATOMIC bodies are one statement and do not run when created.
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT set_config('a','b',false); SELECT CASE WHEN true THEN 1 END; END; SET c = 1",
            vec![set("c")],
        ),
        (
            "CREATE OR REPLACE PROCEDURE p() BEGIN ATOMIC INSERT INTO t VALUES (1); END; LISTEN x",
            vec![Pin("listen")],
        ),
        // DO bodies run: they are read as PL/pgSQL.
        (
            "DO $$ BEGIN PERFORM set_config('a', 'b', false); END $$",
            vec![cfg("a")],
        ),
        ("DO $$BEGIN SET search_path = x; END$$", vec![set("search_path")]),
        (
            "DO LANGUAGE plpgsql $b$ DECLARE n int; BEGIN IF true THEN LISTEN q; END IF; PERFORM pg_advisory_lock(1); END $b$",
            vec![Pin("listen"), Pin("session advisory lock")],
        ),
        ("DO $$ BEGIN CREATE TEMP TABLE x (i int); END $$", vec![Pin("temporary table")]),
        (
            "DO $$ BEGIN EXECUTE 'SET search_path = ' || quote_ident('s'); END $$",
            vec![set("search_path")],
        ),
        ("DO 'BEGIN SE'\n'T a = 1; END'", vec![set("a")]),
        ("DO E'BEGIN \\123ET a = 1; END'", vec![set("a")]),
        ("DO $$ BEGIN RAISE NOTICE 'SET a = 1'; END $$", vec![]),
        ("DO $$ BEGIN UPDATE t SET a = 1; END $$", vec![]),
        ("DO $$ BEGIN SET LOCAL a = 1; END $$", vec![]),
        (
            "DO $o$ BEGIN EXECUTE $i$ DO $$ BEGIN LISTEN z; END $$ $i$; END $o$",
            vec![Pin("listen")],
        ),
        ("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", vec![]),
        (
            "DO $$ BEGIN EXECUTE format('SET %I = 1', n); END $$",
            vec![Pin("dynamic SQL with a computed name")],
        ),
        (
            "DO $$ BEGIN EXECUTE 'RESET ' || quote_ident(n); END $$",
            vec![Pin("dynamic SQL with a computed name")],
        ),
        (
            "DO $$ BEGIN EXECUTE format('SET search_path = %L', p); END $$",
            vec![set("search_path")],
        ),
        ("SET %I = 1", vec![]),
    ]
}

#[test]
fn table_of_statements() {
    let cases = cases();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    for (sql, want) in cases {
        assert_eq!(analyze(sql), want, "analyze({sql:?})");
        if !want.is_empty() {
            assert!(may_touch_session(sql), "may_touch_session({sql:?})");
        }
    }
}

#[test]
fn filter_skips_ordinary_queries() {
    for sql in [
        "SELECT 1",
        "SELECT offset_x, dataset FROM t WHERE a = $1",
        "INSERT INTO t (a) VALUES ($1) RETURNING id",
        "DELETE FROM threshold WHERE payload IS NULL",
        "SELECT 'x' || e.name FROM employees e",
        "SELECT data FROM documents",
    ] {
        assert!(!may_touch_session(sql), "{sql}");
    }
}

#[test]
fn filter_catches_hidden_spellings() {
    for sql in [
        "select U&\"\\0073et_config\"('a','b',false)",
        "DO E'BEGIN \\123ET a = 1; END'",
        "SELECT 1;$$$$set_config('a','b',false)",
        "SELECT 1set_config('a','b',false)",
        "\"pg_advisory_lock\"(1)",
        "create table PG_TEMP.t ()",
    ] {
        assert!(may_touch_session(sql), "{sql}");
    }
}

#[test]
fn standard_conforming_strings_off_moves_boundaries() {
    // Off: `\'` escapes the quote, so the SET is outside any string; on: it is inside one.
    let sql = "SELECT 'x\\''; SET a = 1; --'";
    assert_eq!(analyze_with(sql, false), vec![set("a")]);
    assert_eq!(analyze_with(sql, true), vec![]);
}

#[test]
fn deep_nesting_is_bounded_and_conservative() {
    let mut sql = String::from("LISTEN x");
    for _ in 0..12 {
        sql = format!("DO {}", quote(&sql));
    }
    assert_eq!(analyze(&sql), vec![Pin("dynamic SQL nested too deeply")]);
}

/// `s` as a standard string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Inputs built to make a careless analyser quadratic or blow its stack. Their results are
/// checked; a regression would show up as a test that never finishes.
#[test]
fn pathological_inputs_stay_linear() {
    let nested = format!("SELECT {}", "set_config(".repeat(100_000));
    let effects = analyze(&nested);
    assert_eq!(effects.len(), 100_000);
    assert!(effects
        .iter()
        .all(|e| *e == Pin("set_config with a computed name")));

    let explains = format!("{}LISTEN x", "EXPLAIN ".repeat(100_000));
    assert_eq!(analyze(&explains), vec![Pin("listen")]);

    let body = "IF a THEN CREATE TEMP TABLE t (i int) ON COMMIT DROP ".repeat(20_000);
    assert_eq!(analyze(&format!("DO $$ BEGIN {body}; END $$")), vec![]);

    let executes = format!(
        "DO $$ BEGIN EXECUTE {} END $$",
        "THEN DO 'LISTEN x' ".repeat(20_000)
    );
    assert_eq!(analyze(&executes).len(), 20_000);
}
