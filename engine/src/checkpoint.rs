//! Checkpoints: the coordinator, the snapshot store interface, and recovery.
//!
//! Protocol (docs/snapshots.md): the coordinator triggers checkpoint `n` at every source;
//! each task snapshots at barrier alignment and acknowledges with its snapshot, which is
//! written to the store at once; when every task has acknowledged, the manifest is written
//! last and the checkpoint is complete; then tasks are notified (sinks commit). One checkpoint
//! is in flight at a time. Recovery restores the newest checkpoint whose manifest and task
//! snapshots all decode, falling back to older ones, and to a fresh job when none is left.

use std::collections::BTreeMap;
use std::fmt;

use crate::element::{CheckpointId, Timestamp};
use crate::graph::{JobGraph, Layout};
use crate::job::{Job, RestoreError};
use crate::snapshot::{Manifest, SnapshotError, TaskSnapshot};

/// A stored object of a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKey {
    /// The snapshot of one task of a checkpoint.
    Task {
        /// The checkpoint it belongs to.
        checkpoint: CheckpointId,
        /// The task's operator: its index in the job graph.
        node: usize,
        /// The task's index among its operator's parallel subtasks.
        subtask: usize,
    },
    /// A checkpoint's manifest, written last: the checkpoint exists once it is stored.
    Manifest {
        /// The checkpoint it describes.
        checkpoint: CheckpointId,
    },
}

impl ObjectKey {
    /// The checkpoint the object belongs to.
    pub fn checkpoint(&self) -> CheckpointId {
        match *self {
            ObjectKey::Task { checkpoint, .. } | ObjectKey::Manifest { checkpoint } => checkpoint,
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectKey::Task {
                checkpoint,
                node,
                subtask,
            } => write!(f, "checkpoint {checkpoint} task {node}.{subtask}"),
            ObjectKey::Manifest { checkpoint } => write!(f, "checkpoint {checkpoint} manifest"),
        }
    }
}

/// Why the snapshot store could not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The object is not stored.
    #[error("{object}: not in the snapshot store")]
    Missing {
        /// The object, as its key displays.
        object: String,
    },
    /// Storing the object failed.
    #[error("{object}: write failed: {reason}")]
    WriteFailed {
        /// The object, as its key displays.
        object: String,
        /// What the store reported.
        reason: String,
    },
    /// Reading the object failed.
    #[error("{object}: read failed: {reason}")]
    ReadFailed {
        /// The object, as its key displays.
        object: String,
        /// What the store reported.
        reason: String,
    },
}

/// Where checkpoints live. A checkpoint exists only once its manifest is stored.
pub trait SnapshotStore {
    /// Stores `bytes` as the object `key`, replacing what was there.
    fn put(&mut self, key: ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError>;
    /// The bytes stored as the object `key`.
    fn get(&self, key: ObjectKey) -> Result<Vec<u8>, StoreError>;
    /// Checkpoints with a stored manifest, ascending.
    fn checkpoints(&self) -> Result<Vec<CheckpointId>, StoreError>;
    /// The highest checkpoint id with any stored object (ids are never reused).
    fn highest_checkpoint(&self) -> Result<Option<CheckpointId>, StoreError>;
    /// Deletes every object of `checkpoint`, its manifest too.
    fn discard(&mut self, checkpoint: CheckpointId) -> Result<(), StoreError>;
}

/// An in-memory store, with hooks to inject the faults a real store has.
#[derive(Clone, Debug, Default)]
pub struct MemorySnapshotStore {
    objects: BTreeMap<ObjectKey, Vec<u8>>,
    failing_puts: usize,
}

impl MemorySnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `count` writes fail.
    pub fn fail_next_puts(&mut self, count: usize) {
        self.failing_puts += count;
    }

    /// Flips bits of a stored object (as disk corruption would); false if absent.
    pub fn corrupt(&mut self, key: ObjectKey, byte: usize, xor: u8) -> bool {
        match self.objects.get_mut(&key) {
            Some(bytes) if !bytes.is_empty() => {
                let at = byte % bytes.len();
                bytes[at] ^= xor.max(1);
                true
            }
            _ => false,
        }
    }

    /// Cuts a stored object short (a torn write); false if absent.
    pub fn truncate(&mut self, key: ObjectKey, len: usize) -> bool {
        match self.objects.get_mut(&key) {
            Some(bytes) => {
                bytes.truncate(len.min(bytes.len().saturating_sub(1)));
                true
            }
            None => false,
        }
    }

