//! Records, watermarks, checkpoints and crash-restores from the fuzzer into a tumbling,
//! sliding or session window (count and sum) with allowed lateness. The exact late records
//! and the final result of every `(key, window)` must equal a reference model that reads
//! the same history by Flink's rules (docs/semantics.md, "Parity with Flink"): a record
//! joins those of its windows that are not late and is late only if all are; a session
//! record merges with the live sessions it overlaps or touches and is late only if it
//! merges with none and its own window is late; a window is gone once the watermark passes
//! its end plus the lateness.
#![no_main]

use arbitrary::Arbitrary;
use eddy_engine::{AggregateFunction, CommitLog, Pipeline, Record, Scripted, WindowAssigner, Windowed};
use eddy_fuzz::{drive, plant_from_env, sorted, without_superseded, Event, Read, Step, Table};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Tumbling { size: u8, offset: u8 },
    Sliding { size: u8, slide: u8 },
    Session { gap: u8 },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Op {
    Record { key: u8, ts: u8, value: i8 },
    Watermark(u8),
    Checkpoint,
    Crash,
}

#[derive(Arbitrary, Debug)]
struct Input {
    kind: Kind,
    lateness: u8,
    parallelism: u8,
    ops: Vec<Op>,
}

/// Timestamps around 0, in a range where windows of size up to 32 meet often.
fn time(t: u8) -> i64 {
    i64::from(t) - 64
}

