//! `eddy materialize`: a changelog into the rows of its table.

use std::path::Path;
use std::process::ExitCode;

use crate::common::{read_lines, write_file, UsageError};

/// `eddy materialize`: a changelog's lines into its table's rows.
pub fn materialize(changelog: &Path, output: Option<&Path>) -> Result<ExitCode, UsageError> {
    let (lines, numbers, source) = read_lines(changelog)?;
    let table = eddy::sim::OutputTable::changelog_lines("changelog", &lines)
        .map_err(|(index, reason)| UsageError(format!("{source}:{}: {reason}", numbers[index])))?;
    if let Some(problem) = &table.problem {
        eprintln!("{source}: {problem}");
        return Ok(ExitCode::from(1));
    }
    let rows = table.lines();
    let text = rows.join("\n") + if rows.is_empty() { "" } else { "\n" };
    match output {
        Some(path) => write_file(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
