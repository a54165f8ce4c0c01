//! The command line: the subcommands and their flags (`eddy bench`'s are in [`crate::bench`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use eddy::engine::testkit::bugs::Bug;
use eddy::sim::{FaultKind, Oracle, Profile, SinkModel};

use crate::bench;

#[derive(Parser)]
#[command(
    name = "eddy",
    version,
    about = "Deterministic simulation testing for stream processing pipelines"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum ReportCommand {
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
pub struct RunArgs {
    #[arg(long, value_name = "NAME")]
    pub scenario: String,
    /// Seed of the generated input.
    #[arg(long, default_value_t = 0, value_name = "S", conflicts_with = "input")]
    pub seed: u64,
    /// How many events to generate.
    #[arg(long, value_name = "N", conflicts_with = "input")]
    pub events: Option<usize>,
    /// Read the input from JSON lines (`-` for stdin) instead of generating it.
    #[arg(long, value_name = "FILE.jsonl")]
    pub input: Option<PathBuf>,
    /// Where the results go (stdout if not given).
    #[arg(long, value_name = "FILE.jsonl")]
    pub output: Option<PathBuf>,
    /// Also write the input as JSON lines.
    #[arg(long, value_name = "FILE.jsonl")]
    pub emit_input: Option<PathBuf>,
    /// Skip input lines that do not parse, each reported on stderr and counted, instead of
    /// stopping at the first (Flink's formats' `ignore-parse-errors`, as
    /// `debezium-json.ignore-parse-errors`).
    #[arg(long)]
    pub ignore_parse_errors: bool,
    /// Run live (docs/live.md): tasks on tokio, the real clock, checkpoints in --state-dir,
    /// exactly-once output in --output (or --postgres); restarted after a crash, it resumes.
    /// The input is --input, or the events of --seed and --events.
    #[arg(long, conflicts_with = "emit_input")]
    pub live: bool,
    /// Live: commit the output that declares a table into PostgreSQL, exactly once, with
    /// prepared transactions (`PREPARE TRANSACTION`, docs/live.md); the server needs
    /// max_prepared_transactions > 0. The scenario's other outputs (a late side output) go
    /// to --output.
    #[arg(long, value_name = "URL", requires = "live")]
    pub postgres: Option<String>,
    /// Live, with --postgres: the table (created from the scenario's output if missing);
    /// default: the scenario's name, with `_` for `-`.
    #[arg(long, value_name = "T", requires = "postgres")]
    pub table: Option<String>,
    /// Live: where checkpoints go (and are restored from).
    #[arg(long, value_name = "DIR", requires = "live")]
    pub state_dir: Option<PathBuf>,
    /// Live: milliseconds between checkpoints.
    #[arg(long, value_name = "MS", default_value_t = 1_000, requires = "live",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_interval: u64,
    /// Live: replay the input at this steady pace (events per second), as a real feed.
    #[arg(long, value_name = "EVENTS_PER_S", requires = "live", value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// Live: follow the input file as it grows (like `tail -f`); the run never ends.
    #[arg(long, requires = "live")]
    pub follow: bool,
    /// Live: no progress lines on stderr.
    #[arg(long, requires = "live")]
    pub quiet: bool,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("`{text}` is not a positive number of events per second")),
    }
}

#[derive(Args)]
pub struct ShrinkArgs {
    /// A failure file written by `eddy explore`.
    #[arg(value_name = "FILE.json")]
    pub file: PathBuf,
    /// Where the shrunk case goes (default: FILE.min.json).
    #[arg(short = 'o', long = "output", value_name = "OUT.json")]
    pub output: Option<PathBuf>,
    /// Run with this planted bug (instead of the one the failure file names).
    #[arg(long, value_name = "NAME")]
    pub bug: Option<Bug>,
    /// At most this many simulated runs.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    pub max_runs: usize,
}

