//! Two-phase commit with a database that keeps prepared transactions (PostgreSQL's
//! `PREPARE TRANSACTION`, XA): the sink's protocol, sans-IO (docs/live.md, "PostgreSQL").
//!
//! - [`PreparedTransactions`]: what the sink asks of the database — prepare a checkpoint's
//!   records under an id, commit or roll back a prepared id, list the prepared ids. The live
//!   runtime implements it over a PostgreSQL connection (`src/postgres.rs`); the simulator
//!   over [`MemoryDatabase`], a model whose prepared transactions survive crashes and which
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

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::bugs::{self, Bug};
use crate::element::{Batch, CheckpointId, Data, Record};
use crate::graph::TaskInfo;
use crate::operator::{Operator, Output};
use crate::sink::{Committer, TransactionId};
use crate::snapshot::{decode_payload, encode_payload, OperatorState, RestoreContext, SnapshotError};

/// A database operation that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseError {
    /// The database answered with an error: the statement had no effect.
    #[error("the database refused: {0}")]
    Refused(String),
    /// No answer (connection lost, database restarting): the statement may or may not have
    /// taken effect.
    #[error("the database did not answer: {0}")]
    Unavailable(String),
}

/// The prepared transactions of one sink (one table) of one job, as the database keeps them.
pub trait PreparedTransactions<T>: Send + 'static {
    /// Writes `records` in a new transaction and prepares it as `id`.
    fn prepare(&mut self, id: TransactionId, records: &[Record<T>]) -> Result<(), DatabaseError>;
    /// Commits prepared transaction `id`; one that is not prepared (already committed) is
    /// not an error.
    fn commit_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError>;
    /// Rolls back prepared transaction `id`; one that is not prepared is not an error.
    fn rollback_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError>;
    /// Every transaction of this sink the database holds prepared, in order.
    fn prepared(&mut self) -> Result<Vec<TransactionId>, DatabaseError>;
    /// The sink task cannot go on (a prepare or its recovery failed): the driver must
    /// restart the job from its last completed checkpoint before the checkpoint in flight
    /// completes.
    fn fail(&mut self, error: DatabaseError);
}

/// What a sink task does with the prepared transactions it found, before it writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryPlan {
    pub commit: Vec<TransactionId>,
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

/// Builds a transactional sink node's operators over a [`MemoryDatabase`] (what
/// [`crate::JobGraph::use_database`] calls; the node's id names its table).
pub(crate) type DatabaseHook = Box<dyn Fn(&MemoryDatabase, usize) -> crate::graph::OperatorFactory + Send>;

pub(crate) fn database_hook<T: Data, C: Committer<T>>(committer: C) -> DatabaseHook {
    Box::new(move |database: &MemoryDatabase, table: usize| {
        let model = ModelTable {
            database: database.clone(),
            table,
            committer: committer.clone(),
        };
        Box::new(move |info: &TaskInfo| {
            Box::new(PreparedCommitSink::new(Box::new(model.clone()), info)) as Box<dyn Operator>
        })
    })
}

/// A model of a database with prepared transactions, shared by every sink of a simulated
/// job: prepared transactions survive crashes of the job and restarts of the database.
/// Committed transactions go to the sink's [`Committer`] (the simulator's commit log).
/// Faults are armed by the driver and hit the next operation.
#[derive(Clone, Default)]
pub struct MemoryDatabase {
    inner: Arc<Mutex<DatabaseState>>,
}

#[derive(Default)]
struct DatabaseState {
    /// Prepared transactions by `(table, id)`: their records, a `Vec<Record<T>>`.
    prepared: BTreeMap<(usize, TransactionId), Box<dyn Any + Send>>,
    fail_next_prepare: bool,
    lose_next_commit_reply: bool,
    /// After a restart: the next operation takes effect but its answer is lost, and this
    /// many operations in all get no answer.
    unanswered: u32,
    /// Whether the next unanswered operation still took effect (the restart came after it).
    restart_after_next: bool,
    /// A sink task failed ([`PreparedTransactions::fail`]): the job must restart.
    task_failed: Option<DatabaseError>,
}

impl std::fmt::Debug for MemoryDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryDatabase({:?})", self.prepared())
    }
}

impl MemoryDatabase {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `PREPARE TRANSACTION` is refused (nothing is prepared).
    pub fn fail_next_prepare(&self) {
        self.lock().fail_next_prepare = true;
    }

    /// The next `COMMIT PREPARED` commits, but its answer is lost.
    pub fn lose_next_commit_reply(&self) {
        self.lock().lose_next_commit_reply = true;
    }

    /// The database restarts just after executing the next statement: that statement takes
    /// effect, its answer and those of the `unanswered - 1` after it are lost. Prepared
    /// transactions survive (they are on disk).
    pub fn restart(&self, unanswered: u32) {
        let mut state = self.lock();
        state.unanswered = unanswered.max(1);
        state.restart_after_next = true;
    }

