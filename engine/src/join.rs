//! The event-time temporal join: a stream joined with a versioned table.
//!
//! Input 0 is the probe stream; input 1 is a changelog (`Change::Upsert` / `Change::Delete`)
//! that builds, per key, a table of versions valid from their timestamp on. A probe record
//! joins the version valid at its timestamp (the latest change with `change.ts <= ts`; none
//! if there is none or it is a delete) and is emitted once the watermark, the minimum of both
//! inputs, reaches `ts`: by then every change it could see has arrived. Probe records and
//! changes with `ts <= watermark` are late: by default they go to side outputs; with
//! [`LateRows::JoinAtNextWatermark`], as in Flink, a late probe joins at the next watermark
//! and a late change is applied. Versions no probe can see any more are dropped.
//! See docs/semantics.md, "Temporal join".

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, LATE_CHANGES, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::{fast_map, FastMap};
use crate::time::NO_WATERMARK;

/// One entry of a changelog stream.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Change<K, V> {
    /// The key's value from the change's timestamp on.
    Upsert {
        /// The table key.
        key: K,
        /// The key's new version.
        value: V,
    },
    /// The key has no value from the change's timestamp on.
    Delete {
        /// The table key.
        key: K,
    },
}

/// What the temporal join does with a probe or change at or behind the watermark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LateRows {
    /// eddy's: both go to side outputs (`late`, `late_changes`), so that no probe already
    /// emitted could have seen another version, and a replay after a restore joins the same.
    #[default]
    SideOutput,
    /// Flink's (`FOR SYSTEM_TIME AS OF`): a late probe waits for the next watermark and joins
    /// the newest version at or before its timestamp that is still kept (older versions may
    /// have been dropped: then none); a late change is applied, and may be dropped at the
    /// next watermark if a newer version is at or behind it.
    JoinAtNextWatermark,
}

