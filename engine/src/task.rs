//! A task: one parallel instance of an operator, with one FIFO mailbox per input channel.
//!
//! Sans-IO: the driver pushes elements into mailboxes (`push_input`), picks which mailbox
//! delivers next (`handle_input`), advances processing time (`handle_processing_time`),
//! polls sources (`handle_poll_source`) and drains what the task emitted (`poll_output`,
//! in emission order, then `poll_acknowledgement`). The task owns watermark combination,
//! barrier alignment and end-of-input; the operator inside owns the semantics.

use std::collections::VecDeque;

use crate::element::{Batch, CheckpointId, Keep, Message, Timestamp};
use crate::graph::NodeId;
use crate::operator::{Operator, OperatorEvents, Output};
use crate::partition::Partitioner;
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError, TaskSnapshot};
use crate::source::SourceReader;
use crate::testkit::tap::{late_input, InputDrops, LateRecord};
use crate::time::{SourceWatermark, StatusChange, WatermarkStrategy, WatermarkTracker, END_OF_TIME, NO_WATERMARK};

/// Index of a channel in its [`Job`](crate::Job).
pub type ChannelId = usize;

/// Which task: the node of its chain's head, and the subtask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    /// The node of the task's head operator.
    pub node: NodeId,
    /// The task's index among its node's parallel subtasks.
    pub subtask: usize,
}

/// Counters a task keeps; summed over tasks in run summaries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskMetrics {
    /// Records delivered from the task's input channels.
    pub records_in: u64,
    /// Records the task's head emitted (a source's: those it read).
    pub records_out: u64,
    /// Records the task's operators found late (sent to a late output).
    pub late_records: u64,
    /// Records that deduplication dropped.
    pub duplicates: u64,
    /// Moments the task's operators went through.
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

/// An operator chained behind the task's head: it takes its input from another operator of
/// the same task, by a call instead of a channel.
struct Chained {
    node: NodeId,
    operator: Box<dyn Operator>,
}

/// Output port `port` of chain member `from` feeds logical input `input` of member `to`
/// (members: 0 is the head, `k` is `chained[k - 1]`).
#[derive(Clone, Copy)]
struct Link {
    from: usize,
    port: usize,
    to: usize,
    input: usize,
}

pub(crate) struct OutputEdge {
    /// The chain member whose output this is.
    pub(crate) member: usize,
    pub(crate) port: usize,
    pub(crate) channels: Vec<ChannelId>,
    pub(crate) partitioner: Box<dyn Partitioner>,
}

/// One parallel instance of an operator chain (or a source), with a FIFO mailbox per input channel.
pub struct Task {
    /// The head's node and the subtask.
    pub id: TaskId,
    /// The task's name: its chain's operators and the subtask (`a -> b[0]`).
    pub name: String,
    body: TaskBody,
    /// Operators chained behind the head, in topological order ([`Task::chain`]).
    chained: Vec<Chained>,
    links: Vec<Link>,
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
    /// Records held back by `drops`, replayed at the end:
    /// `((watermark, place), member, input, record)`.
    held: Vec<((Timestamp, usize), usize, usize, Batch)>,
}

