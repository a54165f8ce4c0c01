//! Scenarios: a pipeline, a seeded input generator and an independent check, run by the
//! simulator under a fault profile.
//!
//! Write a [`Workload`] (typed: events, sinks, reference check); every workload is a
//! [`Scenario`] (erased: what the CLI lists and runs).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use eddy_engine::bugs::{self, Bug};
use eddy_engine::{
    Committer, Data, JobGraph, LateRecord, Log, MemoryDatabase, PreparedTransactions, Record, Stall, TaskInfo,
    TransactionId,
};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::coverage::{Moment, Moments};
use crate::decide::Tape;
use crate::differential::{judge, OutputTable};
use crate::faults::{FaultKind, FaultSet, Profile};
use crate::input::{self, Boundaries, BoundaryCounts, BoundaryKind};
use crate::live::{EventSource, LiveInput, LiveTable};
use crate::report::{Report, Violation};
use crate::seed::{rng, Concern};
use crate::shrink::DETERMINISM_TRIES;
use crate::simulator::{simulate, simulate_with, FaultEvent, SimOptions};
use crate::timeline::{first_divergence, Timeline};
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
    /// Which oracles judge the run.
    pub oracle: Oracle,
    /// Fault kinds on in addition to the profile's (what `explore --aim` adds).
    pub aim: FaultSet,
    /// Where the two-phase-commit sinks keep their transactions.
    pub sink: SinkModel,
    /// Messages each channel holds before its sender waits (backpressure,
    /// `SimOptions::channel_capacity`); unbounded if `None`.
    pub channel_capacity: Option<usize>,
}

/// Where a simulated run's two-phase-commit sinks keep a checkpoint's transaction until it
/// completes: staged in the sink's snapshot (the default), or prepared in a model of
/// PostgreSQL (`PREPARE TRANSACTION`, `eddy_engine::prepared`), into which the database
/// fault kinds are injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SinkModel {
    #[default]
    Staged,
    PostgresModel,
}

impl SinkModel {
    pub const ALL: [SinkModel; 2] = [SinkModel::Staged, SinkModel::PostgresModel];

    /// The sink a run with `bug` planted uses unless told: the database model for the bug of
    /// the database sink's recovery (it has no code path in a staged sink), else staged.
    pub fn for_bug(bug: Option<Bug>) -> SinkModel {
        match bug {
            Some(Bug::CommitPreparedOfLaterCheckpoint) => SinkModel::PostgresModel,
            _ => SinkModel::Staged,
        }
    }

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
    Reference,
    Differential,
    #[default]
    Both,
}

impl Oracle {
    pub const ALL: [Oracle; 3] = [Oracle::Reference, Oracle::Differential, Oracle::Both];

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
        }
    }
}

pub struct Run {
    pub report: Report,
    pub trace: Trace,
    /// With `keep_trace`: the run lane by task, the violation highlighted.
    pub timeline: Option<Timeline>,
}

/// A run as data: the exact input log and fault schedule (what `eddy shrink` writes and
/// `eddy replay` reads). The seed still drives scheduling and checkpoint timing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub scenario: String,
    pub seed: u64,
    /// The profile the case came from (its `channel-delay` still applies).
    pub profile: String,
    pub bug: Option<String>,
    /// The property the case fails, if it was recorded from a failure.
    pub property: Option<String>,
    /// The input log: `{"ts": .., "value": ..}` records of the scenario's event type.
    pub input: Vec<serde_json::Value>,
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("input record {index}: {reason}")]
    Input { index: usize, reason: String },
    #[error("fault {index}: {reason}")]
    Fault { index: usize, reason: String },
}

/// The largest processing-time jump a case may prescribe (a day), so that no run of any
/// length can overflow the virtual clock.
pub const MAX_JUMP_MS: i64 = 86_400_000;

