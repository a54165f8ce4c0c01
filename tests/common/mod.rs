//! Independent reference computations shared by the property suites. They share no code
//! with the engine: windows by `div_euclid` and brute-force enumeration, sessions by sorting,
//! folds into `BTreeMap`s.
#![allow(dead_code)]

use std::collections::BTreeMap;

use eddy::Record;
use proptest::test_runner::{Config, FileFailurePersistence};

/// `cases` by default (`PROPTEST_CASES` overrides); failures persist in the committed
/// `proptest-regressions/NAME.txt` and are replayed first on every run.
pub fn proptest_config(name: &'static str, cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(name))),
        ..Config::default()
    }
}

/// (key, value)
pub type Event = (u8, i64);

#[derive(Clone, Copy, Debug)]
pub enum Kind {
    Tumbling { size: i64, offset: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

pub type Table = BTreeMap<(u8, i64, i64), (u64, i64)>; // (key, start, end) -> (count, sum)

/// The reference: fold `records` into per-(key, window) counts and sums.
pub fn reference(kind: Kind, records: &[Record<Event>]) -> Table {
    let mut table = Table::new();
    let mut add = |key: u8, start: i64, end: i64, value: i64| {
        let entry = table.entry((key, start, end)).or_default();
        entry.0 += 1;
        entry.1 += value;
    };
    match kind {
        Kind::Tumbling { size, offset } => {
            for r in records {
                let start = (r.ts - offset).div_euclid(size) * size + offset;
                add(r.value.0, start, start + size, r.value.1);
            }
        }
        Kind::Sliding { size, slide } => {
            for r in records {
                let first = (r.ts - size).div_euclid(slide) - 1;
                let last = r.ts.div_euclid(slide) + 1;
                for k in first..=last {
                    let start = k * slide;
                    if start <= r.ts && r.ts < start + size {
                        add(r.value.0, start, start + size, r.value.1);
                    }
                }
            }
        }
        Kind::Session { gap } => {
            let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
            for r in records {
                by_key.entry(r.value.0).or_default().push((r.ts, r.value.1));
            }
            for (key, mut events) in by_key {
                events.sort();
                let mut session: Option<(i64, i64, u64, i64)> = None; // start, end, count, sum
                for (ts, value) in events {
                    session = match session {
                        Some((start, end, count, sum)) if ts < end => {
                            Some((start, end.max(ts + gap), count + 1, sum + value))
                        }
                        done => {
                            if let Some((start, end, count, sum)) = done {
                                table.insert((key, start, end), (count, sum));
                            }
                            Some((ts, ts + gap, 1, value))
                        }
                    };
                }
                if let Some((start, end, count, sum)) = session {
                    table.insert((key, start, end), (count, sum));
                }
            }
        }
    }
    table
}
