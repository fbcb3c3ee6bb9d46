use super::*;

/// The tokens of `sql` as (kind, text) pairs.
fn lex(sql: &str) -> Vec<(Kind, &str)> {
    tokenize(sql, true)
        .into_iter()
        .map(|t| (t.kind, t.text))
        .collect()
}

fn texts(sql: &str) -> Vec<&str> {
    lex(sql).into_iter().map(|(_, t)| t).collect()
}

#[test]
fn comments_vanish_and_nest() {
    assert_eq!(texts("a -- b ; c\nd"), ["a", "d"]);
    assert_eq!(texts("a /* x /* y */ ; */ b"), ["a", "b"]);
    assert_eq!(texts("a /* open /* */ still"), ["a"]);
    assert_eq!(texts("a/**/b"), ["a", "b"]);
    // `*/` closes before a following `/*` could open.
    assert_eq!(texts("/* x */* b"), ["*", "b"]);
}

#[test]
fn quoting_keeps_semicolons_inside() {
    let sql = r#"'a;b' "c;d" E'e\';f' $$g;h$$ $t$i$$;j$t$ U&'k;l' U&"m;n" B'01' X'ff'"#;
    assert_eq!(
        lex(sql),
        [
            (Kind::Str(StrKind::Standard), "'a;b'"),
            (Kind::Quoted, "\"c;d\""),
            (Kind::Str(StrKind::Escape), r"E'e\';f'"),
            (Kind::Str(StrKind::Dollar), "$$g;h$$"),
            (Kind::Str(StrKind::Dollar), "$t$i$$;j$t$"),
            (Kind::Str(StrKind::Unicode), "U&'k;l'"),
            (Kind::UnicodeQuoted, "U&\"m;n\""),
            (Kind::Str(StrKind::Bit), "B'01'"),
            (Kind::Str(StrKind::Bit), "X'ff'"),
        ]
    );
}

#[test]
fn standard_strings_depend_on_standard_conforming_strings() {
    // With it on, a backslash is an ordinary character and the string ends at the second quote.
    assert_eq!(texts(r"'a\' ; b"), [r"'a\'", ";", "b"]);
    let off: Vec<_> = tokenize(r"'a\' ; b'", false)
        .iter()
        .map(|t| t.text)
        .collect();
    assert_eq!(off, [r"'a\' ; b'"]);
}

#[test]
fn strings_continue_across_newlines_only() {
    assert_eq!(texts("'a'\n'b'"), ["'a'\n'b'"]);
    assert_eq!(texts("'a' -- c\n  'b'"), ["'a' -- c\n  'b'"]);
    assert_eq!(texts("'a' 'b'"), ["'a'", "'b'"]);
    // Bit strings have no doubling: `''` ends one and starts another.
    assert_eq!(texts("b'0''1'"), ["b'0'", "'1'"]);
}

#[test]
fn prefixes_only_at_token_start() {
    assert_eq!(texts("xe'a'"), ["xe", "'a'"]);
    assert_eq!(texts("nu&'a'"), ["nu", "&", "'a'"]);
    assert_eq!(texts("a$b$c"), ["a$b$c"]);
}

#[test]
fn dollar_signs() {
    assert_eq!(lex("$1")[0].0, Kind::Param);
    assert_eq!(texts("$1$$x$$"), ["$1", "$$x$$"]);
    // Not a valid tag: the `$` stands alone.
    assert_eq!(texts("$a b"), ["$", "a", "b"]);
    assert_eq!(texts("$a$ x $b$ y $a$ z"), ["$a$ x $b$ y $a$", "z"]);
    assert_eq!(texts("$é$;$é$"), ["$é$;$é$"]);
}

#[test]
fn numbers_stop_before_letters() {
    assert_eq!(
        texts("1e5 1eset 1.5 .5 1..2"),
        ["1e5", "1", "eset", "1.5", ".5", "1", ".", ".2"]
    );
}

#[test]
fn operators_like_postgresql() {
    assert_eq!(texts("x=-1"), ["x", "=", "-", "1"]);
    assert_eq!(
        texts("a=>b a:=b a::int"),
        ["a", "=>", "b", "a", ":=", "b", "a", "::", "int"]
    );
    assert_eq!(texts("a+--c\nb"), ["a", "+", "b"]);
    assert_eq!(texts("<<l>>"), ["<<", "l", ">>"]);
}

#[test]
fn uescape_folds_into_the_literal() {
    let toks = tokenize("U&'!0061' UESCAPE '!' x", true);
    assert_eq!(toks.len(), 2);
    assert_eq!(toks[0].uescape, '!');
    assert_eq!(toks[1].text, "x");
}

#[test]
fn control_characters_separate_tokens() {
    assert_eq!(texts("\u{b}set\u{1}x"), ["set", "x"]);
}
