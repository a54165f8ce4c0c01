//! Scenarios: a pipeline, a seeded input generator and an independent check, run by the
//! simulator under a fault profile.
//!
//! Write a [`Workload`] (typed: events, sinks, reference check); every workload is a
//! [`Scenario`] (erased: what the CLI lists and runs).

use eddy_engine::testkit::bugs::Bug;
use eddy_engine::testkit::LateRecord;
use eddy_engine::{Data, JobGraph, Log, Record};
use proptest::strategy::ValueTree;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::faults::{FaultSet, Profile};
use crate::output::OutputTable;
use crate::outputs::{LiveOutputs, LiveSinks, Outputs};
use crate::report::{Report, Violation};
use crate::simulator::FaultEvent;
use crate::timeline::Timeline;
use crate::trace::Trace;
use eddy_engine::lines::{BadLine, EventSource, LineParser, LiveInput, ParseErrors};

/// How to run one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// The seed every choice of the run is drawn from.
    pub seed: u64,
    /// Which fault kinds are on.
    pub profile: Profile,
    /// Events to generate; the scenario's default if `None`.
    pub events: Option<usize>,
    /// Keep every trace entry (for `--trace FILE`), not only the hash.
    pub keep_trace: bool,
    /// Run the seed a second time and require the same trace hash (the determinism check).
    pub check_determinism: bool,
    /// A planted bug to run with (needs the `planted-bugs` feature).
    pub bug: Option<Bug>,
    /// Which oracles judge the run.
    pub oracle: Oracle,
    /// Fault kinds on in addition to the profile's (what `explore --aim` adds).
    pub aim: FaultSet,
    /// Where the two-phase-commit sinks keep their transactions.
    pub sink: SinkModel,
    /// Messages each channel holds before its sender waits (backpressure,
    /// `SimOptions::channel_capacity`); unbounded if `None`.
    pub channel_capacity: Option<usize>,
    /// Whether the differential oracle judges the run (on by default). The determinism
    /// check's second run of a passing seed turns it off: it compares trace hashes, and the
    /// hand-written check still runs there, its digest of the outputs being in the trace.
    pub differential_judges: bool,
}

/// Where a simulated run's two-phase-commit sinks keep a checkpoint's transaction until it
/// completes: staged in the sink's snapshot (the default), or prepared in a model of
/// PostgreSQL (`PREPARE TRANSACTION`, `eddy_engine::prepared`), into which the database
/// fault kinds are injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SinkModel {
    /// Staged in the sink's snapshot, committed once the checkpoint completes.
    #[default]
    Staged,
    /// Prepared in the model of PostgreSQL at the barrier, committed once the checkpoint completes.
    PostgresModel,
}

impl SinkModel {
    /// Every sink model.
    pub const ALL: [SinkModel; 2] = [SinkModel::Staged, SinkModel::PostgresModel];

    /// The sink a run with `bug` planted uses unless told: the database model for the bug of
    /// the database sink's recovery (it has no code path in a staged sink), else staged.
    pub fn for_bug(bug: Option<Bug>) -> SinkModel {
        match bug {
            Some(Bug::CommitPreparedOfLaterCheckpoint) => SinkModel::PostgresModel,
            _ => SinkModel::Staged,
        }
    }

    /// The sink of seed `seed` in a campaign not told which (`eddy explore` without
    /// `--sink`): every fourth seed prepares in the database model, so that a default
    /// campaign reaches the database's edges (a commit retried across a lost answer), the
    /// others stage; a planted bug keeps [`SinkModel::for_bug`]'s.
    pub fn for_seed(bug: Option<Bug>, seed: u64) -> SinkModel {
        match bug {
            Some(_) => SinkModel::for_bug(bug),
            None if seed % 4 == 3 => SinkModel::PostgresModel,
            None => SinkModel::Staged,
        }
    }

    /// The model's name, as the CLI and cases spell it.
    pub fn name(self) -> &'static str {
        match self {
            SinkModel::Staged => "staged",
            SinkModel::PostgresModel => "postgres-model",
        }
    }
}

impl std::fmt::Display for SinkModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for SinkModel {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SinkModel::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| format!("unknown sink `{name}`: expected one of staged, postgres-model"))
    }
}

/// Which oracles judge a run: the scenario's hand-written reference, the differential
/// oracle (the same pipeline's batch run, `differential`), or both. A workload without a
/// hand-written reference is always judged differentially.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Oracle {
    /// The scenario's hand-written reference alone.
    Reference,
    /// The differential oracle alone: the same pipeline's batch run.
    Differential,
    /// The hand-written reference and the differential oracle.
    #[default]
    Both,
}

impl Oracle {
    /// Every choice of oracles.
    pub const ALL: [Oracle; 3] = [Oracle::Reference, Oracle::Differential, Oracle::Both];

