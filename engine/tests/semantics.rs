//! The semantics table of docs/semantics.md, rule by rule, as timelines.
//!
//! Each case scripts records and watermarks exactly and asserts what the sink saw, in order:
//! `W8` is a watermark reaching the sink, `1@[0,10)=2` a result for key 1, `late 3` a record
//! with ts 3 on the late side output.

use eddy_engine::{
    run_batch, run_to_end, Action, BuildError, Change, Collected, Count, Evictor, Job, Keep, KeyedProcessFunction,
    LatenessRule, ListState, MapState, Pipeline, ProcessContext, Record, Scripted, TimeDomain, Trigger, ValueState,
    WindowAssigner, Windowed, END_OF_TIME,
};

fn r(ts: i64, key: u32) -> Scripted<u32> {
    Scripted::Record(ts, key)
}

fn w<T>(ts: i64) -> Scripted<T> {
    Scripted::Watermark(ts)
}

fn show<T>(timeline: Vec<Collected<T>>, fmt: impl Fn(&Record<T>) -> String) -> Vec<String> {
    timeline
        .iter()
        .map(|event| match event {
            Collected::Watermark(END_OF_TIME) => "Wmax".to_string(),
            Collected::Watermark(t) => format!("W{t}"),
            Collected::Record(record) => fmt(record),
        })
        .collect()
}

/// Counts per key and window; returns the sink's timeline and the late records' timestamps.
fn window_counts(
    assigner: WindowAssigner,
    allowed_lateness: i64,
    script: Vec<Scripted<u32>>,
) -> (Vec<String>, Vec<i64>) {
    window_counts_by(assigner, allowed_lateness, LatenessRule::PerWindow, script)
}