    /// The keys of the stored objects, ascending.
    pub fn keys(&self) -> Vec<ObjectKey> {
        self.objects.keys().copied().collect()
    }
}

impl SnapshotStore for MemorySnapshotStore {
    fn put(&mut self, key: ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError> {
        if self.failing_puts > 0 {
            self.failing_puts -= 1;
            return Err(StoreError::WriteFailed {
                object: key.to_string(),
                reason: "injected write failure".into(),
            });
        }
        self.objects.insert(key, bytes);
        Ok(())
    }

    fn get(&self, key: ObjectKey) -> Result<Vec<u8>, StoreError> {
        self.objects.get(&key).cloned().ok_or_else(|| StoreError::Missing {
            object: key.to_string(),
        })
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointId>, StoreError> {
        Ok(self
            .objects
            .keys()
            .filter_map(|k| match k {
                ObjectKey::Manifest { checkpoint } => Some(*checkpoint),
                ObjectKey::Task { .. } => None,
            })
            .collect())
    }

    fn highest_checkpoint(&self) -> Result<Option<CheckpointId>, StoreError> {
        Ok(self.objects.keys().map(ObjectKey::checkpoint).max())
    }

    fn discard(&mut self, checkpoint: CheckpointId) -> Result<(), StoreError> {
        self.objects.retain(|k, _| k.checkpoint() != checkpoint);
        Ok(())
    }
}

/// What became of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckpointOutcome {
    /// Every task's snapshot and the manifest are stored; notify the tasks next.
    Completed(CheckpointId),
    /// A write failed: the checkpoint does not exist; the job goes on.
    Failed {
        /// The checkpoint that failed.
        checkpoint: CheckpointId,
        /// Why the write failed.
        error: StoreError,
    },
}

/// How many checkpoints a coordinator started, completed and failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// Checkpoints begun.
    pub started: u64,
    /// Checkpoints whose manifest was stored.
    pub completed: u64,
    /// Checkpoints that a failed write ended.
    pub failed: u64,
}

/// The time a driver runs on, in milliseconds since its run started: the batch driver's
/// virtual processing time, the live runtime's wall clock. The engine reads no clock itself;
/// the coordinator's schedule ([`CheckpointCoordinator::every`]) asks the driver's.
pub trait Clock {
    /// Milliseconds since the run started.
    fn now(&self) -> Timestamp;
}

/// A clock stopped at a time the driver keeps.
impl Clock for Timestamp {
    fn now(&self) -> Timestamp {
        *self
    }
}

/// The checkpoint protocol's coordinator, sans-IO: which checkpoint to trigger next (one at
/// a time; ids never reused), the acknowledgements it waits for, the snapshots stored as they
/// arrive, the manifest written last (the commit point), and which old checkpoints go once
/// the tasks were notified. Every driver runs checkpoints through it: the simulator, the
/// bench and the tests over a [`Job`] ([`CheckpointCoordinator::trigger`],
/// [`CheckpointCoordinator::collect`]), the live runtime over tasks on threads of their own
/// ([`CheckpointCoordinator::begin`], [`CheckpointCoordinator::acknowledge`],
/// [`CheckpointCoordinator::complete`]). The driver owns time, delivery and the store; with
/// a schedule ([`CheckpointCoordinator::every`]) the coordinator decides when on the
/// driver's [`Clock`] ([`CheckpointCoordinator::tick`]).
#[derive(Debug)]
pub struct CheckpointCoordinator {
    next_checkpoint: CheckpointId,
    /// Begin a checkpoint this often (milliseconds), if set.
    interval: Option<Timestamp>,
    /// When the last scheduled checkpoint began (0: the run's start).
    last_scheduled: Timestamp,
    pending: Option<Pending>,
    retention: Retention,
    stats: CheckpointStats,
    last_completed: Option<CheckpointId>,
}

/// The checkpoint in flight: its id, the snapshots it waits for and how many arrived.
#[derive(Clone, Copy, Debug)]
struct Pending {
    checkpoint: CheckpointId,
    expected: usize,
    acknowledged: usize,
}

