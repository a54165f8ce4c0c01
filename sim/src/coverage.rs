//! The moments that matter: named situations a run may reach, counted per run, so that a
//! campaign can say what it tried and what it never did (`eddy explore --coverage`), and
//! aim at the rest (`--aim`). Each moment is a place where recovery or event time branches;
//! docs/testing.md says what each means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;
use crate::input::BoundaryKind;

/// A named situation a run may reach: a place where recovery or event time branches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Moment {
    /// A crash while some task had a barrier on some of its inputs but not all.
    CrashMidAlignment,
    /// A crash after a checkpoint completed, before the tasks were told (sinks had not
    /// committed).
    CrashBeforeNotification,
    /// A crash while a late firing's result was staged in a sink, not yet committed.
    CrashDuringLateFiringCommit,
    /// A restore that fell back past a checkpoint it could not read (corrupted or torn).
    RestorePastCorrupt,
    /// A restore at another parallelism than the checkpoint was taken at.
    RestoreRescaled,
    /// A session in a snapshot (taken or restored) merged with a newer record.
    SessionMergeAcrossCheckpoint,
    /// An input record on a window's first millisecond.
    BoundaryWindowStart,
    /// An input record on a window's last millisecond.
    BoundaryWindowEnd,
    /// An input record a session gap (±1 ms) after an earlier record of its key.
    BoundarySessionGap,
    /// An input record a dedup interval (±1 ms) after an earlier record of its key.
    BoundaryDedupEnd,
    /// An input record at the lateness limit (±1 ms) of the watermark when it is read.
    BoundaryLatenessLimit,
    /// A late record within the allowed lateness accepted (a late firing) after a restore.
    LateAcceptedAfterRestore,
    /// The lowest operator watermark stood still for 300 steps while records moved.
    WatermarkStalled,
    /// A dedup interval closed while a checkpoint was in flight.
    DedupCloseAtCheckpoint,
    /// A task's input went idle: an idle source stopped holding the watermark back.
    InputIdle,
    /// A window trigger fired before the window's end (continuous event time, count), with a
    /// restore since the job started: early results a restore must not repeat or lose.
    TriggerEarlyFiringAfterRestore,
    /// A window fired at its end holding panes of an old task that had fired it and of one
    /// that had not (a restore at another parallelism merged them): only the unfired fire.
    RestorePartlyFiredWindow,
    /// A restore from a checkpoint some task had been told completed: its sinks' transactions
    /// were committed, and the restore commits them again (the committer must ignore them).
    CommitRepeatedAfterRestore,
    /// An idle input turned active with its watermark exactly the task's combined one.
    IdleActiveAtWatermark,
    /// A sink ran `COMMIT PREPARED` again for a transaction whose commit got no answer (a
    /// lost reply, a database restart): committed at most once all the same (database
    /// model only, `--sink postgres-model`).
    CommitRetriedAfterLostAnswer,
}

/// How many moments there are.
pub const MOMENTS: usize = 20;

impl Moment {
    /// Every moment, in declaration order.
    pub const ALL: [Moment; MOMENTS] = [
        Moment::CrashMidAlignment,
        Moment::CrashBeforeNotification,
        Moment::CrashDuringLateFiringCommit,
        Moment::RestorePastCorrupt,
        Moment::RestoreRescaled,
        Moment::SessionMergeAcrossCheckpoint,
        Moment::BoundaryWindowStart,
        Moment::BoundaryWindowEnd,
        Moment::BoundarySessionGap,
        Moment::BoundaryDedupEnd,
        Moment::BoundaryLatenessLimit,
        Moment::LateAcceptedAfterRestore,
        Moment::WatermarkStalled,
        Moment::DedupCloseAtCheckpoint,
        Moment::InputIdle,
        Moment::TriggerEarlyFiringAfterRestore,
        Moment::RestorePartlyFiredWindow,
        Moment::CommitRepeatedAfterRestore,
        Moment::IdleActiveAtWatermark,
        Moment::CommitRetriedAfterLostAnswer,
    ];

