//! Windows: assigners, window functions and the two window operators.
//!
//! Rules (docs/semantics.md, "Windows"): windows are `[start, end)` with
//! `max_timestamp = end - 1`; a window fires when the watermark reaches `max_timestamp`; with
//! allowed lateness `L` its state lives until the watermark reaches `max_timestamp + L`, and
//! a record added meanwhile fires the window again (a late firing, an upsert of the result).
//! As in Flink, a record joins those of its windows that are still open and goes to the late
//! side output only when none is (or, with [`LatenessRule::WholeRecord`], when any is late);
//! sessions merge first and judge the merged session. When a window fires is its
//! [`Trigger`]'s decision. Output order is deterministic: by timer, window, then key.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::marker::PhantomData;

use indexmap::map::RawEntryApiV1;
use indexmap::IndexMap;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use smallvec::SmallVec;

use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::{fast_map, FastMap};
use crate::time::NO_WATERMARK;
use crate::timer::TimerQueue;
use crate::trigger::{Evictor, Trigger, TriggerResult, TriggerState};

/// When a record of a sliding window counts as late (docs/semantics.md, "Allowed lateness").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LatenessRule {
    /// Flink's: the record joins its windows that are still open; it is late (side output)
    /// only when every one of its windows is.
    #[default]
    PerWindow,
    /// eddy's stricter rule: a record joins all of its windows or none; it is late, whole, as
    /// soon as its earliest-ending window is. Conservation then holds per record.
    WholeRecord,
}

/// A half-open interval of event time `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawWindow")]
pub struct Window {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A window as decoded, before the check that it is not empty (snapshots are untrusted).
#[derive(Deserialize)]
struct RawWindow {
    start: Timestamp,
    end: Timestamp,
}

impl TryFrom<RawWindow> for Window {
    type Error = String;

    fn try_from(RawWindow { start, end }: RawWindow) -> Result<Self, String> {
        if start < end {
            Ok(Window { start, end })
        } else {
            Err(format!("empty window [{start}, {end})"))
        }
    }
}

impl Window {
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        debug_assert!(start < end, "empty window [{start}, {end})");
        Window { start, end }
    }

    /// The largest timestamp inside the window: the window fires at this watermark.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    pub fn contains(&self, ts: Timestamp) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// Assigns records to windows by their timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowAssigner {
    Tumbling {
        size_ms: i64,
        offset_ms: i64,
    },
    Sliding {
        size_ms: i64,
        slide_ms: i64,
        offset_ms: i64,
    },
    Session {
        gap_ms: i64,
    },
}

impl WindowAssigner {
    pub fn tumbling(size_ms: i64) -> Self {
        WindowAssigner::Tumbling { size_ms, offset_ms: 0 }
    }

    pub fn tumbling_with_offset(size_ms: i64, offset_ms: i64) -> Self {
        WindowAssigner::Tumbling { size_ms, offset_ms }
    }

    pub fn sliding(size_ms: i64, slide_ms: i64) -> Self {
        WindowAssigner::Sliding {
            size_ms,
            slide_ms,
            offset_ms: 0,
        }
    }

    pub fn sliding_with_offset(size_ms: i64, slide_ms: i64, offset_ms: i64) -> Self {
        WindowAssigner::Sliding {
            size_ms,
            slide_ms,
            offset_ms,
        }
    }

    pub fn session(gap_ms: i64) -> Self {
        WindowAssigner::Session { gap_ms }
    }

