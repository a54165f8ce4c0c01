//! The timing loop: every variant of a workload measured in interleaved rounds, so that a
//! neighbour's burst lands on all of them alike, and the ratios between variants taken round
//! by round ([`Measured`], [`Ratio`]).

use std::time::Instant;

use serde::Serialize;

/// Rounds of the interleaved measurement: each round runs every variant once (a sample).
pub const ROUNDS: usize = 7;

/// The least time one sample takes: a variant faster than this repeats its input within the
/// sample, so that every variant gets at least `ROUNDS` x this of work (about a second).
const SAMPLE_SECONDS: f64 = 0.15;

/// A variant to measure: a run over the whole input that returns the results' checksum.
pub struct Variant<'a> {
    pub name: &'static str,
    /// Computes with other semantics than the engine ([`Measured::shortcut`]).
    pub shortcut: bool,
    run: Box<dyn FnMut() -> u64 + 'a>,
}

impl<'a> Variant<'a> {
    pub fn new(name: &'static str, run: impl FnMut() -> u64 + 'a) -> Self {
        Variant {
            name,
            shortcut: false,
            run: Box::new(run),
        }
    }

    pub fn shortcut(name: &'static str, run: impl FnMut() -> u64 + 'a) -> Self {
        Variant {
            shortcut: true,
            ..Variant::new(name, run)
        }
    }
}

/// One variant's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub variant: &'static str,
    /// Of the median round.
    pub events_per_s: f64,
    /// Seconds per run over the input, median round.
    pub seconds: f64,
    /// Seconds per run in each round, in round order (the ratios pair them up).
    pub round_seconds: Vec<f64>,
    /// Runs per round (a fast variant repeats the input to fill a sample).
    pub runs_per_round: usize,
    /// Of the results (the runs' distinct checksums, comma-separated, if they disagree).
    pub checksum: String,
    /// Peak resident memory during the variant's first, untimed run (VmHWM, reset before
    /// it), in MiB.
    pub peak_mib: Option<f64>,
    /// Simulator variants: the checkpoints one run completed (the cadence it really had).
    pub checkpoints: Option<u64>,
    /// Computes with other semantics than the engine (e.g. decides at once, right only for
    /// in-order input): not in `engine_over_*` nor in `checksums_agree`.
    pub shortcut: bool,
}

/// Measures `variants` on an input of `events` events: one untimed run each (memory, and how
/// many runs fill a sample), then [`ROUNDS`] rounds that run each variant once in turn, the
/// first variant of a round moving along by one each round.
pub fn interleaved(events: usize, mut variants: Vec<Variant<'_>>) -> Vec<Measured> {
    let mut checksums: Vec<Vec<u64>> = vec![Vec::new(); variants.len()];
    let keep = |checksums: &mut Vec<u64>, checksum: u64| {
        if !checksums.contains(&checksum) {
            checksums.push(checksum);
        }
    };
    let mut runs_per_round = Vec::with_capacity(variants.len());
    let mut peaks = Vec::with_capacity(variants.len());
    for (v, variant) in variants.iter_mut().enumerate() {
        reset_peak_memory();
        let started = Instant::now();
        keep(&mut checksums[v], (variant.run)());
        let seconds = started.elapsed().as_secs_f64();
        peaks.push(peak_memory_mib());
        runs_per_round.push(((SAMPLE_SECONDS / seconds.max(1e-6)).ceil() as usize).clamp(1, 10_000));
    }
    let mut round_seconds: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); variants.len()];
    for round in 0..ROUNDS {
        for turn in 0..variants.len() {
            let v = (round + turn) % variants.len();
            let started = Instant::now();
            for _ in 0..runs_per_round[v] {
                keep(&mut checksums[v], (variants[v].run)());
            }
            round_seconds[v].push(started.elapsed().as_secs_f64() / runs_per_round[v] as f64);
        }
    }
    variants
        .iter()
        .enumerate()
        .map(|(v, variant)| {
            let seconds = median(&round_seconds[v]);
            Measured {
                variant: variant.name,
                events_per_s: events as f64 / seconds,
                seconds,
                round_seconds: round_seconds[v].clone(),
                runs_per_round: runs_per_round[v],
                checksum: checksums[v]
                    .iter()
                    .map(|c| format!("{c:016x}"))
                    .collect::<Vec<_>>()
                    .join(","),
                peak_mib: peaks[v],
                checkpoints: None,
                shortcut: variant.shortcut,
            }
        })
        .collect()
}

/// How fast one variant ran against another, round by round: the median of the rounds'
/// ratios and the middle half of them (the spread a neighbour's bursts make).
#[derive(Clone, Debug, Serialize)]
pub struct Ratio {
    /// e.g. `engine/limit`.
    pub name: &'static str,
    pub median: f64,
    /// The middle half of the rounds' ratios: the second-lowest and second-highest of
    /// seven.
    pub low: f64,
    pub high: f64,
    /// The goal this ratio is held to, if any.
    pub goal: Option<f64>,
    /// How the ratio stands against its goal.
    pub verdict: Option<Verdict>,
}

/// A ratio against its goal, judged by the middle half of the rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The whole middle half is at or above the goal.
    Met,
    /// All of it is below.
    Missed,
    /// The spread straddles the goal: this run cannot tell.
    Unclear,
}

impl Ratio {
    /// `fast`'s speed over `slow`'s, paired round by round.
    pub fn of(name: &'static str, fast: &Measured, slow: &Measured, goal: Option<f64>) -> Ratio {
        let mut ratios: Vec<f64> = slow
            .round_seconds
            .iter()
            .zip(&fast.round_seconds)
            .map(|(s, f)| s / f)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let quarter = ratios.len() / 4;
        let (low, high) = (ratios[quarter], ratios[ratios.len() - 1 - quarter]);
        let verdict = goal.map(|goal| {
            if low >= goal {
                Verdict::Met
            } else if high < goal {
                Verdict::Missed
            } else {
                Verdict::Unclear
            }
        });
        Ratio {
            name,
            median: median(&ratios),
            low,
            high,
            goal,
            verdict,
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
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
