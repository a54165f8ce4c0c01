//! The step loop: each step maybe crashes, maybe jumps processing time, maybe triggers a
//! checkpoint, fires due deadlines, takes one ready action and collects the checkpoint in
//! flight (the order the simulator's module documentation gives). It sequences; the
//! decisions and their effects are in `inject`, `restore` and `actions`. It never waits: the
//! virtual clock moves only when a step says so.

use super::options::FaultEvent;
use super::state::Simulation;
use crate::coverage::Moment;
use crate::decide::Decisions;
use crate::report::Violation;
use crate::seed::Concern;
use crate::trace::TraceEvent;

use eddy_engine::{CheckpointId, CheckpointOutcome};

impl<D: Decisions> Simulation<'_, D> {
    pub(super) fn run(&mut self, max_steps: u64) -> Result<(), Violation> {
        let mut actions = Vec::new();
        let mut next_checkpoint_at = self.decisions.below(Concern::Checkpoints, 10..200i64);
        let mut final_checkpoint: Option<CheckpointId> = None;
        let mut records_at_checkpoint = 0;
        loop {
            self.step += 1;
            if self.timeline.is_some() {
                self.time_of_step.push(self.now);
            }
            if self.step > max_steps {
                return Err(Violation::new(
                    "liveness",
                    format!("the job did not finish within {max_steps} steps"),
                ));
            }
            if self.decide_crash() {
                self.crash();
                final_checkpoint = None;
                continue;
            }
            if let Some(ms) = self.decide_jump() {
                self.now += ms;
                self.injected.push(FaultEvent::Jump { step: self.step, ms });
                self.trace.record(TraceEvent::Jump {
                    step: self.step,
                    now: self.now,
                });
            }
            let trigger_now = match (&self.checkpoint_schedule, self.checkpoint_every_records) {
                (Some(steps), _) => steps.contains(&self.step),
                (None, Some(every)) => {
                    let read = self.job.metrics().source_records;
                    if read >= records_at_checkpoint + every {
                        records_at_checkpoint = read;
                        true
                    } else {
                        false
                    }
                }
                (None, None) if self.now >= next_checkpoint_at => {
                    next_checkpoint_at = self.now + self.decisions.below(Concern::Checkpoints, 20..400i64);
                    true
                }
                (None, None) => false,
            };
            if trigger_now && self.trigger().is_some() {
                self.checkpoint_steps.push(self.step);
            }
            if self.decide_failed_write() {
                self.injected.push(FaultEvent::FailedWrite { step: self.step });
                self.store.fail_next_puts(1);
            }
            if final_checkpoint.is_none() {
                self.decide_database_faults();
            }
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut actions);
            if actions.is_empty() {
                if !self.job.is_finished() {
                    let deadline = self.job.next_processing_deadline();
                    self.now = deadline.map_or(self.now + 1, |d| d.max(self.now + 1));
                    continue;
                }
                if self.coordinator.pending().is_none() {
                    // The database is healthy at the end, so that the final checkpoint's
                    // transactions commit (a real run that fails here stops and restarts).
                    if let Some(database) = &self.database {
                        database.heal();
                    }
                    final_checkpoint = self.trigger();
                }
            } else {
                let action = self.choose(&actions);
                let closes_before = self
                    .coordinator
                    .pending()
                    .map(|_| self.job.metrics().events.dedup_intervals_closed);
                self.perform(action);
                if let Some(before) = closes_before {
                    if self.job.metrics().events.dedup_intervals_closed > before {
                        self.moments.add(Moment::DedupCloseAtCheckpoint, 1);
                    }
                }
                self.watch_watermark();
                self.now += self.decisions.within(Concern::Schedule, 1..=10i64);
            }
            // A sink task that failed (its prepare did) fails the job over before the
            // checkpoint in flight can complete.
            if self.database.as_ref().is_some_and(|d| d.take_task_failure().is_some()) {
                self.crash();
                final_checkpoint = None;
                continue;
            }
            match self.coordinator.collect(&mut self.job, &mut self.store) {
                Some(CheckpointOutcome::Completed(checkpoint)) => {
                    self.stats.checkpoints_completed += 1;
                    self.trace.record(TraceEvent::Completed {
                        step: self.step,
                        checkpoint,
                    });
                    let is_final = final_checkpoint == Some(checkpoint);
                    if self.notify_or_fault(checkpoint) {
                        if is_final {
                            self.trace.record(TraceEvent::Finished { step: self.step });
                            return Ok(());
                        }
                    } else if is_final {
                        // Nobody will commit the last transactions: the job restarts, and
                        // the restore completes the commit.
                        self.crash();
                        final_checkpoint = None;
                    }
                }
                Some(CheckpointOutcome::Failed { checkpoint, .. }) => {
                    self.stats.checkpoints_failed += 1;
                    self.trace.record(TraceEvent::CheckpointFailed {
                        step: self.step,
                        checkpoint,
                    });
                    final_checkpoint = None;
                }
                None => {}
            }
        }
    }

    fn trigger(&mut self) -> Option<CheckpointId> {
        let checkpoint = self.coordinator.trigger(&mut self.job)?;
        self.checkpoint_parallelism.insert(checkpoint, self.parallelism.clone());
        self.stats.checkpoints_started += 1;
        self.trace.record(TraceEvent::Trigger {
            step: self.step,
            checkpoint,
        });
        Some(checkpoint)
    }
}
