//! Window assigners and windows: which `[start, end)` intervals a timestamp belongs to, and
//! when a window is late (docs/semantics.md, "Windows"). Pure functions of time: no state.

use serde::{Deserialize, Serialize};

use crate::element::Timestamp;

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
    /// The first timestamp in the window.
    pub start: Timestamp,
    /// The first timestamp after the window.
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
    /// The window `[start, end)`; `start` must be before `end`.
    pub fn new(start: Timestamp, end: Timestamp) -> Self {
        debug_assert!(start < end, "empty window [{start}, {end})");
        Window { start, end }
    }

    /// The largest timestamp inside the window: the window fires at this watermark.
    pub fn max_timestamp(&self) -> Timestamp {
        self.end - 1
    }

    /// Whether `ts` is in the window.
    pub fn contains(&self, ts: Timestamp) -> bool {
        self.start <= ts && ts < self.end
    }
}

/// Assigns records to windows by their timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowAssigner {
    /// Windows of `size_ms` that do not overlap, one after another.
    Tumbling {
        /// The windows' length.
        size_ms: i64,
        /// Where the windows start: at `offset_ms` plus a multiple of `size_ms`.
        offset_ms: i64,
    },
    /// Windows of `size_ms` starting every `slide_ms`: a record is in each one that holds it.
    Sliding {
        /// The windows' length.
        size_ms: i64,
        /// How far apart the windows start.
        slide_ms: i64,
        /// Where the windows start: at `offset_ms` plus a multiple of `slide_ms`.
        offset_ms: i64,
    },
    /// A window per key that grows while records arrive less than `gap_ms` apart (windows merge).
    Session {
        /// How long after a record its session stays open.
        gap_ms: i64,
    },
}

impl WindowAssigner {
    /// Tumbling windows of `size_ms`, starting at multiples of it.
    pub fn tumbling(size_ms: i64) -> Self {
        WindowAssigner::Tumbling { size_ms, offset_ms: 0 }
    }

    /// Tumbling windows of `size_ms`, starting `offset_ms` after multiples of it.
    pub fn tumbling_with_offset(size_ms: i64, offset_ms: i64) -> Self {
        WindowAssigner::Tumbling { size_ms, offset_ms }
    }

    /// Sliding windows of `size_ms`, starting at multiples of `slide_ms`.
    pub fn sliding(size_ms: i64, slide_ms: i64) -> Self {
        WindowAssigner::Sliding {
            size_ms,
            slide_ms,
            offset_ms: 0,
        }
    }

    /// Sliding windows of `size_ms`, starting `offset_ms` after multiples of `slide_ms`.
    pub fn sliding_with_offset(size_ms: i64, slide_ms: i64, offset_ms: i64) -> Self {
        WindowAssigner::Sliding {
            size_ms,
            slide_ms,
            offset_ms,
        }
    }

    /// Session windows that close after a gap of `gap_ms` without records.
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
        if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::WindowsClosedInterval) {
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
                if ts == start && crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::WindowsClosedInterval) {
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
pub(super) fn window_start(ts: Timestamp, offset_ms: i64, period_ms: i64) -> Timestamp {
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
pub(super) fn is_window_late(window: Window, allowed_lateness: i64, watermark: Timestamp) -> bool {
    window.max_timestamp().saturating_add(allowed_lateness) <= watermark
}
