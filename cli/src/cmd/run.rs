//! `eddy run`: a scenario's pipeline once in batch mode, or with `--live` as a live job.

use std::path::PathBuf;
use std::process::ExitCode;

use eddy::engine::SnapshotStore;
use eddy::scenarios;
use eddy::sim::{BadLine, ParseErrors, Scenario};

use crate::args::RunArgs;
use crate::common::{find_scenario, input_error, read_lines, write_file, UsageError};

pub fn run(args: &RunArgs) -> Result<ExitCode, UsageError> {
    let scenario = find_scenario(&args.scenario)?;
    if args.live {
        return run_live(scenario, args);
    }
    // Blank lines are skipped; `numbers[i]` is the file's line number of input line `i`.
    let (input, numbers, source) = match &args.input {
        Some(path) => read_lines(path)?,
        None => (
            scenario.generate_lines(args.seed, args.events),
            Vec::new(),
            String::new(),
        ),
    };
    if let Some(path) = &args.emit_input {
        write_file(
            path,
            (input.join("\n") + if input.is_empty() { "" } else { "\n" }).as_bytes(),
        )?;
    }
    let run = scenario
        .run_lines(&input, parse_errors(args))
        .map_err(|e| input_error(e, &numbers, &source))?;
    report_skipped(&run.skipped, &numbers, &source);
    let output = run.output;
    let text = output.join("\n") + if output.is_empty() { "" } else { "\n" };
    match &args.output {
        Some(path) => write_file(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_errors(args: &RunArgs) -> ParseErrors {
    if args.ignore_parse_errors {
        ParseErrors::Skip
    } else {
        ParseErrors::Fail
    }
}

/// The first skipped lines on stderr, each with its file and line, and how many there were.
fn report_skipped(skipped: &[BadLine], numbers: &[usize], source: &str) {
    const SHOWN: usize = 20;
    for BadLine { index, reason } in skipped.iter().take(SHOWN) {
        let line = numbers.get(*index).copied().unwrap_or(index + 1);
        eprintln!("eddy: skipped {source}:{line}: {reason}");
    }
    if skipped.len() > SHOWN {
        eprintln!("eddy: ... and {} more", skipped.len() - SHOWN);
    }
    if !skipped.is_empty() {
        let (lines, verb) = if skipped.len() == 1 {
            ("line", "does")
        } else {
            ("lines", "do")
        };
        eprintln!(
            "eddy: skipped {} input {lines} that {verb} not parse (--ignore-parse-errors)",
            skipped.len()
        );
    }
}

/// `eddy run --live`: see docs/live.md.
fn run_live(scenario: &'static dyn Scenario, args: &RunArgs) -> Result<ExitCode, UsageError> {
    // The database first: a server that cannot take the output is the thing to fix.
    let outputs = scenario.live_outputs();
    let file = |path: &PathBuf| eddy::live::OutputFile::open(path).map_err(|e| UsageError(e.to_string()));
    let (output, sinks) = match &args.postgres {
        Some(url) => {
            let table = args.table.clone().unwrap_or_else(|| scenario.name().replace('-', "_"));
            let Some((table_output, schema)) = outputs.table else {
                let tables: Vec<&str> = scenarios::all()
                    .iter()
                    .filter(|s| s.live_outputs().table.is_some())
                    .map(|s| s.name())
                    .collect();
                return Err(UsageError(format!(
                    "scenario `{}` declares no database table for --postgres (its outputs go to a file: \
                     --output FILE); scenarios with one: {}",
                    scenario.name(),
                    tables.join(", ")
                )));
            };
            let database =
                eddy::postgres::PostgresOutput::connect(url, &table, &schema).map_err(|e| UsageError(e.to_string()))?;
            let others: Vec<&String> = outputs.names.iter().filter(|n| **n != table_output).collect();
            let rest = match (&args.output, others.is_empty()) {
                (Some(path), _) => Some(file(path)?),
                (None, true) => None,
                (None, false) => {
                    return Err(UsageError(format!(
                        "scenario `{}` writes its output `{table_output}` to table {table} and also {}: give \
                         --output FILE for {}",
                        scenario.name(),
                        others.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", "),
                        if others.len() == 1 { "it" } else { "them" }
                    )))
                }
            };
            let sinks = eddy::sim::LiveSinks {
                lines: rest.as_ref().map(eddy::live::OutputFile::committer),
                table: Some((table_output, database.committer())),
            };
            (eddy::live::LiveOutput::database(database, rest), sinks)
        }
        None => {
            let (Some(output_path), Some(_)) = (&args.output, &args.state_dir) else {
                return Err(UsageError(
                    "--live needs --state-dir, and --output (or --postgres)".into(),
                ));
            };
            let output = file(output_path)?;
            let sinks = eddy::sim::LiveSinks::lines(output.committer());
            (eddy::live::LiveOutput::file(output), sinks)
        }
    };
    let Some(state_dir) = &args.state_dir else {
        return Err(UsageError("--live needs --state-dir: where its checkpoints go".into()));
    };
    let store = eddy::store::FsSnapshotStore::open(state_dir)
        .map_err(|e| UsageError(format!("--state-dir {}: {e}", state_dir.display())))?;
    let _lock = store
        .lock()
        .map_err(|e| UsageError(format!("--state-dir {}: {e}", state_dir.display())))?;
    let generated = PathBuf::new();
    let input = args.input.as_ref().unwrap_or(&generated);
    let from_stdin = input.as_os_str() == "-";
    if from_stdin {
        let stored = store
            .checkpoints()
            .map_err(|e| UsageError(format!("--state-dir {}: {e}", state_dir.display())))?;
        if !stored.is_empty() {
            return Err(UsageError(format!(
                "--input -: stdin is not restorable (it cannot be rewound to checkpoint {}'s offsets); \
                 use a file, or a fresh --state-dir",
                stored[stored.len() - 1]
            )));
        }
        eprintln!("live: reading stdin: a restart cannot rewind it, so this run is not restorable");
    }
    let (graph, followed) = if args.follow {
        if from_stdin {
            return Err(UsageError("--follow needs a file, not stdin".into()));
        }
        if args.input.is_none() {
            return Err(UsageError("--follow needs --input FILE".into()));
        }
        let feed = eddy::live::FileFeed::open(input).map_err(|e| UsageError(e.to_string()))?;
        let (graph, _) = scenario
            .live_graph(eddy::sim::LiveInput::Follow(feed.clone()), parse_errors(args), sinks)
            .map_err(|e| UsageError(e.to_string()))?;
        (graph, Some(feed))
    } else {
        let (lines, numbers, source) = match &args.input {
            Some(input) => read_lines(input)?,
            None => (
                scenario.generate_lines(args.seed, args.events),
                Vec::new(),
                String::new(),
            ),
        };
        let (graph, skipped) = scenario
            .live_graph(eddy::sim::LiveInput::Lines(lines), parse_errors(args), sinks)
            .map_err(|e| input_error(e, &numbers, &source))?;
        report_skipped(&skipped, &numbers, &source);
        (graph, None)
    };
    let config = eddy::live::LiveConfig {
        checkpoint_interval: std::time::Duration::from_millis(args.checkpoint_interval),
        rate: args.rate,
        progress_interval: (!args.quiet).then_some(std::time::Duration::from_secs(1)),
        ..eddy::live::LiveConfig::default()
    };
    let summary = eddy::live::run_live(&graph, &output, store, &config, followed.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let mut written = Vec::new();
    if let Some(database) = output.database_output() {
        written.push(format!(
            "table {} ({} transactions committed)",
            database.table(),
            database.committed()
        ));
    }
    if let Some(path) = &args.output {
        written.push(format!("{} ({} bytes)", path.display(), summary.output_len));
    }
    let written = written.join(", ");
    eprintln!(
        "live: done: {} events read in this run, {} late, {} checkpoints, final checkpoint {}, {written}",
        summary.records_read, summary.late_records, summary.checkpoints_completed, summary.final_checkpoint,
    );
    Ok(ExitCode::SUCCESS)
}
