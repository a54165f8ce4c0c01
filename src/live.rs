//! The live runtime: the engine's tasks on tokio, with the real clock, real files and real
//! crashes (docs/live.md).
//!
//! The engine is sans-IO; this module is the I/O half that a live run needs:
//!
//! - every [`Task`] of a [`Job`] runs as its own tokio task; the job's channels become
//!   bounded tokio channels (backpressure), each task keeping its per-channel mailboxes;
//! - processing time is the real clock (milliseconds since the run started): source
//!   watermarks and processing-time timers fire from it, and `rate` paces the sources;
//! - a coordinator triggers a checkpoint every `checkpoint_interval`, writes the task
//!   snapshots to a [`FsSnapshotStore`], then the committed length of the output file, then
//!   the manifest (the commit point), and notifies the tasks, whose transactional sinks then
//!   append and fsync what they staged ([`OutputFile`]);
//! - on start it restores the newest checkpoint that reads back intact, falling back to
//!   older ones, after truncating the output file to the length that checkpoint recorded.
//!
//! The checkpoint protocol is the engine's (docs/snapshots.md): one checkpoint in flight,
//! ids never reused, a checkpoint exists only with its manifest.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use crate::engine::{
    restore_checkpoint, CheckpointId, Job, JobGraph, Manifest, Message, ObjectKey, Record, Retention, SnapshotStore,
    StoreError, Task, TaskSnapshot, Timestamp, END_OF_TIME, NO_WATERMARK,
};
use crate::postgres::PostgresOutput;
use crate::sim::{LineCommitter, LineFeed};
use crate::store::FsSnapshotStore;