/// Rejects faults no run could have injected: a jump must move the clock ahead, by at most
/// [`MAX_JUMP_MS`] (found by the `failure_file_decode` fuzz target: `i64::MAX` overflowed).
fn check_faults(faults: &[FaultEvent]) -> Result<(), CaseError> {
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
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// How many partitions the input log is spread over, round-robin (the shrinker drops
    /// whole rounds of records so that the others keep their partitions).
    fn partitions(&self) -> usize {
        1
    }
    fn run(&self, config: &RunConfig) -> Run;
    /// Runs `config` and returns it as an explicit case too (its input and injected faults).
    fn record_case(&self, config: &RunConfig) -> (Run, Case);
    /// Runs an explicit case (`config` gives the seed, profile, bug and determinism check).
    fn run_case(&self, config: &RunConfig, case: &Case) -> Result<Run, CaseError>;
    /// Runs the seed's input and faults with every scheduling, fault and checkpoint choice
    /// read from `tape` ([`Tape`]) instead of the seed (what the `sim_tape` fuzz target does).
    fn run_tape(&self, config: &RunConfig, tape: &[u8]) -> Run;
    /// The seed's events (no faults) as JSON lines of the scenario's event type.
    fn generate_lines(&self, seed: u64, events: Option<usize>) -> Vec<String>;
    /// Runs the pipeline once in batch mode, without faults, over JSON-lines input, and
    /// returns its results as JSON lines in canonical order.
    fn run_lines(&self, input: &[String]) -> Result<Vec<String>, CaseError>;
    /// Whether the scenario has a live form ([`Workload::build_live`]).
    fn supports_live(&self) -> bool {
        false
    }
    /// The live pipeline over `input` (partitioned as [`Scenario::run_lines`] does), its
    /// final result lines going to `output`; `None` if there is no live form.
    fn live_graph(&self, _input: LiveInput, _output: LineCommitter) -> Result<Option<JobGraph>, CaseError> {
        Ok(None)
    }
    /// The table of its live result lines in a database ([`Workload::live_table`]).
    fn live_table(&self) -> Option<LiveTable> {
        None
    }
}

/// The committer of a live run's output: each committed transaction's result lines go to
/// one callback (the live runtime's transactional file sink), or each sink task prepares
/// its transactions in a database ([`LineCommitter::prepared`], the PostgreSQL sink).
/// Sans-IO here: the callback and the database belong to the driver.
#[derive(Clone)]
pub struct LineCommitter {
    commit: Arc<Mutex<CommitLines>>,
    prepared: Option<Arc<OpenDatabase>>,
}

type CommitLines = dyn FnMut(TransactionId, Vec<Record<String>>) + Send;
type OpenDatabase = dyn Fn(&TaskInfo) -> Box<dyn PreparedTransactions<String>> + Send + Sync;

impl LineCommitter {
    pub fn new(commit: impl FnMut(TransactionId, Vec<Record<String>>) + Send + 'static) -> Self {
        LineCommitter {
            commit: Arc::new(Mutex::new(commit)),
            prepared: None,
        }
    }

    /// Lines committed through a database's prepared transactions: `open` gives each sink
    /// task its view of them (`eddy_engine::prepared`).
    pub fn prepared(open: impl Fn(&TaskInfo) -> Box<dyn PreparedTransactions<String>> + Send + Sync + 'static) -> Self {
        LineCommitter {
            commit: Arc::new(Mutex::new(|_, _| {
                unreachable!("a sink over prepared transactions commits in the database")
            })),
            prepared: Some(Arc::new(open)),
        }
    }

    /// A committer that drops everything (to ask whether a live form exists).
    pub fn discard() -> Self {
        LineCommitter::new(|_, _| {})
    }
}

impl Committer<String> for LineCommitter {
    fn commit(&mut self, transaction: TransactionId, records: Vec<Record<String>>) {
        let mut commit = self.commit.lock().expect("line committer poisoned");
        (*commit)(transaction, records);
    }

