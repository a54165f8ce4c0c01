//! What a [`Stream`] can do: stateless operators, partitioning, unions, sinks.

use super::feature::Feature;
use std::marker::PhantomData;
use std::rc::Rc;

use crate::changelog::Row;
use crate::element::{Data, Key};
use crate::graph::{BuildError, NodeBody, NodeId, OperatorFactory, TaskInfo, TimeRule};
use crate::operator::{Filter, FilterMap, FlatMap, Map, Operator, MAIN};
use crate::partition::{BroadcastPartitioner, ForwardPartitioner, Partitioning, RebalancePartitioner};
use crate::prepared::PreparedCommitSink;
use crate::sink::{CollectSink, CommitLog, Sink, SinkOperator, TwoPhaseCommitSink};
use crate::testkit::memory_database::database_hook;
use crate::transaction::Committer;

use super::draft::{Draft, EdgeDraft, KeyedStream, NodeDraft, Stream};

impl<T: Data> Stream<T> {
    pub(super) fn new(draft: &Draft, outputs: Vec<(NodeId, usize)>) -> Self {
        Stream {
            draft: Rc::clone(draft),
            outputs,
            partitioning: None,
            _types: PhantomData,
        }
    }

    pub(super) fn edges(&self, input: usize) -> Vec<EdgeDraft> {
        let partitioning = self.partitioning;
        self.outputs
            .iter()
            .map(|&(from, from_port)| EdgeDraft {
                from,
                from_port,
                input,
                partitioning,
                partitioner: match partitioning {
                    Some(Partitioning::Broadcast) => Box::new(|_| Box::new(BroadcastPartitioner)),
                    Some(Partitioning::Forward) => Box::new(|_| Box::new(ForwardPartitioner)),
                    _ => Box::new(|_| {
                        Box::new(RebalancePartitioner::<T> {
                            next: 0,
                            _types: PhantomData,
                        })
                    }),
                },
            })
            .collect()
    }

    pub(super) fn single_node(&self, what: &'static str) -> Option<NodeId> {
        match self.outputs.as_slice() {
            [(node, _)] => Some(*node),
            _ => {
                self.draft.borrow_mut().errors.push(BuildError::NotOnUnion(what));
                None
            }
        }
    }

    /// Sets the parallelism of the operator that produces this stream.
    pub fn parallelism(self, parallelism: usize) -> Self {
        if let Some(node) = self.single_node("parallelism") {
            self.draft.borrow_mut().nodes[node].parallelism = Some(parallelism);
        }
        self
    }

    /// Names the operator that produces this stream (in errors, reports and traces).
    pub fn name(self, name: &str) -> Self {
        if let Some(node) = self.single_node("name") {
            self.draft.borrow_mut().nodes[node].name = name.to_string();
        }
        self
    }

    /// Sends the next operator's input round-robin over its tasks.
    pub fn rebalance(mut self) -> Self {
        self.partitioning = Some(Partitioning::Rebalance);
        self
    }

    /// Sends every record to every task of the next operator.
    pub fn broadcast(mut self) -> Self {
        self.partitioning = Some(Partitioning::Broadcast);
        self
    }

    /// Task `i` feeds task `i` of the next operator (an error unless parallelism is equal).
    pub fn forward(mut self) -> Self {
        self.partitioning = Some(Partitioning::Forward);
        self
    }

    /// One stream of both inputs' records.
    pub fn union(mut self, other: Stream<T>) -> Stream<T> {
        if !Rc::ptr_eq(&self.draft, &other.draft) {
            self.draft.borrow_mut().errors.push(BuildError::ForeignStream);
        }
        self.outputs.extend(other.outputs);
        self
    }

    pub(super) fn add_operator(&self, kind: &str, inputs: Vec<EdgeDraft>, factory: OperatorFactory) -> NodeId {
        let mut draft = self.draft.borrow_mut();
        let id = draft.nodes.len();
        draft.nodes.push(NodeDraft {
            name: format!("{kind}-{id}"),
            parallelism: None,
            inputs,
            time_rule: None,
            body: NodeBody::Operator(factory),
            rebind: None,
        });
        id
    }

    pub(super) fn set_time_rule(&self, node: NodeId, rule: TimeRule) {
        self.draft.borrow_mut().nodes[node].time_rule = Some(rule);
    }

    /// Records that the pipeline uses `feature` ([`JobGraph::features`](crate::JobGraph::features)).
    pub(super) fn uses(&self, feature: Feature) {
        self.draft.borrow_mut().features.insert(feature);
    }

    pub(super) fn error(&self, error: BuildError) {
        self.draft.borrow_mut().errors.push(error);
    }

    pub(super) fn next_name(&self, kind: &str) -> String {
        format!("{kind}-{}", self.draft.borrow().nodes.len())
    }

