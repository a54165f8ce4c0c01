//! `pageviews`: page views per page per one-minute tumbling window, with allowed lateness
//! and a late side output.

use std::collections::BTreeMap;

use eddy_engine::{Count, JobGraph, Pipeline, Record, WatermarkStrategy, WindowAssigner, Windowed};
use eddy_sim::{Checked, ColumnType, EventSource, LiveTable, Outputs, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{accepted_with_idleness, compare_tables, counts_grow, late_at_recorded_watermark, outcome};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PageView {
    pub page: u16,
    pub user: u32,
}

pub const WINDOW_MS: i64 = 60_000;
pub const ALLOWED_LATENESS_MS: i64 = 5_000;
pub const OUT_OF_ORDERNESS_MS: i64 = 2_000;
/// A partition with nothing to read for this long (processing time) is idle.
pub const IDLE_TIMEOUT_MS: i64 = 500;

pub struct PageViews;

/// One line of the output table: a page's final view count in one window.
fn count_line(start: i64, end: i64, page: u16, views: u64) -> String {
    format!(r#"{{"window_start":{start},"window_end":{end},"page":{page},"views":{views}}}"#)
}

/// The counting pipeline over `log`: its results (upserts per page and window) and late views.
fn counts(pipeline: &Pipeline, source: EventSource<PageView>) -> eddy_engine::WithLate<Windowed<u16, u64>, PageView> {
    source
        .stream(
            pipeline,
            "views",
            WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS)
                .with_interval(50)
                .with_idleness(IDLE_TIMEOUT_MS),
        )
        .key_by(|v: &PageView| v.page)
        .window(WindowAssigner::tumbling(WINDOW_MS))
        .allowed_lateness(ALLOWED_LATENESS_MS)
        .aggregate(Count)
}

impl Workload for PageViews {
    type Event = PageView;

    fn name(&self) -> &'static str {
        "pageviews"
    }

    fn description(&self) -> &'static str {
        "page views per page per 1-minute tumbling window, 5 s allowed lateness, late side output, idle partitions after 500 ms"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<PageView>> {
        let mut ts: i64 = rng.gen_range(-100_000..100_000);
        (0..events)
            .map(|_| {
                ts += rng.gen_range(0..400);
                // Some clients send second-precision timestamps: they land on window edges.
                let ts = if rng.gen_bool(0.05) {
                    ts.div_euclid(1_000) * 1_000
                } else {
                    ts
                };
                // A few hot pages and a long tail.
                let page = if rng.gen_bool(0.7) {
                    rng.gen_range(0..8)
                } else {
                    rng.gen_range(0..500)
                };
                Record::new(
                    ts,
                    PageView {
                        page,
                        user: rng.gen_range(0..10_000),
                    },
                )
            })
            .collect()
    }

    fn build(&self, source: EventSource<PageView>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let counted = counts(&pipeline, source);
        outputs
            .upsert_final(
                "counts",
                counted.output,
                |w: &Windowed<u16, u64>| (w.key, w.window),
                |w: &Windowed<u16, u64>| count_line(w.window.start, w.window.end, w.key, w.value),
                // A count can change until a view of its window turns late.
                |w: &Windowed<u16, u64>| w.window.max_timestamp() + ALLOWED_LATENESS_MS,
            )
            .in_table(LiveTable {
                columns: &[
                    ("window_start", ColumnType::BigInt),
                    ("window_end", ColumnType::BigInt),
                    ("page", ColumnType::BigInt),
                    ("views", ColumnType::BigInt),
                ],
                // A late firing updates a count: the row of its page and window.
                primary_key: &["window_start", "page"],
            });
        outputs.append("late", counted.late);
        pipeline.build().expect("the pageviews pipeline is valid")
    }

    fn check(&self, input: &[Record<PageView>], recorded: &Recorded, outputs: &Outputs) -> Checked {
        let late = outputs.log::<PageView>("late").records();
        let committed = outputs.log::<Windowed<u16, u64>>("counts").records();
        let verdict = (|| {
            // Idle partitions let the watermark run ahead of a partition that stalled, so
            // which records were late depends on the schedule: each is judged at the
            // watermark the run recorded for it (late once its window's end - 1 + L is
            // reached), and no watermark may pass what the whole input allows.
            let late_at = |ts: i64| ts.div_euclid(WINDOW_MS) * WINDOW_MS + WINDOW_MS - 1 + ALLOWED_LATENESS_MS;
            late_at_recorded_watermark(recorded.late().map(|(ts, _, watermark)| (ts, watermark)), late_at)?;
            let highest = input.iter().map(|r| r.ts).max().map(|ts| ts - OUT_OF_ORDERNESS_MS - 1);
            if let Some((ts, _, watermark)) = recorded.late().find(|&(_, _, w)| highest.is_none_or(|h| w > h)) {
                return Err(eddy_sim::Violation::new(
                    "lateness",
                    format!(
                        "a view at {ts} went late at watermark {watermark}, above any the input allows ({highest:?})"
                    ),
                ));
            }
            let accepted = accepted_with_idleness(input, &late)?;
            // Reference: count per (page, window start) over accepted records.
            let mut expected: BTreeMap<(u16, i64), u64> = BTreeMap::new();
            for r in &accepted {
                let start = r.ts.div_euclid(WINDOW_MS) * WINDOW_MS;
                *expected.entry((r.value.page, start)).or_default() += 1;
            }
            counts_grow(committed.iter().map(|r| ((r.value.key, r.value.window), r.value.value)))?;
            // The committed output is an upsert table: the last value per (page, window) wins.
            let mut actual: BTreeMap<(u16, i64), u64> = BTreeMap::new();
            for r in &committed {
                actual.insert((r.value.key, r.value.window.start), r.value.value);
            }
            compare_tables("exactly-once", &expected, &actual)
        })();
        outcome(&committed, &late, verdict)
    }
}
