//! The eddy side's pipelines: a case's pipeline over a script with eddy's public API, as a
//! user would write it, each output tagged with the last watermark its sink task saw.

use std::sync::{Arc, Mutex};

use std::cmp::Reverse;

use eddy::engine::cdc::{ChangeEvent, DebeziumJson};
use eddy::engine::{
    AvgRows, CountDistinctRows, CountRows, JobGraph, JoinKind, MaxRows, MinRows, Row, RowKind, SemiJoinKind,
    SumDistinctRows, SumRows,
};
use eddy::{
    AggregateFunction, Evictor, Keep, KeyedProcessFunction, Pipeline, ProcessContext, Record, Scripted, Stream,
    TimeDomain, Trigger, Windowed,
};

use crate::cases::{Case, EvictorKind, Kind, Query, SqlCase, TriggerKind, WindowCase};
use crate::compare::Tagged;
use crate::debezium;
use crate::parts::{scripted, scripted_rows, Event, TagSink};
use crate::script::Script;

/// The case's pipeline over `script`, its sinks' streams named `{phase}main` and
/// `{phase}late`.
pub fn build(case: &Case, script: &Script, outputs: &Arc<Mutex<Vec<Tagged>>>, phase: &str) -> Result<JobGraph, String> {
    let pipeline = Pipeline::new().with_parallelism(case.parallelism);
    if matches!(case.kind, Kind::TemporalJoin { .. }) {
        crate::joins::temporal_join(&pipeline, script, outputs);
        return pipeline.build().map_err(|e| e.to_string());
    }
    if let Kind::Sql(sql) = case.kind {
        changelog_query(&pipeline, sql, script, outputs);
        return pipeline.build().map_err(|e| e.to_string());
    }
    let input = pipeline.scripted_source("script", scripted(script));
    let keyed = input.key_by(|e: &Event| e.0.clone());
    let main = TagSink::new(format!("{phase}main"), outputs);
    match case.kind {
        Kind::Window(w) => {
            let mut windowed = keyed
                .window(w.assigner)
                .allowed_lateness(w.lateness_ms)
                .trigger(trigger(&w));
            if let Some(evictor) = w.evictor {
                windowed = windowed.evictor(match evictor {
                    EvictorKind::Count { keep } => Evictor::count(keep),
                    EvictorKind::Time { keep_ms } => Evictor::time(keep_ms),
                });
            }
            let results = windowed.aggregate(SumCount);
            results
                .output
                .map(|r: Windowed<String, (i64, u64)>| describe(&r))
                .sink(main);
            results
                .late
                .map(|(key, ts, value): Event| format!("{key} @{ts} ={value}"))
                .sink(TagSink::new(format!("{phase}late"), outputs));
        }
        Kind::Process => keyed.process(TimerFunction).sink(main),
        Kind::Sql(_) | Kind::TemporalJoin { .. } => unreachable!("built above"),
    }
    pipeline.build().map_err(|e| e.to_string())
}

/// A Debezium row: what the JSON lines' `before` and `after` hold.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct DebeziumRow {
    k: String,
    ts: i64,
    v: i64,
}

/// The script as the Debezium JSON lines the Flink side reads too, read by eddy's reader
/// (tombstones read as nothing; with the form's noise, lines that do not read are skipped,
/// as `ignore-parse-errors` does), at their `ts_ms`, and decoded into a changelog of
/// `(k, ts, v)`.
fn debezium(pipeline: &Pipeline, script: &Script, form: debezium::Form) -> Stream<Row<Event>> {
    let json = DebeziumJson::default();
    let events: Vec<Scripted<ChangeEvent<DebeziumRow>>> = debezium::lines(script, form)
        .iter()
        .filter_map(|line| match json.decode::<DebeziumRow>(line) {
            Ok(event) => event.map(|event| Scripted::Record(event.ts_ms, event)),
            Err(_) if form.noise => None,
            Err(e) => panic!("a line written does not read: {e}: {line}"),
        })
        .collect();
    pipeline
        .scripted_source("debezium", events)
        .debezium_changelog(|r: &DebeziumRow| r.k.clone())
        .map(|r: Row<DebeziumRow>| Row::new(r.kind, (r.row.k, r.row.ts, r.row.v)))
}

/// `KIND field field ...`, as the Flink side prints a changelog row.
fn change(kind: RowKind, fields: std::fmt::Arguments<'_>) -> String {
    format!("{} {fields}", kind.short())
}

