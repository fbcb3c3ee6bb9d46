//! Keeps docs/config.md and dbwarden.example.toml honest: both must show every field the
//! effective config has, and the example must load and validate.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::full;
use crate::Config;

fn repo_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

/// Field paths like `proxy.listen`, `users.name`, `databases.NAME.host`, for one TOML
/// document; array and map entries collapse into one path per field.
fn field_paths(doc: &toml::Table) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for (section, value) in doc {
        match value {
            toml::Value::Table(dbs) if section == "databases" => {
                for db in dbs.values() {
                    let db = db.as_table().expect("a database is a table");
                    paths.extend(db.keys().map(|k| format!("databases.NAME.{k}")));
                }
            }
            toml::Value::Array(entries) => {
                for entry in entries {
                    let entry = entry.as_table().expect("an array entry is a table");
                    paths.extend(entry.keys().map(|k| format!("{section}.{k}")));
                }
            }
            toml::Value::Table(fields) => {
                paths.extend(fields.keys().map(|k| format!("{section}.{k}")));
            }
            _ => panic!("top-level value `{section}` is not a section"),
        }
    }
    paths
}

fn effective_paths() -> BTreeSet<String> {
    let (_dir, config) = full();
    let doc: toml::Table = toml::from_str(&config.effective_toml()).expect("effective parses");
    field_paths(&doc)
}

/// Field paths documented in docs/config.md: a heading "## `[section]`" followed by table
/// rows whose first cell is "`field`".
fn documented_paths(markdown: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut section: Option<String> = None;
    for line in markdown.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = heading
                .strip_prefix("`[")
                .and_then(|h| h.strip_suffix("]`"))
                .map(|s| s.trim_matches(['[', ']']).to_owned());
        } else if let (Some(section), Some(row)) = (&section, line.strip_prefix("| `")) {
            let field = row.split('`').next().unwrap_or_default();
            if !field.is_empty() && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                paths.insert(format!("{section}.{field}"));
            }
        }
    }
    paths
}

#[test]
fn docs_describe_exactly_the_fields_of_the_config() {
    let markdown = std::fs::read_to_string(repo_file("docs/config.md")).expect("docs/config.md");
    let documented = documented_paths(&markdown);
    let effective = effective_paths();
    let undocumented: Vec<_> = effective.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "missing from docs/config.md: {undocumented:?}"
    );
    let stale: Vec<_> = documented.difference(&effective).collect();
    assert!(
        stale.is_empty(),
        "docs/config.md documents unknown fields: {stale:?}"
    );
}

#[test]
fn the_example_loads_and_validates() {
    let config = Config::load(&repo_file("dbwarden.example.toml")).expect("example is valid");
    assert!(config.database("app").is_some());
    assert!(
        config.database("anything").is_some(),
        "example has a wildcard"
    );
    assert_eq!(config.warnings(), Vec::<String>::new());
}

#[test]
fn the_example_shows_every_field() {
    let text = std::fs::read_to_string(repo_file("dbwarden.example.toml")).expect("example");
    // Commented-out settings ("# cert_file = ...") count: they show the field without
    // requiring the file to exist.
    let uncommented: String = text
        .lines()
        .map(|line| {
            let setting = line.strip_prefix("# ").filter(|rest| {
                rest.split_once(" = ").is_some_and(|(key, _)| {
                    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                })
            });
            setting.unwrap_or(line).to_owned() + "\n"
        })
        .collect();
    let doc: toml::Table = toml::from_str(&uncommented).expect("uncommented example parses");
    let shown = field_paths(&doc);
    let missing: Vec<_> = effective_paths().difference(&shown).cloned().collect();
    assert!(
        missing.is_empty(),
        "missing from dbwarden.example.toml: {missing:?}"
    );
}
