//! The coverage moments the simulator observes in the running job (the input's are counted by
//! the caller): operator events read before a crash throws the job away, and a stalled
//! watermark. It only counts: nothing here changes the run or draws a decision.

use super::state::Simulation;
use crate::coverage::Moment;
use crate::decide::Decisions;

use eddy_engine::NO_WATERMARK;

/// Steps the lowest watermark must stand still, records moving, to count as stalled.
const STALL_STEPS: u64 = 300;

impl<D: Decisions> Simulation<'_, D> {
    /// Moments the running job's operators went through (read before it is thrown away).
    pub(super) fn count_job_moments(&mut self) {
        let events = self.job.metrics().events;
        if events.late_firings > self.late_firings_committed {
            self.moments.add(Moment::CrashDuringLateFiringCommit, 1);
        }
        if self.restored && events.late_firings > 0 {
            self.moments.add(Moment::LateAcceptedAfterRestore, events.late_firings);
        }
        if self.restored && events.early_firings > 0 {
            self.moments
                .add(Moment::TriggerEarlyFiringAfterRestore, events.early_firings);
        }
        self.moments
            .add(Moment::SessionMergeAcrossCheckpoint, events.checkpointed_session_merges);
        self.moments
            .add(Moment::RestorePartlyFiredWindow, events.partly_fired_windows);
    }

    /// Counts a stretch of `STALL_STEPS` steps in which the lowest operator watermark stood.
    pub(super) fn watch_watermark(&mut self) {
        let lowest = self
            .job
            .tasks()
            .iter()
            .filter(|t| !t.is_source() && !t.is_ended())
            .map(|t| t.watermark())
            .min()
            .unwrap_or(NO_WATERMARK);
        if lowest != self.watermark_since.0 {
            self.watermark_since = (lowest, self.step);
        } else if lowest > NO_WATERMARK && self.step - self.watermark_since.1 == STALL_STEPS {
            self.moments.add(Moment::WatermarkStalled, 1);
        }
    }
}
