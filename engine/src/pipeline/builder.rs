//! [`Pipeline`]: sources, settings and `build`, which validates the draft into a job graph.

use super::feature::Feature;
use std::cell::RefCell;
use std::rc::Rc;

use crate::element::Data;
use crate::graph::{BuildError, Edge, JobGraph, Node, NodeBody, PartitionerFactory, SourceFactory, TaskInfo};
use crate::operator::MAIN;
use crate::partition::{ForwardPartitioner, Partitioning};
use crate::source::{Log, LogReader, ScriptReader, Scripted, SourceReader};
use crate::state::DEFAULT_MAX_PARALLELISM;
use crate::time::WatermarkStrategy;

use super::draft::{Draft, GraphDraft, NodeDraft, Stream};

/// Builds a job graph.
///
/// ```
/// use eddy_engine::{Count, Log, Pipeline, Record, WatermarkStrategy, WindowAssigner};
///
/// let log = Log::round_robin((0..100).map(|i| Record::new(i * 1_000, i % 3)), 2);
/// let pipeline = Pipeline::new().with_parallelism(2);
/// let counts = pipeline
///     .source("numbers", log, WatermarkStrategy::bounded_out_of_orderness(0))
///     .key_by(|n: &i64| *n)
///     .window(WindowAssigner::tumbling(10_000))
///     .aggregate(Count)
///     .output
///     .collect();
/// let graph = pipeline.build().unwrap();
/// eddy_engine::run_to_end(&graph).unwrap();
/// let total: u64 = counts.values().iter().map(|w| w.value).sum();
/// assert_eq!(total, 100);
/// ```
pub struct Pipeline {
    draft: Draft,
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::new()
    }
}

impl Pipeline {
    /// An empty pipeline: parallelism 1, max parallelism 128, chaining on.
    pub fn new() -> Self {
        Pipeline {
            draft: Rc::new(RefCell::new(GraphDraft {
                default_parallelism: 1,
                max_parallelism: DEFAULT_MAX_PARALLELISM,
                ..GraphDraft::default()
            })),
        }
    }

    /// The parallelism of operators that do not set their own.
    pub fn with_parallelism(self, parallelism: usize) -> Self {
        self.draft.borrow_mut().default_parallelism = parallelism;
        self
    }

    /// The number of key groups: the upper bound of any keyed operator's parallelism.
    pub fn with_max_parallelism(self, max_parallelism: usize) -> Self {
        self.draft.borrow_mut().max_parallelism = max_parallelism;
        self
    }

    /// Runs every operator in a task of its own (Flink's `disableOperatorChaining`). By
    /// default an operator whose only input is a forward edge runs in its upstream's task
    /// and takes its records by a call; results, checkpoints and recovery are the same either
    /// way (the simulator runs even seeds chained and odd seeds not, docs/testing.md).
    pub fn disable_chaining(self) -> Self {
        self.draft.borrow_mut().chaining_disabled = true;
        self
    }

    /// A source reading `log`, one split per partition, with watermarks from `watermarks`.
    pub fn source<T: Data>(&self, name: &str, log: Log<T>, watermarks: WatermarkStrategy) -> Stream<T> {
        let factory = move |info: &TaskInfo| -> Box<dyn SourceReader> {
            Box::new(LogReader::new(log.clone(), info.subtask, info.parallelism))
        };
        self.draft.borrow_mut().features.insert(Feature::LogSource);
        self.add_source(name, Box::new(factory), watermarks)
    }

    pub(super) fn add_source<T: Data>(
        &self,
        name: &str,
        factory: SourceFactory,
        watermarks: WatermarkStrategy,
    ) -> Stream<T> {
        let mut draft = self.draft.borrow_mut();
        if watermarks.idle_timeout_ms.is_some() {
            draft.features.insert(Feature::Idleness);
        }
        if watermarks.out_of_orderness_ms < 0 {
            draft.errors.push(BuildError::Negative {
                operator: name.to_string(),
                what: "out-of-orderness bound",
                value: watermarks.out_of_orderness_ms,
            });
        }
        if watermarks.interval_ms <= 0 {
            draft.errors.push(BuildError::NotPositive {
                operator: name.to_string(),
                what: "watermark interval",
                value: watermarks.interval_ms,
            });
        }
        if let Some(timeout) = watermarks.idle_timeout_ms.filter(|t| *t <= 0) {
            draft.errors.push(BuildError::NotPositive {
                operator: name.to_string(),
                what: "idle timeout",
                value: timeout,
            });
        }
        draft.nodes.push(NodeDraft {
            name: name.to_string(),
            parallelism: None,
            inputs: Vec::new(),
            time_rule: None,
            body: NodeBody::Source { factory, watermarks },
            rebind: None,
        });
        let id = draft.nodes.len() - 1;
        drop(draft);
        Stream::new(&self.draft, vec![(id, MAIN)])
    }

