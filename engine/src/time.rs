//! Event time: watermark generation at sources and watermark propagation through tasks.
//!
//! Rules (docs/semantics.md, "Watermarks"): a split's watermark is `max ts seen − B − 1`;
//! a source task's watermark is the minimum over its unfinished splits; an operator's
//! watermark is the minimum over its input channels; a watermark is forwarded only when it
//! advances and never goes backwards.
//!
//! Idleness (Flink's `withIdleness` and `WatermarkStatus`, docs/semantics.md "Idle
//! sources"): a split with nothing to read for the idle timeout stops holding its source's
//! watermark back; a source task whose every unfinished split is idle tells its channels so,
//! and an operator leaves idle channels out of the minimum until they deliver again.

use crate::element::Timestamp;

/// Before any record, a watermark promises nothing.
pub const NO_WATERMARK: Timestamp = Timestamp::MIN;
/// The watermark a bounded source sends at its end: every window and timer may fire.
pub const END_OF_TIME: Timestamp = Timestamp::MAX;

/// How a source derives watermarks from the timestamps it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkStrategy {
    /// `B`: how far (ms) a record may trail the largest timestamp seen and still be on time.
    pub out_of_orderness_ms: i64,
    /// How often (ms of processing time) a source emits its watermark if it advanced.
    pub interval_ms: i64,
    /// A split with nothing to read for this long (ms of processing time) is idle.
    pub idle_timeout_ms: Option<i64>,
}

impl WatermarkStrategy {
    /// Watermarks that trail the largest timestamp read by `out_of_orderness_ms` (and 1 ms),
    /// emitted every 200 ms of processing time; splits are never idle.
    pub fn bounded_out_of_orderness(out_of_orderness_ms: i64) -> Self {
        WatermarkStrategy {
            out_of_orderness_ms,
            interval_ms: 200,
            idle_timeout_ms: None,
        }
    }

    /// Emits the watermark every `interval_ms` of processing time instead.
    pub fn with_interval(mut self, interval_ms: i64) -> Self {
        self.interval_ms = interval_ms;
        self
    }

    /// Flink's `withIdleness`: a split that has had nothing to read for `timeout_ms` of
    /// processing time no longer holds the watermark back; it rejoins when it reads again
    /// (its records may then be late).
    pub fn with_idleness(mut self, timeout_ms: i64) -> Self {
        self.idle_timeout_ms = Some(timeout_ms);
        self
    }
}

/// What a source task announces at a periodic emit: its watermark, or that it is idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceWatermark {
    /// The source task's watermark.
    At(Timestamp),
    /// Every unfinished split of the task is idle.
    Idle,
}

impl SourceWatermark {
    /// The minimum over the splits that are neither finished nor idle; `Idle` if every
    /// unfinished split is idle; `END_OF_TIME` if none is unfinished. Each item is a split's
    /// watermark, or `None` if it is idle.
    pub fn of_splits(splits: impl IntoIterator<Item = Option<Timestamp>>) -> Self {
        let (mut min, mut idle) = (None::<Timestamp>, false);
        for split in splits {
            match split {
                Some(watermark) => min = Some(min.map_or(watermark, |m| m.min(watermark))),
                None => idle = true,
            }
        }
        match min {
            Some(watermark) => SourceWatermark::At(watermark),
            None if idle => SourceWatermark::Idle,
            None => SourceWatermark::At(END_OF_TIME),
        }
    }
}

/// A split's activity in processing time, for idleness. Checked at each periodic emit: a
/// split with records waiting is active; one without is idle once the timeout has passed
/// since a check last found it with records (or since its first check). Not snapshotted:
/// Flink does not checkpoint idleness either, and a restored split starts active.
#[derive(Clone, Copy, Debug, Default)]
pub struct SplitActivity {
    active_at: Option<Timestamp>,
}

impl SplitActivity {
    /// Whether the split is idle at processing time `now`; `waiting`: it has records to read.
    pub fn is_idle(&mut self, strategy: &WatermarkStrategy, waiting: bool, now: Timestamp) -> bool {
        let Some(timeout) = strategy.idle_timeout_ms else {
            return false;
        };
        if waiting {
            self.active_at = Some(now);
            return false;
        }
        now.saturating_sub(*self.active_at.get_or_insert(now)) >= timeout
    }
}

/// The watermark of one source split (partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitWatermark {
    max_ts: Option<Timestamp>,
}

impl SplitWatermark {
    /// A split that has read no record: no watermark yet.
    pub fn new() -> Self {
        SplitWatermark { max_ts: None }
    }

    /// The split read a record at `ts`.
    pub fn observe(&mut self, ts: Timestamp) {
        self.max_ts = Some(self.max_ts.map_or(ts, |max| max.max(ts)));
    }

    /// The split's watermark: the largest timestamp read minus `out_of_orderness_ms` minus 1
    /// ([`NO_WATERMARK`] before any record).
    pub fn current(&self, out_of_orderness_ms: i64) -> Timestamp {
        match self.max_ts {
            None => NO_WATERMARK,
            Some(max) => max.saturating_sub(out_of_orderness_ms).saturating_sub(1),
        }
    }
}