/// The driver's object in each checkpoint: the output file's committed length.
const OUTPUT_OBJECT: &str = "live-output";
const OUTPUT_MAGIC: &[u8; 8] = b"EDDYOUT1";
/// Messages a channel holds before its sender waits (backpressure).
const CHANNEL_CAPACITY: usize = 64;

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
    fn truncate(&self, len: u64, checkpoint: CheckpointId) -> Result<(), LiveError> {
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
    fn append(&self, records: &[Record<String>]) {
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

/// Where a live run's result lines are committed: a file, or a PostgreSQL table whose
/// sinks prepare their transactions in the database (`crate::postgres`).
#[derive(Clone)]
pub enum LiveOutput {
    File(OutputFile),
    Postgres(PostgresOutput),
}

impl LiveOutput {
    /// The committer the live pipeline's sinks commit through.
    pub fn committer(&self) -> LineCommitter {
        match self {
            LiveOutput::File(file) => file.committer(),
            LiveOutput::Postgres(database) => database.committer(),
        }
    }

    /// Bytes committed to the file; transactions committed to the database by this process.
    pub fn len(&self) -> u64 {
        match self {
            LiveOutput::File(file) => file.len(),
            LiveOutput::Postgres(database) => database.committed(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn describe_len(&self) -> String {
        match self {
            LiveOutput::File(file) => format!("output {} bytes", file.len()),
            LiveOutput::Postgres(database) => format!("{} transactions committed", database.committed()),
        }
    }

    /// Rewinds the file to what `checkpoint` committed (checkpoint 0: empty). A database
    /// needs nothing here, its sinks decide the prepared transactions when they are
    /// restored; but with no checkpoint the table is emptied.
    fn rewind(&self, len: u64, checkpoint: CheckpointId) -> Result<(), LiveError> {
        match self {
            LiveOutput::File(file) => file.truncate(len, checkpoint),
            LiveOutput::Postgres(database) if len == 0 && checkpoint == 0 => {
                database.start_over().map_err(|e| LiveError::Database(e.to_string()))
            }
            LiveOutput::Postgres(_) => Ok(()),
        }
    }

    fn take_failure(&self) -> Option<LiveError> {
        match self {
            LiveOutput::File(file) => file.take_failure(),
            LiveOutput::Postgres(database) => database.take_failure().map(LiveError::Database),
        }
    }
}

/// A JSON-lines file followed as it grows (`--follow`, like `tail -f`): each poll hands
/// the source the complete lines appended since the last one. A line still being written
/// (no line break yet) waits for the next poll.
#[derive(Debug)]
pub struct FileFeed {
    path: PathBuf,
    state: Mutex<FeedState>,
}

#[derive(Debug)]
struct FeedState {
    file: File,
    /// Bytes after the last line break read so far.
    partial: Vec<u8>,
    /// Lines read so far (blank ones included): the next line's number minus one.
    lines: usize,
    /// The first error: a line that does not parse, or a failed read.
    error: Option<String>,
}

impl FileFeed {
    pub fn open(path: &Path) -> Result<Arc<Self>, LiveError> {
        let file = File::open(path).map_err(|e| LiveError::Input(format!("{}: {e}", path.display())))?;
        Ok(Arc::new(FileFeed {
            path: path.to_path_buf(),
            state: Mutex::new(FeedState {
                file,
                partial: Vec::new(),
                lines: 0,
                error: None,
            }),
        }))
    }

    fn take_error(&self) -> Option<LiveError> {
        let error = self.lock().error.take()?;
        Some(LiveError::Input(error))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().expect("followed file poisoned")
    }
}

impl LineFeed for FileFeed {
    fn poll_lines(&self, lines: &mut Vec<(usize, String)>) {
        let mut state = self.lock();
        let FeedState {
            file, partial, error, ..
        } = &mut *state;
        if error.is_some() {
            return;
        }
        if let Err(e) = file.read_to_end(partial) {
            *error = Some(format!("{}: {e}", self.path.display()));
            return;
        }
        let Some(last_break) = partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=last_break).collect();
        for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
            state.lines += 1;
            let line_number = state.lines;
            match std::str::from_utf8(line) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => lines.push((line_number, text.to_string())),
                Err(e) => {
                    state.error = Some(format!("{}:{line_number}: {e}", self.path.display()));
                    return;
                }
            }
        }
    }

    fn report_error(&self, line_number: usize, reason: String) {
        let mut state = self.lock();
        if state.error.is_none() {
            state.error = Some(format!("{}:{line_number}: {reason}", self.path.display()));
        }
    }
}

fn encode_output_len(len: u64) -> Vec<u8> {
    let mut bytes = OUTPUT_MAGIC.to_vec();
    bytes.extend_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    bytes
}

fn decode_output_len(bytes: &[u8]) -> Result<u64, String> {
    if bytes.len() != 20 || &bytes[..8] != OUTPUT_MAGIC {
        return Err(format!(
            "expected 20 bytes starting with {:?}, found {} bytes",
            std::str::from_utf8(OUTPUT_MAGIC).unwrap_or("?"),
            bytes.len()
        ));
    }
    let crc = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..16]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")))
}

/// A job rebuilt from the state directory, and its output rewound.
struct Recovered {
    job: Job,
    /// The checkpoint restored, or `None` for a fresh start.
    checkpoint: Option<CheckpointId>,
    /// Newer checkpoints that could not be restored, and why.
    skipped: Vec<(CheckpointId, String)>,
    /// The output length the restored checkpoint recorded (before its staged lines).
    committed_len: u64,
}

/// Restores the newest checkpoint whose objects all read back, truncating `output` to the
/// length it committed; a fresh job with an empty output if none does.
fn recover(graph: &JobGraph, store: &FsSnapshotStore, output: &LiveOutput) -> Result<Recovered, LiveError> {
    let mut skipped = Vec::new();
    for checkpoint in store.checkpoints()?.into_iter().rev() {
        let committed = match store
            .get_extra(checkpoint, OUTPUT_OBJECT)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                decode_output_len(&bytes).map_err(|reason| format!("checkpoint {checkpoint} {OUTPUT_OBJECT}: {reason}"))
            }) {
            Ok(len) => len,
            Err(reason) => {
                skipped.push((checkpoint, reason));
                continue;
            }
        };
        // Before the restore: restoring re-commits the checkpoint's staged transactions,
        // which were not yet in the file at `committed`.
        output.rewind(committed, checkpoint)?;
        match restore_checkpoint(graph, store, checkpoint) {
            Ok(job) => {
                return Ok(Recovered {
                    job,
                    checkpoint: Some(checkpoint),
                    skipped,
                    committed_len: committed,
                })
            }
            Err(error) => skipped.push((checkpoint, error.to_string())),
        }
    }
    output.rewind(0, 0)?;
    Ok(Recovered {
        job: Job::new(graph),
        checkpoint: None,
        skipped,
        committed_len: 0,
    })
}

