//! Fault kinds, and the profiles that turn them on.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use rand::Rng;

use crate::seed::{rng, Concern};

/// A kind of fault the simulator can inject; each can be on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Records out of order within the watermark bound.
    Disorder,
    /// Records out of order beyond the bound: some arrive after their window closed.
    DisorderBeyondBound,
    /// Records delayed far down the log: they arrive long after the watermark passed them.
    LateEvents,
    /// Log entries written twice (distinct entries: only a dedup operator may merge them).
    DuplicateEvents,
    /// The whole job crashes at some step and restarts from the newest checkpoint.
    Crash,
    /// A crash while a checkpoint is in flight.
    CrashMidCheckpoint,
    /// A crash after a checkpoint completed, before sinks were told to commit.
    CrashBeforeCommit,
    /// A checkpoint-complete notification never reaches the tasks.
    LostNotification,
    /// A snapshot-store write fails: the checkpoint fails.
    FailedWrite,
    /// A stored snapshot is damaged (bit flip or torn write) before anyone relies on it.
    CorruptSnapshot,
    /// Some channels are held back for a while: other channels overtake them.
    ChannelDelay,
    /// The processing-time clock jumps ahead.
    ProcessingTimeJump,
    /// Records moved onto the pipeline's own boundaries, and 1 ms either side: window starts
    /// and ends, session gaps and dedup interval ends after an earlier record of the same
    /// value, the lateness limit of the watermark when the record is read.
    Boundary,
    /// A restore at another parallelism (as Flink's reactive mode and autoscaler do): after a
    /// crash, or from the start.
    Rescale,
    /// A source partition has nothing new to read for a while (its producer pauses): the
    /// watermark waits for it, or, with idleness, goes on without it.
    SourceStall,
    /// The source's connector restarts and delivers a run of events again (Debezium and
    /// Kafka Connect deliver at least once); a change-data-capture source drops them by their
    /// log position.
    ConnectorRestart,
    /// The database refuses a sink's `PREPARE TRANSACTION` (only with a database model,
    /// `--sink postgres-model`, as the two kinds below).
    FailedPrepare,
    /// A `COMMIT PREPARED` commits, but its answer never reaches the sink.
    LostCommitReply,
    /// The database restarts just after a statement: its answer and the next few are lost;
    /// prepared transactions survive.
    DatabaseRestart,
}

impl FaultKind {
    /// In the order swarm draws them: kinds added later come last, so that a seed keeps the
    /// earlier kinds it had.
    pub const ALL: [FaultKind; 19] = [
        FaultKind::Disorder,
        FaultKind::DisorderBeyondBound,
        FaultKind::LateEvents,
        FaultKind::DuplicateEvents,
        FaultKind::Crash,
        FaultKind::CrashMidCheckpoint,
        FaultKind::CrashBeforeCommit,
        FaultKind::LostNotification,
        FaultKind::FailedWrite,
        FaultKind::CorruptSnapshot,
        FaultKind::ChannelDelay,
        FaultKind::ProcessingTimeJump,
        FaultKind::Boundary,
        FaultKind::Rescale,
        FaultKind::SourceStall,
        FaultKind::ConnectorRestart,
        FaultKind::FailedPrepare,
        FaultKind::LostCommitReply,
        FaultKind::DatabaseRestart,
    ];

    /// The kinds that need a database model: a run without one leaves them out.
    pub const DATABASE: [FaultKind; 3] = [
        FaultKind::FailedPrepare,
        FaultKind::LostCommitReply,
        FaultKind::DatabaseRestart,
    ];

    /// The kind's name, as profiles, reports and `--with` spell it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Disorder => "disorder",
            FaultKind::DisorderBeyondBound => "disorder-beyond-bound",
            FaultKind::LateEvents => "late-events",
            FaultKind::DuplicateEvents => "duplicate-events",
            FaultKind::Crash => "crash",
            FaultKind::CrashMidCheckpoint => "crash-mid-checkpoint",
            FaultKind::CrashBeforeCommit => "crash-before-commit",
            FaultKind::LostNotification => "lost-notification",
            FaultKind::FailedWrite => "failed-write",
            FaultKind::CorruptSnapshot => "corrupt-snapshot",
            FaultKind::ChannelDelay => "channel-delay",
            FaultKind::ProcessingTimeJump => "processing-time-jump",
            FaultKind::Boundary => "boundary",
            FaultKind::Rescale => "rescale",
            FaultKind::SourceStall => "source-stall",
            FaultKind::ConnectorRestart => "connector-restart",
            FaultKind::FailedPrepare => "failed-prepare",
            FaultKind::LostCommitReply => "lost-commit-reply",
            FaultKind::DatabaseRestart => "database-restart",
        }
    }
}

