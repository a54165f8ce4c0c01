//! Checks shared by scenarios: multiset arithmetic over logs and outputs.

use std::collections::BTreeMap;

use eddy_engine::Record;
use eddy_sim::Violation;
use serde::Serialize;

/// `all` minus one occurrence of each of `some`. A `some` entry that is not in `all` (or
/// occurs more often) is a conservation violation: a record on a late output that was never
/// in the input, or late twice.
pub fn minus<T: Ord + Clone + std::fmt::Debug>(all: &[T], some: &[T], what: &str) -> Result<Vec<T>, Violation> {
    let mut left: BTreeMap<&T, usize> = BTreeMap::new();
    for item in all {
        *left.entry(item).or_default() += 1;
    }
    for item in some {
        match left.get_mut(item) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                return Err(Violation::new(
                    "conservation",
                    format!("{what} {item:?} is not in the input, or was emitted more often than it occurs"),
                ))
            }
        }
    }
    Ok(left
        .into_iter()
        .flat_map(|(item, n)| std::iter::repeat_n(item.clone(), n))
        .collect())
}

/// The first difference between an expected and an actual table, as a violation.
pub fn compare_tables<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    property: &str,
    expected: &BTreeMap<K, V>,
    actual: &BTreeMap<K, V>,
) -> Option<Violation> {
    for (key, want) in expected {
        match actual.get(key) {
            None => {
                return Some(Violation::new(
                    property,
                    format!("{key:?}: expected {want:?}, nothing committed"),
                ))
            }
            Some(got) if got != want => {
                return Some(Violation::new(
                    property,
                    format!("{key:?}: expected {want:?}, committed {got:?}"),
                ))
            }
            _ => {}
        }
    }
    actual
        .iter()
        .find(|(key, _)| !expected.contains_key(key))
        .map(|(key, got)| Violation::new(property, format!("{key:?}: committed {got:?}, expected nothing")))
}

/// Exactly-once for counts: within one consistent execution a `(key, window)` count only
/// grows (a late firing adds records), so a count committed that is not larger than the one
/// before it for the same `(key, window)` comes from an execution that was rolled back
/// (output committed before its checkpoint completed, or a transaction committed twice).
/// `results` are in commit order.
pub fn counts_grow<K: Ord + std::fmt::Debug>(results: impl IntoIterator<Item = (K, u64)>) -> Option<Violation> {
    let mut last: BTreeMap<K, u64> = BTreeMap::new();
    for (key, count) in results {
        if let Some(&before) = last.get(&key) {
            if count <= before {
                return Some(Violation::new(
                    "exactly-once",
                    format!("{key:?}: committed {count} after {before}: a result of a rolled-back run was committed"),
                ));
            }
        }
        last.insert(key, count);
    }
    None
}

/// Lateness soundness: a record can only be late if, before it in its log partition, some
/// record was far enough ahead: the operator's watermark is at most the minimum over splits
/// of `max ts seen − B − 1`, so `must_precede(record)` (the smallest watermark at which the
/// record is late) must be `<= max ts before it − B − 1`. `input` is the log before it was
/// spread round-robin over `partitions`.
pub fn lateness_soundness<T: PartialEq + std::fmt::Debug>(
    input: &[Record<T>],
    partitions: usize,
    bound_ms: i64,
    late: &[Record<T>],
    late_at: impl Fn(&Record<T>) -> i64,
) -> Option<Violation> {
    for record in late {
        let could_be_late = input.iter().enumerate().any(|(index, candidate)| {
            candidate == record
                && input[..index]
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| j % partitions == index % partitions)
                    .map(|(_, r)| r.ts)
                    .max()
                    .is_some_and(|max| late_at(record) < max - bound_ms)
        });
        if !could_be_late {
            return Some(Violation::new(
                "lateness",
                format!(
                    "{record:?} is on the late output, but no watermark could have reached {} when it arrived",
                    late_at(record)
                ),
            ));
        }
    }
    None
}

/// A digest of committed output in commit order (folded into the trace hash, so that an
/// order that differs between runs of one seed shows as non-determinism).
pub fn digest<T: Serialize>(records: &[Record<T>]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for record in records {
        for byte in eddy_engine::snapshot::encode_value(record) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}
