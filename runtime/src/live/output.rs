//! Where a live run commits its result lines: the transactional output file (appended and
//! fsynced by the sinks' commits, truncated back to a checkpoint's committed length on
//! restore), or a PostgreSQL table (`crate::postgres`). It writes what it is given and rewinds
//! when told: when to commit and to which length to rewind is `checkpoint`'s decision.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::options::LiveError;
use crate::postgres::PostgresOutput;
use eddy_engine::lines::LineCommitter;
use eddy_engine::{CheckpointId, Record};

/// The transactional output file: sinks append committed lines (and fsync), the live
/// driver records the committed length in each checkpoint and truncates back to it on
/// restore, so the file never keeps uncommitted or torn lines after a recovery.
#[derive(Clone, Debug)]
pub struct OutputFile {
    inner: Arc<Mutex<OutputState>>,
}

#[derive(Debug)]
struct OutputState {
    path: PathBuf,
    file: File,
    len: u64,
    /// The first failed append; the run stops at the next checkpoint completion.
    failure: Option<String>,
}

impl OutputFile {
    /// Opens (or creates) `path` without changing it: recovery decides its length.
    pub fn open(path: &Path) -> Result<Self, LiveError> {
        let failed = |e: io::Error| LiveError::Output {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(failed)?;
        let len = file.seek(SeekFrom::End(0)).map_err(failed)?;
        Ok(OutputFile {
            inner: Arc::new(Mutex::new(OutputState {
                path: path.to_path_buf(),
                file,
                len,
                failure: None,
            })),
        })
    }

    /// Bytes committed so far (the file's length, as this process wrote it).
    pub fn len(&self) -> u64 {
        self.lock().len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Cuts the file back to `len` bytes, the length checkpoint `checkpoint` recorded.
    pub(super) fn truncate(&self, len: u64, checkpoint: CheckpointId) -> Result<(), LiveError> {
        let mut state = self.lock();
        let failed = |state: &OutputState, e: io::Error| LiveError::Output {
            path: state.path.display().to_string(),
            reason: e.to_string(),
        };
        let actual = state.file.metadata().map_err(|e| failed(&state, e))?.len();
        if actual < len {
            return Err(LiveError::OutputShrank {
                path: state.path.display().to_string(),
                checkpoint,
                committed: len,
                actual,
            });
        }
        let result = state
            .file
            .set_len(len)
            .and_then(|()| state.file.sync_all())
            .and_then(|()| state.file.seek(SeekFrom::Start(len)).map(drop));
        result.map_err(|e| failed(&state, e))?;
        state.len = len;
        Ok(())
    }

    /// Appends one line per record and makes them durable (a sink's commit).
    pub(super) fn append(&self, records: &[Record<String>]) {
        let mut state = self.lock();
        if state.failure.is_some() || records.is_empty() {
            return;
        }
        let mut bytes = Vec::with_capacity(records.iter().map(|r| r.value.len() + 1).sum());
        for record in records {
            debug_assert!(!record.value.contains('\n'), "an output line with a line break");
            bytes.extend_from_slice(record.value.as_bytes());
            bytes.push(b'\n');
        }
        match state.file.write_all(&bytes).and_then(|()| state.file.sync_data()) {
            Ok(()) => state.len += bytes.len() as u64,
            Err(e) => state.failure = Some(e.to_string()),
        }
    }

    fn take_failure(&self) -> Option<LiveError> {
        let mut state = self.lock();
        let reason = state.failure.take()?;
        Some(LiveError::Output {
            path: state.path.display().to_string(),
            reason,
        })
    }

    /// The committer a live pipeline's sinks commit through.
    pub fn committer(&self) -> LineCommitter {
        let output = self.clone();
        LineCommitter::new(move |_transaction, records| output.append(&records))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutputState> {
        self.inner.lock().expect("output file poisoned")
    }
}

/// Where a live run's result lines are committed: the output file, a PostgreSQL table whose
/// sinks prepare their transactions in the database (`crate::postgres`), or both: the table
/// takes the one output that declares it, the file every other output (a late side output).
#[derive(Clone)]
pub struct LiveOutput {
    file: Option<OutputFile>,
    database: Option<PostgresOutput>,
}

impl LiveOutput {
    /// Every output's lines to `file`.
    pub fn file(file: OutputFile) -> Self {
        LiveOutput {
            file: Some(file),
            database: None,
        }
    }

    /// The table output's rows to `database`, the other outputs' lines to `rest` (a run whose
    /// pipeline writes only its table needs none).
    pub fn database(database: PostgresOutput, rest: Option<OutputFile>) -> Self {
        LiveOutput {
            file: rest,
            database: Some(database),
        }
    }

    /// The database table, if the run writes one.
    pub fn database_output(&self) -> Option<&PostgresOutput> {
        self.database.as_ref()
    }

    /// Whether some outputs go to the file.
    pub(super) fn has_file(&self) -> bool {
        self.file.is_some()
    }

    /// Bytes committed to the file (what a checkpoint records; 0 without a file).
    pub fn len(&self) -> u64 {
        self.file.as_ref().map_or(0, OutputFile::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the run has committed so far, for the progress line.
    pub(super) fn describe_len(&self) -> String {
        let mut parts = Vec::new();
        if let Some(database) = &self.database {
            parts.push(format!("{} transactions committed", database.committed()));
        }
        if let Some(file) = &self.file {
            parts.push(format!("output {} bytes", file.len()));
        }
        parts.join(", ")
    }

    /// What a fresh start empties, or a restore rewinds, for the log line.
    pub(super) fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(database) = &self.database {
            parts.push(format!("table {}", database.table()));
        }
        if self.file.is_some() {
            parts.push("output file".to_string());
        }
        parts.join(" and ")
    }

    /// Rewinds the file to what `checkpoint` committed (checkpoint 0: empty). A database
    /// needs nothing here, its sinks decide the prepared transactions when they are
    /// restored; but with no checkpoint the table is emptied.
    pub(super) fn rewind(&self, len: u64, checkpoint: CheckpointId) -> Result<(), LiveError> {
        if let Some(file) = &self.file {
            file.truncate(len, checkpoint)?;
        }
        match &self.database {
            Some(database) if checkpoint == 0 => database.start_over().map_err(|e| LiveError::Database(e.to_string())),
            _ => Ok(()),
        }
    }

    pub(super) fn take_failure(&self) -> Option<LiveError> {
        let file = self.file.as_ref().and_then(OutputFile::take_failure);
        file.or_else(|| {
            self.database
                .as_ref()
                .and_then(PostgresOutput::take_failure)
                .map(LiveError::Database)
        })
    }
}
