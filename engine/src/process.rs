//! Keyed process functions: user code with per-key state and timers (Flink's
//! `KeyedProcessFunction`).
//!
//! The function sees every record, late or not (it can compare `ctx.timestamp()` with
//! `ctx.current_watermark()`); its state is one value of `State` per key, dropped when it
//! returns to `State::default()`.

use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Serialize};

use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::KeyedStateBackend;
use crate::time::NO_WATERMARK;
use crate::timer::{TimeDomain, TimerService};

/// User code run on each record of a keyed stream, with per-key state and timers (Flink's
/// `KeyedProcessFunction`).
pub trait KeyedProcessFunction<K, T>: Clone + Send + 'static {
    /// Per-key state: compose it from `ValueState`, `ListState` and `MapState` fields.
    type State: Default + PartialEq + Clone + Send + Serialize + DeserializeOwned + 'static;
    /// What the function emits.
    type Out: Data;

    /// Handles one record of the context's key: may read and update the key's state, register
    /// timers and emit.
    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>);

    /// A timer of the context's key fired (`timestamp` in `domain`). Does nothing unless
    /// overridden.
    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _domain: TimeDomain,
        _ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    ) {
    }
}

/// What a process function may see and do for the current key.
pub struct ProcessContext<'a, K, S, O> {
    key: &'a K,
    timestamp: Timestamp,
    watermark: Timestamp,
    processing_time: Timestamp,
    state: &'a mut S,
    timers: &'a mut TimerService<K>,
    out: &'a mut Vec<Record<O>>,
}

impl<K: Ord + Clone, S, O> ProcessContext<'_, K, S, O> {
    /// The key of the record or timer being handled.
    pub fn key(&self) -> &K {
        self.key
    }
    /// The record's timestamp, or the firing timer's.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }
    /// The operator's event-time watermark.
    pub fn current_watermark(&self) -> Timestamp {
        self.watermark
    }
    /// The latest processing time the operator was handed by its driver.
    pub fn current_processing_time(&self) -> Timestamp {
        self.processing_time
    }
    /// The key's state.
    pub fn state(&mut self) -> &mut S {
        self.state
    }
    /// Sets a timer of the key at `timestamp` in `domain` (one per key and time).
    pub fn register_timer(&mut self, domain: TimeDomain, timestamp: Timestamp) {
        self.timers.register(domain, timestamp, self.key.clone());
    }
    /// Deletes the key's timer at `timestamp` in `domain`, if there is one.
    pub fn delete_timer(&mut self, domain: TimeDomain, timestamp: Timestamp) {
        self.timers.delete(domain, timestamp, self.key.clone());
    }
    /// Emits `value` stamped with the current timestamp.
    pub fn emit(&mut self, value: O) {
        self.out.push(Record::new(self.timestamp, value));
    }
    /// Emits `value` stamped with `timestamp`.
    pub fn emit_at(&mut self, timestamp: Timestamp, value: O) {
        self.out.push(Record::new(timestamp, value));
    }
}

pub(crate) struct ProcessOperator<T, K, KS, P: KeyedProcessFunction<K, T>> {
    key_selector: KS,
    function: P,
    state: KeyedStateBackend<K, P::State>,
    timers: TimerService<K>,
    watermark: Timestamp,
    processing_time: Timestamp,
    /// Records at or below the watermark go to the late side output instead of the function.
    late_to_side_output: bool,
    _types: PhantomData<fn(T)>,
}

impl<T, K: Key, KS, P: KeyedProcessFunction<K, T>> ProcessOperator<T, K, KS, P> {
    pub(crate) fn new(key_selector: KS, function: P, state: KeyedStateBackend<K, P::State>) -> Self {
        ProcessOperator {
            key_selector,
            function,
            state,
            timers: TimerService::default(),
            watermark: NO_WATERMARK,
            processing_time: NO_WATERMARK,
            late_to_side_output: false,
            _types: PhantomData,
        }
    }

    /// Sends records with `ts <= watermark` to the late side output, not to the function.
    pub(crate) fn with_late_side_output(mut self) -> Self {
        self.late_to_side_output = true;
        self
    }

    fn fire_timers(&mut self, domain: TimeDomain, time: Timestamp, out: &mut Output) {
        let mut results = Vec::new();
        while let Some((timestamp, key)) = self.timers.pop_due(domain, time) {
            let (function, timers) = (&mut self.function, &mut self.timers);
            let (watermark, processing_time) = (self.watermark, self.processing_time);
            self.state.with_state(&key, |state| {
                let mut ctx = ProcessContext {
                    key: &key,
                    timestamp,
                    watermark,
                    processing_time,
                    state,
                    timers,
                    out: &mut results,
                };
                function.on_timer(timestamp, domain, &mut ctx);
            });
        }
        out.emit(MAIN, results);
    }
}

impl<T, K, KS, P> Operator for ProcessOperator<T, K, KS, P>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    P: KeyedProcessFunction<K, T>,
{
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        for record in batch.into_records::<T>() {
            if self.late_to_side_output && record.ts <= self.watermark {
                late.push(record);
                continue;
            }
            let key = (self.key_selector)(&record.value);
            let (function, timers) = (&mut self.function, &mut self.timers);
            let (watermark, processing_time) = (self.watermark, self.processing_time);
            self.state.with_state(&key, |state| {
                let mut ctx = ProcessContext {
                    key: &key,
                    timestamp: record.ts,
                    watermark,
                    processing_time,
                    state,
                    timers,
                    out: &mut results,
                };
                function.process_element(record, &mut ctx);
            });
        }
        out.emit(MAIN, results);
        out.emit_late(late);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        self.watermark = watermark;
        self.fire_timers(TimeDomain::EventTime, watermark, out);
    }

    fn handle_processing_time(&mut self, now: Timestamp, out: &mut Output) {
        self.processing_time = self.processing_time.max(now);
        self.fire_timers(TimeDomain::ProcessingTime, now, out);
    }

    fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.timers.next_processing_time()
    }

    fn uses_processing_time(&self) -> bool {
        self.timers.used_processing_time()
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        let states = self
            .state
            .sorted_entries()
            .into_iter()
            .map(|(k, s)| ProcessEntry::State(k.clone(), s.clone()));
        let timers = self
            .timers
            .iter()
            .map(|(domain, ts, k)| ProcessEntry::Timer(k.clone(), domain, ts));
        OperatorState::from_keyed(states.chain(timers), ProcessEntry::key, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for entry in context.keyed_entries::<ProcessEntry<K, P::State>>()? {
            match entry {
                ProcessEntry::State(key, state) => self.state.insert(key, state),
                ProcessEntry::Timer(key, domain, ts) => self.timers.register(domain, ts, key),
            }
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.state.len() + self.timers.len()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
enum ProcessEntry<K, S> {
    State(K, S),
    Timer(K, TimeDomain, Timestamp),
}

impl<K, S> ProcessEntry<K, S> {
    fn key(&self) -> &K {
        match self {
            ProcessEntry::State(key, _) | ProcessEntry::Timer(key, _, _) => key,
        }
    }
}
