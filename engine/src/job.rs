//! A job: a graph instantiated into tasks and the channels between them.
//!
//! The job moves what a task emits into the receiving mailboxes right after each step, so a
//! driver only decides *which* step comes next ([`Action`]), never how elements travel.

use crate::element::{CheckpointId, Timestamp};
use crate::graph::{JobGraph, Layout, NodeBody, TaskInfo};
use crate::operator::OperatorEvents;
use crate::partition::Partitioning;
use crate::snapshot::{Manifest, RestoreContext, SnapshotError, TaskSnapshot};
use crate::state::KeyGroupRange;
use crate::task::{ChannelId, OutputEdge, Task, TaskBody, TaskId, TaskMetrics};
use crate::time::NO_WATERMARK;

/// Whether node `node` runs chained behind the node before it: its only input is a forward
/// edge (equal parallelism) and the layout chains. Returns that edge.
fn chains_onto<'g>(graph: &'g JobGraph, layout: &Layout, node: usize) -> Option<&'g crate::graph::Edge> {
    let [edge] = graph.nodes[node].inputs.as_slice() else {
        return None;
    };
    (layout.chaining
        && !graph.nodes[node].is_source()
        && edge.partitioning == Partitioning::Forward
        && layout.parallelism[edge.from] == layout.parallelism[node])
        .then_some(edge)
}

/// `a -> b`: the name of a chain of operators, as Flink names a chained task.
fn chain_name(chain: &str, node: &str) -> String {
    format!("{chain} -> {node}")
}

/// A channel from one task to one input channel of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The sending task's index.
    pub from: usize,
    /// The receiving task's index.
    pub to: usize,
    /// Which input channel of the receiving task it is.
    pub to_input: usize,
}

/// One step a driver can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Deliver the head of input channel `input` of task `task`.
    Deliver {
        /// The receiving task's index.
        task: usize,
        /// The task's input channel.
        input: usize,
    },
    /// Let source task `task` read a batch.
    PollSource {
        /// The source task's index.
        task: usize,
    },
}

/// A job graph instantiated into tasks and the channels between them, stepped by a driver.
pub struct Job {
    tasks: Vec<Task>,
    channels: Vec<Channel>,
    /// Per task, the `(task, input)` ends of the channels it sends on.
    outputs: Vec<Vec<(usize, usize)>>,
    /// Messages an input channel holds before its sender waits ([`Job::bound_channels`]).
    channel_capacity: usize,
    /// Per node: name and parallelism (what a manifest records).
    nodes: Vec<(String, usize)>,
    max_parallelism: usize,
    /// The newest checkpoint this job triggered or was restored from.
    last_checkpoint: CheckpointId,
    /// Per task, its next processing-time deadline, brought up to date whenever the task
    /// acts (asking every operator of every task on every step was a tenth of a simulated
    /// run's time).
    deadlines: Vec<Option<Timestamp>>,
    /// Per task, the messages in its mailboxes; and the source tasks. A driver asks for the
    /// ready actions every step, and walking every task for them was a tenth of a run.
    queued: Vec<usize>,
    sources: Vec<usize>,
}

/// A checkpoint that cannot be restored into this job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The checkpoint's operators are not this job's.
    #[error("checkpoint {checkpoint} was taken of a different job: {reason}")]
    IncompatibleJob {
        /// The checkpoint being restored.
        checkpoint: CheckpointId,
        /// How the operators differ.
        reason: String,
    },
    /// The checkpoint lacks a snapshot an operator's old task would have taken.
    #[error("checkpoint {checkpoint} lacks the snapshot of task {task}")]
    MissingTask {
        /// The checkpoint being restored.
        checkpoint: CheckpointId,
        /// The missing task, as `name[subtask]`.
        task: String,
    },
    /// A task's snapshot does not restore into its operator.
    #[error("checkpoint {checkpoint}, task {task}: {source}")]
    State {
        /// The checkpoint being restored.
        checkpoint: CheckpointId,
        /// The restoring task, as `name[subtask]`.
        task: String,
        /// Why the snapshot did not restore.
        source: SnapshotError,
    },
}

