//! The graph under construction, shared by every handle onto it, and the typed handles
//! themselves (streams, keyed and windowed streams, operator results with late outputs).
//! Definitions only: what each handle can do is in the module named after it.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::rc::Rc;

use super::feature::Feature;
use crate::changelog::{Row, Side};
use crate::graph::Rebind;
use crate::graph::{BuildError, NodeBody, NodeId, PartitionerFactory, TimeRule};
use crate::join::Change;
use crate::partition::Partitioning;
use crate::window::{Evictor, WindowAssigner, WindowSettings};

pub(super) struct EdgeDraft {
    pub(super) from: NodeId,
    pub(super) from_port: usize,
    pub(super) input: usize,
    /// `None`: forward if both sides have the same parallelism, else rebalance.
    pub(super) partitioning: Option<Partitioning>,
    pub(super) partitioner: PartitionerFactory,
}

pub(super) struct NodeDraft {
    pub(super) name: String,
    pub(super) parallelism: Option<usize>,
    pub(super) inputs: Vec<EdgeDraft>,
    pub(super) time_rule: Option<TimeRule>,
    pub(super) body: NodeBody,
    /// How a transactional sink's operators are rebuilt over a database model
    /// (`MemoryDatabase::attach`).
    pub(super) rebind: Option<Rebind>,
}

#[derive(Default)]
pub(super) struct GraphDraft {
    pub(super) nodes: Vec<NodeDraft>,
    pub(super) errors: Vec<BuildError>,
    pub(super) default_parallelism: usize,
    pub(super) max_parallelism: usize,
    pub(super) chaining_disabled: bool,
    /// The API the pipeline used ([`Feature`]).
    pub(super) features: BTreeSet<Feature>,
}

pub(super) type Draft = Rc<RefCell<GraphDraft>>;

/// A typed stream: the outputs of one operator, or of several (a union).
pub struct Stream<T> {
    pub(super) draft: Draft,
    pub(super) outputs: Vec<(NodeId, usize)>,
    pub(super) partitioning: Option<Partitioning>,
    pub(super) _types: PhantomData<fn() -> T>,
}

impl<T> Clone for Stream<T> {
    /// Another handle to the same stream: each consumer gets every record.
    fn clone(&self) -> Self {
        Stream {
            draft: Rc::clone(&self.draft),
            outputs: self.outputs.clone(),
            partitioning: self.partitioning,
            _types: PhantomData,
        }
    }
}

/// A regular join's output and its late rows (with a TTL).
pub type JoinedWithLate<L, R> = WithLate<Row<(L, Option<R>)>, Side<L, R>>;

/// A stream and, for a stateful operator, a second stream of its late records.
pub struct WithLate<O, L> {
    /// The operator's results.
    pub output: Stream<O>,
    /// The records that arrived too late for the operator (its late side output).
    pub late: Stream<L>,
}

/// The temporal join's output and its two late outputs.
pub struct TemporalJoin<T, K, V> {
    /// Each probe record with the table's version valid at its timestamp (`None` if there is none).
    pub output: Stream<(T, Option<V>)>,
    /// Probe records that arrived at or behind the watermark.
    pub late: Stream<T>,
    /// Table changes that arrived at or behind the watermark.
    pub late_changes: Stream<Change<K, V>>,
}

/// A stream partitioned by key.
pub struct KeyedStream<T, K, KS> {
    pub(super) stream: Stream<T>,
    pub(super) key_selector: KS,
    pub(super) _types: PhantomData<fn() -> K>,
}

/// A keyed stream grouped into windows, waiting for its window function.
pub struct WindowedStream<T, K, KS> {
    pub(super) keyed: KeyedStream<T, K, KS>,
    pub(super) assigner: WindowAssigner,
    pub(super) settings: WindowSettings,
    pub(super) evictor: Option<Evictor>,
}
