//! eddy-runtime: the live runtime (docs/live.md). The engine's tasks on tokio with the real
//! clock, real files and a real database: [`live`] runs a job and its checkpoints, [`store`]
//! keeps snapshots in a directory, [`postgres`] commits output lines into PostgreSQL by
//! prepared transactions.
//!
//! It depends on the engine only. The simulator drives the very same task code on virtual
//! time; a live run adds the clock, the channels and the I/O, nothing else.
#![forbid(unsafe_code)]

pub mod live;
pub mod postgres;
pub mod store;