/// The SQL case's query as eddy's changelog operators (`Sql.java` has the SQL).
fn changelog_query(pipeline: &Pipeline, sql: SqlCase, script: &Script, outputs: &Arc<Mutex<Vec<Tagged>>>) {
    let sink = TagSink::new("main".to_string(), outputs);
    let key = |r: &Row<Event>| r.row.0.clone();
    if matches!(sql.query, Query::KeepFirst | Query::KeepLast) {
        // Flink SQL keeps state without a TTL unless told to: one interval for the whole run.
        let keep = if sql.query == Query::KeepFirst {
            Keep::First
        } else {
            Keep::Last
        };
        let input: Stream<Event> = pipeline.scripted_source("script", scripted(script));
        let deduplicated = input.key_by(|e: &Event| e.0.clone()).deduplicate(keep, 1 << 50);
        deduplicated
            .output
            .map(|(k, ts, v): Event| change(RowKind::Insert, format_args!("{k} {ts} {v}")))
            .sink(sink);
        // Flink has no late side output here: a late record shows as a row only eddy has.
        deduplicated
            .late
            .map(|(k, ts, v): Event| change(RowKind::Insert, format_args!("{k} {ts} {v}")))
            .sink(TagSink::new("late".to_string(), outputs));
        return;
    }
    let rows = match sql.query {
        Query::DebeziumRows(form) | Query::DebeziumSum(form) => debezium(pipeline, script, form),
        _ => pipeline.scripted_source("script", scripted_rows(script)),
    };
    let aggregated = |stream: Stream<Row<(String, i64)>>| {
        stream.map(|r: Row<(String, i64)>| change(r.kind, format_args!("{} {}", r.row.0, r.row.1)))
    };
    let value = |e: &Event| e.2;
    let out = match sql.query {
        Query::Count => rows
            .key_by(key)
            .aggregate_changelog(CountRows)
            .map(|r: Row<(String, u64)>| change(r.kind, format_args!("{} {}", r.row.0, r.row.1))),
        Query::Sum => aggregated(rows.key_by(key).aggregate_changelog(SumRows(value))),
        Query::Avg => aggregated(rows.key_by(key).aggregate_changelog(AvgRows(value))),
        Query::Min => aggregated(rows.key_by(key).aggregate_changelog(MinRows(value))),
        Query::Max => aggregated(rows.key_by(key).aggregate_changelog(MaxRows(value))),
        Query::CountDistinct => rows
            .key_by(key)
            .aggregate_changelog(CountDistinctRows(value))
            .map(|r: Row<(String, u64)>| change(r.kind, format_args!("{} {}", r.row.0, r.row.1))),
        Query::SumDistinct => aggregated(rows.key_by(key).aggregate_changelog(SumDistinctRows(value))),
        Query::DebeziumSum(_) => aggregated(rows.key_by(key).aggregate_changelog(SumRows(value))),
        Query::DebeziumRows(_) => rows.map(|r: Row<Event>| {
            let (k, ts, v) = r.row;
            change(r.kind, format_args!("{k} {ts} {v}"))
        }),
        Query::Top2 => {
            rows.key_by(key)
                .top_n(2, |e: &Event| (Reverse(e.2), e.1))
                .map(|r: Row<(String, u32, Event)>| {
                    let (k, rank, (_, ts, v)) = r.row;
                    change(r.kind, format_args!("{k} {rank} {ts} {v}"))
                })
        }
        Query::InnerJoin | Query::LeftJoin | Query::IntervalJoin => {
            let kind = if sql.query == Query::LeftJoin {
                JoinKind::LeftOuter
            } else {
                JoinKind::Inner
            };
            let (left, right) = join_sides(rows);
            let right_key = |e: &Event| e.0.clone();
            let joined = if sql.query == Query::IntervalJoin {
                let joined = left
                    .key_by(key)
                    .join_changelog_with_ttl(right, right_key, kind, 1_000, 500);
                // Flink has no late side output here: a late row shows as a row only eddy has.
                joined
                    .late
                    .map(|side| format!("+I {side:?}"))
                    .sink(TagSink::new("late".to_string(), outputs));
                joined.output
            } else {
                left.key_by(key).join_changelog(right, right_key, kind)
            };
            joined.map(|r: Row<(Event, Option<Event>)>| {
                let ((k, lts, lv), right) = r.row;
                let (rts, rv) = match right {
                    Some((_, ts, v)) => (ts.to_string(), v.to_string()),
                    None => ("null".to_string(), "null".to_string()),
                };
                change(r.kind, format_args!("{k} {lts} {lv} {rts} {rv}"))
            })
        }
        Query::SemiJoin | Query::AntiJoin => {
            let kind = if sql.query == Query::SemiJoin {
                SemiJoinKind::Semi
            } else {
                SemiJoinKind::Anti
            };
            let (left, right) = join_sides(rows);
            left.key_by(key)
                .semi_join_changelog(right, |e: &Event| e.0.clone(), kind)
                .map(|r: Row<Event>| {
                    let (k, ts, v) = r.row;
                    change(r.kind, format_args!("{k} {ts} {v}"))
                })
        }
        Query::KeepFirst | Query::KeepLast => unreachable!("deduplication is built above"),
    };
    out.sink(sink);
}

