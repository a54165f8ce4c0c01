//! Checking a pipeline from a user's own `cargo test`, the way proptest checks a function.
//!
//! ```
//! # use eddy_sim::{check, CheckConfig, Profile, Scenario, Run, RunConfig};
//! # struct MyScenario;
//! # impl Scenario for MyScenario {
//! #     fn name(&self) -> &'static str { "mine" }
//! #     fn description(&self) -> &'static str { "" }
//! #     fn run(&self, _: &RunConfig) -> Run { unimplemented!() }
//! #     fn record_case(&self, _: &RunConfig) -> (Run, eddy_sim::Case) { unimplemented!() }
//! #     fn run_case(&self, _: &RunConfig, _: &eddy_sim::Case) -> Result<Run, eddy_sim::CaseError> { unimplemented!() }
//! #     fn run_tape(&self, _: &RunConfig, _: &[u8]) -> Run { unimplemented!() }
//! #     fn generate_lines(&self, _: u64, _: Option<usize>) -> Vec<String> { unimplemented!() }
//! #     fn run_lines(&self, _: &[String], _: eddy_sim::ParseErrors) -> Result<eddy_sim::LinesRun, eddy_sim::CaseError> { unimplemented!() }
//! #     fn live_graph(&self, _: eddy_sim::LiveInput, _: eddy_sim::ParseErrors, _: eddy_sim::LiveSinks) -> Result<(eddy_engine::JobGraph, Vec<eddy_sim::BadLine>), eddy_sim::CaseError> { unimplemented!() }
//! #     fn live_outputs(&self) -> eddy_sim::LiveOutputs { unimplemented!() }
//! #     fn features(&self) -> std::collections::BTreeSet<eddy_engine::Feature> { unimplemented!() }
//! # }
//! // In your tests, under #[test]:
//! fn my_pipeline_is_exactly_once() {
//!     check(&MyScenario, CheckConfig { seeds: 64, profile: Profile::All, ..CheckConfig::default() });
//! }
//! ```
//!
//! First the cases saved by earlier failures run (`eddy-regressions/TEST.json` beside the
//! test file, one case a line, as proptest keeps `proptest-regressions/`), then the seeds. A
//! failing seed shrinks (30 s by default) to an explicit case of input and faults, which is
//! saved there and printed with the command that replays the seed. `EDDY_SEED=S` runs only
//! seed `S`; `EDDY_SEEDS=N` runs `N` seeds; `EDDY_SHRINK_SECONDS=T` bounds shrinking.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::faults::Profile;
use crate::scenario::{Case, CaseError, Oracle, Run, RunConfig, Scenario, SinkModel};
use crate::shrink::{shrink_until, DETERMINISM_TRIES};

/// How [`check`] runs a scenario: which seeds, under which faults, judged how.
#[derive(Clone, Debug)]
pub struct CheckConfig {
    /// How many seeds run (`EDDY_SEEDS` overrides it).
    pub seeds: u64,
    /// The first seed.
    pub start_seed: u64,
    /// The faults the seeds run under.
    pub profile: Profile,
    /// Events each seed generates; the scenario's default if `None`.
    pub events: Option<usize>,
    /// Run each seed twice and require the same trace hash.
    pub check_determinism: bool,
    /// Which oracles judge each run.
    pub oracle: Oracle,
    /// How long a failing case may shrink.
    pub shrink_time: Duration,
    /// Where failing cases are saved, and replayed from first.
    pub regressions: Regressions,
    /// Messages each channel holds before its sender waits (backpressure,
    /// `SimOptions::channel_capacity`); unbounded if `None`.
    pub channel_capacity: Option<usize>,
    /// Where the two-phase-commit sinks keep a checkpoint's transaction: staged in their
    /// snapshot (the default), or prepared in the model of PostgreSQL, into which the database
    /// faults are injected (a failed prepare, a lost commit answer, a restart).
    pub sink: SinkModel,
}

/// Where failing cases are saved, and replayed from before the seeds run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Regressions {
    /// `eddy-regressions/` beside the calling test's file.
    BesideTest,
    /// This folder.
    In(PathBuf),
    /// Neither saved nor replayed.
    Off,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            seeds: 32,
            start_seed: 0,
            profile: Profile::Swarm,
            events: None,
            check_determinism: false,
            oracle: Oracle::default(),
            shrink_time: Duration::from_secs(30),
            regressions: Regressions::BesideTest,
            channel_capacity: None,
            sink: SinkModel::Staged,
        }
    }
}

