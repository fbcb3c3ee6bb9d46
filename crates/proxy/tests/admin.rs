//! The admin console against a real proxy and PostgreSQL, through real clients: PgBouncer's
//! columns and types, numbers that follow real traffic, who gets in, the commands that change
//! things, and PgBouncer's own Prometheus exporter reading dbwarden unchanged.

mod common;

#[path = "admin/access.rs"]
mod access;
#[path = "admin/columns.rs"]
mod columns;
#[path = "admin/console.rs"]
mod console;
#[path = "admin/control.rs"]
mod control;
#[path = "admin/exporter.rs"]
mod exporter;
#[path = "admin/numbers.rs"]
mod numbers;

use common::*;
