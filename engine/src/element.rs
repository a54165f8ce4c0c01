//! Stream elements: what travels on a channel between two tasks.
//!
//! Records move in batches (`Batch`, one allocation per batch, never per record); control
//! elements (`Watermark`, `Barrier`, `EndOfInput`) travel alone, in order with the batches
//! of the same channel. This module owns the type erasure of record batches: the typed
//! pipeline builder knows each stream's record type, the runtime (tasks, channels, drivers)
//! does not.

use std::any::Any;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Event time in milliseconds.
pub type Timestamp = i64;

/// Identifies a checkpoint; increases by one per checkpoint started.
pub type CheckpointId = u64;

/// A record: a value stamped with its event time.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Record<T> {
    /// The record's event time.
    pub ts: Timestamp,
    /// The record's value.
    pub value: T,
}

impl<T> Record<T> {
    /// `value` at event time `ts`.
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
///
/// A batch owns its records, or is a range of a replayable log that it shares with the
/// source (`Batch::shared`): an operator that only reads its input reads the log in
/// place, and one that takes the records copies them once, as a source would have.
pub struct Batch {
    len: usize,
    records: Box<dyn Any + Send>,
    vtable: &'static BatchVtable,
}

/// A batch's records of one type: owned, or a range of a shared log partition.
enum Records<T> {
    Owned(Vec<Record<T>>),
    Shared {
        partitions: Arc<Vec<Vec<Record<T>>>>,
        partition: usize,
        range: Range<usize>,
    },
}

impl<T: Clone> Records<T> {
    fn as_slice(&self) -> &[Record<T>] {
        match self {
            Records::Owned(records) => records,
            Records::Shared {
                partitions,
                partition,
                range,
            } => &partitions[*partition][range.clone()],
        }
    }

    fn into_vec(self) -> Vec<Record<T>> {
        match self {
            Records::Owned(records) => records,
            shared => shared.as_slice().to_vec(),
        }
    }
}

/// A record's timestamp, value encoding ([`encode_value`]) and debug text.
pub type DescribedRecord = (Timestamp, Vec<u8>, String);
type ErasedRecords = dyn Any + Send;
pub(crate) type Keep<'a> = &'a mut dyn FnMut(Timestamp, &[u8]) -> bool;

/// What a batch can do without knowing its record type, one static table per type.
struct BatchVtable {
    clone: fn(&(dyn Any + Send)) -> Box<dyn Any + Send>,
    /// Keeps the records for which the predicate, given `ts` and the value's encoding, is true.
    retain: fn(&mut Box<ErasedRecords>, Keep<'_>) -> usize,
    /// Each record's `ts`, value encoding and debug text.
    describe: fn(&ErasedRecords) -> Vec<DescribedRecord>,
    type_name: fn() -> &'static str,
}

struct Vtable<T>(std::marker::PhantomData<T>);

impl<T: Data> Vtable<T> {
    const TABLE: &'static BatchVtable = &BatchVtable {
        clone: clone_records::<T>,
        retain: retain_records::<T>,
        describe: describe_records::<T>,
        type_name: std::any::type_name::<T>,
    };
}

fn typed<T: Data>(records: &(dyn Any + Send)) -> &Records<T> {
    records
        .downcast_ref::<Records<T>>()
        .expect("batch holds Records<T> for the T it was built with")
}

fn clone_records<T: Data>(records: &(dyn Any + Send)) -> Box<dyn Any + Send> {
    let cloned = match typed::<T>(records) {
        Records::Owned(records) => Records::Owned(records.clone()),
        Records::Shared {
            partitions,
            partition,
            range,
        } => Records::Shared {
            partitions: Arc::clone(partitions),
            partition: *partition,
            range: range.clone(),
        },
    };
    Box::new(cloned)
}

/// The bytes that identify a record's value (equal values encode equally): the snapshot
/// encoding.
pub use crate::snapshot::encode_value;

fn retain_records<T: Data>(records: &mut Box<ErasedRecords>, keep: Keep<'_>) -> usize {
    let mut kept = typed::<T>(records.as_ref()).as_slice().to_vec();
    kept.retain(|r| keep(r.ts, &encode_value(&r.value)));
    let len = kept.len();
    *records = Box::new(Records::Owned(kept));
    len
}

fn describe_records<T: Data>(records: &ErasedRecords) -> Vec<DescribedRecord> {
    typed::<T>(records)
        .as_slice()
        .iter()
        .map(|r| (r.ts, encode_value(&r.value), format!("{r:?}")))
        .collect()
}

impl Batch {
    /// A batch that owns `records`.
    pub fn new<T: Data>(records: Vec<Record<T>>) -> Self {
        Batch {
            len: records.len(),
            records: Box::new(Records::Owned(records)),
            vtable: Vtable::<T>::TABLE,
        }
    }

