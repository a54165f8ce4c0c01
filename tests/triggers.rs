//! Triggers under the simulator: a window with early firings every 10 s of event time and a
//! purging trigger (so its early and late firings are deltas) is exactly-once under crashes,
//! restores at other parallelisms and late input, judged by the differential oracle; the same
//! pipeline with the deltas read as upserts (a user's mistake) is caught.

use eddy::sim::{CheckConfig, Differential, Outputs, Profile, Regressions};
use eddy::{
    KeyedProcessFunction, Pipeline, ProcessContext, Record, Stream, Trigger, ValueState, Window, WindowAssigner,
    Windowed,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    value: i64,
}

/// Readings 0 to 3 s apart, by 4 sensors: a minute-long window sees several 10 s boundaries.
fn readings(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Reading>> {
    let mut ts = 0;
    (0..events)
        .map(|_| {
            ts += rng.gen_range(0..3_000);
            Record::new(
                ts,
                Reading {
                    sensor: rng.gen_range(0..4),
                    value: rng.gen_range(1..100),
                },
            )
        })
        .collect()
}

/// Adds up a window's deltas into its running total, per `(sensor, window)`.
#[derive(Clone)]
struct Totals;

impl KeyedProcessFunction<(u32, Window), Windowed<u32, i64>> for Totals {
    type State = ValueState<i64>;
    type Out = Windowed<u32, i64>;
    fn process_element(
        &mut self,
        delta: Record<Windowed<u32, i64>>,
        ctx: &mut ProcessContext<'_, (u32, Window), ValueState<i64>, Windowed<u32, i64>>,
    ) {
        let total = ctx.state().value().copied().unwrap_or(0) + delta.value.value;
        ctx.state().update(total);
        ctx.emit(Windowed {
            value: total,
            ..delta.value
        });
    }
}

/// Sums per sensor in 1-minute windows with 20 s of allowed lateness, firing every 10 s of
/// event time and at each late record, purging at each firing. `sum_deltas` adds the deltas
/// up downstream; without it, the last delta is taken as the window's value.
fn early_and_late_deltas(name: &'static str, sum_deltas: bool) -> Differential<Reading> {
    Differential::new(
        name,
        readings,
        move |_: &Pipeline, readings: Stream<Reading>, outputs: &mut Outputs| {
            let deltas = readings
                .key_by(|r: &Reading| r.sensor)
                .window(WindowAssigner::tumbling(60_000))
                .allowed_lateness(20_000)
                .trigger(Trigger::continuous_event_time(10_000).purging())
                .aggregate(eddy::Sum(|r: &Reading| r.value))
                .output;
            let values = if sum_deltas {
                deltas
                    .key_by(|w: &Windowed<u32, i64>| (w.key, w.window))
                    .process(Totals)
            } else {
                deltas
            };
            outputs.upsert("sums", values, |w: &Windowed<u32, i64>| (w.key, w.window));
        },
    )
    .events(120)
}

#[test]
fn early_firings_and_a_purging_late_trigger_are_exactly_once() {
    early_and_late_deltas("early-and-late-deltas", true)
        .config(CheckConfig {
            seeds: 200,
            profile: Profile::All,
            check_determinism: true,
            regressions: Regressions::Off,
            ..CheckConfig::default()
        })
        .check();
}

#[test]
fn purged_deltas_read_as_upserts_are_caught() {
    let wrong = early_and_late_deltas("deltas-as-upserts", false).config(CheckConfig {
        seeds: 50,
        regressions: Regressions::Off,
        shrink_time: std::time::Duration::from_secs(5),
        ..CheckConfig::default()
    });
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wrong.check()))
        .expect_err("an early firing's delta read as the window's value differs from the batch run's total");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("verdict: FAIL exactly-once"), "{message}");
}
