//! `eddy shrink`: a failure file into an explicit case, minimised.

use std::process::ExitCode;

use eddy::replay_file::failure_config;
use eddy::sim::RunConfig;

use crate::args::ShrinkArgs;
use crate::common::{in_file, read_failure_file, write_file, UsageError};

pub fn shrink(args: &ShrinkArgs) -> Result<ExitCode, UsageError> {
    let failure = read_failure_file(&args.file)?;
    let (scenario, config) = failure_config(&failure, args.bug, None).map_err(in_file(&args.file))?;
    let config = RunConfig {
        check_determinism: true,
        ..config
    };
    let (run, case) = scenario.record_case(&config);
    let Some(violation) = run.report.violation else {
        println!(
            "{}
{}: the run passes; nothing to shrink",
            run.report,
            args.file.display()
        );
        return Ok(ExitCode::from(1));
    };
    let replayed = scenario
        .run_case(&config, &case)
        .map_err(|e| UsageError(e.to_string()))?;
    if replayed.report.violation.as_ref().map(|v| &v.property) != Some(&violation.property) {
        println!(
            "{}: the recorded input and faults do not reproduce `{}`; cannot shrink",
            args.file.display(),
            violation.property
        );
        return Ok(ExitCode::from(1));
    }
    eprintln!(
        "shrinking {} events and {} faults that fail `{}` ...",
        case.input.len(),
        case.faults.len(),
        violation.property
    );
    let shrunk = eddy::sim::shrink(scenario, &config, case, &violation.property, args.max_runs);
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.file.with_extension("min.json"));
    let json = serde_json::to_string_pretty(&shrunk.case).expect("a case serialises");
    write_file(&output, json.as_bytes())?;
    let final_run = scenario
        .run_case(&config, &shrunk.case)
        .map_err(|e| UsageError(e.to_string()))?;
    println!("{}", final_run.report);
    println!(
        "wrote {} ({} runs); replay: eddy replay {}",
        output.display(),
        shrunk.runs,
        output.display()
    );
    println!(
        "shrunk: events {} -> {}, faults {} -> {}",
        shrunk.events_before,
        shrunk.case.input.len(),
        shrunk.faults_before,
        shrunk.case.faults.len()
    );
    if !shrunk.fixpoint {
        println!(
            "shrink: stopped at its budget after {} runs, before a round changed nothing: the case may shrink further",
            shrunk.runs
        );
    }
    Ok(ExitCode::SUCCESS)
}