    fn prepared_transactions(&self, task: &TaskInfo) -> Option<Box<dyn PreparedTransactions<String>>> {
        self.prepared.as_ref().map(|open| open(task))
    }
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

/// What the checked run recorded that depends on its schedule, for a reference to read
/// instead of accepting whatever the input makes possible: the records the committed
/// execution sent to late outputs, and those a window operator accepted behind the
/// watermark, each with the operator's watermark at that moment, in the order they came.
#[derive(Clone, Copy, Debug, Default)]
pub struct Recorded<'a> {
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
    fn check(&self, input: &[Record<Self::Event>], recorded: &Recorded, sinks: &Self::Sinks) -> Checked;
    /// Whether [`Workload::check`] compares with a hand-written reference (a
    /// [`Differential`](crate::differential::Differential) has none: only the differential
    /// oracle judges it).
    fn has_reference(&self) -> bool {
        true
    }
    /// The outputs the differential oracle compares with the batch run's: the main results,
    /// as upsert tables or append streams (late outputs are checked by their own rules).
    /// `input` is the whole log (a workload may leave out rows no batch run can decide).
    fn outputs(&self, _input: &[Record<Self::Event>], _sinks: &Self::Sinks) -> Vec<OutputTable> {
        Vec::new()
    }
    /// The final results as JSON lines, sorted by window, then key (what `eddy run` prints).
    fn output_lines(&self, sinks: &Self::Sinks) -> Vec<String>;
    /// How one input line (what `eddy run --input` and `--follow` read) becomes an event: by
    /// default `{"ts": .., "value": ..}` of the event type; a change-data-capture scenario
    /// reads Debezium envelopes instead.
    fn line_parser(&self) -> LineParser<Self::Event> {
        parse_record_line
    }
    /// The line [`Workload::line_parser`] reads back into `record`.
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
    fn live_state_entries(&self, _input: &[Record<Self::Event>], _sinks: &Self::Sinks) -> usize {
        0
    }

    /// The pipeline for a live run (`eddy run --live`, docs/live.md): the computation of
    /// [`Workload::build`], but each final result line of [`Workload::output_lines`] goes
    /// to `output` exactly once, as soon as nothing can change it any more (not in order).
    /// `None` (the default): the workload has no live form.
    fn build_live(&self, _source: EventSource<Self::Event>, _output: LineCommitter) -> Option<JobGraph> {
        None
    }

    /// The columns of [`Workload::build_live`]'s result lines, and their primary key, for a
    /// live run into a database table. `None`: lines only go to a file.
    fn live_table(&self) -> Option<LiveTable> {
        None
    }
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

    fn partitions(&self) -> usize {
        Workload::partitions(self)
    }

    fn run(&self, config: &RunConfig) -> Run {
        let first = run_once(self, config, None, None).run;
        with_determinism(config, first, |config| run_once(self, config, None, None).run)
    }

    fn record_case(&self, config: &RunConfig) -> (Run, Case) {
        let OneRun {
            run,
            input,
            faults,
            checkpoints,
        } = run_once(self, config, None, None);
        let run = with_determinism(config, run, |config| run_once(self, config, None, None).run);
        let case = Case {
            scenario: Workload::name(self).to_string(),
            seed: config.seed,
            profile: config.profile.name().to_string(),
            bug: config.bug.map(|b| b.name().to_string()),
            property: run.report.violation.as_ref().map(|v| v.property.clone()),
            input: input
                .iter()
                .map(|r| serde_json::to_value(r).expect("events serialise"))
                .collect(),
            faults,
            checkpoints,
            poll_max: None,
            oracle: (config.oracle != Oracle::default()).then(|| config.oracle.name().to_string()),
            sink: (config.sink != SinkModel::default()).then(|| config.sink.name().to_string()),
            channel_capacity: config.channel_capacity,
        };
        (run, case)
    }

    fn generate_lines(&self, seed: u64, events: Option<usize>) -> Vec<String> {
        let events = events.unwrap_or_else(|| self.default_events());
        let generated = self.generate(events, &mut rng(seed, Concern::Input));
        generated.iter().map(|r| self.event_line(r)).collect()
    }

    fn run_lines(&self, input: &[String]) -> Result<Vec<String>, CaseError> {
        let (graph, sinks) = self.build(parse_lines(self, input)?);
        eddy_engine::run_to_end(&graph).expect("a batch run of a valid pipeline ends");
        Ok(self.output_lines(&sinks))
    }

    fn supports_live(&self) -> bool {
        let empty = EventSource::Log(Log::round_robin(Vec::new(), self.partitions()));
        self.build_live(empty, LineCommitter::discard()).is_some()
    }

