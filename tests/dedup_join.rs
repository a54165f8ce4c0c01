//! Properties: deduplication and the temporal join equal independent references over the
//! records the engine accepted, under random interleavings and parallelism; every input is in
//! the output or on a late output, once; nothing but live table rows is left at the end.

mod common;

use common::{dedup_reference, join_reference};

use std::collections::BTreeMap;

use eddy::engine::{run_batch, Action, BatchConfig, Job};
use eddy::{Change, Keep, Log, Pipeline, Record, WatermarkStrategy};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

type Event = (u8, u8); // (id, payload)

/// Records with disorder inside and beyond `bound`, spread over partitions by `place`.
fn records<T: std::fmt::Debug + Clone>(
    values: impl Strategy<Value = T>,
    max_len: usize,
) -> impl Strategy<Value = (i64, Vec<(Record<T>, usize)>)> {
    let one = (
        0..15i64,
        prop_oneof![6 => Just(false), 1 => Just(true)],
        any::<u16>(),
        values,
        0..3usize,
    );
    (0..20i64, prop::collection::vec(one, 0..max_len)).prop_map(|(bound, items)| {
        let mut clock = 0;
        let records = items
            .into_iter()
            .map(|(advance, beyond, draw, value, partition)| {
                clock += advance;
                let back = if beyond {
                    bound + 1 + i64::from(draw) % 60
                } else {
                    i64::from(draw) % (bound + 1)
                };
                (Record::new(clock - back, value), partition)
            })
            .collect();
        (bound, records)
    })
}

fn partitioned<T: Clone>(records: &[(Record<T>, usize)]) -> Log<T> {
    let mut partitions = vec![Vec::new(); 3];
    for (record, partition) in records {
        partitions[*partition].push(record.clone());
    }
    Log::from_partitions(partitions)
}

fn random_run(job: &mut Job, seed: u64) -> eddy::engine::RunSummary {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let config = BatchConfig {
        source_batch_size: rng.gen_range(1..6),
        ..BatchConfig::default()
    };
    let mut order = |actions: &[Action]| rng.gen_range(0..actions.len());
    run_batch(job, &mut order, &config).expect("the job finishes")
}

fn minus<T: Ord + Clone + std::fmt::Debug>(all: &[Record<T>], some: &[Record<T>]) -> Vec<Record<T>> {
    let mut left = all.to_vec();
    for r in some {
        let at = left
            .iter()
            .position(|x| x == r)
            .unwrap_or_else(|| panic!("{r:?} is late but not in the input"));
        left.swap_remove(at);
    }
    left
}

proptest! {
    #![proptest_config(common::proptest_config("proptest-regressions/dedup_join.txt", 96))]

    #[test]
    fn dedup_equals_the_reference(
        (bound, input) in records((0..6u8, 0..4u8), 100),
        keep in prop_oneof![Just(Keep::First), Just(Keep::Last)],
        ttl in 1..40i64,
        parallelism in 1..=4usize,
        seed in any::<u64>(),
    ) {
        let pipeline = Pipeline::new().with_parallelism(parallelism);
        let deduplicated = pipeline
            .source("events", partitioned(&input), WatermarkStrategy::bounded_out_of_orderness(bound).with_interval(3))
            .key_by(|e: &Event| e.0)
            .deduplicate(keep, ttl);
        let out = deduplicated.output.collect();
        let late = deduplicated.late.collect();
        let mut job = Job::new(&pipeline.build().unwrap());
        let summary = random_run(&mut job, seed);

        let all: Vec<Record<Event>> = input.iter().map(|(r, _)| r.clone()).collect();
        let accepted = minus(&all, &late.records());
        let (expected, duplicates) = dedup_reference(keep, ttl, &accepted);
        let mut got = out.records();
        got.sort();
        prop_assert_eq!(got, expected);
        // Conservation: each accepted record was emitted or dropped as a duplicate.
        prop_assert_eq!(summary.metrics.duplicates, duplicates);
        prop_assert_eq!(summary.state_entries, 0);
    }

    #[test]
    fn temporal_join_equals_the_reference(
        (bound, probes) in records(0..5u8, 80),
        (change_bound, changes) in records((0..5u8, prop::option::of(0..100u16)), 60),
        parallelism in 1..=4usize,
        seed in any::<u64>(),
    ) {
        // One change per (key, ts), and a key's changes in one partition (as Kafka orders a
        // key's changes by keying its partitions): then arrival order cannot matter.
        let mut seen = std::collections::BTreeSet::new();
        let changes: Vec<(Record<Change<u8, u16>>, usize)> = changes
            .into_iter()
            .filter(|(r, _)| seen.insert((r.value.0, r.ts)))
            .map(|(r, _)| {
                let (key, value) = r.value;
                let change = match value {
                    Some(value) => Change::Upsert { key, value },
                    None => Change::Delete { key },
                };
                (Record::new(r.ts, change), usize::from(key) % 3)
            })
            .collect();
        let pipeline = Pipeline::new().with_parallelism(parallelism);
        let probe_stream = pipeline.source("probes", partitioned(&probes), WatermarkStrategy::bounded_out_of_orderness(bound).with_interval(2));
        let table = pipeline.source("changes", partitioned(&changes), WatermarkStrategy::bounded_out_of_orderness(change_bound).with_interval(5));
        let joined = probe_stream.key_by(|k: &u8| *k).temporal_join(table);
        let out = joined.output.collect();
        let late = joined.late.collect();
        let late_changes = joined.late_changes.collect();
        let mut job = Job::new(&pipeline.build().unwrap());
        let summary = random_run(&mut job, seed);

        let all_probes: Vec<Record<u8>> = probes.iter().map(|(r, _)| r.clone()).collect();
        let all_changes: Vec<Record<Change<u8, u16>>> = changes.iter().map(|(r, _)| r.clone()).collect();
        let accepted_probes = minus(&all_probes, &late.records());
        let accepted_changes = minus(&all_changes, &late_changes.records());
        let mut expected = join_reference(&accepted_probes, &accepted_changes);
        expected.sort();
        let mut got: Vec<(i64, u8, Option<u16>)> = out.records().into_iter().map(|r| (r.ts, r.value.0, r.value.1)).collect();
        got.sort();
        prop_assert_eq!(got, expected);
        // Only the current row of keys whose last change is an upsert may remain.
        let live_rows = {
            let mut last: BTreeMap<u8, (i64, bool)> = BTreeMap::new();
            for c in &accepted_changes {
                let entry = last.entry(*c.value.key()).or_insert((i64::MIN, false));
                if c.ts > entry.0 {
                    *entry = (c.ts, matches!(c.value, Change::Upsert { .. }));
                }
            }
            last.values().filter(|(_, live)| *live).count()
        };
        prop_assert_eq!(summary.state_entries, live_rows);
    }
}