    /// Why this assigner cannot work, if it cannot (checked by the pipeline builder).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            WindowAssigner::Tumbling { size_ms, offset_ms } => {
                positive("window size", size_ms)?;
                offset_within("size", offset_ms, size_ms)
            }
            WindowAssigner::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => {
                positive("window size", size_ms)?;
                positive("window slide", slide_ms)?;
                offset_within("slide", offset_ms, slide_ms)
            }
            WindowAssigner::Session { gap_ms } => positive("session gap", gap_ms),
        }
    }

    /// The timestamps `[from, until)` around `ts` that are assigned the same windows as `ts`,
    /// given `earliest`, the earliest-ending window of `ts` (for session windows, only `ts`).
    pub fn same_windows(&self, ts: Timestamp, earliest: Window) -> (Timestamp, Timestamp) {
        let (offset_ms, slide_ms) = match *self {
            WindowAssigner::Tumbling { size_ms, offset_ms } => (offset_ms, size_ms),
            WindowAssigner::Sliding {
                slide_ms, offset_ms, ..
            } => (offset_ms, slide_ms),
            WindowAssigner::Session { .. } => return (ts, ts.saturating_add(1)),
        };
        if crate::bugs::is_active(crate::bugs::Bug::WindowsClosedInterval) {
            // The planted bug assigns a record at a window's start one more window.
            return (ts, ts.saturating_add(1));
        }
        // The latest window starting at or before ts, and the earliest one still holding it:
        // an earlier ts would also be in the window before `earliest`, a later one no longer
        // in `earliest` or already in the next window.
        let latest_start = window_start(ts, offset_ms, slide_ms);
        (
            latest_start.max(earliest.end.saturating_sub(slide_ms)),
            latest_start.saturating_add(slide_ms).min(earliest.end),
        )
    }

    /// Appends the windows containing `ts`, earliest-ending first (merging assigners give the
    /// record's own window `[ts, ts + gap)`).
    pub fn assign(&self, ts: Timestamp, windows: &mut Vec<Window>) {
        match *self {
            WindowAssigner::Tumbling { size_ms, offset_ms } => {
                let start = window_start(ts, offset_ms, size_ms);
                if ts == start && crate::bugs::is_active(crate::bugs::Bug::WindowsClosedInterval) {
                    windows.push(Window::new(start - size_ms, start));
                }
                windows.push(Window::new(start, start.saturating_add(size_ms)));
            }
            WindowAssigner::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => {
                let last_start = window_start(ts, offset_ms, slide_ms);
                // The earliest window still containing ts starts after ts - size.
                let steps = (last_start as i128 - (ts as i128 - size_ms as i128 + 1)) / slide_ms as i128;
                let mut start = last_start - (steps as i64) * slide_ms;
                while start <= last_start {
                    windows.push(Window::new(start, start.saturating_add(size_ms)));
                    start += slide_ms;
                }
            }
            WindowAssigner::Session { gap_ms } => {
                windows.push(Window::new(ts, ts.saturating_add(gap_ms)));
            }
        }
    }
}

fn positive(what: &str, value: i64) -> Result<(), String> {
    if value > 0 {
        Ok(())
    } else {
        Err(format!("{what} must be positive, got {value} ms"))
    }
}

fn offset_within(what: &str, offset_ms: i64, period_ms: i64) -> Result<(), String> {
    if offset_ms.unsigned_abs() < period_ms.unsigned_abs() {
        Ok(())
    } else {
        Err(format!(
            "window offset {offset_ms} ms must be smaller than the {what} ({period_ms} ms) in absolute value"
        ))
    }
}

/// `start = ts - (ts - offset).rem_euclid(period)`, without overflow.
fn window_start(ts: Timestamp, offset_ms: i64, period_ms: i64) -> Timestamp {
    match ts.checked_sub(offset_ms) {
        Some(since_offset) => ts - since_offset.rem_euclid(period_ms),
        // Only near the ends of the timestamp range.
        None => {
            let rem = (ts as i128 - offset_ms as i128).rem_euclid(period_ms as i128);
            (ts as i128 - rem) as i64
        }
    }
}

/// `max_timestamp + allowed_lateness <= watermark`: the window's state is gone or going.
fn is_window_late(window: Window, allowed_lateness: i64, watermark: Timestamp) -> bool {
    window.max_timestamp().saturating_add(allowed_lateness) <= watermark
}

/// A window result: the value computed for `key` over `window`. With allowed lateness a
/// `(key, window)` can be emitted again; the later value replaces the earlier (an upsert).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Windowed<K, V> {
    pub key: K,
    pub window: Window,
    pub value: V,
}

/// Incremental aggregation (Flink's `AggregateFunction`).
pub trait AggregateFunction<T>: Clone + Send + 'static {
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    type Out: Data;
    fn create_accumulator(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, value: &T);
    /// Combines two accumulators (session windows merge).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _value: &T) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums an `i64` extracted from each record.
#[derive(Clone, Copy, Debug)]
pub struct Sum<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + 'static> AggregateFunction<T> for Sum<F> {
    type Acc = i64;
    type Out = i64;
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, acc: &mut i64, value: &T) {
        *acc += (self.0)(value);
    }
    fn merge(&self, acc: &mut i64, other: i64) {
        *acc += other;
    }
    fn result(&self, acc: &i64) -> i64 {
        *acc
    }
}

/// What a window operator computes per `(key, window)`: the erased form of aggregate,
/// reduce and process window functions.
pub trait WindowFunction<K, T>: Clone + Send + 'static {
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    type Out: Data;
    fn create(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, ts: Timestamp, value: &T);
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// Pushes the firing's results to `out`, stamped with the window's max timestamp
    /// (`scratch`: room for a process function's values, empty before and after). Mutable: an
    /// evictor removes records from the window as it fires.
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Self::Acc,
        scratch: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    );
}

#[derive(Clone)]
pub(crate) struct Aggregating<A>(pub(crate) A);

