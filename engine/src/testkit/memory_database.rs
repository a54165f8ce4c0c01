//! A model of a database with prepared transactions (PostgreSQL's `PREPARE TRANSACTION`), for
//! the simulator: it keeps prepared transactions across crashes of the job and restarts of
//! the database, and injects failed prepares, lost replies and restarts. A job graph's
//! two-phase-commit sinks are rebuilt over it by [`MemoryDatabase::attach`].

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::element::{Data, Record};
use crate::graph::{JobGraph, NodeBody, OperatorFactory, TaskInfo};
use crate::operator::Operator;
use crate::prepared::PreparedCommitSink;
use crate::transaction::{Committer, DatabaseError, PreparedTransactions, TransactionId};

/// Builds a transactional sink node's operators over a [`MemoryDatabase`] (what
/// [`MemoryDatabase::attach`] calls; the node's id names its table).
pub(crate) type DatabaseHook = Box<dyn Fn(&MemoryDatabase, usize) -> OperatorFactory + Send>;

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
    /// Transactions whose `COMMIT PREPARED` got no answer (it may or may not have taken
    /// effect), until the sink commits them again.
    unanswered_commits: std::collections::BTreeSet<(usize, TransactionId)>,
    /// `COMMIT PREPARED`s run again after an unanswered one.
    retried_commits: u64,
}

impl std::fmt::Debug for MemoryDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemoryDatabase({:?})", self.prepared())
    }
}

impl MemoryDatabase {
    /// Makes every two-phase-commit sink of `graph` prepare its transactions in this
    /// database and commit them here; each sink node is one table, named by its node id.
    /// Returns how many sinks it changed.
    pub fn attach(&self, graph: &mut JobGraph) -> usize {
        let mut sinks = 0;
        for (id, node) in graph.nodes.iter_mut().enumerate() {
            if let Some(hook) = node.rebind.as_ref().and_then(|r| r.downcast_ref::<DatabaseHook>()) {
                node.body = NodeBody::Operator(hook(self, id));
                sinks += 1;
            }
        }
        sinks
    }

    /// An empty database with no fault armed.
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

    /// How many times a sink ran `COMMIT PREPARED` again for a transaction whose earlier
    /// commit got no answer (a lost reply, a restart): the edge where the commit is decided
    /// across a database failure.
    pub fn retried_commits(&self) -> u64 {
        self.lock().retried_commits
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
        if state.unanswered_commits.remove(&(self.table, id)) {
            state.retried_commits += 1;
        }
        let unanswered = state.unanswered();
        if unanswered == Some(false) {
            state.unanswered_commits.insert((self.table, id));
            return Err(DatabaseError::Unavailable(RESTARTING.into()));
        }
        let lost = std::mem::take(&mut state.lose_next_commit_reply);
        if lost || unanswered.is_some() {
            state.unanswered_commits.insert((self.table, id));
        }
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
    use crate::element::CheckpointId;
    use crate::sink::CommitLog;

    fn id(checkpoint: CheckpointId, sink_task: usize) -> TransactionId {
        TransactionId { checkpoint, sink_task }
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