    /// The choice's name, as the CLI and cases spell it.
    pub fn name(self) -> &'static str {
        match self {
            Oracle::Reference => "reference",
            Oracle::Differential => "differential",
            Oracle::Both => "both",
        }
    }
}

impl std::fmt::Display for Oracle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Oracle {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Oracle::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| format!("unknown oracle `{name}`: expected one of reference, differential, both"))
    }
}

impl RunConfig {
    /// Seed `seed` under `profile`, everything else as by default.
    pub fn new(seed: u64, profile: Profile) -> Self {
        RunConfig {
            seed,
            profile,
            events: None,
            keep_trace: false,
            check_determinism: false,
            bug: None,
            oracle: Oracle::default(),
            aim: FaultSet::default(),
            sink: SinkModel::default(),
            channel_capacity: None,
            differential_judges: true,
        }
    }
}

/// One simulated run: its report and its trace.
pub struct Run {
    /// What the run did, and its verdict.
    pub report: Report,
    /// The run's trace (every entry with `keep_trace`, else the hash only).
    pub trace: Trace,
    /// With `keep_trace`: the run lane by task, the violation highlighted.
    pub timeline: Option<Timeline>,
}

/// A run as data: the exact input log and fault schedule (what `eddy shrink` writes and
/// `eddy replay` reads). The seed still drives scheduling and checkpoint timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// The scenario's name.
    pub scenario: String,
    /// The seed: it drives scheduling and checkpoint timing.
    pub seed: u64,
    /// The profile the case came from (its `channel-delay` still applies).
    pub profile: String,
    /// The planted bug, by name.
    pub bug: Option<String>,
    /// The property the case fails, if it was recorded from a failure.
    pub property: Option<String>,
    /// The input log: `{"ts": .., "value": ..}` records of the scenario's event type.
    pub input: Vec<serde_json::Value>,
    /// The faults to inject, in order.
    pub faults: Vec<FaultEvent>,
    /// The steps at which checkpoints are triggered (a schedule, not faults).
    #[serde(default)]
    pub checkpoints: Vec<u64>,
    /// At most this many records per source read (drawn from the seed if absent).
    #[serde(default)]
    pub poll_max: Option<usize>,
    /// The oracles that judge the case (`both` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<String>,
    /// Where the sinks keep their transactions (`staged` if absent, [`SinkModel`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// Messages each channel holds before its sender waits (unbounded if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_capacity: Option<usize>,
}

