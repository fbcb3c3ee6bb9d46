//! The command line: `dbwarden doctor URL`, `dbwarden doctor list`,
//! `dbwarden doctor explain ID`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

use crate::catalogue;
use crate::error::DoctorError;
use crate::model::Report;
use crate::options::{Filter, Options, Progress, RedisRole, Timeouts};
use crate::render;
use crate::target::Target;
use crate::thresholds::{Thresholds, DEFAULTS};

/// Exit code when the doctor could not run at all (bad arguments, unwritable output).
pub const EXIT_UNKNOWN: i32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Markdown,
    Html,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Diagnose a PostgreSQL, MySQL/MariaDB or Redis endpoint layer by layer, then run its
/// checklist. Read-only. Exit codes: 0 ok, 1 warning, 2 critical, 3 could not run.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DoctorArgs {
    #[command(subcommand)]
    pub command: Option<DoctorCommand>,

    /// postgres://, mysql://, redis:// or rediss:// URL. Passwords may come from
    /// PGPASSWORD, MYSQL_PWD or REDISCLI_AUTH instead; they are never printed.
    pub url: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Write the report to FILE instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Run only these checks (ids or groups, comma-separated: `pg,probe.dns`).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,

    /// Skip these checks (ids or groups, comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub skip: Vec<String>,

    /// Change a threshold, e.g. `--threshold pg.connections.warn_pct=70`
    /// (repeatable; `doctor list --thresholds` shows them all).
    #[arg(long = "threshold", value_name = "KEY=VALUE")]
    pub thresholds: Vec<String>,

    /// Timeout of the DNS lookup.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub dns_timeout: Duration,

    /// Timeout of each TCP connect attempt.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,

    /// Timeout of the TLS negotiation and handshake.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub tls_timeout: Duration,

    /// Timeout of protocol startup and authentication.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub auth_timeout: Duration,

    /// statement_timeout for every query the doctor runs.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub statement_timeout: Duration,

    /// Round trips measured for the latency distribution.
    #[arg(long, default_value_t = 20)]
    pub samples: u32,

    /// Ask this DNS server (IP:PORT) instead of the system resolver.
    #[arg(long, value_name = "ADDR")]
    pub dns_server: Option<SocketAddr>,

    /// The application's time zone, compared with the server's (default: this machine's).
    #[arg(long, value_name = "ZONE")]
    pub client_timezone: Option<String>,

    /// The client pool's connection lifetime, compared with MySQL's wait_timeout.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub pool_lifetime: Duration,

    /// Whether the Redis instance is a cache (should evict) or a store (must not).
    #[arg(long, value_enum, default_value_t = RedisRole::Cache)]
    pub redis_role: RedisRole,

    /// Never prompt for a password.
    #[arg(long, short = 'w')]
    pub no_password: bool,

    /// Colour in the text report.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,

    /// No progress lines on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum DoctorCommand {
    /// List every check (id, title); with --thresholds, the tunable thresholds.
    List {
        #[arg(long)]
        thresholds: bool,
    },
    /// Print the runbook of one check: why it matters, the fix, how to verify.
    Explain { id: String },
}

/// Runs the command and returns the process exit code.
pub async fn run(args: DoctorArgs) -> i32 {
    match args.command {
        Some(DoctorCommand::List { thresholds }) => {
            print!(
                "{}",
                if thresholds {
                    list_thresholds()
                } else {
                    list()
                }
            );
            return 0;
        }
        Some(DoctorCommand::Explain { ref id }) => {
            return match explain(id) {
                Some(s) => {
                    print!("{s}");
                    0
                }
                None => {
                    eprintln!("doctor: unknown check id {id:?} (see `dbwarden doctor list`)");
                    EXIT_UNKNOWN
                }
            };
        }
        None => {}
    }
    let Some(url) = args.url.clone() else {
        eprintln!("doctor: a URL is required, e.g. `dbwarden doctor postgres://user@host/db`");
        return EXIT_UNKNOWN;
    };
    let (target, opts) = match prepare(&url, &args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("doctor: {e}");
            return EXIT_UNKNOWN;
        }
    };
    let report = crate::diagnose(&target, &opts).await;
    if !args.quiet && std::io::stderr().is_terminal() {
        // Clear the last progress line.
        eprint!("\r\x1b[2K");
    }
    match emit(&report, &args) {
        Ok(()) => report.summary.exit_code,
        Err(e) => {
            eprintln!("doctor: {e}");
            EXIT_UNKNOWN
        }
    }
}

fn prepare(url: &str, args: &DoctorArgs) -> Result<(Target, Options), DoctorError> {
    let target = Target::parse(url)?;
    let mut thresholds = Thresholds::default();
    for kv in &args.thresholds {
        thresholds.set_from_str(kv)?;
    }
    let filter = Filter {
        only: args.only.clone(),
        skip: args.skip.clone(),
    };
    filter.validate()?;
    let progress = if !args.quiet && std::io::stderr().is_terminal() {
        Progress::new(|msg| {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K\x1b[2m… {msg}\x1b[0m");
            let _ = e.flush();
        })
    } else {
        Progress::default()
    };
    let opts = Options {
        timeouts: Timeouts {
            dns: args.dns_timeout,
            connect: args.connect_timeout,
            tls: args.tls_timeout,
            auth: args.auth_timeout,
            query: args.statement_timeout,
        },
        samples: args.samples,
        thresholds,
        filter,
        dns_server: args.dns_server,
        client_timezone: args.client_timezone.clone(),
        pool_lifetime: args.pool_lifetime,
        redis_role: args.redis_role,
        prompt_password: !args.no_password,
        progress,
    };
    Ok((target, opts))
}

/// Renders the report in the chosen format to the chosen place.
fn emit(report: &Report, args: &DoctorArgs) -> Result<(), DoctorError> {
    let to_terminal = args.output.is_none() && std::io::stdout().is_terminal();
    let color = match args.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => to_terminal && std::env::var_os("NO_COLOR").is_none(),
    };
    let body = match args.format {
        Format::Text => render::text::render(report, color),
        Format::Json => render::json::render(report)?,
        Format::Markdown => render::markdown::render(report),
        Format::Html => render::html::render(report),
    };
    match &args.output {
        Some(path) => std::fs::write(path, body).map_err(|source| DoctorError::Output {
            path: path.display().to_string(),
            source,
        }),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|source| DoctorError::Output {
                    path: "stdout".into(),
                    source,
                })
        }
    }
}

pub fn list() -> String {
    let mut s = String::new();
    for c in catalogue::all() {
        s.push_str(&format!("{:<28} {}\n", c.id, c.title));
    }
    s
}

pub fn list_thresholds() -> String {
    let mut s = String::new();
    for (k, v, what) in DEFAULTS {
        s.push_str(&format!("{k:<40} {v:<12} {what}\n"));
    }
    s
}

pub fn explain(id: &str) -> Option<String> {
    let c = catalogue::find(id)?;
    let mut s = format!(
        "{}  {}\n\nWhy it matters\n  {}\n\nFix\n  {}\n\nVerify\n  {}\n",
        c.id, c.title, c.why, c.fix, c.verify
    );
    let th: Vec<_> = Thresholds::for_check(id).collect();
    if !th.is_empty() {
        s.push_str("\nThresholds (--threshold KEY=VALUE)\n");
        for (k, v, what) in th {
            s.push_str(&format!("  {k} = {v}  ({what})\n"));
        }
    }
    Some(s)
}