#[derive(Clone, Copy, Debug)]
enum Windows {
    Tumbling { size: i64, offset: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

impl Windows {
    fn of(kind: Kind) -> Self {
        match kind {
            Kind::Tumbling { size, offset } => {
                let size = 1 + i64::from(size % 32);
                Windows::Tumbling {
                    size,
                    offset: i64::from(offset) % size,
                }
            }
            Kind::Sliding { size, slide } => {
                let size = 1 + i64::from(size % 32);
                Windows::Sliding {
                    size,
                    slide: 1 + i64::from(slide) % size,
                }
            }
            Kind::Session { gap } => Windows::Session {
                gap: 1 + i64::from(gap % 32),
            },
        }
    }

    fn assigner(self) -> WindowAssigner {
        match self {
            Windows::Tumbling { size, offset } => WindowAssigner::tumbling_with_offset(size, offset),
            Windows::Sliding { size, slide } => WindowAssigner::sliding(size, slide),
            Windows::Session { gap } => WindowAssigner::session(gap),
        }
    }

    /// The fixed windows `[start, end)` holding `ts` (not for sessions).
    fn fixed(self, ts: i64) -> Vec<(i64, i64)> {
        match self {
            Windows::Tumbling { size, offset } => {
                let start = (ts - offset).div_euclid(size) * size + offset;
                vec![(start, start + size)]
            }
            Windows::Sliding { size, slide } => {
                let mut windows = Vec::new();
                let mut start = ts.div_euclid(slide) * slide;
                while start + size > ts {
                    windows.push((start, start + size));
                    start -= slide;
                }
                windows
            }
            Windows::Session { .. } => unreachable!("sessions are not fixed windows"),
        }
    }

    /// Reads the history as the window operator does: the late records, and every
    /// `(key, window)`'s final count and sum.
    fn model(self, history: &[Read], script: &[Scripted<Event>], lateness: i64) -> (Vec<Record<Event>>, Table) {
        let gone = |end: i64, watermark: i64| end - 1 + lateness <= watermark;
        let mut watermark = i64::MIN;
        let (mut late, mut table) = (Vec::new(), Table::new());
        // Sessions: the live ones per key, `(start, end, count, sum)`.
        let mut live: std::collections::BTreeMap<u8, Vec<(i64, i64, u64, i64)>> = Default::default();
        for read in history {
            let Read::Element { index, .. } = *read else { continue };
            match script[index] {
                Scripted::Watermark(w) => {
                    watermark = watermark.max(w);
                    for (key, sessions) in &mut live {
                        for &(start, end, n, sum) in sessions.iter().filter(|s| gone(s.1, watermark)) {
                            table.insert((*key, start, end), (n, sum));
                        }
                        sessions.retain(|s| !gone(s.1, watermark));
                    }
                }
                Scripted::Record(ts, (key, value)) => match self {
                    Windows::Session { gap } => {
                        let sessions = live.entry(key).or_default();
                        type Session = (i64, i64, u64, i64);
                        let (touching, others): (Vec<Session>, Vec<Session>) =
                            sessions.iter().partition(|s| s.0 <= ts + gap && ts <= s.1);
                        if touching.is_empty() && gone(ts + gap, watermark) {
                            late.push(Record::new(ts, (key, value)));
                            continue;
                        }
                        let merged = touching.iter().fold((ts, ts + gap, 1, value), |m, s| {
                            (m.0.min(s.0), m.1.max(s.1), m.2 + s.2, m.3 + s.3)
                        });
                        *sessions = others;
                        sessions.push(merged);
                    }
                    _ => {
                        let open: Vec<(i64, i64)> =
                            self.fixed(ts).into_iter().filter(|w| !gone(w.1, watermark)).collect();
                        if open.is_empty() {
                            late.push(Record::new(ts, (key, value)));
                        }
                        for (start, end) in open {
                            let entry = table.entry((key, start, end)).or_default();
                            entry.0 += 1;
                            entry.1 += value;
                        }
                    }
                },
            }
        }
        for (key, sessions) in live {
            for (start, end, n, sum) in sessions {
                table.insert((key, start, end), (n, sum));
            }
        }
        (late, table)
    }
}

#[derive(Clone)]
struct CountSum;

impl AggregateFunction<Event> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (u64, i64), event: &Event) {
        acc.0 += 1;
        acc.1 += event.1;
    }
    fn merge(&self, acc: &mut (u64, i64), other: (u64, i64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
}

fuzz_target!(|input: Input| {
    let _bug = plant_from_env();
    let windows = Windows::of(input.kind);
    let lateness = i64::from(input.lateness % 16);
    let mut script = Vec::new();
    let mut steps = Vec::new();
    for op in input.ops.iter().take(256) {
        match *op {
            Op::Record { key, ts, value } => {
                script.push(Scripted::Record(time(ts), (key % 4, i64::from(value))));
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

    let results: CommitLog<Windowed<u8, (u64, i64)>> = CommitLog::new();
    let late: CommitLog<Event> = CommitLog::new();
    let pipeline = Pipeline::new().with_parallelism(1 + usize::from(input.parallelism % 3));
    let windowed = pipeline
        .scripted_source("script", script.clone())
        .key_by(|e: &Event| e.0)
        .window(windows.assigner())
        .allowed_lateness(lateness)
        .aggregate(CountSum);
    windowed
        .output
        .key_by(|w: &Windowed<u8, (u64, i64)>| w.key)
        .sink_transactional(results.clone());
    windowed.late.sink_transactional(late.clone());
    let graph = pipeline.build().expect("a valid pipeline");
    let (history, state_entries) = drive(&graph, &[script.len()], steps);

    // The reference reads the same history: watermark = the highest one read so far.
    let (expected_late, expected) = windows.model(&history, &script, lateness);
    assert_eq!(sorted(late.records()), sorted(expected_late), "late records");

    let mut upserts = std::collections::BTreeMap::new();
    for r in results.records() {
        let w = &r.value.window;
        assert_eq!(r.ts, w.end - 1, "a result is stamped with its window's max timestamp");
        upserts.insert((r.value.key, w.start, w.end), r.value.value);
    }
    let (got, expected) = match windows {
        Windows::Session { .. } => (without_superseded(&upserts), without_superseded(&expected)),
        _ => (upserts, expected),
    };
    assert_eq!(got, expected, "final results per (key, window)");
    assert_eq!(state_entries, 0, "window state is gone after the end of input");
});
