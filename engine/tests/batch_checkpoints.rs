//! The batch driver checkpoints through the engine's one coordinator: a run that takes a
//! checkpoint every few milliseconds of virtual time commits exactly what a run that commits
//! once at its end does, and its completed checkpoints are in the store.

use eddy_engine::{
    run_batch, run_checkpointed, BatchConfig, CheckpointCoordinator, Count, InOrder, Job, JobGraph, Log,
    MemorySnapshotStore, Pipeline, Record, SnapshotStore, WatermarkStrategy, WindowAssigner,
};
use proptest::prelude::*;

type Counts = Vec<(i64, String)>;

/// Counts per key and 10 ms window (lateness 5 ms), committed (two-phase) and late records.
fn build(input: &[(i64, u8)], parallelism: usize) -> (JobGraph, impl Fn() -> Counts) {
    let records: Vec<Record<u8>> = input.iter().map(|&(ts, key)| Record::new(ts, key)).collect();
    // A watermark after every step: barrier deliveries take steps, and so virtual time, so a
    // periodic watermark would fall between other records than in a run without checkpoints
    // (schedule-dependent lateness, as in Flink).
    let watermarks = WatermarkStrategy::bounded_out_of_orderness(20).with_interval(1);
    let pipeline = Pipeline::new().with_parallelism(parallelism);
    let counted = pipeline
        .source("input", Log::from_partitions(vec![records]), watermarks)
        .key_by(|key: &u8| *key)
        .window(WindowAssigner::tumbling(10))
        .allowed_lateness(5)
        .aggregate(Count);
    let counts = counted.output.collect_committed();
    let late = counted.late.collect_committed();
    let graph = pipeline.build().expect("a valid pipeline");
    let read = move || {
        let mut all: Counts = counts
            .records()
            .iter()
            .map(|r| (r.ts, format!("{:?}", r.value)))
            .collect();
        all.extend(late.records().iter().map(|r| (r.ts, format!("late {:?}", r.value))));
        all.sort();
        all
    };
    (graph, read)
}

fn input() -> impl Strategy<Value = Vec<(i64, u8)>> {
    prop::collection::vec((-40i64..200, 0u8..4), 0..120)
}

proptest! {
    #[test]
    fn checkpoints_every_few_milliseconds_commit_what_one_final_checkpoint_does(
        input in input(),
        parallelism in 1usize..4,
        interval in 1i64..15,
        batch in 1usize..8,
    ) {
        let config = BatchConfig { source_batch_size: batch, ..BatchConfig::default() };
        let (graph, once) = build(&input, parallelism);
        run_batch(&mut Job::new(&graph), &mut InOrder, &config).unwrap();

        let (graph, periodic) = build(&input, parallelism);
        let mut store = MemorySnapshotStore::new();
        let coordinator = CheckpointCoordinator::new(&store).unwrap().with_retention(100);
        let checkpointed = BatchConfig { checkpoint_interval: Some(interval), ..config };
        let summary = run_checkpointed(&mut Job::new(&graph), &mut InOrder, &checkpointed, coordinator, &mut store).unwrap();
        prop_assert_eq!(periodic(), once());

        // At most one checkpoint begins per interval (one more: the final one).
        let taken = store.checkpoints().unwrap();
        prop_assert!(!taken.is_empty(), "the final checkpoint is in the store");
        let most = summary.processing_time_ms / interval + 1;
        prop_assert!(taken.len() as i64 <= most, "{} checkpoints in {} ms", taken.len(), summary.processing_time_ms);
        if summary.processing_time_ms >= 4 * interval {
            prop_assert!(taken.len() >= 2, "checkpoints every {interval} ms over {} ms: {taken:?}", summary.processing_time_ms);
        }
    }
}
