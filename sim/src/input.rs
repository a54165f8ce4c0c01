//! Input faults: disorder, late and duplicated events, injected into a generated input.
//!
//! The scenario generates its events in timestamp order from the input stream; this module
//! then damages them with the input-faults stream, so the same seed yields the same events
//! whichever faults are on.

use eddy_engine::Record;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::faults::{FaultKind, FaultSet};

/// Applies the input faults of `faults` to `records` (in timestamp order, as generated).
/// `bound_ms` is the pipeline's out-of-orderness bound.
pub fn inject<T: Clone>(
    records: Vec<Record<T>>,
    bound_ms: i64,
    faults: &FaultSet,
    rng: &mut ChaCha8Rng,
) -> Vec<Record<T>> {
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
            let to = (from + rng.gen_range(20..200)).min(log.len() - 1);
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
    log
}
