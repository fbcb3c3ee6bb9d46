//! `dbwarden doctor`: layered connection diagnosis (DNS, TCP, TLS, authentication,
//! first query, round trips) and the database checklist for PostgreSQL,
//! MySQL/MariaDB and Redis. Read-only, bounded, one connection.
//!
//! As a library: build a [`Target`] and [`Options`], call [`diagnose`], and render
//! the [`Report`] with one of the [`render`] modules. As a command: [`DoctorArgs`]
//! and [`run`].

pub mod catalogue;
pub mod checks;
mod cli;
pub mod error;
pub mod model;
pub mod options;
pub mod probe;
pub mod render;
mod runner;
pub mod target;
pub mod thresholds;

pub use cli::{
    explain, list, list_thresholds, run, Color, DoctorArgs, DoctorCommand, Format, EXIT_UNKNOWN,
};
pub use error::DoctorError;
pub use model::{Finding, Phase, Report, Severity};
pub use options::{Filter, Options, Progress, RedisRole, Timeouts};
pub use runner::diagnose;
pub use target::{Engine, Target, TlsMode};
pub use thresholds::Thresholds;
