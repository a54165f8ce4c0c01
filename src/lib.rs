//! eddy: a Flink-style stream processing engine whose every execution can be simulated
//! deterministically.
//!
//! This facade re-exports the layers: [`engine`] (dataflow, state, event time, windows),
//! [`sim`] (the deterministic simulator) and [`scenarios`] (named workloads with their
//! reference computations). The engine's user-facing types are also at the top level.
#![forbid(unsafe_code)]

pub use eddy_engine as engine;
pub use eddy_scenarios as scenarios;
pub use eddy_sim as sim;

pub mod live;
pub mod postgres;
pub mod replay_file;
pub mod store;
pub mod timeline;

pub use eddy_engine::{
    run_batch, run_to_end, AggregateFunction, BatchConfig, BuildError, Change, CollectSink, Count, Data, Evictor,
    JobGraph, Keep, Key, KeyedProcessFunction, LatenessRule, ListState, Log, MapState, Pipeline, ProcessContext,
    Record, Scripted, Sink, Stream, Sum, TimeDomain, Trigger, ValueState, WatermarkStrategy, Window, WindowAssigner,
    Windowed, WithLate,
};
pub use eddy_sim::{Committed, Differential, Outputs};

/// The README's example compiles and runs as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