/// Which checkpoints a store keeps: the `retained` newest *notified* ones and everything
/// newer; older checkpoints are discarded.
///
/// Retention counts notified checkpoints, not completed ones: a completed checkpoint
/// nobody acted on may turn out unreadable, and discarding the last one the job did
/// commit from would make recovery start over and commit everything again (the
/// simulator found this with three corrupted checkpoints in a row).
#[derive(Debug)]
pub struct Retention {
    retained: usize,
    notified: Vec<CheckpointId>,
}

impl Retention {
    /// Keeps the `retained` newest notified checkpoints and everything newer.
    pub fn new(retained: usize) -> Self {
        Retention {
            retained,
            notified: Vec::new(),
        }
    }

    /// The tasks were notified that `checkpoint` completed: discards what is now too old.
    /// An error listing the store's checkpoints is returned; failing to discard one is not
    /// (an old checkpoint left behind costs space, not correctness).
    pub fn notified(&mut self, checkpoint: CheckpointId, store: &mut dyn SnapshotStore) -> Result<(), StoreError> {
        self.notified.push(checkpoint);
        if self.notified.len() <= self.retained {
            return Ok(());
        }
        let oldest_kept = self.notified[self.notified.len() - self.retained];
        self.notified.retain(|&c| c >= oldest_kept);
        for old in store.checkpoints()?.into_iter().filter(|&c| c < oldest_kept) {
            let _ = store.discard(old);
        }
        Ok(())
    }
}

impl CheckpointCoordinator {
    /// A coordinator whose ids continue after everything in `store` (ids are never reused:
    /// sinks commit idempotently per checkpoint id), keeping the 3 newest notified
    /// checkpoints.
    pub fn new(store: &dyn SnapshotStore) -> Result<Self, StoreError> {
        Ok(CheckpointCoordinator {
            next_checkpoint: store.highest_checkpoint()?.map_or(1, |id| id + 1),
            interval: None,
            last_scheduled: 0,
            pending: None,
            retention: Retention::new(3),
            stats: CheckpointStats::default(),
            last_completed: None,
        })
    }

    /// Keeps the `retained` newest notified checkpoints instead ([`Retention`]).
    pub fn with_retention(mut self, retained: usize) -> Self {
        self.retention = Retention::new(retained);
        self
    }

    /// Begins a checkpoint every `interval` milliseconds of the driver's clock, the first one
    /// `interval` after the start ([`tick`](Self::tick)); one that is due while another is in
    /// flight begins when that one ends, and the next `interval` after it began.
    pub fn every(mut self, interval: Timestamp) -> Self {
        self.interval = Some(interval.max(1));
        self
    }

    /// Numbers checkpoints after `checkpoint` at least (a job restored from it goes on with
    /// the next id; ids are never reused).
    pub fn after(mut self, checkpoint: CheckpointId) -> Self {
        self.next_checkpoint = self.next_checkpoint.max(checkpoint + 1);
        self
    }

