//! `triggers`: where a window fires at other moments than its end, so that a campaign takes
//! triggers and evictors through crashes, restores at other parallelisms and idle inputs.
//! Readings per sensor: a running count every 2 s of event time (a continuous event-time
//! trigger, 1 s of allowed lateness, late side output), counts fired every 4 readings and
//! purged (a purging count trigger), and counts of what count and time evictors keep. Sources
//! go idle after 500 ms without input.
//!
//! Judged by the differential oracle (the same pipeline's batch run): each output is chosen so
//! that its committed table depends on which records were accepted, not on their order (a
//! count, a count of 4s, the size of what an evictor keeps at the window's only firing). A
//! hand-written reference of these firing rules is not written yet (docs/testing.md).

use std::sync::LazyLock;

use eddy_engine::{Count, Evictor, Pipeline, Record, Stream, Trigger, WatermarkStrategy, WindowAssigner, Windowed};
use eddy_sim::{Differential, Outputs};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Reading {
    pub sensor: u8,
    pub value: u16,
}

/// A partition with nothing to read for this long (processing time) is idle.
pub const IDLE_TIMEOUT_MS: i64 = 500;

pub static TRIGGERS: LazyLock<Differential<Reading>> = LazyLock::new(|| {
    Differential::new("triggers", generate, build)
        .description(
            "readings per sensor: continuous event-time and purging count triggers, count and time evictors (a process window function, a reduce), idle partitions",
        )
        .watermarks(
            WatermarkStrategy::bounded_out_of_orderness(1_500)
                .with_interval(50)
                .with_idleness(IDLE_TIMEOUT_MS),
        )
        .partitions(4)
        .events(1_000)
});

/// Readings 0 to 300 ms apart from 6 sensors; whole seconds now and then (window edges).
fn generate(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Reading>> {
    let mut ts: i64 = rng.gen_range(-30_000..30_000);
    (0..events)
        .map(|_| {
            ts += rng.gen_range(0..300);
            let ts = if rng.gen_bool(0.05) {
                ts.div_euclid(1_000) * 1_000
            } else {
                ts
            };
            Record::new(
                ts,
                Reading {
                    sensor: rng.gen_range(0..6),
                    value: rng.gen_range(1..100),
                },
            )
        })
        .collect()
}

fn by_window(w: &Windowed<u8, u64>) -> (u8, eddy_engine::Window) {
    (w.key, w.window)
}

fn build(_pipeline: &Pipeline, readings: Stream<Reading>, outputs: &mut Outputs) {
    let sensor = |r: &Reading| r.sensor;
    let running = readings
        .clone()
        .key_by(sensor)
        .window(WindowAssigner::tumbling(10_000))
        .trigger(Trigger::continuous_event_time(2_000))
        .allowed_lateness(1_000)
        .aggregate(Count);
    outputs.upsert("running-counts", running.output, by_window);
    outputs.append("running-late", running.late);
    let fours = readings
        .clone()
        .key_by(sensor)
        .window(WindowAssigner::tumbling(5_000))
        .trigger(Trigger::count(4).purging())
        .aggregate(Count);
    outputs.append("purged-fours", fours.output);
    let last_three = readings
        .clone()
        .key_by(sensor)
        .window(WindowAssigner::sliding(6_000, 2_000))
        .evictor(Evictor::count(3))
        // Counted by a process window function, which sees the records the evictor kept.
        .process(
            |sensor: &u8, window, kept: &[Reading], out: &mut Vec<Windowed<u8, u64>>| {
                out.push(Windowed {
                    key: *sensor,
                    window,
                    value: kept.len() as u64,
                })
            },
        );
    outputs.upsert("kept-by-count", last_three.output, by_window);
    // The highest reading of the last second of each window, by a reduce (readings of one
    // sensor with equal values are equal: the result does not depend on arrival order).
    let last_second = readings
        .key_by(sensor)
        .window(WindowAssigner::tumbling(5_000))
        .evictor(Evictor::time(1_000))
        .reduce(|a: Reading, b: &Reading| if b.value > a.value { b.clone() } else { a });
    outputs.upsert("max-kept-by-time", last_second.output, |w: &Windowed<u8, Reading>| {
        (w.key, w.window)
    });
}
