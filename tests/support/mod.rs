//! What the tests of a user's check share.

use eddy::sim::{ChaCha8Rng, CheckConfig, Differential, Regressions};
use eddy::Record;
use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Click {
    pub user: u32,
    pub page: u32,
}

/// Clicks 0 to 100 ms apart, by 8 users over 4 pages.
pub fn clicks(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Click>> {
    let mut ts = 0;
    (0..events)
        .map(|_| {
            ts += rng.gen_range(0..100);
            Record::new(
                ts,
                Click {
                    user: rng.gen_range(0..8),
                    page: rng.gen_range(0..4),
                },
            )
        })
        .collect()
}

/// Runs `differential` with regressions saved in a scratch folder; returns the failure
/// message, or `None` if every seed passed.
pub fn failure_of<E: eddy::Data>(differential: Differential<E>) -> Option<(String, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!(
        "eddy-regressions-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let differential = differential.config(CheckConfig {
        seeds: 200,
        check_determinism: true,
        regressions: Regressions::In(dir.clone()),
        ..CheckConfig::default()
    });
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| differential.check())).err()?;
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| "a panic without a message".into());
    Some((message, dir))
}

/// The mistake is caught within 200 seeds and shrinks to at most 10 events and 2 faults;
/// the saved case is replayed (and fails) first on the next run; the right version passes.
pub fn caught_and_shrunk<E: eddy::Data>(wrong: Differential<E>, right: Differential<E>, property: &str) {
    let (message, dir) = failure_of(wrong).expect("the mistake is caught within 200 seeds");
    eprintln!("{message}\n");
    assert!(message.contains(&format!("verdict: FAIL {property}")), "{message}");
    // The shrunk case's own verdict, which names its own records.
    assert!(
        message.contains(&format!("the shrunk case: FAIL {property}")),
        "{message}"
    );
    let shrunk = message
        .lines()
        .find_map(|l| l.strip_prefix("shrunk to "))
        .unwrap_or_else(|| panic!("no shrunk case in:\n{message}"));
    let events: usize = shrunk.split_whitespace().next().and_then(|w| w.parse().ok()).unwrap();
    // A `rescale` fault only says at which parallelism a crash's restore runs: it is not
    // counted as a fault of its own.
    let case = message
        .lines()
        .find(|l| l.starts_with("{\"scenario\""))
        .expect("the case is printed");
    let case: serde_json::Value = serde_json::from_str(case).unwrap();
    let faults = case["faults"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["fault"] != "rescale")
        .count();
    assert!(events <= 10 && faults <= 2, "shrunk to {shrunk}\n{message}");
    assert!(message.contains("replay: EDDY_SEED="), "{message}");
    assert!(
        !message.contains("eddy replay --scenario"),
        "a user's test prints only replay lines that work:\n{message}"
    );
    let saved = std::fs::read_dir(&dir).expect("the case was saved").count();
    assert_eq!(saved, 1, "one file of saved cases in {}", dir.display());
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        failure_of(right).map(|(m, _)| m),
        None,
        "the right version passes 200 seeds"
    );
}
