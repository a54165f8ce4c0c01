//! Arbitrary bytes as the file `eddy replay` / `eddy shrink` reads: a failure file or a
//! case. Parsing and resolving (scenario, profile, bug) give a value or an error naming the
//! line or field, never a panic; a small case that resolves also runs, and running it must
//! not panic either (a panic is a bug in eddy, whatever the input).
#![no_main]

use eddy::replay_file::{case_config, failure_config, parse_replay_file, ReplayFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_replay_file(&text) {
        Ok(ReplayFile::Failure(failure)) => {
            let _ = failure_config(&failure, None, None);
        }
        Ok(ReplayFile::Case(case)) => {
            let Ok((scenario, config)) = case_config(&case) else {
                return;
            };
            // A case re-serialises and parses back to itself.
            let json = serde_json::to_string(&case).expect("a case serialises");
            assert_eq!(parse_replay_file(&json), Ok(ReplayFile::Case(case.clone())));
            if case.input.len() <= 64 && case.faults.len() <= 16 && case.checkpoints.len() <= 32 {
                let _ = scenario.run_case(&config, &case);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
