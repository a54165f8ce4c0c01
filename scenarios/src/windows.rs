//! `odd-windows`: where window semantics branch. Readings per sensor counted in sliding
//! windows whose size is not a multiple of their slide (10 s every 3 s, offset 1 s, 2 s of
//! allowed lateness) and summed in tumbling windows with an offset (7 s, offset 2.5 s);
//! timestamps start below zero.

use std::collections::BTreeMap;

use eddy_engine::{Count, JobGraph, Pipeline, Record, Sum, WatermarkStrategy, WindowAssigner, Windowed};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{accepted, behind_arrivals, compare_tables, counts_grow, highest_watermark_at, outcome};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: u8,
    /// 1 to 100, so that a window's sum grows with every record.
    pub value: u16,
}

pub const SLIDING_SIZE_MS: i64 = 10_000;
pub const SLIDING_SLIDE_MS: i64 = 3_000;
pub const SLIDING_OFFSET_MS: i64 = 1_000;
pub const SLIDING_LATENESS_MS: i64 = 2_000;
pub const TUMBLING_SIZE_MS: i64 = 7_000;
pub const TUMBLING_OFFSET_MS: i64 = 2_500;
pub const OUT_OF_ORDERNESS_MS: i64 = 1_500;

pub struct OddWindows;

/// The starts of every window of `size` sliding by `slide` from `offset` that holds `ts`,
/// found by walking the grid (not the engine's assigner arithmetic).
fn window_starts(ts: i64, size: i64, slide: i64, offset: i64) -> Vec<i64> {
    let mut start = offset + (ts - offset).div_euclid(slide) * slide;
    let mut starts = Vec::new();
    while start + size > ts {
        starts.push(start);
        start -= slide;
    }
    starts
}

/// One output line: a sliding count or a tumbling sum of a sensor in one window.
fn window_line<V: std::fmt::Display>(kind: &str, w: &Windowed<u8, V>) -> String {
    format!(
        r#"{{"kind":"{kind}","window_start":{},"window_end":{},"sensor":{},"value":{}}}"#,
        w.window.start, w.window.end, w.key, w.value
    )
}

impl Workload for OddWindows {
    type Event = Reading;

