//! Golden traces: for fixed seeds of every scenario, the report and a readable digest of the
//! trace. Any change of behaviour shows up here in review (`cargo insta review`, or run with
//! `INSTA_UPDATE=always` and read the diff).

use std::collections::BTreeMap;
use std::fmt::Write;

use eddy::sim::{Profile, RunConfig, TraceEvent};

/// Step counts per kind, then every checkpoint, fault and restore, in order.
fn digest(events: &[TraceEvent]) -> String {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    let mut milestones = String::new();
    for event in events {
        let kind = match event {
            TraceEvent::Deliver { element, .. } => *element,
            TraceEvent::Poll { .. } => "poll",
            _ => {
                writeln!(milestones, "{}", serde_json::to_string(event).unwrap()).unwrap();
                continue;
            }
        };
        *counts.entry(kind).or_default() += 1;
    }
    let counts: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    format!("steps by kind: {}\n{milestones}", counts.join(", "))
}

#[test]
fn golden_reports_and_trace_digests() {
    for scenario in eddy::scenarios::all() {
        for (seed, profile) in [(1, Profile::All), (2, Profile::Swarm), (3, Profile::Crash)] {
            let run = scenario.run(&RunConfig {
                keep_trace: true,
                ..RunConfig::new(seed, profile)
            });
            let text = format!("{}\n\n{}", run.report, digest(run.trace.events()));
            insta::assert_snapshot!(format!("{}-{seed}-{profile}", scenario.name()), text);
        }
    }
}
