//! Property tests: the analyser never panics, and the hot-path filter never says "no" to a
//! statement the analyser would act on.

use proptest::prelude::*;

use super::{analyze, analyze_with, may_touch_session};

/// Pieces that exercise every lexer state and every rule, glued together at random so that
/// quotes, comments and dollar bodies open and close in surprising places.
const PIECES: &[&str] = &[
    "SET ",
    "set ",
    "ReSeT ",
    "RESET ALL",
    "LOCAL ",
    "SESSION ",
    "AUTHORIZATION ",
    "TIME ZONE ",
    "TO ",
    "DEFAULT",
    "timezone",
    "search_path",
    "DISCARD ALL",
    "DEALLOCATE ",
    "PREPARE ",
    "TRANSACTION ",
    "EXECUTE ",
    "LISTEN ",
    "LOAD ",
    "DECLARE c CURSOR WITH HOLD FOR ",
    "CREATE ",
    "TEMP ",
    "TABLE ",
    "ON COMMIT DROP",
    "INTO ",
    "pg_temp.",
    "SELECT ",
    "EXPLAIN ",
    "DO ",
    "BEGIN ",
    "ATOMIC ",
    "END",
    "CASE ",
    "THEN ",
    "FUNCTION ",
    "set_config(",
    "pg_advisory_lock(",
    "true",
    "false",
    "'t'",
    " => ",
    "is_local",
    "::text",
    "U&",
    "E",
    "UESCAPE '!'",
    "'",
    "''",
    "\"",
    "$$",
    "$a$",
    "$1",
    "--",
    "/*",
    "*/",
    "\n",
    ";",
    "(",
    ")",
    ",",
    ".",
    "=",
    "\\",
    "\\163",
    "\\0073",
    "!0073",
    "é",
    "1",
    "x",
    " ",
];

fn sql_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(PIECES).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
        1 => "[a-zA-Z_ ]{1,6}",
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

fn check(sql: &str) {
    for scs in [true, false] {
        let effects = analyze_with(sql, scs);
        if !may_touch_session(sql) {
            assert!(
                effects.is_empty(),
                "filter said no to {sql:?} but got {effects:?}"
            );
        }
    }
}

proptest! {
    // Failures are turned into table cases in `tests.rs` rather than kept in a side file.
    #![proptest_config(ProptestConfig {
        cases: 4000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn filter_has_no_false_negatives(sql in sql_like()) {
        check(&sql);
    }

    #[test]
    fn arbitrary_text_never_panics(sql in any::<String>()) {
        check(&sql);
    }

    /// Wrapping a statement in a `DO` body (any quoting) keeps its effects visible.
    #[test]
    fn do_bodies_are_seen(stmt in proptest::sample::select(&[
        "SET a = 1", "LISTEN q", "PERFORM set_config('a', 'b', false)",
        "PERFORM pg_advisory_lock(1)", "CREATE TEMP TABLE t (i int)",
    ][..]), quoting in 0..3usize) {
        let body = format!("BEGIN {stmt}; END");
        let sql = match quoting {
            0 => format!("DO $$ {body} $$"),
            1 => format!("DO '{}'", body.replace('\'', "''")),
            _ => format!("DO E'{}'", body.replace('\'', "\\'")),
        };
        prop_assert!(may_touch_session(&sql));
        prop_assert_eq!(analyze(&sql), analyze(&stmt.replace("PERFORM", "SELECT")));
    }
}
