//! Sinks: where results leave the dataflow.
//!
//! In batch mode a sink receives every record once. Transactional sinks (two-phase commit)
//! build on the same trait once checkpoints exist (docs/snapshots.md).

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use crate::element::{Batch, Data, Record, Timestamp};
use crate::operator::{Operator, Output};

/// Receives the records of one sink task. Cloned once per parallel sink task.
pub trait Sink<T>: Clone + Send + 'static {
    fn write(&mut self, records: Vec<Record<T>>);
    /// The sink task's watermark advanced (after the records it covers were written).
    fn write_watermark(&mut self, _watermark: Timestamp) {}
    /// Every input ended.
    fn finish(&mut self) {}
}

/// What a [`CollectSink`] saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected<T> {
    Record(Record<T>),
    Watermark(Timestamp),
}

/// Collects everything written, across all its parallel tasks, for inspection after a run.
#[derive(Debug)]
pub struct CollectSink<T> {
    events: Arc<Mutex<Vec<Collected<T>>>>,
}

impl<T> Clone for CollectSink<T> {
    fn clone(&self) -> Self {
        CollectSink {
            events: Arc::clone(&self.events),
        }
    }
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        CollectSink {
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Clone> CollectSink<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The records written so far, in the order the sink tasks received them.
    pub fn records(&self) -> Vec<Record<T>> {
        let events = self.events.lock().expect("collect sink poisoned");
        events
            .iter()
            .filter_map(|e| match e {
                Collected::Record(record) => Some(record.clone()),
                Collected::Watermark(_) => None,
            })
            .collect()
    }

    /// Records and watermarks interleaved as the sink saw them: shows when results fired.
    pub fn timeline(&self) -> Vec<Collected<T>> {
        self.events.lock().expect("collect sink poisoned").clone()
    }

    pub fn values(&self) -> Vec<T> {
        self.records().into_iter().map(|r| r.value).collect()
    }
}

impl<T: Data> Sink<T> for CollectSink<T> {
    fn write(&mut self, records: Vec<Record<T>>) {
        let mut events = self.events.lock().expect("collect sink poisoned");
        events.extend(records.into_iter().map(Collected::Record));
    }

    fn write_watermark(&mut self, watermark: Timestamp) {
        let mut events = self.events.lock().expect("collect sink poisoned");
        events.push(Collected::Watermark(watermark));
    }
}

pub(crate) struct SinkOperator<T, S> {
    pub(crate) sink: S,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<T: Data, S: Sink<T>> Operator for SinkOperator<T, S> {
    fn handle_records(&mut self, _input: usize, batch: Batch, _out: &mut Output) {
        self.sink.write(batch.into_records::<T>());
    }

    fn handle_watermark(&mut self, watermark: Timestamp, _out: &mut Output) {
        self.sink.write_watermark(watermark);
    }

    fn handle_end_of_input(&mut self, _out: &mut Output) {
        self.sink.finish();
    }
}
