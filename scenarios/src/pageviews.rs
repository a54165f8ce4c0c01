//! `pageviews`: page views per page per one-minute tumbling window, with allowed lateness
//! and a late side output.

use std::collections::BTreeMap;

use eddy_engine::{CommitLog, Count, JobGraph, Log, Pipeline, Record, WatermarkStrategy, WindowAssigner, Windowed};
use eddy_sim::{Checked, ColumnType, EventSource, LineCommitter, LiveTable, OutputTable, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{accepted_with_idleness, compare_tables, counts_grow, late_at_recorded_watermark, outcome, values};
use crate::live::FinalRows;

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

pub struct Sinks {
    pub counts: CommitLog<Windowed<u16, u64>>,
    pub late: CommitLog<PageView>,
}

impl Workload for PageViews {
    type Event = PageView;
    type Sinks = Sinks;

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

    fn build(&self, log: Log<PageView>) -> (JobGraph, Sinks) {
        let sinks = Sinks {
            counts: CommitLog::new(),
            late: CommitLog::new(),
        };
        let pipeline = Pipeline::new().with_parallelism(2);
        let counted = counts(&pipeline, EventSource::Log(log));
        // Results are upserts: partition them by key into the sink, so that a late firing's
        // update follows the first result of its window (a rebalance would reorder them).
        let sink = counted.output.key_by(|w: &Windowed<u16, u64>| (w.key, w.window));
        sink.sink_transactional(sinks.counts.clone());
        counted.late.sink_transactional(sinks.late.clone());
        (pipeline.build().expect("the pageviews pipeline is valid"), sinks)
    }

    fn outputs(&self, _input: &[Record<Self::Event>], sinks: &Sinks) -> Vec<OutputTable> {
        vec![OutputTable::upsert("counts", values(&sinks.counts), |w| {
            (w.key, w.window)
        })]
    }

    fn output_lines(&self, sinks: &Sinks) -> Vec<String> {
        let mut counts: BTreeMap<(i64, u16), (i64, u64)> = BTreeMap::new();
        for r in sinks.counts.records() {
            counts.insert((r.value.window.start, r.value.key), (r.value.window.end, r.value.value));
        }
        counts
            .into_iter()
            .map(|((start, page), (end, views))| count_line(start, end, page, views))
            .collect()
    }

    fn build_live(&self, source: EventSource<PageView>, output: LineCommitter) -> Option<JobGraph> {
        let pipeline = Pipeline::new().with_parallelism(2);
        // Late views (past the allowed lateness) change no count: counted in the task
        // metrics, not written (the batch output has no lines for them either).
        let counted = counts(&pipeline, source);
        counted
            .output
            .key_by(|w: &Windowed<u16, u64>| (w.key, w.window))
            .process(FinalRows::new(
                // A count can change until a view of its window turns late.
                |w: &Windowed<u16, u64>| w.window.max_timestamp() + ALLOWED_LATENESS_MS,
                |w: &Windowed<u16, u64>| count_line(w.window.start, w.window.end, w.key, w.value),
            ))
            .name("final-counts")
            .sink_transactional(output);
        Some(pipeline.build().expect("the live pageviews pipeline is valid"))
    }

    fn live_table(&self) -> Option<LiveTable> {
        Some(LiveTable {
            columns: &[
                ("window_start", ColumnType::BigInt),
                ("window_end", ColumnType::BigInt),
                ("page", ColumnType::BigInt),
                ("views", ColumnType::BigInt),
            ],
            // A late firing updates a count: the row of its page and window.
            primary_key: &["window_start", "page"],
        })
    }

    fn check(&self, input: &[Record<PageView>], recorded: &Recorded, sinks: &Sinks) -> Checked {
        let late = sinks.late.records();
        let committed = sinks.counts.records();
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
