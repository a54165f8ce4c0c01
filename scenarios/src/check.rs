//! Checks shared by scenarios: multiset arithmetic over logs and outputs.

use std::collections::BTreeMap;

use eddy_sim::Violation;

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
