//! The state a checkpoint holds: a run with checkpoints at a cadence, and the bytes and keyed
//! entries of its largest checkpoint ([`StateSize`]).

use std::ops::ControlFlow;

use eddy::engine::{
    run_steps, BatchConfig, CheckpointCoordinator, CheckpointOutcome, InOrder, Job, MemorySnapshotStore, ObjectKey,
    SnapshotStore, TaskSnapshot,
};
use eddy::JobGraph;
use serde::Serialize;

use super::settings::CHECKPOINT_EVERY;

/// The state of the largest completed checkpoint (by bytes) of an untimed engine run at
/// parallelism 1 with a checkpoint each time the source has read `CHECKPOINT_EVERY` more
/// records (the simulator variant's cadence, in the batch driver's order).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StateSize {
    pub checkpoints: u64,
    /// Bytes of every task snapshot of that checkpoint, as stored (frames, source offsets
    /// and operator state included).
    pub checkpoint_bytes: u64,
    /// Keyed state entries in it: one per key for dedup and the temporal join, one per
    /// (key, window) pane for windows, one per (key, session) for sessions.
    pub keyed_entries: u64,
    /// `checkpoint_bytes / keyed_entries` (none if the checkpoint held no keyed entry).
    pub bytes_per_entry: Option<f64>,
}

/// Runs `graph` in order (as `run_to_end`) with a checkpoint each time the sources have read
/// `CHECKPOINT_EVERY` more records, and measures the largest completed checkpoint.
pub fn state_size(graph: &JobGraph) -> StateSize {
    let mut largest = StateSize::default();
    let mut checkpoints = 0;
    run_with_checkpoints(graph, CHECKPOINT_EVERY, |store, checkpoint| {
        checkpoints += 1;
        let (bytes, entries) = checkpoint_size(store, checkpoint);
        if bytes > largest.checkpoint_bytes {
            largest.checkpoint_bytes = bytes;
            largest.keyed_entries = entries;
        }
        Continue::Yes
    });
    largest.checkpoints = checkpoints;
    largest.bytes_per_entry =
        (largest.keyed_entries > 0).then(|| largest.checkpoint_bytes as f64 / largest.keyed_entries as f64);
    largest
}

/// Whether [`run_with_checkpoints`] goes on after a completed checkpoint.
#[derive(PartialEq, Eq)]
pub enum Continue {
    Yes,
    No,
}

/// Runs a fresh job of `graph` with the batch driver ([`run_steps`]: 1,024 records per poll,
/// 1 ms of processing time per step), triggering a checkpoint each time the sources have read
/// `every` more records; `completed` sees each completed checkpoint in the store (then
/// discarded) and may stop the run.
pub fn run_with_checkpoints(
    graph: &JobGraph,
    every: u64,
    mut completed: impl FnMut(&MemorySnapshotStore, u64) -> Continue,
) {
    let mut job = Job::new(graph);
    let mut store = MemorySnapshotStore::new();
    let mut coordinator = CheckpointCoordinator::new(&store).expect("a memory store does not fail");
    let mut next_checkpoint_at = every;
    let config = BatchConfig {
        max_steps: 1_000_000_000,
        ..BatchConfig::default()
    };
    let mut after_step = |job: &mut Job| {
        let read = job.metrics().source_records;
        if read >= next_checkpoint_at && coordinator.pending().is_none() {
            coordinator.trigger(job);
            next_checkpoint_at = read + every;
        }
        match coordinator.collect(job, &mut store) {
            Some(CheckpointOutcome::Completed(checkpoint)) => {
                let go_on = completed(&store, checkpoint);
                job.notify_checkpoint_complete(checkpoint);
                store.discard(checkpoint).expect("a memory store does not fail");
                if go_on == Continue::No {
                    return ControlFlow::Break(());
                }
            }
            Some(failed) => panic!("a benchmark checkpoint failed: {failed:?}"),
            None => {}
        }
        ControlFlow::Continue(())
    };
    run_steps(&mut job, &mut InOrder, &config, &mut after_step).expect("a benchmark job finishes");
}

/// The stored bytes of `checkpoint`'s task snapshots, and the keyed state entries in them.
pub fn checkpoint_size(store: &MemorySnapshotStore, checkpoint: u64) -> (u64, u64) {
    let mut bytes = 0;
    let mut entries = 0;
    for key in store.keys() {
        if !matches!(key, ObjectKey::Task { checkpoint: c, .. } if c == checkpoint) {
            continue;
        }
        let object = store.get(key).expect("listed");
        bytes += object.len() as u64;
        let snapshot = TaskSnapshot::decode(&object).expect("a snapshot just written decodes");
        // Each key group holds a postcard sequence of entries: its length comes first.
        entries += snapshot.state.keyed.values().map(|group| varint(group)).sum::<u64>();
    }
    (bytes, entries)
}

/// The unsigned LEB128 varint at the start of `bytes` (postcard's sequence length).
fn varint(bytes: &[u8]) -> u64 {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("a keyed state group does not start with a sequence length")
}
