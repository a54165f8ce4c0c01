//! The eddy side of a `restore-` case: the job runs the script up to its restore point (`s`),
//! takes a checkpoint once everything before it is processed, and stops; a new job restored
//! from that checkpoint runs the rest. As Flink's stop-with-savepoint (without draining): no
//! end-of-time watermark before the restore, and the first job emits nothing after it.

use std::sync::{Arc, Mutex};

use eddy::engine::{
    restore_checkpoint, run_batch, Action, BatchConfig, CheckpointCoordinator, CheckpointOutcome, InOrder, Job,
    MemorySnapshotStore,
};

use crate::cases::Case;
use crate::compare::{Tagged, RESTORED};
use crate::eddy_run::build;
use crate::script::Script;

/// Steps the first job may take before it is stuck (a bug, reported as an output).
const MAX_STEPS: u64 = 1_000_000;

/// Runs `script` through `case` with a restore at its restore point: the first job's outputs
/// go to streams `main` and `late`, the restored job's to `restored-main`, `restored-late`.
pub fn run(case: &Case, script: &Script, outputs: &Arc<Mutex<Vec<Tagged>>>) -> Result<(), String> {
    let (at, _) = script
        .savepoint()
        .ok_or("a restore case's script has no restore point")?;
    let first = build(case, script, outputs, "")?;
    let mut store = MemorySnapshotStore::new();
    let mut job = Job::new(&first);
    let mut coordinator = CheckpointCoordinator::new(&store).map_err(|e| e.to_string())?;
    let mut actions = Vec::new();
    // One element per source poll (a record, or a watermark), so the polls count elements.
    let (mut polls, mut now, mut idle, mut steps) = (0usize, 0i64, 0u32, 0u64);
    let mut pending = None;
    let checkpoint = loop {
        job.handle_processing_time(now);
        now += 1;
        steps += 1;
        if steps > MAX_STEPS {
            return Err(format!(
                "the first job did not reach its checkpoint in {MAX_STEPS} steps"
            ));
        }
        job.ready_actions(&mut actions);
        let next = actions.iter().copied().find(|a| match a {
            Action::PollSource { .. } => polls < at,
            Action::Deliver { .. } => true,
        });
        match next {
            Some(action) => {
                polls += usize::from(matches!(action, Action::PollSource { .. }));
                job.perform(action, 1);
                idle = 0;
            }
            // A few idle ticks: the source emits a watermark it read on the next one.
            None => idle += 1,
        }
        if pending.is_none() && idle >= 3 {
            pending = Some(
                coordinator
                    .trigger(&mut job)
                    .ok_or("no checkpoint could be triggered")?,
            );
        }
        if pending.is_some() {
            match coordinator.collect(&mut job, &mut store) {
                Some(CheckpointOutcome::Completed(checkpoint)) => break checkpoint,
                Some(CheckpointOutcome::Failed { checkpoint, error }) => {
                    return Err(format!("checkpoint {checkpoint} failed: {error}"))
                }
                None => {}
            }
        }
    };
    drop(job);
    let second = build(case, script, outputs, RESTORED)?;
    let mut restored = restore_checkpoint(&second, &store, checkpoint).map_err(|e| e.to_string())?;
    let config = BatchConfig {
        first_checkpoint: Some(checkpoint + 1),
        ..BatchConfig::default()
    };
    run_batch(&mut restored, &mut InOrder, &config).map_err(|e| e.to_string())?;
    Ok(())
}
