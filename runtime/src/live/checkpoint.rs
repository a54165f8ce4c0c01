//! Checkpoint coordination: triggering a checkpoint at the tasks, storing their snapshots,
//! the output's committed length and then the manifest (the commit point), telling the tasks
//! it completed; and on start, restoring the newest checkpoint that reads back intact, with the
//! output rewound to what it committed. One checkpoint in flight at a time; when to trigger
//! one is the runtime loop's decision, and the tasks' side of the protocol is `runner`'s.

use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::options::LiveError;
use super::output::LiveOutput;
use super::protocol::Control;
use crate::store::FsSnapshotStore;
use eddy_engine::{
    restore_checkpoint, CheckpointCoordinator, CheckpointId, CheckpointOutcome, Clock, Job, JobGraph, Manifest,
    SnapshotStore, TaskSnapshot,
};

/// The driver's object in each checkpoint: the output file's committed length.
const OUTPUT_OBJECT: &str = "live-output";
const OUTPUT_MAGIC: &[u8; 8] = b"EDDYOUT1";

pub(super) fn encode_output_len(len: u64) -> Vec<u8> {
    let mut bytes = OUTPUT_MAGIC.to_vec();
    bytes.extend_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

pub(super) fn decode_output_len(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() != 20 || &bytes[..8] != OUTPUT_MAGIC {
        return Err(format!(
            "expected 20 bytes starting with {:?}, found {} bytes",
            std::str::from_utf8(OUTPUT_MAGIC).unwrap_or("?"),
            bytes.len()
        ));
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")))
}

/// A job rebuilt from the state directory, and its output rewound.
pub(super) struct Recovered {
    pub(super) job: Job,
    /// The checkpoint restored, or `None` for a fresh start.
    pub(super) checkpoint: Option<CheckpointId>,
    /// Newer checkpoints that could not be restored, and why.
    pub(super) skipped: Vec<(CheckpointId, String)>,
    /// The output length the restored checkpoint recorded (before its staged lines).
    pub(super) committed_len: u64,
}

/// Restores the newest checkpoint whose objects all read back, truncating `output` to the
/// length it committed; a fresh job with an empty output if none does.
pub(super) fn recover(graph: &JobGraph, store: &FsSnapshotStore, output: &LiveOutput) -> Result<Recovered, LiveError> {
    let mut skipped = Vec::new();
    for checkpoint in store.checkpoints()?.into_iter().rev() {
        let committed = match store
            .get_extra(checkpoint, OUTPUT_OBJECT)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                decode_output_len(&bytes).map_err(|reason| format!("checkpoint {checkpoint} {OUTPUT_OBJECT}: {reason}"))
            }) {
            Ok(len) => len,
            Err(reason) => {
                skipped.push((checkpoint, reason));
                continue;
            }
        };
        // Before the restore: restoring re-commits the checkpoint's staged transactions,
        // which were not yet in the file at `committed`.
        output.rewind(committed, checkpoint)?;
        match restore_checkpoint(graph, store, checkpoint) {
            Ok(job) => {
                return Ok(Recovered {
                    job,
                    checkpoint: Some(checkpoint),
                    skipped,
                    committed_len: committed,
                })
            }
            Err(error) => skipped.push((checkpoint, error.to_string())),
        }
    }
    output.rewind(0, 0)?;
    Ok(Recovered {
        job: Job::new(graph),
        checkpoint: None,
        skipped,
        committed_len: 0,
    })
}

/// The runtime's clock for the coordinator's schedule: milliseconds since the run started.
pub(super) struct WallClock(pub(super) Instant);

