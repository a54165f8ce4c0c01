//! Deduplication in event time.
//!
//! Per key, records are taken in event-time order (ties by value order, so the result does
//! not depend on arrival order). The first record `f` opens a dedup interval
//! `[f.ts, f.ts + ttl)`; every later record of the key inside it is a duplicate. `KeepFirst`
//! emits `f` once the watermark reaches `f.ts`; `KeepLast` emits the interval's last record,
//! stamped with the interval's max timestamp, once the watermark reaches it. A record with
//! `ts <= watermark` is late (side output). Key state is dropped when its interval has closed.
//! See docs/semantics.md, "Deduplication".
//!
//! No timer per record: records wait in one buffer until the watermark passes them, then
//! are decided in `(ts, value)` order. Every record decided at a watermark is newer than the
//! one before (a record at or behind it is late), so intervals open in nondecreasing order
//! of their ends, and a FIFO of ends closes them: no heap.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;

use smallvec::SmallVec;

use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::{fast_map, FastMap};
use crate::testkit::bugs::{self, Bug};
use crate::time::NO_WATERMARK;

/// Which record of a dedup interval survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Keep {
    /// The interval's first record, emitted once the watermark reaches it.
    First,
    /// The interval's last record, stamped with the interval's max timestamp, emitted when the interval closes.
    Last,
}

/// A key's state as snapshotted (one entry per key, so that it moves by key group).
#[derive(serde::Serialize, serde::Deserialize)]
struct KeyDedup<T> {
    /// Records not yet decided (ts > watermark when they arrived), sorted by (ts, value).
    pending: SmallVec<[Record<T>; 1]>,
    /// The open interval's end (exclusive) and, for `Keep::Last`, its last record so far.
    interval_end: Option<Timestamp>,
    last: Option<Record<T>>,
}

/// A key's open interval.
struct Interval<T> {
    /// Exclusive.
    end: Timestamp,
    /// For `Keep::Last`: the interval's last record so far.
    last: Option<Record<T>>,
}

pub(crate) struct DedupOperator<T, K, KS> {
    keep: Keep,
    ttl_ms: i64,
    key_selector: KS,
    /// Records waiting for the watermark, sorted by (ts, value) up to `sorted`.
    pending: Vec<Record<T>>,
    sorted: usize,
    /// Open intervals by key.
    open: FastMap<K, Interval<T>>,
    /// `(end, key)` of intervals as they opened: ends never decrease. An entry is stale
    /// once its key's interval has another end (closed, or closed and reopened).
    closing: VecDeque<(Timestamp, K)>,
    watermark: Timestamp,
    _types: PhantomData<fn(T)>,
}

impl<T, K, KS> DedupOperator<T, K, KS> {
    pub(crate) fn new(keep: Keep, ttl_ms: i64, key_selector: KS) -> Self {
        DedupOperator {
            keep,
            ttl_ms,
            key_selector,
            pending: Vec::new(),
            sorted: 0,
            open: fast_map(),
            closing: VecDeque::new(),
            watermark: NO_WATERMARK,
            _types: PhantomData,
        }
    }
}

impl<T: Data + Ord, K: Key, KS: Fn(&T) -> K> DedupOperator<T, K, KS> {
    fn ttl(&self) -> i64 {
        if bugs::is_active(Bug::DedupNoTtl) {
            i64::MAX
        } else {
            self.ttl_ms
        }
    }

    /// Decides `record` (its turn in event-time order): a duplicate of its key's open
    /// interval, or the first of a new one (closing the old one if it ended).
    fn decide(&mut self, record: Record<T>, results: &mut Vec<Record<T>>, out: &mut Output) {
        let key = (self.key_selector)(&record.value);
        if let Some(interval) = self.open.get_mut(&key) {
            if record.ts < interval.end {
                out.duplicates += 1;
                if self.keep == Keep::Last {
                    interval.last = Some(record);
                }
                return;
            }
            let ended = self.open.remove(&key).expect("found above");
            Self::close(ended, results, out);
        }
        let end = record.ts.saturating_add(self.ttl());
        let last = match self.keep {
            Keep::First => {
                results.push(record);
                None
            }
            Keep::Last => Some(record),
        };
        self.closing.push_back((end, key.clone()));
        self.open.insert(key, Interval { end, last });
    }

