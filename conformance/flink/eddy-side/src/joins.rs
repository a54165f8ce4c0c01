//! The join cases' scripts and eddy pipelines: the event-time temporal join (`temporal-join-`)
//! against Flink SQL's `LEFT JOIN ... FOR SYSTEM_TIME AS OF` (`Sql.java`).

use std::sync::{Arc, Mutex};

use eddy::engine::{Change, Row, RowKind};
use eddy::{Pipeline, Stream};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::compare::Tagged;
use crate::eddy_run::{scripted_rows, Event, TagSink};
use crate::script::{self, Element, Script, Shape};

/// A temporal join's script: a script of records and watermarks (`script::generate`, on a
/// 1 s period) whose records are probes (`+I`, about half), upserts of the versioned table
/// (`+U`) and deletes (`-D`), each with its key and timestamp. `on_time`: every record ahead
/// of the watermark (moved to just past it), the case both engines define the same way.
pub fn generate_temporal(rng: &mut ChaCha8Rng, on_time: bool) -> Script {
    let shape = Shape {
        period_ms: 1_000,
        offset_ms: 0,
        lateness_ms: 0,
        session: false,
    };
    let mut watermark = i64::MIN;
    let elements = script::generate(rng, shape)
        .elements
        .into_iter()
        .map(|e| match e {
            Element::Record { key, ts, value, .. } => {
                let kind = match rng.gen_range(0..10) {
                    0..=4 => RowKind::Insert,
                    5..=8 => RowKind::UpdateAfter,
                    _ => RowKind::Delete,
                };
                let ts = if on_time {
                    ts.max(watermark.saturating_add(1))
                } else {
                    ts
                };
                Element::Record { key, ts, value, kind }
            }
            Element::Watermark(t) => {
                watermark = t;
                e
            }
            Element::Savepoint => e,
        })
        .collect();
    Script { elements }
}

/// `probes.key_by(k).temporal_join(changes)`: each probe `(k, ts, v)` with the value of the
/// version of `k` valid at `ts`, printed as the Flink side prints its rows (`+I k ts v value`,
/// `null` for none); late probes and changes on their side outputs.
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
    let joined = probes.key_by(|e: &Event| e.0.clone()).temporal_join(changes);
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
