//! Stream elements: what travels on a channel between two tasks.
//!
//! Records move in batches (`Batch`, one allocation per batch, never per record); control
//! elements (`Watermark`, `Barrier`, `EndOfInput`) travel alone, in order with the batches
//! of the same channel. This module owns the type erasure of record batches: the typed
//! pipeline builder knows each stream's record type, the runtime (tasks, channels, drivers)
//! does not.

use std::any::Any;
use std::fmt;

/// Event time in milliseconds.
pub type Timestamp = i64;

/// Identifies a checkpoint; increases by one per checkpoint started.
pub type CheckpointId = u64;

/// A record: a value stamped with its event time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Record<T> {
    pub ts: Timestamp,
    pub value: T,
}

impl<T> Record<T> {
    pub fn new(ts: Timestamp, value: T) -> Self {
        Record { ts, value }
    }
}

/// What record values must be: cloneable (broadcast, reference checks), printable (reports),
/// serde (state and snapshots) and thread-safe (logs are shared; the live runtime moves tasks
/// across threads).
pub trait Data: Clone + fmt::Debug + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}
impl<T> Data for T where T: Clone + fmt::Debug + serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static {}

/// What keys must be, in addition to [`Data`]: ordered (deterministic firing and snapshot
/// order) and hashable (key groups, in-memory lookup).
pub trait Key: Data + Ord + Eq + std::hash::Hash {}
impl<T> Key for T where T: Data + Ord + Eq + std::hash::Hash {}

/// A type-erased, non-empty-or-empty batch of `Record<T>` for one `T`.
pub struct Batch {
    len: usize,
    records: Box<dyn Any + Send>,
    clone_records: fn(&(dyn Any + Send)) -> Box<dyn Any + Send>,
    type_name: &'static str,
}

fn clone_vec<T: Data>(records: &(dyn Any + Send)) -> Box<dyn Any + Send> {
    let records = records
        .downcast_ref::<Vec<Record<T>>>()
        .expect("batch holds Vec<Record<T>> for the T it was built with");
    Box::new(records.clone())
}

impl Batch {
    pub fn new<T: Data>(records: Vec<Record<T>>) -> Self {
        Batch {
            len: records.len(),
            records: Box::new(records),
            clone_records: clone_vec::<T>,
            type_name: std::any::type_name::<T>(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the records out. A type mismatch is a bug in the graph builder, not user input.
    pub fn into_records<T: Data>(self) -> Vec<Record<T>> {
        match self.records.downcast::<Vec<Record<T>>>() {
            Ok(records) => *records,
            Err(_) => panic!(
                "batch of {} delivered to an operator expecting {}",
                self.type_name,
                std::any::type_name::<T>()
            ),
        }
    }
}

impl Clone for Batch {
    fn clone(&self) -> Self {
        Batch {
            len: self.len,
            records: (self.clone_records)(self.records.as_ref()),
            clone_records: self.clone_records,
            type_name: self.type_name,
        }
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch<{}>({} records)", self.type_name, self.len)
    }
}

/// An element on a channel.
#[derive(Clone, Debug)]
pub enum Message {
    Records(Batch),
    /// No more records with `ts <= watermark` will follow on this channel.
    Watermark(Timestamp),
    Barrier(CheckpointId),
    EndOfInput,
}

impl Message {
    /// A short name for traces and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Records(_) => "records",
            Message::Watermark(_) => "watermark",
            Message::Barrier(_) => "barrier",
            Message::EndOfInput => "end-of-input",
        }
    }
}
