//! Exactly-once under crashes for every stateful operator's snapshot: session windows (with
//! late merges), deduplication, a keyed process function with keyed state and event-time
//! timers, and the temporal join (versioned tables and pending probes). Faults as in
//! `tests/recovery.rs`; each result is compared with its independent reference over the
//! records the engine accepted (what it did not accept is on a committed late output).

mod common;

use std::collections::BTreeMap;

use common::{dedup_reference, join_reference, minus, plan_strategy, run_with_faults, Event, Members};
use eddy::engine::{CommitLog, JobGraph};
use eddy::{
    Change, Keep, KeyedProcessFunction, Log, MapState, Pipeline, ProcessContext, Record, TimeDomain, WatermarkStrategy,
    WindowAssigner, Windowed,
};
use proptest::prelude::*;

const GAP: i64 = 15;
const SESSION_LATENESS: i64 = 5;
const TTL: i64 = 25;
const BUCKET: i64 = 10;

#[derive(Clone, Debug)]
struct Input {
    bound: i64,
    events: Vec<Vec<Record<Event>>>,
    changes: Vec<Vec<Record<Change<u8, i64>>>>,
}

fn input_strategy() -> impl Strategy<Value = Input> {
    let event = (
        0..10i64,
        prop_oneof![8 => Just(false), 1 => Just(true)],
        0..50i64,
        0..4u8,
        0..4i64,
        0..3usize,
    );
    let change = (0..20i64, 0..4u8, prop::option::of(0..100i64));
    (
        0..10i64,
        prop::collection::vec(event, 0..60),
        prop::collection::vec(change, 0..20),
    )
        .prop_map(|(bound, events, changes)| {
            let mut clock = 0;
            let mut partitions = vec![Vec::new(); 3];
            for (index, (advance, beyond, back, key, value, partition)) in events.into_iter().enumerate() {
                clock += advance;
                let back = if beyond { bound + 1 + back } else { back % (bound + 1) };
                // Each record's value is unique (ordered as the drawn value): a session's
                // members name their records ([`common::Members`]).
                let value = value * 1024 + index as i64;
                partitions[partition].push(Record::new(clock - back, (key, value)));
            }
            // Changes in order per key, one partition per key (as Kafka keys its partitions).
            let mut change_partitions = vec![Vec::new(); 3];
            let mut at = 0;
            for (advance, key, value) in changes {
                at += advance + 1;
                let change = match value {
                    Some(value) => Change::Upsert { key, value },
                    None => Change::Delete { key },
                };
                change_partitions[usize::from(key) % 3].push(Record::new(at, change));
            }
            Input {
                bound,
                events: partitions,
                changes: change_partitions,
            }
        })
}

/// Counts records per key and `BUCKET` of event time, emitted by an event-time timer at the
/// bucket's end. A record arriving after its bucket was emitted starts the bucket again, so
/// the emitted counts of a bucket always add up to its records: no late concept needed.
#[derive(Clone)]
struct BucketCounter;

impl KeyedProcessFunction<u8, Event> for BucketCounter {
    type State = MapState<i64, u64>;
    type Out = (u8, i64, u64);

    fn process_element(&mut self, record: Record<Event>, ctx: &mut ProcessContext<'_, u8, Self::State, Self::Out>) {
        let bucket = record.ts.div_euclid(BUCKET);
        let count = ctx.state().get(&bucket).copied().unwrap_or(0);
        ctx.state().put(bucket, count + 1);
        ctx.register_timer(TimeDomain::EventTime, bucket * BUCKET + BUCKET - 1);
    }

    fn on_timer(&mut self, ts: i64, _: TimeDomain, ctx: &mut ProcessContext<'_, u8, Self::State, Self::Out>) {
        let bucket = ts.div_euclid(BUCKET);
        if let Some(count) = ctx.state().remove(&bucket) {
            let key = *ctx.key();
            ctx.emit((key, bucket, count));
        }
    }
}

#[derive(Clone, Default)]
struct Sinks {
    sessions: CommitLog<Windowed<u8, Vec<i64>>>,
    sessions_late: CommitLog<Event>,
    dedup: CommitLog<Event>,
    dedup_late: CommitLog<Event>,
    buckets: CommitLog<(u8, i64, u64)>,
    joined: CommitLog<(Event, Option<i64>)>,
    probes_late: CommitLog<Event>,
    changes_late: CommitLog<Change<u8, i64>>,
}

