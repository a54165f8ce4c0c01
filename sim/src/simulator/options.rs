//! What a simulation is given and what it returns: the fault events of an explicit schedule,
//! the run's options, its statistics and its outcome. Plain data, and the leaf of the
//! simulator's modules: it imports none of them (they all import it), and runs nothing.

use crate::coverage::Moments;
use crate::faults::FaultSet;
use crate::report::Violation;
use crate::timeline::Timeline;
use crate::trace::Trace;

use eddy_engine::testkit::{LateRecord, MemoryDatabase};
use eddy_engine::JobGraph;
use serde::{Deserialize, Serialize};

/// One injected fault, as data: what a run recorded, or what an explicit case prescribes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultEvent {
    /// The job crashes at this step.
    Crash {
        /// The step the job crashes at.
        step: u64,
    },
    /// The job crashes once checkpoint `checkpoint` is in flight and `acknowledged` tasks have
    /// acknowledged it: anchored to checkpoint progress, which stays put when a shrinker
    /// removes records (only explicit cases have it; random runs record steps).
    CrashMidCheckpoint {
        /// The checkpoint in flight.
        checkpoint: u64,
        /// How many tasks have acknowledged it.
        acknowledged: usize,
    },
    /// Processing time jumps ahead by `ms` at this step.
    Jump {
        /// The step the clock jumps at.
        step: u64,
        /// How far processing time jumps.
        ms: i64,
    },
    /// The next store write after this step fails.
    FailedWrite {
        /// The step after which the next store write fails.
        step: u64,
    },
    /// Stored object number `object` of `checkpoint` is damaged when it completes: bit flip
    /// (`xor` at `byte`) or, if `truncate` is set, cut to that length.
    Corrupt {
        /// The checkpoint whose object is damaged.
        checkpoint: u64,
        /// Which of the checkpoint's stored objects, in key order.
        object: usize,
        /// The byte flipped.
        byte: usize,
        /// The bits flipped.
        xor: u8,
        /// The length the object is cut to, instead of a bit flip.
        truncate: Option<usize>,
    },
    /// The job crashes after `checkpoint` completed, before the tasks were notified.
    CrashBeforeCommit {
        /// The checkpoint that completed.
        checkpoint: u64,
    },
    /// The tasks are never told that `checkpoint` completed.
    LostNotification {
        /// The checkpoint whose notification is lost.
        checkpoint: u64,
    },
    /// The job runs at `parallelism` (one per node) from this step's crash on; at step 0,
    /// from the start.
    Rescale {
        /// The step whose crash rescales (0: the start).
        step: u64,
        /// Each node's parallelism.
        parallelism: Vec<usize>,
    },
    /// Source partition `partition` pauses for `ms` of processing time at `offset` (applied
    /// to the input log: [`eddy_engine::Stall`]).
    Stall {
        /// The partition that pauses.
        partition: usize,
        /// The offset at which it pauses.
        offset: usize,
        /// How long it pauses, in processing time.
        ms: i64,
    },
    /// The database refuses the next `PREPARE TRANSACTION` after this step.
    FailedPrepare {
        /// The step after which the next prepare is refused.
        step: u64,
    },
    /// The answer to the next `COMMIT PREPARED` after this step is lost (it commits).
    LostCommitReply {
        /// The step after which the next commit's answer is lost.
        step: u64,
    },
    /// The database restarts after the next statement: that one takes effect, its answer and
    /// the next `unanswered - 1` statements' are lost.
    DatabaseRestart {
        /// The step after which the database restarts.
        step: u64,
        /// How many statements in all go unanswered.
        unanswered: u32,
    },
}

/// How a simulation runs: the seed, the faults, the schedules that replace seeded choices.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The seed every choice is drawn from.
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
    /// [`Job::bound_channels`](eddy_engine::Job::bound_channels)); `None`: unbounded, as seeded scenarios run.
    pub channel_capacity: Option<usize>,
    /// Keep every trace entry, not only the hash.
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

/// What a simulation went through, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Steps taken.
    pub steps: u64,
    /// The virtual time reached, in ms.
    pub virtual_duration_ms: i64,
    /// Crashes injected.
    pub crashes: u64,
    /// Restores from a checkpoint (a restart with nothing to restore is not counted).
    pub restores: u64,
    /// Checkpoints triggered.
    pub checkpoints_started: u64,
    /// Checkpoints completed.
    pub checkpoints_completed: u64,
    /// Checkpoints a failed store write ended.
    pub checkpoints_failed: u64,
    /// Notifications of completed checkpoints lost.
    pub lost_notifications: u64,
    /// Stored objects damaged.
    pub corrupted: u64,
}

/// What a simulation returns: its counts, what it injected, its trace, and a violation of its
/// own checks.
pub struct SimOutcome {
    /// What the run went through, counted.
    pub stats: SimStats,
    /// The faults this run injected, in order (an explicit schedule that replays them).
    pub injected: Vec<FaultEvent>,
    /// The steps at which checkpoints were triggered (the final one excluded).
    pub checkpoint_steps: Vec<u64>,
    /// State entries the job's operators hold after the end (the bounded-state check).
    pub state_entries: usize,
    /// The run's trace.
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
