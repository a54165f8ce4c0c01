//! Independent reference computations shared by the property suites. They share no code
//! with the engine: windows by `div_euclid` and brute-force enumeration, sessions by sorting,
//! folds into `BTreeMap`s.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use eddy::engine::{
    recover_at, CheckpointCoordinator, CheckpointId, CheckpointOutcome, Job, JobGraph, Layout, MemorySnapshotStore,
    ObjectKey,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use eddy::{Change, Keep, Record};
use proptest::test_runner::{Config, FileFailurePersistence};

/// `cases` by default (`PROPTEST_CASES` overrides); failures persist in the committed
/// `proptest-regressions/NAME.txt` and are replayed first on every run.
pub fn proptest_config(name: &'static str, cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(name))),
        ..Config::default()
    }
}

/// (key, value)
pub type Event = (u8, i64);

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Tumbling { size: i64, offset: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

pub type Table = BTreeMap<(u8, i64, i64), (u64, i64)>; // (key, start, end) -> (count, sum)

/// The reference: fold `records` into per-(key, window) counts and sums.
pub fn reference(kind: Kind, records: &[Record<Event>]) -> Table {
    let mut table = Table::new();
    let mut add = |key: u8, start: i64, end: i64, value: i64| {
        let entry = table.entry((key, start, end)).or_default();
        entry.0 += 1;
        entry.1 += value;
    };
    match kind {
        Kind::Tumbling { size, offset } => {
            for r in records {
                let start = (r.ts - offset).div_euclid(size) * size + offset;
                add(r.value.0, start, start + size, r.value.1);
            }
        }
        Kind::Sliding { size, slide } => {
            for r in records {
                let first = (r.ts - size).div_euclid(slide) - 1;
                let last = r.ts.div_euclid(slide) + 1;
                for k in first..=last {
                    let start = k * slide;
                    if start <= r.ts && r.ts < start + size {
                        add(r.value.0, start, start + size, r.value.1);
                    }
                }
            }
        }
        Kind::Session { gap } => {
            let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
            for r in records {
                by_key.entry(r.value.0).or_default().push((r.ts, r.value.1));
            }
            for (key, mut events) in by_key {
                events.sort();
                let mut session: Option<(i64, i64, u64, i64)> = None; // start, end, count, sum
                for (ts, value) in events {
                    session = match session {
                        // Touching sessions merge, as in Flink.
                        Some((start, end, count, sum)) if ts <= end => {
                            Some((start, end.max(ts + gap), count + 1, sum + value))
                        }
                        done => {
                            if let Some((start, end, count, sum)) = done {
                                table.insert((key, start, end), (count, sum));
                            }
                            Some((ts, ts + gap, 1, value))
                        }
                    };
                }
                if let Some((start, end, count, sum)) = session {
                    table.insert((key, start, end), (count, sum));
                }
            }
        }
    }
    table
}

/// Session results against the reference's sessions of the accepted records, under Flink's
/// rules: a record that touched a session only after the watermark had cleared it starts a
/// session of its own, so a reference session may come out split in parts (each inside
/// it), whose counts and sums add up to it. `splits_allowed`: whether the input can make a
/// record arrive behind the watermark at all.
pub fn sessions_match(actual: &Table, expected: &Table, splits_allowed: bool) -> Result<(), String> {
    if actual == expected {
        return Ok(());
    }
    if !splits_allowed {
        return Err(format!("sessions {actual:?}, expected {expected:?}"));
    }
    let mut parts: BTreeMap<(u8, i64, i64), (u64, i64)> = BTreeMap::new();
    for (&(key, start, end), &(count, sum)) in actual {
        let whole = expected
            .keys()
            .find(|(k, s, e)| *k == key && *s <= start && end <= *e)
            .ok_or_else(|| format!("session ({key}, {start}, {end}) is in no reference session of {expected:?}"))?;
        let total = parts.entry(*whole).or_default();
        total.0 += count;
        total.1 += sum;
    }
    if parts != *expected {
        return Err(format!("sessions {actual:?} do not add up to {expected:?}"));
    }
    Ok(())
}

/// A session aggregate that keeps its members (the events' values, unique per record): a
/// session that grew by a late merge holds every member of the smaller one it absorbed, while
/// two sessions a clean-up split apart hold disjoint members, which counts cannot tell apart.
#[derive(Clone, Copy, Debug, Default)]
pub struct Members;

impl eddy::AggregateFunction<Event> for Members {
    type Acc = Vec<i64>;
    type Out = Vec<i64>;
    fn create_accumulator(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, value: &Event) {
        acc.push(value.1);
        acc.sort();
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
        acc.sort();
    }
    fn result(&self, acc: &Self::Acc) -> Self::Out {
        acc.clone()
    }
}

/// `(key, start, end)` -> the session's members, `(ts, value)` sorted.
pub type SessionMembers = BTreeMap<(u8, i64, i64), Vec<(i64, i64)>>;

/// Judges session windows by their members (`(ts, value)`, sorted), exactly once:
/// `committed` holds the last value of each `(key, start, end)`. A session whose members are all in a larger session of its
/// key, inside its span, was superseded by a late merge and is dropped; the rest must hold
/// each accepted record once, and each must be one session: members `gap`-connected, its
/// window `[first, last + gap)`. (Where a clean-up split a session is schedule-dependent,
/// so any split along the members is accepted.)
pub fn sessions_hold_each_record_once(
    committed: &SessionMembers,
    accepted: &[Record<Event>],
    gap: i64,
) -> Result<(), String> {
    let within = |small: &[(i64, i64)], large: &[(i64, i64)]| {
        let mut rest = large.to_vec();
        small.iter().all(|m| match rest.iter().position(|x| x == m) {
            Some(at) => {
                rest.swap_remove(at);
                true
            }
            None => false,
        })
    };
    let mut held: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for (&(key, start, end), members) in committed {
        let superseded = committed.iter().any(|(&(k, s, e), larger)| {
            k == key && s <= start && end <= e && (s, e) != (start, end) && within(members, larger)
        });
        if superseded {
            continue;
        }
        let (Some(first), Some(last)) = (members.first(), members.last()) else {
            return Err(format!("session ({key}, {start}, {end}) has no members"));
        };
        if (start, end) != (first.0, last.0 + gap) {
            return Err(format!("session ({key}, {start}, {end}) holds {members:?}"));
        }
        if let Some(pair) = members.windows(2).find(|pair| pair[1].0 - pair[0].0 > gap) {
            return Err(format!(
                "session ({key}, {start}, {end}) is not one session: {pair:?} in {members:?}"
            ));
        }
        held.entry(key).or_default().extend(members);
    }
    let mut expected: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for r in accepted {
        expected.entry(r.value.0).or_default().push((r.ts, r.value.1));
    }
    for members in held.values_mut().chain(expected.values_mut()) {
        members.sort();
    }
    if held != expected {
        return Err(format!("sessions hold {held:?}, the accepted records are {expected:?}"));
    }
    Ok(())
}

/// A schedule of faults, by global step number (steps keep counting across restarts).
#[derive(Clone, Debug, Default)]
pub struct FaultPlan {
    pub checkpoints: BTreeSet<u64>,
    pub crashes: BTreeSet<u64>,
    pub failed_writes: BTreeSet<u64>,
    pub lost_notifications: BTreeSet<CheckpointId>,
    /// Completed checkpoints corrupted in the store before anyone is notified of them.
    pub corrupted: BTreeSet<CheckpointId>,
}

pub fn plan_strategy() -> impl Strategy<Value = FaultPlan> {
    let steps = |n| prop::collection::btree_set(1..400u64, 0..n);
    let ids = |n| prop::collection::btree_set(1..12u64, 0..n);
    (steps(12), steps(4), steps(3), ids(4), ids(3)).prop_map(
        |(checkpoints, crashes, failed_writes, lost, corrupted)| FaultPlan {
            checkpoints,
            crashes,
            failed_writes,
            lost_notifications: lost,
            corrupted,
        },
    )
}

#[derive(Debug, Default)]
pub struct FaultyRun {
    pub crashes: u64,
    pub restores_from_checkpoint: u64,
    pub skipped_corrupt: u64,
    pub completed: u64,
}

/// Runs the job to its end under `plan`, restarting from the store after each crash.
pub fn run_with_faults(graph: &JobGraph, plan: &FaultPlan, seed: u64) -> FaultyRun {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch_size = rng.gen_range(1..6);
    let mut store = MemorySnapshotStore::new();
    // Even seeds run chained, odd seeds not (as the simulator does): both layouts recover.
    let layout = Layout {
        chaining: graph.chaining && seed.is_multiple_of(2),
        ..graph.layout()
    };
    let mut job = Job::with_layout(graph, &layout);
    let mut coordinator = CheckpointCoordinator::new(&store).unwrap();
    let mut run = FaultyRun::default();
    let (mut now, mut step) = (0i64, 0u64);
    let mut actions = Vec::new();
    // A checkpoint triggered after every task ended carries the last transactions.
    let mut final_checkpoint: Option<CheckpointId> = None;
    let crash =
        |job: &mut Job, coordinator: &mut CheckpointCoordinator, store: &MemorySnapshotStore, run: &mut FaultyRun| {
            run.crashes += 1;
            let recovery = recover_at(graph, &layout, store).expect("the memory store does not fail reads");
            run.restores_from_checkpoint += u64::from(recovery.checkpoint.is_some());
            run.skipped_corrupt += recovery.skipped.len() as u64;
            *job = recovery.job;
            *coordinator = CheckpointCoordinator::new(store).unwrap();
        };
    loop {
        step += 1;
        assert!(step < 200_000, "the run does not end: {plan:?}");
        if plan.crashes.contains(&step) {
            crash(&mut job, &mut coordinator, &store, &mut run);
            final_checkpoint = None;
            continue;
        }
        if plan.failed_writes.contains(&step) {
            store.fail_next_puts(1);
        }
        if plan.checkpoints.contains(&step) {
            coordinator.trigger(&mut job);
        }
        job.handle_processing_time(now);
        job.ready_actions(&mut actions);
        if actions.is_empty() {
            if job.is_finished() {
                if coordinator.pending().is_none() {
                    final_checkpoint = coordinator.trigger(&mut job);
                }
            } else {
                now = job
                    .next_processing_deadline()
                    .expect("an unfinished job has a deadline")
                    .max(now + 1);
                continue;
            }
        } else {
            let action = actions[rng.gen_range(0..actions.len())];
            job.perform(action, batch_size);
            now += 1;
        }
        match coordinator.collect(&mut job, &mut store) {
            Some(CheckpointOutcome::Completed(checkpoint)) => {
                run.completed += 1;
                if plan.corrupted.contains(&checkpoint) {
                    store.corrupt(
                        ObjectKey::Task {
                            checkpoint,
                            node: 0,
                            subtask: 0,
                        },
                        20,
                        0x40,
                    );
                    continue; // nobody hears of a checkpoint that is already damaged
                }
                if plan.lost_notifications.contains(&checkpoint) {
                    if final_checkpoint == Some(checkpoint) {
                        // The job would wait for the notification forever: it restarts.
                        crash(&mut job, &mut coordinator, &store, &mut run);
                        final_checkpoint = None;
                    }
                    continue;
                }
                job.notify_checkpoint_complete(checkpoint);
                coordinator
                    .notified(checkpoint, &mut store)
                    .expect("the store lists its checkpoints");
                if final_checkpoint == Some(checkpoint) {
                    return run;
                }
            }
            Some(CheckpointOutcome::Failed { .. }) => final_checkpoint = None,
            None => {}
        }
    }
}

/// Reference dedup: per id, sort by (ts, payload); intervals [first, first + ttl).
pub fn dedup_reference<E: Ord + Copy>(
    keep: Keep,
    ttl: i64,
    accepted: &[Record<(u8, E)>],
) -> (Vec<Record<(u8, E)>>, u64) {
    type Timestamped<E> = (i64, (u8, E));
    let mut by_id: BTreeMap<u8, Vec<Timestamped<E>>> = BTreeMap::new();
    for r in accepted {
        by_id.entry(r.value.0).or_default().push((r.ts, r.value));
    }
    let (mut out, mut duplicates) = (Vec::new(), 0);
    for (_, mut events) in by_id {
        events.sort();
        let mut i = 0;
        while i < events.len() {
            let end = events[i].0 + ttl;
            let mut j = i;
            while j + 1 < events.len() && events[j + 1].0 < end {
                j += 1;
            }
            duplicates += (j - i) as u64;
            out.push(match keep {
                Keep::First => Record::new(events[i].0, events[i].1),
                Keep::Last => Record::new(end - 1, events[j].1),
            });
            i = j + 1;
        }
    }
    out.sort();
    (out, duplicates)
}

/// Reference temporal join: each probe takes the newest accepted change of its key at or
/// before its timestamp; `(ts, key, value)` sorted.
pub fn join_reference<V: Copy + Ord>(
    probes: &[Record<u8>],
    changes: &[Record<Change<u8, V>>],
) -> Vec<(i64, u8, Option<V>)> {
    let mut joined: Vec<(i64, u8, Option<V>)> = probes
        .iter()
        .map(|p| {
            let version = changes
                .iter()
                .filter(|c| *c.value.key() == p.value && c.ts <= p.ts)
                .max_by_key(|c| c.ts)
                .and_then(|c| match &c.value {
                    Change::Upsert { value, .. } => Some(*value),
                    Change::Delete { .. } => None,
                });
            (p.ts, p.value, version)
        })
        .collect();
    joined.sort();
    joined
}

/// A session that grew by a late merge supersedes the smaller ones it absorbed: keep only
/// windows not inside another window of the same key.
pub fn without_superseded<V: Clone>(upserts: &BTreeMap<(u8, i64, i64), V>) -> BTreeMap<(u8, i64, i64), V> {
    upserts
        .iter()
        .filter(|((key, start, end), _)| {
            !upserts
                .keys()
                .any(|(k, s, e)| k == key && s <= start && end <= e && (s, e) != (start, end))
        })
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// Removes one occurrence of each of `some` from `all`; `None` if one is not there.
pub fn minus<T: PartialEq + Clone>(all: &[T], some: &[T]) -> Option<Vec<T>> {
    let mut left = all.to_vec();
    for item in some {
        let at = left.iter().position(|x| x == item)?;
        left.swap_remove(at);
    }
    Some(left)
}
