//! Deduplication in event time.
//!
//! Per key, records are taken in event-time order (ties by value order, so the result does
//! not depend on arrival order). The first record `f` opens a dedup interval
//! `[f.ts, f.ts + ttl)`; every later record of the key inside it is a duplicate. `KeepFirst`
//! emits `f` once the watermark reaches `f.ts`; `KeepLast` emits the interval's last record,
//! stamped with the interval's max timestamp, once the watermark reaches it. A record with
//! `ts <= watermark` is late (side output). Key state is dropped when its interval has closed.
//! See docs/semantics.md, "Deduplication".

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::marker::PhantomData;

use smallvec::SmallVec;

use crate::bugs::{self, Bug};
use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::{fast_map, FastMap};
use crate::time::NO_WATERMARK;

/// Which record of a dedup interval survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Keep {
    First,
    Last,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyDedup<T> {
    /// Records not yet decided (ts > watermark when they arrived), sorted by (ts, value).
    /// Mostly one (a duplicate is the exception): kept inline, no allocation per key.
    pending: SmallVec<[Record<T>; 1]>,
    /// The open interval's end (exclusive) and, for `Keep::Last`, its last record so far.
    interval_end: Option<Timestamp>,
    last: Option<Record<T>>,
    /// This key's entry in `timers` (rebuilt on restore).
    #[serde(skip)]
    timer: Option<Timestamp>,
}

pub(crate) struct DedupOperator<T, K, KS> {
    keep: Keep,
    ttl_ms: i64,
    key_selector: KS,
    keys: FastMap<K, KeyDedup<T>>,
    /// `(deadline, key)`, earliest first. A key's entry is valid while it equals the key's
    /// `timer`; stale entries are skipped when they come up (cheaper than removing them).
    timers: BinaryHeap<Reverse<(Timestamp, K)>>,
    watermark: Timestamp,
    _types: PhantomData<fn(T)>,
}

impl<T, K, KS> DedupOperator<T, K, KS> {
    pub(crate) fn new(keep: Keep, ttl_ms: i64, key_selector: KS) -> Self {
        DedupOperator {
            keep,
            ttl_ms,
            key_selector,
            keys: fast_map(),
            timers: BinaryHeap::new(),
            watermark: NO_WATERMARK,
            _types: PhantomData,
        }
    }
}

impl<T: Data + Ord, K: Key, KS> DedupOperator<T, K, KS> {
    /// Decides every pending record with `ts <= watermark` and closes a finished interval.
    fn advance_key(
        keep: Keep,
        ttl_ms: i64,
        state: &mut KeyDedup<T>,
        watermark: Timestamp,
        results: &mut Vec<Record<T>>,
        duplicates: &mut u64,
    ) {
        let due = state.pending.partition_point(|r| r.ts <= watermark);
        // Taken out while its records are decided, then put back: the buffer is kept.
        let mut pending = std::mem::take(&mut state.pending);
        for record in pending.drain(..due) {
            if let Some(end) = state.interval_end {
                if record.ts >= end {
                    Self::close_interval(state, results);
                }
            }
            match state.interval_end {
                Some(_) => {
                    *duplicates += 1;
                    if keep == Keep::Last {
                        state.last = Some(record);
                    }
                }
                None => {
                    let ttl_ms = if bugs::is_active(Bug::DedupNoTtl) {
                        i64::MAX
                    } else {
                        ttl_ms
                    };
                    state.interval_end = Some(record.ts.saturating_add(ttl_ms));
                    match keep {
                        Keep::First => results.push(record),
                        Keep::Last => state.last = Some(record),
                    }
                }
            }
        }
        state.pending = pending;
        if let Some(end) = state.interval_end {
            if end - 1 <= watermark {
                Self::close_interval(state, results);
            }
        }
    }

    fn close_interval(state: &mut KeyDedup<T>, results: &mut Vec<Record<T>>) {
        let end = state.interval_end.take().expect("closing an open interval");
        if let Some(last) = state.last.take() {
            results.push(Record::new(end - 1, last.value));
        }
    }

    /// When this key next needs the watermark: its first pending record or its interval end.
    fn next_deadline(state: &KeyDedup<T>) -> Option<Timestamp> {
        let pending = state.pending.first().map(|r| r.ts);
        let close = state.interval_end.map(|end| end - 1);
        match (pending, close) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn reschedule(timers: &mut BinaryHeap<Reverse<(Timestamp, K)>>, key: &K, state: &mut KeyDedup<T>) {
        let next = Self::next_deadline(state);
        if next != state.timer {
            if let Some(new) = next {
                timers.push(Reverse((new, key.clone())));
            }
            state.timer = next;
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
        let mut duplicates = 0;
        for record in batch.into_records::<T>() {
            if record.ts <= self.watermark {
                late.push(record);
                continue;
            }
            let key = (self.key_selector)(&record.value);
            let state = self.keys.entry(key.clone()).or_insert_with(|| KeyDedup {
                pending: SmallVec::new(),
                interval_end: None,
                last: None,
                timer: None,
            });
            // The interval's first record is already decided (ts <= watermark < record.ts):
            // a KeepFirst duplicate can be dropped at once.
            if self.keep == Keep::First && state.interval_end.is_some_and(|end| record.ts < end) {
                duplicates += 1;
                continue;
            }
            let at = state.pending.partition_point(|r| r <= &record);
            state.pending.insert(at, record);
            Self::reschedule(&mut self.timers, &key, state);
        }
        out.duplicates += duplicates;
        out.emit_late(late);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        self.watermark = watermark;
        let mut results = Vec::new();
        let mut duplicates = 0;
        while self.timers.peek().is_some_and(|Reverse((ts, _))| *ts <= watermark) {
            let Reverse((deadline, key)) = self.timers.pop().expect("checked non-empty");
            let Some(state) = self.keys.get_mut(&key).filter(|s| s.timer == Some(deadline)) else {
                continue; // stale: the key was rescheduled or is gone
            };
            state.timer = None;
            let open = state.interval_end;
            Self::advance_key(self.keep, self.ttl_ms, state, watermark, &mut results, &mut duplicates);
            if open.is_some() && state.interval_end != open {
                out.events.dedup_intervals_closed += 1;
            }
            Self::reschedule(&mut self.timers, &key, state);
            if state.timer.is_none() {
                self.keys.remove(&key);
            }
        }
        out.duplicates += duplicates;
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        let mut keys: Vec<(&K, &KeyDedup<T>)> = self.keys.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if bugs::is_active(Bug::StateOutsideBackend) {
            let forgetful = keys.iter().map(|(key, state)| {
                let pending = state.pending.clone();
                (
                    *key,
                    KeyDedup {
                        pending,
                        interval_end: None,
                        last: None,
                        timer: None,
                    },
                )
            });
            return OperatorState::from_keyed(forgetful.collect::<Vec<_>>(), |entry| entry.0, max_parallelism);
        }
        OperatorState::from_keyed(keys, |entry| entry.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, mut state) in context.keyed_entries::<(K, KeyDedup<T>)>()? {
            Self::reschedule(&mut self.timers, &key, &mut state);
            self.keys.insert(key, state);
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        // A key with a deadline has one live timer; stale heap entries are not state.
        self.keys.len() + self.keys.values().filter(|state| state.timer.is_some()).count()
    }
}