impl Task {
    pub(crate) fn new(id: TaskId, name: String, body: TaskBody, max_parallelism: usize) -> Self {
        Task {
            id,
            name,
            body,
            chained: Vec::new(),
            links: Vec::new(),
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
    #[cfg(feature = "testkit")]
    pub(crate) fn tap_late_outputs(&mut self) {
        self.late_tap.get_or_insert_with(Vec::new);
    }

    /// The records sent to late outputs since the last call (empty unless tapped).
    #[cfg(feature = "testkit")]
    pub(crate) fn take_late_records(&mut self) -> Vec<LateRecord> {
        self.late_tap.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Removes `drops`' records from the operator's inputs before it sees them.
    #[cfg(feature = "testkit")]
    pub(crate) fn drop_inputs(&mut self, drops: InputDrops) {
        self.drops = Some(drops);
    }

    /// Whether a barrier has arrived on some input channels but not yet on all (alignment).
    pub fn is_aligning(&self) -> bool {
        self.inputs.iter().any(|i| i.barrier.is_some())
    }

    /// Whether an operator of the task has registered a processing-time timer.
    pub fn uses_processing_time(&self) -> bool {
        self.operators().any(|operator| operator.uses_processing_time())
    }

    /// Chains `operator` (of node `node`) behind member `from`: output port `port` of that
    /// member feeds its logical input `input`. Returns the new member's index.
    pub(crate) fn chain(
        &mut self,
        node: NodeId,
        operator: Box<dyn Operator>,
        from: usize,
        port: usize,
        input: usize,
    ) -> usize {
        self.chained.push(Chained { node, operator });
        let to = self.chained.len();
        self.links.push(Link { from, port, to, input });
        to
    }

    /// The node of each chain member, head first.
    pub fn nodes(&self) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::once(self.id.node).chain(self.chained.iter().map(|c| c.node))
    }

    fn members(&self) -> usize {
        1 + self.chained.len()
    }

    /// The operators of the task, head first (a source head has none).
    fn operators(&self) -> impl Iterator<Item = &dyn Operator> + '_ {
        let head = match &self.body {
            TaskBody::Operator(operator) => Some(operator.as_ref()),
            TaskBody::Source { .. } => None,
        };
        head.into_iter().chain(self.chained.iter().map(|c| c.operator.as_ref()))
    }

    /// Member `member`'s operator.
    fn operator_of(&mut self, member: usize) -> &mut dyn Operator {
        match member {
            0 => self.operator(),
            k => self.chained[k - 1].operator.as_mut(),
        }
    }

    /// The first member that is an operator (1 behind a source).
    fn first_operator(&self) -> usize {
        usize::from(self.is_source())
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

    /// Whether the task's head is a source.
    pub fn is_source(&self) -> bool {
        matches!(self.body, TaskBody::Source { .. })
    }

    /// Whether the task has ended: every input ended, or its source ran out.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// How many input channels the task has.
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

    /// Whether input `channel` is idle at exactly the task's combined watermark
    /// ([`WatermarkTracker::idle_at_combined`]).
    pub fn idle_at_watermark(&self, channel: usize) -> bool {
        matches!(self.body, TaskBody::Operator(_)) && self.watermarks.idle_at_combined(channel)
    }

    /// The task's counters so far.
    pub fn metrics(&self) -> TaskMetrics {
        self.metrics
    }

    /// How many state entries the task's operators hold now.
    pub fn state_entries(&self) -> usize {
        self.operators().map(|operator| operator.state_entries()).sum()
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

    /// Messages waiting on input channel `channel`.
    pub fn queued_on(&self, channel: usize) -> usize {
        self.inputs[channel].mailbox.len()
    }

    /// Messages waiting on all input channels.
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
            Message::Records(batch) => {
                self.mark_active(channel);
                let input = self.inputs[channel].input;
                self.metrics.records_in += batch.len() as u64;
                self.deliver(0, input, batch);
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
        self.route(0, out);
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
            TaskBody::Operator(_) => {}
        }
        for member in self.first_operator()..self.members() {
            let operator = self.operator_of(member);
            if operator.next_processing_deadline().is_some_and(|d| d <= now) {
                let mut out = Output::default();
                operator.handle_processing_time(now, &mut out);
                self.route(member, out);
            }
        }
    }

    /// When the task next wants `handle_processing_time`.
    pub fn next_processing_deadline(&self) -> Option<Timestamp> {
        if self.ended {
            return None;
        }
        let source = match &self.body {
            TaskBody::Source { next_watermark_at, .. } => Some(*next_watermark_at),
            TaskBody::Operator(_) => None,
        };
        self.operators()
            .filter_map(|operator| operator.next_processing_deadline())
            .chain(source)
            .min()
    }

    /// The coordinator starts checkpoint `checkpoint`. A source snapshots its read positions
    /// and sends the barrier after what it has read; a task that has ended snapshots its
    /// final state at once (no barrier will reach it); others wait for their barriers, or,
    /// if all their inputs end first, acknowledge with their final state when they end.
    pub fn handle_checkpoint_trigger(&mut self, checkpoint: CheckpointId) {
        if self.ended {
            self.snapshot(checkpoint);
        } else if self.is_source() {
            self.snapshot(checkpoint);
            self.broadcast(Message::Barrier(checkpoint));
        } else {
            self.awaiting_checkpoint = Some(checkpoint);
        }
    }

    /// Checkpoint `checkpoint` is complete: sinks may commit what they staged for it.
    pub fn handle_checkpoint_complete(&mut self, checkpoint: CheckpointId) {
        for member in self.first_operator()..self.members() {
            self.operator_of(member).notify_checkpoint_complete(checkpoint);
        }
    }

    /// Rebuilds chain member `member` from its node's snapshots (the head first); in-flight
    /// elements are not restored (sources replay them).
    pub fn restore(&mut self, member: usize, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        if member > 0 {
            return self.chained[member - 1].operator.restore_state(context);
        }
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

    /// Snapshots every chain member, head first, as the task's acknowledgements of
    /// `checkpoint` (one per node, so that a checkpoint does not depend on the chaining).
    fn snapshot(&mut self, checkpoint: CheckpointId) {
        self.last_snapshot = checkpoint;
        let watermark = self.watermark();
        let max_parallelism = self.max_parallelism;
        let head = match &mut self.body {
            TaskBody::Source { reader, .. } => OperatorState {
                keyed: Default::default(),
                operator: reader.snapshot(),
            },
            TaskBody::Operator(operator) => operator.snapshot_state(checkpoint, max_parallelism),
        };
        let chained = self
            .chained
            .iter_mut()
            .map(|c| (c.node, c.operator.snapshot_state(checkpoint, max_parallelism)));
        for (node, state) in std::iter::once((self.id.node, head)).chain(chained) {
            self.acknowledgements.push_back(TaskSnapshot {
                checkpoint,
                node,
                subtask: self.id.subtask,
                watermark,
                state,
            });
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

    /// The task's combined watermark advanced: every operator of the chain handles it in
    /// order (each one's results reach the next before the watermark does), then it goes
    /// out on every output channel.
    fn advance_watermark(&mut self, watermark: Timestamp) {
        for member in self.first_operator()..self.members() {
            if watermark == END_OF_TIME && self.held.iter().any(|(_, m, _, _)| *m == member) {
                // A reference run: every other record is in; replay the held ones in the
                // order (and at the watermarks) the checked run accepted them.
                let (mut held, kept) = std::mem::take(&mut self.held)
                    .into_iter()
                    .partition::<Vec<_>, _>(|(_, m, _, _)| *m == member);
                self.held = kept;
                held.sort_by_key(|(at, _, _, _)| *at);
                for ((at, _), _, input, batch) in held {
                    let mut out = Output::default();
                    self.operator_of(member)
                        .handle_records_behind(input, batch, at, &mut out);
                    self.route(member, out);
                }
            }
            let mut out = Output::default();
            self.operator_of(member).handle_watermark(watermark, &mut out);
            self.route(member, out);
        }
        self.broadcast(Message::Watermark(watermark));
    }

    fn emit_source_watermark(&mut self, watermark: Timestamp) {
        let TaskBody::Source { emitted_watermark, .. } = &mut self.body else {
            unreachable!("only sources emit source watermarks")
        };
        if watermark > *emitted_watermark {
            *emitted_watermark = watermark;
            self.advance_watermark(watermark);
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
            self.snapshot(checkpoint);
            self.broadcast(Message::Barrier(checkpoint));
            if self.awaiting_checkpoint == Some(checkpoint) {
                self.awaiting_checkpoint = None;
            }
        }
    }

    /// Every input ended (after the end-of-time watermark): each operator of the chain
    /// handles the end in order, then the task ends its output channels.
    fn end(&mut self) {
        debug_assert!(!self.ended);
        for member in self.first_operator()..self.members() {
            let mut out = Output::default();
            self.operator_of(member).handle_end_of_input(&mut out);
            self.route(member, out);
        }
        // Every input ended before this checkpoint's barrier could arrive: all upstream
        // tasks acknowledged with their final state, and so does this one.
        if let Some(checkpoint) = self.awaiting_checkpoint.take() {
            self.snapshot(checkpoint);
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

    /// Member `member`'s operator takes `batch` on its logical input `input` (minus what the
    /// tap's drops remove or hold back), and what it emits goes on.
    fn deliver(&mut self, member: usize, input: usize, mut batch: Batch) {
        let mut out = Output::default();
        let drops = (self.drops.as_ref())
            .map(|drops| (drops, self.nodes().nth(member).expect("a member of this task")))
            .filter(|(drops, node)| drops.wants(*node, input));
        if let Some((drops, node)) = drops {
            // What the checked run sent to this operator's late output goes to the same late
            // output here, unseen by the operator: a late output the user registered holds
            // the same records in both runs.
            let late = split_off(&mut batch, &mut |ts, value| drops.take(node, input, ts, value));
            out.late_records += late.len() as u64;
            out.emit_batch(crate::testkit::tap::late_port(input), late);
            let mut watermarks = Vec::new();
            let mut held = split_off(&mut batch, &mut |ts, value| {
                let hold = drops.take_behind(node, input, ts, value);
                watermarks.extend(hold);
                hold.is_some()
            });
            // Each held record replays on its own, as of its own watermark.
            for watermark in watermarks {
                let mut first = true;
                let one = split_off(&mut held, &mut |_, _| std::mem::take(&mut first));
                self.held.push((watermark, member, input, one));
            }
        }
        self.operator_of(member).handle_records(input, batch, &mut out);
        self.route(member, out);
    }

    /// Hands what member `member` emitted to the chained members and the output edges that
    /// consume each port: a chained member takes the batch by a call, in place.
    fn route(&mut self, member: usize, out: Output) {
        self.metrics.late_records += out.late_records;
        self.metrics.duplicates += out.duplicates;
        self.metrics.events += out.events;
        if self.late_tap.is_some() {
            self.tap(member, &out);
        }
        for (port, batch) in out.emitted {
            if member == 0 {
                self.metrics.records_out += batch.len() as u64;
            }
            // Counted first, so that the last consumer takes the batch without a copy.
            let feeds_edge = |e: &OutputEdge| e.member == member && e.port == port;
            let feeds_link = |l: &Link| l.from == member && l.port == port;
            let mut consumers = self.outputs.iter().filter(|e| feeds_edge(e)).count()
                + self.links.iter().filter(|l| feeds_link(l)).count();
            let mut batch = Some(batch);
            let mut take = |batch: &mut Option<Batch>| {
                consumers -= 1;
                if consumers == 0 {
                    batch.take().expect("the batch goes to its last consumer")
                } else {
                    batch.as_ref().expect("not yet taken").clone()
                }
            };
            for edge in 0..self.outputs.len() {
                if batch.is_some() && feeds_edge(&self.outputs[edge]) {
                    let part = take(&mut batch);
                    self.send(edge, part);
                }
            }
            for link in 0..self.links.len() {
                let Link {
                    from,
                    port: p,
                    to,
                    input,
                } = self.links[link];
                if batch.is_some() && from == member && p == port {
                    let part = take(&mut batch);
                    self.deliver(to, input, part);
                }
            }
        }
    }

    fn tap(&mut self, member: usize, out: &Output) {
        let node = self.nodes().nth(member).expect("a member of this task");
        let (watermark, after_checkpoint) = (self.watermark(), self.last_snapshot);
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

/// Removes the records `pick` chooses from `batch` and returns them, in order, as a batch of
/// their own (empty if none).
fn split_off(batch: &mut Batch, pick: Keep<'_>) -> Batch {
    let mut picked = batch.clone();
    let mut chosen = Vec::with_capacity(batch.len());
    batch.retain_encoded(&mut |ts, value| {
        let take = pick(ts, value);
        chosen.push(take);
        !take
    });
    let mut at = 0;
    picked.retain_encoded(&mut |_, _| {
        at += 1;
        chosen[at - 1]
    });
    picked
}
