//! Triggers: when a window's contents are emitted (Flink's `Trigger`, docs/semantics.md,
//! "Triggers and evictors").
//!
//! A trigger here is a value, not code: the window operators ask it what to do when a record
//! arrives, when one of its timers is reached and when the watermark reaches the window's
//! end. Its per-`(key, window)` state ([`TriggerState`]) lives beside the window's contents,
//! in the same snapshot entry, so it moves with its key group on a restore at another
//! parallelism. This module owns no timers: it says which timestamp to register.

use serde::{Deserialize, Serialize};

use super::assigner::Window;
use crate::element::Timestamp;

/// When a window fires (Flink's `EventTimeTrigger`, `ContinuousEventTimeTrigger`,
/// `CountTrigger`, and `PurgingTrigger` around any of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trigger {
    kind: TriggerKind,
    purging: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TriggerKind {
    EventTime,
    ContinuousEventTime { interval_ms: i64 },
    Count { count: u64 },
}

/// What a trigger decided for one `(key, window)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TriggerResult {
    pub(crate) fire: bool,
    /// Clear the window's contents after firing (a purging trigger): the next firing emits
    /// only what arrived since, a delta instead of an upsert.
    pub(crate) purge: bool,
}

/// A trigger's state for one `(key, window)`: what Flink keeps in the trigger's partitioned
/// state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TriggerState {
    /// Records since the last count firing (count trigger).
    pub(crate) count: u64,
    /// The next early firing (continuous event-time trigger); the window's max timestamp once
    /// the early firings have reached the window's end.
    pub(crate) next_fire: Option<Timestamp>,
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::event_time()
    }
}

impl Trigger {
    /// Fires once when the watermark reaches the window's end, and once per record that
    /// arrives after that within the allowed lateness (the default).
    pub fn event_time() -> Self {
        Trigger {
            kind: TriggerKind::EventTime,
            purging: false,
        }
    }

    /// Like [`event_time`](Self::event_time), and also early, every `interval_ms` of event
    /// time: at each multiple of the interval that the watermark passes while the window is
    /// open (Flink's `ContinuousEventTimeTrigger`).
    pub fn continuous_event_time(interval_ms: i64) -> Self {
        Trigger {
            kind: TriggerKind::ContinuousEventTime { interval_ms },
            purging: false,
        }
    }

    /// Fires every `count` records of a `(key, window)`, and never at the window's end (Flink's
    /// `CountTrigger`: records since the last firing are left unemitted when the window is
    /// cleared). Its firings depend on arrival order.
    pub fn count(count: u64) -> Self {
        Trigger {
            kind: TriggerKind::Count { count },
            purging: false,
        }
    }

    /// The same firings, each clearing the window's contents (Flink's `PurgingTrigger`).
    pub fn purging(self) -> Self {
        Trigger { purging: true, ..self }
    }

    /// Whether each firing clears the window's contents.
    pub fn is_purging(&self) -> bool {
        self.purging
    }

    /// Whether a record that arrives before its window's end never fires the window nor sets
    /// a timer (the event-time trigger's, purging or not): the operator may just add it.
    pub(crate) fn is_quiet_before_end(&self) -> bool {
        self.kind == TriggerKind::EventTime
    }

    /// Whether a merge of sessions registers the merged state's next firing again (Flink's
    /// `ContinuousEventTimeTrigger.onMerge`): one at or past the merged session's end, behind
    /// the watermark, fires the session once more at the next watermark.
    pub(crate) fn refires_on_merge(&self) -> bool {
        matches!(self.kind, TriggerKind::ContinuousEventTime { .. })
    }

    /// The features of the pipeline API this trigger is ([`crate::pipeline::Feature`]).
    pub(crate) fn features(&self) -> impl Iterator<Item = crate::pipeline::Feature> {
        use crate::pipeline::Feature;
        let kind = match self.kind {
            TriggerKind::EventTime => None,
            TriggerKind::ContinuousEventTime { .. } => Some(Feature::ContinuousTrigger),
            TriggerKind::Count { .. } => Some(Feature::CountTrigger),
        };
        kind.into_iter().chain(self.purging.then_some(Feature::PurgingTrigger))
    }

    /// Why this trigger cannot work, if it cannot (checked by the pipeline builder).
    pub fn validate(&self) -> Result<(), String> {
        match self.kind {
            TriggerKind::ContinuousEventTime { interval_ms } if interval_ms <= 0 => {
                Err(format!("trigger interval must be positive, got {interval_ms} ms"))
            }
            TriggerKind::Count { count: 0 } => Err("trigger count must be positive, got 0".to_string()),
            _ => Ok(()),
        }
    }

