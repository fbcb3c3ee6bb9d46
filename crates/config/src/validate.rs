//! Whole-config checks. Every check runs and every problem is reported, so one edit-reload
//! cycle fixes them all; a config with any problem must not be swapped in.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use crate::auth::{check_scram_verifier, PasswordKind};
use crate::{AuthMethod, ClientTlsMode, Config, ConfigError, WILDCARD};

/// Smallest `max_message_size` accepted: below this even a normal startup packet with a
/// few parameters would not fit.
const MIN_MESSAGE_SIZE: u32 = 1024;

/// Database names that reach the admin console instead of a server (`pgbouncer` as in
/// PgBouncer, so its tools work unchanged).
pub const CONSOLE_DATABASES: [&str; 2] = ["dbwarden", "pgbouncer"];

impl Config {
    /// Check the whole config; `Err(ConfigError::Invalid)` lists every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        self.check_proxy(&mut problems);
        self.check_pool(&mut problems);
        self.server.check(&mut problems);
        self.log.check(&mut problems);
        self.tracing.check(&mut problems);
        self.check_tls(&mut problems);
        self.check_users(&mut problems);
        self.check_databases(&mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// Things that are legal but probably wrong; the caller should log each one.
    ///
    /// - a user whose `password` is a hash, with no `server_password`, while some database
    ///   logs in upstream as the client's user: the proxy has no plaintext to log in with,
    ///   which works only if PostgreSQL trusts the proxy;
    /// - `auth.method = "trust"` on a listener that is not loopback.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let some_db_uses_client_user = self.databases.values().any(|db| db.user.is_none());
        if some_db_uses_client_user {
            for user in &self.users {
                if user
                    .password_kind()
                    .is_some_and(|k| k != PasswordKind::Plain)
                    && user.server_password.is_none()
                {
                    warnings.push(format!(
                        "users `{}`: password is a hash and there is no server_password; \
                         logging in to PostgreSQL as this user will fail unless the server \
                         trusts the proxy (set server_password, or a database-level user \
                         and password)",
                        user.name
                    ));
                }
            }
        }
        if self.auth.method == AuthMethod::Trust {
            if let Ok(addr) = self.proxy.listen.parse::<SocketAddr>() {
                if !addr.ip().is_loopback() {
                    warnings.push(format!(
                        "auth.method is \"trust\" and proxy.listen `{}` is not a loopback \
                         address: anyone who can reach it logs in without a password",
                        self.proxy.listen
                    ));
                }
            }
        }
        warnings
    }

    fn check_proxy(&self, problems: &mut Vec<String>) {
        let proxy = &self.proxy;
        let listen = check_socket_addr("proxy.listen", &proxy.listen, problems);
        if let Some(admin) = &proxy.admin_listen {
            let admin_addr = check_socket_addr("proxy.admin_listen", admin, problems);
            // Port 0 asks for any free port: two of them never collide.
            if listen.is_some_and(|a| a.port() != 0) && listen == admin_addr {
                problems.push(format!(
                    "proxy.admin_listen: `{admin}` is the same address as proxy.listen"
                ));
            }
        }
        if proxy.max_client_conn == 0 {
            problems.push("proxy.max_client_conn: must be at least 1".to_owned());
        }
        if proxy.max_message_size < MIN_MESSAGE_SIZE {
            problems.push(format!(
                "proxy.max_message_size: {} bytes is too small, the minimum is {MIN_MESSAGE_SIZE}",
                proxy.max_message_size
            ));
        }
        check_nonzero(
            "proxy.client_login_timeout",
            proxy.client_login_timeout,
            problems,
        );
        if proxy.stats_period < Duration::from_secs(1) {
            problems.push("proxy.stats_period: must be at least 1s".to_owned());
        }
    }

    fn check_pool(&self, problems: &mut Vec<String>) {
        let pool = &self.pool;
        if pool.size == 0 {
            problems.push("pool.size: must be at least 1".to_owned());
        }
        if pool.max_prepared_statements == 0 {
            problems.push("pool.max_prepared_statements: must be at least 1".to_owned());
        }
        if pool.min_idle > pool.size {
            problems.push(format!(
                "pool.min_idle: {} is more than pool.size ({})",
                pool.min_idle, pool.size
            ));
        }
        check_nonzero("pool.query_wait_timeout", pool.query_wait_timeout, problems);
        check_nonzero(
            "pool.server_connect_timeout",
            pool.server_connect_timeout,
            problems,
        );
        check_nonzero(
            "pool.server_check_timeout",
            pool.server_check_timeout,
            problems,
        );
    }

    fn check_tls(&self, problems: &mut Vec<String>) {
        let client = &self.client_tls;
        if client.mode != ClientTlsMode::Disable {
            for (field, file) in [
                ("client_tls.cert_file", &client.cert_file),
                ("client_tls.key_file", &client.key_file),
            ] {
                check_file(
                    field,
                    file.as_deref(),
                    &format!("mode \"{}\"", client.mode.as_str()),
                    problems,
                );
            }
        }
        let server = &self.server_tls;
        if server.mode.verifies() {
            check_file(
                "server_tls.ca_file",
                server.ca_file.as_deref(),
                &format!("mode \"{}\"", server.mode.as_str()),
                problems,
            );
        }
    }

