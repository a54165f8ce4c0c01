//! Property: window aggregates equal an independent reference fold, under any delivery
//! interleaving and parallelism, and every input record is counted or late — once.
//!
//! The reference shares no code with the engine: it assigns windows with `div_euclid` and
//! brute-force enumeration, builds sessions by sorting, and folds with `BTreeMap`s.

use std::collections::BTreeMap;

use eddy::engine::{run_batch, Action, BatchConfig, Job};
use eddy::{AggregateFunction, LatenessRule, Log, Pipeline, Record, WatermarkStrategy, WindowAssigner, Windowed};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

use common::{reference, Event, Kind, Table};

/// A generated input: records per partition, and which records were generated beyond the
/// out-of-orderness bound (only those may be late).
#[derive(Clone, Debug)]
struct Input {
    bound: i64,
    partitions: Vec<Vec<Record<Event>>>,
    beyond_bound: Vec<Record<Event>>,
}

fn input_strategy() -> impl Strategy<Value = Input> {
    let record = (
        0..25i64,                                                          // clock advance
        prop_oneof![8 => (0..=1i64).prop_map(|_| false), 1 => Just(true)], // beyond the bound?
        any::<u16>(),                                                      // disorder draw
        prop_oneof![3 => 0..3u8, 1 => 0..40u8],                            // skewed keys
        -50..50i64,                                                        // value
        0..4usize,                                                         // partition
    );
    (
        0..30i64,
        1..=4usize,
        prop::collection::vec(record, 0..120),
        -500..500i64,
    )
        .prop_map(|(bound, partition_count, records, start)| {
            let mut clock = start;
            let mut partitions = vec![Vec::new(); partition_count];
            let mut beyond_bound = Vec::new();
            for (advance, beyond, draw, key, value, partition) in records {
                clock += advance;
                let back = if beyond {
                    bound + 1 + i64::from(draw) % (4 * bound + 40)
                } else {
                    i64::from(draw) % (bound + 1)
                };
                let record = Record::new(clock - back, (key, value));
                if beyond {
                    beyond_bound.push(record.clone());
                }
                partitions[partition % partition_count].push(record);
            }
            Input {
                bound,
                partitions,
                beyond_bound,
            }
        })
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (1..60i64, 0..60i64).prop_map(|(size, o)| Kind::Tumbling { size, offset: o % size }),
        (1..60i64, 1..60i64).prop_map(|(a, b)| Kind::Sliding {
            size: a.max(b),
            slide: a.min(b)
        }),
        (1..40i64).prop_map(|gap| Kind::Session { gap }),
    ]
}

#[derive(Clone)]
struct CountSum;

