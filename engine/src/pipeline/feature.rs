//! The engine's features a pipeline uses, recorded as it is built ([`JobGraph::features`]):
//! what `eddy explore --coverage` lists per scenario, so that a campaign shows which
//! operators, triggers, evictors, sinks and source options it ran under faults.
//!
//! [`JobGraph::features`]: crate::JobGraph::features

use serde::{Deserialize, Serialize};

/// One operator, window option, trigger, evictor, sink or source option of the pipeline API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Feature {
    /// `Pipeline::source` over a partitioned log.
    LogSource,
    /// `Pipeline::scripted_source`: records and explicit watermarks.
    ScriptedSource,
    /// `Pipeline::source_from_readers`: readers of the driver's (a followed file).
    ReaderSource,
    /// `WatermarkStrategy::with_idleness`: idle partitions stop holding the watermark back.
    Idleness,
    /// Tumbling event-time windows.
    TumblingWindows,
    /// Sliding event-time windows.
    SlidingWindows,
    /// Session windows.
    SessionWindows,
    /// A tumbling or sliding window's offset.
    WindowOffset,
    /// Allowed lateness above zero: late firings.
    AllowedLateness,
    /// `LatenessRule::WholeRecord`.
    WholeRecordLateness,
    /// `Trigger::continuous_event_time`.
    ContinuousTrigger,
    /// `Trigger::count`.
    CountTrigger,
    /// `Trigger::purging`.
    PurgingTrigger,
    /// `Evictor::count`.
    CountEvictor,
    /// `Evictor::time`.
    TimeEvictor,
    /// `WindowedStream::aggregate`.
    WindowAggregate,
    /// `WindowedStream::reduce`.
    WindowReduce,
    /// `WindowedStream::process`.
    WindowProcess,
    /// `KeyedStream::process`: a keyed process function with state and timers.
    ProcessFunction,
    /// `KeyedStream::process_on_time`: the same, late records to a side output.
    ProcessOnTime,
    /// `KeyedStream::deduplicate` keeping the first record.
    DedupKeepFirst,
    /// `KeyedStream::deduplicate` keeping the last record.
    DedupKeepLast,
    /// `KeyedStream::temporal_join`.
    TemporalJoin,
    /// `Stream::debezium_changelog` or `Stream::debezium_upsert`.
    Debezium,
    /// `normalize`: upsert form into retract form.
    Normalize,
    /// `to_upsert`: retract form into upsert form.
    ToUpsert,
    /// `aggregate_changelog`.
    ChangelogAggregate,
    /// `top_n`.
    TopN,
    /// `join_changelog` with `JoinKind::Inner`.
    InnerJoin,
    /// `join_changelog` with `JoinKind::LeftOuter`.
    LeftOuterJoin,
    /// `semi_join_changelog` with `SemiJoinKind::Semi`.
    SemiJoin,
    /// `semi_join_changelog` with `SemiJoinKind::Anti`.
    AntiJoin,
    /// `join_changelog_with_ttl`.
    JoinTtl,
    /// A sink that writes on receipt (`sink`, `collect`).
    Sink,
    /// A two-phase-commit sink (`sink_transactional`, `collect_committed`).
    TransactionalSink,
    /// `sink_table`: a changelog materialised by primary key.
    TableSink,
    /// `sink_upsert`: an upsert stream by primary key.
    UpsertSink,
}

impl Feature {
    /// Every feature, in this order.
    pub const ALL: [Feature; 37] = [
        Feature::LogSource,
        Feature::ScriptedSource,
        Feature::ReaderSource,
        Feature::Idleness,
        Feature::TumblingWindows,
        Feature::SlidingWindows,
        Feature::SessionWindows,
        Feature::WindowOffset,
        Feature::AllowedLateness,
        Feature::WholeRecordLateness,
        Feature::ContinuousTrigger,
        Feature::CountTrigger,
        Feature::PurgingTrigger,
        Feature::CountEvictor,
        Feature::TimeEvictor,
        Feature::WindowAggregate,
        Feature::WindowReduce,
        Feature::WindowProcess,
        Feature::ProcessFunction,
        Feature::ProcessOnTime,
        Feature::DedupKeepFirst,
        Feature::DedupKeepLast,
        Feature::TemporalJoin,
        Feature::Debezium,
        Feature::Normalize,
        Feature::ToUpsert,
        Feature::ChangelogAggregate,
        Feature::TopN,
        Feature::InnerJoin,
        Feature::LeftOuterJoin,
        Feature::SemiJoin,
        Feature::AntiJoin,
        Feature::JoinTtl,
        Feature::Sink,
        Feature::TransactionalSink,
        Feature::TableSink,
        Feature::UpsertSink,
    ];

    /// The feature's name in reports: its API's name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::LogSource => "source",
            Feature::ScriptedSource => "scripted_source",
            Feature::ReaderSource => "source_from_readers",
            Feature::Idleness => "with_idleness",
            Feature::TumblingWindows => "tumbling",
            Feature::SlidingWindows => "sliding",
            Feature::SessionWindows => "session",
            Feature::WindowOffset => "window-offset",
            Feature::AllowedLateness => "allowed_lateness",
            Feature::WholeRecordLateness => "lateness-whole-record",
            Feature::ContinuousTrigger => "trigger-continuous",
            Feature::CountTrigger => "trigger-count",
            Feature::PurgingTrigger => "trigger-purging",
            Feature::CountEvictor => "evictor-count",
            Feature::TimeEvictor => "evictor-time",
            Feature::WindowAggregate => "window-aggregate",
            Feature::WindowReduce => "window-reduce",
            Feature::WindowProcess => "window-process",
            Feature::ProcessFunction => "process",
            Feature::ProcessOnTime => "process_on_time",
            Feature::DedupKeepFirst => "dedup-first",
            Feature::DedupKeepLast => "dedup-last",
            Feature::TemporalJoin => "temporal_join",
            Feature::Debezium => "debezium_changelog",
            Feature::Normalize => "normalize",
            Feature::ToUpsert => "to_upsert",
            Feature::ChangelogAggregate => "aggregate_changelog",
            Feature::TopN => "top_n",
            Feature::InnerJoin => "join-inner",
            Feature::LeftOuterJoin => "join-left",
            Feature::SemiJoin => "join-semi",
            Feature::AntiJoin => "join-anti",
            Feature::JoinTtl => "join_changelog_with_ttl",
            Feature::Sink => "sink",
            Feature::TransactionalSink => "sink_transactional",
            Feature::TableSink => "sink_table",
            Feature::UpsertSink => "sink_upsert",
        }
    }
}