impl Job {
    /// Instantiates `graph` as built.
    pub fn new(graph: &JobGraph) -> Self {
        Job::with_layout(graph, &graph.layout())
    }

    /// Instantiates `graph` with `parallelism[node]` tasks per node instead of the graph's
    /// own (a rescaled job: [`JobGraph::rescaled`] keeps forward edges between equals).
    pub fn with_parallelism(graph: &JobGraph, parallelism: &[usize]) -> Self {
        Job::with_layout(
            graph,
            &Layout {
                parallelism: parallelism.to_vec(),
                chaining: graph.chaining,
            },
        )
    }

    /// Instantiates `graph` laid out as `layout` says. With chaining, a node whose only input
    /// is a forward edge runs in the task of the node before it (Flink's operator chaining):
    /// one task per chain, records handed on by a call.
    pub fn with_layout(graph: &JobGraph, layout: &Layout) -> Self {
        let parallelism = &layout.parallelism;
        assert_eq!(parallelism.len(), graph.nodes.len(), "one parallelism per node");
        let mut tasks: Vec<Task> = Vec::new();
        // Per node: its first subtask's task (subtask `s` is at `+ s`) and its chain member.
        let mut placed: Vec<(usize, usize)> = Vec::with_capacity(graph.nodes.len());
        for (node_id, node) in graph.nodes.iter().enumerate() {
            let node_parallelism = parallelism[node_id];
            let info = |subtask| TaskInfo {
                subtask,
                parallelism: node_parallelism,
                max_parallelism: graph.max_parallelism,
                key_groups: KeyGroupRange::for_subtask(subtask, node_parallelism, graph.max_parallelism),
            };
            if let (Some(edge), NodeBody::Operator(factory)) = (chains_onto(graph, layout, node_id), &node.body) {
                let (first, from) = placed[edge.from];
                let mut member = 0;
                for subtask in 0..node_parallelism {
                    let task = &mut tasks[first + subtask];
                    member = task.chain(node_id, factory(&info(subtask)), from, edge.from_port, edge.input);
                    task.name = chain_name(&task.name, &node.name);
                }
                placed.push((first, member));
                continue;
            }
            placed.push((tasks.len(), 0));
            for subtask in 0..node_parallelism {
                let body = match &node.body {
                    NodeBody::Source { factory, watermarks } => TaskBody::Source {
                        reader: factory(&info(subtask)),
                        watermarks: *watermarks,
                        next_watermark_at: watermarks.interval_ms,
                        emitted_watermark: NO_WATERMARK,
                        idle: false,
                    },
                    NodeBody::Operator(factory) => TaskBody::Operator(factory(&info(subtask))),
                };
                tasks.push(Task::new(
                    TaskId { node: node_id, subtask },
                    node.name.clone(),
                    body,
                    graph.max_parallelism,
                ));
            }
        }
        for task in &mut tasks {
            task.name = format!("{}[{}]", task.name, task.id.subtask);
        }
        let mut channels = Vec::new();
        for (node_id, node) in graph.nodes.iter().enumerate() {
            if chains_onto(graph, layout, node_id).is_some() {
                continue;
            }
            for edge in &node.inputs {
                let senders = parallelism[edge.from];
                debug_assert!(
                    edge.partitioning != Partitioning::Forward || senders == parallelism[node_id],
                    "a forward edge joins equal parallelisms"
                );
                let (first_sender, member) = placed[edge.from];
                for sender in 0..senders {
                    let receivers: Vec<usize> = if edge.partitioning == Partitioning::Forward {
                        vec![sender]
                    } else {
                        (0..parallelism[node_id]).collect()
                    };
                    let mut edge_channels: Vec<ChannelId> = Vec::with_capacity(receivers.len());
                    for receiver in receivers {
                        let to = placed[node_id].0 + receiver;
                        let to_input = tasks[to].add_input(edge.input);
                        channels.push(Channel {
                            from: first_sender + sender,
                            to,
                            to_input,
                        });
                        edge_channels.push(channels.len() - 1);
                    }
                    tasks[first_sender + sender].add_output(OutputEdge {
                        member,
                        port: edge.from_port,
                        channels: edge_channels,
                        partitioner: (edge.partitioner)(graph.max_parallelism),
                    });
                }
            }
        }
        let nodes = graph
            .nodes
            .iter()
            .zip(parallelism)
            .map(|(n, p)| (n.name.clone(), *p))
            .collect();
        let mut outputs = vec![Vec::new(); tasks.len()];
        for channel in &channels {
            outputs[channel.from].push((channel.to, channel.to_input));
        }
        let deadlines = tasks.iter().map(Task::next_processing_deadline).collect();
        let queued = vec![0; tasks.len()];
        let sources = (0..tasks.len()).filter(|&t| tasks[t].is_source()).collect();
        Job {
            tasks,
            channels,
            outputs,
            channel_capacity: usize::MAX,
            nodes,
            max_parallelism: graph.max_parallelism,
            last_checkpoint: 0,
            deadlines,
            queued,
            sources,
        }
    }