    /// The moment's name, as coverage tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Moment::CrashMidAlignment => "crash-mid-alignment",
            Moment::CrashBeforeNotification => "crash-before-notification",
            Moment::CrashDuringLateFiringCommit => "crash-during-late-firing-commit",
            Moment::RestorePastCorrupt => "restore-past-corrupt",
            Moment::RestoreRescaled => "restore-rescaled",
            Moment::SessionMergeAcrossCheckpoint => "session-merge-across-checkpoint",
            Moment::BoundaryWindowStart => "boundary-window-start",
            Moment::BoundaryWindowEnd => "boundary-window-end",
            Moment::BoundarySessionGap => "boundary-session-gap",
            Moment::BoundaryDedupEnd => "boundary-dedup-end",
            Moment::BoundaryLatenessLimit => "boundary-lateness-limit",
            Moment::LateAcceptedAfterRestore => "late-accepted-after-restore",
            Moment::WatermarkStalled => "watermark-stalled",
            Moment::DedupCloseAtCheckpoint => "dedup-close-at-checkpoint",
            Moment::InputIdle => "input-idle",
            Moment::TriggerEarlyFiringAfterRestore => "trigger-early-firing-after-restore",
            Moment::RestorePartlyFiredWindow => "restore-partly-fired-window",
            Moment::CommitRepeatedAfterRestore => "commit-repeated-after-restore",
            Moment::IdleActiveAtWatermark => "idle-active-at-watermark",
            Moment::CommitRetriedAfterLostAnswer => "commit-retried-after-lost-answer",
        }
    }

    /// The fault kinds that make the moment likelier (what `--aim` turns on).
    pub fn aimed_by(self) -> &'static [FaultKind] {
        use FaultKind::*;
        match self {
            Moment::CrashMidAlignment => &[CrashMidCheckpoint, ChannelDelay],
            Moment::CrashBeforeNotification => &[CrashBeforeCommit],
            Moment::CrashDuringLateFiringCommit => &[Crash, CrashMidCheckpoint, DisorderBeyondBound, Boundary],
            Moment::RestorePastCorrupt => &[CorruptSnapshot, Crash, CrashMidCheckpoint],
            Moment::RestoreRescaled => &[Rescale, Crash, CrashMidCheckpoint],
            Moment::SessionMergeAcrossCheckpoint => &[Disorder, Boundary],
            Moment::BoundaryWindowStart
            | Moment::BoundaryWindowEnd
            | Moment::BoundarySessionGap
            | Moment::BoundaryDedupEnd
            | Moment::BoundaryLatenessLimit => &[Boundary],
            Moment::LateAcceptedAfterRestore => &[Crash, DisorderBeyondBound, Boundary],
            Moment::WatermarkStalled => &[ChannelDelay, LateEvents],
            Moment::DedupCloseAtCheckpoint => &[Crash, CrashMidCheckpoint],
            Moment::InputIdle => &[SourceStall],
            Moment::TriggerEarlyFiringAfterRestore => &[Crash, CrashMidCheckpoint],
            Moment::RestorePartlyFiredWindow => &[Rescale, Crash, CrashMidCheckpoint, ChannelDelay],
            Moment::CommitRepeatedAfterRestore => &[Crash, CrashMidCheckpoint],
            Moment::IdleActiveAtWatermark => &[SourceStall],
            Moment::CommitRetriedAfterLostAnswer => &[LostCommitReply, DatabaseRestart],
        }
    }

    fn of_boundary(kind: BoundaryKind) -> Moment {
        match kind {
            BoundaryKind::WindowStart => Moment::BoundaryWindowStart,
            BoundaryKind::WindowEnd => Moment::BoundaryWindowEnd,
            BoundaryKind::SessionGap => Moment::BoundarySessionGap,
            BoundaryKind::DedupEnd => Moment::BoundaryDedupEnd,
            BoundaryKind::LatenessLimit => Moment::BoundaryLatenessLimit,
        }
    }
}

impl std::fmt::Display for Moment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How often one run reached each moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Moments([u64; MOMENTS]);

impl Moments {
    /// Counts `moment` as reached `times` more times.
    pub fn add(&mut self, moment: Moment, times: u64) {
        self.0[moment as usize] += times;
    }

    /// How often `moment` was reached.
    pub fn get(&self, moment: Moment) -> u64 {
        self.0[moment as usize]
    }

    /// Adds the records placed on boundaries (`BoundaryKind::ALL` order).
    pub fn add_boundaries(&mut self, counts: &[u64; 5]) {
        for (kind, n) in BoundaryKind::ALL.into_iter().zip(counts) {
            self.add(Moment::of_boundary(kind), *n);
        }
    }

    /// The moments reached at least once.
    pub fn reached(&self) -> impl Iterator<Item = Moment> + '_ {
        Moment::ALL.into_iter().filter(|m| self.get(*m) > 0)
    }
}

impl Serialize for Moments {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let reached: BTreeMap<&str, u64> = self.reached().map(|m| (m.name(), self.get(m))).collect();
        reached.serialize(serializer)
    }
}

/// Per moment, how many runs of a campaign reached it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    /// How many runs were recorded.
    pub runs: u64,
    runs_reaching: [u64; MOMENTS],
}

impl Coverage {
    /// Counts one run and the moments it reached.
    pub fn record(&mut self, moments: &Moments) {
        self.runs += 1;
        for moment in moments.reached() {
            self.runs_reaching[moment as usize] += 1;
        }
    }

    /// How many runs reached `moment`.
    pub fn runs_reaching(&self, moment: Moment) -> u64 {
        self.runs_reaching[moment as usize]
    }

    /// Adds the runs of `other` (another shard of the campaign).
    pub fn merge(&mut self, other: &Coverage) {
        self.runs += other.runs;
        for (mine, theirs) in self.runs_reaching.iter_mut().zip(other.runs_reaching) {
            *mine += theirs;
        }
    }

    /// The moments no run reached.
    pub fn unreached(&self) -> Vec<Moment> {
        Moment::ALL
            .into_iter()
            .filter(|m| self.runs_reaching(*m) == 0)
            .collect()
    }
}

impl Serialize for Coverage {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let table: BTreeMap<&str, u64> = Moment::ALL
            .into_iter()
            .map(|m| (m.name(), self.runs_reaching(m)))
            .collect();
        table.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Coverage {
    /// From the table `Serialize` writes (a summary read back to merge shards); moments this
    /// build does not know are ignored.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let table = BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut coverage = Coverage::default();
        for moment in Moment::ALL {
            coverage.runs_reaching[moment as usize] = table.get(moment.name()).copied().unwrap_or(0);
        }
        Ok(coverage)
    }
}
