//! What a user states of a pipeline beyond "the same as its batch run": properties over the
//! input and the committed outputs (`Differential::property`), nondeterminism reported as
//! `determinism`, and shrinking that never makes a value the user's generator could not.

mod support;

use eddy::sim::{Committed, Differential};
use eddy::{Count, Record, WatermarkStrategy, WindowAssigner, Windowed};
use support::{caught_and_shrunk, clicks, failure_of, Click};

/// Conservation: every click of a user other than the bot is counted once, or went to the
/// late output.
fn every_human_click_counted(input: &[Record<Click>], committed: &Committed) -> Result<(), String> {
    let humans = input.iter().filter(|r| r.value.user != 0).count() as u64;
    let counted: u64 = committed
        .rows::<Windowed<u32, u64>>("counts")
        .iter()
        .map(|w| w.value)
        .sum();
    let late = committed.rows::<Record<Click>>("late").len() as u64;
    if counted + late == humans {
        Ok(())
    } else {
        Err(format!(
            "{humans} clicks of users other than 0, {counted} counted and {late} late"
        ))
    }
}

/// Clicks per user and window, the bot left out by `keep`.
fn human_counts(name: &'static str, keep: fn(&Click) -> bool) -> Differential<Click> {
    Differential::new(name, clicks, move |_, clicks, outputs| {
        let counts = clicks
            .filter(move |c: &Click| keep(c))
            .key_by(|c: &Click| c.user)
            .window(WindowAssigner::tumbling(2_000))
            .allowed_lateness(500)
            .aggregate(Count);
        outputs.upsert("counts", counts.output, |w: &Windowed<u32, u64>| (w.key, w.window));
        outputs.append("late", counts.late);
    })
    .watermarks(WatermarkStrategy::bounded_out_of_orderness(100).with_interval(50))
    .events(60)
}

/// A logic bug the batch run shares: the bot filter written `user > 1` leaves user 1 out
/// too. The differential oracle cannot see it (the batch run filters the same); the
/// conservation property catches it, and the failure shrinks like any other, pages made
/// simpler by the user's own shrink function (page 0, a page the generator makes).
#[test]
fn a_logic_bug_the_batch_run_shares_is_caught_by_a_property() {
    assert_eq!(
        failure_of(human_counts("off-by-one-unjudged", |c| c.user > 1)).map(|(m, _)| m),
        None,
        "without a property, the batch run shares the mistake"
    );
    // The shrinker asks the user's function for every record left (counted, so that a case
    // whose pages were 0 anyway still shows the function was used).
    static ASKED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let simpler_page = |c: &Click| {
        ASKED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (c.page > 0)
            .then(|| Click { page: 0, ..c.clone() })
            .into_iter()
            .collect()
    };
    let wrong = human_counts("off-by-one", |c| c.user > 1)
        .property("every-human-click-counted", every_human_click_counted)
        .shrink_values(simpler_page);
    let right =
        human_counts("bots-left-out", |c| c.user != 0).property("every-human-click-counted", every_human_click_counted);
    let (message, dir) = failure_of(wrong).expect("the property catches the mistake");
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        message.contains("property `every-human-click-counted` does not hold"),
        "{message}"
    );
    let case = message
        .lines()
        .find(|l| l.starts_with("{\"scenario\""))
        .expect("the case is printed");
    let case: serde_json::Value = serde_json::from_str(case).unwrap();
    for record in case["input"].as_array().unwrap() {
        assert_eq!(
            record["value"]["page"], 0,
            "pages shrink by the user's function: {record}"
        );
    }
    assert!(
        ASKED.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "the user's shrink function was asked"
    );
    caught_and_shrunk(
        human_counts("off-by-one-shrunk", |c| c.user > 1)
            .property("every-human-click-counted", every_human_click_counted),
        right,
        "every-human-click-counted",
    );
}

/// Nanoseconds of the wall clock: what a pipeline must not read.
#[allow(clippy::disallowed_methods)]
fn wall_clock_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64)
}

/// A result that reads the wall clock differs between two runs of the same seed and two
/// batch runs of the same input: a `determinism` failure, showing both sides, not an
/// `exactly-once` failure blamed on the engine.
#[test]
fn a_wall_clock_in_a_result_is_a_determinism_failure() {
    let stamped = Differential::new("wall-clock", clicks, |_, clicks, outputs| {
        let seen = clicks.map(|c: Click| (c.user, wall_clock_nanos()));
        outputs.upsert("last-seen", seen, |s: &(u32, u64)| s.0);
    })
    .events(20);
    let (message, dir) = failure_of(stamped).expect("caught at the first seed");
    std::fs::remove_dir_all(&dir).ok();
    assert!(message.contains("verdict: FAIL determinism"), "{message}");
    assert!(
        message.contains("the first committed") && message.contains("the second"),
        "both sides are shown: {message}"
    );
}

/// Amounts in cents the way a strategy makes them: a refund of 1 to 9 dollars or a charge
/// of 1 to 9 dollars, never a few cents.
fn amounts() -> impl proptest::strategy::Strategy<Value = Vec<Record<(u32, i64)>>> {
    use proptest::prelude::*;
    let amount = prop_oneof![-900i64..=-100, 100i64..=900];
    proptest::collection::vec((0i64..20_000, 0u32..4, amount), 1..60).prop_map(|rows| {
        rows.into_iter()
            .map(|(ts, card, cents)| Record::new(ts, (card, cents)))
            .collect()
    })
}

/// A balance kept in a field of the function, not in keyed state: a restore loses it. The
/// case shrinks through the strategy: every amount of the shrunk case is one it can make.
#[test]
fn a_strategy_input_shrinks_to_values_the_strategy_makes() {
    #[derive(Clone, Default)]
    struct FieldBalance(std::collections::BTreeMap<u32, i64>);
    impl eddy::KeyedProcessFunction<u32, (u32, i64)> for FieldBalance {
        type State = ();
        type Out = (u32, i64);
        fn process_element(&mut self, r: Record<(u32, i64)>, ctx: &mut eddy::ProcessContext<'_, u32, (), (u32, i64)>) {
            let balance = self.0.entry(r.value.0).or_default();
            *balance += r.value.1;
            ctx.emit((r.value.0, *balance));
        }
    }
    let balances = Differential::from_strategy("field-balance", amounts(), |_, rows, outputs| {
        let balances = rows.key_by(|r: &(u32, i64)| r.0).process(FieldBalance::default());
        outputs.upsert("balances", balances, |b: &(u32, i64)| b.0);
    });
    let (message, dir) = failure_of(balances).expect("a restore loses the field");
    std::fs::remove_dir_all(&dir).ok();
    assert!(message.contains("verdict: FAIL exactly-once"), "{message}");
    let case = message
        .lines()
        .find(|l| l.starts_with("{\"scenario\""))
        .expect("the case is printed");
    let case: serde_json::Value = serde_json::from_str(case).unwrap();
    let input = case["input"].as_array().unwrap();
    let before: usize = message
        .lines()
        .find_map(|l| l.strip_prefix("events: "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .expect("the report says how many events the run read");
    assert!(
        input.len() < before,
        "shrunk from {before} to {} events:\n{message}",
        input.len()
    );
    for record in input {
        let cents = record["value"][1].as_i64().unwrap();
        assert!(
            (100..=900).contains(&cents.abs()),
            "{cents} cents: not a value the strategy makes\n{message}"
        );
        let card = record["value"][0].as_u64().unwrap();
        assert!(card < 4, "card {card}\n{message}");
    }
}
