//! eddy-sim: the deterministic simulator (not built yet; see issue 4).
//!
//! This crate will hold the single-threaded scheduler that drives `eddy-engine` tasks under a
//! virtual clock, with every choice (which channel delivers next, when a source emits, when to
//! checkpoint or crash) drawn from a `ChaCha8Rng` derived from the run's seed, one stream per
//! concern. It will also hold fault injection, the step trace and its hash, and run reports.
//! Until then it only re-exports the engine so that the dependency direction
//! `engine <- sim <- scenarios <- eddy` is already in place.
#![forbid(unsafe_code)]

pub use eddy_engine as engine;
