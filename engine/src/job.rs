//! A job: a graph instantiated into tasks and the channels between them.
//!
//! The job moves what a task emits into the receiving mailboxes right after each step, so a
//! driver only decides *which* step comes next ([`Action`]), never how elements travel.

use crate::element::Timestamp;
use crate::graph::{JobGraph, NodeBody, TaskInfo};
use crate::partition::Partitioning;
use crate::state::KeyGroupRange;
use crate::task::{ChannelId, OutputEdge, Task, TaskBody, TaskId, TaskMetrics};
use crate::time::NO_WATERMARK;

/// A channel from one task to one input channel of another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub from: usize,
    pub to: usize,
    pub to_input: usize,
}

/// One step a driver can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Deliver the head of input channel `input` of task `task`.
    Deliver { task: usize, input: usize },
    /// Let source task `task` read a batch.
    PollSource { task: usize },
}

pub struct Job {
    tasks: Vec<Task>,
    channels: Vec<Channel>,
}

impl Job {
    pub fn new(graph: &JobGraph) -> Self {
        let mut tasks = Vec::new();
        let mut first_task = Vec::with_capacity(graph.nodes.len());
        for (node_id, node) in graph.nodes.iter().enumerate() {
            first_task.push(tasks.len());
            for subtask in 0..node.parallelism {
                let info = TaskInfo {
                    subtask,
                    parallelism: node.parallelism,
                    max_parallelism: graph.max_parallelism,
                    key_groups: KeyGroupRange::for_subtask(
                        subtask,
                        node.parallelism,
                        graph.max_parallelism,
                    ),
                };
                let body = match &node.body {
                    NodeBody::Source {
                        factory,
                        watermarks,
                    } => TaskBody::Source {
                        reader: factory(&info),
                        watermarks: *watermarks,
                        next_watermark_at: watermarks.interval_ms,
                        emitted_watermark: NO_WATERMARK,
                    },
                    NodeBody::Operator(factory) => TaskBody::Operator(factory(&info)),
                };
                let name = format!("{}[{}]", node.name, subtask);
                tasks.push(Task::new(
                    TaskId {
                        node: node_id,
                        subtask,
                    },
                    name,
                    body,
                ));
            }
        }
        let mut channels = Vec::new();
        for (node_id, node) in graph.nodes.iter().enumerate() {
            for edge in &node.inputs {
                let senders = graph.nodes[edge.from].parallelism;
                for sender in 0..senders {
                    let receivers: Vec<usize> = if edge.partitioning == Partitioning::Forward {
                        vec![sender]
                    } else {
                        (0..node.parallelism).collect()
                    };
                    let mut edge_channels: Vec<ChannelId> = Vec::with_capacity(receivers.len());
                    for receiver in receivers {
                        let to = first_task[node_id] + receiver;
                        let to_input = tasks[to].add_input(edge.input);
                        channels.push(Channel {
                            from: first_task[edge.from] + sender,
                            to,
                            to_input,
                        });
                        edge_channels.push(channels.len() - 1);
                    }
                    tasks[first_task[edge.from] + sender].add_output(OutputEdge {
                        port: edge.from_port,
                        channels: edge_channels,
                        partitioner: (edge.partitioner)(graph.max_parallelism),
                    });
                }
            }
        }
        Job { tasks, channels }
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }

    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Every step that can be taken now, in a fixed order (deliveries, then source polls).
    pub fn ready_actions(&self, actions: &mut Vec<Action>) {
        actions.clear();
        for (task, t) in self.tasks.iter().enumerate() {
            for input in 0..t.input_channels() {
                if t.is_ready(input) {
                    actions.push(Action::Deliver { task, input });
                }
            }
        }
        for (task, t) in self.tasks.iter().enumerate() {
            if t.is_source() && !t.is_ended() {
                actions.push(Action::PollSource { task });
            }
        }
    }

    pub fn perform(&mut self, action: Action, source_batch_size: usize) {
        match action {
            Action::Deliver { task, input } => {
                self.tasks[task].handle_input(input);
                self.flush(task);
            }
            Action::PollSource { task } => {
                self.tasks[task].handle_poll_source(source_batch_size);
                self.flush(task);
            }
        }
    }

    /// Fires processing time `now` on every task whose deadline has come, in task order.
    pub fn handle_processing_time(&mut self, now: Timestamp) {
        for task in 0..self.tasks.len() {
            if self.tasks[task]
                .next_processing_deadline()
                .is_some_and(|d| d <= now)
            {
                self.tasks[task].handle_processing_time(now);
                self.flush(task);
            }
        }
    }

    pub fn next_processing_deadline(&self) -> Option<Timestamp> {
        self.tasks
            .iter()
            .filter_map(Task::next_processing_deadline)
            .min()
    }

    /// Every task ended and every mailbox is empty.
    pub fn is_finished(&self) -> bool {
        self.tasks.iter().all(|t| t.is_ended() && t.queued() == 0)
    }

    pub fn state_entries(&self) -> usize {
        self.tasks.iter().map(Task::state_entries).sum()
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
        }
        metrics
    }

    fn flush(&mut self, task: usize) {
        while let Some((channel, message)) = self.tasks[task].poll_output() {
            let Channel { to, to_input, .. } = self.channels[channel];
            self.tasks[to].push_input(to_input, message);
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobMetrics {
    pub source_records: u64,
    pub late_records: u64,
    pub duplicates: u64,
}
