//! `eddy replay`: one seed or shrunk case again, with its report, trace and timeline.

use std::io::Write;
use std::process::ExitCode;

use eddy::replay_file::{case_config, failure_config, parse_replay_file, ReplayFile};
use eddy::sim::{FaultSet, RunConfig, SinkModel};

use crate::args::ReplayArgs;
use crate::common::{find_scenario, in_file, read_failure_file, read_text, require_bugs, write_file, UsageError};

/// With `--timeline`, draws the run as a page; with `--trace`, writes its steps as JSON
/// lines. Both are written whatever the verdict: a failing run is the one to look at.
fn write_run_files(args: &ReplayArgs, run: &eddy::sim::Run) -> Result<(), UsageError> {
    if let Some(path) = &args.timeline {
        let timeline = run
            .timeline
            .as_ref()
            .expect("a run that keeps its trace has a timeline");
        write_file(path, eddy::timeline::timeline_html(&run.report, timeline).as_bytes())?;
        println!("timeline: {}", path.display());
    }
    if let Some(path) = &args.trace {
        let mut lines = Vec::new();
        for event in run.trace.events() {
            serde_json::to_writer(&mut lines, event).expect("trace events serialise");
            lines.push(b'\n');
        }
        write_file(path, &lines)?;
        println!("trace: {}", path.display());
    }
    Ok(())
}

pub fn replay(args: &ReplayArgs) -> Result<ExitCode, UsageError> {
    if let Some(path) = &args.file {
        if let ReplayFile::Case(case) = parse_replay_file(&read_text(path)?).map_err(in_file(path))? {
            let (scenario, config) = case_config(&case).map_err(in_file(path))?;
            // A case is small: always check that it replays the same way.
            let config = RunConfig {
                check_determinism: true,
                oracle: args.oracle.unwrap_or(config.oracle),
                sink: args.sink.unwrap_or(config.sink),
                channel_capacity: args.channel_capacity.map(|n| n as usize).or(config.channel_capacity),
                keep_trace: args.trace.is_some() || args.timeline.is_some(),
                ..config
            };
            // A determinism failure shows only in some runs: give it several tries.
            let tries = if case.property.as_deref() == Some("determinism") {
                eddy::sim::DETERMINISM_TRIES
            } else {
                1
            };
            let mut run = None;
            for _ in 0..tries {
                let this = scenario
                    .run_case(&config, &case)
                    .map_err(|e| UsageError(format!("{}: {e}", path.display())))?;
                let failed = !this.report.passed;
                run = Some(this);
                if failed {
                    break;
                }
            }
            let run = run.expect("at least one try");
            println!("{}", run.report);
            write_run_files(args, &run)?;
            return Ok(if run.report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    let (scenario, config) = match (&args.file, &args.scenario, args.seed) {
        (Some(path), _, _) => {
            let failure = read_failure_file(path)?;
            failure_config(&failure, args.bug, args.events).map_err(in_file(path))?
        }
        (None, Some(name), Some(seed)) => {
            let config = RunConfig {
                events: args.events,
                bug: args.bug,
                sink: SinkModel::for_bug(args.bug),
                ..RunConfig::new(seed, args.faults)
            };
            (find_scenario(name)?, config)
        }
        _ => return Err(UsageError("replay needs FILE.json, or --scenario NAME --seed S".into())),
    };
    if config.bug.is_some() {
        require_bugs()?;
    }
    let config = RunConfig {
        keep_trace: args.trace.is_some() || args.timeline.is_some(),
        oracle: args.oracle.unwrap_or(config.oracle),
        sink: args.sink.unwrap_or(config.sink),
        channel_capacity: args.channel_capacity.map(|n| n as usize).or(config.channel_capacity),
        aim: if args.with.is_empty() {
            config.aim
        } else {
            FaultSet::of(&args.with)
        },
        ..config
    };
    let run = scenario.run(&config);
    println!("{}", run.report);
    write_run_files(args, &run)?;
    let mut passed = run.report.passed;
    if args.check_determinism {
        let again = scenario.run(&config).report;
        if again.trace_hash == run.report.trace_hash {
            println!("determinism: the second run has the same trace-hash");
        } else {
            println!("determinism: FAIL, the second run has trace-hash {}", again.trace_hash);
            println!("{}", eddy::sim::divergence(&config, |config| scenario.run(config)));
            passed = false;
        }
    }
    let _ = std::io::stdout().flush();
    Ok(if passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
