//! The `dbwarden` binary: argument parsing, runtime, logging and signals. The work lives in
//! the crates; this file only wires them together.

mod demo;
mod logging;
mod proxy_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "dbwarden",
    version,
    about = "Database reliability toolkit: a PostgreSQL pooling proxy and a connection doctor"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the PostgreSQL pooling proxy.
    Proxy(proxy_cmd::ProxyArgs),
    /// Validate a config file and print the effective configuration.
    CheckConfig {
        /// The TOML config file.
        file: std::path::PathBuf,
    },
    /// Start a throw-away PostgreSQL, put the proxy in front of it, drive a workload through it.
    Demo(demo::DemoArgs),
    /// Diagnose a database endpoint layer by layer and run its checklist.
    Doctor(dbwarden_doctor::DoctorArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::Proxy(args) => proxy_cmd::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Doctor(args) => runtime(0).block_on(dbwarden_doctor::run(args)),
    };
    std::process::exit(code);
}

fn check_config(file: &std::path::Path) -> i32 {
    match dbwarden_config::Config::load(file) {
        Ok(config) => {
            for w in config.warnings() {
                eprintln!("warning: {w}");
            }
            print!("{}", config.effective_toml());
            eprintln!("{}: OK", file.display());
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// A multi-threaded runtime with `workers` threads (0 = one per core).
pub(crate) fn runtime(workers: u32) -> tokio::runtime::Runtime {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if workers > 0 {
        b.worker_threads(workers as usize);
    }
    b.enable_all().build().expect("tokio runtime")
}

/// A runtime on the calling thread alone: no work stealing and no wake-ups across threads,
/// for the proxy's worker runtimes (see `proxy.workers`).
pub(crate) fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
