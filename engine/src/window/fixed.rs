//! The operator for windows that never merge (tumbling and sliding): panes per window, fired
//! by the watermark in window order, kept for the allowed lateness.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use indexmap::map::RawEntryApiV1;
use indexmap::IndexMap;
use smallvec::SmallVec;

use super::assigner::{is_window_late, LatenessRule, Window, WindowAssigner};
use super::function::WindowFunction;
use super::pane::{act, add_to_contents, add_to_pane, pending_timer, Pane, WindowSettings};
use crate::element::{Batch, CheckpointId, Data, Key, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::time::NO_WATERMARK;

/// The panes of one window: contents and trigger state per key, in the order the keys came
/// (so that the window fires them in an order that does not depend on hashing, without a
/// sort; a restored window has them in snapshot order).
struct WindowPanes<K, A> {
    panes: IndexMap<K, Pane<A>, rustc_hash::FxBuildHasher>,
    /// The watermark has reached the window's end (its end-of-window firing is done).
    fired: bool,
    /// While `fired` is false: the keys whose end-of-window firing is done all the same. A
    /// restore at another parallelism can merge panes of an old task that had fired the
    /// window with panes of one that had not; as with Flink's per-key timers, only the
    /// others fire at the end, and a fired key fires again only if a record came since.
    /// Empty (no allocation) otherwise.
    fired_keys: BTreeSet<K>,
}

/// How many emptied pane maps a window operator keeps for reuse: about as many windows as
/// one watermark step clears.
const MAX_SPARE_PANE_MAPS: usize = 16;

/// Tumbling and sliding windows (assigners that never merge).
pub(crate) struct WindowOperator<T, K, KS, F: WindowFunction<K, T>> {
    assigner: WindowAssigner,
    settings: WindowSettings,
    key_selector: KS,
    function: F,
    // Ordered by start; all windows of one assigner have the same size, so also by end.
    windows: BTreeMap<Window, WindowPanes<K, F::Acc>>,
    /// Early firings a trigger asked for, in firing order.
    early_timers: BTreeSet<(Timestamp, K, Window)>,
    watermark: Timestamp,
    assigned: Vec<Window>,
    /// The most keys a window has had: new windows' maps start that large.
    keys_per_window: usize,
    /// Maps of cleared windows, emptied, for new windows to reuse (no allocation per window).
    spare_panes: Vec<IndexMap<K, Pane<F::Acc>, rustc_hash::FxBuildHasher>>,
    scratch: Vec<F::Out>,
    _types: PhantomData<fn(T)>,
}

impl<T, K, KS, F: WindowFunction<K, T>> WindowOperator<T, K, KS, F> {
    pub(crate) fn new(assigner: WindowAssigner, settings: WindowSettings, key_selector: KS, function: F) -> Self {
        debug_assert!(!matches!(assigner, WindowAssigner::Session { .. }));
        WindowOperator {
            assigner,
            settings,
            key_selector,
            function,
            windows: BTreeMap::new(),
            early_timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            assigned: Vec::new(),
            keys_per_window: 0,
            spare_panes: Vec::new(),
            scratch: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<T, K, KS, F> WindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    /// Adds `batch`, judging lateness at `lateness_watermark` (the operator's watermark, or
    /// the one a replayed record arrived at in the checked run).
    fn add_records(&mut self, batch: Batch, lateness_watermark: Timestamp, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        let mut behind = Vec::new();
        let allowed_lateness = self.settings.allowed_lateness;
        // Read in place (a batch shared with the source is not copied): only late records,
        // which go on, are cloned.
        let mut rest = batch.as_slice::<T>();
        // Records of a batch come in runs with the same windows (timestamps close together):
        // assign and look the windows up once per run, not once per record.
        while let Some(first) = rest.first() {
            self.assigned.clear();
            self.assigner.assign(first.ts, &mut self.assigned);
            let (from, until) = self.assigner.same_windows(first.ts, self.assigned[0]);
            let run_len = rest
                .iter()
                .position(|r| r.ts < from || r.ts >= until)
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(run_len);
            rest = after;
            // Windows end in assignment order, so the late ones are a prefix.
            let late_windows = self
                .assigned
                .partition_point(|&w| is_window_late(w, allowed_lateness, lateness_watermark));
            let whole_record = self.settings.lateness_rule == LatenessRule::WholeRecord;
            if late_windows == self.assigned.len() || (whole_record && late_windows > 0) {
                late.extend_from_slice(run);
                continue;
            }
            if late_windows > 0 {
                // Partly late: the differential reference must skip the same windows.
                behind.extend_from_slice(run);
            }
            let open = &self.assigned[late_windows..];
            for &window in open {
                if !self.windows.contains_key(&window) {
                    let panes = self.spare_panes.pop().unwrap_or_else(|| {
                        IndexMap::with_capacity_and_hasher(self.keys_per_window, Default::default())
                    });
                    // A window created past its end (within the allowed lateness) has had its
                    // end: only late firings are left for it.
                    self.windows.insert(
                        window,
                        WindowPanes {
                            panes,
                            fired: window.max_timestamp() <= self.watermark,
                            fired_keys: BTreeSet::new(),
                        },
                    );
                }
            }
            let (earliest, latest) = (open[0], open[open.len() - 1]);
            let watermark = self.watermark;
            // A window that exists unfired past its end was restored so (its end firing comes
            // at the next watermark): marking it fired here would lose the panes that never
            // fired (found by pageviews seed 2336, restored at another parallelism).
            let mut windows: SmallVec<[_; 4]> = self
                .windows
                .range_mut(earliest..=latest)
                .map(|(&window, panes)| (window, panes))
                .collect();
            debug_assert_eq!(windows.len(), open.len(), "the assigned windows are adjacent");
            let quiet = self.settings.trigger.is_quiet_before_end();
            for record in run {
                let key = (self.key_selector)(&record.value);
                for (window, panes) in windows.iter_mut() {
                    // One hash and probe, hit or miss; the key is cloned only for a new pane.
                    let (_, pane) = panes
                        .panes
                        .raw_entry_mut_v1()
                        .from_key(&key)
                        .or_insert_with(|| (key.clone(), Pane::default()));
                    if !panes.fired_keys.is_empty() {
                        // A record since its firing: this key fires at the end again.
                        panes.fired_keys.remove(&key);
                    }
                    if quiet && !panes.fired {
                        // Before the window's end the trigger has nothing to say: just add.
                        add_to_contents(&self.function, pane, record);
                        continue;
                    }
                    let (decision, timer) =
                        add_to_pane(&self.function, &self.settings.trigger, pane, *window, record, watermark);
                    if let Some(timer) = timer {
                        self.early_timers.insert((timer, key.clone(), *window));
                    }
                    let emitted = act(
                        &self.function,
                        &key,
                        *window,
                        pane,
                        decision,
                        &mut self.scratch,
                        &mut results,
                    );
                    if emitted && window.max_timestamp() <= watermark {
                        out.events.late_firings += 1;
                    } else if emitted {
                        out.events.early_firings += 1;
                    }
                }
            }
            if let Some((_, panes)) = windows.last() {
                self.keys_per_window = self.keys_per_window.max(panes.panes.len());
            }
        }
        out.emit(MAIN, results);
        out.emit_late(late);
        out.emit_behind(behind);
    }
}

impl<T, K, KS, F> Operator for WindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        self.add_records(batch, self.watermark, out);
    }

    fn handle_records_behind(&mut self, _input: usize, batch: Batch, watermark: Timestamp, out: &mut Output) {
        self.add_records(batch, self.watermark.max(watermark), out);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        debug_assert!(watermark > self.watermark, "watermarks only advance");
        self.watermark = watermark;
        let mut results = Vec::new();
        // Early firings (always before their window's end) first, in timer order.
        while self.early_timers.first().is_some_and(|t| t.0 <= watermark) {
            let (time, key, window) = self.early_timers.pop_first().expect("checked non-empty");
            let pane = self
                .windows
                .get_mut(&window)
                .and_then(|panes| panes.panes.get_mut(&key))
                .expect("an early timer always has its pane");
            let (decision, next) = self.settings.trigger.on_timer(time, window, &mut pane.trigger);
            if let Some(next) = next {
                self.early_timers.insert((next, key.clone(), window));
            }
            if act(
                &self.function,
                &key,
                window,
                pane,
                decision,
                &mut self.scratch,
                &mut results,
            ) {
                out.events.early_firings += 1;
            }
        }
        let decision = self.settings.trigger.on_window_end();
        // Usually one result per pane: room for every window ending now at once, not by
        // doubling (each a copy of the results so far).
        let ending = self.windows.iter().take_while(|(w, _)| w.max_timestamp() <= watermark);
        results.reserve(ending.filter(|(_, p)| !p.fired).map(|(_, p)| p.panes.len()).sum());
        for (&window, panes) in self.windows.iter_mut() {
            if window.max_timestamp() > watermark {
                break;
            }
            if !panes.fired {
                panes.fired = true;
                let fired_keys = std::mem::take(&mut panes.fired_keys);
                if !fired_keys.is_empty() {
                    out.events.partly_fired_windows += 1;
                }
                let keys = panes.panes.iter_mut().filter(|(key, _)| !fired_keys.contains(*key));
                if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::HashMapOutputOrder) {
                    let keys: Vec<_> = keys.collect();
                    let order = crate::testkit::bugs::hash_map_order(keys.iter().map(|(k, _)| (*k).clone()).collect());
                    let mut by_key: BTreeMap<K, &mut Pane<F::Acc>> =
                        keys.into_iter().map(|(k, p)| (k.clone(), p)).collect();
                    let mut ordered = Vec::new();
                    for k in order {
                        let pane = by_key.remove(&k).expect("a key of this window");
                        ordered.push((k, pane));
                    }
                    for (key, pane) in ordered {
                        act(
                            &self.function,
                            &key,
                            window,
                            pane,
                            decision,
                            &mut self.scratch,
                            &mut results,
                        );
                    }
                    continue;
                }
                for (key, pane) in keys {
                    act(
                        &self.function,
                        key,
                        window,
                        pane,
                        decision,
                        &mut self.scratch,
                        &mut results,
                    );
                }
            }
        }
        while let Some(entry) = self.windows.first_entry() {
            if !is_window_late(*entry.key(), self.settings.allowed_lateness, watermark) {
                break;
            }
            debug_assert!(entry.get().fired, "a window is cleared only after it fired");
            let mut panes = entry.remove().panes;
            if self.spare_panes.len() < MAX_SPARE_PANE_MAPS {
                panes.clear();
                self.spare_panes.push(panes);
            }
        }
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        let mut panes: Vec<(&K, Window, bool, &Pane<F::Acc>)> = self
            .windows
            .iter()
            .flat_map(|(&window, panes)| {
                panes
                    .panes
                    .iter()
                    .map(move |(key, pane)| (key, window, panes.fired || panes.fired_keys.contains(key), pane))
            })
            .collect();
        panes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        OperatorState::from_keyed(panes, |pane| pane.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, window, fired, pane) in context.keyed_entries::<(K, Window, bool, Pane<F::Acc>)>()? {
            if let Some(timer) = pending_timer(window, &pane.trigger) {
                self.early_timers.insert((timer, key.clone(), window));
            }
            let panes = self.windows.entry(window).or_insert_with(|| WindowPanes {
                panes: IndexMap::default(),
                fired,
                fired_keys: BTreeSet::new(),
            });
            // Panes of one window restored from two old tasks, one of which had fired it:
            // fire at the end only the panes that had not fired (see `fired_keys`).
            if panes.fired && !fired {
                panes.fired_keys.extend(panes.panes.keys().cloned());
                panes.fired = false;
            }
            if fired && !panes.fired {
                panes.fired_keys.insert(key.clone());
            }
            panes.panes.insert(key, pane);
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.windows.values().map(|w| w.panes.len()).sum::<usize>() + self.early_timers.len()
    }
}
