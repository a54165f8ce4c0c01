//! eddy-scenarios: named scenarios (not built yet; see issues 4 and 6).
//!
//! A scenario bundles a pipeline, a seeded input generator and a reference batch computation
//! written independently of the engine (sort by event time, fold with `BTreeMap`s). The
//! simulator runs the pipeline under faults and the oracles compare its committed output with
//! the reference. Until the scenarios land this crate only fixes its place in the layout.
#![forbid(unsafe_code)]

pub use eddy_sim as sim;
