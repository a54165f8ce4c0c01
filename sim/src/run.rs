//! Running a workload: one simulated run of a seed or a case (`run_once`), judged by the
//! workload's reference and the differential oracle, and run again for determinism; every
//! [`Workload`] is a [`Scenario`] through this.

use std::panic::{catch_unwind, AssertUnwindSafe};

use eddy_engine::testkit::bugs;
use eddy_engine::testkit::MemoryDatabase;
use eddy_engine::{JobGraph, Log, Record, Stall};
use proptest::strategy::ValueTree;

use crate::coverage::{Moment, Moments};
use crate::decide::Tape;
use crate::differential::judge;
use crate::faults::FaultKind;
use crate::input::{self, Boundaries, BoundaryCounts, BoundaryKind};
use crate::outputs::{LiveOutputs, LiveSinks, Outputs};
use crate::report::{Report, Timings, Violation};
use crate::scenario::{
    check_faults, parse_lines, Case, CaseError, Checked, LinesRun, Oracle, Recorded, Run, RunConfig, Scenario,
    SinkModel, Workload,
};
use crate::seed::{rng, Concern};
use crate::shrink::DETERMINISM_TRIES;

/// With the determinism check on, every this many seeds (those a multiple of it) also run
/// their batch reference a second time. A pipeline whose batch run is not deterministic
/// shows it on most inputs, and every seed's second simulated run already compares its
/// committed outputs; a second reference on every seed was a sixth of a changelog
/// scenario's time (docs/testing.md, `determinism`).
pub const REFERENCE_AGAIN_EVERY: u64 = 4;
use crate::simulator::{simulate, simulate_with, FaultEvent, SimOptions};
use crate::stopwatch::Stopwatch;
use crate::timeline::first_divergence;
use crate::trace::{Trace, TraceEvent};
use eddy_engine::lines::{BadLine, EventSource, LiveInput, ParseErrors};

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
        let first = run_once(self, config, Input::Seed, None).run;
        with_determinism(config, first, |config| run_once(self, config, Input::Seed, None).run)
    }

    fn record_case(&self, config: &RunConfig) -> (Run, Case) {
        record(self, config, |config| run_once(self, config, Input::Seed, None))
    }

    fn shrink_through_input(&self, config: &RunConfig, still_fails: &mut dyn FnMut(&Case) -> bool) -> Option<Case> {
        let events = config.events.unwrap_or_else(|| self.default_events());
        let mut tree = self.input_tree(events, &mut rng(config.seed, Concern::Input))?;
        let mut smallest = None;
        let mut more = tree.simplify();
        while more {
            let mut generated = tree.current();
            generated.sort_by_key(|r| r.ts);
            let (_, case) = record(self, config, |config| {
                run_once(self, config, Input::Generated(generated.clone()), None)
            });
            more = if still_fails(&case) {
                smallest = Some(case);
                tree.simplify()
            } else {
                tree.complicate()
            };
        }
        smallest
    }

    fn shrinks_values(&self) -> bool {
        Workload::shrinks_values(self)
    }

    fn simpler_values(&self, value: &serde_json::Value) -> Vec<serde_json::Value> {
        let Ok(event) = serde_json::from_value::<W::Event>(value.clone()) else {
            return Vec::new();
        };
        Workload::simpler_values(self, &event)
            .iter()
            .map(|e| serde_json::to_value(e).expect("events serialise"))
            .collect()
    }

    fn generate_lines(&self, seed: u64, events: Option<usize>) -> Vec<String> {
        let events = events.unwrap_or_else(|| self.default_events());
        let generated = self.generate(events, &mut rng(seed, Concern::Input));
        generated.iter().map(|r| self.event_line(r)).collect()
    }

    fn run_lines(&self, input: &[String], errors: ParseErrors) -> Result<LinesRun, CaseError> {
        let mut outputs = Outputs::default();
        let (log, skipped) = parse_lines(self, input, errors)?;
        let graph = self.build(EventSource::Log(log), &mut outputs);
        eddy_engine::run_to_end(&graph).expect("a batch run of a valid pipeline ends");
        Ok(LinesRun {
            output: outputs.lines(),
            skipped,
        })
    }

    fn live_graph(
        &self,
        input: LiveInput,
        errors: ParseErrors,
        sinks: LiveSinks,
    ) -> Result<(JobGraph, Vec<BadLine>), CaseError> {
        let (source, skipped) = match input {
            LiveInput::Lines(lines) => {
                let (log, skipped) = parse_lines(self, &lines, errors)?;
                (EventSource::Log(log), skipped)
            }
            LiveInput::Follow(feed) => (
                EventSource::Follow {
                    feed,
                    partitions: self.partitions(),
                    parse: self.line_parser(),
                    errors,
                },
                Vec::new(),
            ),
        };
        Ok((self.build(source, &mut Outputs::live(sinks)), skipped))
    }

    fn live_outputs(&self) -> LiveOutputs {
        let mut outputs = Outputs::default();
        self.build(
            EventSource::Log(Log::round_robin(Vec::new(), self.partitions())),
            &mut outputs,
        );
        outputs.live_outputs()
    }

    fn features(&self) -> std::collections::BTreeSet<eddy_engine::Feature> {
        let source = EventSource::Log(Log::round_robin(Vec::new(), self.partitions()));
        self.build(source, &mut Outputs::default()).features
    }

    fn property_names(&self) -> Vec<&'static str> {
        Workload::property_names(self)
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
        let first = run_once(self, config, Input::Explicit(explicit.clone()), None).run;
        Ok(with_determinism(config, first, |config| {
            run_once(self, config, Input::Explicit(explicit.clone()), None).run
        }))
    }

    fn run_tape(&self, config: &RunConfig, tape: &[u8]) -> Run {
        let first = run_once(self, config, Input::Seed, Some(tape)).run;
        with_determinism(config, first, |config| {
            run_once(self, config, Input::Seed, Some(tape)).run
        })
    }
}