    /// Adds a stateless operator, made by `make` for each task.
    pub(super) fn stateless<U: Data, O: Operator + 'static>(
        self,
        kind: &str,
        make: impl Fn() -> O + Send + 'static,
    ) -> Stream<U> {
        let factory: OperatorFactory = Box::new(move |_| Box::new(make()));
        let id = self.add_operator(kind, self.edges(0), factory);
        Stream::new(&self.draft, vec![(id, MAIN)])
    }

    /// Each record's value mapped by `f`, at the record's timestamp.
    pub fn map<U: Data, F: FnMut(T) -> U + Clone + Send + 'static>(self, f: F) -> Stream<U> {
        self.stateless("map", move || Map {
            f: f.clone(),
            _types: PhantomData,
        })
    }

    /// The records whose value `f` accepts.
    pub fn filter<F: FnMut(&T) -> bool + Clone + Send + 'static>(self, f: F) -> Stream<T> {
        self.stateless("filter", move || Filter {
            f: f.clone(),
            _types: PhantomData,
        })
    }

    /// Every value `f` makes of each record, at the record's timestamp.
    pub fn flat_map<U: Data, I: IntoIterator<Item = U> + 'static, F: FnMut(T) -> I + Clone + Send + 'static>(
        self,
        f: F,
    ) -> Stream<U> {
        self.stateless("flat_map", move || FlatMap {
            f: f.clone(),
            _types: PhantomData,
        })
    }

    /// What `f` makes of each record, where it makes something: a flat map of at most one
    /// result that reads its input by reference, so that chained to a source it reads the
    /// log in place (no record is copied to be looked at).
    pub fn filter_map<U: Data, F: FnMut(&T) -> Option<U> + Clone + Send + 'static>(self, f: F) -> Stream<U> {
        self.stateless("filter_map", move || FilterMap {
            f: f.clone(),
            _types: PhantomData,
        })
    }

    /// Partitions the stream by key: records with equal keys reach the same task.
    pub fn key_by<K: Key, KS: Fn(&T) -> K + Clone + Send + 'static>(self, key_selector: KS) -> KeyedStream<T, K, KS> {
        KeyedStream {
            stream: self,
            key_selector,
            _types: PhantomData,
        }
    }

    /// Writes the stream to `sink` (cloned once per sink task).
    pub fn sink<S: Sink<T>>(self, sink: S) {
        self.uses(Feature::Sink);
        self.add_operator("sink", self.edges(0), sink_factory(sink));
    }

    /// Writes the stream through a two-phase-commit sink: records are staged per checkpoint
    /// and handed to `committer` once the checkpoint completed (exactly-once).
    pub fn sink_transactional<C: Committer<T>>(self, committer: C) {
        self.uses(Feature::TransactionalSink);
        let node = self.add_operator("sink", self.edges(0), transactional_sink_factory(committer.clone()));
        self.draft.borrow_mut().nodes[node].rebind = Some(Box::new(database_hook(committer)));
    }

    /// Writes the stream through a two-phase-commit sink into a [`CommitLog`] and returns it.
    pub fn collect_committed(self) -> CommitLog<T>
    where
        T: PartialEq,
    {
        let log = CommitLog::new();
        self.sink_transactional(log.clone());
        log
    }

    /// Writes the stream to a [`CollectSink`] and returns it.
    pub fn collect(self) -> CollectSink<T> {
        let sink = CollectSink::new();
        self.sink(sink.clone());
        sink
    }
}

pub(super) fn sink_factory<T: Data, S: Sink<T>>(sink: S) -> OperatorFactory {
    Box::new(move |_| {
        Box::new(SinkOperator {
            sink: sink.clone(),
            _types: PhantomData,
        }) as Box<dyn Operator>
    })
}

pub(super) fn transactional_sink_factory<T: Data, C: Committer<T>>(committer: C) -> OperatorFactory {
    Box::new(move |info: &TaskInfo| match committer.prepared_transactions(info) {
        Some(database) => Box::new(PreparedCommitSink::new(database, info)) as Box<dyn Operator>,
        None => Box::new(TwoPhaseCommitSink::new(committer.clone(), info.subtask)) as Box<dyn Operator>,
    })
}

impl<T: Data> Stream<T> {
    /// The stream as an insert-only changelog: every record a `+I` row.
    pub fn changelog(self) -> Stream<Row<T>> {
        self.map(Row::insert)
    }
}

impl<T: Data> Stream<crate::cdc::ChangeEvent<T>> {
    /// Debezium change events as a changelog of their rows in retract form (`-U before, +U
    /// after`), keyed by `key` of the row: a replayed event (its position not past its key's
    /// last) is dropped (docs/semantics.md, "Change data capture"). An update's and a
    /// delete's `before` must hold the whole old row.
    pub fn debezium_changelog<K: Key, F: Fn(&T) -> K + Clone + Send + 'static>(self, key: F) -> Stream<Row<T>> {
        self.debezium_decode(key, crate::cdc::DebeziumMode::Retract)
    }

    /// The same changelog, keyed on the after-image: each key's last row is kept, and an
    /// update retracts it (`-U kept, +U after`; an update that changes nothing is dropped), a
    /// delete too (`-D kept`). It reads only the key of a delete's `before` and nothing of an
    /// update's, so a table that sends only the key's old columns (PostgreSQL's REPLICA
    /// IDENTITY DEFAULT) will do; read its lines in [`DebeziumMode::Upsert`].
    ///
    /// [`DebeziumMode::Upsert`]: crate::cdc::DebeziumMode::Upsert
    pub fn debezium_upsert<K: Key, F: Fn(&T) -> K + Clone + Send + 'static>(self, key: F) -> Stream<Row<T>>
    where
        T: PartialEq,
    {
        self.debezium_decode(key.clone(), crate::cdc::DebeziumMode::Upsert)
            .key_by(move |r: &Row<T>| key(&r.row))
            .normalize()
    }

    fn debezium_decode<K: Key, F: Fn(&T) -> K + Clone + Send + 'static>(
        self,
        key: F,
        mode: crate::cdc::DebeziumMode,
    ) -> Stream<Row<T>> {
        let keyed = self.key_by(move |event: &crate::cdc::ChangeEvent<T>| {
            key(event.row().expect("a change event has a row (validated when read)"))
        });
        keyed.stream.uses(Feature::Debezium);
        keyed.process_node(crate::cdc::DebeziumDecode::new(mode))
    }
}
