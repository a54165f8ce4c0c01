//! The typed pipeline builder: `source → map / filter / key_by / window / ... → sink`.
//!
//! Streams are typed; the graph they build is not. Mistakes in parameters (a zero window
//! size, parallelism 0, ...) are collected and returned by [`Pipeline::build`] as a
//! [`BuildError`](crate::BuildError)(crate::BuildError) naming the operator, never as a panic inside a task.

mod builder;
mod changelog;
mod draft;
mod feature;
mod keyed;
mod stream;
mod windowed;

pub use builder::Pipeline;
pub use draft::{JoinedWithLate, KeyedStream, Stream, TemporalJoin, WindowedStream, WithLate};
pub use feature::Feature;
