//! Checking a scenario from a user's own `cargo test`.
//!
//! ```
//! # use eddy_sim::{check, CheckConfig, Profile, Scenario, Run, RunConfig};
//! # struct MyScenario;
//! # impl Scenario for MyScenario {
//! #     fn name(&self) -> &'static str { "mine" }
//! #     fn description(&self) -> &'static str { "" }
//! #     fn run(&self, _: &RunConfig) -> Run { unimplemented!() }
//! #     fn record_case(&self, _: &RunConfig) -> (Run, eddy_sim::Case) { unimplemented!() }
//! #     fn run_case(&self, _: &RunConfig, _: &eddy_sim::Case) -> Result<Run, eddy_sim::CaseError> { unimplemented!() }
//! #     fn run_tape(&self, _: &RunConfig, _: &[u8]) -> Run { unimplemented!() }
//! #     fn generate_lines(&self, _: u64, _: Option<usize>) -> Vec<String> { unimplemented!() }
//! #     fn run_lines(&self, _: &[String]) -> Result<Vec<String>, eddy_sim::CaseError> { unimplemented!() }
//! # }
//! // In your tests, under #[test]:
//! fn my_pipeline_is_exactly_once() {
//!     check(&MyScenario, CheckConfig { seeds: 64, profile: Profile::All, ..CheckConfig::default() });
//! }
//! ```
//!
//! `EDDY_SEED=S` runs only seed `S` (to replay a failure); `EDDY_SEEDS=N` runs `N` seeds.

use crate::faults::Profile;
use crate::scenario::{RunConfig, Scenario};

#[derive(Clone, Debug)]
pub struct CheckConfig {
    pub seeds: u64,
    pub start_seed: u64,
    pub profile: Profile,
    pub events: Option<usize>,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            seeds: 32,
            start_seed: 0,
            profile: Profile::Swarm,
            events: None,
        }
    }
}

/// Runs the seeds; panics with the first failing report and the exact replay commands.
pub fn check(scenario: &dyn Scenario, config: CheckConfig) {
    let env = |name: &str| -> Option<u64> {
        let value = std::env::var(name).ok()?;
        Some(
            value
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        )
    };
    let seeds: Vec<u64> = match env("EDDY_SEED") {
        Some(seed) => vec![seed],
        None => {
            let count = env("EDDY_SEEDS").unwrap_or(config.seeds);
            (config.start_seed..config.start_seed + count).collect()
        }
    };
    for seed in seeds {
        let run_config = RunConfig {
            events: config.events,
            ..RunConfig::new(seed, config.profile)
        };
        let report = scenario.run(&run_config).report;
        if !report.passed {
            panic!(
                "{report}\nreplay: EDDY_SEED={seed} cargo test\n    or: eddy replay --scenario {} --seed {seed} --faults {}",
                scenario.name(),
                config.profile
            );
        }
    }
}