impl Clock for WallClock {
    fn now(&self) -> i64 {
        i64::try_from(self.0.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// The checkpoint in flight, as the runtime sees it.
pub(super) struct Pending {
    pub(super) checkpoint: CheckpointId,
    /// The output's length when the checkpoint started: every earlier checkpoint's
    /// transactions, none of this one's.
    pub(super) output_len: u64,
}

/// The runtime's side of the checkpoint protocol: it delivers what the engine's
/// [`CheckpointCoordinator`] decides (triggers to the tasks, snapshots to the store, the
/// output's committed length before the manifest, the notification after it). The
/// coordinator owns the protocol: ids, acknowledgements, the commit point, retention.
pub(super) struct Delivery<'a> {
    pub(super) store: &'a mut FsSnapshotStore,
    pub(super) output: &'a LiveOutput,
    pub(super) controls: &'a [mpsc::UnboundedSender<Control>],
    pub(super) is_source: &'a [bool],
    pub(super) nodes: Vec<(String, usize)>,
    pub(super) checkpoints: CheckpointCoordinator,
    /// How many snapshots a checkpoint waits for.
    pub(super) snapshots_per_checkpoint: usize,
    /// The checkpoint the run restored, until one completes (what progress shows).
    pub(super) restored: Option<CheckpointId>,
    pub(super) last_completed_at: Instant,
}

impl Delivery<'_> {
    /// The newest checkpoint completed, or restored at start.
    pub(super) fn last_completed(&self) -> Option<CheckpointId> {
        self.checkpoints.last_completed().or(self.restored)
    }

    /// Starts the next checkpoint if the coordinator's schedule says it is due at `clock`'s
    /// time and none is in flight.
    pub(super) async fn tick(&mut self, clock: &WallClock) -> Option<Pending> {
        let checkpoint = self.checkpoints.tick(clock, self.snapshots_per_checkpoint)?;
        Some(self.deliver(checkpoint).await)
    }

    /// Starts the next checkpoint now (the final one), unless one is in flight.
    pub(super) async fn trigger(&mut self) -> Option<Pending> {
        let checkpoint = self.checkpoints.begin(self.snapshots_per_checkpoint)?;
        Some(self.deliver(checkpoint).await)
    }

    /// Delivers the trigger of `checkpoint`: first to every non-source task (so that each
    /// knows it before any barrier can reach it, as `Job::trigger_checkpoint` does in one
    /// step), then to the sources, which snapshot their positions and send the barrier.
    async fn deliver(&mut self, checkpoint: CheckpointId) -> Pending {
        let output_len = self.output.len();
        for sources in [false, true] {
            let mut waiting = Vec::new();
            for (control, _) in self.controls.iter().zip(self.is_source).filter(|(_, &s)| s == sources) {
                let (done, wait) = oneshot::channel();
                let _ = control.send(Control::Trigger(checkpoint, done));
                waiting.push(wait);
            }
            for wait in waiting {
                let _ = wait.await;
            }
        }
        Pending { checkpoint, output_len }
    }

    /// A task's snapshot arrived: stored at once. False if the write failed (the checkpoint
    /// does not exist, and its sinks' transactions are committed with the next one).
    pub(super) fn acknowledge(&mut self, snapshot: &TaskSnapshot) -> bool {
        match self.checkpoints.acknowledge(snapshot, self.store) {
            Some(CheckpointOutcome::Failed { checkpoint, error }) => {
                eprintln!("live: checkpoint {checkpoint} failed: {error}");
                false
            }
            _ => true,
        }
    }

    /// Whether every snapshot of the checkpoint in flight is stored.
    pub(super) fn ready(&self) -> bool {
        self.checkpoints.ready().is_some()
    }

    /// Stores the output's committed length, then the manifest; tells the tasks (sinks
    /// commit). False if a write failed: the checkpoint does not exist, and its sinks'
    /// transactions are committed with the next one.
    pub(super) async fn complete(&mut self, pending: Pending) -> Result<bool, LiveError> {
        let checkpoint = pending.checkpoint;
        // A sink that failed its pre-commit (a database's prepare) fails the checkpoint and
        // the run: a restart restores the last checkpoint and replays from there.
        if let Some(error) = self.output.take_failure() {
            return Err(error);
        }
        let manifest = Manifest {
            checkpoint,
            nodes: self.nodes.clone(),
        };
        let stored = match self
            .store
            .put_extra(checkpoint, OUTPUT_OBJECT, &encode_output_len(pending.output_len))
        {
            Ok(()) => self.checkpoints.complete(&manifest, self.store),
            Err(error) => {
                self.checkpoints.abort();
                Some(CheckpointOutcome::Failed { checkpoint, error })
            }
        };
        if let Some(CheckpointOutcome::Failed { error, .. }) = stored {
            eprintln!("live: checkpoint {checkpoint} failed: {error}");
            return Ok(false);
        }
        let mut waiting = Vec::new();
        for control in self.controls {
            let (done, wait) = oneshot::channel();
            let _ = control.send(Control::Complete(checkpoint, done));
            waiting.push(wait);
        }
        for wait in waiting {
            let _ = wait.await;
        }
        if let Some(error) = self.output.take_failure() {
            return Err(error);
        }
        self.last_completed_at = Instant::now();
        self.checkpoints.notified(checkpoint, self.store)?;
        Ok(true)
    }
}