impl FromStr for FaultKind {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
            let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown fault kind `{name}`: expected one of {}", known.join(", "))
        })
    }
}

/// The fault kinds turned on for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(BTreeSet<FaultKind>);

impl FaultSet {
    /// The set of `kinds`.
    pub fn of(kinds: &[FaultKind]) -> Self {
        FaultSet(kinds.iter().copied().collect())
    }

    /// Whether `kind` is on.
    pub fn contains(&self, kind: FaultKind) -> bool {
        self.0.contains(&kind)
    }

    /// The kinds of both.
    pub fn union(&self, other: &FaultSet) -> FaultSet {
        FaultSet(self.0.union(&other.0).copied().collect())
    }

    /// The kinds of this set that are not in `kinds`.
    pub fn without(&self, kinds: &[FaultKind]) -> FaultSet {
        FaultSet(self.0.iter().copied().filter(|k| !kinds.contains(k)).collect())
    }

    /// Whether no kind is on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names of the kinds on, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|k| k.name()).collect()
    }

    /// Any kind that crashes the job.
    pub fn crashes(&self) -> bool {
        [
            FaultKind::Crash,
            FaultKind::CrashMidCheckpoint,
            FaultKind::CrashBeforeCommit,
        ]
        .iter()
        .any(|k| self.contains(*k))
    }
}

/// A named selection of fault kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// No fault.
    None,
    /// Faults of the input: disorder, late and duplicated events, boundaries, stalls, connector
    /// restarts.
    Input,
    /// Crashes, lost notifications and rescales.
    Crash,
    /// Faults of the snapshot store and the database, with crashes that make recovery read them.
    Storage,
    /// Every fault kind.
    All,
    /// Each seed turns on a random subset (swarm testing).
    Swarm,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 6] = [
        Profile::None,
        Profile::Input,
        Profile::Crash,
        Profile::Storage,
        Profile::All,
        Profile::Swarm,
    ];

    /// The profile's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Profile::None => "none",
            Profile::Input => "input",
            Profile::Crash => "crash",
            Profile::Storage => "storage",
            Profile::All => "all",
            Profile::Swarm => "swarm",
        }
    }

    /// The fault kinds this profile turns on for `seed`.
    pub fn faults(self, seed: u64) -> FaultSet {
        use FaultKind::*;
        match self {
            Profile::None => FaultSet::default(),
            Profile::Input => FaultSet::of(&[
                Disorder,
                DisorderBeyondBound,
                LateEvents,
                DuplicateEvents,
                Boundary,
                SourceStall,
                ConnectorRestart,
            ]),
            Profile::Crash => FaultSet::of(&[Crash, CrashMidCheckpoint, CrashBeforeCommit, LostNotification, Rescale]),
            // Storage faults only show when a crash makes recovery read the store.
            // Database faults apply only with a database model (`--sink postgres-model`).
            Profile::Storage => FaultSet::of(&[
                FailedWrite,
                CorruptSnapshot,
                Crash,
                FailedPrepare,
                LostCommitReply,
                DatabaseRestart,
            ]),
            Profile::All => FaultSet::of(&FaultKind::ALL),
            Profile::Swarm => {
                let mut rng = rng(seed, Concern::Swarm);
                FaultSet(FaultKind::ALL.iter().copied().filter(|_| rng.gen_bool(0.5)).collect())
            }
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that names no fault profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault profile `{0}`: expected one of none, input, crash, storage, all, swarm")]
pub struct UnknownProfile(pub String);

impl FromStr for Profile {
    type Err = UnknownProfile;
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownProfile(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_swarm_varies_by_seed() {
        for profile in Profile::ALL {
            assert_eq!(profile.name().parse::<Profile>(), Ok(profile));
        }
        assert!("most".parse::<Profile>().unwrap_err().to_string().contains("swarm"));
        let subsets: BTreeSet<Vec<&str>> = (0..50).map(|s| Profile::Swarm.faults(s).names()).collect();
        assert!(subsets.len() > 40, "swarm draws different subsets: {}", subsets.len());
        assert_eq!(Profile::Swarm.faults(7), Profile::Swarm.faults(7));
        assert_eq!(Profile::All.faults(1).names().len(), FaultKind::ALL.len());
    }
}
