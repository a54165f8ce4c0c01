//! The `eddy` command: lists scenarios, runs seeded simulation campaigns, replays failures.
//!
//! Exit codes: 0 every run passed; 1 a run failed; 2 bad usage or input (the message names
//! the flag, file or field).
#![forbid(unsafe_code)]

use std::fs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

mod bench;
mod report;

use clap::{Args, Parser, Subcommand};
use eddy::engine::bugs::{self, Bug};
use eddy::engine::SnapshotStore;
use eddy::replay_file::{
    case_config, failure_config, parse_failure_file, parse_replay_file, FailureFile, FileError, ReplayFile,
};
use eddy::scenarios;
use eddy::sim::{Coverage, FaultKind, FaultSet, Moment, Oracle, Profile, Report, RunConfig, Scenario, SinkModel};
use report::{Aimed, CampaignSummary, FailureSummary, ScenarioSummary};

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
    /// List the scenarios (or, with --bugs, the planted bugs): name and description.
    List {
        /// List the planted bugs instead.
        #[arg(long)]
        bugs: bool,
    },
    /// Run seeded simulations of scenarios under faults and check every run.
    Explore(ExploreArgs),
    /// Run one seed again (from flags, a failure file or a shrunk case) and print its report.
    Replay(ReplayArgs),
    /// Turn a failure into an explicit case (input log and fault schedule) and minimise it.
    Shrink(ShrinkArgs),
    /// Run a scenario's pipeline once in batch mode, without faults, over generated input or
    /// your own JSON lines; print its results as JSON lines in canonical order.
    Run(RunArgs),
    /// Materialise a changelog (lines `+I ROW`, `-U ROW`, `+U ROW`, `-D ROW`, as a live run of
    /// a changelog scenario writes them) into the table it describes: print its rows as JSON
    /// lines, as the batch run prints them. A retraction of a row the table does not hold
    /// exits 1.
    Materialize {
        /// The changelog (`-`: stdin).
        changelog: PathBuf,
        /// Write the rows here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Measure events/s of the engine, the simulator, a hand-written loop and timely dataflow
    /// on the same input, and snapshot bytes per state entry; or, with --restore-keys, the
    /// time to restore a checkpoint (docs/performance.md).
    Bench(bench::BenchArgs),
    /// Work with campaign summaries (`explore --json`): merge the shards of a campaign.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Merge the JSON summaries of `explore --shard I/N` runs into one (and a page).
    Merge {
        /// The shards' summaries (`explore --json`).
        #[arg(value_name = "SUMMARY.json", required = true)]
        files: Vec<PathBuf>,
        /// Where the merged summary goes.
        #[arg(short = 'o', long = "output", value_name = "OUT.json")]
        output: PathBuf,
        /// Also write the merged campaign as a page.
        #[arg(long, value_name = "FILE.html")]
        html: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    #[arg(long, value_name = "NAME")]
    scenario: String,
    /// Seed of the generated input.
    #[arg(long, default_value_t = 0, value_name = "S", conflicts_with = "input")]
    seed: u64,
    /// How many events to generate.
    #[arg(long, value_name = "N", conflicts_with = "input")]
    events: Option<usize>,
    /// Read the input from JSON lines (`-` for stdin) instead of generating it.
    #[arg(long, value_name = "FILE.jsonl")]
    input: Option<PathBuf>,
    /// Where the results go (stdout if not given).
    #[arg(long, value_name = "FILE.jsonl")]
    output: Option<PathBuf>,
    /// Also write the input as JSON lines.
    #[arg(long, value_name = "FILE.jsonl")]
    emit_input: Option<PathBuf>,
    /// Run live (docs/live.md): tasks on tokio, the real clock, checkpoints in --state-dir,
    /// exactly-once output in --output (or --postgres); restarted after a crash, it resumes.
    /// The input is --input, or the events of --seed and --events.
    #[arg(long, conflicts_with = "emit_input")]
    live: bool,
    /// Live: commit the results into PostgreSQL instead of --output, exactly once, with
    /// prepared transactions (`PREPARE TRANSACTION`, docs/live.md); the server needs
    /// max_prepared_transactions > 0.
    #[arg(long, value_name = "URL", requires = "live", conflicts_with = "output")]
    postgres: Option<String>,
    /// Live, with --postgres: the table (created from the scenario's output if missing);
    /// default: the scenario's name, with `_` for `-`.
    #[arg(long, value_name = "T", requires = "postgres")]
    table: Option<String>,
    /// Live: where checkpoints go (and are restored from).
    #[arg(long, value_name = "DIR", requires = "live")]
    state_dir: Option<PathBuf>,
    /// Live: milliseconds between checkpoints.
    #[arg(long, value_name = "MS", default_value_t = 1_000, requires = "live",
          value_parser = clap::value_parser!(u64).range(1..))]
    checkpoint_interval: u64,
    /// Live: replay the input at this steady pace (events per second), as a real feed.
    #[arg(long, value_name = "EVENTS_PER_S", requires = "live", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Live: follow the input file as it grows (like `tail -f`); the run never ends.
    #[arg(long, requires = "live")]
    follow: bool,
    /// Live: no progress lines on stderr.
    #[arg(long, requires = "live")]
    quiet: bool,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("`{text}` is not a positive number of events per second")),
    }
}

