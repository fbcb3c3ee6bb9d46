//! Console helpers: a config with an admin user (the zero-config upstream user), a stats user
//! and a user with no console rights, and SHOW results as rows of named text cells.

use std::collections::HashMap;

use dbwarden_config::{Config, UserConfig};
use dbwarden_testkit::PgCluster;
use tokio_postgres::SimpleQueryMessage;

use super::{connect, txn_config, TestProxy};

pub const WATCHER: &str = "watcher";
pub const WATCHER_PASSWORD: &str = "watcher-secret";
pub const STRANGER: &str = "stranger";
pub const STRANGER_PASSWORD: &str = "stranger-secret";

/// Transaction pooling; `app` is the admin (as in every zero-config start), `watcher` a
/// stats user, `stranger` a valid login with no console rights.
pub fn console_config(pg: &PgCluster, pool_size: u32) -> Config {
    let mut c = txn_config(pg, pool_size);
    c.users.push(UserConfig::new(WATCHER, WATCHER_PASSWORD));
    c.users.push(UserConfig::new(STRANGER, STRANGER_PASSWORD));
    c.auth.stats_users = vec![WATCHER.to_owned()];
    c
}

/// A console session as `user`, on the `pgbouncer` alias unless `db` says otherwise.
pub async fn console_as(
    proxy: &TestProxy,
    user: &str,
    password: &str,
    db: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect(&format!(
        "{} application_name=console",
        proxy.conn_str(user, password, db)
    ))
    .await
}

pub async fn admin(proxy: &TestProxy) -> tokio_postgres::Client {
    console_as(proxy, super::USER, super::PASSWORD, "pgbouncer")
        .await
        .expect("admin console login")
}

pub type Row = HashMap<String, Option<String>>;

/// The rows of a SHOW, each cell by its column name.
pub async fn show(c: &tokio_postgres::Client, sql: &str) -> Vec<Row> {
    let messages = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                r.columns()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| (col.name().to_owned(), r.get(i).map(str::to_owned)))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// The one row whose `column` is `value`.
pub fn find<'r>(rows: &'r [Row], column: &str, value: &str) -> Option<&'r Row> {
    rows.iter()
        .find(|r| r.get(column).and_then(|v| v.as_deref()) == Some(value))
}

/// A cell as a number.
pub fn num(row: &Row, column: &str) -> u64 {
    row.get(column)
        .and_then(|v| v.as_deref())
        .unwrap_or_else(|| panic!("no {column} in {row:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("{column} in {row:?}: {e}"))
}

/// The SQLSTATE of a failed call.
pub fn code(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.code().code().to_owned())
        .unwrap_or_else(|| format!("not a server error: {e:?}"))
}
