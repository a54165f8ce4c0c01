//! The trace: one compact entry per step, folded into a 64-bit hash as it goes.
//!
//! Same seed and same binary ⇒ same entries ⇒ same hash. The entries themselves are kept only
//! when asked for (`--trace FILE` writes them as JSON lines).

use serde::Serialize;

/// One entry of a simulated run's trace: a step taken, or what happened at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum TraceEvent {
    /// The head of input channel `channel` of task `task` was delivered: a batch of `size`
    /// records, a watermark (`size` = its value), a barrier (`size` = checkpoint) or the end.
    Deliver {
        /// The step it happened at.
        step: u64,
        /// The receiving task.
        task: usize,
        /// Its input channel.
        channel: usize,
        /// What was delivered: `records`, `watermark`, `barrier`, `idle`, `active` or `end`.
        element: &'static str,
        /// The batch's length, the watermark, or the checkpoint (0 for the others).
        size: i64,
    },
    /// Source task `task` read up to `max` records.
    Poll {
        /// The step it happened at.
        step: u64,
        /// The source task.
        task: usize,
        /// The most records it could read.
        max: usize,
    },
    /// The processing-time clock jumped to `now`.
    Jump {
        /// The step it happened at.
        step: u64,
        /// The new processing time, in ms.
        now: i64,
    },
    /// The coordinator started `checkpoint` at the sources.
    Trigger {
        /// The step it happened at.
        step: u64,
        /// The checkpoint started.
        checkpoint: u64,
    },
    /// Every snapshot of `checkpoint` and its manifest were stored: it completed.
    Completed {
        /// The step it happened at.
        step: u64,
        /// The checkpoint completed.
        checkpoint: u64,
    },
    /// A store write failed, and `checkpoint` with it.
    CheckpointFailed {
        /// The step it happened at.
        step: u64,
        /// The checkpoint that failed.
        checkpoint: u64,
    },
    /// The tasks were told that `checkpoint` completed (sinks committed).
    Notified {
        /// The step it happened at.
        step: u64,
        /// The checkpoint completed.
        checkpoint: u64,
    },
    /// The notification that `checkpoint` completed was lost.
    NotificationLost {
        /// The step it happened at.
        step: u64,
        /// The checkpoint whose notification was lost.
        checkpoint: u64,
    },
    /// A stored object of `checkpoint` was damaged: a bit flip or a torn write.
    Corrupted {
        /// The step it happened at.
        step: u64,
        /// The checkpoint damaged.
        checkpoint: u64,
    },
    /// The job crashed: recovery follows.
    Crash {
        /// The step it happened at.
        step: u64,
    },
    /// Recovery restored `checkpoint` (0: a fresh start).
    Restored {
        /// The step it happened at.
        step: u64,
        /// The checkpoint restored.
        checkpoint: u64,
    },
    /// Every task ended and the final checkpoint's notification went through: the run is over.
    Finished {
        /// The step it happened at.
        step: u64,
    },
    /// The job runs at another parallelism from here on: `tasks` tasks in all.
    Rescaled {
        /// The step it happened at.
        step: u64,
        /// How many tasks the job has now.
        tasks: u64,
    },
    /// A database fault was armed (`failed-prepare`, `lost-commit-reply`, `database-restart`).
    DatabaseFault {
        /// The step it happened at.
        step: u64,
        /// Which fault.
        kind: &'static str,
    },
    /// The digest of the committed output, in commit order.
    Output {
        /// The digest (part of the trace hash, so that two runs with equal steps but different
        /// output differ).
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

/// A simulated run's trace: the hash of its entries, their number, and the entries if kept.
#[derive(Clone, Debug)]
pub struct Trace {
    hash: u64,
    len: u64,
    events: Option<Vec<TraceEvent>>,
}

impl Trace {
    /// An empty trace; with `keep_events` it keeps its entries, not only their hash.
    pub fn new(keep_events: bool) -> Self {
        Trace {
            hash: FNV_OFFSET,
            len: 0,
            events: keep_events.then(Vec::new),
        }
    }

    /// Appends `event`: folds it into the hash, and keeps it if entries are kept.
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

    /// The hash of every entry so far: same seed and binary, same hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// How many entries were recorded.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no entry was recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The kept entries (empty unless the trace was created to keep them).
    pub fn events(&self) -> &[TraceEvent] {
        self.events.as_deref().unwrap_or(&[])
    }
}
