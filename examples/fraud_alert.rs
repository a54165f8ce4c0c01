//! A fraud alert as a keyed process function with event-time timers: a card that makes a
//! small transaction (under $1) and, within one minute of event time, a large one (over
//! $500) raises an alert. Transactions arrive out of order, so the function decides in
//! event-time order once the watermark has passed them; late ones go to a side output.
//!
//! `cargo run --example fraud_alert` prints the alerts; `tests/examples.rs` checks the
//! pipeline against its own batch run under crashes (the differential oracle).

use eddy::sim::rand::Rng;
use eddy::sim::ChaCha8Rng;
use eddy::{
    KeyedProcessFunction, ListState, Log, Pipeline, ProcessContext, Record, Stream, TimeDomain, ValueState,
    WatermarkStrategy, WithLate,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub card: u32,
    pub cents: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub card: u32,
    pub small_at: i64,
    pub large_at: i64,
    pub cents: u64,
}

const MINUTE_MS: i64 = 60_000;

/// Per card: transactions the watermark has not passed yet, and the last small one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CardState {
    pending: ListState<Record<Transaction>>,
    last_small: ValueState<i64>,
}

#[derive(Clone)]
pub struct FraudDetector;

impl KeyedProcessFunction<u32, Transaction> for FraudDetector {
    type State = CardState;
    type Out = Alert;

    fn process_element(&mut self, tx: Record<Transaction>, ctx: &mut ProcessContext<'_, u32, CardState, Alert>) {
        // Decided when the watermark passes it: an earlier transaction may still come.
        ctx.register_timer(TimeDomain::EventTime, tx.ts);
        ctx.state().pending.add(tx);
    }

    fn on_timer(&mut self, now: i64, _domain: TimeDomain, ctx: &mut ProcessContext<'_, u32, CardState, Alert>) {
        let card = *ctx.key();
        let (mut due, later): (Vec<_>, Vec<_>) = ctx.state().pending.take().into_iter().partition(|t| t.ts <= now);
        for tx in later {
            ctx.state().pending.add(tx);
        }
        due.sort_by_key(|t| (t.ts, t.value.cents));
        for tx in due {
            if tx.value.cents < 100 {
                ctx.state().last_small.update(tx.ts);
            } else if tx.value.cents > 50_000 {
                if let Some(&small_at) = ctx.state().last_small.value() {
                    if tx.ts - small_at <= MINUTE_MS {
                        let alert = Alert {
                            card,
                            small_at,
                            large_at: tx.ts,
                            cents: tx.value.cents,
                        };
                        ctx.emit_at(tx.ts, alert);
                    }
                }
            }
        }
        // A small transaction matters for a minute: then the card's state goes.
        if let Some(&small_at) = ctx.state().last_small.value() {
            if small_at + MINUTE_MS < now {
                ctx.state().last_small.clear();
            } else {
                ctx.register_timer(TimeDomain::EventTime, small_at + MINUTE_MS + 1);
            }
        }
    }
}

/// The pipeline: transactions by card through the detector; late ones on `late`.
pub fn alerts(transactions: Stream<Transaction>) -> WithLate<Alert, Transaction> {
    transactions
        .key_by(|t: &Transaction| t.card)
        .process_on_time(FraudDetector)
}

/// `events` transactions of 20 cards, 0 to 2 s apart; one in ten small, one in ten large.
pub fn transactions(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Transaction>> {
    let mut ts = 0;
    (0..events)
        .map(|_| {
            ts += rng.gen_range(0..2_000);
            let cents = match rng.gen_range(0..10) {
                0 => rng.gen_range(1..100),
                1 => rng.gen_range(50_001..200_000),
                _ => rng.gen_range(100..50_000),
            };
            Record::new(
                ts,
                Transaction {
                    card: rng.gen_range(0..20),
                    cents,
                },
            )
        })
        .collect()
}

#[allow(dead_code)] // the test includes this file for its pipeline, not for `main`
fn main() -> Result<(), Box<dyn std::error::Error>> {
    use eddy::sim::rand::SeedableRng;
    let input = transactions(&mut ChaCha8Rng::seed_from_u64(7), 2_000);
    let pipeline = Pipeline::new().with_parallelism(2);
    let source = pipeline.source(
        "transactions",
        Log::round_robin(input, 2),
        WatermarkStrategy::bounded_out_of_orderness(5_000),
    );
    let found = alerts(source);
    let alerts = found.output.collect();
    let late = found.late.collect();
    eddy::run_to_end(&pipeline.build()?)?;
    for alert in alerts.values() {
        println!(
            "card {:>2}: ${:.2} at {} ms, {} ms after a small one",
            alert.card,
            alert.cents as f64 / 100.0,
            alert.large_at,
            alert.large_at - alert.small_at
        );
    }
    println!(
        "{} alerts, {} late transactions",
        alerts.values().len(),
        late.records().len()
    );
    Ok(())
}