fn window_counts_by(
    assigner: WindowAssigner,
    allowed_lateness: i64,
    rule: LatenessRule,
    script: Vec<Scripted<u32>>,
) -> (Vec<String>, Vec<i64>) {
    let pipeline = Pipeline::new();
    let counted = pipeline
        .scripted_source("input", script)
        .key_by(|key: &u32| *key)
        .window(assigner)
        .allowed_lateness(allowed_lateness)
        .lateness_rule(rule)
        .aggregate(Count);
    let results = counted.output.collect();
    let late = counted.late.collect();
    let graph = pipeline.build().expect("valid pipeline");
    let summary = run_to_end(&graph).expect("runs to the end");
    assert_eq!(summary.state_entries, 0, "window state is cleared at the end");
    let timeline = show(results.timeline(), |r: &Record<Windowed<u32, u64>>| {
        format!(
            "{}@[{},{})={}",
            r.value.key, r.value.window.start, r.value.window.end, r.value.value
        )
    });
    (timeline, late.records().iter().map(|r| r.ts).collect())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn window_fires_when_the_watermark_reaches_max_timestamp() {
    let (timeline, late) = window_counts(
        WindowAssigner::tumbling(10),
        0,
        vec![r(0, 1), r(9, 1), r(10, 1), w(8), w(9), w(18), w(19)],
    );
    assert_eq!(
        timeline,
        strings(&["W8", "1@[0,10)=2", "W9", "W18", "1@[10,20)=1", "W19", "Wmax"])
    );
    assert!(late.is_empty());
}

#[test]
fn window_boundaries_for_negative_timestamps_and_offsets() {
    let (timeline, _) = window_counts(
        WindowAssigner::tumbling(10),
        0,
        vec![r(-1, 1), r(-10, 1), r(-11, 1), w(-11), w(-1)],
    );
    assert_eq!(
        timeline,
        strings(&["1@[-20,-10)=1", "W-11", "1@[-10,0)=2", "W-1", "Wmax"])
    );

    let (timeline, _) = window_counts(
        WindowAssigner::tumbling_with_offset(10, 3),
        0,
        vec![r(2, 1), r(3, 1), w(2)],
    );
    assert_eq!(timeline, strings(&["1@[-7,3)=1", "W2", "1@[3,13)=1", "Wmax"]));
}

#[test]
fn a_record_exactly_at_the_lateness_boundary_is_late() {
    // L = 0: once W9 fired [0,10) it is cleared; ts 9 is late, ts 10 is not.
    let (timeline, late) = window_counts(WindowAssigner::tumbling(10), 0, vec![r(1, 1), w(9), r(9, 1), r(10, 1)]);
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W9", "1@[10,20)=1", "Wmax"]));
    assert_eq!(late, vec![9]);
}

#[test]
fn late_firing_within_allowed_lateness_then_cleanup() {
    // L = 5: [0,10) fires at W9, fires again for each record until W14 clears it.
    let (timeline, late) = window_counts(
        WindowAssigner::tumbling(10),
        5,
        vec![r(1, 1), w(9), r(3, 1), w(13), r(5, 1), w(14), r(6, 1)],
    );
    assert_eq!(
        timeline,
        strings(&["1@[0,10)=1", "W9", "1@[0,10)=2", "W13", "1@[0,10)=3", "W14", "Wmax"])
    );
    assert_eq!(late, vec![6]);
}

#[test]
fn sliding_windows_and_partly_late_records() {
    // ts 7 is in [0,10) and [5,15). After W9, ts 8 can no longer join [0,10) but still
    // joins [5,15) (Flink's rule); nothing goes to the late output.
    let script = || vec![r(7, 1), w(9), r(8, 1), w(14)];
    let (timeline, late) = window_counts(WindowAssigner::sliding(10, 5), 0, script());
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W9", "1@[5,15)=2", "W14", "Wmax"]));
    assert!(late.is_empty());

    // Only when every window of the record is late does it go to the late output.
    let (timeline, late) = window_counts(WindowAssigner::sliding(10, 5), 0, vec![r(7, 1), w(14), r(8, 1)]);
    assert_eq!(timeline, strings(&["1@[0,10)=1", "1@[5,15)=1", "W14", "Wmax"]));
    assert_eq!(late, vec![8]);

    // eddy's stricter option: the record is late, whole, once its earliest window is.
    let (timeline, late) = window_counts_by(WindowAssigner::sliding(10, 5), 0, LatenessRule::WholeRecord, script());
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W9", "1@[5,15)=1", "W14", "Wmax"]));
    assert_eq!(late, vec![8]);
}

#[test]
fn sessions_merge_across_out_of_order_records() {
    // [0,10) and [15,25) are bridged by [7,17), which arrives last.
    let (timeline, _) = window_counts(WindowAssigner::session(10), 0, vec![r(0, 1), r(15, 1), r(7, 1), w(24)]);
    assert_eq!(timeline, strings(&["1@[0,25)=3", "W24", "Wmax"]));

    // Touching windows merge, as in Flink: records exactly `gap` apart are one session.
    let (timeline, _) = window_counts(WindowAssigner::session(10), 0, vec![r(0, 1), r(10, 1), r(0, 2)]);
    assert_eq!(timeline, strings(&["2@[0,10)=1", "1@[0,20)=2", "Wmax"]));
}

#[test]
fn session_lateness_and_late_merge() {
    // L = 0: [0,10) fired and was cleared at W9. ts 9 opens [9,19), not past the watermark:
    // accepted (Flink merges first, then drops only an expired session); ts 10 joins it.
    let (timeline, late) = window_counts(WindowAssigner::session(10), 0, vec![r(0, 1), w(9), r(9, 1), r(10, 1)]);
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W9", "1@[9,20)=2", "Wmax"]));
    assert!(late.is_empty());

    // A record whose session (merged or its own) has expired is late.
    let (timeline, late) = window_counts(WindowAssigner::session(10), 0, vec![r(0, 1), w(20), r(5, 1)]);
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W20", "Wmax"]));
    assert_eq!(late, vec![5]);

    // L = 10: a record extends the fired session; the merged session fires at its own end
    // and supersedes [0,10) (see docs/semantics.md on session upserts).
    let (timeline, late) = window_counts(WindowAssigner::session(10), 10, vec![r(0, 1), w(9), r(5, 1), w(14)]);
    assert_eq!(timeline, strings(&["1@[0,10)=1", "W9", "1@[0,15)=2", "W14", "Wmax"]));
    assert!(late.is_empty());
}

#[test]
fn operator_watermark_is_the_minimum_over_its_channels() {
    let pipeline = Pipeline::new();
    let fast = pipeline.scripted_source("fast", vec![r(0, 1), w(100)]);
    let slow = pipeline.scripted_source("slow", vec![w(5), r(7, 1), w(50)]);
    let counted = fast
        .union(slow)
        .key_by(|k: &u32| *k)
        .window(WindowAssigner::tumbling(10))
        .aggregate(Count);
    let results = counted.output.collect();
    let late = counted.late.collect();
    let graph = pipeline.build().unwrap();
    // InOrder reads `fast` to its end first: its W100 must not fire [0,10) while `slow` is at 5.
    run_to_end(&graph).unwrap();
    let timeline = show(results.timeline(), |r| {
        format!(
            "{}@[{},{})={}",
            r.value.key, r.value.window.start, r.value.window.end, r.value.value
        )
    });
    assert_eq!(timeline, strings(&["W5", "1@[0,10)=2", "W50", "Wmax"]));
    assert!(late.records().is_empty());
}

/// Emits `(key, timer ts)` for each timer; registers timers given by the record's key.
#[derive(Clone)]
struct TimerProbe;

impl KeyedProcessFunction<u32, u32> for TimerProbe {
    type State = ValueState<u64>;
    type Out = String;

    fn process_element(&mut self, record: Record<u32>, ctx: &mut ProcessContext<'_, u32, ValueState<u64>, String>) {
        // Each record registers an event-time timer 30 - 10 * (key % 3) after ts 0.
        let at = 30 - 10 * i64::from(record.value % 3);
        ctx.register_timer(TimeDomain::EventTime, at);
        ctx.state().update(1);
    }

    fn on_timer(
        &mut self,
        timestamp: i64,
        domain: TimeDomain,
        ctx: &mut ProcessContext<'_, u32, ValueState<u64>, String>,
    ) {
        assert_eq!(domain, TimeDomain::EventTime);
        let key = *ctx.key();
        ctx.state().clear();
        ctx.emit(format!("t{timestamp}k{key}"));
    }
}

#[test]
fn event_time_timers_fire_in_timestamp_then_key_order() {
    let pipeline = Pipeline::new().with_parallelism(1);
    // keys 3 -> timer 30, 4 -> 20, 5 -> 10, 6 -> 30, 8 -> 10 (twice: one timer)
    let out = pipeline
        .scripted_source(
            "input",
            vec![r(0, 3), r(1, 4), r(2, 5), r(3, 6), r(4, 8), r(5, 8), w(25), w(40)],
        )
        .key_by(|k: &u32| *k)
        .process(TimerProbe)
        .collect();
    let summary = run_to_end(&pipeline.build().unwrap()).unwrap();
    let timeline = show(out.timeline(), |r| r.value.clone());
    assert_eq!(
        timeline,
        strings(&["t10k5", "t10k8", "t20k4", "W25", "t30k3", "t30k6", "W40", "Wmax"])
    );
    assert_eq!(summary.state_entries, 0, "cleared state and fired timers leave nothing");
}

/// Keyed state of all three kinds: a running count, the values seen, and counts per value.
#[derive(Clone)]
struct StateProbe;

#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct ProbeState {
    count: ValueState<u64>,
    seen: ListState<i64>,
    by_parity: MapState<bool, u64>,
}

