//! The scheduler: drives a job step by step under a virtual clock and injected faults.
//!
//! Each step, in this order: maybe crash (the whole job restarts from the newest intact
//! checkpoint, sources rewind, in-flight data is lost); maybe jump processing time; maybe
//! trigger a checkpoint; fire due processing-time deadlines; take one ready action (deliver
//! a channel's head, or let a source read); store acknowledgements, and on completion
//! notify the tasks — unless the notification is lost, a crash comes first, or the stored
//! checkpoint was damaged. When every task has ended, a final checkpoint carries the last
//! sink transactions. Every decision comes from a [`Decisions`] source: the seeded streams
//! ([`crate::seed`]) normally, a fuzzer's bytes under `fuzz/` ([`crate::decide::Tape`]).

use crate::coverage::{Moment, Moments};
use crate::decide::{Decisions, Seeded};
use crate::faults::{FaultKind, FaultSet};
use crate::report::Violation;
use crate::seed::Concern;
use crate::timeline::{Mark, Timeline, RECORDS_PER_MARK};
use crate::trace::{Trace, TraceEvent};
use std::collections::{BTreeMap, BTreeSet};

use eddy_engine::{
    recover_at, Action, CheckpointCoordinator, CheckpointId, CheckpointOutcome, Job, JobGraph, LateRecord, Layout,
    MemoryDatabase, MemorySnapshotStore, Message, ObjectKey, Partitioning, NO_WATERMARK,
};
use serde::{Deserialize, Serialize};

/// One injected fault, as data: what a run recorded, or what an explicit case prescribes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultEvent {
    /// The job crashes at this step.
    Crash { step: u64 },
    /// The job crashes once checkpoint `checkpoint` is in flight and `acknowledged` tasks have
    /// acknowledged it: anchored to checkpoint progress, which stays put when a shrinker
    /// removes records (only explicit cases have it; random runs record steps).
    CrashMidCheckpoint { checkpoint: u64, acknowledged: usize },
    /// Processing time jumps ahead by `ms` at this step.
    Jump { step: u64, ms: i64 },
    /// The next store write after this step fails.
    FailedWrite { step: u64 },
    /// Stored object number `object` of `checkpoint` is damaged when it completes: bit flip
    /// (`xor` at `byte`) or, if `truncate` is set, cut to that length.
    Corrupt {
        checkpoint: u64,
        object: usize,
        byte: usize,
        xor: u8,
        truncate: Option<usize>,
    },
    /// The job crashes after `checkpoint` completed, before the tasks were notified.
    CrashBeforeCommit { checkpoint: u64 },
    /// The tasks are never told that `checkpoint` completed.
    LostNotification { checkpoint: u64 },
    /// The job runs at `parallelism` (one per node) from this step's crash on; at step 0,
    /// from the start.
    Rescale { step: u64, parallelism: Vec<usize> },
    /// Source partition `partition` pauses for `ms` of processing time at `offset` (applied
    /// to the input log: [`eddy_engine::Stall`]).
    Stall { partition: usize, offset: usize, ms: i64 },
    /// The database refuses the next `PREPARE TRANSACTION` after this step.
    FailedPrepare { step: u64 },
    /// The answer to the next `COMMIT PREPARED` after this step is lost (it commits).
    LostCommitReply { step: u64 },
    /// The database restarts after the next statement: that one takes effect, its answer and
    /// the next `unanswered - 1` statements' are lost.
    DatabaseRestart { step: u64, unanswered: u32 },
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    /// The fault kinds on; with `fault_schedule`, only `channel-delay` of them still matters.
    pub faults: FaultSet,
    /// An explicit fault schedule replacing the random fault decisions.
    pub fault_schedule: Option<Vec<FaultEvent>>,
    /// Explicit steps at which checkpoints are triggered, replacing the seeded timing.
    pub checkpoint_schedule: Option<Vec<u64>>,
    /// A checkpoint each time the sources have read this many more records, replacing the
    /// seeded timing (what `eddy bench` measures).
    pub checkpoint_every_records: Option<u64>,
    /// At most this many records per source read, instead of the drawn amount.
    pub poll_max: Option<usize>,
    /// Messages each channel holds before its sender waits (backpressure,
    /// [`Job::bound_channels`]); `None`: unbounded, as seeded scenarios run.
    pub channel_capacity: Option<usize>,
    pub keep_trace: bool,
    /// Record what operators send to late outputs, as the committed execution has it (the
    /// differential oracle's input).
    pub tap_late: bool,
    /// A run longer than this is a liveness failure.
    pub max_steps: u64,
    /// The database model the job's two-phase-commit sinks prepare in (`MemoryDatabase::attach`):
    /// the database fault kinds are injected into it.
    pub database: Option<MemoryDatabase>,
    /// Whether operators are chained (where the pipeline allows it); `None`: even seeds
    /// chained, odd seeds not, so that every suite and campaign runs both ways.
    pub chaining: Option<bool>,
}

