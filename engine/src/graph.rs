//! The job graph: operators with their parallelism, and the edges between them.
//!
//! Built by the typed [`Pipeline`](crate::Pipeline) builder and validated once; a
//! [`Job`](crate::Job) instantiates it into tasks and channels. Nodes hold factories, so one
//! graph can be instantiated many times (each simulated run, each restore).

use crate::operator::Operator;
use crate::partition::{Partitioner, Partitioning};
use crate::source::SourceReader;
use crate::state::KeyGroupRange;
use crate::time::WatermarkStrategy;
use crate::window::WindowAssigner;

/// A node's index in [`JobGraph::nodes`].
pub type NodeId = usize;

/// Where a task sits in its operator: what its factory needs to build it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task's index among its operator's parallel subtasks.
    pub subtask: usize,
    /// How many parallel subtasks the operator has.
    pub parallelism: usize,
    /// The job's max parallelism: the number of key groups.
    pub max_parallelism: usize,
    /// The key groups whose state the task holds.
    pub key_groups: KeyGroupRange,
}

pub(crate) type OperatorFactory = Box<dyn Fn(&TaskInfo) -> Box<dyn Operator> + Send>;
pub(crate) type SourceFactory = Box<dyn Fn(&TaskInfo) -> Box<dyn SourceReader> + Send>;
/// Called with the job's max parallelism, once per sending task.
/// A node's rebuilding recipe, opaque to the graph: only the store that made it looks inside.
pub(crate) type Rebind = Box<dyn std::any::Any + Send>;
pub(crate) type PartitionerFactory = Box<dyn Fn(usize) -> Box<dyn Partitioner> + Send>;

pub(crate) enum NodeBody {
    Source {
        factory: SourceFactory,
        watermarks: WatermarkStrategy,
    },
    Operator(OperatorFactory),
}

/// An operator or source of the graph, with the edges into it.
pub struct Node {
    /// The operator's name (in errors, reports and traces).
    pub name: String,
    /// How many parallel subtasks the operator has, as built.
    pub parallelism: usize,
    /// The edges into the node.
    pub inputs: Vec<Edge>,
    /// Where the operator's behaviour turns on a record's timestamp, if anywhere.
    pub time_rule: Option<TimeRule>,
    pub(crate) body: NodeBody,
    /// What a driver needs to rebuild a two-phase-commit sink over a transaction store of
    /// its own (the simulator's database model, `MemoryDatabase::attach`).
    pub(crate) rebind: Option<Rebind>,
}

/// The event-time parameters of an operator: where its behaviour changes with a record's
/// timestamp (what the simulator's `boundary` input fault aims at, docs/testing.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeRule {
    /// A window operator: where its windows start and end, and how long they take late records.
    Windows {
        /// The windows a record falls into.
        assigner: WindowAssigner,
        /// How long after a window ends a late record still updates it.
        allowed_lateness_ms: i64,
    },
    /// Deduplication: a record's dedup interval ends `ttl_ms` after it.
    Dedup {
        /// The length of a dedup interval.
        ttl_ms: i64,
    },
}

impl Node {
    /// Whether the node is a source (it reads input rather than consuming edges).
    pub fn is_source(&self) -> bool {
        matches!(self.body, NodeBody::Source { .. })
    }

    /// A source's watermark strategy.
    pub fn watermarks(&self) -> Option<WatermarkStrategy> {
        match &self.body {
            NodeBody::Source { watermarks, .. } => Some(*watermarks),
            NodeBody::Operator(_) => None,
        }
    }
}

/// An edge from output port `from_port` of node `from` into logical input `input`.
pub struct Edge {
    /// The sending node.
    pub from: NodeId,
    /// The sending node's output port.
    pub from_port: usize,
    /// The receiving node's logical input (0, or 1 for the second input of a join).
    pub input: usize,
    /// How records are spread over the receiving node's tasks.
    pub partitioning: Partitioning,
    pub(crate) partitioner: PartitionerFactory,
}

