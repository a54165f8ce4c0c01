//! Probes and changelog entries on two scripted sources, each with its own watermarks,
//! read in the fuzzer's order, with checkpoints and crash-restores. The join's late probes,
//! late changes and joined output must equal a reference that tracks the join's watermark
//! (the minimum over both sources; `i64::MAX` for a finished one) and joins each accepted
//! probe with the newest accepted change of its key at or before its timestamp.
#![no_main]

use arbitrary::Arbitrary;
use eddy_engine::{Change, CommitLog, Pipeline, Record, Scripted};
use eddy_fuzz::{drive, plant_from_env, sorted, Event, Read, Step};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Probe { key: u8, ts: u8, value: i8 },
    ProbeWatermark(u8),
    Upsert { key: u8, ts: u8, value: i8 },
    Delete { key: u8, ts: u8 },
    ChangeWatermark(u8),
    Checkpoint,
    Crash,
}

#[derive(Arbitrary, Debug)]
struct Input {
    parallelism: u8,
    ops: Vec<Op>,
}

fn time(t: u8) -> i64 {
    i64::from(t) - 64
}

type Joined = (Event, Option<i64>);

fuzz_target!(|input: Input| {
    let _bug = plant_from_env();
    let (mut probes, mut changes, mut steps) = (Vec::new(), Vec::new(), Vec::new());
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Probe { key, ts, value } => {
                probes.push(Scripted::Record(time(ts), (key % 4, i64::from(value))));
                steps.push(Step::Next(0));
            }
            Op::ProbeWatermark(ts) => {
                probes.push(Scripted::Watermark(time(ts)));
                steps.push(Step::Next(0));
            }
            Op::Upsert { key, ts, value } => {
                let change = Change::Upsert {
                    key: key % 4,
                    value: i64::from(value),
                };
                changes.push(Scripted::Record(time(ts), change));
                steps.push(Step::Next(1));
            }
            Op::Delete { key, ts } => {
                changes.push(Scripted::Record(time(ts), Change::Delete { key: key % 4 }));
                steps.push(Step::Next(1));
            }
            Op::ChangeWatermark(ts) => {
                changes.push(Scripted::Watermark(time(ts)));
                steps.push(Step::Next(1));
            }
            Op::Checkpoint => steps.push(Step::Checkpoint),
            Op::Crash => steps.push(Step::Crash),
        }
    }

    let joined: CommitLog<Joined> = CommitLog::new();
    let late_probes: CommitLog<Event> = CommitLog::new();
    let late_changes: CommitLog<Change<u8, i64>> = CommitLog::new();
    let pipeline = Pipeline::new().with_parallelism(1 + usize::from(input.parallelism % 3));
    let probe_stream = pipeline.scripted_source("probes", probes.clone());
    let change_stream = pipeline.scripted_source("changes", changes.clone());
    let join = probe_stream.key_by(|e: &Event| e.0).temporal_join(change_stream);
    join.output.sink_transactional(joined.clone());
    join.late.sink_transactional(late_probes.clone());
    join.late_changes.sink_transactional(late_changes.clone());
    let graph = pipeline.build().expect("a valid pipeline");
    let (history, _) = drive(&graph, &[probes.len(), changes.len()], steps);

    // The join's watermark: the minimum over both sources' highest watermarks read.
    let mut watermarks = [i64::MIN; 2];
    let (mut accepted_probes, mut accepted_changes) = (Vec::new(), Vec::new());
    let (mut expected_late_probes, mut expected_late_changes) = (Vec::new(), Vec::new());
    for read in history {
        let join_watermark = watermarks[0].min(watermarks[1]);
        match read {
            Read::Finished { source } => watermarks[source] = i64::MAX,
            Read::Element { source: 0, index } => match &probes[index] {
                Scripted::Watermark(w) => watermarks[0] = watermarks[0].max(*w),
                Scripted::Record(ts, probe) if *ts <= join_watermark => {
                    expected_late_probes.push(Record::new(*ts, *probe))
                }
                Scripted::Record(ts, probe) => accepted_probes.push(Record::new(*ts, *probe)),
            },
            Read::Element { index, .. } => match &changes[index] {
                Scripted::Watermark(w) => watermarks[1] = watermarks[1].max(*w),
                Scripted::Record(ts, change) if *ts <= join_watermark => {
                    expected_late_changes.push(Record::new(*ts, change.clone()))
                }
                Scripted::Record(ts, change) => accepted_changes.push(Record::new(*ts, change.clone())),
            },
        }
    }
    assert_eq!(
        sorted(late_probes.records()),
        sorted(expected_late_probes),
        "late probes"
    );
    assert_eq!(
        sorted(late_changes.records()),
        sorted(expected_late_changes),
        "late changes"
    );
    // Accepted changes in arrival order: of two at the same timestamp the later one wins.
    let expected: Vec<Record<Joined>> = accepted_probes
        .iter()
        .map(|p| {
            let version = accepted_changes
                .iter()
                .filter(|c| *c.value.key() == p.value.0 && c.ts <= p.ts)
                .max_by_key(|c| c.ts)
                .and_then(|c| match c.value {
                    Change::Upsert { value, .. } => Some(value),
                    Change::Delete { .. } => None,
                });
            Record::new(p.ts, (p.value, version))
        })
        .collect();
    assert_eq!(sorted(joined.records()), sorted(expected), "joined probes");
});
