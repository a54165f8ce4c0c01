//! The fixed settings every measurement shares: watermark and poll sizes, the simulator's
//! checkpoint cadence and channel capacity, the seeds/s input, the engine's watermarks.

use eddy::WatermarkStrategy;

/// Records per source watermark in the hand-written and timely variants; in batch mode the
/// engine reads as many per step, and emits a watermark every step (see [`watermarks`]).
pub const WATERMARK_EVERY: usize = 1_024;
/// Records per source poll in batch mode (`BatchConfig::default`), and in the simulator
/// variant that reads as much.
pub const BATCH_POLL: usize = 1_024;
/// The simulator variant checkpoints each time the sources read this many more records:
/// 200 checkpoints in a 2,000,000-event run (docs/performance.md, "The simulator's
/// checkpoint cadence").
pub const CHECKPOINT_EVERY: u64 = 10_000;
/// Messages each simulator channel holds before its sender waits. With backpressure the
/// sources cannot run ahead of a barrier, so checkpoints come at the cadence asked for;
/// unbounded, a backlog grew in front of each barrier and a run completed about ten.
pub const CHANNEL_CAPACITY: usize = 8;
/// Events per seed in the seeds/s measurement.
pub const SEED_EVENTS: usize = 10_000;

/// The engine's watermarks for a benchmark: `bound` out of order, emitted every millisecond
/// of processing time, which in batch mode is every step (a poll of up to 1,024 records).
pub fn watermarks(bound_ms: i64) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(bound_ms).with_interval(1)
}
