//! What a live run is given and what it returns: its configuration, its summary, and the
//! errors that stop it. Plain data, and the leaf of the live runtime's modules: it imports
//! none of them, and touches no file, clock or task.

use std::io;
use std::time::Duration;

use eddy_engine::{CheckpointId, StoreError};

#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Time between the end of one checkpoint and the trigger of the next.
    pub checkpoint_interval: Duration,
    /// Events per second over all sources; as fast as possible if `None`.
    pub rate: Option<f64>,
    /// At most this many records per source read.
    pub source_batch_size: usize,
    /// How often progress goes to stderr; never if `None`.
    pub progress_interval: Option<Duration>,
    /// Completed checkpoints kept in the store (older ones are discarded); at least 2, so
    /// that recovery can fall back when the newest one does not read back.
    pub retained_checkpoints: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            checkpoint_interval: Duration::from_millis(1_000),
            rate: None,
            source_batch_size: 1_024,
            progress_interval: Some(Duration::from_secs(1)),
            retained_checkpoints: 3,
        }
    }
}

/// What a live run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveSummary {
    /// The checkpoint the run restored, or `None` for a fresh start.
    pub restored: Option<CheckpointId>,
    /// Newer checkpoints that could not be restored, and why.
    pub skipped: Vec<(CheckpointId, String)>,
    /// Records the sources read in this process (after the restored positions).
    pub records_read: u64,
    pub late_records: u64,
    pub checkpoints_completed: u64,
    /// The final checkpoint, which committed the last output.
    pub final_checkpoint: CheckpointId,
    /// Bytes in the output file at the end (transactions committed, into a database).
    pub output_len: u64,
}

/// A live run that could not go on: the environment failed (the message names the file).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    #[error("output {path}: {reason}")]
    Output { path: String, reason: String },
    #[error("snapshot store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "output {path} holds {actual} bytes, fewer than the {committed} that checkpoint {checkpoint} \
         committed: it was changed outside eddy (remove the state directory to start over)"
    )]
    OutputShrank {
        path: String,
        checkpoint: CheckpointId,
        committed: u64,
        actual: u64,
    },
    #[error("input {0}")]
    Input(String),
    #[error("PostgreSQL: {0}; run the same command again: it resumes from the last checkpoint")]
    Database(String),
    #[error("a task failed: {0}")]
    Task(String),
    #[error("cannot start the tokio runtime: {0}")]
    Runtime(io::Error),
}