    /// The records `range` of partition `partition` of a shared log, not copied.
    pub(crate) fn shared<T: Data>(
        partitions: &Arc<Vec<Vec<Record<T>>>>,
        partition: usize,
        range: Range<usize>,
    ) -> Self {
        debug_assert!(range.end <= partitions[partition].len());
        Batch {
            len: range.len(),
            records: Box::new(Records::Shared {
                partitions: Arc::clone(partitions),
                partition,
                range,
            }),
            vtable: Vtable::<T>::TABLE,
        }
    }

    /// How many records the batch holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn downcast<T: Data>(self) -> Records<T> {
        match self.records.downcast::<Records<T>>() {
            Ok(records) => *records,
            Err(_) => panic!(
                "batch of {} delivered to an operator expecting {}",
                (self.vtable.type_name)(),
                std::any::type_name::<T>()
            ),
        }
    }

    /// Takes the records out (a shared batch copies them here). A type mismatch is a bug in
    /// the graph builder, not user input.
    pub fn into_records<T: Data>(self) -> Vec<Record<T>> {
        self.downcast().into_vec()
    }

    /// The records, read in place (owned or shared alike).
    pub fn as_slice<T: Data>(&self) -> &[Record<T>] {
        match self.records.downcast_ref::<Records<T>>() {
            Some(records) => records.as_slice(),
            None => panic!(
                "batch of {} delivered to an operator expecting {}",
                (self.vtable.type_name)(),
                std::any::type_name::<T>()
            ),
        }
    }

    /// The records of an owned batch, or `Err(records)` to read in place if it is shared.
    pub fn owned_or_shared<T: Data>(self) -> Result<Vec<Record<T>>, SharedRecords<T>> {
        match self.downcast() {
            Records::Owned(records) => Ok(records),
            shared => Err(SharedRecords(shared)),
        }
    }

    /// Keeps the records for which `keep(ts, encoded value)` is true (not on the hot path:
    /// it encodes every record; the differential oracle's reference run uses it).
    pub fn retain_encoded(&mut self, keep: Keep<'_>) {
        self.len = (self.vtable.retain)(&mut self.records, keep);
    }

    /// Each record's timestamp, encoded value ([`encode_value`]) and debug text.
    pub fn describe(&self) -> Vec<DescribedRecord> {
        (self.vtable.describe)(self.records.as_ref())
    }
}

/// The records of a shared batch, to read in place ([`Batch::owned_or_shared`]).
pub struct SharedRecords<T>(Records<T>);

impl<T: Clone> std::ops::Deref for SharedRecords<T> {
    type Target = [Record<T>];
    fn deref(&self) -> &[Record<T>] {
        self.0.as_slice()
    }
}

impl Clone for Batch {
    fn clone(&self) -> Self {
        Batch {
            len: self.len,
            records: (self.vtable.clone)(self.records.as_ref()),
            vtable: self.vtable,
        }
    }
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Batch<{}>({} records)", (self.vtable.type_name)(), self.len)
    }
}

/// An element on a channel.
#[derive(Clone, Debug)]
pub enum Message {
    /// A batch of records.
    Records(Batch),
    /// No more records with `ts <= watermark` will follow on this channel.
    Watermark(Timestamp),
    /// A checkpoint's barrier: what came before it on this channel belongs to the checkpoint.
    Barrier(CheckpointId),
    /// The sender has ended: nothing follows on this channel.
    EndOfInput,
    /// Flink's `WatermarkStatus.IDLE`: the sender's sources have nothing to read; leave this
    /// channel out of the watermark minimum until it delivers again.
    Idle,
    /// Flink's `WatermarkStatus.ACTIVE`: the sender delivers again after `Idle`.
    Active,
}

impl Message {
    /// A short name for traces and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Records(_) => "records",
            Message::Watermark(_) => "watermark",
            Message::Barrier(_) => "barrier",
            Message::EndOfInput => "end-of-input",
            Message::Idle => "idle",
            Message::Active => "active",
        }
    }
}
