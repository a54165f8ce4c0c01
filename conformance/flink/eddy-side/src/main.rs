//! eddy-conformance: runs random scripts of records and watermarks through eddy and through
//! Apache Flink (a JVM beside this process) and compares what they emit, case by case.
//!
//! `conformance/flink/run.sh COUNT SEED` builds both sides and runs this; see
//! conformance/flink/README.md. Per case it prints `CASE: N scripts, M agree`, then each
//! disagreement's script shrunk to what still disagrees, with both engines' outputs.
#![forbid(unsafe_code)]

mod cases;
mod compare;
mod debezium;
mod eddy_run;
mod eddy_side;
mod flink;
mod joins;
mod parts;
mod restore;
mod script;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use cases::Case;
use compare::Outputs;
use flink::Flink;
use script::Script;

const USAGE: &str = "usage: eddy-conformance --count N --seed S --classpath CP --work DIR \
[--java JAVA] [--batch SCRIPTS_PER_JOB] [--case SUBSTRING]... [--shrink-rounds N] [--list] [--script FILE]";

struct Options {
    count: usize,
    seed: u64,
    classpath: String,
    java: String,
    work: PathBuf,
    batch: usize,
    filters: Vec<String>,
    shrink_rounds: usize,
    list: bool,
    /// Replay this script (as a disagreement prints it) through the selected cases.
    script: Option<PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        count: 40,
        seed: 0,
        classpath: String::new(),
        java: "java".to_string(),
        work: std::env::temp_dir().join("eddy-conformance"),
        batch: 20,
        filters: Vec::new(),
        shrink_rounds: 60,
        list: false,
        script: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--list" {
            options.list = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{flag}: not a number: {v}"));
        match flag.as_str() {
            "--count" => options.count = number(&value)? as usize,
            "--seed" => options.seed = number(&value)?,
            "--classpath" => options.classpath = value,
            "--java" => options.java = value,
            "--work" => options.work = PathBuf::from(value),
            "--batch" => options.batch = number(&value)? as usize,
            "--case" => options.filters.push(value),
            "--shrink-rounds" => options.shrink_rounds = number(&value)? as usize,
            "--script" => options.script = Some(PathBuf::from(value)),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    Ok(options)
}

/// The seed of one case's scripts: the run's seed and the case's name, so that adding a case
/// does not change the scripts of the others.
fn case_seed(seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across platforms and releases (std's hashers promise neither).
    name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ seed, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let cases: Vec<Case> = cases::all()
        .into_iter()
        .filter(|c| options.filters.is_empty() || options.filters.iter().any(|f| c.name.contains(f.as_str())))
        .collect();
    if options.list {
        for case in &cases {
            println!("{}: {}", case.name, case.spec());
        }
        return ExitCode::SUCCESS;
    }
    if cases.is_empty() {
        eprintln!("no case matches {:?}", options.filters);
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let mut flink = match Flink::start(&options.java, &options.classpath, &options.work, options.batch) {
        Ok(flink) => flink,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    if let Some(path) = &options.script {
        return match replay(&cases, path, &mut flink) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(message) => {
                eprintln!("{message}");
                ExitCode::from(2)
            }
        };
    }
    let mut disagreeing = Vec::new();
    for case in &cases {
        match run_case(case, &options, &mut flink) {
            Ok(true) => {}
            Ok(false) => disagreeing.push(case.name.clone()),
            Err(message) => {
                println!("{}: flink side failed: {message}", case.name);
                disagreeing.push(case.name.clone());
            }
        }
    }
    println!(
        "{} cases, {} agree on every script ({} scripts per case, seed {}), in {:.0} s",
        cases.len(),
        cases.len() - disagreeing.len(),
        options.count,
        options.seed,
        started.elapsed().as_secs_f64()
    );
    if disagreeing.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("disagreeing cases: {}", disagreeing.join(" "));
        ExitCode::FAILURE
    }
}

/// Runs one case over `count` scripts; prints its line and, for the first disagreement, the
/// shrunk script with both outputs. Returns whether every script agreed.
fn run_case(case: &Case, options: &Options, flink: &mut Flink) -> Result<bool, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(case_seed(options.seed, &case.name));
    let scripts: Vec<Script> = (0..options.count).map(|_| case.generate(&mut rng)).collect();
    let flink_outputs = flink.run(case, &scripts)?;
    let disagreements: Vec<usize> = (0..scripts.len())
        .filter(|&i| !compare::agree(case, &scripts[i], &eddy_side::run(case, &scripts[i]), &flink_outputs[i]))
        .collect();
    println!(
        "{}: {} scripts, {} agree",
        case.name,
        scripts.len(),
        scripts.len() - disagreements.len()
    );
    let Some(&first) = disagreements.first() else {
        return Ok(true);
    };
    let original = &scripts[first];
    let shrunk = shrink(case, original, options.shrink_rounds, flink)?;
    let (eddy, flink) = (
        eddy_side::run(case, &shrunk),
        flink.run(case, std::slice::from_ref(&shrunk))?.remove(0),
    );
    let others = match disagreements.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    println!(
        "  disagreement: script {} of seed {}{others}, shrunk from {} to {} elements ({}):",
        first + 1,
        options.seed,
        original.elements.len(),
        shrunk.elements.len(),
        case.spec()
    );
    for line in shrunk.to_string().lines() {
        println!("      {line}");
    }
    print!("{}", compare::show(case, &shrunk, &eddy, &flink));
    Ok(false)
}

/// Runs one script through each case on both engines and shows both outputs.
fn replay(cases: &[Case], path: &std::path::Path, flink: &mut Flink) -> Result<bool, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let script = Script::parse(&text)?;
    let mut all_agree = true;
    for case in cases {
        let eddy = eddy_side::run(case, &script);
        let flink = flink.run(case, std::slice::from_ref(&script))?.remove(0);
        let agree = compare::agree(case, &script, &eddy, &flink);
        all_agree &= agree;
        println!("{}: {}", case.name, if agree { "agree" } else { "disagree" });
        print!("{}", compare::show(case, &script, &eddy, &flink));
    }
    Ok(all_agree)
}

