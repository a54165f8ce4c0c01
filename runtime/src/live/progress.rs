//! Progress: the counters the tasks publish, and the line printed from them on stderr
//! (`events/s, watermark, last checkpoint`). It only reads what others publish: nothing here
//! changes the run.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use super::checkpoint::Delivery;
use eddy_engine::{END_OF_TIME, NO_WATERMARK};

/// What tasks publish for the progress line.
pub(super) struct Progress {
    pub(super) records_read: Vec<AtomicU64>,
    pub(super) late_records: Vec<AtomicU64>,
    pub(super) watermarks: Vec<AtomicI64>,
}

pub(super) fn sum(counters: &[AtomicU64]) -> u64 {
    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// Prints `events/s, watermark, last checkpoint` on stderr (and, following a file with
/// `--ignore-parse-errors`, how many of its lines were skipped so far).
pub(super) struct ProgressLine {
    started: Instant,
    last_at: Instant,
    last_read: u64,
}

impl ProgressLine {
    pub(super) fn new(started: Instant) -> Self {
        ProgressLine {
            started,
            last_at: started,
            last_read: 0,
        }
    }

    pub(super) fn print(&mut self, progress: &Progress, delivery: &Delivery<'_>, skipped: u64) {
        let now = Instant::now();
        let read = sum(&progress.records_read);
        let seconds = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let rate = (read - self.last_read.min(read)) as f64 / seconds;
        (self.last_at, self.last_read) = (now, read);
        // The job's watermark: the lowest over its tasks.
        let watermark = progress
            .watermarks
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .min()
            .unwrap_or(NO_WATERMARK);
        let watermark = match watermark {
            NO_WATERMARK => "none".to_string(),
            END_OF_TIME => "end of input".to_string(),
            w => format!("{w} ms"),
        };
        let checkpoint = match delivery.last_completed() {
            Some(id) => format!(
                "{id} ({:.1} s ago)",
                now.duration_since(delivery.last_completed_at).as_secs_f64()
            ),
            None => "none".to_string(),
        };
        let skipped = match skipped {
            0 => String::new(),
            1 => ", 1 line skipped".to_string(),
            n => format!(", {n} lines skipped"),
        };
        eprintln!(
            "live: {:.1} s, {read} events read, {rate:.0} events/s, watermark {watermark}, last checkpoint {checkpoint}, {} late, {}{skipped}",
            now.duration_since(self.started).as_secs_f64(),
            sum(&progress.late_records),
            delivery.output.describe_len(),
        );
    }
}
