//! `eddy list`: the scenarios, or with `--bugs` the planted bugs.

use std::process::ExitCode;

use eddy::engine::testkit::bugs::Bug;
use eddy::scenarios;

use crate::common::{require_bugs, UsageError};

pub fn list(list_bugs: bool) -> Result<ExitCode, UsageError> {
    if list_bugs {
        require_bugs()?;
        let width = Bug::ALL.iter().map(|b| b.name().len()).max().unwrap_or(0);
        for bug in Bug::ALL {
            println!("{:width$}  {}", bug.name(), bug.description());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let width = scenarios::all().iter().map(|s| s.name().len()).max().unwrap_or(0);
    for scenario in scenarios::all() {
        println!("{:width$}  {}", scenario.name(), scenario.description());
    }
    Ok(ExitCode::SUCCESS)
}
