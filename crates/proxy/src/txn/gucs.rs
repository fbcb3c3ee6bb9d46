//! Session settings follow the client, not the server connection.
//!
//! A client's wanted settings start as its startup parameters and change when its own
//! statements change them. Each server connection remembers what it was changed to, away
//! from what it reported at login. On every checkout only the differences are applied,
//! with `set_config()` (which takes a value exactly as `current_setting()` returns it, so a
//! list such as search_path survives the round trip) and `RESET`.

use std::collections::BTreeMap;
use std::sync::Arc;

/// GUC names are case-insensitive; everything here is keyed by the lower-case name.
pub fn key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Startup parameters that are not settings.
const NOT_SETTINGS: &[&str] = &["user", "database", "replication", "options"];

#[derive(Clone, Debug, Default)]
pub struct ClientGucs {
    /// From the startup packet: what RESET returns to.
    pub startup: Settings,
    /// What this client's session has now.
    pub wanted: Settings,
}

impl ClientGucs {
    pub fn from_startup(params: &[(String, String)]) -> ClientGucs {
        let mut startup: Vec<(String, &str)> = params
            .iter()
            .filter(|(k, _)| !NOT_SETTINGS.contains(&k.as_str()))
            .map(|(k, v)| (key(k), v.as_str()))
            .collect();
        startup.sort_by(|a, b| a.0.cmp(&b.0));
        // A repeated name keeps its last value, as a map's insert would.
        startup.reverse();
        startup.dedup_by(|later, earlier| later.0 == earlier.0);
        startup.reverse();
        let startup = Settings::packed(startup.iter().map(|(k, v)| (k.as_str(), *v)));
        // Shared until the session changes a setting.
        ClientGucs {
            wanted: startup.clone(),
            startup,
        }
    }
}

/// A client's few settings, name to value, sorted by name, packed into one shared string
/// (`name\0value\0` per entry). Every idle client holds two of these for its whole session,
/// and a map costs half a kilobyte empty; they are read on every checkout and changed only
/// when a session statement changes a setting, so a change may rebuild the string.
/// PostgreSQL's names and values are C strings: neither can hold a NUL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings(Option<Arc<str>>);

impl Settings {
    fn packed<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> Settings {
        let mut s = String::new();
        for (k, v) in entries {
            s.push_str(k);
            s.push('\0');
            s.push_str(v);
            s.push('\0');
        }
        Settings((!s.is_empty()).then(|| Arc::from(s)))
    }

    /// In name order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.0.as_deref().unwrap_or_default())
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.iter().map(|(k, _)| k)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn insert(&mut self, name: &str, value: &str) {
        if self.get(name) == Some(value) {
            return;
        }
        let others = self.iter().filter(|(k, _)| *k != name);
        let mut all: Vec<(&str, &str)> = others.chain([(name, value)]).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        *self = Settings::packed(all.into_iter());
    }

    pub fn remove(&mut self, name: &str) {
        if self.contains_key(name) {
            *self = Settings::packed(self.iter().filter(|(k, _)| *k != name));
        }
    }
}

/// The entries of [`Settings`]: read on every checkout, so a plain byte search rather than
/// a `char` splitter.
pub struct Iter<'a>(&'a str);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        // Names and values are a few bytes long: a plain loop beats a vectorised search's
        // set-up.
        let nul = |s: &str| s.bytes().position(|b| b == 0);
        let rest = self.0;
        let name_end = nul(rest)?;
        let after = &rest[name_end + 1..];
        let value_end = nul(after)?;
        self.0 = &after[value_end + 1..];
        Some((&rest[..name_end], &after[..value_end]))
    }
}

/// A server connection's settings that differ from its login defaults.
#[derive(Clone, Debug, Default)]
pub struct ServerGucs {
    changed: BTreeMap<String, String>,
    /// The client settings this connection was last brought to, while nothing has changed
    /// on it since. A checkout by a client that wants exactly these (a pool's clients
    /// mostly log in alike) then compares one string instead of every setting: that
    /// comparison was about 5% of a transaction's instructions.
    synced: Option<Settings>,
}

impl ServerGucs {
    pub fn changed(&self) -> &BTreeMap<String, String> {
        &self.changed
    }

