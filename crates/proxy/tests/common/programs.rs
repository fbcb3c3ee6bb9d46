//! Real client programs (pgbench, psql) run against a test proxy.

use std::process::Output;

use tokio::process::Command;

use super::{TestProxy, PASSWORD, USER};

/// A command with the test password and none of the caller's libpq settings.
pub fn pg_command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("PGPASSWORD", PASSWORD)
        .env("PGCONNECT_TIMEOUT", "10")
        .env_remove("PGSERVICE")
        .env_remove("PGOPTIONS")
        .kill_on_drop(true);
    cmd
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What pgbench reported about a run.
#[derive(Debug)]
pub struct PgbenchRun {
    pub processed: u64,
    pub failed: u64,
}

pub fn parse_pgbench(stdout: &str) -> PgbenchRun {
    let number_after = |prefix: &str| -> u64 {
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in pgbench output:\n{stdout}"));
        // "12345" with -T, "6400/6400" (done/planned) with -t.
        line.split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad number after `{prefix}`: {line}"))
    };
    PgbenchRun {
        processed: number_after("number of transactions actually processed: "),
        failed: number_after("number of failed transactions: "),
    }
}

pub async fn pgbench(proxy: &TestProxy, db: &str, args: &[&str]) -> Output {
    pg_command("pgbench")
        .args(["-h", &proxy.addr.ip().to_string()])
        .args(["-p", &proxy.addr.port().to_string()])
        .args(["-U", USER])
        .args(args)
        .arg(db)
        .output()
        .await
        .expect("run pgbench")
}
