//! Clicks per user session: session windows with a 30 s gap and 5 s of allowed lateness,
//! late clicks on a side output. A late click within the lateness can merge two sessions
//! into one, whose count replaces theirs.
//!
//! `cargo run --example session_clicks` prints the sessions; `tests/examples.rs` checks the
//! pipeline against its own batch run under crashes (the differential oracle).

use eddy::sim::rand::Rng;
use eddy::sim::ChaCha8Rng;
use eddy::{Count, Log, Pipeline, Record, Stream, WatermarkStrategy, WindowAssigner, Windowed, WithLate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub user: u32,
    pub page: u32,
}

pub const GAP_MS: i64 = 30_000;
pub const ALLOWED_LATENESS_MS: i64 = 5_000;

/// The pipeline: clicks by user into sessions, counted.
pub fn sessions(clicks: Stream<Click>) -> WithLate<Windowed<u32, u64>, Click> {
    clicks
        .key_by(|c: &Click| c.user)
        .window(WindowAssigner::session(GAP_MS))
        .allowed_lateness(ALLOWED_LATENESS_MS)
        .aggregate(Count)
}

/// `events` clicks of 10 users: bursts of activity with pauses longer than the gap.
pub fn clicks(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Click>> {
    let mut ts = 0;
    (0..events)
        .map(|_| {
            ts += if rng.gen_bool(0.05) {
                rng.gen_range(20_000..90_000)
            } else {
                rng.gen_range(0..3_000)
            };
            Record::new(
                ts,
                Click {
                    user: rng.gen_range(0..10),
                    page: rng.gen_range(0..50),
                },
            )
        })
        .collect()
}

#[allow(dead_code)] // the test includes this file for its pipeline, not for `main`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use eddy::sim::rand::SeedableRng;
    let input = clicks(&mut ChaCha8Rng::seed_from_u64(7), 500);
    let pipeline = Pipeline::new().with_parallelism(2);
    let source = pipeline.source(
        "clicks",
        Log::round_robin(input, 2),
        WatermarkStrategy::bounded_out_of_orderness(2_000),
    );
    let counted = sessions(source);
    let results = counted.output.collect();
    eddy::run_to_end(&pipeline.build()?)?;
    for w in results.values() {
        println!(
            "user {:>2}: [{}, {}) {} clicks",
            w.key, w.window.start, w.window.end, w.value
        );
    }
    Ok(())
}