impl KeyedProcessFunction<u32, u32> for StateProbe {
    type State = ProbeState;
    type Out = (u32, u64, usize, u64);

    fn process_element(&mut self, record: Record<u32>, ctx: &mut ProcessContext<'_, u32, ProbeState, Self::Out>) {
        let key = *ctx.key();
        let state = ctx.state();
        let count = state.count.value().copied().unwrap_or(0) + 1;
        state.count.update(count);
        state.seen.add(record.ts);
        let even = record.ts % 2 == 0;
        let parity = state.by_parity.get(&even).copied().unwrap_or(0) + 1;
        state.by_parity.put(even, parity);
        let seen = state.seen.get().len();
        ctx.emit((key, count, seen, parity));
        if count == 3 {
            ctx.register_timer(TimeDomain::ProcessingTime, ctx.current_processing_time() + 5);
        }
    }

    fn on_timer(&mut self, _ts: i64, domain: TimeDomain, ctx: &mut ProcessContext<'_, u32, ProbeState, Self::Out>) {
        assert_eq!(domain, TimeDomain::ProcessingTime);
        *ctx.state() = ProbeState::default();
        let key = *ctx.key();
        ctx.emit((key, 0, 0, 0));
    }
}

#[test]
fn keyed_value_list_and_map_state_and_processing_time_timers() {
    let pipeline = Pipeline::new().with_parallelism(2);
    let out = pipeline
        .scripted_source("input", vec![r(0, 1), r(1, 2), r(2, 1), r(4, 1), r(5, 2)])
        .key_by(|k: &u32| *k)
        .process(StateProbe)
        .collect();
    let summary = run_to_end(&pipeline.build().unwrap()).unwrap();
    let mut per_key_1: Vec<_> = out.values().into_iter().filter(|v| v.0 == 1).collect();
    per_key_1.sort();
    assert_eq!(per_key_1, vec![(1, 0, 0, 0), (1, 1, 1, 1), (1, 2, 2, 2), (1, 3, 3, 3)]);
    assert_eq!(
        summary.state_entries, 1,
        "key 2 keeps its state (count 2), key 1 was cleared"
    );
}

