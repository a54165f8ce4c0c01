//! eddy: a Flink-style stream processing engine whose every execution can be simulated
//! deterministically.
//!
//! This facade re-exports the layers: [`engine`] (dataflow, state, event time, windows) and
//! [`sim`] (the deterministic simulator and the differential check). What a pipeline and its
//! property suite are written with is also at the top level. Behind features (the `eddy` CLI
//! turns them on): `scenarios`, the named workloads with their reference computations, and
//! `live`, the runtime on tokio with files and PostgreSQL.
#![forbid(unsafe_code)]

/// The engine (`eddy-engine`). Its test machinery (`engine::testkit`: planted bugs, late-output
/// taps, the database model) is here only with the `testkit` feature.
pub mod engine {
    pub use eddy_engine::*;
    // An item of its own shadows the glob's `testkit`: a default build does not reach it.
    #[cfg(not(feature = "testkit"))]
    #[allow(dead_code, hidden_glob_reexports)]
    mod testkit {}
}
#[cfg(feature = "scenarios")]
pub use eddy_scenarios as scenarios;
pub use eddy_sim as sim;

#[cfg(feature = "live")]
pub use eddy_runtime::{live, postgres, store};

#[cfg(feature = "scenarios")]
pub mod replay_file;
pub mod timeline;

pub use eddy_engine::{
    run_batch, run_to_end, AggregateFunction, BatchConfig, BuildError, Change, CollectSink, Count, Data, Evictor,
    JobGraph, Keep, Key, KeyedProcessFunction, LatenessRule, ListState, Log, MapState, Pipeline, ProcessContext,
    Record, Scripted, Sink, Stream, Sum, TimeDomain, Trigger, ValueState, WatermarkStrategy, Window, WindowAssigner,
    Windowed, WithLate,
};
pub use eddy_sim::{check, ChaCha8Rng, CheckConfig, Committed, Differential, Outputs, Profile, Regressions};

/// The README's example compiles and runs as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