fn env(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// The running test's name (libtest names each test's thread after it), else `fallback`.
fn test_name(fallback: &str) -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => fallback.to_string(),
    }
}

/// The folder of the calling test's source file: `file!()` paths are relative to the
/// workspace root, tests run in their package's folder, so leading parts are dropped until
/// the file is found.
fn beside(caller: &Path) -> PathBuf {
    let mut candidate = caller;
    loop {
        if candidate.is_file() {
            return candidate.parent().map(Path::to_path_buf).unwrap_or_default();
        }
        let mut parts = candidate.components();
        if parts.next().is_none() || parts.as_path().as_os_str().is_empty() {
            return PathBuf::new();
        }
        candidate = parts.as_path();
    }
}

/// Runs the saved cases and the seeds; panics with the first failing report, its shrunk case
/// and how to replay it.
#[track_caller]
pub fn check(scenario: &dyn Scenario, config: CheckConfig) {
    let test = test_name(scenario.name());
    let file = match &config.regressions {
        Regressions::BesideTest => Some(
            beside(Path::new(std::panic::Location::caller().file()))
                .join("eddy-regressions")
                .join(format!("{}.json", test.replace("::", "-"))),
        ),
        Regressions::In(dir) => Some(dir.join(format!("{}.json", test.replace("::", "-")))),
        Regressions::Off => None,
    };
    assert!(
        config.channel_capacity != Some(0),
        "CheckConfig::channel_capacity is 0: a channel holds at least one message"
    );
    let run_config = RunConfig {
        events: config.events,
        check_determinism: config.check_determinism,
        oracle: config.oracle,
        channel_capacity: config.channel_capacity,
        sink: config.sink,
        ..RunConfig::new(0, config.profile)
    };
    let mut saved = 0;
    if let Some(file) = &file {
        for (line, case) in saved_cases(file) {
            saved += 1;
            // A saved case runs as it was found: its bound, sink and oracles.
            let case_config =
                saved_config(&run_config, &case).unwrap_or_else(|reason| panic!("{}:{line}: {reason}", file.display()));
            let failed = replay_failure(scenario, &case_config, &case).unwrap_or_else(|e| {
                panic!(
                    "{}:{line}: the saved case does not fit the pipeline: {e}",
                    file.display()
                )
            });
            if let Some(run) = failed {
                panic!(
                    "{}\n\nthe case saved in {}:{line} fails again.\nreplay: cargo test {test}",
                    run.report,
                    file.display()
                );
            }
        }
    }
    let seeds: Vec<u64> = match env("EDDY_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env("EDDY_SEEDS").unwrap_or(config.seeds);
            (config.start_seed..config.start_seed + count).collect()
        }
    };
    let mut passed = Passed::default();
    for &seed in &seeds {
        let run_config = RunConfig {
            seed,
            ..run_config.clone()
        };
        let report = scenario.run(&run_config).report;
        let Some(violation) = report.violation.clone() else {
            passed.add(&report);
            continue;
        };
        let replay = format!("replay: EDDY_SEED={seed} cargo test {test}");
        if violation.property == "unsupported" {
            panic!(
                "{report}\n\nthe differential check cannot judge this pipeline: {}",
                violation.message
            );
        }
        let shrink_time = env("EDDY_SHRINK_SECONDS").map_or(config.shrink_time, Duration::from_secs);
        // The harness's own time limit, on the test's clock: the runs it bounds stay
        // deterministic.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let (_, case) = scenario.record_case(&run_config);
        let shrunk = shrink_until(scenario, &run_config, case, &violation.property, &|_| {
            started.elapsed() > shrink_time
        });
        let case_line = serde_json::to_string(&shrunk.case).expect("cases serialise");
        let shrunk_verdict = shrunk_verdict(scenario, &run_config, &shrunk.case);
        let saved = match &file {
            Some(file) => match save_case(file, &case_line) {
                Ok(()) => format!(
                    "saved to {}: every later run of this test replays it first",
                    file.display()
                ),
                Err(e) => format!("could not save it to {}: {e}", file.display()),
            },
            None => "not saved (regressions are off)".to_string(),
        };
        panic!(
            "{report}\n\nshrunk to {} events and {} faults (from {} and {}, {} runs{}):\n{case_line}\n{shrunk_verdict}\n{saved}\n{replay}",
            shrunk.case.input.len(),
            shrunk.case.faults.len(),
            shrunk.events_before,
            shrunk.faults_before,
            shrunk.runs,
            if shrunk.fixpoint {
                ""
            } else {
                "; stopped by EDDY_SHRINK_SECONDS before a fixpoint, it may shrink further"
            }
        );
    }
    println!(
        "{}",
        passed.summary(&test, &run_config, saved, &scenario.property_names())
    );
}

