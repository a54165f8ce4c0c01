//! The `eddy` command: lists scenarios, runs seeded simulation campaigns, replays failures.
//!
//! Exit codes: 0 every run passed; 1 a run failed; 2 bad usage or input (the message names
//! the flag, file or field).
#![forbid(unsafe_code)]

use std::process::ExitCode;

mod args;
mod bench;
mod cmd;
mod common;
mod report;

use args::{Cli, Command, ReportCommand};
use clap::Parser;
use cmd::explore::explore;
use cmd::list::list;
use cmd::materialize::materialize;
use cmd::merge::merge;
use cmd::replay::replay;
use cmd::run::run;
use cmd::shrink::shrink;
use common::UsageError;

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::List { bugs } => list(bugs),
        Command::Explore(args) => explore(&args),
        Command::Replay(args) => replay(&args),
        Command::Shrink(args) => shrink(&args),
        Command::Run(args) => run(&args),
        Command::Materialize { changelog, output } => materialize(&changelog, output.as_deref()),
        Command::Bench(args) => bench::run(&args).map(|_| ExitCode::SUCCESS).map_err(UsageError),
        Command::Report {
            command: ReportCommand::Merge { files, output, html },
        } => merge(&files, &output, html.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(UsageError(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}
