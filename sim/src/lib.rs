//! eddy-sim: the deterministic simulator.
//!
//! One thread, one event loop, a virtual clock. Every choice — which channel delivers next,
//! when a source reads, when to checkpoint, when to crash, which store write fails — is drawn
//! from a `ChaCha8Rng` derived from the run's seed, one stream per concern ([`seed`]), so the
//! same seed replays bit for bit and turning a fault kind on does not change the events the
//! seed generates. Every step is appended to a [`trace`] whose hash identifies the run.
//!
//! A [`Scenario`] is a pipeline with a seeded input generator and an independent check; the
//! simulator runs it under the faults of a [`Profile`] and returns a [`Report`]. Like the
//! engine, this crate is sans-IO: the CLI writes files, the simulator does not.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod check;
pub mod coverage;
pub mod decide;
pub mod differential;
pub mod faults;
pub mod input;
pub mod output;
pub mod outputs;
pub mod report;
pub mod run;
pub mod scenario;
pub mod seed;
pub mod shrink;
pub mod simulator;
mod stopwatch;
pub mod timeline;
pub mod trace;

/// The seeded generator a [`Differential`]'s input closure draws from, and its traits.
pub use rand;
pub use rand_chacha::ChaCha8Rng;

pub use check::{check, CheckConfig, Regressions};
pub use coverage::{Coverage, Moment, Moments};
pub use decide::{Decisions, Seeded, Tape};
pub use differential::Differential;
pub use eddy_engine::lines::{
    BadLine, ColumnType, EventSource, LineCommitter, LineFeed, LineParser, LiveInput, LiveTable, ParseErrors,
};
pub use faults::{FaultKind, FaultSet, Profile};
pub use output::{changelog_line, Committed, OutputTable, Rows};
pub use outputs::{Declaration, LiveOutputs, LiveSinks, Outputs};
pub use report::{Report, Timings, Violation};
pub use run::divergence;
pub use scenario::{
    parse_record_line, Case, CaseError, Checked, LinesRun, Oracle, Recorded, Run, RunConfig, Scenario, SinkModel,
    Workload,
};
pub use shrink::{shrink, shrink_until, Shrunk, DETERMINISM_TRIES};
pub use simulator::{simulate, simulate_with, FaultEvent, SimOptions, SimOutcome, SimStats};
pub use timeline::Timeline;
pub use trace::{Trace, TraceEvent};