    /// Drops the faults armed and not hit yet: the database is healthy from now on.
    pub fn heal(&self) {
        let mut state = self.lock();
        state.fail_next_prepare = false;
        state.lose_next_commit_reply = false;
        state.unanswered = 0;
        state.restart_after_next = false;
    }

    /// Whether a sink task failed since the last call (the job must restart), and why.
    pub fn take_task_failure(&self) -> Option<DatabaseError> {
        self.lock().task_failed.take()
    }

    /// Every prepared transaction, by table.
    pub fn prepared(&self) -> Vec<(usize, TransactionId)> {
        self.lock().prepared.keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DatabaseState> {
        self.inner.lock().expect("memory database poisoned")
    }
}

impl DatabaseState {
    /// Whether the operation about to run gets no answer, and whether it still runs.
    fn unanswered(&mut self) -> Option<bool> {
        if self.unanswered == 0 {
            return None;
        }
        self.unanswered -= 1;
        Some(std::mem::take(&mut self.restart_after_next))
    }
}

const RESTARTING: &str = "the database system is restarting";

/// One table of a [`MemoryDatabase`], as a sink sees it.
#[derive(Clone)]
struct ModelTable<C> {
    database: MemoryDatabase,
    table: usize,
    committer: C,
}

impl<T: Data, C: Committer<T>> PreparedTransactions<T> for ModelTable<C> {
    fn prepare(&mut self, id: TransactionId, records: &[Record<T>]) -> Result<(), DatabaseError> {
        let mut state = self.database.lock();
        let unanswered = state.unanswered();
        if unanswered == Some(false) {
            return Err(DatabaseError::Unavailable(RESTARTING.into()));
        }
        if std::mem::take(&mut state.fail_next_prepare) {
            return Err(DatabaseError::Refused("PREPARE TRANSACTION failed".into()));
        }
        if state.prepared.contains_key(&(self.table, id)) {
            return Err(DatabaseError::Refused(format!(
                "transaction identifier {id:?} is already in use"
            )));
        }
        state.prepared.insert((self.table, id), Box::new(records.to_vec()));
        match unanswered {
            Some(_) => Err(DatabaseError::Unavailable(RESTARTING.into())),
            None => Ok(()),
        }
    }

    fn commit_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError> {
        let mut state = self.database.lock();
        let unanswered = state.unanswered();
        if unanswered == Some(false) {
            return Err(DatabaseError::Unavailable(RESTARTING.into()));
        }
        let lost = std::mem::take(&mut state.lose_next_commit_reply);
        if let Some(records) = state.prepared.remove(&(self.table, id)) {
            drop(state);
            let records = *records
                .downcast::<Vec<Record<T>>>()
                .expect("a table holds the records of one type");
            self.committer.commit(id, records);
        }
        if lost || unanswered.is_some() {
            return Err(DatabaseError::Unavailable("connection lost before the answer".into()));
        }
        Ok(())
    }

    fn rollback_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError> {
        let mut state = self.database.lock();
        let unanswered = state.unanswered();
        if unanswered == Some(false) {
            return Err(DatabaseError::Unavailable(RESTARTING.into()));
        }
        state.prepared.remove(&(self.table, id));
        match unanswered {
            Some(_) => Err(DatabaseError::Unavailable(RESTARTING.into())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, error: DatabaseError) {
        self.database.lock().task_failed.get_or_insert(error);
    }

    fn prepared(&mut self) -> Result<Vec<TransactionId>, DatabaseError> {
        let mut state = self.database.lock();
        if state.unanswered().is_some() {
            return Err(DatabaseError::Unavailable(RESTARTING.into()));
        }
        Ok(state
            .prepared
            .keys()
            .filter(|(table, _)| *table == self.table)
            .map(|(_, id)| *id)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::CommitLog;

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

    #[test]
    fn the_model_keeps_prepared_transactions_across_a_restart_and_commits_once() {
        let database = MemoryDatabase::new();
        let log: CommitLog<u32> = CommitLog::new();
        let mut table = ModelTable {
            database: database.clone(),
            table: 0,
            committer: log.clone(),
        };
        let records = vec![Record::new(1, 7u32)];
        table.prepare(id(1, 0), &records).unwrap();
        database.restart(2);
        // The restart came after the next statement: it took effect, its answer is lost.
        assert!(matches!(
            PreparedTransactions::<u32>::commit_prepared(&mut table, id(1, 0)),
            Err(DatabaseError::Unavailable(_))
        ));
        assert!(PreparedTransactions::<u32>::prepared(&mut table).is_err());
        assert_eq!(PreparedTransactions::<u32>::prepared(&mut table), Ok(vec![]));
        assert_eq!(log.records(), records);
        // Committing again is not an error and changes nothing.
        PreparedTransactions::<u32>::commit_prepared(&mut table, id(1, 0)).unwrap();
        assert_eq!(log.repeated_commits(), 0);
        database.fail_next_prepare();
        assert!(matches!(
            table.prepare(id(2, 0), &records),
            Err(DatabaseError::Refused(_))
        ));
        assert!(database.prepared().is_empty());
    }
}