type Event = (u32, char);

fn dedup(keep: Keep, ttl: i64, script: Vec<Scripted<Event>>) -> (Vec<String>, Vec<i64>, u64) {
    let pipeline = Pipeline::new();
    let deduplicated = pipeline
        .scripted_source("input", script)
        .key_by(|e: &Event| e.0)
        .deduplicate(keep, ttl);
    let out = deduplicated.output.collect();
    let late = deduplicated.late.collect();
    let summary = run_to_end(&pipeline.build().unwrap()).unwrap();
    assert_eq!(summary.state_entries, 0, "dedup state expires with the TTL");
    let timeline = show(out.timeline(), |r| format!("{}{}@{}", r.value.0, r.value.1, r.ts));
    (
        timeline,
        late.records().iter().map(|r| r.ts).collect(),
        summary.metrics.duplicates,
    )
}

fn e(ts: i64, id: u32, payload: char) -> Scripted<Event> {
    Scripted::Record(ts, (id, payload))
}

#[test]
fn dedup_keep_first_in_event_time() {
    // Interval [3,13) for id 1: 'a' (ts 3) is first although 'b' arrived before it.
    let script = vec![
        e(5, 1, 'b'),
        e(3, 1, 'a'),
        e(8, 1, 'c'),
        e(13, 1, 'd'),
        w(4),
        e(4, 1, 'x'),
        e(6, 1, 'y'),
        w(30),
        e(20, 1, 'z'),
    ];
    let (timeline, late, duplicates) = dedup(Keep::First, 10, script);
    assert_eq!(timeline, strings(&["1a@3", "W4", "1d@13", "W30", "Wmax"]));
    assert_eq!(late, vec![4, 20], "ts <= watermark is late");
    assert_eq!(duplicates, 3, "b, c and y");
}

#[test]
fn dedup_keep_last_emits_when_the_interval_closes() {
    let script = vec![
        e(5, 1, 'b'),
        e(3, 1, 'a'),
        e(8, 1, 'c'),
        e(13, 1, 'd'),
        e(3, 2, 'q'),
        w(12),
        w(30),
    ];
    let (timeline, late, _) = dedup(Keep::Last, 10, script);
    // id 1: interval [3,13) keeps 'c', stamped 12; id 2: [3,13) keeps 'q'; id 1: [13,23) 'd'.
    assert_eq!(timeline, strings(&["1c@12", "2q@12", "W12", "1d@22", "W30", "Wmax"]));
    assert!(late.is_empty());
}

type Probe = (u32, i64);

#[test]
fn temporal_join_uses_the_version_valid_at_each_timestamp() {
    let pipeline = Pipeline::new().with_parallelism(2);
    let probes = pipeline.scripted_source(
        "probes",
        vec![
            Scripted::Record(4, (1, 4)),
            Scripted::Record(5, (1, 5)),
            Scripted::Record(12, (1, 12)),
            Scripted::Record(20, (1, 20)),
            Scripted::Record(7, (2, 7)),
            Scripted::Watermark(30),
            Scripted::Record(28, (1, 28)),
        ],
    );
    let changes = pipeline.scripted_source(
        "profiles",
        vec![
            Scripted::Record(
                5,
                Change::Upsert {
                    key: 1u32,
                    value: "v1".to_string(),
                },
            ),
            Scripted::Record(
                10,
                Change::Upsert {
                    key: 1,
                    value: "v2".to_string(),
                },
            ),
            Scripted::Record(20, Change::Delete { key: 1 }),
        ],
    );
    let joined = probes.key_by(|p: &Probe| p.0).temporal_join(changes);
    let out = joined.output.collect();
    let late = joined.late.collect();
    let late_changes = joined.late_changes.collect();
    let graph = pipeline.build().unwrap();
    let mut job = Job::new(&graph);
    // Read the changelog first, so the probes' W30 is what holds the join back.
    let mut changelog_first = |actions: &[Action]| {
        actions
            .iter()
            .position(|a| matches!(a, Action::Deliver { .. }))
            .unwrap_or(actions.len() - 1)
    };
    let summary = run_batch(&mut job, &mut changelog_first, &Default::default()).unwrap();
    let mut results: Vec<_> = out
        .values()
        .into_iter()
        .map(|(probe, v)| (probe.0, probe.1, v))
        .collect();
    results.sort();
    let v = |s: &str| Some(s.to_string());
    assert_eq!(
        results,
        vec![
            (1, 4, None),
            (1, 5, v("v1")),
            (1, 12, v("v2")),
            (1, 20, None),
            (2, 7, None)
        ]
    );
    assert_eq!(late.records().iter().map(|r| r.ts).collect::<Vec<_>>(), vec![28]);
    assert!(late_changes.records().is_empty());
    assert_eq!(summary.metrics.late_records, 1);
    assert_eq!(summary.state_entries, 0, "deleted keys leave no versions");
}