    /// Instantiates `graph` and restores every task from a completed checkpoint, possibly
    /// taken at other parallelisms: keyed state moves by key group, watermarks never go back.
    pub fn restore(graph: &JobGraph, manifest: &Manifest, snapshots: &[TaskSnapshot]) -> Result<Job, RestoreError> {
        Job::restore_at(graph, &graph.layout(), manifest, snapshots)
    }

    /// [`Job::restore`] laid out as `layout` says (at other parallelisms: a rescaling
    /// restore). Snapshots are per node, so chaining may differ from the checkpointed job's.
    pub fn restore_at(
        graph: &JobGraph,
        layout: &Layout,
        manifest: &Manifest,
        snapshots: &[TaskSnapshot],
    ) -> Result<Job, RestoreError> {
        let checkpoint = manifest.checkpoint;
        let incompatible = |reason: String| RestoreError::IncompatibleJob { checkpoint, reason };
        if manifest.nodes.len() != graph.nodes.len() {
            return Err(incompatible(format!(
                "it has {} operators, this job {}",
                manifest.nodes.len(),
                graph.nodes.len()
            )));
        }
        for (node, (name, _)) in graph.nodes.iter().zip(&manifest.nodes) {
            if &node.name != name {
                return Err(incompatible(format!(
                    "operator `{name}` where this job has `{}`",
                    node.name
                )));
            }
        }
        let mut job = Job::with_layout(graph, layout);
        job.last_checkpoint = checkpoint;
        for index in 0..job.tasks.len() {
            let subtask = job.tasks[index].id.subtask;
            job.tasks[index].restored_from(checkpoint);
            let nodes: Vec<usize> = job.tasks[index].nodes().collect();
            for (member, node) in nodes.into_iter().enumerate() {
                let (name, old_parallelism) = &manifest.nodes[node];
                let mut previous = Vec::with_capacity(*old_parallelism);
                for old_subtask in 0..*old_parallelism {
                    let snapshot = snapshots
                        .iter()
                        .find(|s| s.node == node && s.subtask == old_subtask && s.checkpoint == checkpoint)
                        .ok_or_else(|| RestoreError::MissingTask {
                            checkpoint,
                            task: format!("{name}[{old_subtask}]"),
                        })?;
                    previous.push((old_subtask, snapshot));
                }
                let parallelism = layout.parallelism[node];
                let watermarks = previous.iter().map(|(_, s)| s.watermark);
                let watermark = if parallelism == *old_parallelism {
                    previous[subtask].1.watermark
                } else if graph.nodes[node].is_source() {
                    // A source task takes other splits than any old task had: resume at the
                    // lowest watermark, which none of its splits is behind (found by the
                    // simulator's rescale fault: the highest made records of a slower split
                    // late).
                    watermarks.min().unwrap_or(NO_WATERMARK)
                } else {
                    // State from several old tasks: resume at the highest watermark any of
                    // them reached, so no state that was cleared can be rebuilt by a replayed
                    // record.
                    watermarks.max().unwrap_or(NO_WATERMARK)
                };
                let context = RestoreContext {
                    subtask,
                    parallelism,
                    key_groups: KeyGroupRange::for_subtask(subtask, parallelism, job.max_parallelism),
                    max_parallelism: job.max_parallelism,
                    watermark,
                    previous: previous.iter().map(|(old, s)| (*old, &s.state)).collect(),
                };
                job.tasks[index]
                    .restore(member, &context)
                    .map_err(|source| RestoreError::State {
                        checkpoint,
                        task: format!("{}[{subtask}]", graph.nodes[node].name),
                        source,
                    })?;
            }
        }
        // What restoring sent (sources announce their watermarks again) goes out first.
        for task in 0..job.tasks.len() {
            job.flush(task);
            job.deadlines[task] = job.tasks[task].next_processing_deadline();
        }
        Ok(job)
    }

