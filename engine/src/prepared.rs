//! Two-phase commit with a database that keeps prepared transactions (PostgreSQL's
//! `PREPARE TRANSACTION`, XA): the sink's protocol, sans-IO (docs/live.md, "PostgreSQL").
//!
//! - [`PreparedTransactions`]: what the sink asks of the database — prepare a checkpoint's
//!   records under an id, commit or roll back a prepared id, list the prepared ids. The live
//!   runtime implements it over a PostgreSQL connection (`runtime/src/postgres.rs`); the simulator
//!   over `MemoryDatabase`, a model whose prepared transactions survive crashes and which
//!   injects failed prepares, lost replies and restarts.
//! - [`PreparedCommitSink`]: the protocol. At the barrier of checkpoint `n` it prepares the
//!   records since the last barrier as transaction `(n, sink task)`; when a checkpoint
//!   completes it commits every prepared transaction up to it. Its snapshot records the
//!   transactions prepared and not known to be committed. A failed prepare fails the task:
//!   its driver restarts the job (Flink's failover); a failed commit is retried.
//! - [`plan_recovery`]: the rule a restored (or fresh) sink applies before it writes: commit
//!   the prepared transactions the restored checkpoint recorded (its own and earlier ones),
//!   roll back every other prepared transaction of the job (later checkpoints', and any
//!   whose prepare never reported success).
//!
//! This module decides; it does no I/O itself: the database behind the trait does.

use std::collections::{BTreeMap, BTreeSet};

use crate::element::{Batch, CheckpointId, Data, Record};
use crate::graph::TaskInfo;
use crate::operator::{Operator, Output};
use crate::snapshot::{decode_payload, encode_payload, OperatorState, RestoreContext, SnapshotError};
use crate::testkit::bugs::{self, Bug};
use crate::transaction::{DatabaseError, PreparedTransactions, TransactionId};

/// What a sink task does with the prepared transactions it found, before it writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Prepared transactions to commit: the restored checkpoint recorded them.
    pub commit: Vec<TransactionId>,
    /// Prepared transactions to roll back: the restored checkpoint did not record them.
    pub rollback: Vec<TransactionId>,
}

/// The recovery rule: of `prepared` (this task's share of the job's prepared transactions),
/// commit those the restored checkpoint `recorded` as prepared — they belong to it or to an
/// earlier checkpoint, so they completed — and roll back the others, which belong to
/// checkpoints after it (their records will be produced again by the replay) or were never
/// reported prepared.
pub fn plan_recovery(recorded: &BTreeSet<TransactionId>, prepared: &[TransactionId]) -> RecoveryPlan {
    let mut plan = RecoveryPlan::default();
    for &id in prepared {
        if recorded.contains(&id) || bugs::is_active(Bug::CommitPreparedOfLaterCheckpoint) {
            plan.commit.push(id);
        } else {
            plan.rollback.push(id);
        }
    }
    plan
}

/// The sink of a two-phase-commit output whose transactions a database holds prepared.
///
/// A failed prepare or a failed recovery fails the sink task ([`PreparedTransactions::fail`]):
/// its driver restarts the job from the last completed checkpoint, as Flink fails over a
/// task whose pre-commit throws; the checkpoint in flight must not complete. A failed
/// `COMMIT PREPARED` is retried with the next completed checkpoint, or by the recovery.
pub struct PreparedCommitSink<T> {
    database: Box<dyn PreparedTransactions<T>>,
    subtask: usize,
    parallelism: usize,
    /// Records since the last barrier.
    open: Vec<Record<T>>,
    /// Prepared, not yet known to be committed (the snapshot: a restore commits them).
    pending: BTreeSet<TransactionId>,
    /// Whether the job's earlier prepared transactions of this task's share are decided.
    recovered: bool,
}

impl<T: Data> PreparedCommitSink<T> {
    /// The sink task `task` over its view of the database's prepared transactions.
    pub fn new(database: Box<dyn PreparedTransactions<T>>, task: &TaskInfo) -> Self {
        PreparedCommitSink {
            database,
            subtask: task.subtask,
            parallelism: task.parallelism,
            open: Vec::new(),
            pending: BTreeSet::new(),
            recovered: false,
        }
    }

    /// Decides the prepared transactions of this task's share of the job — old sink task
    /// `i`'s belong to task `i mod parallelism` — once, before anything is written.
    fn recover(&mut self) -> Result<(), DatabaseError> {
        if self.recovered {
            return Ok(());
        }
        let mine: Vec<TransactionId> = self
            .database
            .prepared()?
            .into_iter()
            .filter(|id| id.sink_task % self.parallelism == self.subtask)
            .collect();
        let plan = plan_recovery(&self.pending, &mine);
        for id in plan.commit {
            self.database.commit_prepared(id)?;
        }
        for id in plan.rollback {
            self.database.rollback_prepared(id)?;
        }
        // Recorded transactions no longer prepared were committed before (a lost reply).
        self.pending.clear();
        self.recovered = true;
        Ok(())
    }
}

impl<T: Data> Operator for PreparedCommitSink<T> {
    fn handle_records(&mut self, _input: usize, batch: Batch, _out: &mut Output) {
        self.open.extend(batch.into_records::<T>());
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId, _max_parallelism: usize) -> OperatorState {
        let records = std::mem::take(&mut self.open);
        let id = TransactionId {
            checkpoint,
            sink_task: self.subtask,
        };
        let prepared = self.recover().and_then(|()| match records.is_empty() {
            true => Ok(false),
            false => self.database.prepare(id, &records).map(|()| true),
        });
        match prepared {
            Ok(true) => {
                self.pending.insert(id);
            }
            Ok(false) => {}
            // The checkpoint will not complete: the job restarts from an earlier one.
            Err(error) => self.database.fail(error),
        }
        OperatorState {
            keyed: BTreeMap::new(),
            operator: encode_payload(&self.pending),
        }
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) {
        if let Err(error) = self.recover() {
            return self.database.fail(error);
        }
        let due: Vec<TransactionId> = self
            .pending
            .iter()
            .filter(|id| id.checkpoint <= checkpoint)
            .copied()
            .collect();
        for id in due {
            // Without an answer the transaction stays pending: committed again next time.
            if self.database.commit_prepared(id).is_ok() {
                self.pending.remove(&id);
            }
        }
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.parallelism = context.parallelism;
        for (old_subtask, state) in &context.previous {
            if old_subtask % context.parallelism == context.subtask {
                let pending: BTreeSet<TransactionId> = decode_payload(&state.operator, "prepared sink transactions")?;
                self.pending.extend(pending);
            }
        }
        self.recovered = false;
        if let Err(error) = self.recover() {
            self.database.fail(error);
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(checkpoint: CheckpointId, sink_task: usize) -> TransactionId {
        TransactionId { checkpoint, sink_task }
    }

    #[test]
    fn recovery_commits_what_the_checkpoint_recorded_and_rolls_back_the_rest() {
        let recorded: BTreeSet<TransactionId> = [id(3, 0), id(4, 0)].into();
        let plan = plan_recovery(&recorded, &[id(2, 0), id(4, 0), id(5, 0), id(6, 2)]);
        assert_eq!(plan.commit, vec![id(4, 0)]);
        assert_eq!(plan.rollback, vec![id(2, 0), id(5, 0), id(6, 2)]);
    }
}
