//! Change-data-capture input: Debezium change events turned into a changelog
//! (docs/semantics.md, "Change data capture").
//!
//! A Debezium event (the envelope: `op` `c`/`u`/`d`/`r`, the row `before` and `after`, its
//! `source` position, `ts_ms`) becomes rows: create and snapshot read `+I after`, update
//! `-U before, +U after`, delete `-D before`. Debezium delivers at least once (a restarted
//! connector replays events) and keeps each row's events in order; so per row key, an event
//! whose position is not past the last one taken is a replay and is dropped, and positions
//! may interleave across keys. Each connector's positions are ordered as that connector
//! orders them (`position`); a snapshot read precedes every log event.
//!
//! `json` reads the lines connectors and Kafka Connect write (Flink's `debezium-json`
//! format). This module owns the event and the decoders; it does no I/O: lines come from
//! the driver.

mod json;
mod position;

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::changelog::{Row, RowKind};
use crate::element::{Data, Key, Record};
use crate::process::{KeyedProcessFunction, ProcessContext};
use crate::state::ValueState;

pub use json::{encode_line, DebeziumError, DebeziumJson};
pub use position::{binlog_file, Position, SqlServerLsn};

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
    /// A row read by a snapshot.
    #[serde(rename = "r")]
    Read,
}

impl Op {
    const ALL: [Op; 4] = [Op::Create, Op::Update, Op::Delete, Op::Read];

    /// The operation as Debezium writes it in `op`.
    pub fn code(self) -> &'static str {
        match self {
            Op::Create => "c",
            Op::Update => "u",
            Op::Delete => "d",
            Op::Read => "r",
        }
    }

    /// The operation Debezium writes as `code` in `op`, if it is one of these four.
    pub fn from_code(code: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.code() == code)
    }
}

/// Where the change was read (Debezium's `source` block): its table and its position in the
/// database's log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceInfo {
    /// The table the row belongs to (`source.table`).
    pub table: String,
    /// The log position.
    pub position: Position,
}

/// What a decoder needs of an event's `before` row: the whole old row (retract form: an
/// update retracts it, as Flink's `debezium-json` does), or only its key (upsert form).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DebeziumMode {
    /// Retract form: an update's and a delete's `before` must hold the whole old row
    /// (PostgreSQL: `REPLICA IDENTITY FULL`; MySQL: `binlog_row_image=FULL`).
    #[default]
    Retract,
    /// Upsert form: rows keyed on the after-image; an update's `before` is not read and a
    /// delete's only for its key, so a table that sends only its key's old columns will do
    /// (`Stream::debezium_upsert`).
    Upsert,
}

/// A Debezium change event of rows of type `T`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChangeEvent<T> {
    /// What happened to the row.
    pub op: Op,
    /// The row before the change (`None` for a create or a snapshot read, and for an update
    /// read in upsert form).
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

    /// Why the event cannot be applied in `mode`, if it cannot: a row its operation needs
    /// (`"before"` or `"after"`).
    pub fn validate(&self, mode: DebeziumMode) -> Result<(), &'static str> {
        match self.op {
            Op::Create | Op::Read | Op::Update if self.after.is_none() => Err("after"),
            Op::Update if mode == DebeziumMode::Retract && self.before.is_none() => Err("before"),
            Op::Delete if self.before.is_none() => Err("before"),
            _ => Ok(()),
        }
    }
}

/// What a key's decoder remembers: the last event it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Taken {
    /// A snapshot read (its position is the snapshot's, not the row's place in the log).
    Snapshot,
    /// A log event, at this position.
    Log(Position),
}

impl Taken {
    /// Whether an event (`op` at `position`) is a replay of what was taken: a snapshot read
    /// once anything of the key was taken (a snapshot reads a row once, and precedes the
    /// log); a log event not past the last log event taken. Positions that cannot be
    /// compared (another connector, a renamed binlog) are not a replay.
    pub fn replays(&self, op: Op, position: &Position) -> bool {
        match (self, op) {
            (_, Op::Read) => true,
            (Taken::Snapshot, _) => false,
            (Taken::Log(last), _) => position.log_order(last).is_some_and(|order| order.is_le()),
        }
    }