#[derive(Args)]
struct ShrinkArgs {
    /// A failure file written by `eddy explore`.
    #[arg(value_name = "FILE.json")]
    file: PathBuf,
    /// Where the shrunk case goes (default: FILE.min.json).
    #[arg(short = 'o', long = "output", value_name = "OUT.json")]
    output: Option<PathBuf>,
    /// Run with this planted bug (instead of the one the failure file names).
    #[arg(long, value_name = "NAME")]
    bug: Option<Bug>,
    /// At most this many simulated runs.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    max_runs: usize,
}

#[derive(Args)]
struct ExploreArgs {
    /// Scenario to run (repeatable); every scenario if none is given.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// How many seeds per scenario.
    #[arg(long, default_value_t = 100, value_name = "N")]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0, value_name = "S")]
    start_seed: u64,
    /// Run only the seeds whose index is I modulo N (split a campaign over N workers).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    shard: Option<(u64, u64)>,
    /// Fault profile: none, input, crash, storage, all, swarm.
    #[arg(long, default_value = "swarm", value_name = "PROFILE")]
    faults: Profile,
    /// Events per run (the scenario's default if not given).
    #[arg(long, value_name = "N")]
    events: Option<usize>,
    /// Where failure files go.
    #[arg(long, default_value = "eddy-failures", value_name = "DIR")]
    out: PathBuf,
    /// Write the campaign summary as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the campaign summary as a page: per scenario runs, failures, fault kinds seen,
    /// seeds/s, each failure with its replay command.
    #[arg(long, value_name = "FILE.html")]
    html: Option<PathBuf>,
    /// Run with a planted bug (`eddy list --bugs`); reports how many seeds catching it took.
    #[arg(long, value_name = "NAME")]
    bug: Option<Bug>,
    /// Which oracles judge each run: the scenario's hand-written reference, the differential
    /// oracle (the same pipeline's batch run), or both.
    #[arg(long, default_value = "both", value_name = "ORACLE")]
    oracle: Oracle,
    /// Where the two-phase-commit sinks keep a checkpoint's transaction: `staged` in their
    /// snapshot, or `postgres-model`, prepared in a model of PostgreSQL into which the
    /// database faults (failed prepare, lost commit reply, database restart) are injected.
    /// Default: staged; postgres-model with `--bug commit-prepared-of-later-checkpoint`.
    #[arg(long, value_name = "SINK")]
    sink: Option<SinkModel>,
    /// Bound every channel to N messages: a task whose output channel is full waits
    /// (backpressure, as Flink's credit-based flow control), so sources cannot run far ahead
    /// of a barrier. Unbounded if not given. Failure files and shrunk cases record it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    channel_capacity: Option<u32>,
    /// Print, per scenario, how many runs reached each moment that matters (a crash
    /// mid-alignment, a restore at another parallelism (`rescale`), a record on a `boundary`,
    /// ...), and the moments no run reached (docs/testing.md).
    #[arg(long)]
    coverage: bool,
    /// Spend the second half of each scenario's seeds on the fault kinds of the moments the
    /// first half never reached, and report what that reached which an unaimed campaign of the
    /// same size did not.
    #[arg(long)]
    aim: bool,
    /// Stop at the first failing run.
    #[arg(long)]
    fail_fast: bool,
    /// Simulated runs at once, on this many threads (each run stays single-threaded and
    /// deterministic; results are reported in seed order); all cores if not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
}

