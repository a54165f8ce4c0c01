//! One task on tokio: delivers what is ready, fires processing time from the real clock, reads
//! (sources, paced by `rate`), sends what the task emitted along its routes, and obeys the
//! coordinator's controls. A runner knows its own task only: it never touches the store or the
//! output, which the coordinator owns.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::progress::Progress;
use super::protocol::{Control, Report};
use eddy_engine::{Message, Task, Timestamp};

/// Where channel `c`'s elements go: the receiving task's queue, tagged with its input.
pub(super) struct Route {
    pub(super) sender: mpsc::Sender<(usize, Message)>,
    pub(super) input: usize,
}

/// One task on tokio: delivers what is ready, fires processing time from the real clock,
/// reads (sources, paced by `rate`), and obeys the coordinator.
pub(super) struct Runner {
    pub(super) index: usize,
    pub(super) task: Task,
    pub(super) routes: Arc<Vec<Route>>,
    pub(super) data: mpsc::Receiver<(usize, Message)>,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) reports: mpsc::UnboundedSender<Report>,
    pub(super) progress: Arc<Progress>,
    pub(super) started: Instant,
    /// Records per second for this source task.
    pub(super) rate: Option<f64>,
    pub(super) source_batch_size: usize,
}

impl Runner {
    pub(super) async fn run(mut self) {
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
