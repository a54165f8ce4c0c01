//! eddy-scenarios: named scenarios — a pipeline, a seeded input generator, and a check
//! against a reference batch computation written independently of the engine (sort by event
//! time, fold with `BTreeMap`s; no engine code beyond the event and output structs).
#![forbid(unsafe_code)]

pub mod check;
pub mod dedup;
pub mod enrich;
pub mod live;
pub mod pageviews;
pub mod sessions;

pub use eddy_sim as sim;

use eddy_sim::Scenario;

/// Every scenario, in the order `eddy list` shows them.
pub fn all() -> Vec<&'static dyn Scenario> {
    vec![
        &pageviews::PageViews,
        &dedup::Dedup,
        &sessions::SessionsClicks,
        &enrich::Enrich,
    ]
}

/// The scenario called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Scenario> {
    all().into_iter().find(|s| s.name() == name)
}
