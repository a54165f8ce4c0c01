//! Test machinery: the planted bugs, late-output taps and input drops, and the database model
//! that the simulator checks a job with. The engine uses it inside either way; it is public
//! only with the `testkit` feature, which the simulator and the live runtime turn on, so a
//! pipeline's own build does not see it.

pub mod bugs;
pub mod memory_database;
pub mod tap;

pub use memory_database::MemoryDatabase;
#[cfg(feature = "testkit")]
pub use tap::{drop_inputs, take_late_records, tap_late_outputs};
pub use tap::{InputDrops, LateRecord};
