//! The batch driver: runs a job over bounded input to completion, in one thread.
//!
//! Which step comes next is the [`Scheduler`]'s choice, so tests can explore delivery
//! interleavings with a seeded RNG while the job code stays the same. Processing time is a
//! virtual clock advanced by `step_ms` per step; no real clock is read.

use std::ops::ControlFlow;

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
    /// The id of the checkpoint that completes the run, so that two-phase-commit sinks
    /// commit their last transaction; by default the one after the job's last checkpoint.
    pub final_checkpoint: Option<CheckpointId>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            source_batch_size: 1024,
            step_ms: 1,
            max_steps: 100_000_000,
            final_checkpoint: None,
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
}

/// Runs `job` until every task ended.
pub fn run_batch(job: &mut Job, scheduler: &mut dyn Scheduler, config: &BatchConfig) -> Result<RunSummary, RunError> {
    let (steps, now) = run_steps(job, scheduler, config, &mut |_| ControlFlow::Continue(()))?;
    // Batch mode has no store: its final checkpoint completes as soon as every (ended) task
    // has acknowledged, which is at once.
    let final_checkpoint = config.final_checkpoint.unwrap_or(job.last_checkpoint() + 1);
    job.trigger_checkpoint(final_checkpoint);
    let mut acknowledgements = Vec::new();
    job.poll_acknowledgements(&mut acknowledgements);
    assert_eq!(
        acknowledgements.len(),
        job.snapshots_per_checkpoint(),
        "every ended task acknowledges at once"
    );
    job.notify_checkpoint_complete(final_checkpoint);
    Ok(RunSummary {
        steps,
        processing_time_ms: now,
        metrics: job.metrics(),
        state_entries: job.state_entries(),
    })
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
        if after_step(job).is_break() {
            return Ok((steps, now));
        }
    }
}

/// Instantiates `graph` and runs it in order with the default configuration.
pub fn run_to_end(graph: &JobGraph) -> Result<RunSummary, RunError> {
    let mut job = Job::new(graph);
    run_batch(&mut job, &mut InOrder, &BatchConfig::default())
}
