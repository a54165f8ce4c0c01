//! Change-data-capture input: Debezium change events turned into a changelog.
//!
//! A Debezium event (the JSON envelope: `op` `c`/`u`/`d`/`r`, the row `before` and `after`,
//! its `source` position, `ts_ms`) becomes rows: create and snapshot read `+I after`, update
//! `-U before, +U after`, delete `-D before`. Debezium delivers at least once (a restarted
//! connector replays events) and keeps each row's events in order; so per row key, an event
//! whose position is not past the last one taken is a replay and is dropped, and positions
//! may interleave across keys.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::changelog::{Row, RowKind};
use crate::element::{Data, Key, Record};
use crate::process::{KeyedProcessFunction, ProcessContext};
use crate::state::ValueState;

/// A Debezium change event's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Op {
    /// A row was created.
    #[serde(rename = "c")]
    Create,
    /// A row was updated.
    #[serde(rename = "u")]
    Update,
    /// A row was deleted.
    #[serde(rename = "d")]
    Delete,
    /// A row read by the initial snapshot.
    #[serde(rename = "r")]
    Read,
}

/// Where in the database's log the change was read (Debezium's `source` block; the
/// position is its log sequence number, or an equivalent that increases along the log).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The table the row belongs to.
    pub table: String,
    /// The log position.
    pub lsn: u64,
}

/// A Debezium change event of rows of type `T`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChangeEvent<T> {
    /// What happened to the row.
    pub op: Op,
    /// The row before the change (`None` for a create or a snapshot read).
    pub before: Option<T>,
    /// The row after the change (`None` for a delete).
    pub after: Option<T>,
    /// Where in the database's log the change was read.
    pub source: SourceInfo,
    /// When the event was produced, in milliseconds since the epoch.
    pub ts_ms: i64,
}

impl<T> ChangeEvent<T> {
    /// The row the event is about (its `after`, or `before` for a delete).
    pub fn row(&self) -> Option<&T> {
        self.after.as_ref().or(self.before.as_ref())
    }

    /// Why the event cannot be applied, if it cannot: a field its operation needs.
    pub fn validate(&self) -> Result<(), &'static str> {
        match self.op {
            Op::Create | Op::Read if self.after.is_none() => Err("after"),
            Op::Update if self.before.is_none() => Err("before"),
            Op::Update if self.after.is_none() => Err("after"),
            Op::Delete if self.before.is_none() => Err("before"),
            _ => Ok(()),
        }
    }
}

/// Keyed by row key: drops replayed events (position not past the key's last) and turns the
/// others into changelog rows.
#[derive(Clone)]
pub struct DebeziumDecode<T>(PhantomData<fn(T)>);

impl<T> Default for DebeziumDecode<T> {
    fn default() -> Self {
        DebeziumDecode(PhantomData)
    }
}

impl<K: Key, T: Data> KeyedProcessFunction<K, ChangeEvent<T>> for DebeziumDecode<T> {
    /// The key's last position taken.
    type State = ValueState<u64>;
    type Out = Row<T>;

    fn process_element(
        &mut self,
        record: Record<ChangeEvent<T>>,
        ctx: &mut ProcessContext<'_, K, ValueState<u64>, Row<T>>,
    ) {
        let event = record.value;
        if ctx.state().value().is_some_and(|last| event.source.lsn <= *last) || event.validate().is_err() {
            return;
        }
        ctx.state().update(event.source.lsn);
        match (event.op, event.before, event.after) {
            (Op::Create | Op::Read, _, Some(after)) => ctx.emit(Row::insert(after)),
            (Op::Update, Some(before), Some(after)) => {
                ctx.emit(Row::new(RowKind::UpdateBefore, before));
                ctx.emit(Row::new(RowKind::UpdateAfter, after));
            }
            (Op::Delete, Some(before), _) => ctx.emit(Row::delete(before)),
            _ => {}
        }
    }
}
