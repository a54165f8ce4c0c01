//! The framework has teeth: every planted bug is caught within 1000 seeds of its scenario
//! (swarm faults, determinism checked), and the seed that caught it passes without the bug.
#![cfg(feature = "planted-bugs")]

use eddy::engine::bugs::Bug;
use eddy::sim::{Profile, RunConfig};

/// The scenario that exercises each bug's code path.
fn scenario_for(bug: Bug) -> &'static str {
    match bug {
        Bug::StateOutsideBackend | Bug::DedupNoTtl => "dedup",
        Bug::TimersNotSnapshotted => "sessions-clicks",
        _ => "pageviews",
    }
}

#[test]
fn every_planted_bug_is_caught_and_its_seed_passes_without_it() {
    for bug in Bug::ALL {
        let scenario = eddy::scenarios::by_name(scenario_for(bug)).unwrap();
        let config = |seed| RunConfig {
            check_determinism: true,
            ..RunConfig::new(seed, Profile::Swarm)
        };
        let caught = (0..1000)
            .map(|seed| {
                scenario
                    .run(&RunConfig {
                        bug: Some(bug),
                        ..config(seed)
                    })
                    .report
            })
            .find(|report| !report.passed)
            .unwrap_or_else(|| panic!("{bug} was not caught in 1000 seeds of {}", scenario.name()));
        let clean = scenario.run(&config(caught.seed)).report;
        assert!(clean.passed, "seed {} fails without {bug} too:\n{clean}", caught.seed);
        eprintln!(
            "{bug}: caught at seed {} ({})",
            caught.seed,
            caught.violation.unwrap().property
        );
    }
}

#[test]
fn bugs_are_named_and_listed() {
    for bug in Bug::ALL {
        assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
        assert!(!bug.description().is_empty());
    }
    assert!("no-such-bug".parse::<Bug>().is_err());
    const { assert!(eddy::engine::bugs::AVAILABLE) };
}
