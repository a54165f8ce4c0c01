//! `eddy report merge`: the summaries of a campaign's shards as one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::common::{read_text, write_file, UsageError};
use crate::report::{self, CampaignSummary};

/// `eddy report merge`: the shards' summaries as one.
pub fn merge(files: &[PathBuf], output: &Path, html: Option<&Path>) -> Result<ExitCode, UsageError> {
    let mut shards = Vec::with_capacity(files.len());
    for file in files {
        let summary: CampaignSummary = serde_json::from_str(&read_text(file)?).map_err(|e| {
            UsageError(format!(
                "{}: not a campaign summary (explore --json): {e}",
                file.display()
            ))
        })?;
        shards.push((file.display().to_string(), summary));
    }
    let merged = report::merge(shards).map_err(UsageError)?;
    let json = serde_json::to_string_pretty(&merged).expect("the summary serialises");
    write_file(output, json.as_bytes())?;
    if let Some(path) = html {
        write_file(path, report::campaign_html(&merged).as_bytes())?;
    }
    println!(
        "merged {} summaries: {} runs, {} failed -> {}",
        files.len(),
        merged.runs,
        merged.failed,
        output.display()
    );
    Ok(ExitCode::SUCCESS)
}
