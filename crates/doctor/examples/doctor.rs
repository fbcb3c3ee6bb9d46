//! `cargo run -p dbwarden-doctor --example doctor -- URL [options]`: the doctor
//! without the rest of the dbwarden binary, for trying it out.

use clap::Parser;

#[derive(Parser, Debug)]
struct Cli {
    #[command(flatten)]
    args: dbwarden_doctor::DoctorArgs,
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    std::process::exit(dbwarden_doctor::run(cli.args).await)
}