impl<K, V> Change<K, V> {
    /// The table key the change is about.
    pub fn key(&self) -> &K {
        match self {
            Change::Upsert { key, .. } | Change::Delete { key } => key,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct KeyTable<T, V> {
    /// Versions by valid-from timestamp; `None` is a delete.
    versions: BTreeMap<Timestamp, Option<V>>,
    /// Probe records waiting for the watermark, in arrival order.
    pending: Vec<Record<T>>,
    /// The time of this key's live entry in `timers`: one timer per key, at its earliest due
    /// probe or version, not one per record. Snapshotted for Flink's mode, where it is state
    /// (which versions are pruned depends on when the key's timer fires); eddy's mode rebuilds
    /// it on restore.
    timer: Option<Timestamp>,
}

pub(crate) struct TemporalJoinOperator<T, K, V, KS> {
    key_selector: KS,
    tables: FastMap<K, KeyTable<T, V>>,
    /// `(ts, key)`: at watermark `ts` the key has a probe to emit or a version to prune. An
    /// entry counts while it equals the key's `timer`; others are skipped when they come up.
    timers: BTreeSet<(Timestamp, K)>,
    watermark: Timestamp,
    late_rows: LateRows,
    _types: PhantomData<fn(T)>,
}

impl<T, K, V, KS> TemporalJoinOperator<T, K, V, KS> {
    pub(crate) fn new(key_selector: KS, late_rows: LateRows) -> Self {
        TemporalJoinOperator {
            key_selector,
            tables: fast_map(),
            timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            late_rows,
            _types: PhantomData,
        }
    }

    /// Whether a row at `ts` goes to a side output rather than into the join.
    fn is_late(&self, ts: Timestamp) -> bool {
        ts <= self.watermark && self.late_rows == LateRows::SideOutput
    }
}

impl<T, K, V, KS> TemporalJoinOperator<T, K, V, KS>
where
    T: Data,
    K: Key,
    V: Data,
{
    /// Adds what `add` puts into `key`'s table, due at `ts`; sets the key's timer earlier if
    /// `ts` comes before it.
    fn add(&mut self, key: K, ts: Timestamp, add: impl FnOnce(&mut KeyTable<T, V>)) {
        let table = self.tables.entry(key.clone()).or_insert_with(|| KeyTable {
            versions: BTreeMap::new(),
            pending: Vec::new(),
            timer: None,
        });
        add(table);
        if table.timer.is_none_or(|timer| ts < timer) {
            table.timer = Some(ts);
            self.timers.insert((ts, key));
        }
    }
}

impl<T, K, V, KS> Operator for TemporalJoinOperator<T, K, V, KS>
where
    T: Data,
    K: Key,
    V: Data,
    KS: Fn(&T) -> K + Send,
{
    fn handle_records(&mut self, input: usize, batch: Batch, out: &mut Output) {
        if input == 0 {
            let mut late = Vec::new();
            for record in batch.into_records::<T>() {
                if self.is_late(record.ts) {
                    late.push(record);
                    continue;
                }
                let key = (self.key_selector)(&record.value);
                let ts = record.ts;
                self.add(key, ts, |table| table.pending.push(record));
            }
            out.emit_late(late);
        } else {
            let mut late = Vec::new();
            for change in batch.into_records::<Change<K, V>>() {
                if self.is_late(change.ts) {
                    late.push(change);
                    continue;
                }
                let (key, value) = match change.value {
                    Change::Upsert { key, value } => (key, Some(value)),
                    Change::Delete { key } => (key, None),
                };
                self.add(key, change.ts, |table| {
                    table.versions.insert(change.ts, value);
                });
            }
            out.late_records += late.len() as u64;
            out.emit(LATE_CHANGES, late);
        }
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        self.watermark = watermark;
        let mut results: Vec<Record<(T, Option<V>)>> = Vec::new();
        while self.timers.first().is_some_and(|(ts, _)| *ts <= watermark) {
            let (ts, key) = self.timers.pop_first().expect("checked non-empty");
            let Some(table) = self.tables.get_mut(&key).filter(|t| t.timer == Some(ts)) else {
                continue; // stale: the key has an earlier timer, or is gone
            };
            // Arrival order is nearly timestamp order: a stable sort is a pass over a run.
            table.pending.sort_by_key(|r| r.ts);
            let due = table.pending.partition_point(|r| r.ts <= watermark);
            for record in table.pending.drain(..due) {
                let version = table
                    .versions
                    .range(..=record.ts)
                    .next_back()
                    .and_then(|(_, v)| v.clone());
                results.push(Record::new(record.ts, (record.value, version)));
            }
            // Future probes have ts > watermark: only the newest version <= watermark and
            // later ones can still be seen; a delete seen by nobody can go too. (In Flink's
            // mode a late change can still come behind it, so a delete stays, as in Flink.)
            let flink = self.late_rows == LateRows::JoinAtNextWatermark;
            if let Some((&current, value)) = table.versions.range(..=watermark).next_back() {
                let keep_current = value.is_some() || flink;
                while table.versions.first_key_value().is_some_and(|(&ts, _)| ts < current) {
                    table.versions.pop_first();
                }
                if !keep_current {
                    table.versions.remove(&current);
                }
            }
            // The next time this key needs the watermark: its earliest waiting probe, or its
            // next version (which the next due watermark prunes behind). Flink's operator
            // sets a timer again only for a waiting probe: a version later than the watermark
            // is pruned behind only when some timer of the key fires again.
            let next_probe = table.pending.first().map(|r| r.ts);
            let next_version = (watermark < Timestamp::MAX && !flink)
                .then(|| table.versions.range(watermark + 1..).next().map(|(&ts, _)| ts))
                .flatten();
            table.timer = match (next_probe, next_version) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match table.timer {
                Some(next) => {
                    self.timers.insert((next, key));
                }
                None if table.versions.is_empty() => {
                    self.tables.remove(&key);
                }
                None => {}
            }
        }
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        let mut tables: Vec<(&K, &KeyTable<T, V>)> = self.tables.iter().collect();
        tables.sort_unstable_by(|a, b| a.0.cmp(b.0));
        OperatorState::from_keyed(tables, |entry| entry.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, table) in context.keyed_entries::<(K, KeyTable<T, V>)>()? {
            if self.late_rows == LateRows::JoinAtNextWatermark {
                // Flink's timers are state: the key's comes back as it was.
                if let Some(ts) = table.timer {
                    self.timers.insert((ts, key.clone()));
                }
                self.tables.insert(key, table);
                continue;
            }
            // Every pending probe needs its timer. A version at or behind the watermark needs
            // one only if pruning is still due (several such versions, or a delete, which
            // happens when state of tasks with different watermarks is merged): otherwise a
            // restore after the final watermark would hold timers that never fire again.
            let behind: Vec<(&Timestamp, &Option<V>)> = table.versions.range(..=self.watermark).collect();
            let prune_due = behind.len() > 1 || behind.last().is_some_and(|(_, value)| value.is_none());
            let versions = table
                .versions
                .keys()
                .copied()
                .filter(|&ts| ts > self.watermark || prune_due);
            let timer = versions.chain(table.pending.iter().map(|r| r.ts)).min();
            let mut table = table;
            table.timer = timer;
            if let Some(ts) = timer {
                self.timers.insert((ts, key.clone()));
            }
            self.tables.insert(key, table);
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        // Rows, and a timer per key that has one (stale entries are not state).
        let rows: usize = self.tables.values().map(|t| t.versions.len() + t.pending.len()).sum();
        rows + self.tables.values().filter(|t| t.timer.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::RestoreContext;
    use crate::state::KeyGroupRange;
    use crate::time::END_OF_TIME;

    type Join = TemporalJoinOperator<u8, u8, i64, fn(&u8) -> u8>;

    fn join() -> Join {
        TemporalJoinOperator::new(|probe: &u8| *probe, LateRows::SideOutput)
    }

    fn restored(state: &OperatorState, watermark: Timestamp) -> Join {
        restored_into(join(), state, watermark)
    }

    fn restored_into(mut operator: Join, state: &OperatorState, watermark: Timestamp) -> Join {
        let context = RestoreContext {
            subtask: 0,
            parallelism: 1,
            key_groups: KeyGroupRange::for_subtask(0, 1, 128),
            max_parallelism: 128,
            watermark,
            previous: vec![(0, state)],
        };
        operator.restore_state(&context).unwrap();
        operator
    }

    #[test]
    fn a_restore_after_the_final_watermark_keeps_only_live_rows() {
        let mut operator = join();
        let changes = vec![
            Record::new(5, Change::Upsert { key: 1u8, value: 10i64 }),
            Record::new(8, Change::Upsert { key: 1, value: 11 }),
            Record::new(6, Change::Upsert { key: 2, value: 20 }),
            Record::new(9, Change::Delete { key: 2 }),
        ];
        operator.handle_records(1, Batch::new(changes), &mut Output::default());
        operator.handle_records(0, Batch::new(vec![Record::new(7, 1u8)]), &mut Output::default());
        operator.handle_watermark(END_OF_TIME, &mut Output::default());
        assert_eq!(operator.state_entries(), 1, "key 1's current version");
        let state = operator.snapshot_state(1, 128);
        let again = restored(&state, END_OF_TIME);
        assert_eq!(again.state_entries(), 1, "no timer that no watermark will fire");
    }

    #[test]
    fn a_restore_keeps_the_timers_still_due() {
        let mut operator = join();
        let changes = vec![
            Record::new(5, Change::Upsert { key: 1u8, value: 10i64 }),
            Record::new(8, Change::Upsert { key: 1, value: 11 }),
        ];
        operator.handle_records(1, Batch::new(changes), &mut Output::default());
        operator.handle_records(0, Batch::new(vec![Record::new(7, 1u8)]), &mut Output::default());
        let state = operator.snapshot_state(1, 128);
        // Restored at a higher watermark than the snapshot's (state of several tasks merged):
        // the probe at 7 is still due and is emitted at the next watermark.
        let mut again = restored(&state, 7);
        let mut out = Output::default();
        again.handle_watermark(9, &mut out);
        let (port, batch) = out.emitted.pop().expect("the probe is emitted");
        assert_eq!(port, MAIN);
        assert_eq!(
            batch.into_records::<(u8, Option<i64>)>(),
            vec![Record::new(7, (1, Some(10)))]
        );
        assert_eq!(again.state_entries(), 1, "only the version at 8 is left");
    }

    enum Step {
        Probe(Timestamp),
        /// A change of key 1 (`None`: a delete).
        Change(Timestamp, Option<i64>),
        Watermark(Timestamp),
    }

    use Step::{Change as C, Probe as P, Watermark as W};

    fn flink_join() -> Join {
        TemporalJoinOperator::new(|probe: &u8| *probe, LateRows::JoinAtNextWatermark)
    }

    /// Feeds `script` to `operator` (in Flink's mode) one step at a time; returns the joined
    /// probes of key 1 as `(watermark they came at, ts, version)`.
    fn run(operator: &mut Join, script: &[Step]) -> Vec<(Timestamp, Timestamp, Option<i64>)> {
        let mut joined = Vec::new();
        for step in script {
            let mut out = Output::default();
            match *step {
                P(ts) => operator.handle_records(0, Batch::new(vec![Record::new(ts, 1u8)]), &mut out),
                C(ts, value) => {
                    let change = match value {
                        Some(value) => Change::Upsert { key: 1u8, value },
                        None => Change::Delete { key: 1 },
                    };
                    operator.handle_records(1, Batch::new(vec![Record::new(ts, change)]), &mut out);
                }
                W(w) => operator.handle_watermark(w, &mut out),
            }
            for (port, batch) in out.emitted {
                assert_eq!(port, MAIN, "nothing goes to a side output in Flink's mode");
                let at = operator.watermark;
                joined.extend(
                    batch
                        .into_records::<(u8, Option<i64>)>()
                        .into_iter()
                        .map(|r| (at, r.ts, r.value.1)),
                );
            }
        }
        joined
    }

    #[test]
    fn flinks_mode_joins_a_late_probe_at_the_next_watermark() {
        // The late change at 400 is applied: the late probe at 300 still sees version 100,
        // the one at 450 sees it.
        let joined = run(
            &mut flink_join(),
            &[C(100, Some(1)), W(500), P(300), C(400, Some(2)), P(450), W(600)],
        );
        assert_eq!(joined, vec![(600, 300, Some(1)), (600, 450, Some(2))]);
    }

    /// Conformance `temporal-join-left-late`, seed 1: Flink prunes a key's versions only when
    /// a timer of the key fires, and sets one again only for a waiting probe, so version 118
    /// outlives the watermark that passed version 3333.
    #[test]
    fn flinks_mode_prunes_only_when_a_timer_of_the_key_fires() {
        let script = [
            C(118, Some(2)),
            C(3333, Some(9)),
            W(3238),
            W(3548),
            P(2198),
            W(END_OF_TIME),
        ];
        assert_eq!(run(&mut flink_join(), &script), vec![(END_OF_TIME, 2198, Some(2))]);
    }

    /// Conformance `temporal-join-left-late`, seed 2: a delete that is the newest version
    /// behind the watermark stays, and hides a late upsert behind it.
    #[test]
    fn flinks_mode_keeps_the_delete_behind_the_watermark() {
        let script = [C(-1032, None), W(151), C(-1483, Some(3)), P(1513), W(END_OF_TIME)];
        assert_eq!(run(&mut flink_join(), &script), vec![(END_OF_TIME, 1513, None)]);
    }

    /// The key's timer is state in Flink's mode: restored as it was (here none was due), so a
    /// restore prunes no more than the run without it.
    #[test]
    fn flinks_mode_restores_the_keys_timer() {
        let mut operator = flink_join();
        run(&mut operator, &[C(118, Some(2)), C(3333, Some(9)), W(3238)]);
        let state = operator.snapshot_state(1, 128);
        let mut again = restored_into(flink_join(), &state, 3238);
        let joined = run(&mut again, &[W(3548), P(2198), W(END_OF_TIME)]);
        assert_eq!(joined, vec![(END_OF_TIME, 2198, Some(2))]);
    }
}