    pub fn set(&mut self, name: String, value: String) {
        self.synced = None;
        self.changed.insert(name, value);
    }

    pub fn unset(&mut self, name: &str) {
        self.synced = None;
        self.changed.remove(name);
    }

    /// What the server reported for a setting changed under the proxy (ParameterStatus).
    pub fn reported_changed(&mut self) {
        self.synced = None;
    }
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
    if server.synced.as_ref() == Some(&client.wanted) {
        return None;
    }
    let sql = sync_needed(client, server, reported);
    server.synced = Some(client.wanted.clone());
    sql
}

fn sync_needed<'r>(
    client: &ClientGucs,
    server: &mut ServerGucs,
    reported: impl Fn(&str) -> Option<&'r str>,
) -> Option<String> {
    // Every checkout by a client with other settings asks, and almost always nothing
    // differs: find that out without allocating.
    let differs = |name: &str, value: &str| {
        let current = server
            .changed
            .get(name)
            .map(String::as_str)
            .or_else(|| reported(name));
        current != Some(value) && valid_name(name)
    };
    // Both are in name order: one pass over each finds a name the client no longer has.
    let mut wanted = client.wanted.keys().peekable();
    let stale = server.changed.keys().any(|n| {
        while wanted.next_if(|k| *k < n.as_str()).is_some() {}
        wanted.next_if_eq(&n.as_str()).is_none()
    });
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
    for (name, value) in client.wanted.iter() {
        if differs(name, value) {
            sets.push((name.to_owned(), value.to_owned()));
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
    fn a_change_on_the_server_undoes_the_remembered_sync() {
        let startup = params(&[("TimeZone", "Asia/Tokyo"), ("search_path", "app")]);
        let (a, b) = (
            ClientGucs::from_startup(&startup),
            ClientGucs::from_startup(&startup),
        );
        let mut server = ServerGucs::default();
        let reported = |n: &str| (n == "timezone").then_some("UTC");
        assert!(sync_sql(&a, &mut server, reported).is_some());
        // Another client that logged in alike: one string compare, nothing to send.
        assert_eq!(sync_sql(&b, &mut server, reported), None);
        // A statement changed the server's time zone: it must be put back, not skipped.
        server.set("timezone".into(), "Europe/Paris".into());
        let sql = sync_sql(&b, &mut server, reported).unwrap();
        assert!(sql.contains("'timezone', 'Asia/Tokyo'"), "{sql}");
        // And a setting reported changed by the server makes the next checkout look again.
        server.reported_changed();
        assert_eq!(sync_sql(&b, &mut server, reported), None);
        server.unset("search_path");
        let sql = sync_sql(&a, &mut server, reported).unwrap();
        assert!(sql.contains("'search_path', 'app'"), "{sql}");
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
        assert_eq!(server.changed().len(), 1);
    }

    #[test]
    fn settings_stay_sorted_through_changes_and_the_startup_ones_stay_put() {
        let mut gucs = ClientGucs::from_startup(&params(&[
            ("TimeZone", "UTC"),
            ("application_name", "a"),
            ("application_name", "b"),
            ("database", "d"),
        ]));
        assert_eq!(
            gucs.wanted.iter().collect::<Vec<_>>(),
            [("application_name", "b"), ("timezone", "UTC")],
            "the last of a repeated name counts; not-settings are left out"
        );
        gucs.wanted.insert("search_path", "");
        gucs.wanted.insert("datestyle", "ISO, MDY");
        gucs.wanted.remove("timezone");
        assert_eq!(
            gucs.wanted.iter().collect::<Vec<_>>(),
            [
                ("application_name", "b"),
                ("datestyle", "ISO, MDY"),
                ("search_path", "")
            ]
        );
        assert_eq!(gucs.wanted.get("search_path"), Some(""));
        assert!(!gucs.wanted.contains_key("timezone"));
        assert_eq!(gucs.startup.get("timezone"), Some("UTC"));

        // A name the server connection has and the client no longer wants is reset.
        let mut server = ServerGucs::default();
        server.set("timezone".into(), "UTC".into());
        let sql = sync_sql(&gucs, &mut server, |_| None).unwrap();
        assert!(sql.starts_with("RESET timezone;SELECT "), "{sql}");
        assert!(sync_sql(&gucs, &mut server, |_| None).is_none());
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
