//! Idle sources (docs/semantics.md, "Idle sources"), as Flink's `withIdleness` has them: a
//! partition with nothing to read for the idle timeout stops holding the watermark back, and
//! what it reads when it resumes may be late.

use eddy_engine::{
    run_batch, Action, BatchConfig, BuildError, Count, Job, Log, Pipeline, Record, Stall, WatermarkStrategy,
    WindowAssigner,
};

/// Partition 0 reads 1,000 records (ts 0, 10, ...) one per poll; partition 1 reads ts 1,
/// pauses for 2 s of processing time, then reads ts 50. Counts per 10 ms tumbling window.
/// Returns the late records' timestamps and the count of window [50, 60). At parallelism 1
/// one source task reads both partitions (idleness of a split); at 2, each task reads one,
/// and the second tells the window tasks it is idle (Flink's `WatermarkStatus`).
fn stalled_partition(strategy: WatermarkStrategy, parallelism: usize) -> (Vec<i64>, Option<u64>) {
    stalled_partition_polled(strategy, parallelism, true)
}

/// `in_turn`: the source tasks' polls alternate; else the first reads all its records
/// before the second starts (at parallelism 2 it has ended when the second pauses).
fn stalled_partition_polled(strategy: WatermarkStrategy, parallelism: usize, in_turn: bool) -> (Vec<i64>, Option<u64>) {
    let steady: Vec<Record<u32>> = (0..1_000).map(|i| Record::new(i * 10, 0)).collect();
    let stalled = vec![Record::new(1, 1), Record::new(50, 1)];
    let log = Log::from_partitions(vec![steady, stalled]).with_stalls(vec![Stall {
        partition: 1,
        offset: 1,
        ms: 2_000,
    }]);
    let pipeline = Pipeline::new().with_parallelism(parallelism);
    let counted = pipeline
        .source("input", log, strategy)
        .key_by(|key: &u32| *key)
        .window(WindowAssigner::tumbling(10))
        .aggregate(Count);
    let results = counted.output.collect();
    let late = counted.late.collect();
    let mut job = Job::new(&pipeline.build().expect("valid pipeline"));
    let config = BatchConfig {
        source_batch_size: 1,
        ..BatchConfig::default()
    };
    // Deliveries first, then the source tasks' polls in turn (in order, the first source
    // task would read all its records before the second began).
    let mut polls = 0;
    let mut scheduler = |actions: &[Action]| match actions.iter().position(|a| matches!(a, Action::Deliver { .. })) {
        Some(delivery) => delivery,
        None if in_turn => {
            polls += 1;
            polls % actions.len()
        }
        None => 0,
    };
    run_batch(&mut job, &mut scheduler, &config).expect("runs to the end");
    let window_50 = results
        .records()
        .iter()
        .find(|r| r.value.key == 1 && r.value.window.start == 50)
        .map(|r| r.value.value);
    (late.records().iter().map(|r| r.ts).collect(), window_50)
}

/// The source tasks polled in turn: the same outcome with one task reading both
/// partitions and with a task per partition.
fn assert_at_parallelism_1_and_2(strategy: WatermarkStrategy, expected: (Vec<i64>, Option<u64>)) {
    for parallelism in [1, 2] {
        assert_eq!(
            stalled_partition(strategy, parallelism),
            expected,
            "parallelism {parallelism}"
        );
    }
}

#[test]
fn without_idleness_a_paused_partition_holds_the_watermark_back() {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(0).with_interval(10);
    assert_at_parallelism_1_and_2(strategy, (vec![], Some(1)));
}

#[test]
fn an_idle_partition_stops_holding_the_watermark_and_its_records_may_then_be_late() {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(0)
        .with_interval(10)
        .with_idleness(300);
    assert_at_parallelism_1_and_2(strategy, (vec![50], None));
}

#[test]
fn a_pause_shorter_than_the_idle_timeout_changes_nothing() {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(0)
        .with_interval(10)
        .with_idleness(5_000);
    assert_at_parallelism_1_and_2(strategy, (vec![], Some(1)));
}

#[test]
fn an_idle_timeout_must_be_positive() {
    let pipeline = Pipeline::new();
    pipeline
        .source(
            "input",
            Log::from_partitions(vec![vec![Record::new(0, 0u32)]]),
            WatermarkStrategy::bounded_out_of_orderness(0).with_idleness(0),
        )
        .collect();
    let error = pipeline.build().expect_err("a zero idle timeout is refused");
    assert!(
        matches!(
            error,
            BuildError::NotPositive {
                what: "idle timeout",
                ..
            }
        ),
        "{error:?}"
    );
}

/// eddy differs from Flink here (docs/semantics.md, "Idle sources"): the first source task
/// has read everything and ended when the second one pauses and goes idle. In Flink the
/// ended channel's `Long.MAX_VALUE` watermark would then fire every window, and ts 50 would
/// be late; in eddy the end of time waits for the idle input.
#[test]
fn a_finished_source_does_not_carry_the_watermark_past_an_idle_one() {
    let strategy = WatermarkStrategy::bounded_out_of_orderness(0)
        .with_interval(10)
        .with_idleness(300);
    assert_eq!(stalled_partition_polled(strategy, 2, false), (vec![], Some(1)));
}
