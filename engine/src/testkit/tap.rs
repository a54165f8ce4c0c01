//! Late-output taps and input drops: what the differential oracle (`eddy-sim`) needs from a
//! job, off unless a driver turns it on.
//!
//! A tapped job records every record an operator sends to a late output, wired to a sink or
//! not, with the operator's watermark at that moment and the last checkpoint its task had
//! snapshotted: a driver that restores from checkpoint `n` keeps the records tapped before
//! each task's snapshot of `n` and discards the rest, as a two-phase-commit sink would. A job
//! with [`InputDrops`] removes exactly those records from the operators' inputs before the
//! operators see them: the reference run drops what the checked run sent to late outputs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::element::{CheckpointId, Timestamp};
use crate::graph::NodeId;
use crate::operator::{LATE, LATE_CHANGES};

/// One record an operator sent to a late output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateRecord {
    /// The operator's node.
    pub node: NodeId,
    /// The operator's logical input the record came in on (0; 1 for a join's table side).
    pub input: usize,
    /// The record's timestamp.
    pub ts: Timestamp,
    /// The value's encoding ([`encode_value`](crate::element::encode_value)).
    pub value: Vec<u8>,
    /// The record as `{:?}` prints it, for messages.
    pub debug: String,
    /// The operator's watermark when it sent the record to its late output.
    pub watermark: Timestamp,
    /// The last checkpoint the task had snapshotted or was restored from (0: none).
    pub after_checkpoint: CheckpointId,
    /// Not late: accepted behind the watermark ([`Output::emit_behind`](crate::Output::emit_behind)),
    /// to be replayed as of `watermark` instead of dropped.
    pub behind: bool,
}

/// The logical input whose late records an operator emits on `port`, if `port` is a late
/// output.
pub fn late_input(port: usize) -> Option<usize> {
    match port {
        LATE => Some(0),
        LATE_CHANGES => Some(1),
        _ => None,
    }
}

/// The late output of logical input `input` (the inverse of [`late_input`]).
pub(crate) fn late_port(input: usize) -> usize {
    match input {
        0 => LATE,
        _ => LATE_CHANGES,
    }
}

type DropKey = (NodeId, usize, Timestamp, Vec<u8>);
/// Per held record, its occurrences' watermarks and places in the checked run's order.
type Holds = BTreeMap<DropKey, VecDeque<(Timestamp, usize)>>;

/// Records to remove from operators' inputs, one occurrence per entry, and records to hold
/// back and replay as of a watermark (the behind ones), shared by the tasks of a job (any
/// task of the operator may receive the record).
#[derive(Clone, Debug, Default)]
pub struct InputDrops {
    left: Arc<Mutex<BTreeMap<DropKey, usize>>>,
    /// Per record, the watermarks its occurrences were accepted at and their places in the
    /// checked run's order, in arrival order.
    behind: Arc<Mutex<Holds>>,
}

impl InputDrops {
    /// Drops one occurrence of each late record, at the operator and input it was late at;
    /// holds back one occurrence of each behind record.
    pub fn new<'a>(records: impl IntoIterator<Item = &'a LateRecord>) -> Self {
        let mut left = BTreeMap::new();
        let mut behind = Holds::new();
        for (place, r) in records.into_iter().enumerate() {
            let key = (r.node, r.input, r.ts, r.value.clone());
            if r.behind {
                behind.entry(key).or_default().push_back((r.watermark, place));
            } else {
                *left.entry(key).or_default() += 1;
            }
        }
        InputDrops {
            left: Arc::new(Mutex::new(left)),
            behind: Arc::new(Mutex::new(behind)),
        }
    }

    /// Whether every drop and hold has been used up (or there were none).
    pub fn is_empty(&self) -> bool {
        self.left.lock().expect("input drops poisoned").is_empty()
            && self.behind.lock().expect("input drops poisoned").is_empty()
    }

    /// Whether a drop or a hold is left at `node`'s input `input`: a batch there needs looking
    /// at (record by record, encoded); elsewhere it goes through untouched, so that a
    /// reference run without late records costs what a plain batch run does.
    pub(crate) fn wants(&self, node: NodeId, input: usize) -> bool {
        let range = (node, input, Timestamp::MIN, Vec::new())..(node, input + 1, Timestamp::MIN, Vec::new());
        self.left
            .lock()
            .expect("input drops poisoned")
            .range(range.clone())
            .next()
            .is_some()
            || self
                .behind
                .lock()
                .expect("input drops poisoned")
                .range(range)
                .next()
                .is_some()
    }

    /// Whether to hold this record back; if so, the watermark to replay it at and its place
    /// in the checked run's order.
    pub(crate) fn take_behind(
        &self,
        node: NodeId,
        input: usize,
        ts: Timestamp,
        value: &[u8],
    ) -> Option<(Timestamp, usize)> {
        let mut behind = self.behind.lock().expect("input drops poisoned");
        if behind.is_empty() {
            return None;
        }
        let key = (node, input, ts, value.to_vec());
        let queue = behind.get_mut(&key)?;
        let watermark = queue.pop_front();
        if queue.is_empty() {
            behind.remove(&key);
        }
        watermark
    }

    /// Whether to drop this record; if so, one occurrence is used up.
    pub(crate) fn take(&self, node: NodeId, input: usize, ts: Timestamp, value: &[u8]) -> bool {
        let mut left = self.left.lock().expect("input drops poisoned");
        let key = (node, input, ts, value.to_vec());
        match left.get_mut(&key) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    left.remove(&key);
                }
                true
            }
            None => false,
        }
    }

    /// The drops and holds no record used up: `(node, input, ts, value, occurrences)`.
    pub fn unmatched(&self) -> Vec<(NodeId, usize, Timestamp, Vec<u8>, usize)> {
        let left = self.left.lock().expect("input drops poisoned");
        let behind = self.behind.lock().expect("input drops poisoned");
        left.iter()
            .map(|((node, input, ts, value), n)| (*node, *input, *ts, value.clone(), *n))
            .chain(
                behind
                    .iter()
                    .map(|((node, input, ts, value), q)| (*node, *input, *ts, value.clone(), q.len())),
            )
            .collect()
    }
}
