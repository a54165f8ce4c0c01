//! What a two-phase-commit sink needs of the system it writes to: transaction ids, the
//! committer that makes a transaction visible, and, for a database that keeps prepared
//! transactions, the prepare/commit/rollback verbs. Traits only: the sinks (`sink`,
//! `prepared`) drive them, the simulator's model and the live runtime's PostgreSQL
//! connection implement them.

use serde::{Deserialize, Serialize};

use crate::element::{CheckpointId, Record};
use crate::graph::TaskInfo;

/// Identifies a sink transaction: the checkpoint whose barrier closed it and the sink task
/// that staged it. Commits are idempotent per transaction id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransactionId {
    /// The checkpoint whose barrier closed the transaction.
    pub checkpoint: CheckpointId,
    /// The sink task (its subtask index) that staged it.
    pub sink_task: usize,
}

/// The external system behind a two-phase-commit sink.
pub trait Committer<T>: Clone + Send + 'static {
    /// Makes a staged transaction visible. May be called again for the same id (after a
    /// restore, or a lost notification): the second call must change nothing.
    fn commit(&mut self, transaction: TransactionId, records: Vec<Record<T>>);

    /// If the external system keeps prepared transactions (a database): sink task `task`'s
    /// view of them. The sink then prepares each checkpoint's records there at the barrier
    /// ([`PreparedCommitSink`](crate::PreparedCommitSink)) instead of staging them
    /// in its snapshot, and `commit` is not called. `None` (the default): staged.
    fn prepared_transactions(&self, _task: &TaskInfo) -> Option<Box<dyn PreparedTransactions<T>>> {
        None
    }
}

/// A database operation that did not succeed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