/// Runs `graph` live until its input ends, restoring from and checkpointing to `store`.
/// The graph's sinks must commit through `output.committer()`; if its source follows
/// `followed`, the run never ends, and stops at the first line that does not parse.
pub fn run_live(
    graph: &JobGraph,
    output: &LiveOutput,
    store: FsSnapshotStore,
    config: &LiveConfig,
    followed: Option<&FileFeed>,
) -> Result<LiveSummary, LiveError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .map_err(LiveError::Runtime)?;
    runtime.block_on(drive(graph, output, store, config, followed))
}

/// From the coordinator to one task.
enum Control {
    Trigger(CheckpointId, oneshot::Sender<()>),
    Complete(CheckpointId, oneshot::Sender<()>),
    Stop,
}

/// From a task to the coordinator.
enum Report {
    Acknowledged(TaskSnapshot),
    Ended(usize),
}

/// What tasks publish for the progress line.
struct Progress {
    records_read: Vec<AtomicU64>,
    late_records: Vec<AtomicU64>,
    watermarks: Vec<AtomicI64>,
}

struct Pending {
    checkpoint: CheckpointId,
    /// The output's length when the checkpoint started: every earlier checkpoint's
    /// transactions, none of this one's.
    output_len: u64,
    snapshots: Vec<TaskSnapshot>,
}

