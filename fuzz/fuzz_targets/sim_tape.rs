//! The fuzzer's bytes replace the simulator's random choices (a decision tape,
//! `eddy_sim::Tape`): which ready step runs, channel delays, when checkpoints are taken,
//! crashes, failed writes, corruption, lost notifications, clock jumps. The first bytes pick
//! the scenario, the fault profile, the seed of the input and its size. Every run must pass
//! every check of its scenario (exactly-once output, lateness, bounded state, no panic).
#![no_main]

use eddy_fuzz::bug_from_env;
use eddy_sim::{Profile, RunConfig, SinkModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [which, profile, seed, events, tape @ ..] = data else {
        return;
    };
    let scenarios = eddy_scenarios::all();
    let scenario = scenarios[usize::from(*which) % scenarios.len()];
    let profile = Profile::ALL[usize::from(*profile) % Profile::ALL.len()];
    let bug = bug_from_env();
    let config = RunConfig {
        events: Some(5 + usize::from(*events % 48)),
        bug,
        sink: SinkModel::for_bug(bug),
        ..RunConfig::new(u64::from(*seed), profile)
    };
    let run = scenario.run_tape(&config, tape);
    assert!(
        run.report.passed,
        "{} ({} faults, seed {seed}) fails on this tape:\n{}",
        scenario.name(),
        profile.name(),
        run.report
    );
});