    /// When the next scheduled checkpoint is due on the driver's clock (none without a
    /// schedule): a driver that sleeps wakes then.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.interval.map(|interval| self.last_scheduled + interval)
    }

    /// Begins the next checkpoint, which waits for `expected` snapshots, if the schedule says
    /// it is due at `clock`'s time and none is in flight. The driver then delivers the trigger.
    pub fn tick(&mut self, clock: &dyn Clock, expected: usize) -> Option<CheckpointId> {
        let now = clock.now();
        if self.pending.is_some() || self.next_due().is_none_or(|due| now < due) {
            return None;
        }
        self.last_scheduled = now;
        self.begin(expected)
    }

    /// [`tick`](Self::tick) for a [`Job`]: triggers the checkpoint at its sources.
    pub fn tick_job(&mut self, clock: &dyn Clock, job: &mut Job) -> Option<CheckpointId> {
        let checkpoint = self.tick(clock, job.snapshots_per_checkpoint())?;
        job.trigger_checkpoint(checkpoint);
        Some(checkpoint)
    }

    /// How many checkpoints were started, completed and failed so far.
    pub fn stats(&self) -> CheckpointStats {
        self.stats
    }

    /// The checkpoint in flight, if one is.
    pub fn pending(&self) -> Option<CheckpointId> {
        self.pending.map(|p| p.checkpoint)
    }

    /// How many snapshots of the checkpoint in flight have arrived (0 if none is in flight).
    pub fn acknowledged(&self) -> usize {
        self.pending.map_or(0, |p| p.acknowledged)
    }

    /// The newest checkpoint this coordinator completed.
    pub fn last_completed(&self) -> Option<CheckpointId> {
        self.last_completed
    }

    /// Starts the next checkpoint, which waits for `expected` snapshots, unless one is in
    /// flight. The driver then delivers the trigger to the tasks.
    pub fn begin(&mut self, expected: usize) -> Option<CheckpointId> {
        if self.pending.is_some() {
            return None;
        }
        let checkpoint = self.next_checkpoint;
        self.next_checkpoint += 1;
        self.pending = Some(Pending {
            checkpoint,
            expected,
            acknowledged: 0,
        });
        self.stats.started += 1;
        Some(checkpoint)
    }

    /// Starts the next checkpoint of `job`, unless one is in flight.
    pub fn trigger(&mut self, job: &mut Job) -> Option<CheckpointId> {
        let checkpoint = self.begin(job.snapshots_per_checkpoint())?;
        job.trigger_checkpoint(checkpoint);
        Some(checkpoint)
    }

    /// Forgets the checkpoint in flight (the job crashed).
    pub fn abort(&mut self) {
        self.pending = None;
    }

    /// A task's snapshot arrived: it is stored at once. An acknowledgement of an older
    /// checkpoint (one that failed) is ignored. A failed write fails the checkpoint.
    pub fn acknowledge(&mut self, snapshot: &TaskSnapshot, store: &mut dyn SnapshotStore) -> Option<CheckpointOutcome> {
        let pending = self.pending.as_mut()?;
        let checkpoint = pending.checkpoint;
        assert!(
            snapshot.checkpoint <= checkpoint,
            "an acknowledgement of a checkpoint not yet started"
        );
        if snapshot.checkpoint < checkpoint {
            return None; // a late acknowledgement of a checkpoint that failed
        }
        let key = ObjectKey::Task {
            checkpoint,
            node: snapshot.node,
            subtask: snapshot.subtask,
        };
        if let Err(error) = store.put(key, snapshot.encode()) {
            return Some(self.fail(checkpoint, error));
        }
        pending.acknowledged += 1;
        None
    }

    /// The checkpoint in flight, once every snapshot it waits for is stored: the driver may
    /// write objects of its own into it, then [`CheckpointCoordinator::complete`] it.
    pub fn ready(&self) -> Option<CheckpointId> {
        self.pending
            .filter(|p| p.acknowledged >= p.expected)
            .map(|p| p.checkpoint)
    }

    /// Writes the manifest of the checkpoint in flight, once it is [`ready`](Self::ready):
    /// from then on the checkpoint exists. The driver then tells the tasks (sinks commit)
    /// and reports it [`notified`](Self::notified).
    pub fn complete(&mut self, manifest: &Manifest, store: &mut dyn SnapshotStore) -> Option<CheckpointOutcome> {
        let checkpoint = self.ready()?;
        debug_assert_eq!(
            manifest.checkpoint, checkpoint,
            "the manifest of the checkpoint in flight"
        );
        if let Err(error) = store.put(ObjectKey::Manifest { checkpoint }, manifest.encode()) {
            return Some(self.fail(checkpoint, error));
        }
        self.pending = None;
        self.stats.completed += 1;
        self.last_completed = Some(checkpoint);
        Some(CheckpointOutcome::Completed(checkpoint))
    }

    /// Stores the acknowledgements `job` has for it; completes or fails the pending
    /// checkpoint.
    pub fn collect(&mut self, job: &mut Job, store: &mut dyn SnapshotStore) -> Option<CheckpointOutcome> {
        let mut snapshots = Vec::new();
        job.poll_acknowledgements(&mut snapshots);
        self.pending?;
        for snapshot in &snapshots {
            if let Some(failed) = self.acknowledge(snapshot, store) {
                return Some(failed);
            }
        }
        let checkpoint = self.ready()?;
        self.complete(&job.manifest(checkpoint), store)
    }

    /// The tasks were notified that `checkpoint` completed (sinks committed from it):
    /// older checkpoints go as [`Retention`] says. An error listing the store's checkpoints
    /// is returned; failing to discard one is not.
    pub fn notified(&mut self, checkpoint: CheckpointId, store: &mut dyn SnapshotStore) -> Result<(), StoreError> {
        self.retention.notified(checkpoint, store)
    }

    fn fail(&mut self, checkpoint: CheckpointId, error: StoreError) -> CheckpointOutcome {
        self.pending = None;
        self.stats.failed += 1;
        CheckpointOutcome::Failed { checkpoint, error }
    }
}