#[test]
fn temporal_join_changes_behind_the_watermark_are_late() {
    let pipeline = Pipeline::new();
    let probes = pipeline.scripted_source("probes", vec![Scripted::Record(50, (2u32, 50i64))]);
    let changes = pipeline.scripted_source(
        "profiles",
        vec![
            Scripted::Record(10, Change::Upsert { key: 2u32, value: 'a' }),
            Scripted::Watermark(40),
            Scripted::Record(35, Change::Upsert { key: 2, value: 'b' }),
        ],
    );
    let joined = probes.key_by(|p: &Probe| p.0).temporal_join(changes);
    let out = joined.output.collect();
    let late_changes = joined.late_changes.collect();
    // InOrder reads the probes to their end first: the join's watermark is then the changelog's.
    run_to_end(&pipeline.build().unwrap()).unwrap();
    assert_eq!(
        out.values(),
        vec![((2, 50), Some('a'))],
        "the late change is not applied"
    );
    assert_eq!(
        late_changes.records(),
        vec![Record::new(35, Change::Upsert { key: 2, value: 'b' })]
    );
}

#[test]
fn bad_pipelines_are_build_errors() {
    fn window_error(assigner: WindowAssigner, lateness: i64) -> BuildError {
        let pipeline = Pipeline::new();
        let _ = pipeline
            .scripted_source("input", vec![r(0, 1)])
            .key_by(|k: &u32| *k)
            .window(assigner)
            .allowed_lateness(lateness)
            .aggregate(Count)
            .output
            .collect();
        pipeline.build().expect_err("an invalid pipeline does not build")
    }
    for (assigner, lateness, message) in [
        (WindowAssigner::tumbling(0), 0, "window size must be positive, got 0 ms"),
        (
            WindowAssigner::tumbling(-10),
            0,
            "window size must be positive, got -10 ms",
        ),
        (
            WindowAssigner::tumbling_with_offset(10, 10),
            0,
            "window offset 10 ms must be smaller than the size",
        ),
        (WindowAssigner::sliding(10, 0), 0, "window slide must be positive"),
        (WindowAssigner::sliding(10, 20), 0, "exceeds the size"),
        (WindowAssigner::session(0), 0, "session gap must be positive"),
        (
            WindowAssigner::tumbling(10),
            -1,
            "allowed lateness must not be negative",
        ),
    ] {
        let error = window_error(assigner, lateness).to_string();
        assert!(error.contains(message), "{error:?} should contain {message:?}");
        assert!(error.contains("window-"), "the error names the operator: {error}");
    }
    for (trigger, evictor, message) in [
        (Trigger::count(0), None, "trigger count must be positive"),
        (
            Trigger::continuous_event_time(0),
            None,
            "trigger interval must be positive",
        ),
        (
            Trigger::event_time(),
            Some(Evictor::count(0)),
            "evictor count must be positive",
        ),
        (
            Trigger::event_time(),
            Some(Evictor::time(-1)),
            "evictor time must not be negative",
        ),
    ] {
        let pipeline = Pipeline::new();
        let mut windowed = pipeline
            .scripted_source("input", vec![r(0, 1)])
            .key_by(|k: &u32| *k)
            .window(WindowAssigner::tumbling(10))
            .trigger(trigger);
        if let Some(evictor) = evictor {
            windowed = windowed.evictor(evictor);
        }
        let _ = windowed.aggregate(Count).output.collect();
        let error = pipeline
            .build()
            .expect_err("an invalid trigger does not build")
            .to_string();
        assert!(error.contains(message), "{error:?} should contain {message:?}");
    }

    let pipeline = Pipeline::new();
    let _ = pipeline
        .scripted_source("input", vec![r(0, 1)])
        .map(|k| k)
        .parallelism(0)
        .collect();
    assert_eq!(
        pipeline.build().err(),
        Some(BuildError::ZeroParallelism {
            operator: "map-1".into()
        })
    );

    let pipeline = Pipeline::new().with_max_parallelism(4);
    let _ = pipeline
        .scripted_source("input", vec![r(0, 1)])
        .map(|k| k)
        .parallelism(5)
        .collect();
    assert!(matches!(pipeline.build(), Err(BuildError::ParallelismAboveMax { .. })));

    let pipeline = Pipeline::new();
    let _ = pipeline
        .scripted_source("input", vec![r(0, 1)])
        .forward()
        .map(|k| k)
        .parallelism(2)
        .collect();
    assert!(matches!(
        pipeline.build(),
        Err(BuildError::ForwardParallelismMismatch { .. })
    ));

    let pipeline = Pipeline::new();
    let _ = pipeline
        .scripted_source("input", vec![e(0, 1, 'a')])
        .key_by(|e: &Event| e.0)
        .deduplicate(Keep::First, 0);
    assert!(pipeline
        .build()
        .unwrap_err()
        .to_string()
        .contains("dedup TTL must be positive"));
}

