//! Planted bugs: a catalogue of realistic mistakes, to prove the oracles catch them.
//!
//! Each bug is a switch at one place in the engine. The switches exist only with the
//! `planted-bugs` cargo feature (the `eddy` CLI turns it on; a pipeline's own build does
//! not): without it [`is_active`] is a constant `false` and the bug code is compiled out.
//! The active bug is per thread, set by the simulator for the length of one run.
//! How to add one: docs/testing.md.

use std::fmt;
use std::str::FromStr;

/// A planted bug: a realistic mistake, switched on at one place in the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// Dedup keeps its "already seen" intervals in a side table the snapshot does not include.
    StateOutsideBackend,
    /// The two-phase-commit sink commits every batch on receipt.
    SinkWritesOnReceipt,
    /// The sink commits when the barrier passes, not when the checkpoint completes.
    CommitAtBarrier,
    /// A restored source starts at the newest log offsets, not the checkpointed ones.
    SourceNotRewound,
    /// Session windows' timers are not restored from snapshots.
    TimersNotSnapshotted,
    /// An operator's watermark is the maximum over its inputs instead of the minimum.
    WatermarkMax,
    /// Windows treated as `[start, end]`: a record at `end` also lands in the window.
    WindowsClosedInterval,
    /// Late records are counted but not sent to the late side output.
    LateDroppedSilently,
    /// Dedup intervals never expire.
    DedupNoTtl,
    /// Window results are emitted in a std `HashMap`'s iteration order.
    HashMapOutputOrder,
    /// A changelog aggregation drops the first retraction of a key restored from a snapshot.
    RetractionDroppedOnRestore,
    /// Min and max keep only their extreme, not the multiset: a retracted extreme stays.
    MinMaxWithoutMultiset,
    /// A left outer join does not retract `(left, null)` when the first match arrives.
    JoinForgetsNullRetraction,
    /// A restored sink commits every prepared transaction it finds, later checkpoints' too.
    CommitPreparedOfLaterCheckpoint,
}

impl Bug {
    /// Every planted bug, in catalogue order.
    pub const ALL: [Bug; 14] = [
        Bug::StateOutsideBackend,
        Bug::SinkWritesOnReceipt,
        Bug::CommitAtBarrier,
        Bug::SourceNotRewound,
        Bug::TimersNotSnapshotted,
        Bug::WatermarkMax,
        Bug::WindowsClosedInterval,
        Bug::LateDroppedSilently,
        Bug::DedupNoTtl,
        Bug::HashMapOutputOrder,
        Bug::RetractionDroppedOnRestore,
        Bug::MinMaxWithoutMultiset,
        Bug::JoinForgetsNullRetraction,
        Bug::CommitPreparedOfLaterCheckpoint,
    ];