/// A validated dataflow graph; nodes are in topological order (inputs come first).
pub struct JobGraph {
    /// The nodes, inputs before the nodes they feed.
    pub nodes: Vec<Node>,
    /// The number of key groups keyed state is split into: no node's parallelism exceeds it.
    pub max_parallelism: usize,
    /// Whether forward edges chain operators into one task (on unless the pipeline called
    /// [`Pipeline::disable_chaining`](crate::Pipeline::disable_chaining)).
    pub chaining: bool,
    /// The operators, window options, triggers, evictors, sinks and source options the
    /// pipeline used (what `eddy explore --coverage` lists).
    pub features: std::collections::BTreeSet<crate::pipeline::Feature>,
}

/// How a graph becomes tasks: each node's parallelism, and whether forward edges chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Each node's parallelism, by node index.
    pub parallelism: Vec<usize>,
    /// Whether forward edges chain operators into one task.
    pub chaining: bool,
}

impl std::fmt::Debug for JobGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl JobGraph {
    /// The layout as built: the graph's parallelism and chaining.
    pub fn layout(&self) -> Layout {
        Layout {
            parallelism: self.parallelism(),
            chaining: self.chaining,
        }
    }

    /// Each node's parallelism, as built.
    pub fn parallelism(&self) -> Vec<usize> {
        self.nodes.iter().map(|n| n.parallelism).collect()
    }

    /// The parallelism of a rescaled job: every node whose built parallelism is `p` gets
    /// `rescale(p)` (capped by the max parallelism), so that nodes joined by a forward edge,
    /// which have equal parallelism, keep it equal.
    pub fn rescaled(&self, rescale: impl Fn(usize) -> usize) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|n| rescale(n.parallelism).clamp(1, self.max_parallelism))
            .collect()
    }

    /// One line per node: `name xP <- from:port (partitioning)`.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            text.push_str(&format!("{} x{}", node.name, node.parallelism));
            for edge in &node.inputs {
                text.push_str(&format!(
                    " <- {}:{} ({:?})",
                    self.nodes[edge.from].name, edge.from_port, edge.partitioning
                ));
            }
            text.push('\n');
        }
        text
    }
}

/// A pipeline that cannot run, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A window's assigner, trigger or evictor is invalid.
    #[error("operator `{operator}`: {reason}")]
    InvalidWindow {
        /// The operator's name.
        operator: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A duration that must not be negative is.
    #[error("operator `{operator}`: {what} must not be negative, got {value} ms")]
    Negative {
        /// The operator's name.
        operator: String,
        /// Which duration.
        what: &'static str,
        /// The duration given.
        value: i64,
    },
    /// A duration that must be positive is not.
    #[error("operator `{operator}`: {what} must be positive, got {value} ms")]
    NotPositive {
        /// The operator's name.
        operator: String,
        /// Which duration (or size).
        what: &'static str,
        /// The value given.
        value: i64,
    },
    /// An operator's parallelism is 0.
    #[error("operator `{operator}`: parallelism must be at least 1, got 0")]
    ZeroParallelism {
        /// The operator's name.
        operator: String,
    },
    /// An operator's parallelism exceeds the job's max parallelism.
    #[error("operator `{operator}`: parallelism {parallelism} exceeds the max parallelism {max_parallelism}")]
    ParallelismAboveMax {
        /// The operator's name.
        operator: String,
        /// The parallelism asked for.
        parallelism: usize,
        /// The job's max parallelism.
        max_parallelism: usize,
    },
    /// The max parallelism is 0 or above 32768.
    #[error("max parallelism must be between 1 and 32768, got {0}")]
    InvalidMaxParallelism(usize),
    /// A forward edge joins operators of unequal parallelism.
    #[error(
        "operator `{operator}`: a forward edge from `{from}` needs equal parallelism, got {from_parallelism} and {parallelism}"
    )]
    ForwardParallelismMismatch {
        /// The receiving operator's name.
        operator: String,
        /// The sending operator's name.
        from: String,
        /// The sending operator's parallelism.
        from_parallelism: usize,
        /// The receiving operator's parallelism.
        parallelism: usize,
    },
    /// A setting of one operator (the named one) was applied to a union of streams.
    #[error("`{0}` applies to one operator's output, not to a union of streams")]
    NotOnUnion(&'static str),
    /// A stream of another pipeline was combined with this one.
    #[error("streams from two different pipelines cannot be combined")]
    ForeignStream,
}