    fn close(interval: Interval<T>, results: &mut Vec<Record<T>>, out: &mut Output) {
        out.events.dedup_intervals_closed += 1;
        if let Some(last) = interval.last {
            results.push(Record::new(interval.end - 1, last.value));
        }
    }

    /// Closes every interval whose last timestamp (`end - 1`) the watermark has reached.
    fn close_due(&mut self, watermark: Timestamp, results: &mut Vec<Record<T>>, out: &mut Output) {
        while self.closing.front().is_some_and(|(end, _)| end - 1 <= watermark) {
            let (end, key) = self.closing.pop_front().expect("checked non-empty");
            if self.open.get(&key).is_some_and(|interval| interval.end == end) {
                let interval = self.open.remove(&key).expect("found above");
                Self::close(interval, results, out);
            }
        }
    }
}

impl<T, K, KS> Operator for DedupOperator<T, K, KS>
where
    T: Data + Ord,
    K: Key,
    KS: Fn(&T) -> K + Send,
{
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mut late = Vec::new();
        for record in batch.into_records::<T>() {
            if record.ts <= self.watermark {
                late.push(record);
                continue;
            }
            // The interval's first record is already decided (ts <= watermark < record.ts):
            // a KeepFirst duplicate can be dropped at once.
            if self.keep == Keep::First {
                let key = (self.key_selector)(&record.value);
                if self.open.get(&key).is_some_and(|interval| record.ts < interval.end) {
                    out.duplicates += 1;
                    continue;
                }
            }
            self.pending.push(record);
        }
        out.emit_late(late);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        self.watermark = watermark;
        let mut results = Vec::new();
        if self.sorted < self.pending.len() {
            // The sorted part and each new batch are runs: a stable sort merges them.
            self.pending.sort();
            self.sorted = self.pending.len();
        }
        let due = self.pending.partition_point(|r| r.ts <= watermark);
        let mut decided = std::mem::take(&mut self.pending);
        for record in decided.drain(..due) {
            // Intervals that ended before this record are closed first, in end order.
            self.close_due(record.ts - 1, &mut results, out);
            self.decide(record, &mut results, out);
        }
        self.pending = decided;
        self.sorted = self.pending.len();
        self.close_due(watermark, &mut results, out);
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        let mut keys: BTreeMap<K, KeyDedup<T>> = BTreeMap::new();
        fn entry<K: Ord, T>(keys: &mut BTreeMap<K, KeyDedup<T>>, key: K) -> &mut KeyDedup<T> {
            keys.entry(key).or_insert_with(|| KeyDedup {
                pending: SmallVec::new(),
                interval_end: None,
                last: None,
            })
        }
        self.pending.sort();
        self.sorted = self.pending.len();
        for record in &self.pending {
            entry(&mut keys, (self.key_selector)(&record.value))
                .pending
                .push(record.clone());
        }
        if !bugs::is_active(Bug::StateOutsideBackend) {
            for (key, interval) in &self.open {
                let state = entry(&mut keys, key.clone());
                state.interval_end = Some(interval.end);
                state.last = interval.last.clone();
            }
        }
        OperatorState::from_keyed(keys.into_iter().collect::<Vec<_>>(), |entry| &entry.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, state) in context.keyed_entries::<(K, KeyDedup<T>)>()? {
            self.pending.extend(state.pending);
            if let Some(end) = state.interval_end {
                self.closing.push_back((end, key.clone()));
                self.open.insert(key, Interval { end, last: state.last });
            }
        }
        self.closing.make_contiguous().sort_by_key(|a| a.0);
        self.pending.sort();
        self.sorted = self.pending.len();
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.open.len() + self.pending.len()
    }
}
