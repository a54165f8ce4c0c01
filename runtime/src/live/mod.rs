//! The live runtime: the engine's tasks on tokio, with the real clock, real files and real
//! crashes (docs/live.md).
//!
//! The engine is sans-IO; this module is the I/O half that a live run needs:
//!
//! - every [`Task`] of a [`Job`](eddy_engine::Job) runs as its own tokio task; the job's
//!   channels become bounded tokio channels (backpressure), each task keeping its
//!   per-channel mailboxes;
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
//!
//! The modules: `options` (the run's configuration, summary and errors; a leaf), `output` (the
//! transactional output a run commits to), `feed` (a followed input file), `protocol` (the
//! messages between the checkpoint delivery and the tasks), `checkpoint` (storing, completing and
//! restoring checkpoints), `runner` (one task on tokio), `progress` (the progress line). This
//! module starts the runtime and runs the loop that ties them together.

mod checkpoint;
mod feed;
mod options;
mod output;
mod progress;
mod protocol;
mod runner;
#[cfg(test)]
mod tests;

pub use feed::FileFeed;
pub use options::{LiveConfig, LiveError, LiveSummary};
pub use output::{LiveOutput, OutputFile};

use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use self::checkpoint::{recover, Delivery, Pending, Recovered, WallClock};
use self::progress::{sum, Progress, ProgressLine};
use self::protocol::{Control, Report};
use self::runner::{Route, Runner};
use crate::store::FsSnapshotStore;
use eddy_engine::{CheckpointCoordinator, JobGraph, Task, NO_WATERMARK};

/// Messages a channel holds before its sender waits (backpressure).
const CHANNEL_CAPACITY: usize = 64;

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
        Some(checkpoint) => {
            let mut said = format!("live: restored checkpoint {checkpoint}");
            if let Some(database) = output.database_output() {
                said.push_str(&format!(
                    "; the prepared transactions of table {} decided (those it recorded committed, later ones \
                     rolled back)",
                    database.table()
                ));
            }
            if output.has_file() {
                said.push_str(&format!(
                    "; output rewound to its committed {committed_len} bytes, then its staged lines committed ({} bytes)",
                    output.len()
                ));
            }
            eprintln!("{said}");
        }
        None => eprintln!(
            "live: no checkpoint to restore: starting from the beginning with an empty {}{}",
            output.describe(),
            if output.database_output().is_some() {
                " (no transaction of the job left prepared)"
            } else {
                ""
            }
        ),
    }
    if let Some(error) = input_error().or_else(|| output.take_failure()) {
        return Err(error);
    }
    let nodes = job.manifest(0).nodes;
    let snapshots_per_checkpoint = job.snapshots_per_checkpoint();
    let interval_ms = i64::try_from(config.checkpoint_interval.as_millis()).unwrap_or(i64::MAX);
    let checkpoints = CheckpointCoordinator::new(&store)?
        .with_retention(config.retained_checkpoints.max(2))
        .every(interval_ms);
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

    let mut delivery = Delivery {
        store: &mut store,
        output,
        controls: &controls,
        is_source: &is_source,
        nodes,
        checkpoints,
        snapshots_per_checkpoint,
        restored,
        last_completed_at: Instant::now(),
    };
    // The coordinator decides when a checkpoint is due, on the wall clock since the start.
    let clock = WallClock(started);
    let due_at = |delivery: &Delivery<'_>| {
        let due = delivery.checkpoints.next_due().unwrap_or(interval_ms).max(0);
        tokio::time::Instant::from_std(started) + Duration::from_millis(due as u64)
    };
    let mut progress_ticks = tokio::time::interval(config.progress_interval.unwrap_or(Duration::from_secs(3_600)));
    progress_ticks.tick().await;
    let mut progress_line = ProgressLine::new(started);
    let mut pending: Option<Pending> = None;
    let mut ended = vec![false; task_count];
    let mut final_checkpoint = None;
    loop {
        if pending.is_none() && ended.iter().all(|&e| e) {
            if let Some(checkpoint) = final_checkpoint {
                if delivery.last_completed() == Some(checkpoint) {
                    break;
                }
            }
            // Every task ended: one more checkpoint commits the sinks' last transactions.
            pending = delivery.trigger().await;
            final_checkpoint = pending.as_ref().map(|p| p.checkpoint);
        }
        tokio::select! {
            report = reports.recv() => match report {
                Some(Report::Acknowledged(snapshot)) => {
                    if pending.is_none() {
                        continue;
                    }
                    let stored = delivery.acknowledge(&snapshot);
                    let completed = if stored && delivery.ready() {
                        let done = pending.take().expect("pending checked above");
                        delivery.complete(done).await?
                    } else {
                        stored
                    };
                    if !completed {
                        // The checkpoint failed: a final one is taken again.
                        pending = None;
                        final_checkpoint = None;
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
            _ = tokio::time::sleep_until(due_at(&delivery)), if pending.is_none() && final_checkpoint.is_none() => {
                // A line that does not parse stops the run: nothing after it is read.
                if let Some(error) = input_error() {
                    return Err(error);
                }
                pending = delivery.tick(&clock).await;
            }
            _ = progress_ticks.tick(), if config.progress_interval.is_some() => {
                progress_line.print(&progress, &delivery, followed.map_or(0, FileFeed::skipped));
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
        progress_line.print(&progress, &delivery, followed.map_or(0, FileFeed::skipped));
    }
    Ok(LiveSummary {
        restored,
        skipped,
        records_read: sum(&progress.records_read),
        late_records: sum(&progress.late_records),
        checkpoints_completed: delivery.checkpoints.stats().completed,
        final_checkpoint: final_checkpoint.expect("the run ended with a final checkpoint"),
        output_len: output.len(),
    })
}
