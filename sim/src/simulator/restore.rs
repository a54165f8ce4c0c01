//! Crash and restore: the job is thrown away with its in-flight data and rebuilt from the
//! newest intact checkpoint in the memory store, maybe at a new parallelism (rescale), and the
//! late records of the execution that goes on are kept. Only the decision to rescale is made
//! here; when to crash is `inject`'s.

use super::options::FaultEvent;
use super::state::Simulation;
use crate::coverage::Moment;
use crate::decide::Decisions;
use crate::faults::FaultKind;
use crate::seed::Concern;
use crate::trace::TraceEvent;

use eddy_engine::testkit::{take_late_records, tap_late_outputs};
use eddy_engine::{recover_at, CheckpointCoordinator, JobGraph, Partitioning};

/// The highest parallelism a rescale picks (within the pipeline's max parallelism).
const RESCALE_MAX: usize = 4;

/// Whether `graph` can run at `parallelism`: one per node, within the max parallelism, equal
/// across forward edges.
pub(super) fn fits(graph: &JobGraph, parallelism: &[usize]) -> bool {
    parallelism.len() == graph.nodes.len()
        && parallelism.iter().all(|p| (1..=graph.max_parallelism).contains(p))
        && graph.nodes.iter().enumerate().all(|(node, n)| {
            n.inputs
                .iter()
                .all(|e| e.partitioning != Partitioning::Forward || parallelism[e.from] == parallelism[node])
        })
}

/// A parallelism for `graph` drawn from `decisions`: each distinct built parallelism maps to
/// one new value in `1..=RESCALE_MAX` (so forward edges keep joining equals).
pub(super) fn rescale<D: Decisions>(graph: &JobGraph, decisions: &mut D) -> Vec<usize> {
    let mut built: Vec<usize> = graph.parallelism();
    built.sort_unstable();
    built.dedup();
    let new: Vec<(usize, usize)> = built
        .into_iter()
        .map(|p| (p, decisions.within(Concern::Faults, 1..=RESCALE_MAX)))
        .collect();
    graph.rescaled(|p| new.iter().find(|(old, _)| *old == p).map_or(p, |(_, n)| *n))
}

impl<D: Decisions> Simulation<'_, D> {
    pub(super) fn crash(&mut self) {
        self.crashes_left = self.crashes_left.saturating_sub(1);
        self.stats.crashes += 1;
        self.trace.record(TraceEvent::Crash { step: self.step });
        if self.job.tasks().iter().any(|t| t.is_aligning()) {
            self.moments.add(Moment::CrashMidAlignment, 1);
        }
        self.count_job_moments();
        self.coordinator.abort();
        let tapped = take_late_records(&mut self.job);
        if let Some(parallelism) = self.decide_rescale() {
            self.injected.push(FaultEvent::Rescale {
                step: self.step,
                parallelism: parallelism.clone(),
            });
            self.trace.record(TraceEvent::Rescaled {
                step: self.step,
                tasks: parallelism.iter().sum::<usize>() as u64,
            });
            self.parallelism = parallelism;
        }
        let recovery = recover_at(self.graph, &self.layout(), &self.store).expect("a memory store does not fail reads");
        if recovery.checkpoint.is_some() {
            self.stats.restores += 1;
        }
        if !recovery.skipped.is_empty() {
            self.moments.add(Moment::RestorePastCorrupt, 1);
        }
        if let Some(checkpoint) = recovery.checkpoint {
            if self.checkpoint_parallelism.get(&checkpoint) != Some(&self.parallelism) {
                self.moments.add(Moment::RestoreRescaled, 1);
            }
            if self.notified.contains(&checkpoint) {
                self.moments.add(Moment::CommitRepeatedAfterRestore, 1);
            }
        }
        self.trace.record(TraceEvent::Restored {
            step: self.step,
            checkpoint: recovery.checkpoint.unwrap_or(0),
        });
        // What each task sent to late outputs before its snapshot of the restored checkpoint
        // is part of the execution that goes on; the rest is rolled back with the job.
        let restored = recovery.checkpoint.unwrap_or(0);
        self.late_committed
            .extend(tapped.into_iter().filter(|r| r.after_checkpoint < restored));
        self.job = recovery.job;
        // A sink that could not decide its prepared transactions fails the job over again.
        if self.database.as_ref().is_some_and(|d| d.take_task_failure().is_some()) {
            return self.crash();
        }
        if self.tap_late {
            tap_late_outputs(&mut self.job);
        }
        if let Some(capacity) = self.channel_capacity {
            self.job.bound_channels(capacity);
        }
        self.restored = recovery.checkpoint.is_some();
        self.late_firings_committed = 0;
        self.coordinator = CheckpointCoordinator::new(&self.store).expect("a memory store does not fail");
        self.delayed.clear();
    }

    /// A new parallelism for the restore after this step's crash, if the job rescales.
    fn decide_rescale(&mut self) -> Option<Vec<usize>> {
        let step = self.step;
        let parallelism = match &mut self.fault_schedule {
            // The first rescale not applied yet whose step has come: a shrinker that moves a
            // crash (anchors it to a checkpoint's progress) keeps the rescale with it.
            Some(schedule) => schedule
                .iter()
                .position(|f| matches!(f, FaultEvent::Rescale { step: s, .. } if *s > 0 && *s <= step))
                .map(|at| match schedule.remove(at) {
                    FaultEvent::Rescale { parallelism, .. } => parallelism,
                    _ => unreachable!("found a rescale"),
                }),
            None if self.faults.contains(FaultKind::Rescale) && self.decisions.chance(Concern::Faults, 0.5) => {
                Some(rescale(self.graph, &mut self.decisions))
            }
            None => None,
        }?;
        // A prescribed parallelism that does not fit the job (a hand-edited case) is ignored.
        (fits(self.graph, &parallelism) && parallelism != self.parallelism).then_some(parallelism)
    }
}