#[derive(Args)]
struct ReplayArgs {
    /// A failure file written by `eddy explore`.
    #[arg(value_name = "FILE.json", conflicts_with_all = ["scenario", "seed"])]
    file: Option<PathBuf>,
    #[arg(long, value_name = "NAME", requires = "seed")]
    scenario: Option<String>,
    #[arg(long, value_name = "S", requires = "scenario")]
    seed: Option<u64>,
    #[arg(long, default_value = "swarm", value_name = "PROFILE")]
    faults: Profile,
    #[arg(long, value_name = "N")]
    events: Option<usize>,
    /// Write every step of the run as JSON lines.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Draw the run as a self-contained HTML page: a lane per task, checkpoints, faults,
    /// restores, the violation's records and commit highlighted.
    #[arg(long, value_name = "FILE.html")]
    timeline: Option<PathBuf>,
    /// Run twice and fail if the trace hashes differ.
    #[arg(long)]
    check_determinism: bool,
    /// Run with a planted bug.
    #[arg(long, value_name = "NAME")]
    bug: Option<Bug>,
    /// Which oracles judge the run: reference, differential or both (default: the file's, or both).
    #[arg(long, value_name = "ORACLE")]
    oracle: Option<Oracle>,
    /// Fault kinds on besides the profile's, comma-separated (what `explore --aim` added).
    #[arg(long = "with", value_name = "KIND,...", value_delimiter = ',')]
    with: Vec<FaultKind>,
    /// Where the sinks keep their transactions: staged or postgres-model (default: the
    /// file's, or staged).
    #[arg(long, value_name = "SINK")]
    sink: Option<SinkModel>,
    /// Bound every channel to N messages (default: the file's, or unbounded).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    channel_capacity: Option<u32>,
}

/// Bad usage or input: the message names the problem; exit code 2.
struct UsageError(String);

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (i, n) = text.split_once('/').ok_or_else(|| format!("`{text}` is not I/N"))?;
    let i: u64 = i
        .trim()
        .parse()
        .map_err(|_| format!("shard index `{i}` is not a number"))?;
    let n: u64 = n
        .trim()
        .parse()
        .map_err(|_| format!("shard count `{n}` is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("shard {i}/{n}: need 0 <= I < N"));
    }
    Ok((i, n))
}

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

fn list(list_bugs: bool) -> Result<ExitCode, UsageError> {
    if list_bugs {
        require_bugs()?;
        let width = Bug::ALL.iter().map(|b| b.name().len()).max().unwrap_or(0);
        for bug in Bug::ALL {
            println!("{:width$}  {}", bug.name(), bug.description());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let width = scenarios::all().iter().map(|s| s.name().len()).max().unwrap_or(0);
    for scenario in scenarios::all() {
        println!("{:width$}  {}", scenario.name(), scenario.description());
    }
    Ok(ExitCode::SUCCESS)
}

fn require_bugs() -> Result<(), UsageError> {
    if bugs::AVAILABLE {
        Ok(())
    } else {
        Err(UsageError(
            "this eddy was built without the `planted-bugs` feature".into(),
        ))
    }
}

fn find_scenario(name: &str) -> Result<&'static dyn Scenario, UsageError> {
    scenarios::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = scenarios::all().iter().map(|s| s.name()).collect();
        UsageError(format!(
            "unknown scenario `{name}`; known scenarios: {}",
            known.join(", ")
        ))
    })
}

fn replay_command(report: &Report, events: Option<usize>, oracle: Oracle, aim: &FaultSet) -> String {
    let mut command = format!(
        "eddy replay --scenario {} --seed {} --faults {}",
        report.scenario, report.seed, report.profile
    );
    if let Some(events) = events {
        command.push_str(&format!(" --events {events}"));
    }
    if let Some(bug) = &report.bug {
        command.push_str(&format!(" --bug {bug}"));
    }
    if oracle != Oracle::default() {
        command.push_str(&format!(" --oracle {oracle}"));
    }
    if !aim.is_empty() {
        command.push_str(&format!(" --with {}", aim.names().join(",")));
    }
    if let Some(sink) = &report.sink {
        command.push_str(&format!(" --sink {sink}"));
    }
    if let Some(capacity) = report.channel_capacity {
        command.push_str(&format!(" --channel-capacity {capacity}"));
    }
    command
}

