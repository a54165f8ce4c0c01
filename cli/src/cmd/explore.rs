//! `eddy explore`: a seeded campaign over scenarios, its failure files, summary and coverage.

use std::fs;
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use eddy::engine::Feature;
use eddy::replay_file::FailureFile;
use eddy::scenarios;
use eddy::sim::{
    Coverage, FaultKind, FaultSet, Moment, Oracle, Profile, Report, RunConfig, Scenario, SinkModel, Timings,
};

use crate::args::ExploreArgs;
use crate::common::{find_scenario, require_bugs, write_file, UsageError};
use crate::report::{self, Aimed, CampaignSummary, FailureSummary, ScenarioSummary};

fn replay_command(report: &Report, events: Option<usize>, oracle: Oracle, aim: &FaultSet) -> String {
    let mut command = format!(
        "eddy replay --scenario {} --seed {} --faults {}",
        report.scenario, report.seed, report.profile
    );
    if let Some(events) = events {
        command.push_str(&format!(" --events {events}"));
    }
    if let Some(bug) = &report.bug {
        command.push_str(&format!(" --bug {bug}"));
    }
    if oracle != Oracle::default() {
        command.push_str(&format!(" --oracle {oracle}"));
    }
    if !aim.is_empty() {
        command.push_str(&format!(" --with {}", aim.names().join(",")));
    }
    if let Some(sink) = &report.sink {
        command.push_str(&format!(" --sink {sink}"));
    }
    if let Some(capacity) = report.channel_capacity {
        command.push_str(&format!(" --channel-capacity {capacity}"));
    }
    command
}

