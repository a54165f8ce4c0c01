//! Input faults: disorder, late and duplicated events, injected into a generated input.
//!
//! The scenario generates its events in timestamp order from the input stream; this module
//! then damages them with the input-faults stream, so the same seed yields the same events
//! whichever faults are on.

use eddy_engine::{JobGraph, Record, Stall, TimeRule, WindowAssigner};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultKind, FaultSet};

/// Where the partitions of a log of `len` records spread over `partitions` pause
/// (`source-stall`): one or two pauses of 0.1 to 3 s of processing time, each at a random
/// offset of a random partition.
pub fn stalls(len: usize, partitions: usize, rng: &mut ChaCha8Rng) -> Vec<Stall> {
    let partitions = partitions.max(1);
    (0..rng.gen_range(1..=2))
        .filter_map(|_| {
            let partition = rng.gen_range(0..partitions);
            let partition_len = (len + partitions - 1 - partition) / partitions;
            let ms = rng.gen_range(100..3_000);
            (partition_len > 0).then(|| Stall {
                partition,
                offset: rng.gen_range(0..partition_len),
                ms,
            })
        })
        .collect()
}

/// Applies the input faults of `faults` to `records` (in timestamp order, as generated).
/// `bound_ms` is the pipeline's out-of-orderness bound; the `boundary` fault aims at
/// `boundaries` of a log spread over `partitions`, and returns how many records it placed on
/// each kind of boundary.
pub fn inject<T: Clone>(
    records: Vec<Record<T>>,
    bound_ms: i64,
    faults: &FaultSet,
    boundaries: &Boundaries,
    partitions: usize,
    keep_order: &dyn Fn(&T, &T) -> bool,
    rng: &mut ChaCha8Rng,
) -> (Vec<Record<T>>, BoundaryCounts) {
    let mut log = records;
    if faults.contains(FaultKind::Disorder) {
        // Within the bound: a record moves back by at most B, so it is never late.
        for record in &mut log {
            if rng.gen_bool(0.3) {
                record.ts -= rng.gen_range(0..=bound_ms);
            }
        }
    }
    if faults.contains(FaultKind::DisorderBeyondBound) {
        for record in &mut log {
            if rng.gen_bool(0.03) {
                record.ts -= bound_ms + 1 + rng.gen_range(0..=3 * bound_ms + 1_000);
            }
        }
    }
    if faults.contains(FaultKind::LateEvents) && log.len() > 1 {
        // A record held back far down the log arrives after later records moved time on.
        for _ in 0..(log.len() / 50).max(1) {
            let from = rng.gen_range(0..log.len());
            let mut to = (from + rng.gen_range(20..200)).min(log.len() - 1);
            // Not past a record it must stay before (a change of the same row).
            if let Some(at) = (from + 1..=to).find(|&i| keep_order(&log[from].value, &log[i].value)) {
                to = at - 1;
            }
            let record = log.remove(from);
            log.insert(to, record);
        }
    }
    if faults.contains(FaultKind::DuplicateEvents) && !log.is_empty() {
        for _ in 0..(log.len() / 30).max(1) {
            let from = rng.gen_range(0..log.len());
            let to = (from + rng.gen_range(1..50)).min(log.len());
            let copy = log[from].clone();
            log.insert(to, copy);
        }
    }
    // Last, so that turning it on changes nothing the other input faults draw.
    let mut placed = BoundaryCounts::default();
    if faults.contains(FaultKind::Boundary) {
        placed = boundaries.place(&mut log, partitions, rng);
    }
    if faults.contains(FaultKind::ConnectorRestart) && log.len() > 1 {
        // The connector restarts and delivers again what followed its last committed
        // offset: a run of the log, in its order, right after itself.
        for _ in 0..rng.gen_range(1..=2) {
            let at = rng.gen_range(1..log.len());
            let from = at - rng.gen_range(1..=at.min(50));
            let replayed = log[from..at].to_vec();
            log.splice(at..at, replayed);
        }
    }
    (log, placed)
}

/// The kinds of boundary a record can sit on (docs/testing.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BoundaryKind {
    /// The first millisecond of a window.
    WindowStart,
    /// The last millisecond of a window (its max timestamp).
    WindowEnd,
    /// A session gap after an earlier record of the same key.
    SessionGap,
    /// A dedup interval's end after an earlier record of the same key.
    DedupEnd,
    /// The lateness limit: the watermark when the record is read, minus the allowed lateness.
    LatenessLimit,
}

impl BoundaryKind {
    /// Every kind, in declaration order.
    pub const ALL: [BoundaryKind; 5] = [
        BoundaryKind::WindowStart,
        BoundaryKind::WindowEnd,
        BoundaryKind::SessionGap,
        BoundaryKind::DedupEnd,
        BoundaryKind::LatenessLimit,
    ];
}

/// Records placed on each kind of boundary, in [`BoundaryKind::ALL`] order.
pub type BoundaryCounts = [u64; 5];

/// Where a pipeline's behaviour turns on a timestamp, read off its job graph: window
/// assigners, session gaps, dedup TTLs, allowed lateness and the sources' watermark bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Boundaries {
    /// `(size, slide, offset)` of tumbling (slide = size) and sliding windows.
    pub windows: Vec<(i64, i64, i64)>,
    /// The gaps of session windows.
    pub session_gaps: Vec<i64>,
    /// The TTLs of deduplications.
    pub dedup_ttls: Vec<i64>,
    /// The allowed lateness of each windowed operator (0 for dedup, whose late rule is `ts <=
    /// watermark`).
    pub lateness: Vec<i64>,
    /// The largest out-of-orderness bound of the sources.
    pub bound_ms: i64,
}