impl SimOptions {
    /// Whether this run chains `graph`'s operators.
    pub fn chains(&self, graph: &JobGraph) -> bool {
        graph.chaining && self.chaining.unwrap_or(self.seed.is_multiple_of(2))
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    pub steps: u64,
    pub virtual_duration_ms: i64,
    pub crashes: u64,
    pub restores: u64,
    pub checkpoints_started: u64,
    pub checkpoints_completed: u64,
    pub checkpoints_failed: u64,
    pub lost_notifications: u64,
    pub corrupted: u64,
}

pub struct SimOutcome {
    pub stats: SimStats,
    /// The faults this run injected, in order (an explicit schedule that replays them).
    pub injected: Vec<FaultEvent>,
    /// The steps at which checkpoints were triggered (the final one excluded).
    pub checkpoint_steps: Vec<u64>,
    /// State entries the job's operators hold after the end (the bounded-state check).
    pub state_entries: usize,
    pub trace: Trace,
    /// With `tap_late`: every record the committed execution sent to a late output (those
    /// of executions a restore discarded are rolled back).
    pub late: Vec<LateRecord>,
    /// The moments the run reached (its input's boundaries are counted by the caller).
    pub moments: Moments,
    /// With `keep_trace`: the run lane by task, for `eddy replay --timeline`.
    pub timeline: Option<Timeline>,
    /// `liveness` if the job did not finish within the step budget.
    pub violation: Option<Violation>,
}

/// At most this many crashes per run, so every run also makes progress.
const CRASH_BUDGET: u64 = 4;

/// At most this many database faults per run: each failed prepare fails the job over, and a
/// run must still make progress.
const DATABASE_FAULT_BUDGET: u64 = 3;

/// Steps the lowest watermark must stand still, records moving, to count as stalled.
const STALL_STEPS: u64 = 300;

/// The highest parallelism a rescale picks (within the pipeline's max parallelism).
const RESCALE_MAX: usize = 4;

struct Simulation<'a, D> {
    graph: &'a JobGraph,
    faults: &'a FaultSet,
    decisions: D,
    store: MemorySnapshotStore,
    database: Option<MemoryDatabase>,
    job: Job,
    coordinator: CheckpointCoordinator,
    trace: Trace,
    stats: SimStats,
    step: u64,
    now: i64,
    crashes_left: u64,
    database_faults_left: u64,
    /// Channels `(task, input)` held back until the given step.
    delayed: Vec<((usize, usize), u64)>,
    fault_schedule: Option<Vec<FaultEvent>>,
    injected: Vec<FaultEvent>,
    checkpoint_schedule: Option<Vec<u64>>,
    checkpoint_every_records: Option<u64>,
    checkpoint_steps: Vec<u64>,
    poll_max: Option<usize>,
    channel_capacity: Option<usize>,
    tap_late: bool,
    /// Late records of executions that no restore can discard any more.
    late_committed: Vec<LateRecord>,
    /// The job's parallelism per node now, and at each checkpoint it triggered.
    parallelism: Vec<usize>,
    /// Whether the job's operators are chained (the same after every restore).
    chaining: bool,
    checkpoint_parallelism: BTreeMap<CheckpointId, Vec<usize>>,
    moments: Moments,
    /// Whether the running job came from a restored checkpoint.
    restored: bool,
    /// Late firings of the running job when its sinks last committed.
    late_firings_committed: u64,
    /// Checkpoints some task was told completed.
    notified: BTreeSet<CheckpointId>,
    /// The lowest operator watermark, and since which step it stands.
    watermark_since: (i64, u64),
    /// With `keep_trace`: the timeline, the virtual time of each step, failed-write steps.
    timeline: Option<Timeline>,
    time_of_step: Vec<i64>,
}

/// Runs `graph` with the choices drawn from `options.seed` ([`Seeded`]).
pub fn simulate(graph: &JobGraph, options: &SimOptions) -> SimOutcome {
    simulate_with(graph, options, Seeded::new(options.seed))
}