    fn name(&self) -> &'static str {
        "odd-windows"
    }

    fn description(&self) -> &'static str {
        "readings per sensor: counts in sliding windows (10 s every 3 s, offset 1 s, 2 s lateness), sums in tumbling windows (7 s, offset 2.5 s), timestamps below zero"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Reading>> {
        let mut ts: i64 = rng.gen_range(-120_000..-20_000);
        (0..events)
            .map(|_| {
                ts += rng.gen_range(0..250);
                // Whole seconds now and then: they land on window edges.
                let ts = if rng.gen_bool(0.05) {
                    ts.div_euclid(500) * 500
                } else {
                    ts
                };
                Record::new(
                    ts,
                    Reading {
                        sensor: rng.gen_range(0..6),
                        value: rng.gen_range(1..=100),
                    },
                )
            })
            .collect()
    }

    fn build(&self, source: EventSource<Reading>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let readings = source.stream(
            &pipeline,
            "readings",
            WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS).with_interval(50),
        );
        let counts = readings
            .clone()
            .key_by(|r: &Reading| r.sensor)
            .window(WindowAssigner::sliding_with_offset(
                SLIDING_SIZE_MS,
                SLIDING_SLIDE_MS,
                SLIDING_OFFSET_MS,
            ))
            .allowed_lateness(SLIDING_LATENESS_MS)
            .aggregate(Count);
        outputs.upsert_as(
            "counts",
            counts.output,
            |w: &Windowed<u8, u64>| (w.key, w.window),
            |w| window_line("count", w),
        );
        outputs.append("late_counts", counts.late);
        let sums = readings
            .key_by(|r: &Reading| r.sensor)
            .window(WindowAssigner::tumbling_with_offset(
                TUMBLING_SIZE_MS,
                TUMBLING_OFFSET_MS,
            ))
            .aggregate(Sum(|r: &Reading| i64::from(r.value)));
        outputs.upsert_as(
            "sums",
            sums.output,
            |w: &Windowed<u8, i64>| (w.key, w.window),
            |w| window_line("sum", w),
        );
        outputs.append("late_sums", sums.late);
        pipeline.build().expect("the odd-windows pipeline is valid")
    }

    fn check(&self, input: &[Record<Reading>], recorded: &Recorded, outputs: &Outputs) -> Checked {
        let counts = outputs.log::<Windowed<u8, u64>>("counts").records();
        let sums = outputs.log::<Windowed<u8, i64>>("sums").records();
        let late_counts = outputs.log::<Reading>("late_counts").records();
        let late_sums = outputs.log::<Reading>("late_sums").records();
        let verdict = (|| {
            // Sliding, Flink's rule, exactly: a record joins those of its windows still open
            // when it arrives and is late only once its latest-ending window is. A record
            // not behind the watermark joins all its windows; one the run recorded accepting
            // behind it (partly late) skips exactly the windows that watermark had expired,
            // `start + size - 1 + L <= watermark`. That watermark must be one the input
            // allows when the record came, and must have expired some of its windows.
            let latest_end = |ts: i64| {
                let starts = window_starts(ts, SLIDING_SIZE_MS, SLIDING_SLIDE_MS, SLIDING_OFFSET_MS);
                starts.iter().max().expect("every record is in a window") + SLIDING_SIZE_MS
            };
            let counted = accepted(
                input,
                input,
                &late_counts,
                self.partitions(),
                OUT_OF_ORDERNESS_MS,
                |r| latest_end(r.ts) - 1 + SLIDING_LATENESS_MS,
            )?;
            let mut arrived_at: BTreeMap<usize, i64> = BTreeMap::new();
            for (index, watermark) in behind_arrivals(&counted, recorded.behind())? {
                let record = &counted[index];
                let earliest_late_at = window_starts(record.ts, SLIDING_SIZE_MS, SLIDING_SLIDE_MS, SLIDING_OFFSET_MS)
                    .into_iter()
                    .min()
                    .expect("every record is in a window")
                    + SLIDING_SIZE_MS
                    - 1
                    + SLIDING_LATENESS_MS;
                let highest = highest_watermark_at(input, self.partitions(), OUT_OF_ORDERNESS_MS, record);
                if watermark < earliest_late_at || highest.is_none_or(|highest| watermark > highest) {
                    return Err(eddy_sim::Violation::new(
                        "lateness",
                        format!(
                            "{record:?} was accepted behind watermark {watermark}, which expired none of its \
                             windows (the earliest at {earliest_late_at}) or which the input did not allow \
                             (at most {highest:?})"
                        ),
                    ));
                }
                arrived_at.insert(index, watermark);
            }
            let mut expected: BTreeMap<(u8, i64), u64> = BTreeMap::new();
            for (index, r) in counted.iter().enumerate() {
                for start in window_starts(r.ts, SLIDING_SIZE_MS, SLIDING_SLIDE_MS, SLIDING_OFFSET_MS) {
                    let late_at = start + SLIDING_SIZE_MS - 1 + SLIDING_LATENESS_MS;
                    if arrived_at.get(&index).is_some_and(|&watermark| late_at <= watermark) {
                        continue;
                    }
                    *expected.entry((r.value.sensor, start)).or_default() += 1;
                }
            }
            counts_grow(counts.iter().map(|r| ((r.value.key, r.value.window), r.value.value)))?;
            let mut actual = BTreeMap::new();
            for r in &counts {
                actual.insert((r.value.key, r.value.window.start), r.value.value);
            }
            compare_tables("exactly-once", &expected, &actual)?;
            // Tumbling with an offset, no allowed lateness.
            let start_of = |ts: i64| window_starts(ts, TUMBLING_SIZE_MS, TUMBLING_SIZE_MS, TUMBLING_OFFSET_MS)[0];
            let summed = accepted(input, input, &late_sums, self.partitions(), OUT_OF_ORDERNESS_MS, |r| {
                start_of(r.ts) + TUMBLING_SIZE_MS - 1
            })?;
            let mut expected: BTreeMap<(u8, i64), i64> = BTreeMap::new();
            for r in &summed {
                *expected.entry((r.value.sensor, start_of(r.ts))).or_default() += i64::from(r.value.value);
            }
            let mut actual = BTreeMap::new();
            for r in &sums {
                if actual
                    .insert((r.value.key, r.value.window.start), r.value.value)
                    .is_some()
                {
                    return Err(eddy_sim::Violation::new(
                        "exactly-once",
                        format!("{:?}: a window without allowed lateness committed twice", r.value),
                    ));
                }
            }
            compare_tables("exactly-once", &expected, &actual)
        })();
        let mut late = late_counts;
        late.extend(late_sums);
        outcome(&counts, &late, verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_starts_walk_the_grid_below_zero_too() {
        // size 10 s, slide 3 s, offset 1 s: windows start at ..., -5000, -2000, 1000, ...
        assert_eq!(window_starts(-1, 10_000, 3_000, 1_000), vec![-2_000, -5_000, -8_000]);
        assert_eq!(
            window_starts(1_000, 10_000, 3_000, 1_000),
            vec![1_000, -2_000, -5_000, -8_000]
        );
        assert_eq!(window_starts(-4_500, 7_000, 7_000, 2_500), vec![-4_500]);
        assert_eq!(window_starts(-4_501, 7_000, 7_000, 2_500), vec![-11_500]);
    }
}