    fn live_graph(&self, input: LiveInput, output: LineCommitter) -> Result<Option<JobGraph>, CaseError> {
        let source = match input {
            LiveInput::Lines(lines) => EventSource::Log(parse_lines(self, &lines)?),
            LiveInput::Follow(feed) => EventSource::Follow {
                feed,
                partitions: self.partitions(),
                parse: self.line_parser(),
            },
        };
        Ok(self.build_live(source, output))
    }

    fn live_table(&self) -> Option<LiveTable> {
        Workload::live_table(self)
    }

    fn run_case(&self, config: &RunConfig, case: &Case) -> Result<Run, CaseError> {
        check_faults(&case.faults)?;
        let mut input = Vec::with_capacity(case.input.len());
        for (index, value) in case.input.iter().enumerate() {
            let record = serde_json::from_value::<Record<W::Event>>(value.clone()).map_err(|e| CaseError::Input {
                index,
                reason: e.to_string(),
            })?;
            input.push(record);
        }
        let explicit = (input, case.faults.clone(), case.checkpoints.clone(), case.poll_max);
        let first = run_once(self, config, Some(explicit.clone()), None).run;
        Ok(with_determinism(config, first, |config| {
            run_once(self, config, Some(explicit.clone()), None).run
        }))
    }

    fn run_tape(&self, config: &RunConfig, tape: &[u8]) -> Run {
        let first = run_once(self, config, None, Some(tape)).run;
        with_determinism(config, first, |config| run_once(self, config, None, Some(tape)).run)
    }
}

thread_local! {
    static IN_RUN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the panic hook silent on this thread (other threads print as before).
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_RUN.with(|in_run| in_run.get()) {
                previous(info);
            }
        }));
    });
    let was = IN_RUN.with(|in_run| in_run.replace(true));
    let result = f();
    IN_RUN.with(|in_run| in_run.set(was));
    result
}

/// Reads one input line into an event (the message of an error names what is wrong).
pub type LineParser<E> = fn(&str) -> Result<Record<E>, String>;

/// The default [`LineParser`]: a record as JSON, `{"ts": .., "value": ..}`.
pub fn parse_record_line<E: Data>(line: &str) -> Result<Record<E>, String> {
    serde_json::from_str(line).map_err(|e| e.to_string())
}

/// Input lines of the workload ([`Workload::line_parser`]), spread over its partitions
/// round-robin.
fn parse_lines<W: Workload>(workload: &W, input: &[String]) -> Result<Log<W::Event>, CaseError> {
    let mut log = Vec::with_capacity(input.len());
    let parse = workload.line_parser();
    for (index, line) in input.iter().enumerate() {
        let record = parse(line).map_err(|reason| CaseError::Input { index, reason })?;
        log.push(record);
    }
    Ok(Log::round_robin(log, workload.partitions()))
}

/// After a run that ended, no transaction may be left prepared in the database: a sink that
/// forgets one holds its locks and rows back forever.
fn left_prepared(database: &MemoryDatabase) -> Option<Violation> {
    let prepared = database.prepared();
    let (node, first) = prepared.first()?;
    Some(Violation::new(
        "prepared-left",
        format!(
            "{} transactions left prepared in the database after the end, the first of sink node {node}: \
             checkpoint {}, sink task {}",
            prepared.len(),
            first.checkpoint,
            first.sink_task
        ),
    ))
}

/// With the determinism check on, runs the seed `again` and fails `first` if the hashes
/// differ; then runs it twice more keeping every step, to name the first step where the two
/// runs diverge.
fn with_determinism(config: &RunConfig, first: Run, again: impl Fn(&RunConfig) -> Run) -> Run {
    if !(config.check_determinism && first.report.passed) {
        return first;
    }
    let second = again(config);
    if second.report.trace_hash == first.report.trace_hash {
        return first;
    }
    let divergence = divergence(config, again);
    let mut report = first.report;
    report.passed = false;
    report.violation = Some(Violation::new(
        "determinism",
        format!(
            "the same seed gave trace-hash {} then {}; {divergence}",
            report.trace_hash, second.report.trace_hash
        ),
    ));
    Run {
        report,
        trace: first.trace,
        timeline: first.timeline,
    }
}

