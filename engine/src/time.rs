//! Event time: watermark generation at sources and watermark propagation through tasks.
//!
//! Rules (docs/semantics.md, "Watermarks"): a split's watermark is `max ts seen − B − 1`;
//! a source task's watermark is the minimum over its unfinished splits; an operator's
//! watermark is the minimum over its input channels; a watermark is forwarded only when it
//! advances and never goes backwards.

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
}

impl WatermarkStrategy {
    pub fn bounded_out_of_orderness(out_of_orderness_ms: i64) -> Self {
        WatermarkStrategy {
            out_of_orderness_ms,
            interval_ms: 200,
        }
    }

    pub fn with_interval(mut self, interval_ms: i64) -> Self {
        self.interval_ms = interval_ms;
        self
    }
}

/// The watermark of one source split (partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitWatermark {
    max_ts: Option<Timestamp>,
}

impl SplitWatermark {
    pub fn new() -> Self {
        SplitWatermark { max_ts: None }
    }

    pub fn observe(&mut self, ts: Timestamp) {
        self.max_ts = Some(self.max_ts.map_or(ts, |max| max.max(ts)));
    }

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

/// Combines the watermarks of several inputs: the minimum, forwarded only when it advances.
#[derive(Clone, Debug)]
pub struct WatermarkTracker {
    inputs: Vec<Timestamp>,
    current: Timestamp,
}

impl WatermarkTracker {
    pub fn new(inputs: usize) -> Self {
        WatermarkTracker {
            inputs: vec![NO_WATERMARK; inputs],
            current: NO_WATERMARK,
        }
    }

    pub fn current(&self) -> Timestamp {
        self.current
    }

    /// Records `watermark` for `input`; returns the combined watermark if it advanced.
    /// A watermark lower than the input's last one is ignored (it would move time back).
    pub fn update(&mut self, input: usize, watermark: Timestamp) -> Option<Timestamp> {
        let slot = &mut self.inputs[input];
        if watermark <= *slot {
            return None;
        }
        *slot = watermark;
        let combined = if crate::bugs::is_active(crate::bugs::Bug::WatermarkMax) {
            self.inputs.iter().copied().max().unwrap_or(END_OF_TIME)
        } else {
            self.inputs.iter().copied().min().unwrap_or(END_OF_TIME)
        };
        if combined > self.current {
            self.current = combined;
            Some(combined)
        } else {
            None
        }
    }

    /// Restores the combined watermark (after a restore, time does not go back).
    pub fn restore(&mut self, watermark: Timestamp) {
        self.current = self.current.max(watermark);
        for slot in &mut self.inputs {
            *slot = (*slot).max(watermark);
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
}