    /// The newest checkpoint this job triggered or was restored from (0 if none).
    pub fn last_checkpoint(&self) -> CheckpointId {
        self.last_checkpoint
    }

    /// What a completed checkpoint of this job records besides its task snapshots.
    pub fn manifest(&self, checkpoint: CheckpointId) -> Manifest {
        Manifest {
            checkpoint,
            nodes: self.nodes.clone(),
        }
    }

    /// Starts checkpoint `checkpoint` at every source (and at every task that already ended).
    pub fn trigger_checkpoint(&mut self, checkpoint: CheckpointId) {
        assert!(checkpoint > self.last_checkpoint, "checkpoint ids increase");
        self.last_checkpoint = checkpoint;
        for task in 0..self.tasks.len() {
            self.tasks[task].handle_checkpoint_trigger(checkpoint);
            self.flush(task);
            self.deadlines[task] = self.tasks[task].next_processing_deadline();
        }
    }

    /// How many snapshots complete a checkpoint: one per node and subtask, however chained.
    pub fn snapshots_per_checkpoint(&self) -> usize {
        self.nodes.iter().map(|(_, parallelism)| parallelism).sum()
    }

    /// Drains the snapshots tasks have taken since the last call, in task order.
    pub fn poll_acknowledgements(&mut self, snapshots: &mut Vec<TaskSnapshot>) {
        for task in &mut self.tasks {
            while let Some(snapshot) = task.poll_acknowledgement() {
                snapshots.push(snapshot);
            }
        }
    }