#[derive(Args)]
pub struct ExploreArgs {
    /// Scenario to run (repeatable); every scenario if none is given.
    #[arg(long = "scenario", value_name = "NAME")]
    pub scenarios: Vec<String>,
    /// How many seeds per scenario.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0, value_name = "S")]
    pub start_seed: u64,
    /// Run only the seeds whose index is I modulo N (split a campaign over N workers).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u64, u64)>,
    /// Fault profile: none, input, crash, storage, all, swarm.
    #[arg(long, default_value = "swarm", value_name = "PROFILE")]
    pub faults: Profile,
    /// Events per run (the scenario's default if not given).
    #[arg(long, value_name = "N")]
    pub events: Option<usize>,
    /// Where failure files go.
    #[arg(long, default_value = "eddy-failures", value_name = "DIR")]
    pub out: PathBuf,
    /// Write the campaign summary as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the campaign summary as a page: per scenario runs, failures, fault kinds seen,
    /// seeds/s, each failure with its replay command.
    #[arg(long, value_name = "FILE.html")]
    pub html: Option<PathBuf>,
    /// Run with a planted bug (`eddy list --bugs`); reports how many seeds catching it took.
    #[arg(long, value_name = "NAME")]
    pub bug: Option<Bug>,
    /// Which oracles judge each run: the scenario's hand-written reference, the differential
    /// oracle (the same pipeline's batch run), or both.
    #[arg(long, default_value = "both", value_name = "ORACLE")]
    pub oracle: Oracle,
    /// Where the two-phase-commit sinks keep a checkpoint's transaction: `staged` in their
    /// snapshot, or `postgres-model`, prepared in a model of PostgreSQL into which the
    /// database faults (failed prepare, lost commit reply, database restart) are injected.
    /// Default: every fourth seed (seed mod 4 = 3) postgres-model, the others staged, so that
    /// a default campaign reaches the database's edges; with `--bug`, staged, but
    /// postgres-model for `commit-prepared-of-later-checkpoint`.
    #[arg(long, value_name = "SINK")]
    pub sink: Option<SinkModel>,
    /// Bound every channel to N messages: a task whose output channel is full waits
    /// (backpressure, as Flink's credit-based flow control), so sources cannot run far ahead
    /// of a barrier. Unbounded if not given. Failure files and shrunk cases record it.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub channel_capacity: Option<u32>,
    /// Print, per scenario, how many runs reached each moment that matters (a crash
    /// mid-alignment, a restore at another parallelism (`rescale`), a record on a `boundary`,
    /// ...), and the moments no run reached (docs/testing.md).
    #[arg(long)]
    pub coverage: bool,
    /// Spend the second half of each scenario's seeds on the fault kinds of the moments the
    /// first half never reached, and report what that reached which an unaimed campaign of the
    /// same size did not.
    #[arg(long)]
    pub aim: bool,
    /// Stop at the first failing run.
    #[arg(long)]
    pub fail_fast: bool,
    /// Simulated runs at once, on this many threads (each run stays single-threaded and
    /// deterministic; results are reported in seed order); all cores if not given.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// A failure file written by `eddy explore`.
    #[arg(value_name = "FILE.json", conflicts_with_all = ["scenario", "seed"])]
    pub file: Option<PathBuf>,
    #[arg(long, value_name = "NAME", requires = "seed")]
    pub scenario: Option<String>,
    #[arg(long, value_name = "S", requires = "scenario")]
    pub seed: Option<u64>,
    #[arg(long, default_value = "swarm", value_name = "PROFILE")]
    pub faults: Profile,
    #[arg(long, value_name = "N")]
    pub events: Option<usize>,
    /// Write every step of the run as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Draw the run as a self-contained HTML page: a lane per task, checkpoints, faults,
    /// restores, the violation's records and commit highlighted.
    #[arg(long, value_name = "FILE.html")]
    pub timeline: Option<PathBuf>,
    /// Run twice and fail if the trace hashes differ.
    #[arg(long)]
    pub check_determinism: bool,
    /// Run with a planted bug.
    #[arg(long, value_name = "NAME")]
    pub bug: Option<Bug>,
    /// Which oracles judge the run: reference, differential or both (default: the file's, or both).
    #[arg(long, value_name = "ORACLE")]
    pub oracle: Option<Oracle>,
    /// Fault kinds on besides the profile's, comma-separated (what `explore --aim` added).
    #[arg(long = "with", value_name = "KIND,...", value_delimiter = ',')]
    pub with: Vec<FaultKind>,
    /// Where the sinks keep their transactions: staged or postgres-model (default: the
    /// file's, or staged).
    #[arg(long, value_name = "SINK")]
    pub sink: Option<SinkModel>,
    /// Bound every channel to N messages (default: the file's, or unbounded).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub channel_capacity: Option<u32>,
}

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