/// Why a checkpoint could not be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The store could not list or read an object.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored object did not decode, or is not the object its key names.
    #[error("{object}: {source}")]
    Snapshot {
        /// The object, as its key displays.
        object: String,
        /// What is wrong with it.
        source: SnapshotError,
    },
    /// The job could not be rebuilt from the checkpoint's snapshots.
    #[error(transparent)]
    Restore(#[from] RestoreError),
}

/// A job rebuilt from the store.
pub struct Recovery {
    /// The job, restored from the checkpoint or fresh.
    pub job: Job,
    /// The checkpoint restored, or `None` for a fresh start.
    pub checkpoint: Option<CheckpointId>,
    /// Newer checkpoints that could not be restored, and why.
    pub skipped: Vec<(CheckpointId, RecoveryError)>,
}

/// Restores the newest intact completed checkpoint, or starts fresh if there is none.
pub fn recover(graph: &JobGraph, store: &dyn SnapshotStore) -> Result<Recovery, StoreError> {
    recover_at(graph, &graph.layout(), store)
}

/// [`recover`] laid out as `layout` says: at other parallelisms, a rescaling restore, as
/// Flink's reactive mode and autoscaler do.
pub fn recover_at(graph: &JobGraph, layout: &Layout, store: &dyn SnapshotStore) -> Result<Recovery, StoreError> {
    let mut skipped = Vec::new();
    for checkpoint in store.checkpoints()?.into_iter().rev() {
        let restored = load_checkpoint(store, checkpoint)
            .and_then(|(manifest, snapshots)| Ok(Job::restore_at(graph, layout, &manifest, &snapshots)?));
        match restored {
            Ok(job) => {
                return Ok(Recovery {
                    job,
                    checkpoint: Some(checkpoint),
                    skipped,
                })
            }
            Err(error) => skipped.push((checkpoint, error)),
        }
    }
    Ok(Recovery {
        job: Job::with_layout(graph, layout),
        checkpoint: None,
        skipped,
    })
}

/// Restores one chosen checkpoint (a savepoint), possibly at other parallelisms.
pub fn restore_checkpoint(
    graph: &JobGraph,
    store: &dyn SnapshotStore,
    checkpoint: CheckpointId,
) -> Result<Job, RecoveryError> {
    let (manifest, snapshots) = load_checkpoint(store, checkpoint)?;
    Ok(Job::restore(graph, &manifest, &snapshots)?)
}

/// Reads and decodes a checkpoint's manifest and task snapshots.
pub fn load_checkpoint(
    store: &dyn SnapshotStore,
    checkpoint: CheckpointId,
) -> Result<(Manifest, Vec<TaskSnapshot>), RecoveryError> {
    let decode_error = |key: ObjectKey| {
        move |source| RecoveryError::Snapshot {
            object: key.to_string(),
            source,
        }
    };
    let manifest_key = ObjectKey::Manifest { checkpoint };
    let manifest = Manifest::decode(&store.get(manifest_key)?).map_err(decode_error(manifest_key))?;
    if manifest.checkpoint != checkpoint {
        return Err(RecoveryError::Snapshot {
            object: manifest_key.to_string(),
            source: SnapshotError::Payload {
                what: "manifest",
                reason: format!("it names checkpoint {}", manifest.checkpoint),
            },
        });
    }
    let mut snapshots = Vec::new();
    for (node, (_, parallelism)) in manifest.nodes.iter().enumerate() {
        for subtask in 0..*parallelism {
            let key = ObjectKey::Task {
                checkpoint,
                node,
                subtask,
            };
            let snapshot = TaskSnapshot::decode(&store.get(key)?).map_err(decode_error(key))?;
            if (snapshot.checkpoint, snapshot.node, snapshot.subtask) != (checkpoint, node, subtask) {
                return Err(RecoveryError::Snapshot {
                    object: key.to_string(),
                    source: SnapshotError::Payload {
                        what: "task snapshot",
                        reason: format!(
                            "it is the snapshot of task {}.{} of checkpoint {}",
                            snapshot.node, snapshot.subtask, snapshot.checkpoint
                        ),
                    },
                });
            }
            snapshots.push(snapshot);
        }
    }
    Ok((manifest, snapshots))
}
