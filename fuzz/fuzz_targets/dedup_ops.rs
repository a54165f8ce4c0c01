//! Records, watermarks, checkpoints and crash-restores from the fuzzer into a deduplication
//! (keep-first or keep-last, a TTL). The exact late records and the emitted records must
//! equal a reference: per key, records sorted by `(ts, value)` cut into intervals
//! `[first, first + ttl)`, over the records that were not late (`ts <= watermark`).
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use eddy_engine::{CommitLog, Keep, Pipeline, Record, Scripted};
use eddy_fuzz::{drive, plant_from_env, sorted, Event, Read, Step};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Record { key: u8, ts: u8, value: u8 },
    Watermark(u8),
    Checkpoint,
    Crash,
}

#[derive(Arbitrary, Debug)]
struct Input {
    keep_last: bool,
    ttl: u8,
    parallelism: u8,
    ops: Vec<Op>,
}

fn time(t: u8) -> i64 {
    i64::from(t) - 64
}

/// Per key: sort, cut into TTL intervals, keep the first (stamped with its ts) or the last
/// (stamped with the interval's end − 1).
fn reference(keep_last: bool, ttl: i64, accepted: &[Record<Event>]) -> Vec<Record<Event>> {
    let mut by_key: BTreeMap<u8, Vec<(i64, Event)>> = BTreeMap::new();
    for r in accepted {
        by_key.entry(r.value.0).or_default().push((r.ts, r.value));
    }
    let mut out = Vec::new();
    for (_, mut events) in by_key {
        events.sort();
        let mut i = 0;
        while i < events.len() {
            let end = events[i].0 + ttl;
            let mut j = i;
            while j + 1 < events.len() && events[j + 1].0 < end {
                j += 1;
            }
            out.push(if keep_last {
                Record::new(end - 1, events[j].1)
            } else {
                Record::new(events[i].0, events[i].1)
            });
            i = j + 1;
        }
    }
    sorted(out)
}

fuzz_target!(|input: Input| {
    let _bug = plant_from_env();
    let ttl = 1 + i64::from(input.ttl % 32);
    let mut script = Vec::new();
    let mut steps = Vec::new();
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Record { key, ts, value } => {
                script.push(Scripted::Record(time(ts), (key % 4, i64::from(value % 4))));
                steps.push(Step::Next(0));
            }
            Op::Watermark(ts) => {
                script.push(Scripted::Watermark(time(ts)));
                steps.push(Step::Next(0));
            }
            Op::Checkpoint => steps.push(Step::Checkpoint),
            Op::Crash => steps.push(Step::Crash),
        }
    }

    let kept: CommitLog<Event> = CommitLog::new();
    let late: CommitLog<Event> = CommitLog::new();
    let pipeline = Pipeline::new().with_parallelism(1 + usize::from(input.parallelism % 3));
    let keep = if input.keep_last { Keep::Last } else { Keep::First };
    let deduplicated = pipeline
        .scripted_source("script", script.clone())
        .key_by(|e: &Event| e.0)
        .deduplicate(keep, ttl);
    deduplicated.output.sink_transactional(kept.clone());
    deduplicated.late.sink_transactional(late.clone());
    let graph = pipeline.build().expect("a valid pipeline");
    let (history, state_entries) = drive(&graph, &[script.len()], steps);

    let mut watermark = i64::MIN;
    let (mut accepted, mut expected_late) = (Vec::new(), Vec::new());
    for read in history {
        let Read::Element { index, .. } = read else { continue };
        match &script[index] {
            Scripted::Watermark(w) => watermark = watermark.max(*w),
            Scripted::Record(ts, event) if *ts <= watermark => expected_late.push(Record::new(*ts, *event)),
            Scripted::Record(ts, event) => accepted.push(Record::new(*ts, *event)),
        }
    }
    assert_eq!(sorted(late.records()), sorted(expected_late), "late records");
    assert_eq!(
        sorted(kept.records()),
        reference(input.keep_last, ttl, &accepted),
        "kept records"
    );
    assert_eq!(state_entries, 0, "dedup state is gone after the end of input");
});