impl AggregateFunction<Event> for CountSum {
    type Acc = (u64, i64);
    type Out = (u64, i64);
    fn create_accumulator(&self) -> (u64, i64) {
        (0, 0)
    }
    fn add(&self, acc: &mut (u64, i64), event: &Event) {
        acc.0 += 1;
        acc.1 += event.1;
    }
    fn merge(&self, acc: &mut (u64, i64), other: (u64, i64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(u64, i64)) -> (u64, i64) {
        *acc
    }
}

/// Removes from `all` one occurrence of each of `some`; panics if one is missing.
fn multiset_minus(all: &[Record<Event>], some: &[Record<Event>]) -> Vec<Record<Event>> {
    let mut left: BTreeMap<&Record<Event>, usize> = BTreeMap::new();
    for r in all {
        *left.entry(r).or_default() += 1;
    }
    for r in some {
        let n = left
            .get_mut(r)
            .unwrap_or_else(|| panic!("late record {r:?} is not in the input (or twice late)"));
        assert!(*n > 0, "late record {r:?} reported more often than it is in the input");
        *n -= 1;
    }
    left.into_iter()
        .flat_map(|(r, n)| std::iter::repeat_n(r.clone(), n))
        .collect()
}

struct Run {
    table: Table,
    late: Vec<Record<Event>>,
    state_entries: usize,
}

fn run_engine(kind: Kind, lateness: i64, input: &Input, parallelism: usize, seed: u64) -> Run {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let interval = rng.gen_range(1..10);
    // Even seeds chain the map into the source's task, odd seeds run every operator alone:
    // the properties hold both ways (and the one below compares them).
    let pipeline = Pipeline::new().with_parallelism(parallelism);
    let pipeline = if seed.is_multiple_of(2) {
        pipeline
    } else {
        pipeline.disable_chaining()
    };
    let assigner = match kind {
        Kind::Tumbling { size, offset } => WindowAssigner::tumbling_with_offset(size, offset),
        Kind::Sliding { size, slide } => WindowAssigner::sliding(size, slide),
        Kind::Session { gap } => WindowAssigner::session(gap),
    };
    let windowed = pipeline
        .source(
            "events",
            Log::from_partitions(input.partitions.clone()),
            WatermarkStrategy::bounded_out_of_orderness(input.bound).with_interval(interval),
        )
        .map(|e: Event| e)
        .key_by(|e: &Event| e.0)
        .window(assigner)
        .allowed_lateness(lateness)
        // eddy's whole-record rule keeps the reference a fold over accepted records; Flink's
        // per-window rule is judged per window (the odd-windows scenario, flink_parity.rs).
        .lateness_rule(LatenessRule::WholeRecord)
        .aggregate(CountSum);
    let results = windowed.output.parallelism(parallelism).collect();
    let late = windowed.late.collect();
    let graph = pipeline.build().expect("valid pipeline");
    let mut job = Job::new(&graph);
    let config = BatchConfig {
        source_batch_size: rng.gen_range(1..8),
        ..BatchConfig::default()
    };
    let mut random_order = |actions: &[Action]| rng.gen_range(0..actions.len());
    let summary = run_batch(&mut job, &mut random_order, &config).expect("the job finishes");

    // The sink is an upsert table: the last value per (key, window) wins.
    let mut upserts: BTreeMap<(u8, i64, i64), (u64, i64)> = BTreeMap::new();
    for r in results.records() {
        let Windowed { key, window, value } = r.value;
        upserts.insert((key, window.start, window.end), value);
    }
    let table = common::without_superseded(&upserts);
    Run {
        table,
        late: late.records(),
        state_entries: summary.state_entries,
    }
}

proptest! {
    #![proptest_config(common::proptest_config("proptest-regressions/windows.txt", 96))]

    #[test]
    fn window_aggregates_equal_the_reference(
        input in input_strategy(),
        kind in kind_strategy(),
        lateness in prop_oneof![Just(0i64), 1..80i64],
        parallelism in 1..=4usize,
        seed in any::<u64>(),
    ) {
        let all: Vec<Record<Event>> = input.partitions.concat();
        let run = run_engine(kind, lateness, &input, parallelism, seed);

        // Conservation: every record is accepted or late, exactly once.
        let accepted = multiset_minus(&all, &run.late);
        prop_assert_eq!(accepted.len() + run.late.len(), all.len());
        // Lateness soundness: records within the bound are never late.
        multiset_minus(&input.beyond_bound, &run.late);
        // Exactly the reference over the records the engine accepted (sessions may split
        // where a record came after the watermark cleared the session it touches).
        match kind {
            Kind::Session { .. } => {
                let splits_allowed = !input.beyond_bound.is_empty();
                let matched = common::sessions_match(&run.table, &reference(kind, &accepted), splits_allowed);
                prop_assert!(matched.is_ok(), "{}", matched.unwrap_err());
            }
            _ => prop_assert_eq!(&run.table, &reference(kind, &accepted)),
        }
        if input.beyond_bound.is_empty() {
            prop_assert!(run.late.is_empty());
            prop_assert_eq!(&run.table, &reference(kind, &all));
        }
        // Bounded state: nothing left once the final watermark passed.
        prop_assert_eq!(run.state_entries, 0);
    }

    #[test]
    fn results_do_not_depend_on_interleaving_or_parallelism(
        input in input_strategy(),
        kind in kind_strategy(),
        seeds in (any::<u64>(), any::<u64>()),
        parallelism in (1..=4usize, 1..=4usize),
    ) {
        // With lateness covering any disorder nothing is late, so two schedules must agree.
        let lateness = 1_000;
        let a = run_engine(kind, lateness, &input, parallelism.0, seeds.0);
        let b = run_engine(kind, lateness, &input, parallelism.1, seeds.1);
        prop_assert!(a.late.is_empty() && b.late.is_empty());
        prop_assert_eq!(a.table, b.table);
    }
}

/// The generator produces the cases the properties are about; a measurement kept as a test.
#[test]
fn the_generator_covers_late_records_sessions_and_empty_inputs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut with_late, mut empty, mut multi_partition, mut session_merges) = (0, 0, 0, 0);
    for i in 0..200u64 {
        let input = input_strategy().new_tree(&mut runner).unwrap().current();
        let all = input.partitions.concat();
        empty += usize::from(all.is_empty());
        multi_partition += usize::from(input.partitions.len() > 1);
        let run = run_engine(Kind::Tumbling { size: 10, offset: 0 }, 0, &input, 2, i);
        with_late += usize::from(!run.late.is_empty());
        let sessions = reference(Kind::Session { gap: 20 }, &all);
        session_merges += usize::from(sessions.values().any(|(count, _)| *count > 1));
    }
    assert!(with_late >= 20, "late records in {with_late}/200 inputs");
    assert!(empty >= 1, "empty inputs in {empty}/200");
    assert!(
        multi_partition >= 100,
        "multi-partition inputs in {multi_partition}/200"
    );
    assert!(session_merges >= 100, "merged sessions in {session_merges}/200");
}
