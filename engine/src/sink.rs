//! Sinks: where results leave the dataflow.
//!
//! - [`Sink`]: receives records as they arrive. A plain sink ([`CollectSink`]) is for tests
//!   of fault-free runs; after a restore it would see replayed records again. An idempotent
//!   upsert sink ([`UpsertSink`]) is exactly-once for final values.
//! - [`Committer`] behind a two-phase-commit sink: records are staged per checkpoint and made
//!   visible only once that checkpoint completed (docs/snapshots.md). [`CommitLog`] is the
//!   test committer that records exactly what was committed; [`Table`] applies a changelog
//!   to a table by primary key (upsert, or materialised with its retractions checked).

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use crate::changelog::{Row, RowKind};
use crate::element::{Batch, CheckpointId, Data, Record, Timestamp};
use crate::operator::{Operator, Output};
use crate::snapshot::{decode_payload, encode_after, OperatorState, RestoreContext, SnapshotError};
use crate::testkit::bugs::{self, Bug};
use crate::transaction::{Committer, TransactionId};

/// Receives the records of one sink task. Cloned once per parallel sink task.
pub trait Sink<T>: Clone + Send + 'static {
    /// Takes a batch of records, in the order the sink task received them.
    fn write(&mut self, records: Vec<Record<T>>);
    /// The sink task's watermark advanced (after the records it covers were written).
    fn write_watermark(&mut self, _watermark: Timestamp) {}
    /// Every input ended.
    fn finish(&mut self) {}
}

/// What a [`CollectSink`] saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Collected<T> {
    /// A record written.
    Record(Record<T>),
    /// The sink task's watermark advanced to this.
    Watermark(Timestamp),
}

/// Collects everything written, across all its parallel tasks, for inspection after a run.
#[derive(Debug)]
pub struct CollectSink<T> {
    events: Arc<Mutex<Vec<Collected<T>>>>,
}