impl Default for SplitWatermark {
    fn default() -> Self {
        Self::new()
    }
}

/// Combines the watermarks of several inputs: the minimum, forwarded only when it advances
/// (Flink's `StatusWatermarkValve`). An idle input is left out of the minimum; when it
/// delivers again it rejoins the minimum only once its watermark has caught up with the
/// combined one (until then it is "unaligned"). When every unfinished input is idle, the
/// combined watermark moves up to the highest of theirs and the task itself is idle. A
/// finished input is left out too: the end of time comes when every input has finished
/// (Flink lets a finished input's end of time through when the others are idle:
/// docs/semantics.md, "Idle sources").
#[derive(Clone, Debug)]
pub struct WatermarkTracker {
    inputs: Vec<InputWatermark>,
    current: Timestamp,
    idle: bool,
}

#[derive(Clone, Copy, Debug)]
struct InputWatermark {
    watermark: Timestamp,
    finished: bool,
    idle: bool,
    /// Counted in the minimum: active, and not behind the combined watermark since it was
    /// last idle.
    aligned: bool,
}

/// What an input's status change did to the combined watermark and the task's status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusChange {
    /// The combined watermark, if it advanced.
    pub advanced: Option<Timestamp>,
    /// The task's own status, if it changed: `Some(true)` it became idle.
    pub idle: Option<bool>,
}

impl WatermarkTracker {
    /// A tracker of `inputs` inputs, none with a watermark yet.
    pub fn new(inputs: usize) -> Self {
        WatermarkTracker {
            inputs: vec![
                InputWatermark {
                    watermark: NO_WATERMARK,
                    finished: false,
                    idle: false,
                    aligned: true,
                };
                inputs
            ],
            current: NO_WATERMARK,
            idle: false,
        }
    }

    /// The combined watermark.
    pub fn current(&self) -> Timestamp {
        self.current
    }

    /// Whether `input` is idle with its watermark exactly the combined one: turning active
    /// now, it counts again at once (the edge of `mark_active`'s alignment rule).
    pub fn idle_at_combined(&self, input: usize) -> bool {
        let slot = &self.inputs[input];
        slot.idle && slot.watermark == self.current
    }

    /// Whether every input is idle (the task then is too).
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Records `watermark` for `input`; returns the combined watermark if it advanced.
    /// A watermark lower than the input's last one is ignored (it would move time back);
    /// `END_OF_TIME` comes only with the end of an input, which then has finished.
    /// The caller marks an idle input active first ([`WatermarkTracker::mark_active`]).
    pub fn update(&mut self, input: usize, watermark: Timestamp) -> Option<Timestamp> {
        let slot = &mut self.inputs[input];
        if watermark <= slot.watermark {
            return None;
        }
        slot.watermark = watermark;
        slot.finished = watermark == END_OF_TIME;
        if !slot.idle && watermark >= self.current {
            slot.aligned = true;
        }
        self.advance()
    }

    /// `input` is idle: it no longer holds the combined watermark back.
    pub fn mark_idle(&mut self, input: usize) -> StatusChange {
        let slot = &mut self.inputs[input];
        if slot.idle || slot.finished {
            return StatusChange::default();
        }
        slot.idle = true;
        slot.aligned = false;
        let open = self.inputs.iter().filter(|i| !i.finished);
        if open.clone().all(|i| i.idle) {
            // No input will advance: flush up to the highest open input's watermark.
            let highest = open.map(|i| i.watermark).max().unwrap_or(NO_WATERMARK);
            self.idle = true;
            let advanced = (highest > self.current).then(|| {
                self.current = highest;
                highest
            });
            return StatusChange {
                advanced,
                idle: Some(true),
            };
        }
        StatusChange {
            advanced: self.advance(),
            idle: None,
        }
    }

    /// `input` delivers again (a record, or a watermark, after it was idle).
    pub fn mark_active(&mut self, input: usize) -> StatusChange {
        let slot = &mut self.inputs[input];
        if !slot.idle {
            return StatusChange::default();
        }
        slot.idle = false;
        slot.aligned = slot.watermark >= self.current;
        let idle = std::mem::replace(&mut self.idle, false).then_some(false);
        StatusChange { advanced: None, idle }
    }

