//! Keyed state and key groups.
//!
//! Keys are hashed with a stable hash (FNV-1a, then a 64-bit finaliser) into one of
//! `max_parallelism` key groups; a task of an operator with parallelism `p` owns a contiguous
//! range of key groups (Flink's formulas), so keyed state can be restored at another
//! parallelism by moving whole key groups. The in-memory maps use a fixed hasher and are never
//! iterated in hash order where that order could reach output, traces or snapshots: whatever
//! leaves this module is sorted by key.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A hash map with a fixed hasher: deterministic, fast, and never iterated into output.
pub(crate) type FastMap<K, V> = hashbrown::HashMap<K, V, rustc_hash::FxBuildHasher>;

pub(crate) fn fast_map<K, V>() -> FastMap<K, V> {
    FastMap::with_hasher(rustc_hash::FxBuildHasher)
}

/// The default number of key groups (Flink's lower bound for its default).
pub const DEFAULT_MAX_PARALLELISM: usize = 128;

/// One of `max_parallelism` buckets of the key space; the unit of state redistribution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyGroup(pub u32);

/// Stable across runs, processes and platforms of the same pointer width.
pub fn stable_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut hasher = fnv::FnvHasher::default();
    key.hash(&mut hasher);
    // FNV's low bits are weak for short keys: finalise as MurmurHash3's fmix64 does.
    let mut h = hasher.finish();
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Which of `max_parallelism` key groups `key` falls into.
pub fn key_group_of<K: Hash + ?Sized>(key: &K, max_parallelism: usize) -> KeyGroup {
    debug_assert!(max_parallelism > 0);
    KeyGroup((stable_hash(key) % max_parallelism as u64) as u32)
}

/// The subtask that owns `key_group` when the operator runs with `parallelism` tasks.
pub fn subtask_for_key_group(key_group: KeyGroup, parallelism: usize, max_parallelism: usize) -> usize {
    debug_assert!(parallelism >= 1 && parallelism <= max_parallelism);
    key_group.0 as usize * parallelism / max_parallelism
}

/// The contiguous key groups `[start, end)` owned by one subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroupRange {
    /// The first key group of the range.
    pub start: u32,
    /// The key group after the last one of the range.
    pub end: u32,
}

impl KeyGroupRange {
    /// The key groups subtask `subtask` owns when the operator runs with `parallelism` tasks.
    pub fn for_subtask(subtask: usize, parallelism: usize, max_parallelism: usize) -> Self {
        assert!(subtask < parallelism && parallelism <= max_parallelism);
        let start = (subtask * max_parallelism).div_ceil(parallelism);
        let end = ((subtask + 1) * max_parallelism).div_ceil(parallelism);
        KeyGroupRange {
            start: start as u32,
            end: end as u32,
        }
    }

    /// Whether `key_group` is in the range.
    pub fn contains(&self, key_group: KeyGroup) -> bool {
        self.start <= key_group.0 && key_group.0 < self.end
    }
}

/// A single value per key (Flink's `ValueState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<V>(Option<V>);

impl<V> Default for ValueState<V> {
    fn default() -> Self {
        ValueState(None)
    }
}

impl<V> ValueState<V> {
    /// The value, if one is set.
    pub fn value(&self) -> Option<&V> {
        self.0.as_ref()
    }
    /// Sets the value.
    pub fn update(&mut self, value: V) {
        self.0 = Some(value);
    }
    /// Takes the value out, leaving none.
    pub fn take(&mut self) -> Option<V> {
        self.0.take()
    }
    /// Removes the value.
    pub fn clear(&mut self) {
        self.0 = None;
    }
}

/// A list of values per key (Flink's `ListState`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState<V>(Vec<V>);

impl<V> Default for ListState<V> {
    fn default() -> Self {
        ListState(Vec::new())
    }
}

impl<V> ListState<V> {
    /// Appends `value`.
    pub fn add(&mut self, value: V) {
        self.0.push(value);
    }
    /// The values, in the order they were added.
    pub fn get(&self) -> &[V] {
        &self.0
    }
    /// Takes every value out, leaving the list empty.
    pub fn take(&mut self) -> Vec<V> {
        std::mem::take(&mut self.0)
    }
    /// Removes every value.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// A sorted map per key (Flink's `MapState`); sorted so that iteration is deterministic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapState<K: Ord, V>(std::collections::BTreeMap<K, V>);

impl<K: Ord, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState(std::collections::BTreeMap::new())
    }
}

