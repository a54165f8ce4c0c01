//! The join cases' scripts and eddy pipelines: the event-time temporal join (`temporal-join-`)
//! against Flink SQL's `LEFT JOIN ... FOR SYSTEM_TIME AS OF` (`Sql.java`).

use std::sync::{Arc, Mutex};

use eddy::engine::{Change, LateRows, Row, RowKind};
use eddy::{Pipeline, Stream};

use crate::compare::Tagged;
use crate::parts::{scripted_rows, Event, TagSink};
use crate::script::Script;

/// `probes.key_by(k).temporal_join_with(changes, LateRows::JoinAtNextWatermark)` (Flink's
/// mode): each probe `(k, ts, v)` with the value of the version of `k` valid at `ts`, printed
/// as the Flink side prints its rows (`+I k ts v value`, `null` for none); a late probe joins
/// at the next watermark, a late change is applied (the side outputs stay empty).
pub fn temporal_join(pipeline: &Pipeline, script: &Script, outputs: &Arc<Mutex<Vec<Tagged>>>) {
    let input: Stream<Row<Event>> = pipeline.scripted_source("script", scripted_rows(script));
    let probes = input
        .clone()
        .filter(|r: &Row<Event>| r.kind == RowKind::Insert)
        .map(|r: Row<Event>| r.row);
    let changes = input
        .filter(|r: &Row<Event>| r.kind != RowKind::Insert)
        .map(|r: Row<Event>| match r.kind {
            RowKind::Delete | RowKind::UpdateBefore => Change::Delete { key: r.row.0 },
            RowKind::Insert | RowKind::UpdateAfter => Change::Upsert {
                key: r.row.0,
                value: r.row.2,
            },
        });
    let joined = probes
        .key_by(|e: &Event| e.0.clone())
        .temporal_join_with(changes, LateRows::JoinAtNextWatermark);
    joined
        .output
        .map(|((k, ts, v), value): (Event, Option<i64>)| {
            let value = value.map_or("null".to_string(), |v| v.to_string());
            format!("+I {k} {ts} {v} {value}")
        })
        .sink(TagSink::new("main".to_string(), outputs));
    joined
        .late
        .map(|(k, ts, v): Event| format!("{k} @{ts} ={v}"))
        .sink(TagSink::new("late".to_string(), outputs));
    joined
        .late_changes
        .map(|c: Change<String, i64>| match c {
            Change::Upsert { key, value } => format!("upsert {key} ={value}"),
            Change::Delete { key } => format!("delete {key}"),
        })
        .sink(TagSink::new("late-changes".to_string(), outputs));
}
