//! The erased operator interface that tasks drive, and the stateless operators.
//!
//! An operator is a state machine: a task hands it one input at a time (`handle_*`) and the
//! operator writes what it emits into an [`Output`], per output port. Port 0 is the main
//! output; the late side output is port 1 ([`LATE`]). Operators never see channels,
//! watermarks of single channels, barriers or clocks: the task owns those.

use std::marker::PhantomData;

use crate::element::{Batch, CheckpointId, Data, Record, Timestamp};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};

/// The main output port.
pub const MAIN: usize = 0;
/// The late side output port: records that arrived after their window or key state was gone.
pub const LATE: usize = 1;
/// The temporal join's second late output: changelog entries that arrived too late.
pub const LATE_CHANGES: usize = 2;

/// What an operator emitted while handling one input.
#[derive(Debug, Default)]
pub struct Output {
    pub(crate) emitted: Vec<(usize, Batch)>,
    /// Records accepted behind the watermark ([`Output::emit_behind`]); read only by the tap.
    pub(crate) behind: Vec<Batch>,
    pub(crate) late_records: u64,
    pub(crate) duplicates: u64,
    pub(crate) events: OperatorEvents,
}

/// Moments an operator went through, counted (the simulator's coverage map, docs/testing.md).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OperatorEvents {
    /// A window fired again for a record within the allowed lateness.
    pub late_firings: u64,
    /// A session that was in a snapshot (taken or restored) merged with a newer record.
    pub checkpointed_session_merges: u64,
    /// A dedup interval closed as the watermark passed its end.
    pub dedup_intervals_closed: u64,
    /// A trigger fired a window before its end (continuous event time, count).
    pub early_firings: u64,
    /// A window fired at its end holding panes restored from an old task that had fired it
    /// and from one that had not (a restore at another parallelism).
    pub partly_fired_windows: u64,
}

impl std::ops::AddAssign for OperatorEvents {
    fn add_assign(&mut self, other: Self) {
        self.late_firings += other.late_firings;
        self.checkpointed_session_merges += other.checkpointed_session_merges;
        self.dedup_intervals_closed += other.dedup_intervals_closed;
        self.early_firings += other.early_firings;
        self.partly_fired_windows += other.partly_fired_windows;
    }
}

impl Output {
    /// Emits `records` on `port` (nothing if empty).
    pub fn emit<T: Data>(&mut self, port: usize, records: Vec<Record<T>>) {
        if !records.is_empty() {
            self.emitted.push((port, Batch::new(records)));
        }
    }

    /// Emits a batch as it is (a source's shared range of its log).
    pub(crate) fn emit_batch(&mut self, port: usize, batch: Batch) {
        if !batch.is_empty() {
            self.emitted.push((port, batch));
        }
    }

    /// Takes what was emitted on `port`, in emission order: how a unit test of an operator
    /// or a source reader reads its output.
    pub fn take<T: Data>(&mut self, port: usize) -> Vec<Record<T>> {
        let (taken, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.emitted)
            .into_iter()
            .partition(|(p, _)| *p == port);
        self.emitted = kept;
        taken
            .into_iter()
            .flat_map(|(_, batch)| batch.into_records::<T>())
            .collect()
    }

    /// Emits `records` on the late side output and counts them.
    pub fn emit_late<T: Data>(&mut self, records: Vec<Record<T>>) {
        self.late_records += records.len() as u64;
        if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::LateDroppedSilently) {
            return;
        }
        self.emit(LATE, records);
    }

    /// Notes records that were accepted, but whose effect depended on the watermark they
    /// arrived at: a sliding-window record skipped by some late windows, a session record that
    /// may touch a session already cleared. The differential oracle replays them as of that
    /// watermark ([`Operator::handle_records_behind`], docs/testing.md).
    pub fn emit_behind<T: Data>(&mut self, records: Vec<Record<T>>) {
        if !records.is_empty() {
            self.behind.push(Batch::new(records));
        }
    }
}

/// A dataflow operator instance (one per task).
pub trait Operator: Send {
    /// Records arrived on logical input `input` (0; 1 for a join's second input).
    fn handle_records(&mut self, input: usize, batch: Batch, out: &mut Output);

    /// Records the checked run accepted at `watermark` ([`Output::emit_behind`]), replayed by
    /// a reference run (no watermark yet) after every other record: handle them as they were
    /// handled at `watermark`.
    fn handle_records_behind(&mut self, input: usize, batch: Batch, _watermark: Timestamp, out: &mut Output) {
        self.handle_records(input, batch, out);
    }

    /// The task's combined watermark advanced: fire what is due. The task forwards the
    /// watermark downstream after this returns, so results precede it.
    fn handle_watermark(&mut self, _watermark: Timestamp, _out: &mut Output) {}

    /// The driver's processing-time clock reached `now`.
    fn handle_processing_time(&mut self, _now: Timestamp, _out: &mut Output) {}

