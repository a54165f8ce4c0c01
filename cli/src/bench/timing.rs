//! The timing loop: a variant's runs, their median, peak memory and checksums ([`Measured`]).

use std::time::Instant;

use serde::Serialize;

/// One variant's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub variant: &'static str,
    /// Of the median run ([`RUNS`] runs).
    pub events_per_s: f64,
    pub seconds: f64,
    /// Of the results (the runs' distinct checksums, comma-separated, if they disagree).
    pub checksum: String,
    /// Peak resident memory while the variant ran (VmHWM, reset before its first run), in MiB.
    pub peak_mib: Option<f64>,
    /// Simulator variants: the checkpoints one run completed (the cadence it really had).
    pub checkpoints: Option<u64>,
    /// Computes with other semantics than the engine (e.g. decides at once, right only for
    /// in-order input): not in `engine_over_*` nor in `checksums_agree`.
    pub shortcut: bool,
}

/// Runs of each variant: the median is reported, so that one run's page faults (the first
/// touches its memory) or a neighbour's burst do not decide a ratio.
const RUNS: usize = 5;

/// Times `run` [`RUNS`] times; reports the median run, the peak memory of all, and the
/// checksum (or every distinct one, if the runs disagree).
pub fn timed(variant: &'static str, events: usize, mut run: impl FnMut() -> u64) -> Measured {
    reset_peak_memory();
    let mut seconds = Vec::with_capacity(RUNS);
    let mut checksums: Vec<u64> = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let checksum = run();
        seconds.push(started.elapsed().as_secs_f64());
        if !checksums.contains(&checksum) {
            checksums.push(checksum);
        }
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    let checksum = checksums
        .iter()
        .map(|c| format!("{c:016x}"))
        .collect::<Vec<_>>()
        .join(",");
    Measured {
        variant,
        events_per_s: events as f64 / median,
        seconds: median,
        checksum,
        peak_mib: peak_memory_mib(),
        checkpoints: None,
        shortcut: false,
    }
}

/// Resets the peak resident set size that [`peak_memory_mib`] reads (Linux; elsewhere a
/// no-op).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
