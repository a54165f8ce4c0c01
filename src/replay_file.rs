//! The files `eddy replay` and `eddy shrink` read: failure files (written by `eddy explore`)
//! and cases (written by `eddy shrink`). Parsing is total: any bytes give a value or a
//! [`FileError`] naming the line or field, never a panic (the `failure_file_decode` fuzz
//! target holds it to that).

use eddy_engine::testkit::bugs::{self, Bug};
use eddy_sim::{Case, FaultKind, FaultSet, Oracle, Profile, RunConfig, Scenario, SinkModel};
use serde::{Deserialize, Serialize};

/// What `explore` writes for each failing run: enough to replay it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureFile {
    pub scenario: String,
    pub seed: u64,
    pub profile: String,
    pub events: Option<usize>,
    #[serde(default)]
    pub bug: Option<String>,
    /// The oracles that judged the run (`both` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<String>,
    /// Fault kinds on besides the profile's (`explore --aim`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<String>,
    /// Where the sinks kept their transactions (`staged` if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<String>,
    /// Messages each channel held before its sender waited (unbounded if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_capacity: Option<usize>,
    pub property: String,
    pub message: String,
}

/// A replay file: a failure, or an explicit case (it has an `input`).
#[derive(Clone, Debug, PartialEq)]
pub enum ReplayFile {
    Failure(FailureFile),
    Case(Case),
}

/// Why a file cannot be replayed; the caller prefixes the file's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("{line}:{column}: not JSON: {reason}")]
    NotJson { line: usize, column: usize, reason: String },
    #[error("{line}:{column}: not an eddy failure file: {reason}")]
    NotAFailureFile { line: usize, column: usize, reason: String },
    #[error("not an eddy case file: {reason}")]
    NotACase { reason: String },
    #[error("field `{field}`: {reason}")]
    Field { field: &'static str, reason: String },
    #[error("this eddy was built without the `planted-bugs` feature")]
    BugsNotCompiledIn,
}

/// Parses a failure file.
pub fn parse_failure_file(text: &str) -> Result<FailureFile, FileError> {
    serde_json::from_str(text).map_err(|e| FileError::NotAFailureFile {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })
}

/// Parses what `eddy replay FILE` accepts: a case if the JSON has an `input`, else a
/// failure file.
pub fn parse_replay_file(text: &str) -> Result<ReplayFile, FileError> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| FileError::NotJson {
        line: e.line(),
        column: e.column(),
        reason: e.to_string(),
    })?;
    if json.get("input").is_some() {
        let case: Case = serde_json::from_value(json).map_err(|e| FileError::NotACase { reason: e.to_string() })?;
        return Ok(ReplayFile::Case(case));
    }
    parse_failure_file(text).map(ReplayFile::Failure)
}

/// The scenario and run configuration a failure file describes; `bug` and `events`, if
/// given, override the file's.
pub fn failure_config(
    failure: &FailureFile,
    bug: Option<Bug>,
    events: Option<usize>,
) -> Result<(&'static dyn Scenario, RunConfig), FileError> {
    let profile: Profile = failure.profile.parse().map_err(|e| FileError::Field {
        field: "profile",
        reason: format!("{e}"),
    })?;
    let scenario = eddy_scenarios::by_name(&failure.scenario).ok_or_else(|| {
        let known: Vec<&str> = eddy_scenarios::all().iter().map(|s| s.name()).collect();
        FileError::Field {
            field: "scenario",
            reason: format!(
                "unknown scenario `{}`; known scenarios: {}",
                failure.scenario,
                known.join(", ")
            ),
        }
    })?;
    let bug = match (bug, &failure.bug) {
        (Some(bug), _) => Some(bug),
        (None, Some(name)) => Some(name.parse::<Bug>().map_err(|e| FileError::Field {
            field: "bug",
            reason: e.to_string(),
        })?),
        (None, None) => None,
    };
    if bug.is_some() && !bugs::AVAILABLE {
        return Err(FileError::BugsNotCompiledIn);
    }
    let oracle = match &failure.oracle {
        Some(name) => name.parse::<Oracle>().map_err(|reason| FileError::Field {
            field: "oracle",
            reason,
        })?,
        None => Oracle::default(),
    };
    let sink = match &failure.sink {
        Some(name) => name
            .parse::<SinkModel>()
            .map_err(|reason| FileError::Field { field: "sink", reason })?,
        None => SinkModel::for_bug(bug),
    };
    let mut with = Vec::new();
    for name in &failure.with {
        with.push(
            name.parse::<FaultKind>()
                .map_err(|reason| FileError::Field { field: "with", reason })?,
        );
    }
    if failure.channel_capacity == Some(0) {
        return Err(FileError::Field {
            field: "channel_capacity",
            reason: "a channel must hold at least 1 message".to_string(),
        });
    }
    let config = RunConfig {
        events: events.or(failure.events),
        bug,
        oracle,
        aim: FaultSet::of(&with),
        sink,
        channel_capacity: failure.channel_capacity,
        ..RunConfig::new(failure.seed, profile)
    };
    Ok((scenario, config))
}

/// The scenario and run configuration of a case (its seed, profile and bug).
pub fn case_config(case: &Case) -> Result<(&'static dyn Scenario, RunConfig), FileError> {
    let failure = FailureFile {
        scenario: case.scenario.clone(),
        seed: case.seed,
        profile: case.profile.clone(),
        events: None,
        bug: case.bug.clone(),
        oracle: case.oracle.clone(),
        with: Vec::new(),
        sink: case.sink.clone(),
        channel_capacity: case.channel_capacity,
        property: String::new(),
        message: String::new(),
    };
    failure_config(&failure, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_and_names_what_is_wrong() {
        let failure = r#"{"scenario":"dedup","seed":4,"profile":"crash","events":30,"property":"p","message":"m"}"#;
        let ReplayFile::Failure(parsed) = parse_replay_file(failure).unwrap() else {
            panic!("a failure file")
        };
        assert_eq!(
            (parsed.scenario.as_str(), parsed.seed, parsed.events),
            ("dedup", 4, Some(30))
        );
        let (scenario, config) = failure_config(&parsed, None, Some(5)).unwrap();
        assert_eq!((scenario.name(), config.events), ("dedup", Some(5)));

        let case =
            r#"{"scenario":"dedup","seed":4,"profile":"none","bug":null,"property":null,"input":[],"faults":[]}"#;
        assert!(matches!(parse_replay_file(case), Ok(ReplayFile::Case(c)) if c.input.is_empty()));

        assert!(matches!(
            parse_replay_file("{\n x"),
            Err(FileError::NotJson { line: 2, .. })
        ));
        let bad_profile = failure.replace("crash", "lots");
        let ReplayFile::Failure(parsed) = parse_replay_file(&bad_profile).unwrap() else {
            panic!("a failure file")
        };
        assert!(matches!(
            failure_config(&parsed, None, None),
            Err(FileError::Field { field: "profile", .. })
        ));
    }
}