impl<K: Key, T, A: AggregateFunction<T>> WindowFunction<K, T> for Aggregating<A> {
    type Acc = A::Acc;
    type Out = Windowed<K, A::Out>;
    fn create(&self) -> A::Acc {
        self.0.create_accumulator()
    }
    fn add(&self, acc: &mut A::Acc, _ts: Timestamp, value: &T) {
        self.0.add(acc, value)
    }
    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.0.merge(acc, other)
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut A::Acc,
        _: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    ) {
        let value = Windowed {
            key: key.clone(),
            window,
            value: self.0.result(acc),
        };
        out.push(Record::new(window.max_timestamp(), value));
    }
}

#[derive(Clone)]
pub(crate) struct Reducing<F>(pub(crate) F);

impl<K: Key, T: Data, F: Fn(T, &T) -> T + Clone + Send + 'static> WindowFunction<K, T> for Reducing<F> {
    type Acc = Option<T>;
    type Out = Windowed<K, T>;
    fn create(&self) -> Option<T> {
        None
    }
    fn add(&self, acc: &mut Option<T>, _ts: Timestamp, value: &T) {
        *acc = Some(match acc.take() {
            None => value.clone(),
            Some(reduced) => (self.0)(reduced, value),
        });
    }
    fn merge(&self, acc: &mut Option<T>, other: Option<T>) {
        if let Some(other) = other {
            *acc = Some(match acc.take() {
                None => other,
                Some(reduced) => (self.0)(reduced, &other),
            });
        }
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Option<T>,
        _: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    ) {
        if let Some(value) = acc {
            let value = Windowed {
                key: key.clone(),
                window,
                value: value.clone(),
            };
            out.push(Record::new(window.max_timestamp(), value));
        }
    }
}

/// A process window function sees every record of the window (in arrival order).
#[derive(Clone)]
pub(crate) struct Processing<F, O>(pub(crate) F, pub(crate) PhantomData<fn() -> O>);

impl<K: Key, T: Data, O: Data, F> WindowFunction<K, T> for Processing<F, O>
where
    F: Fn(&K, Window, &[T], &mut Vec<O>) + Clone + Send + 'static,
{
    type Acc = Vec<T>;
    type Out = O;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, _ts: Timestamp, value: &T) {
        acc.push(value.clone());
    }
    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
    fn emit(&self, key: &K, window: Window, acc: &mut Vec<T>, scratch: &mut Vec<O>, out: &mut Vec<Record<O>>) {
        (self.0)(key, window, acc, scratch);
        out.extend(scratch.drain(..).map(|v| Record::new(window.max_timestamp(), v)));
    }
}

/// A window function behind an evictor: the window keeps its records (with timestamps), and
/// each firing evicts, then runs the function over what is left (Flink's
/// `EvictingWindowOperator`, evicting before the function).
#[derive(Clone)]
pub(crate) struct Evicting<F, T> {
    pub(crate) function: F,
    pub(crate) evictor: Evictor,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<K: Key, T: Data, F: WindowFunction<K, T>> WindowFunction<K, T> for Evicting<F, T> {
    type Acc = Vec<(Timestamp, T)>;
    type Out = F::Out;
    fn create(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, ts: Timestamp, value: &T) {
        acc.push((ts, value.clone()));
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Self::Acc,
        scratch: &mut Vec<F::Out>,
        out: &mut Vec<Record<F::Out>>,
    ) {
        self.evictor.evict(acc);
        let mut inner = self.function.create();
        for (ts, value) in acc.iter() {
            self.function.add(&mut inner, *ts, value);
        }
        self.function.emit(key, window, &mut inner, scratch, out);
    }
}

/// What a `(key, window)` holds: its contents (none after a purge, or before the first
/// record) and its trigger's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pane<A> {
    acc: Option<A>,
    trigger: TriggerState,
}

impl<A> Default for Pane<A> {
    fn default() -> Self {
        Pane {
            acc: None,
            trigger: TriggerState::default(),
        }
    }
}

/// Acts on a trigger's decision for one pane: emits its results (if it holds any), stamped
/// with the window's max timestamp, then purges if asked. Returns whether it emitted.
fn act<K, T, F: WindowFunction<K, T>>(
    function: &F,
    key: &K,
    window: Window,
    pane: &mut Pane<F::Acc>,
    decision: TriggerResult,
    scratch: &mut Vec<F::Out>,
    results: &mut Vec<Record<F::Out>>,
) -> bool {
    if !decision.fire {
        return false;
    }
    let Some(acc) = pane.acc.as_mut() else {
        return false;
    };
    function.emit(key, window, acc, scratch, results);
    if decision.purge {
        pane.acc = None;
    }
    true
}

