//! What the subcommands share: [`UsageError`] (exit code 2) and the look-ups of files,
//! scenarios and planted bugs that end in one.

use std::fs;
use std::path::Path;

use eddy::engine::testkit::bugs;
use eddy::replay_file::{parse_failure_file, FailureFile, FileError};
use eddy::scenarios;
use eddy::sim::Scenario;

/// Bad usage or input: the message names the problem; exit code 2.
pub struct UsageError(pub String);

pub fn require_bugs() -> Result<(), UsageError> {
    if bugs::AVAILABLE {
        Ok(())
    } else {
        Err(UsageError(
            "this eddy was built without the `planted-bugs` feature".into(),
        ))
    }
}

pub fn find_scenario(name: &str) -> Result<&'static dyn Scenario, UsageError> {
    scenarios::by_name(name).ok_or_else(|| {
        let known: Vec<&str> = scenarios::all().iter().map(|s| s.name()).collect();
        UsageError(format!(
            "unknown scenario `{name}`; known scenarios: {}",
            known.join(", ")
        ))
    })
}

pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), UsageError> {
    fs::write(path, bytes).map_err(|e| UsageError(format!("cannot write {}: {e}", path.display())))
}

pub fn read_text(path: &Path) -> Result<String, UsageError> {
    fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))
}

/// `FileError`s name the line or field; this adds the file.
pub fn in_file(path: &Path) -> impl Fn(FileError) -> UsageError + '_ {
    move |e| match e {
        FileError::BugsNotCompiledIn => UsageError(e.to_string()),
        FileError::NotJson { .. } | FileError::NotAFailureFile { .. } => UsageError(format!("{}:{e}", path.display())),
        _ => UsageError(format!("{}: {e}", path.display())),
    }
}

pub fn read_failure_file(path: &Path) -> Result<FailureFile, UsageError> {
    parse_failure_file(&read_text(path)?).map_err(in_file(path))
}

/// The non-blank lines of a JSON-lines file (`-`: stdin), with their line numbers and the
/// name to cite in errors.
pub fn read_lines(path: &Path) -> Result<(Vec<String>, Vec<usize>, String), UsageError> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| UsageError(format!("cannot read stdin: {e}")))?
    } else {
        fs::read_to_string(path).map_err(|e| UsageError(format!("cannot read {}: {e}", path.display())))?
    };
    let (numbers, lines): (Vec<usize>, Vec<String>) = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| (n + 1, l.to_string()))
        .unzip();
    Ok((lines, numbers, path.display().to_string()))
}

/// An input error at the file's line (`numbers[i]` is input line `i`'s line number).
pub fn input_error(error: eddy::sim::CaseError, numbers: &[usize], source: &str) -> UsageError {
    match error {
        eddy::sim::CaseError::Input { index, reason } => {
            let line = numbers.get(index).copied().unwrap_or(index + 1);
            UsageError(format!("{source}:{line}: {reason}"))
        }
        other => UsageError(format!("{source}: {other}")),
    }
}
