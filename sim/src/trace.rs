//! The trace: one compact entry per step, folded into a 64-bit hash as it goes.
//!
//! Same seed and same binary ⇒ same entries ⇒ same hash. The entries themselves are kept only
//! when asked for (`--trace FILE` writes them as JSON lines).

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TraceEvent {
    /// The head of input channel `channel` of task `task` was delivered: a batch of `size`
    /// records, a watermark (`size` = its value), a barrier (`size` = checkpoint) or the end.
    Deliver {
        step: u64,
        task: usize,
        channel: usize,
        element: &'static str,
        size: i64,
    },
    /// Source task `task` read up to `max` records.
    Poll {
        step: u64,
        task: usize,
        max: usize,
    },
    /// The processing-time clock jumped to `now`.
    Jump {
        step: u64,
        now: i64,
    },
    Trigger {
        step: u64,
        checkpoint: u64,
    },
    Completed {
        step: u64,
        checkpoint: u64,
    },
    CheckpointFailed {
        step: u64,
        checkpoint: u64,
    },
    Notified {
        step: u64,
        checkpoint: u64,
    },
    NotificationLost {
        step: u64,
        checkpoint: u64,
    },
    Corrupted {
        step: u64,
        checkpoint: u64,
    },
    Crash {
        step: u64,
    },
    /// Recovery restored `checkpoint` (0: a fresh start).
    Restored {
        step: u64,
        checkpoint: u64,
    },
    Finished {
        step: u64,
    },
    /// The job runs at another parallelism from here on: `tasks` tasks in all.
    Rescaled {
        step: u64,
        tasks: u64,
    },
    /// A database fault was armed (`failed-prepare`, `lost-commit-reply`, `database-restart`).
    DatabaseFault {
        step: u64,
        kind: &'static str,
    },
    /// The digest of the committed output, in commit order.
    Output {
        digest: u64,
    },
}

impl TraceEvent {
    fn words(&self) -> [u64; 4] {
        match *self {
            TraceEvent::Deliver {
                step,
                task,
                channel,
                element,
                size,
            } => [
                1 | (element.len() as u64) << 8,
                step,
                (task as u64) << 32 | channel as u64,
                size as u64,
            ],
            TraceEvent::Poll { step, task, max } => [2, step, task as u64, max as u64],
            TraceEvent::Jump { step, now } => [3, step, now as u64, 0],
            TraceEvent::Trigger { step, checkpoint } => [4, step, checkpoint, 0],
            TraceEvent::Completed { step, checkpoint } => [5, step, checkpoint, 0],
            TraceEvent::CheckpointFailed { step, checkpoint } => [6, step, checkpoint, 0],
            TraceEvent::Notified { step, checkpoint } => [7, step, checkpoint, 0],
            TraceEvent::NotificationLost { step, checkpoint } => [8, step, checkpoint, 0],
            TraceEvent::Corrupted { step, checkpoint } => [9, step, checkpoint, 0],
            TraceEvent::Crash { step } => [10, step, 0, 0],
            TraceEvent::Restored { step, checkpoint } => [11, step, checkpoint, 0],
            TraceEvent::Finished { step } => [12, step, 0, 0],
            TraceEvent::Output { digest } => [13, digest, 0, 0],
            TraceEvent::Rescaled { step, tasks } => [14, step, tasks, 0],
            TraceEvent::DatabaseFault { step, kind } => [15, step, kind.len() as u64, 0],
        }
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// An odd 64-bit constant with well-spread bits (the golden ratio's).
const MIX_PRIME: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Debug)]
pub struct Trace {
    hash: u64,
    len: u64,
    events: Option<Vec<TraceEvent>>,
}

impl Trace {
    pub fn new(keep_events: bool) -> Self {
        Trace {
            hash: FNV_OFFSET,
            len: 0,
            events: keep_events.then(Vec::new),
        }
    }

    pub fn record(&mut self, event: TraceEvent) {
        // A word at a time (a multiply and a shift per word): the simulator records every
        // step, so a byte-wise hash cost as much as a small operator.
        for word in event.words() {
            self.hash = (self.hash ^ word).wrapping_mul(MIX_PRIME);
            self.hash ^= self.hash >> 29;
        }
        self.len += 1;
        if let Some(events) = &mut self.events {
            events.push(event);
        }
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kept entries (empty unless the trace was created to keep them).
    pub fn events(&self) -> &[TraceEvent] {
        self.events.as_deref().unwrap_or(&[])
    }
}
