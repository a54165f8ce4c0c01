//! The running simulation's state: the job, its store and checkpoint coordinator, the virtual
//! clock, the fault budgets, and what the run has recorded so far. The other modules add the
//! behaviour to [`Simulation`]; this one only holds the state (and two small lookups), and of
//! the simulator's modules imports only `options`. Like all of them it is sans-IO: the clock
//! is `now`, a number the step loop advances, and the store and database are in memory.

use super::options::{FaultEvent, SimStats};
use crate::coverage::Moments;
use crate::decide::Decisions;
use crate::faults::{FaultKind, FaultSet};
use crate::timeline::Timeline;
use crate::trace::Trace;
use std::collections::{BTreeMap, BTreeSet};

use eddy_engine::testkit::{LateRecord, MemoryDatabase};
use eddy_engine::{CheckpointCoordinator, CheckpointId, Job, JobGraph, Layout, MemorySnapshotStore};

pub(super) struct Simulation<'a, D> {
    pub(super) graph: &'a JobGraph,
    pub(super) faults: &'a FaultSet,
    pub(super) decisions: D,
    pub(super) store: MemorySnapshotStore,
    pub(super) database: Option<MemoryDatabase>,
    pub(super) job: Job,
    pub(super) coordinator: CheckpointCoordinator,
    pub(super) trace: Trace,
    pub(super) stats: SimStats,
    pub(super) step: u64,
    pub(super) now: i64,
    pub(super) crashes_left: u64,
    pub(super) database_faults_left: u64,
    /// Channels `(task, input)` held back until the given step.
    pub(super) delayed: Vec<((usize, usize), u64)>,
    pub(super) fault_schedule: Option<Vec<FaultEvent>>,
    pub(super) injected: Vec<FaultEvent>,
    pub(super) checkpoint_schedule: Option<Vec<u64>>,
    pub(super) checkpoint_every_records: Option<u64>,
    pub(super) checkpoint_steps: Vec<u64>,
    pub(super) poll_max: Option<usize>,
    pub(super) channel_capacity: Option<usize>,
    pub(super) tap_late: bool,
    /// Late records of executions that no restore can discard any more.
    pub(super) late_committed: Vec<LateRecord>,
    /// The job's parallelism per node now, and at each checkpoint it triggered.
    pub(super) parallelism: Vec<usize>,
    /// Whether the job's operators are chained (the same after every restore).
    pub(super) chaining: bool,
    pub(super) checkpoint_parallelism: BTreeMap<CheckpointId, Vec<usize>>,
    pub(super) moments: Moments,
    /// Whether the running job came from a restored checkpoint.
    pub(super) restored: bool,
    /// Late firings of the running job when its sinks last committed.
    pub(super) late_firings_committed: u64,
    /// Checkpoints some task was told completed.
    pub(super) notified: BTreeSet<CheckpointId>,
    /// The lowest operator watermark, and since which step it stands.
    pub(super) watermark_since: (i64, u64),
    /// With `keep_trace`: the timeline, the virtual time of each step, failed-write steps.
    pub(super) timeline: Option<Timeline>,
    pub(super) time_of_step: Vec<i64>,
}

impl<D: Decisions> Simulation<'_, D> {
    pub(super) fn layout(&self) -> Layout {
        Layout {
            parallelism: self.parallelism.clone(),
            chaining: self.chaining,
        }
    }

    pub(super) fn on(&self, kind: FaultKind) -> bool {
        self.faults.contains(kind)
    }
}