/// Adds a record to a pane and asks the trigger; returns its decision and early timer.
fn add_to_pane<K, T, F: WindowFunction<K, T>>(
    function: &F,
    trigger: &Trigger,
    pane: &mut Pane<F::Acc>,
    window: Window,
    record: &Record<T>,
    watermark: Timestamp,
) -> (TriggerResult, Option<Timestamp>) {
    add_to_contents(function, pane, record);
    trigger.on_element(record.ts, window, watermark, &mut pane.trigger)
}

/// Adds a record to a pane's contents only (what a quiet trigger needs before the end).
fn add_to_contents<K, T, F: WindowFunction<K, T>>(function: &F, pane: &mut Pane<F::Acc>, record: &Record<T>) {
    let acc = pane.acc.get_or_insert_with(|| function.create());
    function.add(acc, record.ts, &record.value);
}

/// The early-firing timer a restored pane had pending (a continuous trigger's next firing
/// before the window's end).
fn pending_timer(window: Window, trigger: &TriggerState) -> Option<Timestamp> {
    trigger.next_fire.filter(|&t| t < window.max_timestamp())
}

/// The window options every window operator takes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowSettings {
    pub(crate) allowed_lateness: i64,
    pub(crate) trigger: Trigger,
    pub(crate) lateness_rule: LatenessRule,
}

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
                if crate::bugs::is_active(crate::bugs::Bug::HashMapOutputOrder) {
                    let keys: Vec<_> = keys.collect();
                    let order = crate::bugs::hash_map_order(keys.iter().map(|(k, _)| (*k).clone()).collect());
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

struct Session<A> {
    window: Window,
    pane: Pane<A>,
    /// In a snapshot taken or restored (what the coverage map's session merge counts).
    checkpointed: bool,
    /// Its end-of-window firing is still to come.
    fire_pending: bool,
}

/// What a session waits for next: its end-of-window firing, or else its clean-up.
fn session_due<A>(session: &Session<A>, allowed_lateness: i64) -> Timestamp {
    let end = session.window.max_timestamp();
    if session.fire_pending {
        end
    } else {
        end.saturating_add(allowed_lateness)
    }
}

/// A key's sessions and the one timer the key waits on.
struct KeySessions<A> {
    /// Disjoint (not touching) sessions sorted by start.
    list: Vec<Session<A>>,
    /// The time of the key's queued timer: at or before every session's next firing or
    /// clean-up (a session that grew or fired since is due later, not earlier).
    armed: Option<Timestamp>,
}

impl<A> KeySessions<A> {
    /// When the key next has something to do: its sessions' earliest firing or clean-up.
    fn next_due(&self, allowed_lateness: i64) -> Option<Timestamp> {
        self.list.iter().map(|s| session_due(s, allowed_lateness)).min()
    }
}

impl<A> Default for KeySessions<A> {
    fn default() -> Self {
        KeySessions {
            list: Vec::new(),
            armed: None,
        }
    }
}

/// Session windows: each record opens `[ts, ts + gap)`; overlapping or touching windows of a
/// key merge (Flink's `MergingWindowSet`).
///
/// As in Flink, a record first merges, and is late only if the merged session is: its state
/// is gone or going (`max_timestamp + L <= watermark`), which can only be the record's own
/// window, since a session still held is not past its clean-up.
pub(crate) struct SessionWindowOperator<T, K, KS, F: WindowFunction<K, T>> {
    gap_ms: i64,
    settings: WindowSettings,
    key_selector: KS,
    function: F,
    sessions: FastMap<K, KeySessions<F::Acc>>,
    /// One timer per key, not per session, at the key's earliest due firing or clean-up:
    /// when it comes up, everything of the key due by the watermark is done at once and the
    /// key is re-armed at its next. A session that grows (most records) re-arms nothing, and
    /// a key with several sessions ending within one watermark step is visited once. A timer
    /// whose key has been re-armed or cleared since is skipped (lazy deletion).
    timers: TimerQueue<K>,
    early_timers: BTreeSet<(Timestamp, K, Window)>,
    watermark: Timestamp,
    scratch: Vec<F::Out>,
    _types: PhantomData<fn(T)>,
}

impl<T, K: Ord, KS, F: WindowFunction<K, T>> SessionWindowOperator<T, K, KS, F> {
    pub(crate) fn new(gap_ms: i64, settings: WindowSettings, key_selector: KS, function: F) -> Self {
        SessionWindowOperator {
            gap_ms,
            settings,
            key_selector,
            function,
            sessions: fast_map(),
            timers: TimerQueue::default(),
            early_timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            scratch: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<T, K, KS, F> SessionWindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    /// Adds `record` to its key's sessions, pushing any firing to `results`.
    fn add_record(
        &mut self,
        record: &Record<T>,
        lateness_watermark: Timestamp,
        results: &mut Vec<Record<F::Out>>,
        out: &mut Output,
    ) -> AddOutcome {
        let key = (self.key_selector)(&record.value);
        let own = Window::new(record.ts, record.ts.saturating_add(self.gap_ms));
        let entry = self.sessions.entry(key.clone()).or_default();
        let sessions = &mut entry.list;
        // Sessions overlapping or touching [ts, ts + gap) form a contiguous run of the list.
        let (first, last) = match sessions.last() {
            // The common case, a record at or after the newest session's start: the older
            // sessions end before the newest starts, so only the newest can touch it.
            Some(newest) if newest.window.start <= own.start => {
                let n = sessions.len();
                (if newest.window.end >= own.start { n - 1 } else { n }, n)
            }
            _ => (
                sessions.partition_point(|s| s.window.end < own.start),
                sessions.partition_point(|s| s.window.start <= own.end),
            ),
        };
        let merged_window = sessions[first..last].iter().fold(own, |w, s| {
            Window::new(w.start.min(s.window.start), w.end.max(s.window.end))
        });
        // Flink's order: merge, then drop the record if the merged session has expired.
        if is_window_late(merged_window, self.settings.allowed_lateness, lateness_watermark) {
            if sessions.is_empty() {
                self.sessions.remove(&key);
            }
            return AddOutcome::Late;
        }
        // As in Flink: the record joins the state of the session it falls into, and
        // accumulators merge only when it bridges two or more sessions. The first session of
        // the run takes the others in, in place, and keeps its timers (`fire_timers`).
        let window = merged_window;
        let (watermark, trigger) = (self.watermark, self.settings.trigger);
        let early_timers = &mut self.early_timers;
        let fresh = first == last;
        if fresh {
            let session = Session {
                window,
                pane: Pane::default(),
                checkpointed: false,
                fire_pending: false,
            };
            sessions.insert(first, session);
        } else if last == first + 1 {
            // The common case: the record falls into or extends one session.
            let target = &mut sessions[first];
            if target.window != window {
                if let Some(timer) = pending_timer(target.window, &target.pane.trigger) {
                    early_timers.remove(&(timer, key.clone(), target.window));
                }
                target.window = window;
            }
            if target.checkpointed {
                out.events.checkpointed_session_merges += 1;
            }
        } else {
            let merged: SmallVec<[Session<F::Acc>; 2]> = sessions.drain(first + 1..last).collect();
            let target = &mut sessions[first];
            for session in std::iter::once(&*target).chain(&merged) {
                if let Some(timer) = pending_timer(session.window, &session.pane.trigger) {
                    early_timers.remove(&(timer, key.clone(), session.window));
                }
                if session.checkpointed {
                    out.events.checkpointed_session_merges += 1;
                }
            }
            for session in merged {
                if let Some(other) = session.pane.acc {
                    match &mut target.pane.acc {
                        Some(acc) => self.function.merge(acc, other),
                        None => target.pane.acc = Some(other),
                    }
                }
                Trigger::merge(&mut target.pane.trigger, session.pane.trigger);
            }
            target.window = window;
        }
        let session = &mut sessions[first];
        if trigger.is_quiet_before_end() && window.max_timestamp() > watermark {
            // Before the session's end the trigger has nothing to say: just add.
            add_to_contents(&self.function, &mut session.pane, record);
        } else {
            if let Some(timer) = pending_timer(window, &session.pane.trigger) {
                early_timers.insert((timer, key.clone(), window));
            }
            let (decision, timer) = add_to_pane(&self.function, &trigger, &mut session.pane, window, record, watermark);
            if let Some(timer) = timer {
                early_timers.insert((timer, key.clone(), window));
            }
            let emitted = act(
                &self.function,
                &key,
                window,
                &mut session.pane,
                decision,
                &mut self.scratch,
                results,
            );
            if window.max_timestamp() <= watermark && emitted {
                // Within allowed lateness of an already-passed session end: a late firing.
                out.events.late_firings += 1;
            } else if emitted {
                out.events.early_firings += 1;
            }
        }
        // A session ending past the watermark fires at its end: a new one, and one that had
        // fired and grew past the watermark by a late merge (it fires again). One opened
        // past its end (within the allowed lateness) waits only for its clean-up.
        session.fire_pending |= window.max_timestamp() > watermark;
        let due = session_due(session, self.settings.allowed_lateness);
        if entry.armed.is_none_or(|armed| due < armed) {
            entry.armed = Some(due);
            self.timers.push(due, key);
        }
        // A record at most L - 1 behind the watermark may touch a session already cleared:
        // the differential reference must replay it as of this watermark.
        let behind = record
            .ts
            .saturating_add(self.settings.allowed_lateness)
            .saturating_sub(1)
            <= lateness_watermark;
        AddOutcome::Added { behind }
    }

    /// Fires (as the window's end would) and clears `key`'s sessions whose clean-up time is
    /// at or before `watermark`: what the checked run had done by then.
    fn retire(&mut self, key: &K, watermark: Timestamp, results: &mut Vec<Record<F::Out>>) {
        let Some(KeySessions { list: sessions, .. }) = self.sessions.get_mut(key) else {
            return;
        };
        let allowed_lateness = self.settings.allowed_lateness;
        let (retired, kept): (Vec<_>, Vec<_>) = std::mem::take(sessions)
            .into_iter()
            .partition(|s| is_window_late(s.window, allowed_lateness, watermark));
        *sessions = kept;
        for mut session in retired {
            if let Some(timer) = pending_timer(session.window, &session.pane.trigger) {
                self.early_timers.remove(&(timer, key.clone(), session.window));
            }
            if session.fire_pending {
                let decision = self.settings.trigger.on_window_end();
                act(
                    &self.function,
                    key,
                    session.window,
                    &mut session.pane,
                    decision,
                    &mut self.scratch,
                    results,
                );
            }
        }
        if self.sessions.get(key).is_some_and(|k| k.list.is_empty()) {
            self.sessions.remove(key);
        }
    }
}

/// The session of `window` among a key's sessions (sorted by start, disjoint), if it has one.
fn session_of<A>(sessions: &mut [Session<A>], window: Window) -> Option<&mut Session<A>> {
    let at = sessions.partition_point(|s| s.window.start < window.start);
    sessions.get_mut(at).filter(|s| s.window == window)
}

/// What became of a record (the caller copies it on only if it goes on).
enum AddOutcome {
    Late,
    /// `behind`: the differential reference must replay it (see `add_record`).
    Added {
        behind: bool,
    },
}

impl<T, K, KS, F> Operator for SessionWindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        let mut behind = Vec::new();
        // Read in place (a batch shared with the source is not copied).
        for record in batch.as_slice::<T>() {
            match self.add_record(record, self.watermark, &mut results, out) {
                AddOutcome::Late => late.push(record.clone()),
                AddOutcome::Added { behind: true } => behind.push(record.clone()),
                AddOutcome::Added { behind: false } => {}
            }
        }
        out.emit(MAIN, results);
        out.emit_late(late);
        out.emit_behind(behind);
    }

    fn handle_records_behind(&mut self, _input: usize, batch: Batch, watermark: Timestamp, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        for record in batch.as_slice::<T>() {
            let key = (self.key_selector)(&record.value);
            self.retire(&key, watermark, &mut results);
            if let AddOutcome::Late = self.add_record(record, self.watermark.max(watermark), &mut results, out) {
                late.push(record.clone());
            }
        }
        out.emit(MAIN, results);
        out.emit_late(late);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        debug_assert!(watermark > self.watermark, "watermarks only advance");
        self.watermark = watermark;
        let mut results = Vec::new();
        let trigger = self.settings.trigger;
        while self.early_timers.first().is_some_and(|t| t.0 <= watermark) {
            let (time, key, window) = self.early_timers.pop_first().expect("checked non-empty");
            let session = self
                .sessions
                .get_mut(&key)
                .and_then(|k| session_of(&mut k.list, window))
                .expect("an early timer always has its session");
            let (decision, next) = trigger.on_timer(time, window, &mut session.pane.trigger);
            if let Some(next) = next {
                self.early_timers.insert((next, key.clone(), window));
            }
            if act(
                &self.function,
                &key,
                window,
                &mut session.pane,
                decision,
                &mut self.scratch,
                &mut results,
            ) {
                out.events.early_firings += 1;
            }
        }
        let decision = trigger.on_window_end();
        let allowed_lateness = self.settings.allowed_lateness;
        let firings_from = results.len();
        while let Some((time, key)) = self.timers.pop_due(watermark) {
            let Some(entry) = self.sessions.get_mut(&key).filter(|k| k.armed == Some(time)) else {
                continue; // lapsed: the key was re-armed, or its sessions are gone
            };
            for session in entry.list.iter_mut() {
                if session.fire_pending && session.window.max_timestamp() <= watermark {
                    session.fire_pending = false;
                    act(
                        &self.function,
                        &key,
                        session.window,
                        &mut session.pane,
                        decision,
                        &mut self.scratch,
                        &mut results,
                    );
                }
            }
            entry
                .list
                .retain(|s| !is_window_late(s.window, allowed_lateness, watermark));
            entry.armed = entry.next_due(allowed_lateness);
            match entry.armed {
                Some(next) => self.timers.push(next, key),
                None => {
                    self.sessions.remove(&key);
                }
            }
        }
        // Keys fire in the order their timers came up, a key's sessions at once: put the
        // firings in time order, as per-session timers would have them (Flink's).
        let firings = &mut results[firings_from..];
        if !firings.is_sorted_by_key(|r| r.ts) {
            firings.sort_unstable_by_key(|r| r.ts);
        }
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        for session in self.sessions.values_mut().flat_map(|k| &mut k.list) {
            session.checkpointed = true;
        }
        let mut sessions: Vec<(&K, Window, bool, &Pane<F::Acc>)> = Vec::new();
        for (key, key_sessions) in &self.sessions {
            for session in &key_sessions.list {
                sessions.push((key, session.window, !session.fire_pending, &session.pane));
            }
        }
        sessions.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        OperatorState::from_keyed(sessions, |s| s.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, window, fired, pane) in context.keyed_entries::<(K, Window, bool, Pane<F::Acc>)>()? {
            if let Some(timer) = pending_timer(window, &pane.trigger) {
                if !crate::bugs::is_active(crate::bugs::Bug::TimersNotSnapshotted) {
                    self.early_timers.insert((timer, key.clone(), window));
                }
            }
            let sessions = &mut self.sessions.entry(key).or_default().list;
            let at = sessions.partition_point(|s| s.window.start < window.start);
            sessions.insert(
                at,
                Session {
                    window,
                    pane,
                    checkpointed: true,
                    fire_pending: !fired,
                },
            );
        }
        // Each key's timer, set in time order (not the map's).
        let allowed_lateness = self.settings.allowed_lateness;
        let mut timers: Vec<(Timestamp, &K)> = Vec::new();
        for (key, k) in self.sessions.iter_mut() {
            let due = k.next_due(allowed_lateness);
            if crate::bugs::is_active(crate::bugs::Bug::TimersNotSnapshotted) {
                // The planted bug: the key believes it waits on a timer that is not there.
                k.armed = Some(Timestamp::MAX);
                continue;
            }
            k.armed = due;
            timers.extend(due.map(|due| (due, key)));
        }
        timers.sort_unstable();
        for (due, key) in timers {
            self.timers.push(due, key.clone());
        }
        // Merging relies on each key's sessions being disjoint (found by fuzz/snapshot_decode).
        for sessions in self.sessions.values() {
            if let Some(pair) = sessions
                .list
                .windows(2)
                .find(|pair| pair[0].window.end >= pair[1].window.start)
            {
                return Err(SnapshotError::Payload {
                    what: "session windows",
                    reason: format!(
                        "sessions {:?} and {:?} of one key overlap or touch",
                        pair[0].window, pair[1].window
                    ),
                });
            }
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        // Per session its state, per key the timer it waits on (the timers that lapsed are not
        // state).
        let sessions: usize = self.sessions.values().map(|k| k.list.len()).sum();
        sessions + self.sessions.len() + self.early_timers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows_of(assigner: WindowAssigner, ts: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let mut windows = Vec::new();
        assigner.assign(ts, &mut windows);
        windows.iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn tumbling_boundaries() {
        let tumbling = WindowAssigner::tumbling(10);
        // (ts, window): start is inclusive, end exclusive, negative times round down.
        let table = [
            (0, (0, 10)),
            (9, (0, 10)),
            (10, (10, 20)),
            (-1, (-10, 0)),
            (-10, (-10, 0)),
            (-11, (-20, -10)),
        ];
        for (ts, window) in table {
            assert_eq!(windows_of(tumbling, ts), vec![window], "ts {ts}");
        }
    }

    #[test]
    fn tumbling_with_offset() {
        let assigner = WindowAssigner::tumbling_with_offset(10, 3);
        let table = [(3, (3, 13)), (2, (-7, 3)), (12, (3, 13)), (13, (13, 23)), (-7, (-7, 3))];
        for (ts, window) in table {
            assert_eq!(windows_of(assigner, ts), vec![window], "ts {ts}");
        }
        let negative = WindowAssigner::tumbling_with_offset(10, -3);
        assert_eq!(windows_of(negative, 7), vec![(7, 17)]);
        assert_eq!(windows_of(negative, 6), vec![(-3, 7)]);
    }

    #[test]
    fn sliding_assigns_every_window_containing_ts() {
        let sliding = WindowAssigner::sliding(10, 5);
        assert_eq!(windows_of(sliding, 0), vec![(-5, 5), (0, 10)]);
        assert_eq!(windows_of(sliding, 4), vec![(-5, 5), (0, 10)]);
        assert_eq!(windows_of(sliding, 5), vec![(0, 10), (5, 15)]);
        assert_eq!(windows_of(sliding, -1), vec![(-10, 0), (-5, 5)]);
        let uneven = WindowAssigner::sliding(10, 3);
        for ts in -20..20 {
            let got = windows_of(uneven, ts);
            let expected: Vec<_> = (-40..40)
                .filter(|s: &i64| s.rem_euclid(3) == 0 && *s <= ts && ts < s + 10)
                .map(|s| (s, s + 10))
                .collect();
            assert_eq!(got, expected, "ts {ts}");
        }
    }

    #[test]
    fn session_window_is_ts_plus_gap() {
        assert_eq!(windows_of(WindowAssigner::session(30), -5), vec![(-5, 25)]);
    }

    type ClickSessions = SessionWindowOperator<(u8, i64), u8, fn(&(u8, i64)) -> u8, Aggregating<Count>>;

    /// Counts per `(key, session)` of a session operator with gap 10 and allowed lateness 5.
    fn sessions() -> ClickSessions {
        let settings = WindowSettings {
            allowed_lateness: 5,
            ..WindowSettings::default()
        };
        SessionWindowOperator::new(10, settings, |click: &(u8, i64)| click.0, Aggregating(Count))
    }

    fn fired(out: &mut Output) -> Vec<(Timestamp, u8, Window, u64)> {
        out.take::<Windowed<u8, u64>>(MAIN)
            .into_iter()
            .map(|r| (r.ts, r.value.key, r.value.window, r.value.value))
            .collect()
    }

    #[test]
    fn sessions_of_several_keys_fire_in_time_order_within_one_watermark() {
        // Key 1 has sessions ending at 15 and 65, key 2 one ending at 34 that grew from 25:
        // one timer per key, yet the results come in the order of the sessions' ends.
        let mut operator = sessions();
        let clicks = [(1u8, 5i64), (2, 15), (1, 55), (2, 24)];
        let batch = Batch::new(clicks.iter().map(|&(key, ts)| Record::new(ts, (key, ts))).collect());
        let mut out = Output::default();
        operator.handle_records(0, batch, &mut out);
        assert_eq!(operator.state_entries(), 3 + 2, "three sessions, one timer per key");
        operator.handle_watermark(100, &mut out);
        assert_eq!(
            fired(&mut out),
            vec![
                (14, 1, Window::new(5, 15), 1),
                (33, 2, Window::new(15, 34), 2),
                (64, 1, Window::new(55, 65), 1),
            ]
        );
        assert_eq!(operator.state_entries(), 0, "cleared at max_timestamp + 5");
    }

    #[test]
    fn a_session_fires_at_its_end_and_is_cleared_at_its_cleanup_time() {
        let mut operator = sessions();
        let mut out = Output::default();
        operator.handle_records(0, Batch::new(vec![Record::new(0, (7u8, 0i64))]), &mut out);
        operator.handle_watermark(8, &mut out);
        operator.handle_records(0, Batch::new(vec![Record::new(6, (7u8, 6i64))]), &mut out);
        operator.handle_watermark(14, &mut out);
        assert!(fired(&mut out).is_empty(), "grew to [0,16): its end is 15");
        operator.handle_watermark(15, &mut out);
        assert_eq!(fired(&mut out), vec![(15, 7, Window::new(0, 16), 2)]);
        assert_eq!(operator.state_entries(), 2, "kept for the allowed lateness");
        // A late record within the allowed lateness fires the session again at once.
        operator.handle_records(0, Batch::new(vec![Record::new(3, (7u8, 3i64))]), &mut out);
        assert_eq!(fired(&mut out), vec![(15, 7, Window::new(0, 16), 3)]);
        operator.handle_watermark(19, &mut out);
        assert_eq!(operator.state_entries(), 2, "clean-up at 20");
        operator.handle_watermark(20, &mut out);
        assert_eq!(operator.state_entries(), 0);
    }

    #[test]
    fn invalid_assigners_are_rejected() {
        assert!(WindowAssigner::tumbling(0).validate().is_err());
        assert!(WindowAssigner::tumbling(-5).validate().is_err());
        assert!(WindowAssigner::tumbling_with_offset(10, 10).validate().is_err());
        assert!(WindowAssigner::tumbling_with_offset(10, -10).validate().is_err());
        assert!(WindowAssigner::tumbling_with_offset(10, 9).validate().is_ok());
        assert!(WindowAssigner::sliding(10, 0).validate().is_err());
        assert!(WindowAssigner::sliding(0, 5).validate().is_err());
        assert!(WindowAssigner::session(0).validate().is_err());
        assert!(WindowAssigner::session(1).validate().is_ok());
    }
}
