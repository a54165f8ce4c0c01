//! eddy-engine: a sans-IO, deterministic dataflow engine with Flink's event-time semantics.
//!
//! Users build a [`Pipeline`] of typed streams; [`Pipeline::build`] validates it into a
//! [`JobGraph`]; a [`Job`] instantiates the graph into [`Task`]s connected by FIFO channels;
//! a driver steps the job. The engine never reads a clock, sleeps, spawns threads, does I/O or
//! draws randomness: time, input order and scheduling all come from its driver
//! ([`run_batch`] here, the simulator and the live runtime elsewhere).
//!
//! Semantics are specified in `docs/semantics.md`; the map of the code is
//! `docs/ARCHITECTURE.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cdc;
pub mod changelog;
pub mod checkpoint;
pub mod codec;
pub mod dedup;
pub mod driver;
pub mod element;
pub mod graph;
pub mod job;
pub mod join;
pub mod lines;
pub mod operator;
pub mod partition;
pub mod pipeline;
pub mod prepared;
pub mod process;
pub mod semi_join;
pub mod sink;
pub mod snapshot;
pub mod source;
pub mod state;
pub mod task;
#[cfg(feature = "testkit")]
pub mod testkit;
#[cfg(not(feature = "testkit"))]
#[allow(dead_code, unused_imports)]
pub(crate) mod testkit;
pub mod time;
pub mod timer;
pub mod transaction;
pub mod window;

pub use changelog::{
    AvgRows, ChangelogAggregate, CountDistinctRows, CountRows, JoinKind, MaxRows, MinRows, RetractableAggregate, Row,
    RowKind, Side, SumDistinctRows, SumRows,
};
pub use checkpoint::{
    recover, recover_at, restore_checkpoint, CheckpointCoordinator, CheckpointOutcome, Clock, MemorySnapshotStore,
    ObjectKey, Recovery, RecoveryError, Retention, SnapshotStore, StoreError,
};
pub use dedup::Keep;
pub use driver::{
    run_batch, run_checkpointed, run_steps, run_to_end, BatchConfig, InOrder, RunError, RunSummary, Scheduler,
};
pub use element::{encode_value, Batch, CheckpointId, Data, Key, Message, Record, Timestamp};
pub use graph::{BuildError, JobGraph, Layout, NodeId, TaskInfo, TimeRule};
pub use job::{Action, Job, JobMetrics, RestoreError};
pub use join::{Change, LateRows};
pub use operator::{Operator, OperatorEvents, Output, LATE, LATE_CHANGES, MAIN};
pub use partition::Partitioning;
pub use pipeline::{Feature, KeyedStream, Pipeline, Stream, TemporalJoin, WindowedStream, WithLate};
pub use prepared::{plan_recovery, PreparedCommitSink, RecoveryPlan};
pub use process::{KeyedProcessFunction, ProcessContext};
pub use semi_join::SemiJoinKind;
pub use sink::{CollectSink, Collected, CommitLog, Sink, Table, TableMode, UpsertSink};
pub use snapshot::{Manifest, SnapshotError, TaskSnapshot};
pub use source::{read_split, Log, Scripted, SourceReader, Stall};
pub use state::{KeyGroup, KeyGroupRange, ListState, MapState, ValueState};
pub use task::{Task, TaskId, TaskMetrics};
pub use time::{SourceWatermark, SplitActivity, SplitWatermark, WatermarkStrategy, END_OF_TIME, NO_WATERMARK};
pub use timer::TimeDomain;
pub use transaction::{Committer, DatabaseError, PreparedTransactions, TransactionId};
pub use window::{AggregateFunction, Count, Evictor, LatenessRule, Sum, Trigger, Window, WindowAssigner, Windowed};
