//! eddy-scenarios: named scenarios — a pipeline, a seeded input generator, and a check
//! against a reference batch computation written independently of the engine (sort by event
//! time, fold with `BTreeMap`s; no engine code beyond the event and output structs).
#![forbid(unsafe_code)]

pub mod cdc_orders;
pub mod check;
pub mod dedup;
pub mod enrich;
pub mod nexmark;
pub mod pageviews;
pub mod ratings;
pub mod sessions;
pub mod top_pages;
pub mod triggers;
pub mod windows;

pub use eddy_sim as sim;

use eddy_sim::Scenario;

/// Every scenario, in the order `eddy list` shows them.
pub fn all() -> Vec<&'static dyn Scenario> {
    vec![
        &pageviews::PageViews,
        &dedup::Dedup,
        &sessions::SessionsClicks,
        &enrich::Enrich,
        &windows::OddWindows,
        &top_pages::TopPages,
        &*triggers::TRIGGERS,
        &*ratings::RATINGS,
        &cdc_orders::CdcOrders,
        &nexmark::q0::NEXMARK_Q0,
        &nexmark::q1::NEXMARK_Q1,
        &nexmark::q2::NEXMARK_Q2,
        &nexmark::q3::NEXMARK_Q3,
        &nexmark::q4::NEXMARK_Q4,
        &nexmark::q5::NEXMARK_Q5,
        &nexmark::q7::NEXMARK_Q7,
        &nexmark::q8::NEXMARK_Q8,
        &nexmark::q9::NEXMARK_Q9,
        &nexmark::q11::NEXMARK_Q11,
        &nexmark::q18::NEXMARK_Q18,
    ]
}

/// The scenario called `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Scenario> {
    all().into_iter().find(|s| s.name() == name)
}