async fn drive(
    graph: &JobGraph,
    output: &LiveOutput,
    mut store: FsSnapshotStore,
    config: &LiveConfig,
    followed: Option<&FileFeed>,
) -> Result<LiveSummary, LiveError> {
    let input_error = || followed.and_then(FileFeed::take_error);
    let started = Instant::now();
    let Recovered {
        job,
        checkpoint: restored,
        skipped,
        committed_len,
    } = recover(graph, &store, output)?;
    for (checkpoint, reason) in &skipped {
        eprintln!("live: cannot restore checkpoint {checkpoint}, falling back: {reason}");
    }
    match restored {
        Some(checkpoint) => match output {
            LiveOutput::File(file) => eprintln!(
                "live: restored checkpoint {checkpoint}; output rewound to its committed {committed_len} bytes, \
                 then its staged lines committed ({} bytes)",
                file.len()
            ),
            LiveOutput::Postgres(database) => eprintln!(
                "live: restored checkpoint {checkpoint}; the prepared transactions of table {} decided \
                 (those it recorded committed, later ones rolled back)",
                database.table()
            ),
        },
        None => eprintln!(
            "live: no checkpoint to restore: starting from the beginning with an empty {}",
            match output {
                LiveOutput::File(_) => "output".to_string(),
                LiveOutput::Postgres(database) =>
                    format!("table {} (no transaction of the job left prepared)", database.table()),
            }
        ),
    }
    if let Some(error) = input_error().or_else(|| output.take_failure()) {
        return Err(error);
    }
    let nodes = job.manifest(0).nodes;
    let snapshots_per_checkpoint = job.snapshots_per_checkpoint();
    let mut next_checkpoint = store.highest_checkpoint()?.map_or(1, |id| id + 1);
    let (tasks, channels) = job.into_tasks();
    let task_count = tasks.len();
    let sources = tasks.iter().filter(|t| t.is_source()).count().max(1);
    let is_source: Vec<bool> = tasks.iter().map(Task::is_source).collect();

    let (data_senders, data_receivers): (Vec<_>, Vec<_>) =
        (0..task_count).map(|_| mpsc::channel(CHANNEL_CAPACITY)).unzip();
    let routes: Arc<Vec<Route>> = Arc::new(
        channels
            .iter()
            .map(|c| Route {
                sender: data_senders[c.to].clone(),
                input: c.to_input,
            })
            .collect(),
    );
    drop(data_senders);
    let progress = Arc::new(Progress {
        records_read: (0..task_count).map(|_| AtomicU64::new(0)).collect(),
        late_records: (0..task_count).map(|_| AtomicU64::new(0)).collect(),
        watermarks: (0..task_count).map(|_| AtomicI64::new(NO_WATERMARK)).collect(),
    });
    let (report_sender, mut reports) = mpsc::unbounded_channel();
    let mut controls = Vec::with_capacity(task_count);
    let mut running = JoinSet::new();
    for (index, (task, data)) in tasks.into_iter().zip(data_receivers).enumerate() {
        let (control_sender, control) = mpsc::unbounded_channel();
        controls.push(control_sender);
        let runner = Runner {
            index,
            task,
            routes: Arc::clone(&routes),
            data,
            control,
            reports: report_sender.clone(),
            progress: Arc::clone(&progress),
            started,
            rate: config.rate.map(|r| r / sources as f64),
            source_batch_size: config.source_batch_size.max(1),
        };
        running.spawn(runner.run());
    }
    drop(report_sender);

    let mut coordinator = Coordinator {
        store: &mut store,
        output,
        controls: &controls,
        is_source: &is_source,
        nodes,
        retention: Retention::new(config.retained_checkpoints.max(2)),
        completed: 0,
        last_completed: restored,
        last_completed_at: Instant::now(),
    };
    let mut checkpoints = tokio::time::interval(config.checkpoint_interval);
    checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    checkpoints.tick().await; // the first tick is immediate
    let mut progress_ticks = tokio::time::interval(config.progress_interval.unwrap_or(Duration::from_secs(3_600)));
    progress_ticks.tick().await;
    let mut progress_line = ProgressLine::new(started);
    let mut pending: Option<Pending> = None;
    let mut ended = vec![false; task_count];
    let mut final_checkpoint = None;
    loop {
        if pending.is_none() && ended.iter().all(|&e| e) {
            if let Some(checkpoint) = final_checkpoint {
                if coordinator.last_completed == Some(checkpoint) {
                    break;
                }
            }
            // Every task ended: one more checkpoint commits the sinks' last transactions.
            let checkpoint = next_checkpoint;
            next_checkpoint += 1;
            final_checkpoint = Some(checkpoint);
            pending = Some(coordinator.trigger(checkpoint).await);
        }
        tokio::select! {
            report = reports.recv() => match report {
                Some(Report::Acknowledged(snapshot)) => {
                    let Some(p) = pending.as_mut() else { continue };
                    if snapshot.checkpoint == p.checkpoint {
                        p.snapshots.push(snapshot);
                    }
                    if p.snapshots.len() == snapshots_per_checkpoint {
                        let done = pending.take().expect("pending checked above");
                        if !coordinator.complete(done).await? {
                            // The checkpoint failed: a final one is taken again.
                            final_checkpoint = None;
                        }
                    }
                }
                Some(Report::Ended(task)) => ended[task] = true,
                None => return Err(LiveError::Task("every task stopped before the end".into())),
            },
            finished = running.join_next() => {
                let message = match finished {
                    Some(Err(e)) => e.to_string(),
                    _ => "a task stopped before the end".into(),
                };
                return Err(LiveError::Task(message));
            }
            _ = checkpoints.tick() => {
                // A line that does not parse stops the run: nothing after it is read.
                if let Some(error) = input_error() {
                    return Err(error);
                }
                if pending.is_none() && final_checkpoint.is_none() {
                    let checkpoint = next_checkpoint;
                    next_checkpoint += 1;
                    pending = Some(coordinator.trigger(checkpoint).await);
                }
            }
            _ = progress_ticks.tick(), if config.progress_interval.is_some() => {
                progress_line.print(&progress, &coordinator);
            }
        }
    }
    for control in &controls {
        let _ = control.send(Control::Stop);
    }
    while let Some(finished) = running.join_next().await {
        if let Err(e) = finished {
            return Err(LiveError::Task(e.to_string()));
        }
    }
    if config.progress_interval.is_some() {
        progress_line.print(&progress, &coordinator);
    }
    Ok(LiveSummary {
        restored,
        skipped,
        records_read: sum(&progress.records_read),
        late_records: sum(&progress.late_records),
        checkpoints_completed: coordinator.completed,
        final_checkpoint: final_checkpoint.expect("the run ended with a final checkpoint"),
        output_len: output.len(),
    })
}