impl<K: Ord, V> MapState<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.0.get(key)
    }
    /// Puts `value` under `key`; returns the value it replaced.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.0.insert(key, value)
    }
    /// Removes the value under `key` and returns it.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.0.remove(key)
    }
    /// Whether a value is under `key`.
    pub fn contains(&self, key: &K) -> bool {
        self.0.contains_key(key)
    }
    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter()
    }
    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Removes every entry.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Per-key state of type `S` for the keys of one task's key-group range.
///
/// A key whose state equals `S::default()` after an access is removed, so cleared state costs
/// nothing (the bounded-state property relies on it).
pub struct KeyedStateBackend<K, S> {
    entries: FastMap<K, S>,
    key_groups: KeyGroupRange,
    max_parallelism: usize,
}

impl<K: Hash + Eq + Ord + Clone, S: Default + PartialEq> KeyedStateBackend<K, S> {
    /// An empty backend for the keys of `key_groups`, out of `max_parallelism` key groups.
    pub fn new(key_groups: KeyGroupRange, max_parallelism: usize) -> Self {
        KeyedStateBackend {
            entries: fast_map(),
            key_groups,
            max_parallelism,
        }
    }

    /// Runs `f` on the state of `key` (default if absent) and drops the entry if it ends empty.
    pub fn with_state<R>(&mut self, key: &K, f: impl FnOnce(&mut S) -> R) -> R {
        debug_assert!(
            self.key_groups.contains(key_group_of(key, self.max_parallelism)),
            "key routed to a task that does not own its key group"
        );
        match self.entries.get_mut(key) {
            Some(state) => {
                let result = f(state);
                if *state == S::default() {
                    self.entries.remove(key);
                }
                result
            }
            None => {
                let mut state = S::default();
                let result = f(&mut state);
                if state != S::default() {
                    self.entries.insert(key.clone(), state);
                }
                result
            }
        }
    }

    /// Puts restored state for `key` (which must belong to this task's key groups).
    pub fn insert(&mut self, key: K, state: S) {
        debug_assert!(self.key_groups.contains(key_group_of(&key, self.max_parallelism)));
        if state != S::default() {
            self.entries.insert(key, state);
        }
    }

    /// How many keys have state (a key whose state is the default has none).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries sorted by key: the only way state leaves the backend.
    pub fn sorted_entries(&self) -> Vec<(&K, &S)> {
        let mut entries: Vec<_> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_group_ranges_partition_the_key_space() {
        for max_parallelism in [1, 7, 128] {
            for parallelism in 1..=max_parallelism.min(9) {
                let mut next = 0;
                for subtask in 0..parallelism {
                    let range = KeyGroupRange::for_subtask(subtask, parallelism, max_parallelism);
                    assert_eq!(range.start, next, "ranges are contiguous");
                    for kg in range.start..range.end {
                        assert_eq!(
                            subtask_for_key_group(KeyGroup(kg), parallelism, max_parallelism),
                            subtask
                        );
                    }
                    next = range.end;
                }
                assert_eq!(next as usize, max_parallelism);
            }
        }
    }

    #[test]
    fn stable_hash_is_fixed() {
        // A change here breaks restoring snapshots written by earlier builds.
        assert_eq!(stable_hash("page-1"), 0x4f6f_a245_b27f_0105);
        assert_eq!(key_group_of(&42u64, 128), KeyGroup(88));
        let groups: std::collections::BTreeSet<_> = (0..1000u64).map(|k| key_group_of(&k, 128)).collect();
        assert!(groups.len() > 120, "keys spread over key groups: {}", groups.len());
    }

    #[test]
    fn cleared_state_is_dropped() {
        let mut backend: KeyedStateBackend<u64, ValueState<u64>> =
            KeyedStateBackend::new(KeyGroupRange::for_subtask(0, 1, 128), 128);
        backend.with_state(&1, |s| s.update(5));
        assert_eq!(backend.len(), 1);
        backend.with_state(&1, |s| s.clear());
        assert!(backend.is_empty());
    }
}
