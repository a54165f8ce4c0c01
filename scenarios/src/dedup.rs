//! `dedup`: drop bot traffic, then keep the first event per event id (event time, with a TTL).

use eddy_engine::{JobGraph, Keep, Pipeline, Record, WatermarkStrategy, WithLate};
use eddy_sim::{Checked, ColumnType, EventSource, LiveTable, Outputs, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{accepted, compare_multisets, outcome, reference_dedup};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Click {
    pub event_id: u32,
    pub user: u32,
    pub bot: bool,
}

pub const TTL_MS: i64 = 30_000;
pub const OUT_OF_ORDERNESS_MS: i64 = 1_000;

pub struct Dedup;

/// One output line: a kept click as its input line (`{"ts":..,"value":..}`).
fn click_line(record: &Record<Click>) -> String {
    serde_json::to_string(record).expect("clicks serialise")
}

/// The deduplication of `log`: kept clicks and late clicks.
fn deduplicate(pipeline: &Pipeline, source: EventSource<Click>) -> WithLate<Click, Click> {
    source
        .stream(
            pipeline,
            "clicks",
            WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS).with_interval(50),
        )
        .parallelism(2)
        .filter(|c: &Click| !c.bot)
        .key_by(|c: &Click| c.event_id)
        .deduplicate(Keep::First, TTL_MS)
}

impl Workload for Dedup {
    type Event = Click;

    fn name(&self) -> &'static str {
        "dedup"
    }

    fn description(&self) -> &'static str {
        "filter out bot clicks, then keep the first click per event id (event time, 30 s TTL)"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Click>> {
        let mut ts = rng.gen_range(0..10_000);
        let mut sent: Vec<Record<Click>> = Vec::with_capacity(events);
        for id in 0..events as u32 {
            ts += rng.gen_range(0..300);
            // Clients retry: some events are sent again a little later, same id.
            let click = if sent.len() > 200 && rng.gen_bool(0.02) {
                // A client retrying after a long outage: beyond the TTL, a new event again.
                sent[rng.gen_range(0..sent.len() - 200)].value.clone()
            } else if !sent.is_empty() && rng.gen_bool(0.15) {
                let earlier = sent[sent.len() - rng.gen_range(1..=sent.len().min(20))].value.clone();
                Click { ..earlier }
            } else {
                Click {
                    event_id: id,
                    user: rng.gen_range(0..1_000),
                    bot: rng.gen_bool(0.1),
                }
            };
            sent.push(Record::new(ts, click));
        }
        sent
    }

    fn build(&self, source: EventSource<Click>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(3);
        let deduplicated = deduplicate(&pipeline, source);
        // A kept click's line is `{"ts":..,"value":{..}}`; an id may be kept again after its
        // TTL interval, so rows are appended.
        outputs
            .append_as("kept", deduplicated.output.parallelism(2), click_line)
            .in_table(LiveTable {
                columns: &[("ts", ColumnType::BigInt), ("value", ColumnType::Json)],
                primary_key: &[],
            });
        outputs.append("late", deduplicated.late);
        pipeline.build().expect("the dedup pipeline is valid")
    }

    fn check(&self, input: &[Record<Click>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let late = outputs.log::<Click>("late").records();
        let kept = outputs.log::<Click>("kept").records();
        let verdict = (|| {
            let humans: Vec<Record<Click>> = input.iter().filter(|r| !r.value.bot).cloned().collect();
            // A click is late when its ts is at or behind the watermark.
            let accepted = accepted(input, &humans, &late, self.partitions(), OUT_OF_ORDERNESS_MS, |r| r.ts)?;
            // Reference: per id, sorted by (ts, click); the first of each TTL interval.
            let expected = reference_dedup(&accepted, |c| c.event_id, Keep::First, TTL_MS);
            compare_multisets("exactly-once", expected, kept.clone())
        })();
        outcome(&kept, &late, verdict)
    }
}