    fn of(op: Op, position: &Position) -> Taken {
        match op {
            Op::Read => Taken::Snapshot,
            _ => Taken::Log(position.clone()),
        }
    }
}

/// Keyed by row key: drops replayed events ([`Taken::replays`]) and turns the others into
/// changelog rows, in retract form (`-U before, +U after`) or in upsert form (`+U after`,
/// `-D before` for its key; `Stream::debezium_upsert` normalises it).
#[derive(Clone)]
pub struct DebeziumDecode<T> {
    mode: DebeziumMode,
    _rows: PhantomData<fn(T)>,
}

impl<T> DebeziumDecode<T> {
    /// A decoder of events read in `mode`.
    pub fn new(mode: DebeziumMode) -> Self {
        DebeziumDecode {
            mode,
            _rows: PhantomData,
        }
    }
}

impl<T> Default for DebeziumDecode<T> {
    fn default() -> Self {
        DebeziumDecode::new(DebeziumMode::Retract)
    }
}

impl<K: Key, T: Data> KeyedProcessFunction<K, ChangeEvent<T>> for DebeziumDecode<T> {
    /// The key's last event taken.
    type State = ValueState<Taken>;
    type Out = Row<T>;

    fn process_element(
        &mut self,
        record: Record<ChangeEvent<T>>,
        ctx: &mut ProcessContext<'_, K, ValueState<Taken>, Row<T>>,
    ) {
        let event = record.value;
        let position = &event.source.position;
        if ctx.state().value().is_some_and(|last| last.replays(event.op, position))
            || event.validate(self.mode).is_err()
        {
            return;
        }
        ctx.state().update(Taken::of(event.op, position));
        match (self.mode, event.op, event.before, event.after) {
            (_, Op::Create | Op::Read, _, Some(after)) => ctx.emit(Row::insert(after)),
            (DebeziumMode::Retract, Op::Update, Some(before), Some(after)) => {
                ctx.emit(Row::new(RowKind::UpdateBefore, before));
                ctx.emit(Row::new(RowKind::UpdateAfter, after));
            }
            (DebeziumMode::Upsert, Op::Update, _, Some(after)) => ctx.emit(Row::new(RowKind::UpdateAfter, after)),
            (_, Op::Delete, Some(before), _) => ctx.emit(Row::delete(before)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binlog(pos: u64) -> Position {
        Position::Binlog {
            file: "mysql-bin.000003".to_string(),
            pos,
            row: 0,
        }
    }

    #[test]
    fn a_snapshot_read_precedes_the_log() {
        let snapshot = Taken::Snapshot;
        // A transaction that began before the snapshot and committed after it: its change
        // has a position below the snapshot's, and is taken.
        assert!(!snapshot.replays(Op::Update, &Position::Postgres { lsn: 1 }));
        assert!(
            snapshot.replays(Op::Read, &Position::Postgres { lsn: 1 }),
            "a snapshot replayed"
        );
        let log = Taken::Log(binlog(484));
        assert!(log.replays(Op::Read, &binlog(805)), "a snapshot read after the log");
        assert!(log.replays(Op::Update, &binlog(484)));
        assert!(log.replays(Op::Delete, &binlog(154)));
        assert!(!log.replays(Op::Delete, &binlog(805)));
        assert!(
            !log.replays(Op::Create, &Position::Postgres { lsn: 1 }),
            "positions of another connector do not compare"
        );
    }

    #[test]
    fn validation_follows_the_mode() {
        let event = |op, before: Option<u8>, after: Option<u8>| ChangeEvent {
            op,
            before,
            after,
            source: SourceInfo {
                table: "t".into(),
                position: binlog(4),
            },
            ts_ms: 0,
        };
        let update_without_before = event(Op::Update, None, Some(1));
        assert_eq!(update_without_before.validate(DebeziumMode::Retract), Err("before"));
        assert_eq!(update_without_before.validate(DebeziumMode::Upsert), Ok(()));
        assert_eq!(
            event(Op::Delete, None, None).validate(DebeziumMode::Upsert),
            Err("before")
        );
        assert_eq!(
            event(Op::Create, None, None).validate(DebeziumMode::Upsert),
            Err("after")
        );
        assert_eq!(event(Op::Read, None, Some(1)).validate(DebeziumMode::Retract), Ok(()));
    }
}
