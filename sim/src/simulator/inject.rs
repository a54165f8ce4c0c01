//! Fault injection: whether this step crashes, jumps processing time, fails a store write or
//! arms database faults, and whether a completed checkpoint is damaged, crashes before its
//! notification or loses it. Each decision comes from the explicit schedule if the run has
//! one, else from the `Faults` decision stream within the run's budgets, and every fault
//! injected is recorded (`injected`) so that it replays. The crash itself (and the restore)
//! is `restore`'s.

use super::options::FaultEvent;
use super::state::Simulation;
use crate::coverage::Moment;
use crate::decide::Decisions;
use crate::faults::FaultKind;
use crate::seed::Concern;
use crate::trace::TraceEvent;

use eddy_engine::{CheckpointId, ObjectKey};

impl<D: Decisions> Simulation<'_, D> {
    fn scheduled(&self, wanted: impl Fn(&FaultEvent) -> bool) -> Option<FaultEvent> {
        self.fault_schedule.as_ref()?.iter().find(|f| wanted(f)).cloned()
    }

    pub(super) fn decide_crash(&mut self) -> bool {
        let step = self.step;
        let (pending, acked) = (self.coordinator.pending(), self.coordinator.acknowledged());
        let crash = match &self.fault_schedule {
            Some(_) => self
                .scheduled(|f| match *f {
                    FaultEvent::Crash { step: s } => s == step,
                    FaultEvent::CrashMidCheckpoint {
                        checkpoint,
                        acknowledged,
                    } => pending == Some(checkpoint) && acked >= acknowledged,
                    _ => false,
                })
                .is_some(),
            None if self.crashes_left > 0 => {
                let in_flight = self.coordinator.pending().is_some();
                let chance = if in_flight && self.on(FaultKind::CrashMidCheckpoint) {
                    0.02
                } else if self.on(FaultKind::Crash) {
                    0.002
                } else {
                    0.0
                };
                self.decisions.chance(Concern::Faults, chance)
            }
            None => false,
        };
        if crash {
            self.injected.push(FaultEvent::Crash { step });
        }
        crash
    }

    pub(super) fn decide_jump(&mut self) -> Option<i64> {
        let step = self.step;
        match &self.fault_schedule {
            Some(_) => match self.scheduled(|f| matches!(f, FaultEvent::Jump { step: s, .. } if *s == step)) {
                Some(FaultEvent::Jump { ms, .. }) => Some(ms),
                _ => None,
            },
            None if self.on(FaultKind::ProcessingTimeJump) && self.decisions.chance(Concern::Faults, 0.003) => {
                Some(self.decisions.below(Concern::Faults, 100..5_000i64))
            }
            None => None,
        }
    }

    pub(super) fn decide_failed_write(&mut self) -> bool {
        let step = self.step;
        match &self.fault_schedule {
            Some(_) => self.scheduled(|f| *f == FaultEvent::FailedWrite { step }).is_some(),
            None => {
                self.on(FaultKind::FailedWrite)
                    && self.coordinator.pending().is_some()
                    && self.decisions.chance(Concern::Faults, 0.01)
            }
        }
    }

    /// Arms the database faults of this step on the database model, if the job has one.
    pub(super) fn decide_database_faults(&mut self) {
        let Some(database) = self.database.clone() else {
            return;
        };
        let step = self.step;
        let faults: Vec<FaultEvent> = match &self.fault_schedule {
            Some(schedule) => schedule
                .iter()
                .filter(|f| match f {
                    FaultEvent::FailedPrepare { step: s }
                    | FaultEvent::LostCommitReply { step: s }
                    | FaultEvent::DatabaseRestart { step: s, .. } => *s == step,
                    _ => false,
                })
                .cloned()
                .collect(),
            None if self.database_faults_left == 0 => Vec::new(),
            None => {
                let mut faults = Vec::new();
                let in_flight = self.coordinator.pending().is_some();
                if self.on(FaultKind::FailedPrepare) && in_flight && self.decisions.chance(Concern::Faults, 0.005) {
                    faults.push(FaultEvent::FailedPrepare { step });
                }
                if self.on(FaultKind::LostCommitReply) && self.decisions.chance(Concern::Faults, 0.005) {
                    faults.push(FaultEvent::LostCommitReply { step });
                }
                if self.on(FaultKind::DatabaseRestart) && self.decisions.chance(Concern::Faults, 0.002) {
                    let unanswered = self.decisions.within(Concern::Faults, 1..=4u32);
                    faults.push(FaultEvent::DatabaseRestart { step, unanswered });
                }
                self.database_faults_left = self.database_faults_left.saturating_sub(faults.len() as u64);
                faults
            }
        };
        for fault in faults {
            let kind = match &fault {
                FaultEvent::FailedPrepare { .. } => {
                    database.fail_next_prepare();
                    "failed-prepare"
                }
                FaultEvent::LostCommitReply { .. } => {
                    database.lose_next_commit_reply();
                    "lost-commit-reply"
                }
                FaultEvent::DatabaseRestart { unanswered, .. } => {
                    database.restart(*unanswered);
                    "database-restart"
                }
                _ => unreachable!("only database faults are armed here"),
            };
            self.trace.record(TraceEvent::DatabaseFault { step, kind });
            self.injected.push(fault);
        }
    }

    /// Tells the tasks `checkpoint` completed, unless a fault intervenes; true if told.
    pub(super) fn notify_or_fault(&mut self, checkpoint: CheckpointId) -> bool {
        let (corrupt, crash, lost) = match &self.fault_schedule {
            Some(_) => (
                self.scheduled(|f| matches!(f, FaultEvent::Corrupt { checkpoint: c, .. } if *c == checkpoint)),
                self.scheduled(|f| *f == FaultEvent::CrashBeforeCommit { checkpoint })
                    .is_some(),
                self.scheduled(|f| *f == FaultEvent::LostNotification { checkpoint })
                    .is_some(),
            ),
            None => {
                let corrupt = (self.on(FaultKind::CorruptSnapshot) && self.decisions.chance(Concern::Faults, 0.15))
                    .then(|| self.random_corruption(checkpoint));
                let crash = corrupt.is_none()
                    && self.on(FaultKind::CrashBeforeCommit)
                    && self.crashes_left > 0
                    && self.decisions.chance(Concern::Faults, 0.15);
                let lost = corrupt.is_none()
                    && !crash
                    && self.on(FaultKind::LostNotification)
                    && self.decisions.chance(Concern::Faults, 0.15);
                (corrupt, crash, lost)
            }
        };
        if let Some(corruption) = corrupt {
            self.corrupt(corruption);
            return false;
        }
        if crash {
            self.injected.push(FaultEvent::CrashBeforeCommit { checkpoint });
            self.moments.add(Moment::CrashBeforeNotification, 1);
            self.crash();
            return false;
        }
        if lost {
            self.injected.push(FaultEvent::LostNotification { checkpoint });
            self.stats.lost_notifications += 1;
            self.trace.record(TraceEvent::NotificationLost {
                step: self.step,
                checkpoint,
            });
            return false;
        }
        self.job.notify_checkpoint_complete(checkpoint);
        self.notified.insert(checkpoint);
        self.late_firings_committed = self.job.metrics().events.late_firings;
        // Best effort: a memory store lists its checkpoints; one left behind costs space only.
        let _ = self.coordinator.notified(checkpoint, &mut self.store);
        self.trace.record(TraceEvent::Notified {
            step: self.step,
            checkpoint,
        });
        true
    }

    fn random_corruption(&mut self, checkpoint: CheckpointId) -> FaultEvent {
        let objects = self
            .store
            .keys()
            .into_iter()
            .filter(|k| k.checkpoint() == checkpoint)
            .count();
        let object = self.decisions.below(Concern::Faults, 0..objects.max(1));
        let (byte, xor, truncate) = if self.decisions.chance(Concern::Faults, 0.5) {
            (
                self.decisions.below(Concern::Faults, 0..4096usize),
                self.decisions.within(Concern::Faults, 1..=255u8),
                None,
            )
        } else {
            (0, 0, Some(self.decisions.below(Concern::Faults, 0..64usize)))
        };
        FaultEvent::Corrupt {
            checkpoint,
            object,
            byte,
            xor,
            truncate,
        }
    }

    /// Damages one stored object of a checkpoint: a bit flip or a torn (truncated) write.
    fn corrupt(&mut self, corruption: FaultEvent) {
        let FaultEvent::Corrupt {
            checkpoint,
            object,
            byte,
            xor,
            truncate,
        } = corruption
        else {
            unreachable!("only corruptions are applied here")
        };
        let keys: Vec<ObjectKey> = self
            .store
            .keys()
            .into_iter()
            .filter(|k| k.checkpoint() == checkpoint)
            .collect();
        if let Some(&key) = keys.get(object % keys.len().max(1)) {
            match truncate {
                Some(len) => self.store.truncate(key, len),
                None => self.store.corrupt(key, byte, xor),
            };
            self.injected.push(corruption);
            self.stats.corrupted += 1;
            self.trace.record(TraceEvent::Corrupted {
                step: self.step,
                checkpoint,
            });
        }
    }
}
