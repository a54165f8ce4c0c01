//! The subcommands, one module each (`eddy bench` is [`crate::bench`]).

pub mod explore;
pub mod list;
pub mod materialize;
pub mod merge;
pub mod replay;
pub mod run;
pub mod shrink;