impl<T> Clone for CollectSink<T> {
    fn clone(&self) -> Self {
        CollectSink {
            events: Arc::clone(&self.events),
        }
    }
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        CollectSink {
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Clone> CollectSink<T> {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// The records written so far, in the order the sink tasks received them.
    pub fn records(&self) -> Vec<Record<T>> {
        let events = self.events.lock().expect("collect sink poisoned");
        events
            .iter()
            .filter_map(|e| match e {
                Collected::Record(record) => Some(record.clone()),
                Collected::Watermark(_) => None,
            })
            .collect()
    }

    /// Records and watermarks interleaved as the sink saw them: shows when results fired.
    pub fn timeline(&self) -> Vec<Collected<T>> {
        self.events.lock().expect("collect sink poisoned").clone()
    }

    /// The values of the records written so far, in order.
    pub fn values(&self) -> Vec<T> {
        self.records().into_iter().map(|r| r.value).collect()
    }
}

impl<T: Data> Sink<T> for CollectSink<T> {
    fn write(&mut self, records: Vec<Record<T>>) {
        let mut events = self.events.lock().expect("collect sink poisoned");
        events.extend(records.into_iter().map(Collected::Record));
    }

    fn write_watermark(&mut self, watermark: Timestamp) {
        let mut events = self.events.lock().expect("collect sink poisoned");
        events.push(Collected::Watermark(watermark));
    }
}

pub(crate) struct SinkOperator<T, S> {
    pub(crate) sink: S,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<T: Data, S: Sink<T>> Operator for SinkOperator<T, S> {
    fn handle_records(&mut self, _input: usize, batch: Batch, _out: &mut Output) {
        self.sink.write(batch.into_records::<T>());
    }

    fn handle_watermark(&mut self, watermark: Timestamp, _out: &mut Output) {
        self.sink.write_watermark(watermark);
    }

    fn handle_end_of_input(&mut self, _out: &mut Output) {
        self.sink.finish();
    }
    crate::stateless!();
}

/// Stages records per checkpoint and commits them when the checkpoint completes.
pub(crate) struct TwoPhaseCommitSink<T, C> {
    committer: C,
    subtask: usize,
    /// Records since the last barrier: lost (aborted) if the job restores.
    open: Vec<Record<T>>,
    /// Closed at a barrier, part of the snapshot, committed on completion or restore.
    staged: BTreeMap<TransactionId, Vec<Record<T>>>,
    /// The length of the last snapshot's encoding: the next is sized like it.
    encoded_len: usize,
    /// Each staged transaction's entry `(id, records)` as the snapshot encodes it: a staged
    /// transaction never changes, so each checkpoint encodes only the one it closed (while
    /// checkpoints fail, the staged ones pile up and each snapshot repeated them all).
    encoded: BTreeMap<TransactionId, Vec<u8>>,
}

impl<T, C> TwoPhaseCommitSink<T, C> {
    pub(crate) fn new(committer: C, subtask: usize) -> Self {
        TwoPhaseCommitSink {
            committer,
            subtask,
            open: Vec::new(),
            staged: BTreeMap::new(),
            encoded_len: 0,
            encoded: BTreeMap::new(),
        }
    }
}

impl<T: Data, C: Committer<T>> Operator for TwoPhaseCommitSink<T, C> {
    fn handle_records(&mut self, _input: usize, batch: Batch, _out: &mut Output) {
        if bugs::is_active(Bug::SinkWritesOnReceipt) {
            let id = TransactionId {
                checkpoint: (1 << 62) + bugs::next_number(),
                sink_task: self.subtask,
            };
            return self.committer.commit(id, batch.into_records::<T>());
        }
        self.open.extend(batch.into_records::<T>());
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId, _max_parallelism: usize) -> OperatorState {
        // Pre-commit: the open transaction closes at the barrier and becomes durable state.
        let records = std::mem::take(&mut self.open);
        if !records.is_empty() {
            let id = TransactionId {
                checkpoint,
                sink_task: self.subtask,
            };
            if bugs::is_active(Bug::CommitAtBarrier) {
                self.committer.commit(id, records);
            } else {
                self.staged.insert(id, records);
            }
        }
        // The map's encoding: its length, then each entry (as `encode_after(&self.staged)`).
        self.encoded.retain(|id, _| self.staged.contains_key(id));
        for (id, records) in &self.staged {
            self.encoded
                .entry(*id)
                .or_insert_with(|| encode_after(Vec::new(), &(id, records)));
        }
        let mut operator = encode_after(Vec::with_capacity(self.encoded_len), &(self.staged.len() as u64));
        for entry in self.encoded.values() {
            operator.extend_from_slice(entry);
        }
        self.encoded_len = operator.len();
        OperatorState {
            keyed: BTreeMap::new(),
            operator,
        }
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) {
        // Also commits earlier transactions whose notification was lost.
        let later = self.staged.split_off(&TransactionId {
            checkpoint: checkpoint + 1,
            sink_task: 0,
        });
        for (id, records) in std::mem::replace(&mut self.staged, later) {
            self.committer.commit(id, records);
        }
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        // The restored checkpoint completed, so everything staged in it may be committed;
        // old sink task j's transactions are finished by new task j mod parallelism.
        for (old_subtask, state) in &context.previous {
            if old_subtask % context.parallelism == context.subtask {
                let staged: BTreeMap<TransactionId, Vec<Record<T>>> =
                    decode_payload(&state.operator, "staged sink transactions")?;
                for (id, records) in staged {
                    self.committer.commit(id, records);
                }
            }
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        self.staged.len()
    }
}

#[derive(Debug)]
struct CommitLogInner<T> {
    committed: BTreeMap<TransactionId, Vec<Record<T>>>,
    repeated_commits: u64,
}

/// A committer for tests: records every transaction committed, once, and counts repeats.
#[derive(Debug)]
pub struct CommitLog<T> {
    inner: Arc<Mutex<CommitLogInner<T>>>,
}

impl<T> Clone for CommitLog<T> {
    fn clone(&self) -> Self {
        CommitLog {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for CommitLog<T> {
    fn default() -> Self {
        CommitLog {
            inner: Arc::new(Mutex::new(CommitLogInner {
                committed: BTreeMap::new(),
                repeated_commits: 0,
            })),
        }
    }
}

impl<T: Clone + PartialEq + std::fmt::Debug> CommitLog<T> {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every committed record, by transaction.
    pub fn records(&self) -> Vec<Record<T>> {
        let inner = self.inner.lock().expect("commit log poisoned");
        inner.committed.values().flatten().cloned().collect()
    }

    /// Calls `f` with every committed transaction and its records, in transaction order,
    /// without copying them.
    pub fn for_each_transaction(&self, mut f: impl FnMut(TransactionId, &[Record<T>])) {
        let inner = self.inner.lock().expect("commit log poisoned");
        for (id, records) in &inner.committed {
            f(*id, records);
        }
    }

    /// The ids of the committed transactions, in order.
    pub fn transactions(&self) -> Vec<TransactionId> {
        self.inner
            .lock()
            .expect("commit log poisoned")
            .committed
            .keys()
            .copied()
            .collect()
    }

    /// How many commits repeated an already committed transaction (and were ignored).
    pub fn repeated_commits(&self) -> u64 {
        self.inner.lock().expect("commit log poisoned").repeated_commits
    }
}

impl<T: Data + PartialEq> Committer<T> for CommitLog<T> {
    fn commit(&mut self, transaction: TransactionId, records: Vec<Record<T>>) {
        let mut inner = self.inner.lock().expect("commit log poisoned");
        match inner.committed.get(&transaction) {
            Some(previous) => {
                assert_eq!(
                    previous, &records,
                    "transaction {transaction:?} committed twice with different records"
                );
                inner.repeated_commits += 1;
            }
            None => {
                inner.committed.insert(transaction, records);
            }
        }
    }
}

/// An idempotent upsert sink: the latest record per key wins, so replays after a restore
/// rewrite the same values.
pub struct UpsertSink<T, K, F> {
    key_of: F,
    table: Arc<Mutex<BTreeMap<K, Record<T>>>>,
}

impl<T, K, F: Clone> Clone for UpsertSink<T, K, F> {
    fn clone(&self) -> Self {
        UpsertSink {
            key_of: self.key_of.clone(),
            table: Arc::clone(&self.table),
        }
    }
}

impl<T: Clone, K: Ord + Clone, F: Fn(&T) -> K> UpsertSink<T, K, F> {
    /// An empty table keyed by `key_of` of each record's value.
    pub fn new(key_of: F) -> Self {
        UpsertSink {
            key_of,
            table: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The current table, by key.
    pub fn table(&self) -> BTreeMap<K, Record<T>> {
        self.table.lock().expect("upsert sink poisoned").clone()
    }
}

impl<T: Data, K: Ord + Clone + Send + 'static, F: Fn(&T) -> K + Clone + Send + 'static> Sink<T>
    for UpsertSink<T, K, F>
{
    fn write(&mut self, records: Vec<Record<T>>) {
        let mut table = self.table.lock().expect("upsert sink poisoned");
        for record in records {
            table.insert((self.key_of)(&record.value), record);
        }
    }
}

/// How a [`Table`] applies a changelog (docs/semantics.md, "Changelogs").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableMode {
    /// Upsert by primary key, as Flink's upsert sinks write: `+I`/`+U` put the key's row,
    /// `-D` deletes the key, `-U` is dropped.
    Upsert,
    /// Materialise a retract-form changelog: `+I`/`+U` put the key's row, `-U`/`-D` remove
    /// it and must name the row the table holds; a retraction of a row that is not there,
    /// or an update-before without its update-after in one transaction, is a problem.
    Materialize,
}

/// A table keyed by primary key, written by a two-phase-commit sink from a changelog
/// ([`Stream::sink_table`](crate::Stream::sink_table),
/// [`Stream::sink_upsert`](crate::Stream::sink_upsert)): each committed transaction is
/// applied once (a repeated commit of the same id changes nothing), in commit order.
pub struct Table<K, V, F> {
    mode: TableMode,
    primary_key: F,
    inner: Arc<Mutex<TableInner<K, V>>>,
}

struct TableInner<K, V> {
    rows: BTreeMap<K, V>,
    applied: std::collections::BTreeSet<TransactionId>,
    problems: Vec<String>,
}

impl<K, V, F: Clone> Clone for Table<K, V, F> {
    fn clone(&self) -> Self {
        Table {
            mode: self.mode,
            primary_key: self.primary_key.clone(),
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<K: Ord + Clone, V: Clone, F> Table<K, V, F> {
    /// An empty table that applies changelogs as `mode` says, keyed by `primary_key` of each row.
    pub fn new(mode: TableMode, primary_key: F) -> Self {
        Table {
            mode,
            primary_key,
            inner: Arc::new(Mutex::new(TableInner {
                rows: BTreeMap::new(),
                applied: Default::default(),
                problems: Vec::new(),
            })),
        }
    }

    /// The committed rows, by primary key.
    pub fn rows(&self) -> BTreeMap<K, V> {
        self.lock().rows.clone()
    }

    /// What the committed changelog did wrong (empty for a correct one).
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TableInner<K, V>> {
        self.inner.lock().expect("table poisoned")
    }
}

impl<K, V, F> Committer<Row<V>> for Table<K, V, F>
where
    K: Ord + Clone + std::fmt::Debug + Send + 'static,
    V: Data + PartialEq,
    F: Fn(&V) -> K + Clone + Send + 'static,
{
    fn commit(&mut self, transaction: TransactionId, records: Vec<Record<Row<V>>>) {
        let mut inner = self.inner.lock().expect("table poisoned");
        if !inner.applied.insert(transaction) {
            return;
        }
        let mut open_update: Option<K> = None;
        for Record { value: row, .. } in records {
            let key = (self.primary_key)(&row.row);
            match (row.kind, self.mode) {
                (RowKind::Insert | RowKind::UpdateAfter, _) => {
                    if row.kind == RowKind::UpdateAfter && open_update.as_ref() == Some(&key) {
                        open_update = None;
                    }
                    inner.rows.insert(key, row.row);
                }
                (RowKind::UpdateBefore, TableMode::Upsert) => {}
                (RowKind::Delete, TableMode::Upsert) => {
                    inner.rows.remove(&key);
                }
                (RowKind::UpdateBefore | RowKind::Delete, TableMode::Materialize) => {
                    if inner.rows.get(&key) == Some(&row.row) {
                        inner.rows.remove(&key);
                    } else {
                        let problem = format!(
                            "transaction {transaction:?}: {} of key {key:?} retracts a row the table does not hold",
                            row.kind.short()
                        );
                        inner.problems.push(problem);
                    }
                    if row.kind == RowKind::UpdateBefore {
                        open_update = Some(key);
                    }
                }
            }
        }
        if let Some(key) = open_update {
            let problem =
                format!("transaction {transaction:?}: an update-before of key {key:?} without its update-after");
            inner.problems.push(problem);
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The snapshot assembled from each transaction's cached entry is byte for byte the
        /// encoding of all staged transactions, whatever checkpoints closed, failed to
        /// complete or completed in between.
        #[test]
        fn cached_entries_encode_the_staged_transactions(steps in prop::collection::vec((0usize..4, any::<bool>()), 1..30)) {
            let log = CommitLog::<u32>::new();
            let mut sink = TwoPhaseCommitSink::new(log.clone(), 1);
            for (checkpoint, (records, completes)) in (1..).zip(steps) {
                sink.open.extend((0..records as u32).map(|i| Record::new(i64::from(i), i + checkpoint as u32)));
                let state = sink.snapshot_state(checkpoint, 128);
                prop_assert_eq!(state.operator, encode_after(Vec::new(), &sink.staged));
                if completes {
                    sink.notify_checkpoint_complete(checkpoint);
                }
            }
        }
    }
}