impl Boundaries {
    /// The boundaries of `graph`'s operators and sources.
    pub fn of(graph: &JobGraph) -> Self {
        let mut boundaries = Boundaries::default();
        for node in &graph.nodes {
            if let Some(watermarks) = node.watermarks() {
                boundaries.bound_ms = boundaries.bound_ms.max(watermarks.out_of_orderness_ms);
            }
            match node.time_rule {
                Some(TimeRule::Windows {
                    assigner,
                    allowed_lateness_ms,
                }) => {
                    match assigner {
                        WindowAssigner::Tumbling { size_ms, offset_ms } => {
                            boundaries.windows.push((size_ms, size_ms, offset_ms))
                        }
                        WindowAssigner::Sliding {
                            size_ms,
                            slide_ms,
                            offset_ms,
                        } => boundaries.windows.push((size_ms, slide_ms, offset_ms)),
                        WindowAssigner::Session { gap_ms } => boundaries.session_gaps.push(gap_ms),
                    }
                    boundaries.lateness.push(allowed_lateness_ms);
                }
                Some(TimeRule::Dedup { ttl_ms }) => {
                    boundaries.dedup_ttls.push(ttl_ms);
                    boundaries.lateness.push(0);
                }
                None => {}
            }
        }
        boundaries
    }

    /// The kinds of boundary this pipeline has.
    pub fn kinds(&self) -> Vec<BoundaryKind> {
        let mut kinds = Vec::new();
        if !self.windows.is_empty() {
            kinds.extend([BoundaryKind::WindowStart, BoundaryKind::WindowEnd]);
        }
        if !self.session_gaps.is_empty() {
            kinds.push(BoundaryKind::SessionGap);
        }
        if !self.dedup_ttls.is_empty() {
            kinds.push(BoundaryKind::DedupEnd);
        }
        if !self.lateness.is_empty() {
            kinds.push(BoundaryKind::LatenessLimit);
        }
        kinds
    }

    /// Moves about one record in 20 onto a boundary, or 1 ms before or after it. A session gap
    /// or dedup interval is measured from an earlier record whose value the moved record
    /// takes (so it has that record's key); the lateness limit from the largest timestamp read
    /// before it in its partition.
    fn place<T: Clone>(&self, log: &mut [Record<T>], partitions: usize, rng: &mut ChaCha8Rng) -> BoundaryCounts {
        let mut placed = BoundaryCounts::default();
        let kinds = self.kinds();
        if kinds.is_empty() {
            return placed;
        }
        let partitions = partitions.max(1);
        let mut partition_max: Vec<Option<i64>> = vec![None; partitions];
        for index in 0..log.len() {
            if rng.gen_bool(0.05) {
                let kind = kinds[rng.gen_range(0..kinds.len())];
                let off_by = rng.gen_range(-1..=1i64);
                let pick = |list: &[i64], rng: &mut ChaCha8Rng| list[rng.gen_range(0..list.len())];
                let ts = log[index].ts;
                let moved = match kind {
                    BoundaryKind::WindowStart | BoundaryKind::WindowEnd => {
                        let (size, slide, offset) = self.windows[rng.gen_range(0..self.windows.len())];
                        let start = ts - (ts - offset).rem_euclid(slide);
                        let at = if kind == BoundaryKind::WindowStart {
                            start
                        } else {
                            start + size - 1
                        };
                        Some(at + off_by)
                    }
                    BoundaryKind::SessionGap | BoundaryKind::DedupEnd if index > 0 => {
                        let length = if kind == BoundaryKind::SessionGap {
                            pick(&self.session_gaps, rng)
                        } else {
                            pick(&self.dedup_ttls, rng)
                        };
                        let earlier = index - rng.gen_range(1..=index.min(20));
                        log[index].value = log[earlier].value.clone();
                        Some(log[earlier].ts + length + off_by)
                    }
                    BoundaryKind::LatenessLimit => partition_max[index % partitions]
                        .map(|max| max - self.bound_ms - 1 - pick(&self.lateness, rng) + off_by),
                    _ => None,
                };
                if let Some(moved) = moved {
                    log[index].ts = moved;
                    placed[kind as usize] += 1;
                }
            }
            let max = &mut partition_max[index % partitions];
            *max = Some(max.map_or(log[index].ts, |m| m.max(log[index].ts)));
        }
        placed
    }

    /// Records of `log` that sit exactly on a window's first or last millisecond, however
    /// they got there: `[window starts, window ends]`.
    pub fn on_windows<T>(&self, log: &[Record<T>]) -> [u64; 2] {
        let mut on = [0u64; 2];
        for record in log {
            let ts = record.ts;
            if self
                .windows
                .iter()
                .any(|&(_, slide, offset)| (ts - offset).rem_euclid(slide) == 0)
            {
                on[0] += 1;
            }
            if self
                .windows
                .iter()
                .any(|&(size, slide, offset)| (ts + 1 - size - offset).rem_euclid(slide) == 0)
            {
                on[1] += 1;
            }
        }
        on
    }
}
