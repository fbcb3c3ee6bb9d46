//! Session settings follow the client, not the server connection.
//!
//! A client's wanted settings start as its startup parameters and change when its own
//! statements change them. Each server connection remembers what it was changed to, away
//! from what it reported at login. On every checkout only the differences are applied,
//! with `set_config()` (which takes a value exactly as `current_setting()` returns it, so a
//! list such as search_path survives the round trip) and `RESET`.

use std::collections::BTreeMap;

/// GUC names are case-insensitive; everything here is keyed by the lower-case name.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

#[derive(Clone, Debug, Default)]
pub struct ClientGucs {
    /// From the startup packet: what RESET returns to.
    pub startup: BTreeMap<String, String>,
    /// What this client's session has now.
    pub wanted: BTreeMap<String, String>,
}

impl ClientGucs {
    pub fn from_startup(params: &[(String, String)]) -> ClientGucs {
        let startup: BTreeMap<_, _> = params
            .iter()
            .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
            .map(|(k, v)| (key(k), v.clone()))
            .collect();
        ClientGucs {
            wanted: startup.clone(),
            startup,
        }
    }
}

/// A server connection's settings that differ from its login defaults.
#[derive(Clone, Debug, Default)]
pub struct ServerGucs {
    pub changed: BTreeMap<String, String>,
}

/// A GUC name is spliced into SQL only when it is a plain (possibly dotted) identifier.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
}

fn literal(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
}

/// The one simple query that brings `server` to `client`'s settings, or `None` when nothing
/// differs. `reported` gives what the server reported at login for a name. The server's
/// record is updated as if the query succeeded (a failed sync closes the connection).
pub fn sync_sql<'r>(
    client: &ClientGucs,
    server: &mut ServerGucs,
    reported: impl Fn(&str) -> Option<&'r str>,
) -> Option<String> {
    // Every checkout asks, and almost always nothing differs: find that out without
    // allocating.
    let differs = |name: &str, value: &str| {
        let current = server
            .changed
            .get(name)
            .map(String::as_str)
            .or_else(|| reported(name));
        current != Some(value) && valid_name(name)
    };
    let stale = server
        .changed
        .keys()
        .any(|n| !client.wanted.contains_key(n));
    if !stale && !client.wanted.iter().any(|(n, v)| differs(n, v)) {
        return None;
    }
    let mut resets = Vec::new();
    for name in server.changed.keys() {
        if !client.wanted.contains_key(name) {
            resets.push(name.clone());
        }
    }
    let mut sets = Vec::new();
    for (name, value) in &client.wanted {
        if differs(name, value) {
            sets.push((name.clone(), value.clone()));
        }
    }
    if resets.is_empty() && sets.is_empty() {
        return None;
    }
    let mut sql = String::new();
    for name in resets {
        server.changed.remove(&name);
        if valid_name(&name) {
            sql.push_str("RESET ");
            sql.push_str(&name);
            sql.push(';');
        }
    }
    if !sets.is_empty() {
        sql.push_str("SELECT ");
        for (i, (name, value)) in sets.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str("pg_catalog.set_config(");
            literal(&mut sql, &name);
            sql.push_str(", ");
            literal(&mut sql, &value);
            sql.push_str(", false)");
            server.changed.insert(name, value);
        }
        sql.push(';');
    }
    Some(sql)
}

/// The query that reads the current values of `names` (NULL for an unknown custom setting).
pub fn fetch_sql(names: &[String]) -> String {
    let mut sql = String::from("SELECT ");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("pg_catalog.current_setting(");
        literal(&mut sql, name);
        sql.push_str(", true)");
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_differences_are_sent_and_remembered() {
        let client = ClientGucs::from_startup(&params(&[
            ("user", "u"),
            ("client_encoding", "UTF8"),
            ("TimeZone", "Asia/Tokyo"),
        ]));
        let mut server = ServerGucs::default();
        let reported = |n: &str| match n {
            "client_encoding" => Some("UTF8"),
            "timezone" => Some("UTC"),
            _ => None,
        };
        let sql = sync_sql(&client, &mut server, reported).unwrap();
        assert_eq!(
            sql,
            "SELECT pg_catalog.set_config('timezone', 'Asia/Tokyo', false);"
        );
        assert!(
            sync_sql(&client, &mut server, reported).is_none(),
            "in sync now"
        );

        let other = ClientGucs::from_startup(&params(&[("search_path", "a, \"B\"'s")]));
        let sql = sync_sql(&other, &mut server, reported).unwrap();
        assert_eq!(
            sql,
            "RESET timezone;SELECT pg_catalog.set_config('search_path', 'a, \"B\"''s', false);"
        );
        assert_eq!(server.changed.len(), 1);
    }

    #[test]
    fn fetch_reads_each_name() {
        assert_eq!(
            fetch_sql(&["timezone".into(), "a.b".into()]),
            "SELECT pg_catalog.current_setting('timezone', true), pg_catalog.current_setting('a.b', true)"
        );
        assert!(!valid_name("a;b"));
        assert!(valid_name("myapp.tenant_id"));
    }
}
