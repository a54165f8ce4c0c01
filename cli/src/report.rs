//! Campaign summaries: what `explore --json` writes, `eddy report merge` adds up over the
//! shards of a campaign, and `--html` draws as a page.

use std::collections::{BTreeMap, BTreeSet};

use eddy::sim::{Coverage, Moment};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
pub struct ScenarioSummary {
    pub name: String,
    pub runs: u64,
    pub failed: u64,
    pub events: u64,
    pub crashes: u64,
    pub restores: u64,
    pub checkpoints_completed: u64,
    pub late: u64,
    pub duplicates: u64,
    /// The fault kinds on in some run.
    #[serde(default)]
    pub faults_seen: BTreeSet<String>,
    /// Per moment, the runs that reached it.
    #[serde(default)]
    pub coverage: Coverage,
    /// With `--aim`: the fault kinds the second half of the seeds added, and the moments it
    /// reached that the same seeds without them did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aimed: Option<Aimed>,
    /// Wall-clock seconds the scenario's runs took (summed over shards).
    #[serde(default)]
    pub seconds: f64,
    /// Seconds its runs spent in each phase (`generate`, `simulate`, `reference`, `judge`,
    /// `determinism`), summed over runs and threads.
    #[serde(default)]
    pub phase_seconds: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
pub struct Aimed {
    pub with: Vec<String>,
    pub reached_only_aimed: Vec<String>,
}

#[derive(Serialize, Deserialize)]
pub struct FailureSummary {
    pub scenario: String,
    pub seed: u64,
    pub property: String,
    pub replay: String,
}

#[derive(Serialize, Deserialize)]
pub struct CampaignSummary {
    pub runs: u64,
    pub failed: u64,
    pub profile: String,
    pub scenarios: Vec<ScenarioSummary>,
    pub failures: Vec<FailureSummary>,
}

/// The shards `(file, summary)` of one campaign as one summary: counts and coverage added
/// per scenario, failures in scenario and seed order. Shards of different fault profiles
/// are not one campaign.
pub fn merge(shards: Vec<(String, CampaignSummary)>) -> Result<CampaignSummary, String> {
    let profile = shards.first().map(|(_, s)| s.profile.clone()).unwrap_or_default();
    let mut scenarios: Vec<ScenarioSummary> = Vec::new();
    let mut failures = Vec::new();
    for (file, shard) in shards {
        if shard.profile != profile {
            return Err(format!(
                "{file}: a campaign of `{}` faults, the others are of `{profile}`",
                shard.profile
            ));
        }
        for s in shard.scenarios {
            let Some(merged) = scenarios.iter_mut().find(|m| m.name == s.name) else {
                scenarios.push(ScenarioSummary { aimed: None, ..s });
                continue;
            };
            merged.runs += s.runs;
            merged.failed += s.failed;
            merged.events += s.events;
            merged.crashes += s.crashes;
            merged.restores += s.restores;
            merged.checkpoints_completed += s.checkpoints_completed;
            merged.late += s.late;
            merged.duplicates += s.duplicates;
            merged.faults_seen.extend(s.faults_seen);
            merged.coverage.merge(&s.coverage);
            merged.seconds += s.seconds;
            for (phase, seconds) in s.phase_seconds {
                *merged.phase_seconds.entry(phase).or_default() += seconds;
            }
        }
        failures.extend(shard.failures);
    }
    failures.sort_by(|a, b| (&a.scenario, a.seed).cmp(&(&b.scenario, b.seed)));
    Ok(CampaignSummary {
        runs: scenarios.iter().map(|s| s.runs).sum(),
        failed: scenarios.iter().map(|s| s.failed).sum(),
        profile,
        scenarios,
        failures,
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The campaign as a self-contained page.
pub fn campaign_html(summary: &CampaignSummary) -> String {
    let mut rows = String::new();
    for s in &summary.scenarios {
        let seeds_per_s = if s.seconds > 0.0 {
            s.runs as f64 / s.seconds
        } else {
            0.0
        };
        let faults: Vec<&str> = s.faults_seen.iter().map(String::as_str).collect();
        rows.push_str(&format!(
            "<tr class=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td class=\"faults\">{}</td></tr>\n",
            if s.failed > 0 { "failed" } else { "passed" },
            escape(&s.name),
            escape(&s.name),
            s.runs,
            s.failed,
            s.events,
            s.crashes,
            s.restores,
            s.checkpoints_completed,
            seeds_per_s,
            escape(&faults.join(", "))
        ));
    }
    let mut failures = String::new();
    for (index, f) in summary.failures.iter().enumerate() {
        failures.push_str(&format!(
            "<li id=\"failure-{index}\"><a href=\"#failure-{index}\">{} seed {}</a>: {} <br><code>{}</code> <button data-copy=\"{}\">copy</button></li>\n",
            escape(&f.scenario),
            f.seed,
            escape(&f.property),
            escape(&f.replay),
            escape(&f.replay)
        ));
    }
    if failures.is_empty() {
        failures.push_str("<li>none</li>");
    }
    let mut coverage = String::from("<tr><th>moment</th>");
    for s in &summary.scenarios {
        coverage.push_str(&format!("<th id=\"{}\">{}</th>", escape(&s.name), escape(&s.name)));
    }
    coverage.push_str("</tr>\n");
    let mut total = Coverage::default();
    for s in &summary.scenarios {
        total.merge(&s.coverage);
    }
    for moment in Moment::ALL {
        coverage.push_str(&format!("<tr><td>{}</td>", moment.name()));
        for s in &summary.scenarios {
            let n = s.coverage.runs_reaching(moment);
            coverage.push_str(&format!("<td class=\"{}\">{n}</td>", if n == 0 { "zero" } else { "" }));
        }
        coverage.push_str("</tr>\n");
    }
    let unreached: Vec<&str> = total.unreached().iter().map(|m| m.name()).collect();
    let seen: BTreeMap<&str, usize> =
        summary
            .scenarios
            .iter()
            .flat_map(|s| s.faults_seen.iter())
            .fold(BTreeMap::new(), |mut seen, kind| {
                *seen.entry(kind.as_str()).or_default() += 1;
                seen
            });
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>eddy campaign: {runs} runs, {failed} failed</title>
<style>
 body {{ font: 13px system-ui, sans-serif; margin: 16px; color: #1d2330; }}
 table {{ border-collapse: collapse; margin: 8px 0 16px 0; }}
 td, th {{ border: 1px solid #c9d0dc; padding: 3px 8px; text-align: right; }}
 td:first-child, th:first-child, td.faults {{ text-align: left; }}
 tr.failed td {{ background: #ffe3e3; }} td.zero {{ background: #fff3bf; }}
 code {{ background: #f4f6fa; padding: 1px 4px; }}
 li {{ margin: 6px 0; }}
</style></head><body>
<h2>eddy campaign: {runs} runs ({profile} faults), {failed} failed</h2>
<table><tr><th>scenario</th><th>runs</th><th>failed</th><th>events</th><th>crashes</th><th>restores</th><th>checkpoints</th><th>seeds/s</th><th>fault kinds seen</th></tr>
{rows}</table>
<h3>Failures, each with the command that replays it</h3>
<ol>
{failures}</ol>
<h3>Moments: runs that reached each</h3>
<table>{coverage}</table>
<p>never reached: {unreached}</p>
<p>fault kinds seen (scenarios): {seen}</p>
<script>
for (const button of document.querySelectorAll("button[data-copy]")) {{
  button.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(button.dataset.copy));
}}
</script>
</body></html>
"#,
        runs = summary.runs,
        failed = summary.failed,
        profile = escape(&summary.profile),
        unreached = if unreached.is_empty() {
            "none".to_string()
        } else {
            unreached.join(", ")
        },
        seen = escape(
            &seen
                .iter()
                .map(|(k, n)| format!("{k} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}