/// Runs `graph` with every scheduling, fault and checkpoint choice taken from `decisions`
/// (`options.seed` is then unused here).
pub fn simulate_with<D: Decisions>(graph: &JobGraph, options: &SimOptions, mut decisions: D) -> SimOutcome {
    let store = MemorySnapshotStore::new();
    let coordinator = CheckpointCoordinator::new(&store).expect("a memory store does not fail");
    let crashes_left = if options.faults.crashes() {
        decisions.within(Concern::Faults, 1..=CRASH_BUDGET)
    } else {
        0
    };
    let mut injected = Vec::new();
    let parallelism = match &options.fault_schedule {
        Some(schedule) => schedule.iter().find_map(|f| match f {
            FaultEvent::Rescale { step: 0, parallelism } if fits(graph, parallelism) => Some(parallelism.clone()),
            _ => None,
        }),
        None if options.faults.contains(FaultKind::Rescale) && decisions.chance(Concern::Faults, 0.5) => {
            Some(rescale(graph, &mut decisions))
        }
        None => None,
    }
    .unwrap_or_else(|| graph.parallelism());
    if parallelism != graph.parallelism() {
        injected.push(FaultEvent::Rescale {
            step: 0,
            parallelism: parallelism.clone(),
        });
    }
    let chaining = options.chains(graph);
    let mut job = Job::with_layout(
        graph,
        &Layout {
            parallelism: parallelism.clone(),
            chaining,
        },
    );
    if options.tap_late {
        job.tap_late_outputs();
    }
    if let Some(capacity) = options.channel_capacity {
        job.bound_channels(capacity);
    }
    let mut sim = Simulation {
        graph,
        faults: &options.faults,
        decisions,
        store,
        database: options.database.clone(),
        job,
        coordinator,
        trace: Trace::new(options.keep_trace),
        stats: SimStats::default(),
        step: 0,
        now: 0,
        crashes_left,
        database_faults_left: DATABASE_FAULT_BUDGET,
        delayed: Vec::new(),
        fault_schedule: options.fault_schedule.clone(),
        injected,
        checkpoint_schedule: options.checkpoint_schedule.clone(),
        checkpoint_every_records: options.checkpoint_every_records,
        checkpoint_steps: Vec::new(),
        poll_max: options.poll_max,
        channel_capacity: options.channel_capacity,
        tap_late: options.tap_late,
        late_committed: Vec::new(),
        parallelism,
        chaining,
        checkpoint_parallelism: BTreeMap::new(),
        moments: Moments::default(),
        restored: false,
        late_firings_committed: 0,
        notified: BTreeSet::new(),
        watermark_since: (NO_WATERMARK, 0),
        timeline: options.keep_trace.then(Timeline::default),
        time_of_step: vec![0],
    };
    if sim.parallelism != graph.parallelism() {
        let tasks = sim.parallelism.iter().sum::<usize>() as u64;
        sim.trace.record(TraceEvent::Rescaled { step: 0, tasks });
    }
    let violation = sim.run(options.max_steps).err();
    sim.count_job_moments();
    if let Some(timeline) = &mut sim.timeline {
        let failed_writes: Vec<u64> = sim
            .injected
            .iter()
            .filter_map(|f| match f {
                FaultEvent::FailedWrite { step } => Some(*step),
                _ => None,
            })
            .collect();
        timeline.add_events(sim.trace.events(), &sim.time_of_step, &failed_writes);
    }
    // The run ended with its final checkpoint notified: its late records are committed.
    let mut late = std::mem::take(&mut sim.late_committed);
    late.extend(sim.job.take_late_records());
    sim.stats.steps = sim.step;
    sim.stats.virtual_duration_ms = sim.now;
    SimOutcome {
        checkpoint_steps: sim.checkpoint_steps,
        injected: sim.injected,
        state_entries: sim.job.state_entries(),
        stats: sim.stats,
        trace: sim.trace,
        late,
        moments: sim.moments,
        timeline: sim.timeline,
        violation,
    }
}

/// Whether `graph` can run at `parallelism`: one per node, within the max parallelism, equal
/// across forward edges.
fn fits(graph: &JobGraph, parallelism: &[usize]) -> bool {
    parallelism.len() == graph.nodes.len()
        && parallelism.iter().all(|p| (1..=graph.max_parallelism).contains(p))
        && graph.nodes.iter().enumerate().all(|(node, n)| {
            n.inputs
                .iter()
                .all(|e| e.partitioning != Partitioning::Forward || parallelism[e.from] == parallelism[node])
        })
}

