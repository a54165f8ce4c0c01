//! Scenarios: a pipeline, a seeded input generator and an independent check, run by the
//! simulator under a fault profile.
//!
//! Write a [`Workload`] (typed: events, sinks, reference check); every workload is a
//! [`Scenario`] (erased: what the CLI lists and runs).

use std::panic::{catch_unwind, AssertUnwindSafe};

use eddy_engine::bugs::{self, Bug};
use eddy_engine::{Data, JobGraph, Log, Record};
use rand_chacha::ChaCha8Rng;

use crate::faults::Profile;
use crate::input;
use crate::report::{Report, Violation};
use crate::seed::{rng, Concern};
use crate::simulator::{simulate, SimOptions};
use crate::trace::{Trace, TraceEvent};

/// How to run one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    pub seed: u64,
    pub profile: Profile,
    /// Events to generate; the scenario's default if `None`.
    pub events: Option<usize>,
    /// Keep every trace entry (for `--trace FILE`), not only the hash.
    pub keep_trace: bool,
    /// Run the seed a second time and require the same trace hash (the determinism check).
    pub check_determinism: bool,
    /// A planted bug to run with (needs the `planted-bugs` feature).
    pub bug: Option<Bug>,
}

impl RunConfig {
    pub fn new(seed: u64, profile: Profile) -> Self {
        RunConfig {
            seed,
            profile,
            events: None,
            keep_trace: false,
            check_determinism: false,
            bug: None,
        }
    }
}

pub struct Run {
    pub report: Report,
    pub trace: Trace,
}

/// A named, runnable scenario.
pub trait Scenario: Send + Sync {
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn run(&self, config: &RunConfig) -> Run;
}

/// What a workload's check found in the committed output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    pub events_out: u64,
    pub late: u64,
    /// A digest of the committed output in commit order; part of the trace hash.
    pub digest: u64,
    pub violation: Option<Violation>,
}

/// A scenario in typed form.
pub trait Workload: Send + Sync {
    type Event: Data;
    /// Handles to the sinks the check reads (commit logs).
    type Sinks;

    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// The pipeline's out-of-orderness bound `B` (input faults are relative to it).
    fn out_of_orderness_ms(&self) -> i64;
    fn default_events(&self) -> usize;
    fn partitions(&self) -> usize {
        4
    }
    /// `events` events in timestamp order, from the seed's input stream only.
    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>>;
    fn build(&self, log: Log<Self::Event>) -> (JobGraph, Self::Sinks);
    /// Compares the committed output with a reference computed from `input` (the whole log,
    /// duplicates included), independently of the engine.
    fn check(&self, input: &[Record<Self::Event>], sinks: &Self::Sinks) -> Checked;
}

/// Steps before a run counts as not terminating (liveness).
const STEPS_PER_EVENT: u64 = 200;

impl<W: Workload> Scenario for W {
    fn name(&self) -> &'static str {
        Workload::name(self)
    }

    fn description(&self) -> &'static str {
        Workload::description(self)
    }

    fn run(&self, config: &RunConfig) -> Run {
        let run = run_once(self, config);
        if config.check_determinism && run.report.passed {
            let again = run_once(self, config);
            if again.report.trace_hash != run.report.trace_hash {
                let mut report = run.report;
                report.passed = false;
                report.violation = Some(Violation::new(
                    "determinism",
                    format!(
                        "the same seed gave trace-hash {} then {}",
                        report.trace_hash, again.report.trace_hash
                    ),
                ));
                return Run {
                    report,
                    trace: run.trace,
                };
            }
        }
        run
    }
}

fn run_once<W: Workload>(this: &W, config: &RunConfig) -> Run {
    let faults = config.profile.faults(config.seed);
    let events = config.events.unwrap_or_else(|| this.default_events());
    let generated = this.generate(events, &mut rng(config.seed, Concern::Input));
    let generated_len = generated.len();
    let log = input::inject(
        generated,
        this.out_of_orderness_ms(),
        &faults,
        &mut rng(config.seed, Concern::InputFaults),
    );
    let duplicates = log.len().saturating_sub(generated_len) as u64;
    let (graph, sinks) = this.build(Log::round_robin(log.clone(), this.partitions()));
    let options = SimOptions {
        seed: config.seed,
        faults: faults.clone(),
        keep_trace: config.keep_trace,
        max_steps: 10_000 + STEPS_PER_EVENT * log.len() as u64,
    };
    // A panic inside the engine is a bug in eddy: report it as a failed run.
    let planted = bugs::plant(config.bug);
    let outcome = catch_unwind(AssertUnwindSafe(|| simulate(&graph, &options)));
    drop(planted);
    let (stats, mut trace, mut violation, state_entries) = match outcome {
        Ok(outcome) => (outcome.stats, outcome.trace, outcome.violation, outcome.state_entries),
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into());
            (
                Default::default(),
                Trace::new(false),
                Some(Violation::new("panic", message)),
                0,
            )
        }
    };
    let checked = if violation.is_none() {
        this.check(&log, &sinks)
    } else {
        Checked::default()
    };
    violation = violation.or(checked.violation.clone());
    if violation.is_none() && state_entries > 0 {
        violation = Some(Violation::new(
            "bounded-state",
            format!("{state_entries} state entries (window panes, keys, timers) are left after the end of input"),
        ));
    }
    trace.record(TraceEvent::Output { digest: checked.digest });
    let report = Report {
        scenario: this.name().to_string(),
        seed: config.seed,
        profile: config.profile.name().to_string(),
        bug: config.bug.map(|b| b.name().to_string()),
        faults: faults.names().into_iter().map(String::from).collect(),
        passed: violation.is_none(),
        steps: stats.steps,
        virtual_duration_ms: stats.virtual_duration_ms,
        events_in: log.len() as u64,
        events_out: checked.events_out,
        late: checked.late,
        duplicates,
        checkpoints_started: stats.checkpoints_started,
        checkpoints_completed: stats.checkpoints_completed,
        restores: stats.restores,
        crashes: stats.crashes,
        trace_hash: format!("{:016x}", trace.hash()),
        violation,
    };
    Run { report, trace }
}
