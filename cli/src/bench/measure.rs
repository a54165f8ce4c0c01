//! One workload measured: every variant on the same input, the state size, seeds/s, and the
//! ratios and checksum agreement of the result ([`WorkloadResult`]).

use std::time::Instant;

use eddy::sim::{simulate, FaultSet, SimOptions};
use eddy::{Log, Record};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::checksum::Checksum;
use super::direct;
#[cfg(feature = "bench")]
use super::peer;
use super::settings::{BATCH_POLL, CHANNEL_CAPACITY, CHECKPOINT_EVERY, SEED_EVENTS, WATERMARK_EVERY};
use super::state::{state_size, StateSize};
use super::timing::{timed, Measured};
use super::workloads::Workload;

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: &'static str,
    pub events: usize,
    pub variants: Vec<Measured>,
    /// Simulated 10,000-event runs per second (the simulator variant's options, no faults).
    pub sim_seeds_per_s: f64,
    pub engine_over_limit: f64,
    pub engine_over_timely: Option<f64>,
    /// The like-for-like variants (and the untimed state-size run) agree.
    pub checksums_agree: bool,
    /// Whether the shortcut variants happen to agree with the others on this input (none if
    /// the workload has no shortcut).
    pub shortcuts_agree: Option<bool>,
    pub state: StateSize,
}

pub fn measure<W: Workload>(workload: &W, events: usize) -> WorkloadResult {
    let input = workload.generate(events, &mut ChaCha8Rng::seed_from_u64(1));
    let mut variants = Vec::new();

    let checksum = Checksum::new(false);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    variants.push(timed("engine (batch)", events, || {
        eddy::run_to_end(&graph).expect("a benchmark run ends");
        checksum.take()
    }));

    // The simulator twice: reading as much per poll as batch mode (what simulating costs on
    // the same work: seeded choices, trace, checkpoints, two-phase commit), and reading the
    // 1-32 records per poll that `explore` draws (finer interleavings, more steps).
    for (variant, poll_max) in [
        ("engine (simulator, checkpoints, polls of 1,024)", Some(BATCH_POLL)),
        ("engine (simulator, checkpoints, drawn polls of 1-32)", None),
    ] {
        let checksum = Checksum::new(true);
        let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
        let mut checkpoints = 0;
        let mut measured = timed(variant, events, || {
            let outcome = simulate(&graph, &sim_options(0, events, poll_max));
            if let Some(violation) = outcome.violation {
                eprintln!("{}: the simulated run failed: {violation:?}", workload.name());
            }
            checkpoints = outcome.stats.checkpoints_completed;
            checksum.take()
        });
        measured.checkpoints = Some(checkpoints);
        variants.push(measured);
    }

    variants.push(timed("hand-written loop", events, || {
        direct::hand_written::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    #[cfg(feature = "bench")]
    variants.push(timed("timely (1 worker)", events, || {
        peer::timely::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    let shortcuts = workload.shortcuts(&input);
    let shortcuts_agree = (!shortcuts.is_empty()).then(|| shortcuts.iter().all(|m| m.checksum == variants[0].checksum));
    variants.extend(shortcuts);

    let checksum = Checksum::new(false);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    let state = state_size(&graph);
    let state_checksum = format!("{:016x}", checksum.get());

    let sim_seeds_per_s = seeds_per_second(workload, &input);
    let rate = |variant: &str| {
        variants
            .iter()
            .find(|m| m.variant == variant && !m.shortcut)
            .map(|m| m.events_per_s)
    };
    let engine = rate("engine (batch)").expect("measured");
    let checksums_agree = variants
        .iter()
        .filter(|m| !m.shortcut)
        .all(|m| m.checksum == variants[0].checksum)
        && state_checksum == variants[0].checksum;
    WorkloadResult {
        workload: workload.name(),
        events,
        engine_over_limit: engine / rate("hand-written loop").expect("measured"),
        engine_over_timely: rate("timely (1 worker)").map(|timely| engine / timely),
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
