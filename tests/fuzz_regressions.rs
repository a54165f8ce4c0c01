//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found failing, replayed on stable:
//! each test holds the input as bytes and asserts what its target asserts.

use eddy::replay_file::{case_config, parse_replay_file, ReplayFile};
use eddy::sim::CaseError;

/// Runs a replay file the way `eddy replay` and `failure_file_decode` do.
fn run_case_file(bytes: &[u8]) -> Result<eddy::sim::Run, CaseError> {
    let text = std::str::from_utf8(bytes).expect("the input is UTF-8");
    let Ok(ReplayFile::Case(case)) = parse_replay_file(text) else {
        panic!("the input parses as a case")
    };
    let (scenario, config) = case_config(&case).expect("the case names a scenario and profile");
    scenario.run_case(&config, &case)
}

/// failure_file_decode: a case with a processing-time jump of `i64::MAX` overflowed the
/// simulator's clock (a panic on user input). A jump must now be 1 ms to a day.
#[test]
fn a_case_with_an_overflowing_clock_jump_is_an_error_not_a_panic() {
    let crash: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":9223372036854775807}]}"#;
    match run_case_file(crash) {
        Err(CaseError::Fault { index: 0, reason }) => assert!(reason.contains("9223372036854775807"), "{reason}"),
        Err(other) => panic!("the wrong error: {other}"),
        Ok(run) => panic!("the case ran: {}", run.report),
    }
    let backwards: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":-5}]}"#;
    assert!(matches!(
        run_case_file(backwards),
        Err(CaseError::Fault { index: 0, .. })
    ));
    // A jump a random run could have made still replays, and the run passes.
    let fine: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":4000}]}"#;
    let run = run_case_file(fine).expect("a valid jump runs");
    assert!(run.report.passed, "{}", run.report);
}
