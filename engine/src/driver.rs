//! The batch driver: runs a job over bounded input to completion, in one thread.
//!
//! Which step comes next is the [`Scheduler`]'s choice, so tests can explore delivery
//! interleavings with a seeded RNG while the job code stays the same. Processing time is a
//! virtual clock advanced by `step_ms` per step; no real clock is read. Checkpoints go through
//! the engine's one [`CheckpointCoordinator`], on that clock.

use std::ops::ControlFlow;

use crate::checkpoint::{CheckpointCoordinator, CheckpointOutcome, MemorySnapshotStore, SnapshotStore, StoreError};
use crate::element::{CheckpointId, Timestamp};
use crate::graph::JobGraph;
use crate::job::{Action, Job, JobMetrics};

/// Chooses the next step among those ready (never called with an empty slice).
pub trait Scheduler {
    /// The index in `actions` of the step to take.
    fn choose(&mut self, actions: &[Action]) -> usize;
}

impl<F: FnMut(&[Action]) -> usize> Scheduler for F {
    fn choose(&mut self, actions: &[Action]) -> usize {
        self(actions)
    }
}

/// Always the first ready step: deliver everything in flight before reading more input.
#[derive(Clone, Copy, Debug, Default)]
pub struct InOrder;

impl Scheduler for InOrder {
    fn choose(&mut self, _actions: &[Action]) -> usize {
        0
    }
}

/// How the batch driver runs a job.
#[derive(Clone, Copy, Debug)]
pub struct BatchConfig {
    /// At most this many records per source poll.
    pub source_batch_size: usize,
    /// Virtual processing time that passes per step.
    pub step_ms: Timestamp,
    /// A run longer than this is a liveness failure, not a hang.
    pub max_steps: u64,
    /// The id of the run's first checkpoint (the final one, which commits the sinks' last
    /// transactions, when no other runs before it); by default the one after the job's last
    /// checkpoint and after every checkpoint in the store.
    pub first_checkpoint: Option<CheckpointId>,
    /// Takes a checkpoint every this many milliseconds of virtual processing time; none by
    /// default (a bounded run commits once, at its end).
    pub checkpoint_interval: Option<Timestamp>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            source_batch_size: 1024,
            step_ms: 1,
            max_steps: 100_000_000,
            first_checkpoint: None,
            checkpoint_interval: None,
        }
    }
}

/// What a finished batch run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Steps taken.
    pub steps: u64,
    /// The virtual processing time reached.
    pub processing_time_ms: Timestamp,
    /// The job's counters at the end.
    pub metrics: JobMetrics,
    /// State entries left in operators at the end (0 unless a TTL or table keeps some).
    pub state_entries: usize,
}

/// Why a batch run did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The run took more steps than its budget: a liveness failure, not a hang.
    #[error("the job did not finish within {max_steps} steps")]
    StepBudgetExceeded {
        /// The budget ([`BatchConfig::max_steps`]).
        max_steps: u64,
    },
    /// Nothing was left to deliver and no timer was due, yet some task had not ended.
    #[error("the job stalled after {steps} steps: nothing to deliver but not every task ended")]
    Stalled {
        /// Steps taken before the stall.
        steps: u64,
    },
    /// A write of the final checkpoint failed: the sinks' last transactions are not
    /// committed.
    #[error("checkpoint {checkpoint} failed: {error}")]
    Checkpoint {
        /// The checkpoint that failed.
        checkpoint: CheckpointId,
        /// The store's error.
        error: StoreError,
    },
    /// The store failed outside a checkpoint's writes (listing its checkpoints).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs `job` until every task ended, then takes the final checkpoint, which commits the
/// sinks' last transactions. A batch run keeps no store: its snapshots are dropped once the
/// checkpoint is complete ([`run_checkpointed`] keeps them).
pub fn run_batch(job: &mut Job, scheduler: &mut dyn Scheduler, config: &BatchConfig) -> Result<RunSummary, RunError> {
    let mut store = MemorySnapshotStore::new();
    let coordinator = CheckpointCoordinator::new(&store)?.with_retention(1);
    run_checkpointed(job, scheduler, config, coordinator, &mut store)
}