#[test]
fn stateless_operators_and_partitionings() {
    let pipeline = Pipeline::new().with_parallelism(3);
    let numbers = pipeline.source(
        "numbers",
        eddy_engine::Log::round_robin((0..30).map(|i| Record::new(i, i)), 4),
        eddy_engine::WatermarkStrategy::bounded_out_of_orderness(0),
    );
    let evens = numbers
        .filter(|n: &i64| n % 2 == 0)
        .map(|n| n * 10)
        .rebalance()
        .parallelism(2);
    let odds_twice = pipeline
        .source(
            "more",
            eddy_engine::Log::round_robin((0..30).map(|i| Record::new(i, i)), 1),
            eddy_engine::WatermarkStrategy::bounded_out_of_orderness(0),
        )
        .parallelism(1)
        .filter(|n: &i64| n % 2 == 1)
        .flat_map(|n| vec![n, n]);
    let broadcast = evens.union(odds_twice).broadcast().map(|n| n).parallelism(2).collect();
    run_to_end(&pipeline.build().unwrap()).unwrap();
    let mut values = broadcast.values();
    values.sort();
    let mut expected: Vec<i64> = (0..30)
        .filter(|n| n % 2 == 0)
        .map(|n| n * 10)
        .chain((0..30).filter(|n| n % 2 == 1).flat_map(|n| [n, n]))
        .collect();
    expected.extend(expected.clone());
    expected.sort();
    assert_eq!(values, expected, "broadcast to 2 tasks doubles every record");
}

#[test]
fn reduce_and_process_window_functions() {
    let pipeline = Pipeline::new();
    let script = vec![r(1, 7), r(2, 7), r(12, 7), r(3, 7)];
    let input = pipeline.scripted_source("input", script);
    // Reduce: the largest timestamp seen per window (records are their own keys here).
    let stamped = input.map(|k: u32| (k, 0i64));
    let reduced = stamped
        .key_by(|e: &(u32, i64)| e.0)
        .window(WindowAssigner::tumbling(10))
        .reduce(|a, b| (a.0, a.1 + b.0 as i64))
        .output
        .collect();
    let graph = pipeline.build().unwrap();
    run_to_end(&graph).unwrap();
    let mut got: Vec<_> = reduced
        .values()
        .into_iter()
        .map(|w| (w.window.start, w.value))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![(0, (7, 14)), (10, (7, 0))],
        "first record kept, two more folded in"
    );

    let pipeline = Pipeline::new();
    let processed = pipeline
        .scripted_source("input", vec![r(1, 7), r(5, 7), r(12, 8), r(3, 7)])
        .key_by(|k: &u32| *k)
        .window(WindowAssigner::session(5))
        .process(
            |key: &u32, window: eddy_engine::Window, records: &[u32], out: &mut Vec<String>| {
                out.push(format!("{key}:[{},{}):{}", window.start, window.end, records.len()));
            },
        )
        .output
        .collect();
    run_to_end(&pipeline.build().unwrap()).unwrap();
    let mut got = processed.values();
    got.sort();
    assert_eq!(got, vec!["7:[1,10):3".to_string(), "8:[12,17):1".to_string()]);
}
