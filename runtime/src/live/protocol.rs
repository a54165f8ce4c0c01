//! The messages between the checkpoint coordinator and the tasks: controls one way, reports
//! the other. A leaf: the coordinator, the runners and the runtime loop all speak it, and it
//! imports none of them.

use tokio::sync::oneshot;

use eddy_engine::{CheckpointId, TaskSnapshot};

/// From the coordinator to one task.
pub(super) enum Control {
    Trigger(CheckpointId, oneshot::Sender<()>),
    Complete(CheckpointId, oneshot::Sender<()>),
    Stop,
}

/// From a task to the coordinator.
pub(super) enum Report {
    Acknowledged(TaskSnapshot),
    Ended(usize),
}
