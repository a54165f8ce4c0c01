//! A task: one parallel instance of an operator, with one FIFO mailbox per input channel.
//!
//! Sans-IO: the driver pushes elements into mailboxes (`push_input`), picks which mailbox
//! delivers next (`handle_input`), advances processing time (`handle_processing_time`),
//! polls sources (`handle_poll_source`) and drains what the task emitted (`poll_output`,
//! in emission order, then `poll_acknowledgement`). The task owns watermark combination,
//! barrier alignment and end-of-input; the operator inside owns the semantics.

use std::collections::VecDeque;

use crate::element::{Batch, CheckpointId, Message, Timestamp};
use crate::graph::NodeId;
use crate::operator::{Operator, OperatorEvents, Output};
use crate::partition::Partitioner;
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError, TaskSnapshot};
use crate::source::SourceReader;
use crate::tap::{late_input, InputDrops, LateRecord};
use crate::time::{SourceWatermark, StatusChange, WatermarkStrategy, WatermarkTracker, END_OF_TIME, NO_WATERMARK};

/// Index of a channel in its [`Job`](crate::Job).
pub type ChannelId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub node: NodeId,
    pub subtask: usize,
}

/// Counters a task keeps; summed over tasks in run summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    pub records_in: u64,
    pub records_out: u64,
    pub late_records: u64,
    pub duplicates: u64,
    pub events: OperatorEvents,
}

pub(crate) enum TaskBody {
    Source {
        reader: Box<dyn SourceReader>,
        watermarks: WatermarkStrategy,
        next_watermark_at: Timestamp,
        emitted_watermark: Timestamp,
        /// Whether the task last told its channels it is idle.
        idle: bool,
    },
    Operator(Box<dyn Operator>),
}

struct InputChannel {
    /// The operator's logical input this channel feeds.
    input: usize,
    mailbox: VecDeque<Message>,
    ended: bool,
    /// Set while this channel is held back for barrier alignment.
    barrier: Option<CheckpointId>,
}

pub(crate) struct OutputEdge {
    pub(crate) port: usize,
    pub(crate) channels: Vec<ChannelId>,
    pub(crate) partitioner: Box<dyn Partitioner>,
}

pub struct Task {
    pub id: TaskId,
    pub name: String,
    body: TaskBody,
    inputs: Vec<InputChannel>,
    watermarks: WatermarkTracker,
    outputs: Vec<OutputEdge>,
    outbox: VecDeque<(ChannelId, Message)>,
    acknowledgements: VecDeque<TaskSnapshot>,
    ended: bool,
    metrics: TaskMetrics,
    max_parallelism: usize,
    /// The checkpoint in flight that this task has not acknowledged yet.
    awaiting_checkpoint: Option<CheckpointId>,
    /// The last checkpoint this task snapshotted or was restored from (0: none).
    last_snapshot: CheckpointId,
    /// Records sent to late outputs since they were last taken, if tapped (`tap`).
    late_tap: Option<Vec<LateRecord>>,
    /// Records to remove from the operator's inputs (`tap`).
    drops: Option<InputDrops>,
    /// Records held back by `drops`, replayed at the end: `((watermark, place), input, record)`.
    held: Vec<((Timestamp, usize), usize, Batch)>,
}

impl Task {
    pub(crate) fn new(id: TaskId, name: String, body: TaskBody, max_parallelism: usize) -> Self {
        Task {
            id,
            name,
            body,
            inputs: Vec::new(),
            watermarks: WatermarkTracker::new(0),
            outputs: Vec::new(),
            outbox: VecDeque::new(),
            acknowledgements: VecDeque::new(),
            ended: false,
            metrics: TaskMetrics::default(),
            max_parallelism,
            awaiting_checkpoint: None,
            last_snapshot: 0,
            late_tap: None,
            drops: None,
            held: Vec::new(),
        }
    }

    /// Records what the operator sends to late outputs from now on (`take_late_records`).
    pub fn tap_late_outputs(&mut self) {
        self.late_tap.get_or_insert_with(Vec::new);
    }