fn build(input: &Input, parallelism: usize, sinks: &Sinks) -> JobGraph {
    let pipeline = Pipeline::new().with_parallelism(parallelism);
    let events = pipeline.source(
        "events",
        Log::from_partitions(input.events.clone()),
        WatermarkStrategy::bounded_out_of_orderness(input.bound).with_interval(2),
    );
    let changes = pipeline.source(
        "changes",
        Log::from_partitions(input.changes.clone()),
        WatermarkStrategy::bounded_out_of_orderness(0).with_interval(3),
    );
    let sessions = events
        .clone()
        .key_by(|e: &Event| e.0)
        .window(WindowAssigner::session(GAP))
        .allowed_lateness(SESSION_LATENESS)
        .aggregate(Members);
    sessions.output.sink_transactional(sinks.sessions.clone());
    sessions.late.sink_transactional(sinks.sessions_late.clone());
    let deduplicated = events.clone().key_by(|e: &Event| e.0).deduplicate(Keep::First, TTL);
    deduplicated.output.sink_transactional(sinks.dedup.clone());
    deduplicated.late.sink_transactional(sinks.dedup_late.clone());
    events
        .clone()
        .key_by(|e: &Event| e.0)
        .process(BucketCounter)
        .sink_transactional(sinks.buckets.clone());
    let joined = events.key_by(|e: &Event| e.0).temporal_join(changes);
    joined.output.sink_transactional(sinks.joined.clone());
    joined.late.sink_transactional(sinks.probes_late.clone());
    joined.late_changes.sink_transactional(sinks.changes_late.clone());
    pipeline.build().expect("valid pipeline")
}

fn values<T: Clone + PartialEq + std::fmt::Debug>(log: &CommitLog<T>) -> Vec<Record<T>> {
    log.records()
}

proptest! {
    #![proptest_config(common::proptest_config("proptest-regressions/recovery_operators.txt", 48))]

    #[test]
    fn stateful_operators_are_exactly_once_under_crashes(
        input in input_strategy(),
        plan in plan_strategy(),
        parallelism in 1..=3usize,
        seed in any::<u64>(),
    ) {
        let sinks = Sinks::default();
        run_with_faults(&build(&input, parallelism, &sinks), &plan, seed);
        let events: Vec<Record<Event>> = input.events.concat();

        // Sessions: each accepted record in exactly one session that was not superseded.
        let accepted = minus(&events, &values(&sinks.sessions_late));
        prop_assert!(accepted.is_some(), "a late session record is not in the input");
        let ts_of: BTreeMap<i64, i64> = events.iter().map(|r| (r.value.1, r.ts)).collect();
        let mut sessions = common::SessionMembers::new();
        for r in values(&sinks.sessions) {
            let mut members: Vec<(i64, i64)> = r.value.value.iter().map(|v| (ts_of[v], *v)).collect();
            members.sort();
            sessions.insert((r.value.key, r.value.window.start, r.value.window.end), members);
        }
        let held = common::sessions_hold_each_record_once(&sessions, &accepted.unwrap(), GAP);
        prop_assert!(held.is_ok(), "{}", held.unwrap_err());

        // Dedup: keep-first over accepted records.
        let accepted = minus(&events, &values(&sinks.dedup_late));
        prop_assert!(accepted.is_some(), "a late dedup record is not in the input");
        let (expected, _) = dedup_reference(Keep::First, TTL, &accepted.unwrap());
        let mut got = values(&sinks.dedup);
        got.sort();
        prop_assert_eq!(got, expected);

        // Process function: emitted counts per (key, bucket) add up to the input.
        let mut counted: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for r in values(&sinks.buckets) {
            *counted.entry((r.value.0, r.value.1)).or_default() += r.value.2;
        }
        let mut expected: BTreeMap<(u8, i64), u64> = BTreeMap::new();
        for r in &events {
            *expected.entry((r.value.0, r.ts.div_euclid(BUCKET))).or_default() += 1;
        }
        prop_assert_eq!(counted, expected);

        // Temporal join over accepted probes and changes.
        let probes: Vec<Record<u8>> = events.iter().map(|r| Record::new(r.ts, r.value.0)).collect();
        let late_probes: Vec<Record<u8>> = values(&sinks.probes_late).iter().map(|r| Record::new(r.ts, r.value.0)).collect();
        let accepted_probes = minus(&probes, &late_probes);
        let accepted_changes = minus(&input.changes.concat(), &values(&sinks.changes_late));
        prop_assert!(accepted_probes.is_some() && accepted_changes.is_some());
        let expected = join_reference(&accepted_probes.unwrap(), &accepted_changes.unwrap());
        let mut got: Vec<(i64, u8, Option<i64>)> = values(&sinks.joined).into_iter().map(|r| (r.ts, r.value.0 .0, r.value.1)).collect();
        got.sort();
        prop_assert_eq!(got, expected);
    }
}
