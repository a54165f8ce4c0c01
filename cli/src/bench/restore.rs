//! `eddy bench --restore-keys N`: the time to restore a checkpoint of `N` keys.
//!
//! A pageviews-like count per key in one window that stays open: `N` records with distinct
//! keys, then a tail of repeated keys. The batch driver's order runs it until the sources
//! have read the `N` records, a checkpoint completes (every key's pane in it) and the run
//! stops. Timed: decoding the stored snapshots (`load_checkpoint`) and `Job::restore` into a
//! fresh job. Then, untimed, the restored job runs to the end: its counts must add up to
//! every input record, so the restore is checked, not only timed.

use std::time::Instant;

use eddy::engine::checkpoint::load_checkpoint;
use eddy::engine::{Job, MemorySnapshotStore, ObjectKey, SnapshotStore};
use eddy::{Count, Log, Pipeline, Record, WindowAssigner};
use serde::Serialize;

use super::checksum::Checksum;
use super::report::thousands;
use super::settings::watermarks;
use super::state::{checkpoint_size, run_with_checkpoints, Continue};

/// Records after the `N` distinct keys (more than a poll, so the source has not ended when
/// the checkpoint is taken).
const TAIL: usize = 10_000;
/// A window longer than the input: it stays open until the end of input.
const WINDOW_MS: i64 = 1 << 40;
/// Restoring slower than this misses the goal.
const GOAL_S: f64 = 1.0;

#[derive(Clone, Debug, Serialize)]
pub struct RestoreResult {
    pub keys: usize,
    /// Keyed state entries in the checkpoint (one pane per key).
    pub keyed_entries: u64,
    /// Bytes of the checkpoint's stored task snapshots.
    pub checkpoint_bytes: u64,
    /// Reading and decoding the stored snapshots and manifest.
    pub decode_s: f64,
    /// `Job::restore` from the decoded snapshots.
    pub restore_s: f64,
    pub total_s: f64,
    pub goal_s: f64,
    /// The restored job ran to the end and its counts added up to every input record.
    pub verified: bool,
}

pub fn measure(keys: usize) -> RestoreResult {
    eprintln!("restore: building a checkpoint of {keys} keys ...");
    let input: Vec<Record<u64>> = (0..keys as u64)
        .chain((0..TAIL as u64).map(|i| i % keys as u64))
        .enumerate()
        .map(|(i, key)| Record::new(i as i64, key))
        .collect();
    let total_records = input.len() as u64;
    let checksum = Checksum::new(false);
    let pipeline = Pipeline::new().with_parallelism(1);
    let counts = pipeline
        .source("views", Log::round_robin(input, 1), watermarks(0))
        .key_by(|key: &u64| *key)
        .window(WindowAssigner::tumbling(WINDOW_MS))
        .aggregate(Count);
    // The counts' sum: the number of records counted.
    checksum.attach(counts.output, |r| r.value.value);
    let graph = pipeline.build().expect("the restore bench pipeline is valid");

    let mut stored = MemorySnapshotStore::new();
    let mut taken = None;
    run_with_checkpoints(&graph, keys as u64, |store, checkpoint| {
        for key in store.keys().into_iter().filter(|k| k.checkpoint() == checkpoint) {
            stored
                .put(key, store.get(key).expect("listed"))
                .expect("a memory store does not fail");
        }
        taken = Some(checkpoint);
        Continue::No
    });
    let checkpoint = taken.expect("the run completes a checkpoint");
    let (checkpoint_bytes, keyed_entries) = checkpoint_size(&stored, checkpoint);
    assert!(
        stored.keys().contains(&ObjectKey::Manifest { checkpoint }),
        "a completed checkpoint has its manifest"
    );
    assert_eq!(checksum.get(), 0, "nothing fired before the checkpoint");

    eprintln!("restore: restoring checkpoint {checkpoint} ...");
    let started = Instant::now();
    let (manifest, snapshots) = load_checkpoint(&stored, checkpoint).expect("the checkpoint loads");
    let decoded = Instant::now();
    let mut job = Job::restore(&graph, &manifest, &snapshots).expect("the checkpoint restores");
    let restored = Instant::now();
    drop(snapshots);

    let summary = eddy::run_batch(&mut job, &mut eddy::engine::InOrder, &eddy::BatchConfig::default())
        .expect("the restored job runs to the end");
    let verified = checksum.get() == total_records && summary.state_entries == 0;
    RestoreResult {
        keys,
        keyed_entries,
        checkpoint_bytes,
        decode_s: (decoded - started).as_secs_f64(),
        restore_s: (restored - decoded).as_secs_f64(),
        total_s: (restored - started).as_secs_f64(),
        goal_s: GOAL_S,
        verified,
    }
}

pub fn print(result: &RestoreResult) {
    println!(
        "restore ({} keys, a count per key in one open window)",
        thousands(result.keys as f64)
    );
    println!(
        "  checkpoint: {} bytes, {} keyed entries, {:.1} bytes per entry",
        thousands(result.checkpoint_bytes as f64),
        thousands(result.keyed_entries as f64),
        result.checkpoint_bytes as f64 / result.keyed_entries.max(1) as f64
    );
    println!(
        "  decode {:.3} s + Job::restore {:.3} s = {:.3} s (goal < {:.0} s: {})",
        result.decode_s,
        result.restore_s,
        result.total_s,
        result.goal_s,
        if result.total_s < result.goal_s {
            "met"
        } else {
            "MISSED"
        }
    );
    if result.verified {
        println!("  the restored job ran to the end: its counts add up to every input record");
    } else {
        println!("  MISMATCH: the restored job's counts do not add up to the input");
    }
}
