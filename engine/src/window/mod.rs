//! Windows: assigners, window functions and the two window operators.
//!
//! Rules (docs/semantics.md, "Windows"): windows are `[start, end)` with
//! `max_timestamp = end - 1`; a window fires when the watermark reaches `max_timestamp`; with
//! allowed lateness `L` its state lives until the watermark reaches `max_timestamp + L`, and
//! a record added meanwhile fires the window again (a late firing, an upsert of the result).
//! As in Flink, a record joins those of its windows that are still open and goes to the late
//! side output only when none is (or, with [`LatenessRule::WholeRecord`], when any is late);
//! sessions merge first and judge the merged session. When a window fires is its
//! [`Trigger`]'s decision. Output order is deterministic: by timer, window, then key.
//!
//! One file per concept: `assigner` (which windows), `function` (what they compute),
//! `trigger` and `evictor` (when they fire, what a firing sees), `pane` (one key's
//! contents), and the two operators, `fixed` (tumbling, sliding) and `session`.

mod assigner;
mod evictor;
mod fixed;
mod function;
mod pane;
mod session;
#[cfg(test)]
mod tests;
mod trigger;

pub use assigner::{LatenessRule, Window, WindowAssigner};
pub use evictor::Evictor;
pub(crate) use fixed::WindowOperator;
pub use function::{AggregateFunction, Count, Sum, Windowed};
pub(crate) use function::{Aggregating, Evicting, Processing, Reducing, WindowFunction};
pub(crate) use pane::WindowSettings;
pub(crate) use session::SessionWindowOperator;
pub use trigger::Trigger;