fn explore(args: &ExploreArgs) -> Result<ExitCode, UsageError> {
    if args.bug.is_some() {
        require_bugs()?;
    }
    let chosen: Vec<&'static dyn Scenario> = if args.scenarios.is_empty() {
        scenarios::all()
    } else {
        args.scenarios
            .iter()
            .map(|name| find_scenario(name))
            .collect::<Result<_, _>>()?
    };
    let (shard, shards) = args.shard.unwrap_or((0, 1));
    let seeds: Vec<u64> = (0..args.seeds)
        .filter(|index| index % shards == shard)
        .map(|index| args.start_seed + index)
        .collect();
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new((seeds.len() * chosen.len()) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {per_sec}, eta {eta} {msg}")
                .expect("a valid progress template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| UsageError(format!("--jobs {jobs}: cannot start the threads: {e}")))?;
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    let mut aimed_baseline: Option<Coverage> = None;
    for scenario in &chosen {
        let mut summary = ScenarioSummary {
            name: scenario.name().to_string(),
            ..ScenarioSummary::default()
        };
        let started = Instant::now();
        progress.set_message(scenario.name().to_string());
        let run_all = |seeds: &[u64], aim: &FaultSet| -> Vec<Report> {
            let run = |&seed: &u64| {
                let config = RunConfig {
                    events: args.events,
                    check_determinism: true,
                    bug: args.bug,
                    oracle: args.oracle,
                    aim: aim.clone(),
                    sink: args.sink.unwrap_or(SinkModel::for_bug(args.bug)),
                    channel_capacity: args.channel_capacity.map(|n| n as usize),
                    ..RunConfig::new(seed, args.faults)
                };
                let report = scenario.run(&config).report;
                progress.inc(1);
                report
            };
            // Runs go in chunks, each reported in seed order, so that the output and
            // `--fail-fast`'s first failure do not depend on `--jobs`.
            seeds
                .chunks(8 * jobs)
                .flat_map(|chunk| {
                    use rayon::prelude::*;
                    pool.install(|| chunk.par_iter().map(run).collect::<Vec<_>>())
                })
                .collect()
        };
        // With --aim, the second half of the seeds runs with the fault kinds of the moments
        // the first half did not reach.
        let halves: Vec<&[u64]> = if args.aim {
            let (first, second) = seeds.split_at(seeds.len() / 2);
            vec![first, second]
        } else {
            vec![&seeds[..]]
        };
        let mut aim = FaultSet::default();
        for (half, half_seeds) in halves.iter().enumerate() {
            if half == 1 {
                let kinds: Vec<FaultKind> = summary
                    .coverage
                    .unreached()
                    .into_iter()
                    .flat_map(|m| m.aimed_by().iter().copied())
                    .collect();
                aim = FaultSet::of(&kinds);
                // The same seeds unaimed, to say what aiming bought.
                let mut unaimed = Coverage::default();
                for report in run_all(half_seeds, &FaultSet::default()) {
                    unaimed.record(&report.moments);
                    if report.violation.is_some() {
                        failures.push(record_failure(args, &report, &FaultSet::default(), &progress)?);
                        summary.failed += 1;
                    }
                }
                let mut baseline = summary.coverage.clone();
                baseline.merge(&unaimed);
                summary.aimed = Some(Aimed {
                    with: aim.names().into_iter().map(String::from).collect(),
                    reached_only_aimed: Vec::new(),
                });
                aimed_baseline = Some(baseline);
            }
            for report in run_all(half_seeds, &aim) {
                summary.runs += 1;
                summary.events += report.events_in;
                summary.crashes += report.crashes;
                summary.restores += report.restores;
                summary.checkpoints_completed += report.checkpoints_completed;
                summary.late += report.late;
                summary.duplicates += report.duplicates;
                summary.coverage.record(&report.moments);
                summary.faults_seen.extend(report.faults.iter().cloned());
                if report.violation.is_some() {
                    summary.failed += 1;
                    failures.push(record_failure(args, &report, &aim, &progress)?);
                }
                if args.fail_fast && summary.failed > 0 {
                    break;
                }
            }
            if args.fail_fast && summary.failed > 0 {
                break;
            }
        }
        if let (Some(aimed), Some(baseline)) = (&mut summary.aimed, aimed_baseline.take()) {
            aimed.reached_only_aimed = Moment::ALL
                .into_iter()
                .filter(|m| summary.coverage.runs_reaching(*m) > 0 && baseline.runs_reaching(*m) == 0)
                .map(|m| m.name().to_string())
                .collect();
        }
        summary.seconds = started.elapsed().as_secs_f64();
        if let Some(bug) = args.bug {
            let first = failures.iter().find(|f| f.scenario == summary.name).map(|f| f.seed);
            progress.suspend(|| match first {
                Some(seed) => println!(
                    "bug {bug} caught in {}: first failure at seed {seed}, after {} seeds",
                    summary.name,
                    seed - args.start_seed + 1
                ),
                None => println!("bug {bug} not caught in {} after {} seeds", summary.name, summary.runs),
            });
        }
        let stop = args.fail_fast && summary.failed > 0;
        summaries.push(summary);
        if stop {
            break;
        }
    }
    progress.finish_and_clear();
    print_summary(&summaries, args.faults);
    if args.coverage || args.aim {
        print_coverage(&summaries);
    }
    let summary = CampaignSummary {
        runs: summaries.iter().map(|s| s.runs).sum(),
        failed: summaries.iter().map(|s| s.failed).sum(),
        profile: args.faults.to_string(),
        scenarios: summaries,
        failures,
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary).expect("the summary serialises");
        write_file(path, json.as_bytes())?;
    }
    if let Some(path) = &args.html {
        write_file(path, report::campaign_html(&summary).as_bytes())?;
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a failing run and its replay line, writes its failure file, and returns its summary.
fn record_failure(
    args: &ExploreArgs,
    report: &Report,
    aim: &FaultSet,
    progress: &indicatif::ProgressBar,
) -> Result<FailureSummary, UsageError> {
    let violation = report.violation.as_ref().expect("a failing report has a violation");
    let replay = replay_command(report, args.events, args.oracle, aim);
    progress.suspend(|| {
        println!(
            "FAIL {} seed {} {}: {}",
            report.scenario, report.seed, violation.property, violation.message
        );
        println!("  replay: {replay}");
    });
    write_failure_file(&args.out, report, args.events, args.oracle, aim)?;
    Ok(FailureSummary {
        scenario: report.scenario.clone(),
        seed: report.seed,
        property: violation.property.clone(),
        replay,
    })
}

/// Per scenario, the runs that reached each moment; then the moments no run reached.
fn print_coverage(summaries: &[ScenarioSummary]) {
    println!();
    print!("{:<33}", "moment (runs that reached it)");
    for s in summaries {
        print!(" {:>8}", abbreviate(&s.name));
    }
    println!();
    let mut total = Coverage::default();
    for s in summaries {
        total.merge(&s.coverage);
    }
    for moment in Moment::ALL {
        print!("{:<33}", moment.name());
        for s in summaries {
            print!(" {:>8}", s.coverage.runs_reaching(moment));
        }
        println!();
    }
    let unreached = total.unreached();
    if unreached.is_empty() {
        println!("every moment was reached by some run");
    } else {
        let names: Vec<&str> = unreached.iter().map(|m| m.name()).collect();
        println!("never reached: {}", names.join(", "));
    }
    for s in summaries {
        if let Some(aimed) = &s.aimed {
            println!(
                "aim {}: with {} reached {} that the same seeds unaimed did not",
                s.name,
                if aimed.with.is_empty() {
                    "nothing".to_string()
                } else {
                    aimed.with.join(",")
                },
                if aimed.reached_only_aimed.is_empty() {
                    "nothing".to_string()
                } else {
                    aimed.reached_only_aimed.join(", ")
                }
            );
        }
    }
}

/// A scenario's name cut to a table column.
fn abbreviate(name: &str) -> String {
    let short = name.strip_prefix("nexmark-").unwrap_or(name);
    short.chars().take(8).collect()
}

fn print_summary(summaries: &[ScenarioSummary], profile: Profile) {
    println!(
        "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>11} {:>8} {:>10}",
        "scenario", "runs", "failed", "events", "crashes", "restores", "checkpoints", "seeds/s", "events/s"
    );
    for s in summaries {
        let seconds = s.seconds.max(1e-9);
        println!(
            "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>11} {:>8.0} {:>10.0}",
            s.name,
            s.runs,
            s.failed,
            s.events,
            s.crashes,
            s.restores,
            s.checkpoints_completed,
            s.runs as f64 / seconds,
            s.events as f64 / seconds
        );
    }
    let runs: u64 = summaries.iter().map(|s| s.runs).sum();
    let failed: u64 = summaries.iter().map(|s| s.failed).sum();
    let late: u64 = summaries.iter().map(|s| s.late).sum();
    println!("{runs} runs ({profile} faults), {failed} failed, {late} late records on late outputs");
}

/// `eddy report merge`: the shards' summaries as one.
fn merge(files: &[PathBuf], output: &Path, html: Option<&Path>) -> Result<ExitCode, UsageError> {
    let mut shards = Vec::with_capacity(files.len());
    for file in files {
        let summary: CampaignSummary = serde_json::from_str(&read_text(file)?).map_err(|e| {
            UsageError(format!(
                "{}: not a campaign summary (explore --json): {e}",
                file.display()
            ))
        })?;
        shards.push((file.display().to_string(), summary));
    }
    let merged = report::merge(shards).map_err(UsageError)?;
    let json = serde_json::to_string_pretty(&merged).expect("the summary serialises");
    write_file(output, json.as_bytes())?;
    if let Some(path) = html {
        write_file(path, report::campaign_html(&merged).as_bytes())?;
    }
    println!(
        "merged {} summaries: {} runs, {} failed -> {}",
        files.len(),
        merged.runs,
        merged.failed,
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), UsageError> {
    fs::write(path, bytes).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
}

fn write_failure_file(
    dir: &Path,
    report: &Report,
    events: Option<usize>,
    oracle: Oracle,
    aim: &FaultSet,
) -> Result<(), UsageError> {
    fs::create_dir_all(dir).map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    let violation = report.violation.as_ref().expect("a failing report has a violation");
    let failure = FailureFile {
        scenario: report.scenario.clone(),
        seed: report.seed,
        profile: report.profile.clone(),
        events,
        bug: report.bug.clone(),
        oracle: (oracle != Oracle::default()).then(|| oracle.to_string()),
        with: aim.names().into_iter().map(String::from).collect(),
        sink: report.sink.clone(),
        channel_capacity: report.channel_capacity,
        property: violation.property.clone(),
        message: violation.message.clone(),
    };
    let path = dir.join(format!("{}-{}.json", report.scenario, report.seed));
    let json = serde_json::to_string_pretty(&failure).expect("a failure file serialises");
    write_file(&path, json.as_bytes())
}

fn read_text(path: &Path) -> Result<String, UsageError> {
    fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
}

/// `FileError`s name the line or field; this adds the file.
fn in_file(path: &Path) -> impl Fn(FileError) -> UsageError + '_ {
    move |e| match e {
        FileError::BugsNotCompiledIn => UsageError(e.to_string()),
        FileError::NotJson { .. } | FileError::NotAFailureFile { .. } => UsageError(format!("{}:{e}", path.display())),
        _ => UsageError(format!("{}: {e}", path.display())),
    }
}

fn read_failure_file(path: &Path) -> Result<FailureFile, UsageError> {
    parse_failure_file(&read_text(path)?).map_err(in_file(path))
}

fn shrink(args: &ShrinkArgs) -> Result<ExitCode, UsageError> {
    let failure = read_failure_file(&args.file)?;
    let (scenario, config) = failure_config(&failure, args.bug, None).map_err(in_file(&args.file))?;
    let config = RunConfig {
        check_determinism: true,
        ..config
    };
    let (run, case) = scenario.record_case(&config);
    let Some(violation) = run.report.violation else {
        println!(
            "{}
{}: the run passes; nothing to shrink",
            run.report,
            args.file.display()
        );
        return Ok(ExitCode::from(1));
    };
    let replayed = scenario
        .run_case(&config, &case)
        .map_err(|e| UsageError(e.to_string()))?;
    if replayed.report.violation.as_ref().map(|v| &v.property) != Some(&violation.property) {
        println!(
            "{}: the recorded input and faults do not reproduce `{}`; cannot shrink",
            args.file.display(),
            violation.property
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!(
        "shrinking {} events and {} faults that fail `{}` ...",
        case.input.len(),
        case.faults.len(),
        violation.property
    );
    let shrunk = eddy::sim::shrink(scenario, &config, case, &violation.property, args.max_runs);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("min.json"));
    let json = serde_json::to_string_pretty(&shrunk.case).expect("a case serialises");
    write_file(&output, json.as_bytes())?;
    let final_run = scenario
        .run_case(&config, &shrunk.case)
        .map_err(|e| UsageError(e.to_string()))?;
    println!("{}", final_run.report);
    println!(
        "wrote {} ({} runs); replay: eddy replay {}",
        output.display(),
        shrunk.runs,
        output.display()
    );
    println!(
        "shrunk: events {} -> {}, faults {} -> {}",
        shrunk.events_before,
        shrunk.case.input.len(),
        shrunk.faults_before,
        shrunk.case.faults.len()
    );
    if !shrunk.fixpoint {
        println!(
            "shrink: stopped at its budget after {} runs, before a round changed nothing: the case may shrink further",
            shrunk.runs
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run(args: &RunArgs) -> Result<ExitCode, UsageError> {
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
    let output = scenario
        .run_lines(&input)
        .map_err(|e| input_error(e, &numbers, &source))?;
    let text = output.join("\n") + if output.is_empty() { "" } else { "\n" };
    match &args.output {
        Some(path) => write_file(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `eddy materialize`: a changelog's lines into its table's rows.
fn materialize(changelog: &Path, output: Option<&Path>) -> Result<ExitCode, UsageError> {
    let (lines, numbers, source) = read_lines(changelog)?;
    let table = eddy::sim::OutputTable::changelog_lines("changelog", &lines)
        .map_err(|(index, reason)| UsageError(format!("{source}:{}: {reason}", numbers[index])))?;
    if let Some(problem) = &table.problem {
        eprintln!("{source}: {problem}");
        return Ok(ExitCode::from(1));
    }
    let rows = table.lines();
    let text = rows.join("\n") + if rows.is_empty() { "" } else { "\n" };
    match output {
        Some(path) => write_file(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The non-blank lines of a JSON-lines file (`-`: stdin), with their line numbers and the
/// name to cite in errors.
fn read_lines(path: &Path) -> Result<(Vec<String>, Vec<usize>, String), UsageError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| UsageError(format!("cannot read stdin: {e}")))?
    } else {
        fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?
    };
    let (numbers, lines): (Vec<usize>, Vec<String>) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| (n + 1, l.to_string()))
        .unzip();
    Ok((lines, numbers, path.display().to_string()))
}

/// An input error at the file's line (`numbers[i]` is input line `i`'s line number).
fn input_error(error: eddy::sim::CaseError, numbers: &[usize], source: &str) -> UsageError {
    match error {
        eddy::sim::CaseError::Input { index, reason } => {
            let line = numbers.get(index).copied().unwrap_or(index + 1);
            UsageError(format!("{source}:{line}: {reason}"))
        }
        other => UsageError(format!("{source}: {other}")),
    }
}

/// `eddy run --live`: see docs/live.md.
fn run_live(scenario: &'static dyn Scenario, args: &RunArgs) -> Result<ExitCode, UsageError> {
    if !scenario.supports_live() {
        let live: Vec<&str> = scenarios::all()
            .iter()
            .filter(|s| s.supports_live())
            .map(|s| s.name())
            .collect();
        return Err(UsageError(format!(
            "scenario `{}` has no live form; live scenarios: {}",
            scenario.name(),
            live.join(", ")
        )));
    }
    // The database first: a server that cannot take the output is the thing to fix.
    let output = match &args.postgres {
        Some(url) => {
            let table = args.table.clone().unwrap_or_else(|| scenario.name().replace('-', "_"));
            let schema = scenario.live_table().ok_or_else(|| {
                UsageError(format!(
                    "scenario `{}` has no table form for --postgres",
                    scenario.name()
                ))
            })?;
            let database =
                eddy::postgres::PostgresOutput::connect(url, &table, &schema).map_err(|e| UsageError(e.to_string()))?;
            eddy::live::LiveOutput::Postgres(database)
        }
        None => {
            let (Some(output_path), Some(_)) = (&args.output, &args.state_dir) else {
                return Err(UsageError(
                    "--live needs --state-dir, and --output (or --postgres)".into(),
                ));
            };
            eddy::live::LiveOutput::File(
                eddy::live::OutputFile::open(output_path).map_err(|e| UsageError(e.to_string()))?,
            )
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
        let graph = scenario
            .live_graph(eddy::sim::LiveInput::Follow(feed.clone()), output.committer())
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
        let graph = scenario
            .live_graph(eddy::sim::LiveInput::Lines(lines), output.committer())
            .map_err(|e| input_error(e, &numbers, &source))?;
        (graph, None)
    };
    let graph = graph.expect("supports_live was checked");
    let config = eddy::live::LiveConfig {
        checkpoint_interval: std::time::Duration::from_millis(args.checkpoint_interval),
        rate: args.rate,
        progress_interval: (!args.quiet).then_some(std::time::Duration::from_secs(1)),
        ..eddy::live::LiveConfig::default()
    };
    let summary = eddy::live::run_live(&graph, &output, store, &config, followed.as_deref())
        .map_err(|e| UsageError(e.to_string()))?;
    let written = match (&output, &args.output) {
        (eddy::live::LiveOutput::Postgres(database), _) => format!(
            "table {} ({} transactions committed)",
            database.table(),
            summary.output_len
        ),
        (eddy::live::LiveOutput::File(_), Some(path)) => format!("{} ({} bytes)", path.display(), summary.output_len),
        (eddy::live::LiveOutput::File(_), None) => unreachable!("a file output has a path"),
    };
    eprintln!(
        "live: done: {} events read in this run, {} late, {} checkpoints, final checkpoint {}, {written}",
        summary.records_read, summary.late_records, summary.checkpoints_completed, summary.final_checkpoint,
    );
    Ok(ExitCode::SUCCESS)
}

/// With `--timeline`, draws the run as a page; with `--trace`, writes its steps as JSON
/// lines. Both are written whatever the verdict: a failing run is the one to look at.
fn write_run_files(args: &ReplayArgs, run: &eddy::sim::Run) -> Result<(), UsageError> {
    if let Some(path) = &args.timeline {
        let timeline = run
            .timeline
            .as_ref()
            .expect("a run that keeps its trace has a timeline");
        write_file(path, eddy::timeline::timeline_html(&run.report, timeline).as_bytes())?;
        println!("timeline: {}", path.display());
    }
    if let Some(path) = &args.trace {
        let mut lines = Vec::new();
        for event in run.trace.events() {
            serde_json::to_writer(&mut lines, event).expect("trace events serialise");
            lines.push(b'\n');
        }
        write_file(path, &lines)?;
        println!("trace: {}", path.display());
    }
    Ok(())
}

fn replay(args: &ReplayArgs) -> Result<ExitCode, UsageError> {
    if let Some(path) = &args.file {
        if let ReplayFile::Case(case) = parse_replay_file(&read_text(path)?).map_err(in_file(path))? {
            let (scenario, config) = case_config(&case).map_err(in_file(path))?;
            // A case is small: always check that it replays the same way.
            let config = RunConfig {
                check_determinism: true,
                oracle: args.oracle.unwrap_or(config.oracle),
                sink: args.sink.unwrap_or(config.sink),
                channel_capacity: args.channel_capacity.map(|n| n as usize).or(config.channel_capacity),
                keep_trace: args.trace.is_some() || args.timeline.is_some(),
                ..config
            };
            // A determinism failure shows only in some runs: give it several tries.
            let tries = if case.property.as_deref() == Some("determinism") {
                eddy::sim::DETERMINISM_TRIES
            } else {
                1
            };
            let mut run = None;
            for _ in 0..tries {
                let this = scenario
                    .run_case(&config, &case)
                    .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                let failed = !this.report.passed;
                run = Some(this);
                if failed {
                    break;
                }
            }
            let run = run.expect("at least one try");
            println!("{}", run.report);
            write_run_files(args, &run)?;
            return Ok(if run.report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    let (scenario, config) = match (&args.file, &args.scenario, args.seed) {
        (Some(path), _, _) => {
            let failure = read_failure_file(path)?;
            failure_config(&failure, args.bug, args.events).map_err(in_file(path))?
        }
        (None, Some(name), Some(seed)) => {
            let config = RunConfig {
                events: args.events,
                bug: args.bug,
                sink: SinkModel::for_bug(args.bug),
                ..RunConfig::new(seed, args.faults)
            };
            (find_scenario(name)?, config)
        }
        _ => return Err(UsageError("replay needs FILE.json, or --scenario NAME --seed S".into())),
    };
    if config.bug.is_some() {
        require_bugs()?;
    }
    let config = RunConfig {
        keep_trace: args.trace.is_some() || args.timeline.is_some(),
        oracle: args.oracle.unwrap_or(config.oracle),
        sink: args.sink.unwrap_or(config.sink),
        channel_capacity: args.channel_capacity.map(|n| n as usize).or(config.channel_capacity),
        aim: if args.with.is_empty() {
            config.aim
        } else {
            FaultSet::of(&args.with)
        },
        ..config
    };
    let run = scenario.run(&config);
    println!("{}", run.report);
    write_run_files(args, &run)?;
    let mut passed = run.report.passed;
    if args.check_determinism {
        let again = scenario.run(&config).report;
        if again.trace_hash == run.report.trace_hash {
            println!("determinism: the second run has the same trace-hash");
        } else {
            println!("determinism: FAIL, the second run has trace-hash {}", again.trace_hash);
            println!("{}", eddy::sim::divergence(&config, |config| scenario.run(config)));
            passed = false;
        }
    }
    let _ = std::io::stdout().flush();
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