fn sum(counters: &[AtomicU64]) -> u64 {
    counters.iter().map(|c| c.load(Ordering::Relaxed)).sum()
}

/// Triggers, stores and completes checkpoints (one at a time).
struct Coordinator<'a> {
    store: &'a mut FsSnapshotStore,
    output: &'a LiveOutput,
    controls: &'a [mpsc::UnboundedSender<Control>],
    is_source: &'a [bool],
    nodes: Vec<(String, usize)>,
    retention: Retention,
    completed: u64,
    last_completed: Option<CheckpointId>,
    last_completed_at: Instant,
}

impl Coordinator<'_> {
    /// Starts `checkpoint`: first at every non-source task (so that each knows it before
    /// any barrier can reach it, as `Job::trigger_checkpoint` does in one step), then at
    /// the sources, which snapshot their positions and send the barrier.
    async fn trigger(&mut self, checkpoint: CheckpointId) -> Pending {
        let output_len = self.output.len();
        for sources in [false, true] {
            let mut waiting = Vec::new();
            for (control, _) in self.controls.iter().zip(self.is_source).filter(|(_, &s)| s == sources) {
                let (done, wait) = oneshot::channel();
                let _ = control.send(Control::Trigger(checkpoint, done));
                waiting.push(wait);
            }
            for wait in waiting {
                let _ = wait.await;
            }
        }
        Pending {
            checkpoint,
            output_len,
            snapshots: Vec::new(),
        }
    }

    /// Stores every snapshot, the output's committed length, then the manifest; tells the
    /// tasks (sinks commit). False if a write failed: the checkpoint does not exist, and its
    /// sinks' transactions are committed with the next one.
    async fn complete(&mut self, pending: Pending) -> Result<bool, LiveError> {
        let checkpoint = pending.checkpoint;
        // A sink that failed its pre-commit (a database's prepare) fails the checkpoint and
        // the run: a restart restores the last checkpoint and replays from there.
        if let Some(error) = self.output.take_failure() {
            return Err(error);
        }
        if let Err(error) = self.store_checkpoint(&pending) {
            eprintln!("live: checkpoint {checkpoint} failed: {error}");
            return Ok(false);
        }
        let mut waiting = Vec::new();
        for control in self.controls {
            let (done, wait) = oneshot::channel();
            let _ = control.send(Control::Complete(checkpoint, done));
            waiting.push(wait);
        }
        for wait in waiting {
            let _ = wait.await;
        }
        if let Some(error) = self.output.take_failure() {
            return Err(error);
        }
        self.completed += 1;
        self.last_completed = Some(checkpoint);
        self.last_completed_at = Instant::now();
        self.retention.notified(checkpoint, self.store)?;
        Ok(true)
    }

    fn store_checkpoint(&mut self, pending: &Pending) -> Result<(), StoreError> {
        let checkpoint = pending.checkpoint;
        for snapshot in &pending.snapshots {
            let key = ObjectKey::Task {
                checkpoint,
                node: snapshot.node,
                subtask: snapshot.subtask,
            };
            self.store.put(key, snapshot.encode())?;
        }
        self.store
            .put_extra(checkpoint, OUTPUT_OBJECT, &encode_output_len(pending.output_len))?;
        let manifest = Manifest {
            checkpoint,
            nodes: self.nodes.clone(),
        };
        self.store.put(ObjectKey::Manifest { checkpoint }, manifest.encode())
    }
}

/// Where channel `c`'s elements go: the receiving task's queue, tagged with its input.
struct Route {
    sender: mpsc::Sender<(usize, Message)>,
    input: usize,
}