/// The shrunk case's own verdict, from a run of it: its message names its own records,
/// which the original's may not have.
fn shrunk_verdict(scenario: &dyn Scenario, config: &RunConfig, case: &Case) -> String {
    match replay_failure(scenario, config, case) {
        Ok(Some(run)) => {
            let v = run.report.violation.expect("a failing run has its violation");
            format!("the shrunk case: FAIL {}: {}", v.property, v.message)
        }
        Ok(None) => "the shrunk case passed when run again".to_string(),
        Err(e) => format!("the shrunk case does not run: {e}"),
    }
}

/// Runs `case` until it fails: once, or up to `DETERMINISM_TRIES` times for a determinism
/// failure, which shows only in some runs. The first failing run, if any.
fn replay_failure(scenario: &dyn Scenario, config: &RunConfig, case: &Case) -> Result<Option<Run>, CaseError> {
    let tries = if case.property.as_deref() == Some("determinism") {
        DETERMINISM_TRIES
    } else {
        1
    };
    for _ in 0..tries {
        let run = scenario.run_case(config, case)?;
        if !run.report.passed {
            return Ok(Some(run));
        }
    }
    Ok(None)
}

/// What the passing seeds of a check went through, for its one-line summary.
#[derive(Default)]
struct Passed {
    seeds: u64,
    crashes: u64,
    restores: u64,
    checkpoints: u64,
    late: u64,
}

impl Passed {
    fn add(&mut self, report: &crate::report::Report) {
        self.seeds += 1;
        self.crashes += report.crashes;
        self.restores += report.restores;
        self.checkpoints += report.checkpoints_completed;
        self.late += report.late;
    }

    /// `eddy check NAME: 64 seeds passed (swarm faults): ...`: what ran, and what held.
    fn summary(&self, test: &str, config: &RunConfig, saved: usize, properties: &[&str]) -> String {
        let mut held = vec!["exactly-once", "conservation", "lateness", "bounded-state"];
        if config.check_determinism {
            held.push("determinism");
        }
        held.extend(properties);
        format!(
            "eddy check {test}: {} seeds passed ({} faults{}), {saved} saved case(s) replayed: \
             {} crashes, {} restores, {} checkpoints completed, {} late records; held: {}",
            self.seeds,
            config.profile.name(),
            match config.sink {
                SinkModel::Staged => String::new(),
                sink => format!(", {sink} sink"),
            },
            self.crashes,
            self.restores,
            self.checkpoints,
            self.late,
            held.join(", ")
        )
    }
}

/// How a saved case runs: as `config` (the check's), with the case's seed, and the profile,
/// channel bound, sink and oracles it records.
fn saved_config(config: &RunConfig, case: &Case) -> Result<RunConfig, String> {
    if case.channel_capacity == Some(0) {
        return Err("the saved case's channel_capacity is 0: a channel holds at least one message".to_string());
    }
    Ok(RunConfig {
        seed: case.seed,
        profile: case.profile.parse().unwrap_or(config.profile),
        channel_capacity: case.channel_capacity,
        sink: case.sink.as_deref().map_or(Ok(SinkModel::Staged), str::parse)?,
        oracle: case.oracle.as_deref().map_or(Ok(Oracle::default()), str::parse)?,
        ..config.clone()
    })
}

/// The cases saved in `file`, with their line numbers (none if there is no file).
fn saved_cases(file: &Path) -> Vec<(usize, Case)> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(index, line)| {
            let case = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: not a saved eddy case: {e}", file.display(), index + 1));
            (index + 1, case)
        })
        .collect()
}

fn save_case(file: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let new = !file.exists();
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    if new {
        writeln!(
            out,
            "# Cases eddy's check found failing, one a line: each replays before the seeds run. Commit this file."
        )?;
    }
    writeln!(out, "{line}")
}