/// Why a case cannot run: an input record or a fault that does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CaseError {
    /// An input record does not parse as the scenario's event type.
    #[error("input record {index}: {reason}")]
    Input {
        /// The record's index in the input.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A fault no run could have injected.
    #[error("fault {index}: {reason}")]
    Fault {
        /// The fault's index in the case.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// The largest processing-time jump a case may prescribe (a day), so that no run of any
/// length can overflow the virtual clock.
pub const MAX_JUMP_MS: i64 = 86_400_000;

/// Rejects faults no run could have injected: a jump must move the clock ahead, by at most
/// [`MAX_JUMP_MS`] (found by the `failure_file_decode` fuzz target: `i64::MAX` overflowed).
pub(crate) fn check_faults(faults: &[FaultEvent]) -> Result<(), CaseError> {
    for (index, fault) in faults.iter().enumerate() {
        if let FaultEvent::Jump { ms, .. } = fault {
            if !(1..=MAX_JUMP_MS).contains(ms) {
                return Err(CaseError::Fault {
                    index,
                    reason: format!("a processing-time jump of {ms} ms; it must be 1 to {MAX_JUMP_MS} ms"),
                });
            }
        }
    }
    Ok(())
}

/// A named, runnable scenario.
pub trait Scenario: Send + Sync {
    /// The scenario's name (the CLI's and the cases').
    fn name(&self) -> &'static str;
    /// What the scenario runs, in one line.
    fn description(&self) -> &'static str;
    /// How many partitions the input log is spread over, round-robin (the shrinker drops
    /// whole rounds of records so that the others keep their partitions).
    fn partitions(&self) -> usize {
        1
    }
    /// Runs one seed as `config` says.
    fn run(&self, config: &RunConfig) -> Run;
    /// Runs `config` and returns it as an explicit case too (its input and injected faults).
    fn record_case(&self, config: &RunConfig) -> (Run, Case);
    /// Runs an explicit case (`config` gives the seed, profile, bug and determinism check).
    fn run_case(&self, config: &RunConfig, case: &Case) -> Result<Run, CaseError>;
    /// Runs the seed's input and faults with every scheduling, fault and checkpoint choice
    /// read from `tape` ([`Tape`](crate::Tape)) instead of the seed (what the `sim_tape` fuzz target does).
    fn run_tape(&self, config: &RunConfig, tape: &[u8]) -> Run;
    /// The seed's events (no faults) as JSON lines of the scenario's event type.
    fn generate_lines(&self, seed: u64, events: Option<usize>) -> Vec<String>;
    /// Runs the pipeline once in batch mode, without faults, over JSON-lines input, and
    /// returns its results as JSON lines in canonical order, and the input lines skipped
    /// because they do not parse (with [`ParseErrors::Skip`]; else the first is the error).
    fn run_lines(&self, input: &[String], errors: ParseErrors) -> Result<LinesRun, CaseError>;
    /// The pipeline over `input` (partitioned as [`Scenario::run_lines`] does) as a live
    /// run builds it: the same graph as every run's, each output's changes going to
    /// `sinks` as changelog lines ([`Outputs::live`]); and the lines of [`LiveInput::Lines`]
    /// skipped because they do not parse (a followed input reports its own to its feed).
    fn live_graph(
        &self,
        input: LiveInput,
        errors: ParseErrors,
        sinks: LiveSinks,
    ) -> Result<(JobGraph, Vec<BadLine>), CaseError>;
    /// Its outputs' names and the database table of the one that declares one
    /// ([`Outputs::live_outputs`]), for a live run into PostgreSQL.
    fn live_outputs(&self) -> LiveOutputs;
    /// The engine features its pipeline uses ([`eddy_engine::Feature`]): what
    /// `eddy explore --coverage` lists.
    fn features(&self) -> std::collections::BTreeSet<eddy_engine::Feature>;
    /// The names of the properties a user stated of the pipeline
    /// ([`Workload::property_names`]).
    fn property_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// For an input drawn from a proptest strategy ([`Workload::input_tree`]): shrinks the
    /// seed's input through the strategy's value tree, each simpler input run with the
    /// seed's faults, and returns the case of the simplest that `still_fails`.
    fn shrink_through_input(&self, _config: &RunConfig, _still_fails: &mut dyn FnMut(&Case) -> bool) -> Option<Case> {
        None
    }
    /// Whether the shrinker may rewrite field values and timestamps of the input
    /// ([`Workload::shrinks_values`]).
    fn shrinks_values(&self) -> bool {
        true
    }
    /// Simpler values of one input event (a case record's `value`), to try in its place.
    fn simpler_values(&self, _value: &serde_json::Value) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

/// What a workload's check found in the committed output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Committed results.
    pub events_out: u64,
    /// Records on committed late outputs.
    pub late: u64,
    /// A digest of the committed output in commit order; part of the trace hash.
    pub digest: u64,
    /// The first property the output violates, if any.
    pub violation: Option<Violation>,
}

/// What the checked run recorded that depends on its schedule, for a reference to read
/// instead of accepting whatever the input makes possible: the records the committed
/// execution sent to late outputs, and those a window operator accepted behind the
/// watermark, each with the operator's watermark at that moment, in the order they came.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recorded<'a> {
    /// Every record the committed execution sent to a late output or accepted behind the
    /// watermark, in the order they came.
    pub late: &'a [LateRecord],
}

impl Recorded<'_> {
    /// The records a window operator accepted behind its watermark (a session record that
    /// may touch a session already cleared), in arrival order: `(ts, value's encoding,
    /// watermark)` ([`eddy_engine::encode_value`]).
    pub fn behind(&self) -> impl Iterator<Item = (i64, &[u8], i64)> {
        self.tapped(true)
    }

    /// The records sent to late outputs with the watermark that made them late.
    pub fn late(&self) -> impl Iterator<Item = (i64, &[u8], i64)> {
        self.tapped(false)
    }

    fn tapped(&self, behind: bool) -> impl Iterator<Item = (i64, &[u8], i64)> {
        self.late
            .iter()
            .filter(move |r| r.behind == behind)
            .map(|r| (r.ts, r.value.as_slice(), r.watermark))
    }
}

/// A scenario in typed form.
pub trait Workload: Send + Sync {
    /// The type of the input events.
    type Event: Data;

