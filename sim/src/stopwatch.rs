//! The one wall clock the simulator's crate reads: it times the phases of a run for
//! [`Timings`](crate::Timings). What it measures goes into a report's timings only, never
//! into a decision, a trace or a verdict, so every run stays deterministic (the sans-IO
//! rule's one exception besides the test harness's shrinking deadline, `tests/tidy.rs`).

use std::time::{Duration, Instant};

/// Time since [`Stopwatch::start`].
pub(crate) struct Stopwatch(Instant);

impl Stopwatch {
    #[allow(clippy::disallowed_methods)]
    pub(crate) fn start() -> Self {
        Stopwatch(Instant::now())
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}