    fn check_users(&self, problems: &mut Vec<String>) {
        let method = self.auth.method;
        let mut seen = BTreeSet::new();
        for (i, user) in self.users.iter().enumerate() {
            let at = format!("users[{i}] `{}`", user.name);
            if user.name.is_empty() {
                problems.push(format!("users[{i}]: name is empty"));
            } else if !seen.insert(user.name.as_str()) {
                problems.push(format!("{at}: duplicate user name"));
            }
            if user.pool_size == Some(0) {
                problems.push(format!("{at}: pool_size must be at least 1"));
            }
            check_password_for_method(&at, user.password.as_deref(), method, problems);
            if let Some(server) = &user.server_password {
                check_plaintext(&format!("{at}: server_password"), server, problems);
            }
        }
        if method != AuthMethod::Trust {
            let lists = [
                ("auth.admin_users", &self.auth.admin_users),
                ("auth.stats_users", &self.auth.stats_users),
            ];
            for (what, names) in lists {
                for name in names {
                    if self.user(name).is_none() {
                        problems.push(format!(
                            "{what}: `{name}` is not in [[users]], so it cannot log in"
                        ));
                    }
                }
            }
        }
    }

    fn check_databases(&self, problems: &mut Vec<String>) {
        if self.databases.is_empty() {
            problems.push(format!(
                "databases: none configured; add at least one [databases.NAME] \
                 (or [databases.\"{WILDCARD}\"] for every name)"
            ));
        }
        for (name, db) in &self.databases {
            let at = format!("databases.\"{name}\"");
            if name.is_empty() {
                problems.push("databases: a database name is empty".to_owned());
            }
            if CONSOLE_DATABASES.contains(&name.as_str()) {
                problems.push(format!(
                    "{at}: the name is reserved for the admin console; pick another name \
                     (and set dbname = \"{name}\" to reach a server database of that name)"
                ));
            }
            if db.host.is_empty() {
                problems.push(format!("{at}.host: is empty"));
            }
            if db.port == 0 {
                problems.push(format!("{at}.port: must not be 0"));
            }
            if db.dbname.as_deref() == Some("") {
                problems.push(format!("{at}.dbname: is empty"));
            }
            if db.user.as_deref() == Some("") {
                problems.push(format!("{at}.user: is empty"));
            }
            match (&db.user, &db.password) {
                (None, Some(_)) => problems.push(format!(
                    "{at}.password: has no effect without {at}.user; set both or neither"
                )),
                (_, Some(password)) => {
                    check_plaintext(&format!("{at}.password"), password, problems)
                }
                _ => {}
            }
            let size = db.pool_size.unwrap_or(self.pool.size);
            if db.pool_size == Some(0) {
                problems.push(format!("{at}.pool_size: must be at least 1"));
            }
            if let Some(min_idle) = db.min_idle {
                if min_idle > size {
                    problems.push(format!(
                        "{at}.min_idle: {min_idle} is more than the pool size ({size})"
                    ));
                }
            }
        }
    }
}

fn check_socket_addr(field: &str, value: &str, problems: &mut Vec<String>) -> Option<SocketAddr> {
    match value.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "{field}: `{value}` is not an IP address and port \
                 (like \"127.0.0.1:6432\" or \"[::]:6432\")"
            ));
            None
        }
    }
}

fn check_nonzero(field: &str, value: Duration, problems: &mut Vec<String>) {
    // Every wait must be bounded; zero would mean "fail at once", never what anyone wants.
    if value.is_zero() {
        problems.push(format!("{field}: must be greater than 0"));
    }
}

fn check_file(field: &str, file: Option<&Path>, needed_by: &str, problems: &mut Vec<String>) {
    match file {
        None => problems.push(format!("{field}: required by {needed_by}")),
        Some(path) if !path.is_file() => problems.push(format!(
            "{field}: `{}` does not exist or is not a file",
            path.display()
        )),
        Some(_) => {}
    }
}

/// Upstream logins need the password itself: a SCRAM verifier cannot answer a server's
/// challenge, and accepting MD5 hashes here would fail against SCRAM-only servers.
fn check_plaintext(field: &str, password: &str, problems: &mut Vec<String>) {
    match PasswordKind::of(password) {
        PasswordKind::Plain => {}
        PasswordKind::Md5Hash | PasswordKind::ScramVerifier => problems.push(format!(
            "{field}: must be the plaintext password, not a hash (it is used to log in \
             to PostgreSQL)"
        )),
    }
}

fn check_password_for_method(
    at: &str,
    password: Option<&str>,
    method: AuthMethod,
    problems: &mut Vec<String>,
) {
    let Some(password) = password else {
        if method != AuthMethod::Trust {
            problems.push(format!(
                "{at}: no password, so this user can never log in with auth.method \"{}\"",
                method.as_str()
            ));
        }
        return;
    };
    match PasswordKind::of(password) {
        PasswordKind::Plain => {}
        PasswordKind::ScramVerifier => {
            if let Err(why) = check_scram_verifier(password) {
                problems.push(format!(
                    "{at}: password is a malformed SCRAM verifier: {why}"
                ));
            }
            // Under md5 a SCRAM verifier is fine: like PostgreSQL, the proxy asks that
            // user for SCRAM instead.
        }
        PasswordKind::Md5Hash => {
            if method == AuthMethod::ScramSha256 {
                problems.push(format!(
                    "{at}: password is an md5 hash, which cannot check a SCRAM-SHA-256 login; \
                     use the plaintext or a SCRAM verifier, or set auth.method = \"md5\""
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