/// The join cases' two sides: the rows with `v <= 5` and those with `v > 5` (`Sql.java`).
fn join_sides(rows: Stream<Row<Event>>) -> (Stream<Row<Event>>, Stream<Row<Event>>) {
    (
        rows.clone().filter(|r: &Row<Event>| r.row.2 <= 5),
        rows.filter(|r: &Row<Event>| r.row.2 > 5),
    )
}

fn trigger(w: &WindowCase) -> Trigger {
    let trigger = match w.trigger {
        TriggerKind::Event => Trigger::event_time(),
        TriggerKind::Continuous { interval_ms } => Trigger::continuous_event_time(interval_ms),
        TriggerKind::Count { count } => Trigger::count(count),
    };
    if w.purging {
        trigger.purging()
    } else {
        trigger
    }
}

/// `key [start,end) sum=S n=N`, as the Flink side's `Describe`.
fn describe(r: &Windowed<String, (i64, u64)>) -> String {
    format!(
        "{} [{},{}) sum={} n={}",
        r.key, r.window.start, r.window.end, r.value.0, r.value.1
    )
}

/// Sum and count of the values (the Flink side's `SumCount`).
#[derive(Clone, Copy, Debug)]
struct SumCount;

impl AggregateFunction<Event> for SumCount {
    type Acc = (i64, u64);
    type Out = (i64, u64);
    fn create_accumulator(&self) -> (i64, u64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (i64, u64), value: &Event) {
        acc.0 += value.2;
        acc.1 += 1;
    }
    fn merge(&self, acc: &mut (i64, u64), other: (i64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(i64, u64)) -> (i64, u64) {
        *acc
    }
}

/// Per key: a running sum and count; each record registers an event-time timer at the next
/// second boundary (a value of 7 deletes it instead); a timer reports the state and, after
/// three records or more, resets the count and registers another 1.5 s later (possibly
/// already behind the watermark). The Flink side's `TimerFunction` is the same.
#[derive(Clone, Copy, Debug)]
struct TimerFunction;

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct SumCountState {
    sum: i64,
    n: i64,
}

fn next_second(ts: i64) -> i64 {
    ts - ts.rem_euclid(1_000) + 1_000
}

impl KeyedProcessFunction<String, Event> for TimerFunction {
    type State = SumCountState;
    type Out = String;

    fn process_element(&mut self, record: Record<Event>, ctx: &mut ProcessContext<'_, String, SumCountState, String>) {
        let (key, ts, value) = record.value;
        let state = ctx.state();
        state.sum += value;
        state.n += 1;
        let behind = ts <= ctx.current_watermark();
        if value == 7 {
            ctx.delete_timer(TimeDomain::EventTime, next_second(ts));
        } else {
            ctx.register_timer(TimeDomain::EventTime, next_second(ts));
        }
        ctx.emit(format!("record {key} @{ts} ={value} behind={behind}"));
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, String, SumCountState, String>,
    ) {
        let watermark = ctx.current_watermark();
        let key = ctx.key().clone();
        let state = ctx.state();
        let (sum, n) = (state.sum, state.n);
        if n >= 3 {
            state.n = 0;
            ctx.register_timer(TimeDomain::EventTime, timestamp + 1_500);
        }
        ctx.emit(format!(
            "timer {key} @{timestamp} sum={sum} n={n} watermark={watermark}"
        ));
    }
}