/// [`run_batch`] with checkpoints written to `store` through `coordinator`: every
/// `config.checkpoint_interval` of virtual time, and the final one. A failed write fails that
/// checkpoint and the run goes on, except for the final checkpoint: then the run fails, its
/// last transactions uncommitted.
pub fn run_checkpointed(
    job: &mut Job,
    scheduler: &mut dyn Scheduler,
    config: &BatchConfig,
    coordinator: CheckpointCoordinator,
    store: &mut dyn SnapshotStore,
) -> Result<RunSummary, RunError> {
    let first = config.first_checkpoint.unwrap_or(job.last_checkpoint() + 1);
    let mut coordinator = coordinator.after(first - 1);
    if let Some(interval) = config.checkpoint_interval {
        coordinator = coordinator.every(interval);
    }
    let mut store_error = None;
    let mut after_step = |job: &mut Job, now: Timestamp| {
        coordinator.tick_job(&now, job);
        match finish_checkpoint(job, &mut coordinator, store) {
            Ok(_) => ControlFlow::Continue(()),
            Err(error) => {
                store_error = Some(error);
                ControlFlow::Break(())
            }
        }
    };
    let (steps, now) = run_steps_timed(job, scheduler, config, &mut after_step)?;
    if let Some(error) = store_error {
        return Err(error);
    }
    // Every task ended: the checkpoint in flight completes at once, then the final one.
    finish_checkpoint(job, &mut coordinator, store)?;
    let checkpoint = coordinator.trigger(job).expect("no checkpoint is in flight");
    match finish_checkpoint(job, &mut coordinator, store)? {
        Some(CheckpointOutcome::Completed(_)) => {}
        Some(CheckpointOutcome::Failed { checkpoint, error }) => {
            return Err(RunError::Checkpoint { checkpoint, error })
        }
        None => unreachable!("every ended task acknowledges checkpoint {checkpoint} at once"),
    }
    Ok(RunSummary {
        steps,
        processing_time_ms: now,
        metrics: job.metrics(),
        state_entries: job.state_entries(),
    })
}

/// Stores the acknowledgements `job` has; a checkpoint that completes is notified to the
/// tasks (sinks commit) and to the coordinator's retention.
fn finish_checkpoint(
    job: &mut Job,
    coordinator: &mut CheckpointCoordinator,
    store: &mut dyn SnapshotStore,
) -> Result<Option<CheckpointOutcome>, RunError> {
    let outcome = coordinator.collect(job, store);
    if let Some(CheckpointOutcome::Completed(checkpoint)) = outcome {
        job.notify_checkpoint_complete(checkpoint);
        coordinator.notified(checkpoint, store)?;
    }
    Ok(outcome)
}

/// The batch driver's loop without its final checkpoint: runs `job` until every task ended
/// or `after_step`, called after each step (a checkpoint coordinator's turn, say), breaks.
/// Returns the steps taken and the processing time reached.
pub fn run_steps(
    job: &mut Job,
    scheduler: &mut dyn Scheduler,
    config: &BatchConfig,
    after_step: &mut dyn FnMut(&mut Job) -> ControlFlow<()>,
) -> Result<(u64, Timestamp), RunError> {
    run_steps_timed(job, scheduler, config, &mut |job, _| after_step(job))
}

/// [`run_steps`] whose `after_step` also sees the virtual processing time.
fn run_steps_timed(
    job: &mut Job,
    scheduler: &mut dyn Scheduler,
    config: &BatchConfig,
    after_step: &mut dyn FnMut(&mut Job, Timestamp) -> ControlFlow<()>,
) -> Result<(u64, Timestamp), RunError> {
    let mut actions = Vec::new();
    let mut steps = 0u64;
    let mut now: Timestamp = 0;
    loop {
        job.handle_processing_time(now);
        job.ready_actions(&mut actions);
        if actions.is_empty() {
            if job.is_finished() {
                return Ok((steps, now));
            }
            match job.next_processing_deadline() {
                Some(deadline) if deadline > now => {
                    now = deadline;
                    continue;
                }
                _ => return Err(RunError::Stalled { steps }),
            }
        }
        let choice = scheduler.choose(&actions);
        job.perform(actions[choice], config.source_batch_size);
        steps += 1;
        if steps > config.max_steps {
            return Err(RunError::StepBudgetExceeded {
                max_steps: config.max_steps,
            });
        }
        now += config.step_ms;
        if after_step(job, now).is_break() {
            return Ok((steps, now));
        }
    }
}

/// Instantiates `graph` and runs it in order with the default configuration.
pub fn run_to_end(graph: &JobGraph) -> Result<RunSummary, RunError> {
    let mut job = Job::new(graph);
    run_batch(&mut job, &mut InOrder, &BatchConfig::default())
}
