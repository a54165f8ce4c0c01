//! The `eddy` command: runs, reports and replays simulations of eddy pipelines.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Deterministic simulation testing for stream processing pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a campaign of seeded simulations (not available until the simulator lands).
    Explore,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Explore => {
            println!(
                "eddy explore: the deterministic simulator has not landed yet, so there is no campaign to run.\n\
                 The engine is usable today as a library (see README.md); `cargo test --workspace`\n\
                 checks its semantics and properties."
            );
            ExitCode::SUCCESS
        }
    }
}
