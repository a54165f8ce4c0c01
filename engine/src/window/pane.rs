//! A pane, the contents and trigger state of one `(key, window)`, and the steps both window
//! operators take on it: add a record, ask the trigger, act on its decision.

use serde::{Deserialize, Serialize};

use super::assigner::{LatenessRule, Window};
use super::function::WindowFunction;
use super::trigger::{Trigger, TriggerResult, TriggerState};
use crate::element::{Record, Timestamp};

/// What a `(key, window)` holds: its contents (none after a purge, or before the first
/// record) and its trigger's state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Pane<A> {
    pub(super) acc: Option<A>,
    pub(super) trigger: TriggerState,
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
pub(super) fn act<K, T, F: WindowFunction<K, T>>(
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
pub(super) fn add_to_pane<K, T, F: WindowFunction<K, T>>(
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
pub(super) fn add_to_contents<K, T, F: WindowFunction<K, T>>(
    function: &F,
    pane: &mut Pane<F::Acc>,
    record: &Record<T>,
) {
    let acc = pane.acc.get_or_insert_with(|| function.create());
    function.add(acc, record.ts, &record.value);
}

/// The early-firing timer a restored pane had pending (a continuous trigger's next firing
/// before the window's end).
pub(super) fn pending_timer(window: Window, trigger: &TriggerState) -> Option<Timestamp> {
    trigger.next_fire.filter(|&t| t < window.max_timestamp())
}

/// The window options every window operator takes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WindowSettings {
    pub(crate) allowed_lateness: i64,
    pub(crate) trigger: Trigger,
    pub(crate) lateness_rule: LatenessRule,
}