    /// The scenario's name (the CLI's and the cases').
    fn name(&self) -> &'static str;
    /// What the scenario runs, in one line.
    fn description(&self) -> &'static str;
    /// The pipeline's out-of-orderness bound `B` (input faults are relative to it).
    fn out_of_orderness_ms(&self) -> i64;
    /// How many events a seed generates unless told.
    fn default_events(&self) -> usize;
    /// How many partitions the input log is spread over, round-robin.
    fn partitions(&self) -> usize {
        4
    }
    /// `events` events in timestamp order, from the seed's input stream only.
    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>>;
    /// The pipeline over `source`, once for every driver: the simulator, a batch run and a
    /// live run. Its outputs are declared in `outputs`, whose sinks the driver chose
    /// ([`Outputs`]).
    fn build(&self, source: EventSource<Self::Event>, outputs: &mut Outputs) -> JobGraph;
    /// Compares the committed output (`outputs`' commit logs, [`Outputs::log`]) with a
    /// reference computed from `input` (the whole log, duplicates included), independently
    /// of the engine.
    fn check(&self, input: &[Record<Self::Event>], recorded: &Recorded, outputs: &Outputs) -> Checked;
    /// Whether [`Workload::check`] compares with a hand-written reference (a
    /// [`Differential`](crate::differential::Differential) has none: only the differential
    /// oracle judges it).
    fn has_reference(&self) -> bool {
        true
    }
    /// The names of the properties a user stated of the pipeline
    /// ([`Differential::property`](crate::differential::Differential::property)): without
    /// a hand-written reference, [`Workload::check`] judges them, under either oracle.
    fn property_names(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The seed's input as a proptest value tree, for a workload whose input a strategy
    /// draws: its `current()` is what [`Workload::generate`] returns for the same `rng`, and
    /// the shrinker simplifies through it, so that every input it tries is one the strategy
    /// can make. `None` (the default): the input is not shrunk through a strategy.
    fn input_tree(&self, _events: usize, _rng: &mut ChaCha8Rng) -> Option<InputTree<Self::Event>> {
        None
    }
    /// Whether the shrinker may renumber the input's integer fields by rank and move its
    /// timestamps by whole hours (true: a hand-written reference takes any value). A user's
    /// generator may never make such values, so a pipeline checked against its own batch
    /// run says false, and shrinks by dropping records and faults, by its strategy, or by
    /// [`Workload::simpler_values`].
    fn shrinks_values(&self) -> bool {
        true
    }
    /// Simpler events to try in place of `event` while shrinking (a user's shrink function).
    fn simpler_values(&self, _event: &Self::Event) -> Vec<Self::Event> {
        Vec::new()
    }
    /// The outputs the differential oracle compares with the batch run's: by default every
    /// declared output (late outputs are checked by their own rules). `input` is the whole
    /// log (a workload may leave out rows no batch run can decide).
    fn judged_outputs(&self, _input: &[Record<Self::Event>], outputs: &Outputs) -> Vec<OutputTable> {
        outputs.tables().to_vec()
    }
    /// How one input line (what `eddy run --input` and `--follow` read) becomes an event: by
    /// default `{"ts": .., "value": ..}` of the event type; a change-data-capture scenario
    /// reads Debezium envelopes instead.
    fn line_parser(&self) -> LineParser<Self::Event> {
        parse_record_line
    }
    /// The line [`Workload::line_parser`] reads back into `record` (a line of
    /// [`Scenario::generate_lines`]).
    fn event_line(&self, record: &Record<Self::Event>) -> String {
        serde_json::to_string(record).expect("events serialise")
    }
    /// Whether two events must keep their order in the log (a change-data-capture source
    /// keeps each row's changes in order): input faults then reorder only across keys.
    fn keep_order(&self, _a: &Self::Event, _b: &Self::Event) -> bool {
        false
    }
    /// At most how many state entries may stay after the end of input (the bounded-state
    /// check), from the reference: the live rows of a versioned table (a temporal join keeps
    /// each key's current version, docs/semantics.md). Windows, timers and dedup leave none.
    fn live_state_entries(&self, _input: &[Record<Self::Event>], _outputs: &Outputs) -> usize {
        0
    }
}

/// The default [`LineParser`]: a record as JSON, `{"ts": .., "value": ..}`.
pub fn parse_record_line<E: Data>(line: &str) -> Result<Option<Record<E>>, String> {
    serde_json::from_str(line).map(Some).map_err(|e| e.to_string())
}

/// A batch run over input lines ([`Scenario::run_lines`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinesRun {
    /// The results, as JSON lines in canonical order.
    pub output: Vec<String>,
    /// The input lines skipped because they do not parse ([`ParseErrors::Skip`]).
    pub skipped: Vec<BadLine>,
}

/// Input lines of the workload ([`Workload::line_parser`]), spread over its partitions
/// round-robin, and those skipped.
pub(crate) fn parse_lines<W: Workload>(
    workload: &W,
    input: &[String],
    errors: ParseErrors,
) -> Result<(Log<W::Event>, Vec<BadLine>), CaseError> {
    let (records, skipped) = eddy_engine::lines::parse_lines(input, workload.line_parser(), errors)
        .map_err(|BadLine { index, reason }| CaseError::Input { index, reason })?;
    Ok((Log::round_robin(records, workload.partitions()), skipped))
}

/// A seed's input as a proptest value tree ([`Workload::input_tree`]).
pub type InputTree<E> = Box<dyn ValueTree<Value = Vec<Record<E>>>>;