    fn result(&self, fire: bool) -> TriggerResult {
        TriggerResult {
            fire,
            purge: fire && self.purging,
        }
    }

    /// A record at `ts` was added to `window`. Returns the decision and an early-firing
    /// timer to register (always before the window's end; the end is the operator's own).
    pub(crate) fn on_element(
        &self,
        ts: Timestamp,
        window: Window,
        watermark: Timestamp,
        state: &mut TriggerState,
    ) -> (TriggerResult, Option<Timestamp>) {
        let ended = window.max_timestamp() <= watermark;
        match self.kind {
            // Past the window's end, within the allowed lateness: a late firing per record.
            TriggerKind::EventTime => (self.result(ended), None),
            TriggerKind::ContinuousEventTime { interval_ms } => {
                if ended {
                    return (self.result(true), None);
                }
                if state.next_fire.is_some() {
                    return (self.result(false), None);
                }
                // As Flink: the first early firing is the interval boundary after the record
                // (Java's `%`, which truncates toward zero, as Rust's does).
                let next = (ts - ts % interval_ms).saturating_add(interval_ms);
                (self.result(false), self.schedule(next, window, state))
            }
            TriggerKind::Count { count } => {
                state.count += 1;
                let fire = state.count >= count;
                if fire {
                    state.count = 0;
                }
                (self.result(fire), None)
            }
        }
    }

    /// The watermark reached `time`, an early-firing timer of `window`. Returns the decision
    /// and the next timer.
    pub(crate) fn on_timer(
        &self,
        time: Timestamp,
        window: Window,
        state: &mut TriggerState,
    ) -> (TriggerResult, Option<Timestamp>) {
        match self.kind {
            TriggerKind::ContinuousEventTime { interval_ms } if state.next_fire == Some(time) => (
                self.result(true),
                self.schedule(time.saturating_add(interval_ms), window, state),
            ),
            _ => (self.result(false), None),
        }
    }

    /// The watermark reached the window's max timestamp.
    pub(crate) fn on_window_end(&self) -> TriggerResult {
        self.result(!matches!(self.kind, TriggerKind::Count { .. }))
    }

    /// Records the next early firing, capped at the window's end; a timer only if it comes
    /// before the end (the end's firing is the operator's).
    fn schedule(&self, next: Timestamp, window: Window, state: &mut TriggerState) -> Option<Timestamp> {
        let next = next.min(window.max_timestamp());
        state.next_fire = Some(next);
        (next < window.max_timestamp()).then_some(next)
    }

    /// Two sessions merged (Flink's `onMerge`): counts add up, the earliest early firing
    /// stays.
    pub(crate) fn merge(state: &mut TriggerState, other: TriggerState) {
        state.count += other.count;
        state.next_fire = match (state.next_fire, other.next_fire) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuous_trigger_fires_at_interval_boundaries_until_the_window_end() {
        let trigger = Trigger::continuous_event_time(10);
        let window = Window::new(0, 35);
        let mut state = TriggerState::default();
        assert_eq!(
            trigger.on_element(3, window, -1, &mut state),
            (TriggerResult::default(), Some(10))
        );
        assert_eq!(
            trigger.on_element(12, window, -1, &mut state).1,
            None,
            "one timer at a time"
        );
        let fire = TriggerResult {
            fire: true,
            purge: false,
        };
        assert_eq!(trigger.on_timer(10, window, &mut state), (fire, Some(20)));
        assert_eq!(trigger.on_timer(20, window, &mut state), (fire, Some(30)));
        assert_eq!(
            trigger.on_timer(30, window, &mut state),
            (fire, None),
            "34 is the window end"
        );
        assert_eq!(state.next_fire, Some(34));
        assert_eq!(trigger.on_timer(25, window, &mut state).0, TriggerResult::default());
    }

    #[test]
    fn count_trigger_fires_every_n_and_not_at_the_end() {
        let trigger = Trigger::count(2).purging();
        let window = Window::new(0, 10);
        let mut state = TriggerState::default();
        assert!(!trigger.on_element(1, window, -1, &mut state).0.fire);
        assert_eq!(
            trigger.on_element(2, window, -1, &mut state).0,
            TriggerResult {
                fire: true,
                purge: true
            }
        );
        assert_eq!(state.count, 0);
        assert!(!trigger.on_window_end().fire);
    }
}
