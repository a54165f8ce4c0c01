//! The report of one simulated run.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::coverage::Moments;

/// The first property a run violated, with what is needed to act on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// `exactly-once`, `conservation`, `lateness`, `liveness`, `panic`, ...
    pub property: String,
    /// What went wrong, as the report prints it.
    pub message: String,
}

impl Violation {
    /// A violation of `property`.
    pub fn new(property: &str, message: impl Into<String>) -> Self {
        Violation {
            property: property.to_string(),
            message: message.into(),
        }
    }
}

/// What one simulated run did, and its verdict.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The run's seed.
    pub seed: u64,
    /// The fault profile's name.
    pub profile: String,
    /// The planted bug the run had, if any.
    pub bug: Option<String>,
    /// Where the sinks kept their transactions, if not staged (`postgres-model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// Messages each channel held before its sender waited, if bounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_capacity: Option<usize>,
    /// The fault kinds this run had on.
    pub faults: Vec<String>,
    /// Whether no property was violated.
    pub passed: bool,
    /// Simulator steps taken.
    pub steps: u64,
    /// The virtual time the run reached, in ms.
    pub virtual_duration_ms: i64,
    /// Input log entries (duplicates included).
    pub events_in: u64,
    /// Committed results.
    pub events_out: u64,
    /// Records on committed late outputs.
    pub late: u64,
    /// Duplicated input log entries.
    pub duplicates: u64,
    /// Checkpoints triggered.
    pub checkpoints_started: u64,
    /// Checkpoints completed.
    pub checkpoints_completed: u64,
    /// Restores from a checkpoint (a restart with nothing to restore is not counted).
    pub restores: u64,
    /// Crashes injected.
    pub crashes: u64,
    /// 16 hex digits.
    pub trace_hash: String,
    /// The moments the run reached (`coverage`).
    pub moments: Moments,
    /// The first property the run violated, if any.
    pub violation: Option<Violation>,
    /// Where the run's wall-clock time went (not part of the report's equality or JSON:
    /// two runs of a seed differ only here).
    #[serde(skip)]
    pub timings: Timings,
}

/// Where one run's wall-clock time went, by phase (what `eddy explore` sums per scenario).
#[derive(Clone, Copy, Debug, Default)]
pub struct Timings {
    /// Generating the input and placing the input faults.
    pub generate: std::time::Duration,
    /// The simulated run.
    pub simulate: std::time::Duration,
    /// The differential oracle: the pipeline's batch reference run, and comparing with it.
    pub reference: std::time::Duration,
    /// The hand-written check (the scenario's own reference and properties).
    pub judge: std::time::Duration,
    /// The determinism check's second run of the seed, whole.
    pub determinism: std::time::Duration,
}

impl Timings {
    /// The phases' names and durations, in the order a run goes through them.
    pub fn phases(&self) -> [(&'static str, std::time::Duration); 5] {
        [
            ("generate", self.generate),
            ("simulate", self.simulate),
            ("reference", self.reference),
            ("judge", self.judge),
            ("determinism", self.determinism),
        ]
    }
}

/// Timings never make two reports differ: a report is equal to another of the same run.
impl PartialEq for Timings {
    fn eq(&self, _: &Timings) -> bool {
        true
    }
}

impl Eq for Timings {}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scenario: {}  seed: {}  profile: {}",
            self.scenario, self.seed, self.profile
        )?;
        if let Some(sink) = &self.sink {
            write!(f, "  sink: {sink}")?;
        }
        if let Some(capacity) = self.channel_capacity {
            write!(f, "  channels: {capacity} messages")?;
        }
        match &self.bug {
            Some(bug) => writeln!(f, "  planted bug: {bug}")?,
            None => writeln!(f)?,
        }
        writeln!(
            f,
            "faults: {}",
            if self.faults.is_empty() {
                "none".to_string()
            } else {
                self.faults.join(", ")
            }
        )?;
        match &self.violation {
            None => writeln!(f, "verdict: PASS")?,
            Some(v) => writeln!(f, "verdict: FAIL {}: {}", v.property, v.message)?,
        }
        writeln!(
            f,
            "steps: {}  virtual duration: {} ms",
            self.steps, self.virtual_duration_ms
        )?;
        writeln!(
            f,
            "events: {} in, {} out, {} late, {} duplicates",
            self.events_in, self.events_out, self.late, self.duplicates
        )?;
        writeln!(
            f,
            "checkpoints: {} started, {} completed, {} restored; crashes: {}",
            self.checkpoints_started, self.checkpoints_completed, self.restores, self.crashes
        )?;
        write!(f, "trace-hash: {}", self.trace_hash)
    }
}
