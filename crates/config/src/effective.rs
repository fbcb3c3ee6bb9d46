//! The effective config as TOML, for `dbwarden config show` and the admin API.

use crate::Config;

/// What every password is replaced with in [`Config::effective_toml`].
pub const REDACTED: &str = "********";

impl Config {
    /// The whole effective configuration, every default filled in, as TOML that
    /// [`Config::from_toml_str`] reads back. Passwords are shown as [`REDACTED`] so the output
    /// can be logged or served by the admin API.
    pub fn effective_toml(&self) -> String {
        let mut shown = self.clone();
        for user in &mut shown.users {
            redact(&mut user.password);
            redact(&mut user.server_password);
        }
        for db in shown.databases.values_mut() {
            redact(&mut db.password);
        }
        // Serializing plain structs, strings, integers and durations cannot fail; a failure
        // would be a bug in the types, not in user input.
        toml::to_string_pretty(&shown).expect("config types serialize to TOML")
    }
}

fn redact(password: &mut Option<String>) {
    if let Some(p) = password {
        *p = REDACTED.to_owned();
    }
}

#[cfg(test)]
mod tests;
