//! The event-time temporal join: a stream joined with a versioned table.
//!
//! Input 0 is the probe stream; input 1 is a changelog (`Change::Upsert` / `Change::Delete`)
//! that builds, per key, a table of versions valid from their timestamp on. A probe record
//! joins the version valid at its timestamp (the latest change with `change.ts <= ts`; none
//! if there is none or it is a delete) and is emitted once the watermark, the minimum of both
//! inputs, reaches `ts`: by then every change it could see has arrived. Probe records and
//! changes with `ts <= watermark` are late. Versions no probe can see any more are dropped.
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
    Upsert { key: K, value: V },
    Delete { key: K },
}

impl<K, V> Change<K, V> {
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
}

pub(crate) struct TemporalJoinOperator<T, K, V, KS> {
    key_selector: KS,
    tables: FastMap<K, KeyTable<T, V>>,
    /// `(ts, key)`: at watermark `ts` the key has a probe to emit or a version to prune.
    timers: BTreeSet<(Timestamp, K)>,
    watermark: Timestamp,
    _types: PhantomData<fn(T)>,
}

impl<T, K, V, KS> TemporalJoinOperator<T, K, V, KS> {
    pub(crate) fn new(key_selector: KS) -> Self {
        TemporalJoinOperator {
            key_selector,
            tables: fast_map(),
            timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            _types: PhantomData,
        }
    }
}

impl<T, K, V, KS> TemporalJoinOperator<T, K, V, KS>
where
    T: Data,
    K: Key,
    V: Data,
{
    fn table(&mut self, key: &K) -> &mut KeyTable<T, V> {
        if !self.tables.contains_key(key) {
            self.tables.insert(
                key.clone(),
                KeyTable {
                    versions: BTreeMap::new(),
                    pending: Vec::new(),
                },
            );
        }
        self.tables.get_mut(key).expect("just inserted")
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
                if record.ts <= self.watermark {
                    late.push(record);
                    continue;
                }
                let key = (self.key_selector)(&record.value);
                self.timers.insert((record.ts, key.clone()));
                self.table(&key).pending.push(record);
            }
            out.emit_late(late);
        } else {
            let mut late = Vec::new();
            for change in batch.into_records::<Change<K, V>>() {
                if change.ts <= self.watermark {
                    late.push(change);
                    continue;
                }
                let (key, value) = match change.value {
                    Change::Upsert { key, value } => (key, Some(value)),
                    Change::Delete { key } => (key, None),
                };
                self.timers.insert((change.ts, key.clone()));
                self.table(&key).versions.insert(change.ts, value);
            }
            out.late_records += late.len() as u64;
            out.emit(LATE_CHANGES, late);
        }
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        self.watermark = watermark;
        let mut results: Vec<Record<(T, Option<V>)>> = Vec::new();
        while self.timers.first().is_some_and(|(ts, _)| *ts <= watermark) {
            let (_, key) = self.timers.pop_first().expect("checked non-empty");
            let Some(table) = self.tables.get_mut(&key) else {
                continue;
            };
            let due = std::mem::take(&mut table.pending);
            let (ready, waiting): (Vec<_>, Vec<_>) = due.into_iter().partition(|r| r.ts <= watermark);
            table.pending = waiting;
            let mut ready = ready;
            ready.sort_by_key(|r| r.ts);
            for record in ready {
                let version = table
                    .versions
                    .range(..=record.ts)
                    .next_back()
                    .and_then(|(_, v)| v.clone());
                results.push(Record::new(record.ts, (record.value, version)));
            }
            // Future probes have ts > watermark: only the newest version <= watermark and
            // later ones can still be seen; a delete seen by nobody can go too.
            if let Some((&current, value)) = table.versions.range(..=watermark).next_back() {
                let keep_current = value.is_some();
                table.versions = table.versions.split_off(&current);
                if !keep_current {
                    table.versions.remove(&current);
                }
            }
            if table.versions.is_empty() && table.pending.is_empty() {
                self.tables.remove(&key);
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
            for ts in table.versions.keys().copied().chain(table.pending.iter().map(|r| r.ts)) {
                self.timers.insert((ts, key.clone()));
            }
            self.tables.insert(key, table);
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        let rows: usize = self.tables.values().map(|t| t.versions.len() + t.pending.len()).sum();
        rows + self.timers.len()
    }
}