    /// The earliest processing time at which the operator wants `handle_processing_time`.
    fn next_processing_deadline(&self) -> Option<Timestamp> {
        None
    }

    /// Every input ended (after the final `Watermark(i64::MAX)` was handled).
    fn handle_end_of_input(&mut self, _out: &mut Output) {}

    /// Everything the operator holds, for checkpoint `checkpoint` (taken at barrier
    /// alignment, or at once if the task has ended). Keyed state goes per key group.
    /// Required, so that no stateful operator can forget its state: stateless ones use
    /// [`stateless!`](crate::stateless).
    fn snapshot_state(&mut self, checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState;

    /// Rebuilds state from the snapshots of the operator's old tasks (any parallelism).
    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError>;

    /// Checkpoint `checkpoint` completed: every task has its snapshot stored.
    fn notify_checkpoint_complete(&mut self, _checkpoint: CheckpointId) {}

    /// Whether the operator has registered a processing-time timer (the differential oracle
    /// cannot judge results that depend on processing time).
    fn uses_processing_time(&self) -> bool {
        false
    }

    /// How many state entries (window panes, keys, timers, table versions) it holds now;
    /// the bounded-state check expects 0 at end of input unless a TTL keeps some.
    fn state_entries(&self) -> usize {
        0
    }
}

/// Implements the snapshot methods of an operator that holds no state.
#[macro_export]
macro_rules! stateless {
    () => {
        fn snapshot_state(
            &mut self,
            _checkpoint: $crate::CheckpointId,
            _max_parallelism: usize,
        ) -> $crate::snapshot::OperatorState {
            $crate::snapshot::OperatorState::default()
        }

        fn restore_state(
            &mut self,
            _context: &$crate::snapshot::RestoreContext<'_>,
        ) -> Result<(), $crate::snapshot::SnapshotError> {
            Ok(())
        }
    };
}

pub(crate) struct Map<T, U, F> {
    pub(crate) f: F,
    pub(crate) _types: PhantomData<fn(T) -> U>,
}

impl<T: Data, U: Data, F: FnMut(T) -> U + Send> Operator for Map<T, U, F> {
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mapped: Vec<Record<U>> = match batch.owned_or_shared::<T>() {
            Ok(records) => records
                .into_iter()
                .map(|r| Record::new(r.ts, (self.f)(r.value)))
                .collect(),
            Err(shared) => shared
                .iter()
                .map(|r| Record::new(r.ts, (self.f)(r.value.clone())))
                .collect(),
        };
        out.emit(MAIN, mapped);
    }
    crate::stateless!();
}

pub(crate) struct Filter<T, F> {
    pub(crate) f: F,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<T: Data, F: FnMut(&T) -> bool + Send> Operator for Filter<T, F> {
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        // Reads a shared batch in place: only the records that pass are copied.
        let kept = match batch.owned_or_shared::<T>() {
            Ok(mut records) => {
                records.retain(|r| (self.f)(&r.value));
                records
            }
            Err(shared) => shared.iter().filter(|r| (self.f)(&r.value)).cloned().collect(),
        };
        out.emit(MAIN, kept);
    }
    crate::stateless!();
}

pub(crate) struct FlatMap<T, U, F> {
    pub(crate) f: F,
    pub(crate) _types: PhantomData<fn(T) -> U>,
}

impl<T: Data, U: Data, I: IntoIterator<Item = U>, F: FnMut(T) -> I + Send> Operator for FlatMap<T, U, F> {
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mut produced = Vec::with_capacity(batch.len());
        let mut apply =
            |ts: Timestamp, value: T| produced.extend((self.f)(value).into_iter().map(|v| Record::new(ts, v)));
        match batch.owned_or_shared::<T>() {
            Ok(records) => records.into_iter().for_each(|r| apply(r.ts, r.value)),
            // Each value is cloned as it is handed over: no copy of the whole batch first.
            Err(shared) => shared.iter().for_each(|r| apply(r.ts, r.value.clone())),
        }
        out.emit(MAIN, produced);
    }
    crate::stateless!();
}

pub(crate) struct FilterMap<T, U, F> {
    pub(crate) f: F,
    pub(crate) _types: PhantomData<fn(&T) -> U>,
}

impl<T: Data, U: Data, F: FnMut(&T) -> Option<U> + Send> Operator for FilterMap<T, U, F> {
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        // Reads its input in place, owned or shared with the source's log: nothing is copied
        // but what `f` makes.
        let records = batch.as_slice::<T>();
        // Room for one output per input (as most filter maps give): no regrowth, each a copy.
        let mut produced = Vec::with_capacity(records.len());
        produced.extend(
            records
                .iter()
                .filter_map(|r| (self.f)(&r.value).map(|u| Record::new(r.ts, u))),
        );
        out.emit(MAIN, produced);
    }
    crate::stateless!();
}