    /// The records sent to late outputs since the last call (empty unless tapped).
    pub fn take_late_records(&mut self) -> Vec<LateRecord> {
        self.late_tap.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Removes `drops`' records from the operator's inputs before it sees them.
    pub fn drop_inputs(&mut self, drops: InputDrops) {
        self.drops = Some(drops);
    }

    /// Whether a barrier has arrived on some input channels but not yet on all (alignment).
    pub fn is_aligning(&self) -> bool {
        self.inputs.iter().any(|i| i.barrier.is_some())
    }

    /// Whether the operator has registered a processing-time timer.
    pub fn uses_processing_time(&self) -> bool {
        match &self.body {
            TaskBody::Operator(operator) => operator.uses_processing_time(),
            TaskBody::Source { .. } => false,
        }
    }

    pub(crate) fn restored_from(&mut self, checkpoint: CheckpointId) {
        self.last_snapshot = checkpoint;
    }

    pub(crate) fn add_input(&mut self, input: usize) -> usize {
        self.inputs.push(InputChannel {
            input,
            mailbox: VecDeque::new(),
            ended: false,
            barrier: None,
        });
        self.watermarks = WatermarkTracker::new(self.inputs.len());
        self.inputs.len() - 1
    }

    pub(crate) fn add_output(&mut self, edge: OutputEdge) {
        self.outputs.push(edge);
    }

    pub fn is_source(&self) -> bool {
        matches!(self.body, TaskBody::Source { .. })
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn input_channels(&self) -> usize {
        self.inputs.len()
    }

    /// The task's current watermark (a source's last emitted one).
    pub fn watermark(&self) -> Timestamp {
        match &self.body {
            TaskBody::Source { emitted_watermark, .. } => *emitted_watermark,
            TaskBody::Operator(_) => self.watermarks.current(),
        }
    }

    pub fn metrics(&self) -> TaskMetrics {
        self.metrics
    }

    pub fn state_entries(&self) -> usize {
        match &self.body {
            TaskBody::Operator(operator) => operator.state_entries(),
            TaskBody::Source { .. } => 0,
        }
    }

    /// Appends `message` to the mailbox of input channel `channel`.
    pub fn push_input(&mut self, channel: usize, message: Message) {
        debug_assert!(!self.inputs[channel].ended, "element after end of input on a channel");
        self.inputs[channel].mailbox.push_back(message);
    }

    /// Whether `channel` has an element to deliver and is not held back by alignment.
    pub fn is_ready(&self, channel: usize) -> bool {
        let input = &self.inputs[channel];
        input.barrier.is_none() && !input.mailbox.is_empty()
    }

    /// The element `handle_input(channel)` would deliver next (for traces).
    pub fn peek_input(&self, channel: usize) -> Option<&Message> {
        self.inputs[channel].mailbox.front()
    }

    pub fn queued(&self) -> usize {
        self.inputs.iter().map(|i| i.mailbox.len()).sum()
    }

    /// Delivers the head of `channel`'s mailbox.
    pub fn handle_input(&mut self, channel: usize) {
        assert!(self.is_ready(channel), "{}: channel {channel} is not ready", self.name);
        let message = self.inputs[channel]
            .mailbox
            .pop_front()
            .expect("ready implies non-empty");
        match message {
            Message::Records(mut batch) => {
                self.mark_active(channel);
                let input = self.inputs[channel].input;
                if let Some(drops) = &self.drops {
                    let node = self.id.node;
                    batch.retain_encoded(&mut |ts, value| !drops.take(node, input, ts, value));
                    let mut holds = Vec::new();
                    let whole = batch.clone();
                    batch.retain_encoded(&mut |ts, value| {
                        let hold = drops.take_behind(node, input, ts, value);
                        holds.push(hold);
                        hold.is_none()
                    });
                    for (index, watermark) in holds.iter().enumerate() {
                        let Some(watermark) = *watermark else { continue };
                        let mut one = whole.clone();
                        let mut at = 0;
                        one.retain_encoded(&mut |_, _| {
                            at += 1;
                            at - 1 == index
                        });
                        self.held.push((watermark, input, one));
                    }
                }
                self.metrics.records_in += batch.len() as u64;
                let mut out = Output::default();
                self.operator().handle_records(input, batch, &mut out);
                self.route(out);
            }
            Message::Watermark(watermark) => {
                self.mark_active(channel);
                if let Some(advanced) = self.watermarks.update(channel, watermark) {
                    self.advance_watermark(advanced);
                }
            }
            Message::Idle => {
                let change = self.watermarks.mark_idle(channel);
                self.apply_status(change);
            }
            Message::Active => self.mark_active(channel),
            Message::Barrier(checkpoint) => {
                debug_assert!(self.inputs[channel].barrier.is_none());
                self.inputs[channel].barrier = Some(checkpoint);
                self.try_complete_alignment();
            }
            Message::EndOfInput => {
                self.mark_active(channel);
                self.inputs[channel].ended = true;
                if let Some(advanced) = self.watermarks.update(channel, END_OF_TIME) {
                    self.advance_watermark(advanced);
                }
                self.try_complete_alignment();
                if self.inputs.iter().all(|i| i.ended) {
                    let mut out = Output::default();
                    self.operator().handle_end_of_input(&mut out);
                    self.route(out);
                    self.end();
                }
            }
        }
    }

    /// A source reads up to `max_records`; at the end of its splits it ends its stream.
    pub fn handle_poll_source(&mut self, max_records: usize) {
        let TaskBody::Source { reader, idle, .. } = &mut self.body else {
            panic!("{}: polled but not a source", self.name);
        };
        let mut out = Output::default();
        let read = reader.poll(max_records, &mut out);
        let exhausted = reader.is_exhausted();
        if read > 0 && std::mem::replace(idle, false) {
            self.broadcast(Message::Active);
        }
        self.route(out);
        if exhausted {
            self.emit_source_watermark(END_OF_TIME);
            self.end();
        }
    }

    /// The driver's processing-time clock reached `now`.
    pub fn handle_processing_time(&mut self, now: Timestamp) {
        match &mut self.body {
            TaskBody::Source {
                reader,
                watermarks,
                next_watermark_at,
                idle,
                ..
            } => {
                if self.ended || now < *next_watermark_at {
                    return;
                }
                *next_watermark_at = now + watermarks.interval_ms;
                match reader.watermark(watermarks, now) {
                    SourceWatermark::Idle => {
                        if !std::mem::replace(idle, true) {
                            self.broadcast(Message::Idle);
                        }
                    }
                    SourceWatermark::At(watermark) => {
                        if std::mem::replace(idle, false) {
                            self.broadcast(Message::Active);
                        }
                        // END_OF_TIME is sent only with the end of input, when every record
                        // is out.
                        if watermark < END_OF_TIME {
                            self.emit_source_watermark(watermark);
                        }
                    }
                }
            }
            TaskBody::Operator(operator) => {
                let mut out = Output::default();
                operator.handle_processing_time(now, &mut out);
                self.route(out);
            }
        }
    }

    /// When the task next wants `handle_processing_time`.
    pub fn next_processing_deadline(&self) -> Option<Timestamp> {
        if self.ended {
            return None;
        }
        match &self.body {
            TaskBody::Source { next_watermark_at, .. } => Some(*next_watermark_at),
            TaskBody::Operator(operator) => operator.next_processing_deadline(),
        }
    }

    /// The coordinator starts checkpoint `checkpoint`. A source snapshots its read positions
    /// and sends the barrier after what it has read; a task that has ended snapshots its
    /// final state at once (no barrier will reach it); others wait for their barriers, or,
    /// if all their inputs end first, acknowledge with their final state when they end.
    pub fn handle_checkpoint_trigger(&mut self, checkpoint: CheckpointId) {
        if self.ended {
            let snapshot = self.snapshot(checkpoint);
            self.acknowledgements.push_back(snapshot);
        } else if self.is_source() {
            let snapshot = self.snapshot(checkpoint);
            self.broadcast(Message::Barrier(checkpoint));
            self.acknowledgements.push_back(snapshot);
        } else {
            self.awaiting_checkpoint = Some(checkpoint);
        }
    }

    /// Checkpoint `checkpoint` is complete: sinks may commit what they staged for it.
    pub fn handle_checkpoint_complete(&mut self, checkpoint: CheckpointId) {
        if let TaskBody::Operator(operator) = &mut self.body {
            operator.notify_checkpoint_complete(checkpoint);
        }
    }

    /// Rebuilds the task from its node's snapshots; in-flight elements are not restored
    /// (sources replay them).
    pub fn restore(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        match &mut self.body {
            TaskBody::Source {
                reader,
                emitted_watermark,
                idle,
                ..
            } => {
                reader.restore(context)?;
                *emitted_watermark = context.watermark;
                *idle = false;
                // Downstream tasks restore one combined watermark, not one per channel:
                // announce this source's watermark again, or an operator with another input
                // waits on this channel (and takes records that were late as on time) until
                // the source advances, forever if it is idle (found by fuzz/temporal_join_ops).
                if NO_WATERMARK < context.watermark && context.watermark < END_OF_TIME {
                    self.broadcast(Message::Watermark(context.watermark));
                }
            }
            TaskBody::Operator(operator) => {
                operator.restore_state(context)?;
                self.watermarks.restore(context.watermark);
            }
        }
        Ok(())
    }

    fn snapshot(&mut self, checkpoint: CheckpointId) -> TaskSnapshot {
        self.last_snapshot = checkpoint;
        let watermark = self.watermark();
        let state = match &mut self.body {
            TaskBody::Source { reader, .. } => OperatorState {
                keyed: Default::default(),
                operator: reader.snapshot(),
            },
            TaskBody::Operator(operator) => operator.snapshot_state(checkpoint, self.max_parallelism),
        };
        TaskSnapshot {
            checkpoint,
            node: self.id.node,
            subtask: self.id.subtask,
            watermark,
            state,
        }
    }

    /// The next emitted element and its channel, in emission order.
    pub fn poll_output(&mut self) -> Option<(ChannelId, Message)> {
        self.outbox.pop_front()
    }

    /// The next snapshot this task has taken (its acknowledgement of that checkpoint).
    pub fn poll_acknowledgement(&mut self) -> Option<TaskSnapshot> {
        self.acknowledgements.pop_front()
    }

    fn operator(&mut self) -> &mut dyn Operator {
        match &mut self.body {
            TaskBody::Operator(operator) => operator.as_mut(),
            TaskBody::Source { .. } => panic!("{}: a source has no input", self.name),
        }
    }

    /// `channel` delivers: if it was idle, it is active again.
    fn mark_active(&mut self, channel: usize) {
        let change = self.watermarks.mark_active(channel);
        self.apply_status(change);
    }

    /// Forwards what an input's status change did: the combined watermark, then the task's
    /// own status (Flink's valve flushes the watermark before it goes idle).
    fn apply_status(&mut self, change: StatusChange) {
        if let Some(advanced) = change.advanced {
            self.advance_watermark(advanced);
        }
        match change.idle {
            Some(true) => self.broadcast(Message::Idle),
            Some(false) => self.broadcast(Message::Active),
            None => {}
        }
    }

    fn advance_watermark(&mut self, watermark: Timestamp) {
        if watermark == END_OF_TIME && !self.held.is_empty() {
            // A reference run: every other record is in; replay the held ones in the order
            // (and at the watermarks) the checked run accepted them.
            let mut held = std::mem::take(&mut self.held);
            held.sort_by_key(|(at, _, _)| *at);
            for ((at, _), input, batch) in held {
                let mut out = Output::default();
                self.operator().handle_records_behind(input, batch, at, &mut out);
                self.route(out);
            }
        }
        let mut out = Output::default();
        self.operator().handle_watermark(watermark, &mut out);
        self.route(out);
        self.broadcast(Message::Watermark(watermark));
    }

    fn emit_source_watermark(&mut self, watermark: Timestamp) {
        let TaskBody::Source { emitted_watermark, .. } = &mut self.body else {
            unreachable!("only sources emit source watermarks")
        };
        if watermark > *emitted_watermark {
            *emitted_watermark = watermark;
            self.broadcast(Message::Watermark(watermark));
        }
    }

    /// Once every open channel has delivered the barrier: forward it, acknowledge, release.
    fn try_complete_alignment(&mut self) {
        let Some(checkpoint) = self.inputs.iter().find_map(|i| i.barrier) else {
            return;
        };
        let aligned = self.inputs.iter().all(|i| i.ended || i.barrier == Some(checkpoint));
        if aligned {
            for input in &mut self.inputs {
                input.barrier = None;
            }
            let snapshot = self.snapshot(checkpoint);
            self.broadcast(Message::Barrier(checkpoint));
            self.acknowledgements.push_back(snapshot);
            if self.awaiting_checkpoint == Some(checkpoint) {
                self.awaiting_checkpoint = None;
            }
        }
    }

    fn end(&mut self) {
        debug_assert!(!self.ended);
        // Every input ended before this checkpoint's barrier could arrive: all upstream
        // tasks acknowledged with their final state, and so does this one.
        if let Some(checkpoint) = self.awaiting_checkpoint.take() {
            let snapshot = self.snapshot(checkpoint);
            self.acknowledgements.push_back(snapshot);
        }
        self.broadcast(Message::EndOfInput);
        self.ended = true;
    }

    /// Sends a control element on every output channel.
    fn broadcast(&mut self, message: Message) {
        for edge in &self.outputs {
            for &channel in &edge.channels {
                self.outbox.push_back((channel, message.clone()));
            }
        }
    }

    /// Partitions what the operator emitted over the edges of each port.
    fn route(&mut self, out: Output) {
        self.metrics.late_records += out.late_records;
        self.metrics.duplicates += out.duplicates;
        self.metrics.events += out.events;
        if self.late_tap.is_some() {
            self.tap(&out);
        }
        for (port, batch) in out.emitted {
            self.metrics.records_out += batch.len() as u64;
            let edges: Vec<usize> = (0..self.outputs.len())
                .filter(|&e| self.outputs[e].port == port)
                .collect();
            let Some((&last, rest)) = edges.split_last() else {
                continue; // nobody consumes this port (e.g. an unused late output)
            };
            for &edge in rest {
                self.send(edge, batch.clone());
            }
            self.send(last, batch);
        }
    }

    fn tap(&mut self, out: &Output) {
        let (node, watermark, after_checkpoint) = (self.id.node, self.watermark(), self.last_snapshot);
        let tapped = self.late_tap.as_mut().expect("tapped");
        for (port, batch) in &out.emitted {
            let Some(input) = late_input(*port) else { continue };
            for (ts, value, debug) in batch.describe() {
                tapped.push(LateRecord {
                    node,
                    input,
                    ts,
                    value,
                    debug,
                    watermark,
                    after_checkpoint,
                    behind: false,
                });
            }
        }
        for batch in &out.behind {
            for (ts, value, debug) in batch.describe() {
                tapped.push(LateRecord {
                    node,
                    input: 0,
                    ts,
                    value,
                    debug,
                    watermark,
                    after_checkpoint,
                    behind: true,
                });
            }
        }
    }

    fn send(&mut self, edge: usize, batch: Batch) {
        let OutputEdge {
            channels, partitioner, ..
        } = &mut self.outputs[edge];
        let outbox = &mut self.outbox;
        partitioner.partition(batch, channels.len(), &mut |index, part| {
            outbox.push_back((channels[index], Message::Records(part)));
        });
    }
}
