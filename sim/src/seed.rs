//! Seeds: one root seed, one `ChaCha8Rng` stream per concern.
//!
//! The rule (fixed; changing it changes every trace): `ChaCha8Rng::seed_from_u64(seed)` with
//! `set_stream(concern as u64)`. ChaCha streams are independent, so drawing more from one
//! concern (say, scheduling under a fault) never shifts what another concern draws.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a random choice is for: each concern draws from a stream of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concern {
    /// The scenario's events.
    Input = 0,
    /// Disorder, late and duplicated events injected into the input.
    InputFaults = 1,
    /// Which ready step runs next; channel delays.
    Schedule = 2,
    /// Crashes, lost notifications, store faults, processing-time jumps.
    Faults = 3,
    /// When checkpoints are triggered.
    Checkpoints = 4,
    /// Which fault kinds a `swarm` run turns on.
    Swarm = 5,
    /// Where source partitions pause (`source-stall`).
    Stalls = 6,
}

/// The stream of `concern` for the run seeded with `seed`.
pub fn rng(seed: u64, concern: Concern) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(concern as u64);
    rng
}
