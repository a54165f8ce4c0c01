//! Late-output taps and input drops: what the differential oracle (`eddy-sim`) needs from a
//! job, off unless a driver turns it on.
//!
//! A tapped job records every record an operator sends to a late output, wired to a sink or
//! not, with the operator's watermark at that moment and the last checkpoint its task had
//! snapshotted: a driver that restores from checkpoint `n` keeps the records tapped before
//! each task's snapshot of `n` and discards the rest, as a two-phase-commit sink would. A job
//! with [`InputDrops`] removes exactly those records from the operators' inputs before the
//! operators see them: the reference run drops what the checked run sent to late outputs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::element::{CheckpointId, Timestamp};
use crate::graph::NodeId;
use crate::operator::{LATE, LATE_CHANGES};

/// One record an operator sent to a late output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateRecord {
    pub node: NodeId,
    /// The operator's logical input the record came in on (0; 1 for a join's table side).
    pub input: usize,
    pub ts: Timestamp,
    /// The value's encoding ([`encode_value`](crate::element::encode_value)).
    pub value: Vec<u8>,
    /// The record as `{:?}` prints it, for messages.
    pub debug: String,
    /// The operator's watermark when it sent the record to its late output.
    pub watermark: Timestamp,
    /// The last checkpoint the task had snapshotted or was restored from (0: none).
    pub after_checkpoint: CheckpointId,
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

type DropKey = (NodeId, usize, Timestamp, Vec<u8>);

/// Records to remove from operators' inputs, one occurrence per entry, shared by the tasks
/// of a job (any task of the operator may receive the record).
#[derive(Clone, Debug, Default)]
pub struct InputDrops {
    left: Arc<Mutex<BTreeMap<DropKey, usize>>>,
}

impl InputDrops {
    /// Drops one occurrence of each record, at the operator and input it was late at.
    pub fn new<'a>(records: impl IntoIterator<Item = &'a LateRecord>) -> Self {
        let mut left = BTreeMap::new();
        for r in records {
            *left.entry((r.node, r.input, r.ts, r.value.clone())).or_default() += 1;
        }
        InputDrops {
            left: Arc::new(Mutex::new(left)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.left.lock().expect("input drops poisoned").is_empty()
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

    /// The drops no record used up: `(node, input, ts, value, occurrences)`.
    pub fn unmatched(&self) -> Vec<(NodeId, usize, Timestamp, Vec<u8>, usize)> {
        let left = self.left.lock().expect("input drops poisoned");
        left.iter()
            .map(|((node, input, ts, value), n)| (*node, *input, *ts, value.clone(), *n))
            .collect()
    }
}