pub fn explore(args: &ExploreArgs) -> Result<ExitCode, UsageError> {
    if args.bug.is_some() {
        require_bugs()?;
    }
    let chosen: Vec<&'static dyn Scenario> = if args.scenarios.is_empty() {
        scenarios::all()
    } else {
        args.scenarios
            .iter()
            .map(|name| find_scenario(name))
            .collect::<Result<_, _>>()?
    };
    let (shard, shards) = args.shard.unwrap_or((0, 1));
    let seeds: Vec<u64> = (0..args.seeds)
        .filter(|index| index % shards == shard)
        .map(|index| args.start_seed + index)
        .collect();
    let progress = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new((seeds.len() * chosen.len()) as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs, {per_sec}, eta {eta} {msg}")
                .expect("a valid progress template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| UsageError(format!("--jobs {jobs}: cannot start the threads: {e}")))?;
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    let mut aimed_baseline: Option<Coverage> = None;
    for scenario in &chosen {
        let mut summary = ScenarioSummary {
            name: scenario.name().to_string(),
            ..ScenarioSummary::default()
        };
        let started = Instant::now();
        progress.set_message(scenario.name().to_string());
        let run_all = |seeds: &[u64], aim: &FaultSet| -> Vec<Report> {
            let run = |&seed: &u64| {
                let config = RunConfig {
                    events: args.events,
                    check_determinism: true,
                    bug: args.bug,
                    oracle: args.oracle,
                    aim: aim.clone(),
                    sink: args.sink.unwrap_or(SinkModel::for_seed(args.bug, seed)),
                    channel_capacity: args.channel_capacity.map(|n| n as usize),
                    ..RunConfig::new(seed, args.faults)
                };
                let report = scenario.run(&config).report;
                progress.inc(1);
                report
            };
            // Runs go in chunks, each reported in seed order, so that the output and
            // `--fail-fast`'s first failure do not depend on `--jobs`.
            seeds
                .chunks(8 * jobs)
                .flat_map(|chunk| {
                    use rayon::prelude::*;
                    pool.install(|| chunk.par_iter().map(run).collect::<Vec<_>>())
                })
                .collect()
        };
        // With --aim, the second half of the seeds runs with the fault kinds of the moments
        // the first half did not reach.
        let halves: Vec<&[u64]> = if args.aim {
            let (first, second) = seeds.split_at(seeds.len() / 2);
            vec![first, second]
        } else {
            vec![&seeds[..]]
        };
        let mut aim = FaultSet::default();
        for (half, half_seeds) in halves.iter().enumerate() {
            if half == 1 {
                let kinds: Vec<FaultKind> = summary
                    .coverage
                    .unreached()
                    .into_iter()
                    .flat_map(|m| m.aimed_by().iter().copied())
                    .collect();
                aim = FaultSet::of(&kinds);
                // The same seeds unaimed, to say what aiming bought.
                let mut unaimed = Coverage::default();
                for report in run_all(half_seeds, &FaultSet::default()) {
                    unaimed.record(&report.moments);
                    if report.violation.is_some() {
                        failures.push(record_failure(args, &report, &FaultSet::default(), &progress)?);
                        summary.failed += 1;
                    }
                }
                let mut baseline = summary.coverage.clone();
                baseline.merge(&unaimed);
                summary.aimed = Some(Aimed {
                    with: aim.names().into_iter().map(String::from).collect(),
                    reached_only_aimed: Vec::new(),
                });
                aimed_baseline = Some(baseline);
            }
            for report in run_all(half_seeds, &aim) {
                summary.runs += 1;
                summary.events += report.events_in;
                summary.crashes += report.crashes;
                summary.restores += report.restores;
                summary.checkpoints_completed += report.checkpoints_completed;
                summary.late += report.late;
                summary.duplicates += report.duplicates;
                summary.coverage.record(&report.moments);
                summary.faults_seen.extend(report.faults.iter().cloned());
                for (phase, time) in report.timings.phases() {
                    *summary.phase_seconds.entry(phase.to_string()).or_default() += time.as_secs_f64();
                }
                if report.violation.is_some() {
                    summary.failed += 1;
                    failures.push(record_failure(args, &report, &aim, &progress)?);
                }
                if args.fail_fast && summary.failed > 0 {
                    break;
                }
            }
            if args.fail_fast && summary.failed > 0 {
                break;
            }
        }
        if let (Some(aimed), Some(baseline)) = (&mut summary.aimed, aimed_baseline.take()) {
            aimed.reached_only_aimed = Moment::ALL
                .into_iter()
                .filter(|m| summary.coverage.runs_reaching(*m) > 0 && baseline.runs_reaching(*m) == 0)
                .map(|m| m.name().to_string())
                .collect();
        }
        summary.seconds = started.elapsed().as_secs_f64();
        if let Some(bug) = args.bug {
            let first = failures.iter().find(|f| f.scenario == summary.name).map(|f| f.seed);
            progress.suspend(|| match first {
                Some(seed) => println!(
                    "bug {bug} caught in {}: first failure at seed {seed}, after {} seeds",
                    summary.name,
                    seed - args.start_seed + 1
                ),
                None => println!("bug {bug} not caught in {} after {} seeds", summary.name, summary.runs),
            });
        }
        let stop = args.fail_fast && summary.failed > 0;
        summaries.push(summary);
        if stop {
            break;
        }
    }
    progress.finish_and_clear();
    print_summary(&summaries, args.faults);
    if args.coverage || args.aim {
        print_coverage(&summaries);
        print_features(&chosen, &summaries);
    }
    let summary = CampaignSummary {
        runs: summaries.iter().map(|s| s.runs).sum(),
        failed: summaries.iter().map(|s| s.failed).sum(),
        profile: args.faults.to_string(),
        scenarios: summaries,
        failures,
    };
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&summary).expect("the summary serialises");
        write_file(path, json.as_bytes())?;
    }
    if let Some(path) = &args.html {
        write_file(path, report::campaign_html(&summary).as_bytes())?;
    }
    Ok(if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Prints a failing run and its replay line, writes its failure file, and returns its summary.
fn record_failure(
    args: &ExploreArgs,
    report: &Report,
    aim: &FaultSet,
    progress: &indicatif::ProgressBar,
) -> Result<FailureSummary, UsageError> {
    let violation = report.violation.as_ref().expect("a failing report has a violation");
    let replay = replay_command(report, args.events, args.oracle, aim);
    progress.suspend(|| {
        println!(
            "FAIL {} seed {} {}: {}",
            report.scenario, report.seed, violation.property, violation.message
        );
        println!("  replay: {replay}");
    });
    write_failure_file(&args.out, report, args.events, args.oracle, aim)?;
    Ok(FailureSummary {
        scenario: report.scenario.clone(),
        seed: report.seed,
        property: violation.property.clone(),
        replay,
    })
}

/// Per scenario, the runs that reached each moment; then the moments no run reached.
fn print_coverage(summaries: &[ScenarioSummary]) {
    print_table_head("moment (runs that reached it)", summaries);
    let mut total = Coverage::default();
    for s in summaries {
        total.merge(&s.coverage);
    }
    for moment in Moment::ALL {
        print!("{:<33}", moment.name());
        for s in summaries {
            print!(" {:>8}", s.coverage.runs_reaching(moment));
        }
        println!();
    }
    let unreached = total.unreached();
    if unreached.is_empty() {
        println!("every moment was reached by some run");
    } else {
        let names: Vec<&str> = unreached.iter().map(|m| m.name()).collect();
        println!("never reached: {}", names.join(", "));
    }
    for s in summaries {
        if let Some(aimed) = &s.aimed {
            println!(
                "aim {}: with {} reached {} that the same seeds unaimed did not",
                s.name,
                if aimed.with.is_empty() {
                    "nothing".to_string()
                } else {
                    aimed.with.join(",")
                },
                if aimed.reached_only_aimed.is_empty() {
                    "nothing".to_string()
                } else {
                    aimed.reached_only_aimed.join(", ")
                }
            );
        }
    }
}

/// Per engine feature, the runs of each scenario whose pipeline uses it (every run of a
/// scenario runs its one pipeline, under the campaign's faults); then the features none used.
fn print_features(chosen: &[&'static dyn Scenario], summaries: &[ScenarioSummary]) {
    let used: Vec<(u64, std::collections::BTreeSet<Feature>)> = summaries
        .iter()
        .map(|s| {
            let scenario = chosen
                .iter()
                .find(|c| c.name() == s.name)
                .expect("a summary of a chosen scenario");
            (s.runs, scenario.features())
        })
        .collect();
    print_table_head("engine feature (runs that used it)", summaries);
    let mut unused = Vec::new();
    for feature in Feature::ALL {
        print!("{:<33}", feature.name());
        for (runs, features) in &used {
            print!(" {:>8}", if features.contains(&feature) { *runs } else { 0 });
        }
        println!();
        if used
            .iter()
            .all(|(runs, features)| *runs == 0 || !features.contains(&feature))
        {
            unused.push(feature.name());
        }
    }
    if unused.is_empty() {
        println!("every engine feature was used by some run");
    } else {
        println!("never used: {}", unused.join(", "));
    }
}

/// A coverage table's first line: what its rows count, then a column per scenario.
fn print_table_head(title: &str, summaries: &[ScenarioSummary]) {
    println!();
    print!("{title:<33}");
    for s in summaries {
        print!(" {:>8}", abbreviate(&s.name));
    }
    println!();
}

/// A scenario's name cut to a table column.
fn abbreviate(name: &str) -> String {
    let short = name.strip_prefix("nexmark-").unwrap_or(name);
    short.chars().take(8).collect()
}

fn print_summary(summaries: &[ScenarioSummary], profile: Profile) {
    println!(
        "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>11} {:>8} {:>10}",
        "scenario", "runs", "failed", "events", "crashes", "restores", "checkpoints", "seeds/s", "events/s"
    );
    for s in summaries {
        let seconds = s.seconds.max(1e-9);
        println!(
            "{:<16} {:>6} {:>6} {:>9} {:>7} {:>8} {:>11} {:>8.0} {:>10.0}",
            s.name,
            s.runs,
            s.failed,
            s.events,
            s.crashes,
            s.restores,
            s.checkpoints_completed,
            s.runs as f64 / seconds,
            s.events as f64 / seconds
        );
    }
    let runs: u64 = summaries.iter().map(|s| s.runs).sum();
    let failed: u64 = summaries.iter().map(|s| s.failed).sum();
    let late: u64 = summaries.iter().map(|s| s.late).sum();
    println!("{runs} runs ({profile} faults), {failed} failed, {late} late records on late outputs");
    print_phases(summaries);
}

/// Where a run's time goes, per scenario: milliseconds per run in each phase (summed over
/// the threads), and the phase that takes most.
fn print_phases(summaries: &[ScenarioSummary]) {
    let phases = Timings::default().phases().map(|(name, _)| name);
    println!();
    print!("{:<16}", "ms per run");
    for phase in phases {
        print!(" {phase:>11}");
    }
    println!("  most");
    for s in summaries.iter().filter(|s| s.runs > 0) {
        print!("{:<16}", s.name);
        let per_run = |phase: &str| s.phase_seconds.get(phase).copied().unwrap_or(0.0) * 1e3 / s.runs as f64;
        for phase in phases {
            print!(" {:>11.2}", per_run(phase));
        }
        let total: f64 = phases.iter().map(|p| per_run(p)).sum();
        let most = phases
            .iter()
            .copied()
            .max_by(|a, b| per_run(a).total_cmp(&per_run(b)))
            .unwrap_or("simulate");
        println!("  {most} {:.0}%", 100.0 * per_run(most) / total.max(1e-9));
    }
}

fn write_failure_file(
    dir: &Path,
    report: &Report,
    events: Option<usize>,
    oracle: Oracle,
    aim: &FaultSet,
) -> Result<(), UsageError> {
    fs::create_dir_all(dir).map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
    let violation = report.violation.as_ref().expect("a failing report has a violation");
    let failure = FailureFile {
        scenario: report.scenario.clone(),
        seed: report.seed,
        profile: report.profile.clone(),
        events,
        bug: report.bug.clone(),
        oracle: (oracle != Oracle::default()).then(|| oracle.to_string()),
        with: aim.names().into_iter().map(String::from).collect(),
        sink: report.sink.clone(),
        channel_capacity: report.channel_capacity,
        property: violation.property.clone(),
        message: violation.message.clone(),
    };
    let path = dir.join(format!("{}-{}.json", report.scenario, report.seed));
    let json = serde_json::to_string_pretty(&failure).expect("a failure file serialises");
    write_file(&path, json.as_bytes())
}