/// A parallelism for `graph` drawn from `decisions`: each distinct built parallelism maps to
/// one new value in `1..=RESCALE_MAX` (so forward edges keep joining equals).
fn rescale<D: Decisions>(graph: &JobGraph, decisions: &mut D) -> Vec<usize> {
    let mut built: Vec<usize> = graph.parallelism();
    built.sort_unstable();
    built.dedup();
    let new: Vec<(usize, usize)> = built
        .into_iter()
        .map(|p| (p, decisions.within(Concern::Faults, 1..=RESCALE_MAX)))
        .collect();
    graph.rescaled(|p| new.iter().find(|(old, _)| *old == p).map_or(p, |(_, n)| *n))
}

impl<D: Decisions> Simulation<'_, D> {
    fn layout(&self) -> Layout {
        Layout {
            parallelism: self.parallelism.clone(),
            chaining: self.chaining,
        }
    }

    fn on(&self, kind: FaultKind) -> bool {
        self.faults.contains(kind)
    }

    fn run(&mut self, max_steps: u64) -> Result<(), Violation> {
        let mut actions = Vec::new();
        let mut next_checkpoint_at = self.decisions.below(Concern::Checkpoints, 10..200i64);
        let mut final_checkpoint: Option<CheckpointId> = None;
        let mut records_at_checkpoint = 0;
        loop {
            self.step += 1;
            if self.timeline.is_some() {
                self.time_of_step.push(self.now);
            }
            if self.step > max_steps {
                return Err(Violation::new(
                    "liveness",
                    format!("the job did not finish within {max_steps} steps"),
                ));
            }
            if self.decide_crash() {
                self.crash();
                final_checkpoint = None;
                continue;
            }
            if let Some(ms) = self.decide_jump() {
                self.now += ms;
                self.injected.push(FaultEvent::Jump { step: self.step, ms });
                self.trace.record(TraceEvent::Jump {
                    step: self.step,
                    now: self.now,
                });
            }
            let trigger_now = match (&self.checkpoint_schedule, self.checkpoint_every_records) {
                (Some(steps), _) => steps.contains(&self.step),
                (None, Some(every)) => {
                    let read = self.job.metrics().source_records;
                    if read >= records_at_checkpoint + every {
                        records_at_checkpoint = read;
                        true
                    } else {
                        false
                    }
                }
                (None, None) if self.now >= next_checkpoint_at => {
                    next_checkpoint_at = self.now + self.decisions.below(Concern::Checkpoints, 20..400i64);
                    true
                }
                (None, None) => false,
            };
            if trigger_now && self.trigger().is_some() {
                self.checkpoint_steps.push(self.step);
            }
            if self.decide_failed_write() {
                self.injected.push(FaultEvent::FailedWrite { step: self.step });
                self.store.fail_next_puts(1);
            }
            if final_checkpoint.is_none() {
                self.decide_database_faults();
            }
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut actions);
            if actions.is_empty() {
                if !self.job.is_finished() {
                    let deadline = self.job.next_processing_deadline();
                    self.now = deadline.map_or(self.now + 1, |d| d.max(self.now + 1));
                    continue;
                }
                if self.coordinator.pending().is_none() {
                    // The database is healthy at the end, so that the final checkpoint's
                    // transactions commit (a real run that fails here stops and restarts).
                    if let Some(database) = &self.database {
                        database.heal();
                    }
                    final_checkpoint = self.trigger();
                }
            } else {
                let action = self.choose(&actions);
                let closes_before = self
                    .coordinator
                    .pending()
                    .map(|_| self.job.metrics().events.dedup_intervals_closed);
                self.perform(action);
                if let Some(before) = closes_before {
                    if self.job.metrics().events.dedup_intervals_closed > before {
                        self.moments.add(Moment::DedupCloseAtCheckpoint, 1);
                    }
                }
                self.watch_watermark();
                self.now += self.decisions.within(Concern::Schedule, 1..=10i64);
            }
            // A sink task that failed (its prepare did) fails the job over before the
            // checkpoint in flight can complete.
            if self.database.as_ref().is_some_and(|d| d.take_task_failure().is_some()) {
                self.crash();
                final_checkpoint = None;
                continue;
            }
            match self.coordinator.collect(&mut self.job, &mut self.store) {
                Some(CheckpointOutcome::Completed(checkpoint)) => {
                    self.stats.checkpoints_completed += 1;
                    self.trace.record(TraceEvent::Completed {
                        step: self.step,
                        checkpoint,
                    });
                    let is_final = final_checkpoint == Some(checkpoint);
                    if self.notify_or_fault(checkpoint) {
                        if is_final {
                            self.trace.record(TraceEvent::Finished { step: self.step });
                            return Ok(());
                        }
                    } else if is_final {
                        // Nobody will commit the last transactions: the job restarts, and
                        // the restore completes the commit.
                        self.crash();
                        final_checkpoint = None;
                    }
                }
                Some(CheckpointOutcome::Failed { checkpoint, .. }) => {
                    self.stats.checkpoints_failed += 1;
                    self.trace.record(TraceEvent::CheckpointFailed {
                        step: self.step,
                        checkpoint,
                    });
                    final_checkpoint = None;
                }
                None => {}
            }
        }
    }

    fn trigger(&mut self) -> Option<CheckpointId> {
        let checkpoint = self.coordinator.trigger(&mut self.job)?;
        self.checkpoint_parallelism.insert(checkpoint, self.parallelism.clone());
        self.stats.checkpoints_started += 1;
        self.trace.record(TraceEvent::Trigger {
            step: self.step,
            checkpoint,
        });
        Some(checkpoint)
    }

    fn scheduled(&self, wanted: impl Fn(&FaultEvent) -> bool) -> Option<FaultEvent> {
        self.fault_schedule.as_ref()?.iter().find(|f| wanted(f)).cloned()
    }

    fn decide_crash(&mut self) -> bool {
        let step = self.step;
        let (pending, acked) = (self.coordinator.pending(), self.coordinator.acknowledged());
        let crash = match &self.fault_schedule {
            Some(_) => self
                .scheduled(|f| match *f {
                    FaultEvent::Crash { step: s } => s == step,
                    FaultEvent::CrashMidCheckpoint {
                        checkpoint,
                        acknowledged,
                    } => pending == Some(checkpoint) && acked >= acknowledged,
                    _ => false,
                })
                .is_some(),
            None if self.crashes_left > 0 => {
                let in_flight = self.coordinator.pending().is_some();
                let chance = if in_flight && self.on(FaultKind::CrashMidCheckpoint) {
                    0.02
                } else if self.on(FaultKind::Crash) {
                    0.002
                } else {
                    0.0
                };
                self.decisions.chance(Concern::Faults, chance)
            }
            None => false,
        };
        if crash {
            self.injected.push(FaultEvent::Crash { step });
        }
        crash
    }

    fn decide_jump(&mut self) -> Option<i64> {
        let step = self.step;
        match &self.fault_schedule {
            Some(_) => match self.scheduled(|f| matches!(f, FaultEvent::Jump { step: s, .. } if *s == step)) {
                Some(FaultEvent::Jump { ms, .. }) => Some(ms),
                _ => None,
            },
            None if self.on(FaultKind::ProcessingTimeJump) && self.decisions.chance(Concern::Faults, 0.003) => {
                Some(self.decisions.below(Concern::Faults, 100..5_000i64))
            }
            None => None,
        }
    }

    fn decide_failed_write(&mut self) -> bool {
        let step = self.step;
        match &self.fault_schedule {
            Some(_) => self.scheduled(|f| *f == FaultEvent::FailedWrite { step }).is_some(),
            None => {
                self.on(FaultKind::FailedWrite)
                    && self.coordinator.pending().is_some()
                    && self.decisions.chance(Concern::Faults, 0.01)
            }
        }
    }

    /// Arms the database faults of this step on the database model, if the job has one.
    fn decide_database_faults(&mut self) {
        let Some(database) = self.database.clone() else {
            return;
        };
        let step = self.step;
        let faults: Vec<FaultEvent> = match &self.fault_schedule {
            Some(schedule) => schedule
                .iter()
                .filter(|f| match f {
                    FaultEvent::FailedPrepare { step: s }
                    | FaultEvent::LostCommitReply { step: s }
                    | FaultEvent::DatabaseRestart { step: s, .. } => *s == step,
                    _ => false,
                })
                .cloned()
                .collect(),
            None if self.database_faults_left == 0 => Vec::new(),
            None => {
                let mut faults = Vec::new();
                let in_flight = self.coordinator.pending().is_some();
                if self.on(FaultKind::FailedPrepare) && in_flight && self.decisions.chance(Concern::Faults, 0.005) {
                    faults.push(FaultEvent::FailedPrepare { step });
                }
                if self.on(FaultKind::LostCommitReply) && self.decisions.chance(Concern::Faults, 0.005) {
                    faults.push(FaultEvent::LostCommitReply { step });
                }
                if self.on(FaultKind::DatabaseRestart) && self.decisions.chance(Concern::Faults, 0.002) {
                    let unanswered = self.decisions.within(Concern::Faults, 1..=4u32);
                    faults.push(FaultEvent::DatabaseRestart { step, unanswered });
                }
                self.database_faults_left = self.database_faults_left.saturating_sub(faults.len() as u64);
                faults
            }
        };
        for fault in faults {
            let kind = match &fault {
                FaultEvent::FailedPrepare { .. } => {
                    database.fail_next_prepare();
                    "failed-prepare"
                }
                FaultEvent::LostCommitReply { .. } => {
                    database.lose_next_commit_reply();
                    "lost-commit-reply"
                }
                FaultEvent::DatabaseRestart { unanswered, .. } => {
                    database.restart(*unanswered);
                    "database-restart"
                }
                _ => unreachable!("only database faults are armed here"),
            };
            self.trace.record(TraceEvent::DatabaseFault { step, kind });
            self.injected.push(fault);
        }
    }

    /// Tells the tasks `checkpoint` completed, unless a fault intervenes; true if told.
    fn notify_or_fault(&mut self, checkpoint: CheckpointId) -> bool {
        let (corrupt, crash, lost) = match &self.fault_schedule {
            Some(_) => (
                self.scheduled(|f| matches!(f, FaultEvent::Corrupt { checkpoint: c, .. } if *c == checkpoint)),
                self.scheduled(|f| *f == FaultEvent::CrashBeforeCommit { checkpoint })
                    .is_some(),
                self.scheduled(|f| *f == FaultEvent::LostNotification { checkpoint })
                    .is_some(),
            ),
            None => {
                let corrupt = (self.on(FaultKind::CorruptSnapshot) && self.decisions.chance(Concern::Faults, 0.15))
                    .then(|| self.random_corruption(checkpoint));
                let crash = corrupt.is_none()
                    && self.on(FaultKind::CrashBeforeCommit)
                    && self.crashes_left > 0
                    && self.decisions.chance(Concern::Faults, 0.15);
                let lost = corrupt.is_none()
                    && !crash
                    && self.on(FaultKind::LostNotification)
                    && self.decisions.chance(Concern::Faults, 0.15);
                (corrupt, crash, lost)
            }
        };
        if let Some(corruption) = corrupt {
            self.corrupt(corruption);
            return false;
        }
        if crash {
            self.injected.push(FaultEvent::CrashBeforeCommit { checkpoint });
            self.moments.add(Moment::CrashBeforeNotification, 1);
            self.crash();
            return false;
        }
        if lost {
            self.injected.push(FaultEvent::LostNotification { checkpoint });
            self.stats.lost_notifications += 1;
            self.trace.record(TraceEvent::NotificationLost {
                step: self.step,
                checkpoint,
            });
            return false;
        }
        self.job.notify_checkpoint_complete(checkpoint);
        self.notified.insert(checkpoint);
        self.late_firings_committed = self.job.metrics().events.late_firings;
        self.coordinator.notified(checkpoint, &mut self.store);
        self.trace.record(TraceEvent::Notified {
            step: self.step,
            checkpoint,
        });
        true
    }

    fn random_corruption(&mut self, checkpoint: CheckpointId) -> FaultEvent {
        let objects = self
            .store
            .keys()
            .into_iter()
            .filter(|k| k.checkpoint() == checkpoint)
            .count();
        let object = self.decisions.below(Concern::Faults, 0..objects.max(1));
        let (byte, xor, truncate) = if self.decisions.chance(Concern::Faults, 0.5) {
            (
                self.decisions.below(Concern::Faults, 0..4096usize),
                self.decisions.within(Concern::Faults, 1..=255u8),
                None,
            )
        } else {
            (0, 0, Some(self.decisions.below(Concern::Faults, 0..64usize)))
        };
        FaultEvent::Corrupt {
            checkpoint,
            object,
            byte,
            xor,
            truncate,
        }
    }

    /// Damages one stored object of a checkpoint: a bit flip or a torn (truncated) write.
    fn corrupt(&mut self, corruption: FaultEvent) {
        let FaultEvent::Corrupt {
            checkpoint,
            object,
            byte,
            xor,
            truncate,
        } = corruption
        else {
            unreachable!("only corruptions are applied here")
        };
        let keys: Vec<ObjectKey> = self
            .store
            .keys()
            .into_iter()
            .filter(|k| k.checkpoint() == checkpoint)
            .collect();
        if let Some(&key) = keys.get(object % keys.len().max(1)) {
            match truncate {
                Some(len) => self.store.truncate(key, len),
                None => self.store.corrupt(key, byte, xor),
            };
            self.injected.push(corruption);
            self.stats.corrupted += 1;
            self.trace.record(TraceEvent::Corrupted {
                step: self.step,
                checkpoint,
            });
        }
    }

    fn crash(&mut self) {
        self.crashes_left = self.crashes_left.saturating_sub(1);
        self.stats.crashes += 1;
        self.trace.record(TraceEvent::Crash { step: self.step });
        if self.job.tasks().iter().any(|t| t.is_aligning()) {
            self.moments.add(Moment::CrashMidAlignment, 1);
        }
        self.count_job_moments();
        self.coordinator.abort();
        let tapped = self.job.take_late_records();
        if let Some(parallelism) = self.decide_rescale() {
            self.injected.push(FaultEvent::Rescale {
                step: self.step,
                parallelism: parallelism.clone(),
            });
            self.trace.record(TraceEvent::Rescaled {
                step: self.step,
                tasks: parallelism.iter().sum::<usize>() as u64,
            });
            self.parallelism = parallelism;
        }
        let recovery = recover_at(self.graph, &self.layout(), &self.store).expect("a memory store does not fail reads");
        if recovery.checkpoint.is_some() {
            self.stats.restores += 1;
        }
        if !recovery.skipped.is_empty() {
            self.moments.add(Moment::RestorePastCorrupt, 1);
        }
        if let Some(checkpoint) = recovery.checkpoint {
            if self.checkpoint_parallelism.get(&checkpoint) != Some(&self.parallelism) {
                self.moments.add(Moment::RestoreRescaled, 1);
            }
            if self.notified.contains(&checkpoint) {
                self.moments.add(Moment::CommitRepeatedAfterRestore, 1);
            }
        }
        self.trace.record(TraceEvent::Restored {
            step: self.step,
            checkpoint: recovery.checkpoint.unwrap_or(0),
        });
        // What each task sent to late outputs before its snapshot of the restored checkpoint
        // is part of the execution that goes on; the rest is rolled back with the job.
        let restored = recovery.checkpoint.unwrap_or(0);
        self.late_committed
            .extend(tapped.into_iter().filter(|r| r.after_checkpoint < restored));
        self.job = recovery.job;
        // A sink that could not decide its prepared transactions fails the job over again.
        if self.database.as_ref().is_some_and(|d| d.take_task_failure().is_some()) {
            return self.crash();
        }
        if self.tap_late {
            self.job.tap_late_outputs();
        }
        if let Some(capacity) = self.channel_capacity {
            self.job.bound_channels(capacity);
        }
        self.restored = recovery.checkpoint.is_some();
        self.late_firings_committed = 0;
        self.coordinator = CheckpointCoordinator::new(&self.store).expect("a memory store does not fail");
        self.delayed.clear();
    }

    /// A new parallelism for the restore after this step's crash, if the job rescales.
    fn decide_rescale(&mut self) -> Option<Vec<usize>> {
        let step = self.step;
        let parallelism = match &mut self.fault_schedule {
            // The first rescale not applied yet whose step has come: a shrinker that moves a
            // crash (anchors it to a checkpoint's progress) keeps the rescale with it.
            Some(schedule) => schedule
                .iter()
                .position(|f| matches!(f, FaultEvent::Rescale { step: s, .. } if *s > 0 && *s <= step))
                .map(|at| match schedule.remove(at) {
                    FaultEvent::Rescale { parallelism, .. } => parallelism,
                    _ => unreachable!("found a rescale"),
                }),
            None if self.faults.contains(FaultKind::Rescale) && self.decisions.chance(Concern::Faults, 0.5) => {
                Some(rescale(self.graph, &mut self.decisions))
            }
            None => None,
        }?;
        // A prescribed parallelism that does not fit the job (a hand-edited case) is ignored.
        (fits(self.graph, &parallelism) && parallelism != self.parallelism).then_some(parallelism)
    }

    /// Moments the running job's operators went through (read before it is thrown away).
    fn count_job_moments(&mut self) {
        let events = self.job.metrics().events;
        if events.late_firings > self.late_firings_committed {
            self.moments.add(Moment::CrashDuringLateFiringCommit, 1);
        }
        if self.restored && events.late_firings > 0 {
            self.moments.add(Moment::LateAcceptedAfterRestore, events.late_firings);
        }
        if self.restored && events.early_firings > 0 {
            self.moments
                .add(Moment::TriggerEarlyFiringAfterRestore, events.early_firings);
        }
        self.moments
            .add(Moment::SessionMergeAcrossCheckpoint, events.checkpointed_session_merges);
        self.moments
            .add(Moment::RestorePartlyFiredWindow, events.partly_fired_windows);
    }

    /// Counts a stretch of `STALL_STEPS` steps in which the lowest operator watermark stood.
    fn watch_watermark(&mut self) {
        let lowest = self
            .job
            .tasks()
            .iter()
            .filter(|t| !t.is_source() && !t.is_ended())
            .map(|t| t.watermark())
            .min()
            .unwrap_or(NO_WATERMARK);
        if lowest != self.watermark_since.0 {
            self.watermark_since = (lowest, self.step);
        } else if lowest > NO_WATERMARK && self.step - self.watermark_since.1 == STALL_STEPS {
            self.moments.add(Moment::WatermarkStalled, 1);
        }
    }

    fn choose(&mut self, actions: &[Action]) -> Action {
        if self.on(FaultKind::ChannelDelay) {
            self.delayed.retain(|(_, until)| *until > self.step);
            if self.decisions.chance(Concern::Schedule, 0.02) {
                let picked = self.decisions.index(Concern::Schedule, actions.len());
                if let Action::Deliver { task, input } = actions[picked] {
                    let until = self.step + self.decisions.below(Concern::Schedule, 10..300u64);
                    self.delayed.push(((task, input), until));
                }
            }
            let open: Vec<Action> = actions
                .iter()
                .copied()
                .filter(|a| match a {
                    Action::Deliver { task, input } => !self.delayed.iter().any(|(c, _)| *c == (*task, *input)),
                    Action::PollSource { .. } => true,
                })
                .collect();
            if !open.is_empty() {
                return open[self.decisions.below(Concern::Schedule, 0..open.len())];
            }
        }
        actions[self.decisions.below(Concern::Schedule, 0..actions.len())]
    }

    fn perform(&mut self, action: Action) {
        // Drawn even when overridden, so that the schedule stream stays the same.
        let drawn = self.decisions.within(Concern::Schedule, 1..=32usize);
        let max = self.poll_max.unwrap_or(drawn);
        match action {
            Action::Deliver { task, input } => {
                let (element, size) = match self.job.tasks()[task].peek_input(input) {
                    Some(Message::Records(batch)) => ("records", batch.len() as i64),
                    Some(Message::Watermark(w)) => ("watermark", *w),
                    Some(Message::Barrier(c)) => ("barrier", *c as i64),
                    Some(Message::Idle) => {
                        self.moments.add(Moment::InputIdle, 1);
                        ("idle", 0)
                    }
                    Some(Message::Active) => {
                        if self.job.tasks()[task].idle_at_watermark(input) {
                            self.moments.add(Moment::IdleActiveAtWatermark, 1);
                        }
                        ("active", 0)
                    }
                    Some(Message::EndOfInput) | None => ("end", 0),
                };
                self.trace.record(TraceEvent::Deliver {
                    step: self.step,
                    task,
                    channel: input,
                    element,
                    size,
                });
            }
            Action::PollSource { task } => self.trace.record(TraceEvent::Poll {
                step: self.step,
                task,
                max,
            }),
        }
        let Some(timeline) = &mut self.timeline else {
            self.job.perform(action, max);
            return;
        };
        let (task, kind, n, records, more) = match action {
            Action::Deliver { task, input } => match self.job.tasks()[task].peek_input(input) {
                Some(Message::Records(batch)) => {
                    let mut records: Vec<String> = batch.describe().into_iter().map(|(_, _, text)| text).collect();
                    let more = records.len().saturating_sub(RECORDS_PER_MARK);
                    records.truncate(RECORDS_PER_MARK);
                    (task, "records", batch.len() as i64, records, more)
                }
                Some(Message::Watermark(w)) => (task, "watermark", *w, Vec::new(), 0),
                Some(Message::Barrier(c)) => (task, "barrier", *c as i64, Vec::new(), 0),
                Some(Message::Idle) => (task, "idle", 0, Vec::new(), 0),
                Some(Message::Active) => (task, "active", 0, Vec::new(), 0),
                Some(Message::EndOfInput) | None => (task, "end", 0, Vec::new(), 0),
            },
            Action::PollSource { task } => (task, "poll", 0, Vec::new(), 0),
        };
        self.job.perform(action, max);
        let t = &self.job.tasks()[task];
        let lane = timeline.lane(&t.name);
        if t.is_source() {
            timeline.mark_source(lane);
        }
        // A barrier after which the task no longer waits for others completed its alignment:
        // the task snapshotted and acknowledged.
        let kind = if kind == "barrier" && !t.is_aligning() {
            "ack"
        } else {
            kind
        };
        let mut records = records;
        if more > 0 {
            records.push(format!("... and {more} more"));
        }
        timeline.marks.push(Mark {
            t: self.now,
            step: self.step,
            lane,
            kind,
            n,
            watermark: (t.watermark() > NO_WATERMARK).then(|| t.watermark()),
            state: t.state_entries(),
            records,
            hit: false,
        });
    }
}
