//! Live forms of the scenarios' outputs: turn an upsert stream of results into final result
//! lines, each emitted once, when nothing can change it any more (docs/live.md).
//!
//! A batch run prints the last value per key of its upsert results; a live run cannot wait
//! for the end of its input, so [`FinalRows`] keeps the latest value per key in keyed state
//! and emits its line when the watermark reaches the moment after which no update can
//! arrive (for a window with allowed lateness `L`: `max_timestamp + L`, since a record is
//! late once `max_timestamp + L <= watermark`). At the end of input the final watermark
//! emits every row still held.

use std::marker::PhantomData;

use eddy_engine::{Data, Key, KeyedProcessFunction, ProcessContext, Record, TimeDomain, Timestamp};

/// Holds the latest `T` per key; emits `line(latest)` once the watermark reaches
/// `final_at(latest)`.
pub struct FinalRows<T> {
    final_at: fn(&T) -> Timestamp,
    line: fn(&T) -> String,
    _types: PhantomData<fn(T)>,
}

impl<T> Clone for FinalRows<T> {
    fn clone(&self) -> Self {
        FinalRows {
            final_at: self.final_at,
            line: self.line,
            _types: PhantomData,
        }
    }
}

impl<T> FinalRows<T> {
    pub fn new(final_at: fn(&T) -> Timestamp, line: fn(&T) -> String) -> Self {
        FinalRows {
            final_at,
            line,
            _types: PhantomData,
        }
    }
}

impl<K: Key, T: Data + PartialEq> KeyedProcessFunction<K, T> for FinalRows<T> {
    type State = Option<T>;
    type Out = String;

    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        // The same key always has the same deadline (it is a function of the key's window),
        // so registering it again changes nothing.
        let final_at = (self.final_at)(&record.value);
        *ctx.state() = Some(record.value);
        ctx.register_timer(TimeDomain::EventTime, final_at);
    }

    fn on_timer(
        &mut self,
        _timestamp: Timestamp,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    ) {
        if let Some(latest) = ctx.state().take() {
            let line = (self.line)(&latest);
            ctx.emit(line);
        }
    }
}

/// Emits each record's line at once: for results that are final when they are emitted.
pub struct RecordLines<T> {
    line: fn(&Record<T>) -> String,
}

impl<T> Clone for RecordLines<T> {
    fn clone(&self) -> Self {
        RecordLines { line: self.line }
    }
}

impl<T> RecordLines<T> {
    pub fn new(line: fn(&Record<T>) -> String) -> Self {
        RecordLines { line }
    }
}

impl<K: Key, T: Data> KeyedProcessFunction<K, T> for RecordLines<T> {
    type State = ();
    type Out = String;

    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        let line = (self.line)(&record);
        ctx.emit(line);
    }
}