/// One task on tokio: delivers what is ready, fires processing time from the real clock,
/// reads (sources, paced by `rate`), and obeys the coordinator.
struct Runner {
    index: usize,
    task: Task,
    routes: Arc<Vec<Route>>,
    data: mpsc::Receiver<(usize, Message)>,
    control: mpsc::UnboundedReceiver<Control>,
    reports: mpsc::UnboundedSender<Report>,
    progress: Arc<Progress>,
    started: Instant,
    /// Records per second for this source task.
    rate: Option<f64>,
    source_batch_size: usize,
}

impl Runner {
    async fn run(mut self) {
        let mut reported_end = false;
        let has_inputs = self.task.input_channels() > 0;
        loop {
            while let Some(input) = (0..self.task.input_channels()).find(|&i| self.task.is_ready(i)) {
                self.task.handle_input(input);
                self.flush().await;
            }
            self.publish();
            if self.task.is_ended() && !reported_end {
                reported_end = true;
                let _ = self.reports.send(Report::Ended(self.index));
            }
            let deadline = self
                .task
                .next_processing_deadline()
                .map(|ms| self.started + Duration::from_millis(ms.max(0) as u64));
            let read_at = (self.task.is_source() && !self.task.is_ended()).then(|| self.next_read_at());
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::Trigger(checkpoint, done)) => {
                        self.task.handle_checkpoint_trigger(checkpoint);
                        self.flush().await;
                        let _ = done.send(());
                    }
                    Some(Control::Complete(checkpoint, done)) => {
                        self.task.handle_checkpoint_complete(checkpoint);
                        self.flush().await;
                        let _ = done.send(());
                    }
                    Some(Control::Stop) | None => return,
                },
                message = self.data.recv(), if has_inputs => {
                    if let Some((input, message)) = message {
                        self.task.push_input(input, message);
                        while let Ok((input, message)) = self.data.try_recv() {
                            self.task.push_input(input, message);
                        }
                    }
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    self.task.handle_processing_time(self.now_ms());
                    self.flush().await;
                }
                _ = sleep_until(read_at), if read_at.is_some() => {
                    let allowed = self.records_allowed();
                    self.task.handle_poll_source(allowed.clamp(1, self.source_batch_size as u64) as usize);
                    self.flush().await;
                }
            }
        }
    }

    fn now_ms(&self) -> Timestamp {
        self.started.elapsed().as_millis() as Timestamp
    }

    fn records_read(&self) -> u64 {
        self.task.metrics().records_out
    }

    /// Records the pace allows now, beyond those read.
    fn records_allowed(&self) -> u64 {
        match self.rate {
            None => self.source_batch_size as u64,
            Some(rate) => ((self.started.elapsed().as_secs_f64() * rate) as u64).saturating_sub(self.records_read()),
        }
    }

    /// When the pace allows the next read: at once without a rate, else once a few
    /// milliseconds' worth of records (at least one) may be read.
    fn next_read_at(&self) -> Instant {
        let Some(rate) = self.rate else {
            return Instant::now();
        };
        let step = (rate / 200.0).max(1.0);
        let at_secs = (self.records_read() as f64 + step) / rate;
        self.started + Duration::from_secs_f64(at_secs.min(1e9))
    }

    /// Sends what the task emitted, in order (waiting while a receiver is full), then its
    /// acknowledgements.
    async fn flush(&mut self) {
        while let Some((channel, message)) = self.task.poll_output() {
            let route = &self.routes[channel];
            if route.sender.send((route.input, message)).await.is_err() {
                return; // the receiver stopped: the run is shutting down
            }
        }
        while let Some(snapshot) = self.task.poll_acknowledgement() {
            let _ = self.reports.send(Report::Acknowledged(snapshot));
        }
    }

    fn publish(&self) {
        let metrics = self.task.metrics();
        if self.task.is_source() {
            self.progress.records_read[self.index].store(metrics.records_out, Ordering::Relaxed);
        }
        self.progress.late_records[self.index].store(metrics.late_records, Ordering::Relaxed);
        self.progress.watermarks[self.index].store(self.task.watermark(), Ordering::Relaxed);
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Prints `events/s, watermark, last checkpoint` on stderr.
struct ProgressLine {
    started: Instant,
    last_at: Instant,
    last_read: u64,
}

impl ProgressLine {
    fn new(started: Instant) -> Self {
        ProgressLine {
            started,
            last_at: started,
            last_read: 0,
        }
    }

    fn print(&mut self, progress: &Progress, coordinator: &Coordinator<'_>) {
        let now = Instant::now();
        let read = sum(&progress.records_read);
        let seconds = now.duration_since(self.last_at).as_secs_f64().max(1e-9);
        let rate = (read - self.last_read.min(read)) as f64 / seconds;
        (self.last_at, self.last_read) = (now, read);
        // The job's watermark: the lowest over its tasks.
        let watermark = progress
            .watermarks
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .min()
            .unwrap_or(NO_WATERMARK);
        let watermark = match watermark {
            NO_WATERMARK => "none".to_string(),
            END_OF_TIME => "end of input".to_string(),
            w => format!("{w} ms"),
        };
        let checkpoint = match coordinator.last_completed {
            Some(id) => format!(
                "{id} ({:.1} s ago)",
                now.duration_since(coordinator.last_completed_at).as_secs_f64()
            ),
            None => "none".to_string(),
        };
        eprintln!(
            "live: {:.1} s, {read} events read, {rate:.0} events/s, watermark {watermark}, last checkpoint {checkpoint}, {} late, {}",
            now.duration_since(self.started).as_secs_f64(),
            sum(&progress.late_records),
            coordinator.output.describe_len(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_length_reads_back_and_any_flipped_bit_is_caught() {
        let bytes = encode_output_len(123_456_789);
        assert_eq!(decode_output_len(&bytes), Ok(123_456_789));
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_output_len(&flipped).is_err(), "bit {bit} flipped unnoticed");
        }
        assert!(decode_output_len(&bytes[..19]).is_err());
    }

    fn record(line: &str) -> Record<String> {
        Record::new(0, line.to_string())
    }

    #[test]
    fn the_output_file_appends_whole_lines_and_truncates_back_to_a_committed_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let output = OutputFile::open(&path).unwrap();
        output.append(&[record("a"), record("bb")]);
        let committed = output.len();
        assert_eq!(committed, 5);
        output.append(&[record("ccc")]);
        // A torn write after the commit point, as a crash would leave it.
        fs_append(&path, b"{\"torn");
        let reopened = OutputFile::open(&path).unwrap();
        reopened.truncate(committed, 7).unwrap();
        reopened.append(&[record("d")]);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nbb\nd\n");
        assert!(matches!(
            reopened.truncate(100, 8),
            Err(LiveError::OutputShrank {
                checkpoint: 8,
                committed: 100,
                actual: 7,
                ..
            })
        ));
    }

    #[test]
    fn a_followed_file_hands_out_complete_lines_with_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        std::fs::write(&path, "a\n\nb\nhalf").unwrap();
        let feed = FileFeed::open(&path).unwrap();
        let mut lines = Vec::new();
        feed.poll_lines(&mut lines);
        assert_eq!(lines, vec![(1, "a".to_string()), (3, "b".to_string())]);
        lines.clear();
        feed.poll_lines(&mut lines);
        assert!(lines.is_empty(), "a line without its break waits: {lines:?}");
        fs_append(&path, b" done\nc\n");
        feed.poll_lines(&mut lines);
        assert_eq!(lines, vec![(4, "half done".to_string()), (5, "c".to_string())]);
        feed.report_error(5, "bad".into());
        let error = feed.take_error().expect("the reported error").to_string();
        assert!(error.ends_with("in.jsonl:5: bad"), "{error}");
    }

    fn fs_append(path: &Path, bytes: &[u8]) {
        let mut file = OpenOptions::new().append(true).open(path).unwrap();
        file.write_all(bytes).unwrap();
    }
}