/// Drops chunks of elements (halves, then quarters, ... single elements) while the engines
/// still disagree; each round's candidates run as one Flink job. At most `rounds` jobs.
fn shrink(case: &Case, script: &Script, rounds: usize, flink: &mut Flink) -> Result<Script, String> {
    let mut current = script.clone();
    let mut chunk = (current.elements.len() / 2).max(1);
    for _ in 0..rounds {
        let len = current.elements.len();
        if len <= 1 {
            break;
        }
        let chunk_len = chunk.min(len);
        let candidates: Vec<Script> = (0..len)
            .step_by(chunk_len)
            .map(|start| current.without(start..(start + chunk_len).min(len)))
            .filter(|c| !matches!(case.kind, cases::Kind::Sql(_)) || c.is_valid_changelog())
            .filter(|c| !case.restore || c.restores_cleanly())
            .collect();
        if candidates.is_empty() {
            if chunk_len == 1 {
                break;
            }
            chunk = (chunk_len / 2).max(1);
            continue;
        }
        let eddy: Vec<Outputs> = candidates.iter().map(|c| eddy_side::run(case, c)).collect();
        let flink_outputs = flink.run(case, &candidates)?;
        let smaller =
            (0..candidates.len()).find(|&i| !compare::agree(case, &candidates[i], &eddy[i], &flink_outputs[i]));
        match smaller {
            Some(i) => {
                current = candidates[i].clone();
                chunk = chunk.min((current.elements.len() / 2).max(1));
            }
            None if chunk_len == 1 => break,
            None => chunk = (chunk_len / 2).max(1),
        }
    }
    Ok(current)
}
