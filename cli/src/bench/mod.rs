//! `eddy bench`: what eddy costs, side by side with the practical limit and a peer engine.
//!
//! For each workload, on one pre-generated input (generation is not timed), single-threaded:
//! the engine in batch mode at parallelism 1; the same pipeline under the simulator with a
//! checkpoint every 10,000 records, bounded channels and no faults; a hand-written loop
//! computing the same results ([`direct`]); and timely dataflow with one worker ([`peer`],
//! behind the `bench` feature). Every variant's result checksum must agree. A workload may
//! add *shortcut* variants that compute with other semantics (dedup decided at once, right
//! only for in-order input): reported, but left out of the ratios and the checksum
//! agreement.
//!
//! Besides speed: the state a checkpoint holds (bytes per keyed state entry, from an
//! untimed run that checkpoints as the simulator variant does), and with `--restore-keys`
//! the time to restore a checkpoint of that many keys. docs/performance.md has a table.

mod checksum;
mod direct;
mod measure;
#[cfg(feature = "bench")]
mod peer;
mod report;
mod restore;
mod settings;
mod state;
mod timing;
mod workloads;

use std::path::PathBuf;

use clap::Args;

use measure::measure;
use report::{plot, print_ratios, print_workload};
use workloads::{Dedup, Enrich, HighestBids, HotItems, PageViews, SessionsClicks, WORKLOADS};

#[derive(Args)]
pub struct BenchArgs {
    /// Workload to measure (repeatable): pageviews, nexmark-q5, nexmark-q7, dedup,
    /// sessions-clicks, enrich; all if none.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// Input events per workload.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    events: usize,
    /// Write the measurements as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Draw events/s per workload and variant as an SVG bar chart.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
    /// Instead of the workloads: checkpoint a count per key for N keys (one open window) and
    /// time restoring it into a fresh job (`--json` then writes this measurement).
    #[arg(long, value_name = "N", conflicts_with_all = ["scenarios", "plot"])]
    restore_keys: Option<usize>,
}

pub fn run(args: &BenchArgs) -> Result<(), String> {
    if let Some(keys) = args.restore_keys {
        if keys == 0 {
            return Err("--restore-keys must be at least 1".into());
        }
        let result = restore::measure(keys);
        restore::print(&result);
        if let Some(path) = &args.json {
            let json = serde_json::to_string_pretty(&result).expect("results serialise");
            std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        return Ok(());
    }
    let names: Vec<&str> = if args.scenarios.is_empty() {
        WORKLOADS.to_vec()
    } else {
        args.scenarios.iter().map(String::as_str).collect()
    };
    for name in &names {
        if !WORKLOADS.contains(name) {
            return Err(format!(
                "--scenario {name}: not a benchmarked workload (one of: {})",
                WORKLOADS.join(", ")
            ));
        }
    }
    if args.events == 0 {
        return Err("--events must be at least 1".into());
    }
    let mut results = Vec::new();
    for name in names {
        eprintln!("{name}: generating {} events ...", args.events);
        let result = match name {
            "pageviews" => measure(&PageViews, args.events),
            "nexmark-q5" => measure(&HotItems, args.events),
            "nexmark-q7" => measure(&HighestBids, args.events),
            "dedup" => measure(&Dedup, args.events),
            "sessions-clicks" => measure(&SessionsClicks, args.events),
            "enrich" => measure(&Enrich, args.events),
            _ => unreachable!("checked above"),
        };
        print_workload(&result);
        results.push(result);
    }
    print_ratios(&results);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&results).expect("results serialise");
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot(&results)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