    /// The bug's name, as the CLI, reports and replay files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Bug::StateOutsideBackend => "state-outside-backend",
            Bug::SinkWritesOnReceipt => "sink-writes-on-receipt",
            Bug::CommitAtBarrier => "commit-at-barrier",
            Bug::SourceNotRewound => "source-not-rewound",
            Bug::TimersNotSnapshotted => "timers-not-snapshotted",
            Bug::WatermarkMax => "watermark-max",
            Bug::WindowsClosedInterval => "windows-closed-interval",
            Bug::LateDroppedSilently => "late-dropped-silently",
            Bug::DedupNoTtl => "dedup-no-ttl",
            Bug::HashMapOutputOrder => "hashmap-output-order",
            Bug::RetractionDroppedOnRestore => "retraction-dropped-on-restore",
            Bug::MinMaxWithoutMultiset => "min-max-without-multiset",
            Bug::JoinForgetsNullRetraction => "join-forgets-null-retraction",
            Bug::CommitPreparedOfLaterCheckpoint => "commit-prepared-of-later-checkpoint",
        }
    }

    /// What goes wrong, in one line (`eddy list --bugs` prints it).
    pub fn description(self) -> &'static str {
        match self {
            Bug::StateOutsideBackend => "dedup keeps seen ids in a side table that snapshots miss",
            Bug::SinkWritesOnReceipt => "the transactional sink makes records visible on receipt",
            Bug::CommitAtBarrier => "the sink commits at the barrier instead of at checkpoint completion",
            Bug::SourceNotRewound => "a restored source starts at the newest offsets, not the checkpointed ones",
            Bug::TimersNotSnapshotted => "session window timers are not restored from snapshots",
            Bug::WatermarkMax => "an operator's watermark is the max of its inputs, not the min",
            Bug::WindowsClosedInterval => "windows treated as [start, end]: a record at end joins too",
            Bug::LateDroppedSilently => "late records are dropped without the late side output",
            Bug::DedupNoTtl => "dedup state never expires",
            Bug::HashMapOutputOrder => "window results are emitted in a std HashMap's iteration order",
            Bug::RetractionDroppedOnRestore => {
                "a changelog aggregation drops the first retraction of a key restored from a snapshot"
            }
            Bug::MinMaxWithoutMultiset => "min and max keep only their extreme: a retracted maximum is not replaced",
            Bug::JoinForgetsNullRetraction => "a left outer join does not retract (left, null) when a match arrives",
            Bug::CommitPreparedOfLaterCheckpoint => {
                "recovery commits every prepared database transaction, those of checkpoints after the restored one too"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that names no planted bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown planted bug `{0}` (`eddy list --bugs` lists them)")]
pub struct UnknownBug(pub String);

impl FromStr for Bug {
    type Err = UnknownBug;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| UnknownBug(name.to_string()))
    }
}

/// Whether the planted bugs are compiled in.
pub const AVAILABLE: bool = cfg!(feature = "planted-bugs");

#[cfg(feature = "planted-bugs")]
thread_local! {
    static ACTIVE: std::cell::Cell<Option<Bug>> = const { std::cell::Cell::new(None) };
    static COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether `bug` is planted in the run on this thread.
#[inline]
pub fn is_active(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        ACTIVE.with(|active| active.get() == Some(bug))
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// Plants `bug` on this thread until the guard drops. Without the feature, planting a bug
/// is an error of the caller (`AVAILABLE` says whether it can be done).
pub fn plant(bug: Option<Bug>) -> Planted {
    #[cfg(feature = "planted-bugs")]
    {
        let previous = ACTIVE.with(|active| active.replace(bug));
        COUNTER.with(|c| c.set(0));
        Planted { previous }
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        assert!(
            bug.is_none(),
            "eddy-engine was built without the `planted-bugs` feature"
        );
        Planted { previous: None }
    }
}

/// Keeps a bug planted on this thread until it drops; then the one planted before is back.
pub struct Planted {
    #[allow(dead_code)]
    previous: Option<Bug>,
}

impl Drop for Planted {
    fn drop(&mut self) {
        #[cfg(feature = "planted-bugs")]
        ACTIVE.with(|active| active.set(self.previous));
    }
}

/// A number unique within the current run (for the transaction ids of a sink that writes
/// on receipt).
pub(crate) fn next_number() -> u64 {
    #[cfg(feature = "planted-bugs")]
    {
        COUNTER.with(|c| {
            c.set(c.get() + 1);
            c.get()
        })
    }
    #[cfg(not(feature = "planted-bugs"))]
    0
}

/// `hashmap-output-order`: the keys in the iteration order of a std `HashMap` with a random
/// hasher, as a careless implementation would emit them.
#[allow(clippy::disallowed_types)]
pub(crate) fn hash_map_order<K: std::hash::Hash + Eq + Clone>(keys: Vec<K>) -> Vec<K> {
    let map: std::collections::HashMap<K, ()> = keys.into_iter().map(|k| (k, ())).collect();
    map.into_keys().collect()
}
