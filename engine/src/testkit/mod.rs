//! Test machinery: the planted bugs, late-output taps and input drops, and the database model
//! that the simulator checks a job with. The engine uses it inside either way; it is public
//! only with the `testkit` feature, which the simulator and the live runtime turn on, so a
//! pipeline's own build does not see it.

pub mod bugs;
pub mod memory_database;
pub mod tap;

pub use memory_database::MemoryDatabase;
pub use tap::{InputDrops, LateRecord};

#[cfg(feature = "testkit")]
use crate::{job::Job, task::Task};

/// Every task of `job` records what its operator sends to late outputs from now on, wired
/// to a sink or not ([`take_late_records`]).
#[cfg(feature = "testkit")]
pub fn tap_late_outputs(job: &mut Job) {
    job.tasks_mut().iter_mut().for_each(Task::tap_late_outputs);
}

/// The records `job`'s operators sent to late outputs since the last call, in task order.
#[cfg(feature = "testkit")]
pub fn take_late_records(job: &mut Job) -> Vec<LateRecord> {
    job.tasks_mut().iter_mut().flat_map(Task::take_late_records).collect()
}

/// Every operator of `job` drops `drops`' records from its inputs before it sees them.
#[cfg(feature = "testkit")]
pub fn drop_inputs(job: &mut Job, drops: &InputDrops) {
    for task in job.tasks_mut() {
        task.drop_inputs(drops.clone());
    }
}
