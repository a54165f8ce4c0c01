//! One workload measured: every variant on the same input (interleaved, [`interleaved`]), the
//! state size, seeds/s, and the ratios and checksum agreement of the result
//! ([`WorkloadResult`]).

use std::cell::Cell;
use std::time::Instant;

use eddy::sim::{simulate, FaultSet, SimOptions};
use eddy::{JobGraph, Log, Record};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::checksum::Checksum;
use super::direct;
#[cfg(feature = "bench")]
use super::peer;
use super::settings::{BATCH_POLL, CHANNEL_CAPACITY, CHECKPOINT_EVERY, SEED_EVENTS, WATERMARK_EVERY};
use super::state::{state_size, StateSize};
use super::timing::{interleaved, Measured, Ratio, Variant};
use super::workloads::Workload;

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: &'static str,
    pub events: usize,
    pub variants: Vec<Measured>,
    /// Simulated 10,000-event runs per second (the simulator variant's options, no faults).
    pub sim_seeds_per_s: f64,
    /// The median of the rounds' engine/limit ratios (`ratios` has the spread).
    pub engine_over_limit: f64,
    pub engine_over_timely: Option<f64>,
    /// engine/limit, engine/timely and the simulator variants over the engine, round by
    /// round: median, spread, goal and verdict.
    pub ratios: Vec<Ratio>,
    /// The like-for-like variants (and the untimed state-size run) agree.
    pub checksums_agree: bool,
    /// Whether the shortcut variants happen to agree with the others on this input (none if
    /// the workload has no shortcut).
    pub shortcuts_agree: Option<bool>,
    pub state: StateSize,
}

/// The goals `eddy bench` holds the ratios to (docs/performance.md).
pub const GOAL_OVER_LIMIT: f64 = 0.5;
pub const GOAL_OVER_TIMELY: f64 = 1.0;
pub const GOAL_SIM_OVER_ENGINE: f64 = 0.5;

/// A simulator variant: its name, poll size, checksum, graph and checkpoints per run.
type Simulated = (&'static str, Option<usize>, Checksum, JobGraph, Cell<u64>);

const ENGINE: &str = "engine (batch)";
const SIM_BATCH_POLLS: &str = "engine (simulator, checkpoints, polls of 1,024)";
const SIM_DRAWN_POLLS: &str = "engine (simulator, checkpoints, drawn polls of 1-32)";
const LIMIT: &str = "hand-written loop";
const TIMELY: &str = "timely (1 worker)";

pub fn measure<W: Workload>(workload: &W, events: usize) -> WorkloadResult {
    let input = workload.generate(events, &mut ChaCha8Rng::seed_from_u64(1));

    // The simulator twice: reading as much per poll as batch mode (what simulating costs on
    // the same work: seeded choices, trace, checkpoints, two-phase commit), and reading the
    // 1-32 records per poll that `explore` draws (finer interleavings, more steps).
    let simulated: Vec<Simulated> = [(SIM_BATCH_POLLS, Some(BATCH_POLL)), (SIM_DRAWN_POLLS, None)]
        .into_iter()
        .map(|(name, poll_max)| {
            let checksum = Checksum::new(true);
            let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
            (name, poll_max, checksum, graph, Cell::new(0))
        })
        .collect();
    let checksum = Checksum::new(false);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    let mut variants = vec![Variant::new(ENGINE, || {
        eddy::run_to_end(&graph).expect("a benchmark run ends");
        checksum.take()
    })];

    for (name, poll_max, checksum, graph, checkpoints) in &simulated {
        variants.push(Variant::new(name, move || {
            let outcome = simulate(graph, &sim_options(0, events, *poll_max));
            if let Some(violation) = outcome.violation {
                eprintln!("{}: the simulated run failed: {violation:?}", workload.name());
            }
            checkpoints.set(outcome.stats.checkpoints_completed);
            checksum.take()
        }));
    }

    variants.push(Variant::new(LIMIT, || {
        direct::hand_written::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    #[cfg(feature = "bench")]
    variants.push(Variant::new(TIMELY, || {
        peer::timely::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    variants.extend(workload.shortcuts(&input));
    let mut variants = interleaved(events, variants);
    for (name, _, _, _, checkpoints) in &simulated {
        if let Some(m) = variants.iter_mut().find(|m| m.variant == *name) {
            m.checkpoints = Some(checkpoints.get());
        }
    }
    let find = |name: &str| variants.iter().find(|m| m.variant == name && !m.shortcut);
    let engine = find(ENGINE).expect("measured");
    let shortcuts_agree = variants.iter().any(|m| m.shortcut).then(|| {
        variants
            .iter()
            .filter(|m| m.shortcut)
            .all(|m| m.checksum == engine.checksum)
    });

    let checksum = Checksum::new(false);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    let state = state_size(&graph);
    let state_checksum = format!("{:016x}", checksum.get());

    let sim_seeds_per_s = seeds_per_second(workload, &input);
    let mut ratios = vec![Ratio::of(
        "engine/limit",
        engine,
        find(LIMIT).expect("measured"),
        Some(GOAL_OVER_LIMIT),
    )];
    if let Some(timely) = find(TIMELY) {
        ratios.push(Ratio::of("engine/timely", engine, timely, Some(GOAL_OVER_TIMELY)));
    }
    for (name, label, goal) in [
        (SIM_BATCH_POLLS, "sim 1,024/engine", Some(GOAL_SIM_OVER_ENGINE)),
        (SIM_DRAWN_POLLS, "sim 1-32/engine", None),
    ] {
        ratios.push(Ratio::of(label, find(name).expect("measured"), engine, goal));
    }
    let checksums_agree = variants
        .iter()
        .filter(|m| !m.shortcut)
        .all(|m| m.checksum == engine.checksum)
        && state_checksum == engine.checksum;
    WorkloadResult {
        workload: workload.name(),
        events,
        engine_over_limit: ratios[0].median,
        engine_over_timely: ratios.iter().find(|r| r.name == "engine/timely").map(|r| r.median),
        ratios,
        variants,
        sim_seeds_per_s,
        checksums_agree,
        shortcuts_agree,
        state,
    }
}

fn sim_options(seed: u64, events: usize, poll_max: Option<usize>) -> SimOptions {
    SimOptions {
        seed,
        faults: FaultSet::of(&[]),
        fault_schedule: None,
        checkpoint_schedule: None,
        checkpoint_every_records: Some(CHECKPOINT_EVERY),
        poll_max,
        channel_capacity: Some(CHANNEL_CAPACITY),
        keep_trace: false,
        tap_late: false,
        max_steps: 10_000 + 200 * events as u64,
        database: None,
        chaining: None,
    }
}

/// Simulated runs of the first 10,000 events per second, one seed each (graph built outside
/// the timing), for about half a second.
fn seeds_per_second<W: Workload>(workload: &W, input: &[Record<W::Event>]) -> f64 {
    let input = &input[..input.len().min(SEED_EVENTS)];
    let mut seeds = 0u64;
    let mut spent = 0.0;
    while spent < 0.5 && seeds < 1_000 {
        let graph = workload.build(Log::round_robin(input.to_vec(), 1), &Checksum::new(true));
        let started = Instant::now();
        let _ = simulate(&graph, &sim_options(seeds, input.len(), None));
        spent += started.elapsed().as_secs_f64();
        seeds += 1;
    }
    seeds as f64 / spent
}