    /// A source whose tasks read through readers from `factory` (one per source task), for
    /// inputs that are not a [`Log`] (the live runtime's followed file). The readers must
    /// emit `Record<T>` batches on [`MAIN`].
    pub fn source_from_readers<T: Data>(
        &self,
        name: &str,
        factory: impl Fn(&TaskInfo) -> Box<dyn SourceReader> + Send + 'static,
        watermarks: WatermarkStrategy,
    ) -> Stream<T> {
        self.draft.borrow_mut().features.insert(Feature::ReaderSource);
        self.add_source(name, Box::new(factory), watermarks)
    }

    /// A source that emits exactly `script`, records and watermarks in order (for tests).
    pub fn scripted_source<T: Data>(&self, name: &str, script: Vec<Scripted<T>>) -> Stream<T> {
        let script = std::sync::Arc::new(script);
        let mut draft = self.draft.borrow_mut();
        draft.features.insert(Feature::ScriptedSource);
        draft.nodes.push(NodeDraft {
            name: name.to_string(),
            parallelism: Some(1),
            inputs: Vec::new(),
            time_rule: None,
            body: NodeBody::Source {
                factory: Box::new(move |info: &TaskInfo| Box::new(ScriptReader::new(script.clone(), info.subtask))),
                watermarks: WatermarkStrategy::bounded_out_of_orderness(0).with_interval(1),
            },
            rebind: None,
        });
        let id = draft.nodes.len() - 1;
        drop(draft);
        Stream::new(&self.draft, vec![(id, MAIN)])
    }

    /// Validates the pipeline and returns its graph.
    pub fn build(self) -> Result<JobGraph, BuildError> {
        let draft = std::mem::take(&mut *self.draft.borrow_mut());
        if let Some(error) = draft.errors.into_iter().next() {
            return Err(error);
        }
        let max_parallelism = draft.max_parallelism;
        if !(1..=32_768).contains(&max_parallelism) {
            return Err(BuildError::InvalidMaxParallelism(max_parallelism));
        }
        let parallelism: Vec<usize> = draft
            .nodes
            .iter()
            .map(|n| n.parallelism.unwrap_or(draft.default_parallelism))
            .collect();
        let names: Vec<String> = draft.nodes.iter().map(|n| n.name.clone()).collect();
        let mut nodes = Vec::with_capacity(draft.nodes.len());
        for (id, node) in draft.nodes.into_iter().enumerate() {
            let p = parallelism[id];
            if p == 0 {
                return Err(BuildError::ZeroParallelism { operator: node.name });
            }
            if p > max_parallelism {
                return Err(BuildError::ParallelismAboveMax {
                    operator: node.name,
                    parallelism: p,
                    max_parallelism,
                });
            }
            let mut inputs = Vec::with_capacity(node.inputs.len());
            for edge in node.inputs {
                let same = parallelism[edge.from] == p;
                let partitioning = match edge.partitioning {
                    None if same => Partitioning::Forward,
                    None => Partitioning::Rebalance,
                    Some(Partitioning::Forward) if !same => {
                        return Err(BuildError::ForwardParallelismMismatch {
                            operator: node.name,
                            from: names[edge.from].clone(),
                            from_parallelism: parallelism[edge.from],
                            parallelism: p,
                        })
                    }
                    Some(explicit) => explicit,
                };
                let partitioner: PartitionerFactory = if partitioning == Partitioning::Forward {
                    Box::new(|_| Box::new(ForwardPartitioner))
                } else {
                    edge.partitioner
                };
                inputs.push(Edge {
                    from: edge.from,
                    from_port: edge.from_port,
                    input: edge.input,
                    partitioning,
                    partitioner,
                });
            }
            nodes.push(Node {
                name: node.name,
                parallelism: p,
                inputs,
                time_rule: node.time_rule,
                body: node.body,
                rebind: node.rebind,
            });
        }
        Ok(JobGraph {
            nodes,
            max_parallelism,
            chaining: !draft.chaining_disabled,
            features: draft.features,
        })
    }
}