/// Runs `config`'s seed in pairs, keeping every step, until two runs differ (at most
/// `DETERMINISM_TRIES` pairs), and names the first step where they diverge.
pub fn divergence(config: &RunConfig, run: impl Fn(&RunConfig) -> Run) -> String {
    let traced = RunConfig {
        keep_trace: true,
        check_determinism: false,
        ..config.clone()
    };
    (0..DETERMINISM_TRIES)
        .find_map(|_| {
            let (a, b) = (run(&traced), run(&traced));
            first_divergence(
                a.timeline.as_ref()?,
                b.timeline.as_ref()?,
                a.trace.events(),
                b.trace.events(),
            )
        })
        .unwrap_or_else(|| "the traced reruns did not diverge again".to_string())
}

/// A run with the input it read and the faults and checkpoints it had (a replayable case).
struct OneRun<E> {
    run: Run,
    input: Vec<Record<E>>,
    faults: Vec<FaultEvent>,
    checkpoints: Vec<u64>,
}

/// An explicit input log, fault schedule and checkpoint schedule.
type Explicit<E> = (Vec<Record<E>>, Vec<FaultEvent>, Vec<u64>, Option<usize>);

/// One simulated run; with `explicit`, of that input and fault schedule instead of the
/// seed's; with `tape`, the simulator's choices come from it instead of the seed. Returns
/// the run, its input log and the faults it injected.
fn run_once<W: Workload>(
    this: &W,
    config: &RunConfig,
    explicit: Option<Explicit<W::Event>>,
    tape: Option<&[u8]>,
) -> OneRun<W::Event> {
    let faults = config.profile.faults(config.seed).union(&config.aim);
    // Database faults need the database model: without it they are not even drawn.
    let faults = match config.sink {
        SinkModel::Staged => faults.without(&FaultKind::DATABASE),
        SinkModel::PostgresModel => faults,
    };
    let mut placed = BoundaryCounts::default();
    let (log, duplicates, fault_schedule, checkpoint_schedule, poll_max) = match explicit {
        Some((log, faults, checkpoints, poll_max)) => (log, 0, Some(faults), Some(checkpoints), poll_max),
        None => {
            let events = config.events.unwrap_or_else(|| this.default_events());
            let generated = this.generate(events, &mut rng(config.seed, Concern::Input));
            let generated_len = generated.len();
            // The boundaries come from the job graph (an empty log's: only its shape counts).
            let boundaries = if faults.contains(FaultKind::Boundary) {
                Boundaries::of(&this.build(Log::round_robin(Vec::new(), this.partitions())).0)
            } else {
                Boundaries::default()
            };
            let (log, on_boundaries) = input::inject(
                generated,
                this.out_of_orderness_ms(),
                &faults,
                &boundaries,
                this.partitions(),
                &|a: &W::Event, b: &W::Event| this.keep_order(a, b),
                &mut rng(config.seed, Concern::InputFaults),
            );
            placed = on_boundaries;
            let duplicates = log.len().saturating_sub(generated_len) as u64;
            (log, duplicates, None, None, None)
        }
    };
    let stalls: Vec<Stall> = match &fault_schedule {
        Some(schedule) => schedule
            .iter()
            .filter_map(|f| match *f {
                FaultEvent::Stall { partition, offset, ms } => Some(Stall { partition, offset, ms }),
                _ => None,
            })
            .collect(),
        None if faults.contains(FaultKind::SourceStall) => {
            input::stalls(log.len(), this.partitions(), &mut rng(config.seed, Concern::Stalls))
        }
        None => Vec::new(),
    };
    let (mut graph, sinks) = this.build(Log::round_robin(log.clone(), this.partitions()).with_stalls(stalls.clone()));
    let database = (config.sink == SinkModel::PostgresModel).then(MemoryDatabase::new);
    if let Some(database) = &database {
        graph.use_database(database);
    }
    // Records on window starts and ends count however they got there.
    let [window_starts, window_ends] = Boundaries::of(&graph).on_windows(&log);
    placed[BoundaryKind::WindowStart as usize] = window_starts;
    placed[BoundaryKind::WindowEnd as usize] = window_ends;
    let differential = config.oracle != Oracle::Reference || !this.has_reference();
    let hand_written = config.oracle != Oracle::Differential && this.has_reference();
    let options = SimOptions {
        seed: config.seed,
        faults: faults.clone(),
        fault_schedule,
        checkpoint_schedule,
        checkpoint_every_records: None,
        poll_max,
        channel_capacity: config.channel_capacity,
        keep_trace: config.keep_trace,
        // Both oracles read the tap: the reference for the watermarks records met.
        tap_late: true,
        max_steps: 10_000 + STEPS_PER_EVENT * log.len() as u64,
        database: database.clone(),
        chaining: None,
    };
    // A panic inside the engine is a bug in eddy: report it as a failed run (quietly: the
    // report carries its message, and a shrinker may run thousands of such runs). The
    // reference runs on the same engine, planted bug included, as a user's would.
    let planted = bugs::plant(config.bug);
    let outcome = quietly(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let outcome = match tape {
                Some(tape) => simulate_with(&graph, &options, Tape::new(tape)),
                None => simulate(&graph, &options),
            };
            let judged = (differential && outcome.violation.is_none()).then(|| {
                judge(
                    this,
                    &log,
                    &this.outputs(&log, &sinks),
                    &outcome.late,
                    outcome.state_entries,
                )
            });
            (outcome, judged)
        }))
    });
    drop(planted);
    let mut injected = (Vec::new(), Vec::new());
    let mut tapped = Vec::new();
    let mut moments = Moments::default();
    moments.add_boundaries(&placed);
    let mut timeline = None;
    let (stats, mut trace, mut violation, state_entries, judged) = match outcome {
        Ok((outcome, judged)) => {
            timeline = outcome.timeline;
            injected = (outcome.injected, outcome.checkpoint_steps);
            tapped = outcome.late;
            for moment in Moment::ALL {
                moments.add(moment, outcome.moments.get(moment));
            }
            (
                outcome.stats,
                outcome.trace,
                outcome.violation,
                outcome.state_entries,
                judged,
            )
        }
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
                None,
            )
        }
    };
    // The stalls were applied to the log: they come first in the explicit case.
    injected.0.splice(
        0..0,
        stalls.iter().map(|s| FaultEvent::Stall {
            partition: s.partition,
            offset: s.offset,
            ms: s.ms,
        }),
    );
    let recorded = Recorded { late: &tapped };
    let mut checked = if violation.is_none() {
        this.check(&log, &recorded, &sinks)
    } else {
        Checked::default()
    };
    if hand_written {
        violation = violation.or(checked.violation.clone());
        if violation.is_none() {
            let live = this.live_state_entries(&log, &sinks);
            if state_entries > live {
                let expected = if live == 0 {
                    String::new()
                } else {
                    format!(" (at most {live} live table rows expected)")
                };
                violation = Some(Violation::new(
                    "bounded-state",
                    format!("{state_entries} state entries (window panes, keys, timers) are left after the end of input{expected}"),
                ));
            }
        }
    } else {
        checked.late = recorded.late().count() as u64;
    }
    violation = violation.or(judged.and_then(Result::err));
    if let Some(database) = database.filter(|_| violation.is_none()) {
        violation = left_prepared(&database);
    }
    trace.record(TraceEvent::Output { digest: checked.digest });
    if let (Some(timeline), Some(violation)) = (&mut timeline, &violation) {
        timeline.highlight(violation);
    }
    let report = Report {
        scenario: this.name().to_string(),
        seed: config.seed,
        profile: config.profile.name().to_string(),
        bug: config.bug.map(|b| b.name().to_string()),
        sink: (config.sink != SinkModel::default()).then(|| config.sink.name().to_string()),
        channel_capacity: config.channel_capacity,
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
        moments,
        violation,
    };
    OneRun {
        run: Run {
            report,
            trace,
            timeline,
        },
        input: log,
        faults: injected.0,
        checkpoints: injected.1,
    }
}