    fn advance(&mut self) -> Option<Timestamp> {
        let combined = if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::WatermarkMax) {
            self.inputs.iter().map(|i| i.watermark).max()?
        } else if self.inputs.iter().all(|i| i.finished) {
            END_OF_TIME
        } else {
            let counted = self.inputs.iter().filter(|i| i.aligned && !i.finished);
            counted.map(|i| i.watermark).min()?
        };
        if combined > self.current {
            self.current = combined;
            Some(combined)
        } else {
            None
        }
    }

    /// Restores the combined watermark (after a restore, time does not go back); every input
    /// starts active, as in Flink.
    pub fn restore(&mut self, watermark: Timestamp) {
        self.current = self.current.max(watermark);
        self.idle = false;
        for slot in &mut self.inputs {
            slot.watermark = slot.watermark.max(watermark);
            slot.idle = false;
            slot.aligned = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_watermark_trails_max_by_bound_plus_one() {
        let mut split = SplitWatermark::new();
        assert_eq!(split.current(5), NO_WATERMARK);
        split.observe(100);
        split.observe(90);
        assert_eq!(split.current(5), 94, "max 100 - B 5 - 1");
        split.observe(-3_000);
        assert_eq!(split.current(5), 94, "never goes back");
    }

    #[test]
    fn combined_watermark_is_min_over_inputs_and_monotonic() {
        let mut tracker = WatermarkTracker::new(2);
        assert_eq!(tracker.update(0, 10), None, "input 1 has no watermark yet");
        assert_eq!(tracker.update(1, 5), Some(5));
        assert_eq!(tracker.update(1, 20), Some(10), "min(10, 20)");
        assert_eq!(tracker.update(0, 8), None, "input 0 going back is ignored");
        assert_eq!(tracker.current(), 10);
        assert_eq!(tracker.update(0, 15), Some(15));
        assert_eq!(tracker.update(0, END_OF_TIME), Some(20));
        assert_eq!(tracker.update(1, END_OF_TIME), Some(END_OF_TIME));
    }

    #[test]
    fn an_idle_input_leaves_the_minimum_and_rejoins_once_it_catches_up() {
        let mut tracker = WatermarkTracker::new(2);
        assert_eq!(tracker.update(0, 10), None);
        assert_eq!(tracker.update(1, 5), Some(5));
        let change = tracker.mark_idle(1);
        assert_eq!(change.advanced, Some(10), "input 1 idle: input 0 alone counts");
        assert_eq!(change.idle, None, "input 0 is still active");
        assert_eq!(tracker.update(0, 30), Some(30));
        assert_eq!(tracker.mark_active(1), StatusChange::default());
        assert_eq!(
            tracker.update(0, 40),
            Some(40),
            "input 1 is behind: unaligned, not counted"
        );
        assert_eq!(tracker.update(1, 35), None, "still behind");
        assert_eq!(tracker.update(1, 45), None, "caught up: aligned, min(40, 45) = 40");
        assert_eq!(tracker.update(0, 50), Some(45), "and counted again");
    }

    #[test]
    fn when_every_input_is_idle_the_highest_watermark_is_flushed_and_the_task_is_idle() {
        let mut tracker = WatermarkTracker::new(2);
        tracker.update(0, 10);
        tracker.update(1, 20);
        assert_eq!(tracker.current(), 10);
        let change = tracker.mark_idle(1);
        assert_eq!(
            (change.advanced, change.idle),
            (None, None),
            "input 0 at 10 is the minimum"
        );
        let change = tracker.mark_idle(0);
        assert_eq!(change.advanced, Some(20), "Flink's valve flushes the highest input");
        assert_eq!(change.idle, Some(true));
        assert!(tracker.is_idle());
        assert_eq!(
            tracker.mark_idle(0),
            StatusChange::default(),
            "idle twice changes nothing"
        );
        assert_eq!(tracker.mark_active(0).idle, Some(false), "the task is active again");
        assert_eq!(tracker.update(0, 15), None, "below the combined watermark: never back");
    }

    #[test]
    fn a_split_is_idle_after_the_timeout_without_records_to_read() {
        let strategy = WatermarkStrategy::bounded_out_of_orderness(0).with_idleness(100);
        let mut activity = SplitActivity::default();
        assert!(!activity.is_idle(&strategy, true, 0));
        assert!(!activity.is_idle(&strategy, false, 99));
        assert!(activity.is_idle(&strategy, false, 100));
        assert!(!activity.is_idle(&strategy, true, 150), "records again: active");
        assert!(!activity.is_idle(&strategy, false, 200));
        let never = WatermarkStrategy::bounded_out_of_orderness(0);
        assert!(
            !SplitActivity::default().is_idle(&never, false, i64::MAX),
            "no timeout: never idle"
        );
    }

    #[test]
    fn a_source_is_idle_only_when_every_unfinished_split_is() {
        assert_eq!(
            SourceWatermark::of_splits([Some(5), None, Some(3)]),
            SourceWatermark::At(3)
        );
        assert_eq!(SourceWatermark::of_splits([None, None]), SourceWatermark::Idle);
        assert_eq!(SourceWatermark::of_splits([]), SourceWatermark::At(END_OF_TIME));
    }

    #[test]
    fn a_finished_input_does_not_carry_the_watermark_past_an_idle_one() {
        let mut tracker = WatermarkTracker::new(2);
        tracker.update(0, 10);
        tracker.update(1, 5);
        assert_eq!(tracker.mark_idle(1).advanced, Some(10));
        let finished = tracker.update(0, END_OF_TIME);
        assert_eq!(finished, None, "input 1 is idle, not finished: the end of time waits");
        assert_eq!(tracker.current(), 10);
        assert_eq!(tracker.mark_active(1), StatusChange::default());
        assert_eq!(tracker.update(1, 20), Some(20), "input 1 caught up: it alone counts");
        assert_eq!(tracker.update(1, END_OF_TIME), Some(END_OF_TIME), "both finished");
    }
}
