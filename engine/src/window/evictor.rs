//! Evictors: which records a window's firing sees (Flink's `CountEvictor` and `TimeEvictor`,
//! docs/semantics.md, "Triggers and evictors").

use crate::element::Timestamp;

/// Removes records from a window before its function sees them, when it fires (Flink's
/// `CountEvictor` and `TimeEvictor`, evicting before the function). Evicted records are gone
/// from the window for later firings too. A window with an evictor keeps its records, not an
/// accumulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evictor {
    /// Keeps the last `keep` records, in arrival order.
    Count {
        /// How many records to keep.
        keep: usize,
    },
    /// Keeps the records with a timestamp within `keep_ms` of the window's latest record:
    /// evicts those with `ts <= max ts − keep_ms`.
    Time {
        /// How far behind the latest record a kept record may be.
        keep_ms: i64,
    },
}

impl Evictor {
    /// Keeps the last `keep` records.
    pub fn count(keep: usize) -> Self {
        Evictor::Count { keep }
    }

    /// Keeps the records within `keep_ms` of the window's latest one.
    pub fn time(keep_ms: i64) -> Self {
        Evictor::Time { keep_ms }
    }

    /// Why this evictor cannot work, if it cannot (checked by the pipeline builder).
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Evictor::Count { keep: 0 } => Err("evictor count must be positive, got 0".to_string()),
            Evictor::Time { keep_ms } if keep_ms < 0 => {
                Err(format!("evictor time must not be negative, got {keep_ms} ms"))
            }
            _ => Ok(()),
        }
    }

    /// Evicts from `records` (in arrival order).
    pub(crate) fn evict<T>(&self, records: &mut Vec<(Timestamp, T)>) {
        match *self {
            Evictor::Count { keep } => {
                let excess = records.len().saturating_sub(keep);
                records.drain(..excess);
            }
            Evictor::Time { keep_ms } => {
                let Some(latest) = records.iter().map(|r| r.0).max() else {
                    return;
                };
                let cutoff = latest.saturating_sub(keep_ms);
                records.retain(|r| r.0 > cutoff);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evictors_keep_the_last_records_or_the_recent_ones() {
        let mut records = vec![(5, 'a'), (1, 'b'), (9, 'c'), (7, 'd')];
        Evictor::count(2).evict(&mut records);
        assert_eq!(records, vec![(9, 'c'), (7, 'd')]);
        let mut records = vec![(5, 'a'), (1, 'b'), (9, 'c'), (7, 'd')];
        Evictor::time(4).evict(&mut records);
        assert_eq!(records, vec![(9, 'c'), (7, 'd')], "5 <= 9 - 4 is evicted");
    }
}