    /// Tells every task that `checkpoint` completed (sinks commit).
    pub fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) {
        for task in 0..self.tasks.len() {
            self.tasks[task].handle_checkpoint_complete(checkpoint);
            self.flush(task);
            self.deadlines[task] = self.tasks[task].next_processing_deadline();
        }
    }

    /// Hands the tasks and channels to a driver that runs each task on its own (the live
    /// runtime): it then moves `poll_output` of channel `c` into `push_input` of
    /// `channels[c].to` at `channels[c].to_input`, as [`Job`] does in one thread.
    #[cfg(feature = "runtime")]
    pub fn into_tasks(self) -> (Vec<Task>, Vec<Channel>) {
        (self.tasks, self.channels)
    }

    /// The tasks, in the order [`Action`]s name them.
    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    /// The channels between the tasks.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Every step that can be taken now, in a fixed order (deliveries, then source polls).
    pub fn ready_actions(&self, actions: &mut Vec<Action>) {
        actions.clear();
        for (task, &queued) in self.queued.iter().enumerate() {
            if queued == 0 || self.backpressured(task) {
                continue;
            }
            let t = &self.tasks[task];
            for input in 0..t.input_channels() {
                if t.is_ready(input) {
                    actions.push(Action::Deliver { task, input });
                }
            }
        }
        for &task in &self.sources {
            if !self.tasks[task].is_ended() && !self.backpressured(task) {
                actions.push(Action::PollSource { task });
            }
        }
    }

    /// Takes `action`; a source poll reads up to `source_batch_size` records.
    pub fn perform(&mut self, action: Action, source_batch_size: usize) {
        let task = match action {
            Action::Deliver { task, input } => {
                self.tasks[task].handle_input(input);
                self.queued[task] -= 1;
                task
            }
            Action::PollSource { task } => {
                self.tasks[task].handle_poll_source(source_batch_size);
                task
            }
        };
        self.flush(task);
        self.deadlines[task] = self.tasks[task].next_processing_deadline();
    }

    /// Fires processing time `now` on every task whose deadline has come, in task order.
    pub fn handle_processing_time(&mut self, now: Timestamp) {
        for task in 0..self.tasks.len() {
            if self.deadlines[task].is_some_and(|d| d <= now) {
                self.tasks[task].handle_processing_time(now);
                self.flush(task);
                self.deadlines[task] = self.tasks[task].next_processing_deadline();
            }
        }
    }

    /// The earliest processing time at which a task wants [`Job::handle_processing_time`].
    pub fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Every task ended and every mailbox is empty.
    pub fn is_finished(&self) -> bool {
        self.tasks
            .iter()
            .zip(&self.queued)
            .all(|(t, &queued)| t.is_ended() && queued == 0)
    }

    /// How many state entries the tasks' operators hold now.
    pub fn state_entries(&self) -> usize {
        self.tasks.iter().map(Task::state_entries).sum()
    }

    /// Each input channel holds `capacity` messages before its sender waits, as Flink's
    /// credit-based flow control gives each channel a few network buffers: a task with a
    /// full output channel is not ready to act, so backpressure reaches the sources and
    /// what is in flight in front of a barrier stays bounded. A step may still push past the
    /// bound: a task emits a barrier on all its outputs at once, so no alignment waits on a
    /// full channel. Unbounded unless called.
    pub fn bound_channels(&mut self, capacity: usize) {
        assert!(capacity > 0, "a channel holds at least one message");
        self.channel_capacity = capacity;
    }

    /// Whether one of `task`'s output channels is full ([`Job::bound_channels`]).
    fn backpressured(&self, task: usize) -> bool {
        self.channel_capacity != usize::MAX
            && self.outputs[task]
                .iter()
                .any(|&(to, input)| self.tasks[to].queued_on(input) >= self.channel_capacity)
    }

    /// The tasks, for the test machinery ([`crate::testkit`]): it taps and drops records
    /// only, so the deadlines and queued counts kept here stay true.
    #[cfg(feature = "testkit")]
    pub(crate) fn tasks_mut(&mut self) -> &mut [Task] {
        &mut self.tasks
    }

    /// The tasks whose operators registered processing-time timers.
    pub fn processing_time_tasks(&self) -> Vec<&str> {
        self.tasks
            .iter()
            .filter(|t| t.uses_processing_time())
            .map(|t| t.name.as_str())
            .collect()
    }

    /// Counters summed over tasks; `records_in` of sources is what they read.
    pub fn metrics(&self) -> JobMetrics {
        let mut metrics = JobMetrics::default();
        for task in &self.tasks {
            let m: TaskMetrics = task.metrics();
            if task.is_source() {
                metrics.source_records += m.records_out;
            }
            metrics.late_records += m.late_records;
            metrics.duplicates += m.duplicates;
            metrics.events += m.events;
        }
        metrics
    }

    fn flush(&mut self, task: usize) {
        while let Some((channel, message)) = self.tasks[task].poll_output() {
            let Channel { to, to_input, .. } = self.channels[channel];
            self.tasks[to].push_input(to_input, message);
            self.queued[to] += 1;
        }
    }
}

/// Counters summed over a job's tasks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobMetrics {
    /// Records the sources read.
    pub source_records: u64,
    /// Records that operators found late (sent to a late output).
    pub late_records: u64,
    /// Records that deduplication dropped.
    pub duplicates: u64,
    /// Moments the operators went through.
    pub events: OperatorEvents,
}