/// Runs `one` and returns it as an explicit case too (its input and injected faults).
fn record<W: Workload>(this: &W, config: &RunConfig, one: impl Fn(&RunConfig) -> OneRun<W::Event>) -> (Run, Case) {
    let OneRun {
        run,
        input,
        faults,
        checkpoints,
    } = one(config);
    let run = with_determinism(config, run, |config| one(config).run);
    let case = Case {
        scenario: Workload::name(this).to_string(),
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
/// runs diverge. A failing run is run again too: a failure the same seed does not repeat (a
/// wall clock or a `HashMap`'s order in a result) is a `determinism` failure, whatever the
/// first run broke, since no replay could show it.
fn with_determinism(config: &RunConfig, first: Run, again: impl Fn(&RunConfig) -> Run) -> Run {
    let already = first
        .report
        .violation
        .as_ref()
        .is_some_and(|v| v.property == "determinism");
    if !config.check_determinism || already {
        return first;
    }
    // A failure is worth more tries: two runs of a nondeterministic pipeline can agree by
    // chance (two orders of a tie), and a failure blamed on the engine would mislead.
    let tries = if first.report.passed { 1 } else { 2 * DETERMINISM_TRIES };
    // A passing seed's second run only has to give the same trace: the batch reference,
    // most of a run's time in the changelog scenarios, need not run again. A failing
    // seed's second runs are judged whole, to say how each ended.
    let light = RunConfig {
        differential_judges: !first.report.passed,
        ..config.clone()
    };
    let started = Stopwatch::start();
    let second = (0..tries)
        .map(|_| again(&light))
        .find(|second| second.report.trace_hash != first.report.trace_hash);
    let mut first = first;
    first.report.timings.determinism = started.elapsed();
    let Some(second) = second else {
        return first;
    };
    let divergence = divergence(config, again);
    let verdict = |run: &Run| {
        run.report.violation.as_ref().map_or("passed".to_string(), |v| {
            format!("failed {}: {}", v.property, v.message)
        })
    };
    let mut report = first.report.clone();
    report.passed = false;
    report.violation = Some(Violation::new(
        "determinism",
        format!(
            "the same seed gave trace-hash {} then {}; {divergence}\n  first run: {}\n  second run: {}",
            first.report.trace_hash,
            second.report.trace_hash,
            verdict(&first),
            verdict(&second)
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

/// Where a run's input comes from.
enum Input<E> {
    /// Generated from the seed, input faults injected from the seed.
    Seed,
    /// These events instead of the seed's (a simpler value of its input strategy), input
    /// faults injected from the seed.
    Generated(Vec<Record<E>>),
    /// A case's log and fault schedule, as they are.
    Explicit(Explicit<E>),
}

/// One simulated run; with `explicit`, of that input and fault schedule instead of the
/// seed's; with `tape`, the simulator's choices come from it instead of the seed. Returns
/// the run, its input log and the faults it injected.
fn run_once<W: Workload>(
    this: &W,
    config: &RunConfig,
    input: Input<W::Event>,
    tape: Option<&[u8]>,
) -> OneRun<W::Event> {
    let started = Stopwatch::start();
    let mut timings = Timings::default();
    let faults = config.profile.faults(config.seed).union(&config.aim);
    // Database faults need the database model: without it they are not even drawn.
    let faults = match config.sink {
        SinkModel::Staged => faults.without(&FaultKind::DATABASE),
        SinkModel::PostgresModel => faults,
    };
    let mut placed = BoundaryCounts::default();
    let (log, duplicates, fault_schedule, checkpoint_schedule, poll_max) = match input {
        Input::Explicit((log, faults, checkpoints, poll_max)) => (log, 0, Some(faults), Some(checkpoints), poll_max),
        Input::Seed | Input::Generated(_) => {
            let generated = match input {
                Input::Generated(generated) => generated,
                _ => {
                    let events = config.events.unwrap_or_else(|| this.default_events());
                    this.generate(events, &mut rng(config.seed, Concern::Input))
                }
            };
            let generated_len = generated.len();
            // The boundaries come from the job graph (an empty log's: only its shape counts).
            let boundaries = if faults.contains(FaultKind::Boundary) {
                Boundaries::of(&this.build(
                    EventSource::Log(Log::round_robin(Vec::new(), this.partitions())),
                    &mut Outputs::default(),
                ))
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
    let mut outputs = Outputs::default();
    let source = EventSource::Log(Log::round_robin(log.clone(), this.partitions()).with_stalls(stalls.clone()));
    let mut graph = this.build(source, &mut outputs);
    let database = (config.sink == SinkModel::PostgresModel).then(MemoryDatabase::new);
    if let Some(database) = &database {
        database.attach(&mut graph);
    }
    // Records on window starts and ends count however they got there.
    let [window_starts, window_ends] = Boundaries::of(&graph).on_windows(&log);
    placed[BoundaryKind::WindowStart as usize] = window_starts;
    placed[BoundaryKind::WindowEnd as usize] = window_ends;
    let differential = config.differential_judges && (config.oracle != Oracle::Reference || !this.has_reference());
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
    timings.generate = started.elapsed();
    let planted = bugs::plant(config.bug);
    let outcome = quietly(|| {
        catch_unwind(AssertUnwindSafe(|| {
            let simulating = Stopwatch::start();
            let outcome = match tape {
                Some(tape) => simulate_with(&graph, &options, Tape::new(tape)),
                None => simulate(&graph, &options),
            };
            timings.simulate = simulating.elapsed();
            let referencing = Stopwatch::start();
            let judged = (differential && outcome.violation.is_none()).then(|| {
                judge(
                    this,
                    &log,
                    &this.judged_outputs(&log, &outputs),
                    &outcome.late,
                    outcome.state_entries,
                    config.check_determinism && config.seed.is_multiple_of(REFERENCE_AGAIN_EVERY),
                )
            });
            timings.reference = referencing.elapsed();
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
    let judging = Stopwatch::start();
    let recorded = Recorded { late: &tapped };
    let mut checked = if violation.is_none() {
        this.check(&log, &recorded, &outputs)
    } else {
        Checked::default()
    };
    if hand_written {
        violation = violation.or(checked.violation.clone());
        if violation.is_none() {
            let live = this.live_state_entries(&log, &outputs);
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
    timings.judge = judging.elapsed();
    violation = violation.or(judged.and_then(Result::err));
    // Without a reference, the workload's check judges the properties a user stated of it,
    // after the differential oracle: a property is for what a batch run shares.
    if !this.has_reference() {
        violation = violation.or(checked.violation.clone());
    }
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
        timings,
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
