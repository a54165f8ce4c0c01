//! The scheduler: drives a job step by step under a virtual clock and injected faults.
//!
//! Each step, in this order: maybe crash (the whole job restarts from the newest intact
//! checkpoint, sources rewind, in-flight data is lost); maybe jump processing time; maybe
//! trigger a checkpoint; fire due processing-time deadlines; take one ready action (deliver
//! a channel's head, or let a source read); store acknowledgements, and on completion
//! notify the tasks — unless the notification is lost, a crash comes first, or the stored
//! checkpoint was damaged. When every task has ended, a final checkpoint carries the last
//! sink transactions. Every decision comes from a [`Decisions`] source: the seeded streams
//! ([`crate::seed`]) normally, a fuzzer's bytes under `fuzz/` ([`crate::decide::Tape`]).
//!
//! The modules, by concept: `options` (what a run is given and returns; a leaf), `state` (the
//! running simulation), `step` (the step loop and checkpoint triggers), `inject` (fault
//! decisions, and the faults that strike a completed checkpoint), `restore` (crash, restore and
//! rescale), `actions` (which ready action runs, and running it), `moments` (the coverage
//! moments the job's operators reach). This module builds the simulation and runs it.

mod actions;
mod inject;
mod moments;
mod options;
mod restore;
mod state;
mod step;

pub use options::{FaultEvent, SimOptions, SimOutcome, SimStats};

use self::restore::{fits, rescale};
use self::state::Simulation;
use crate::coverage::{Moment, Moments};
use crate::decide::{Decisions, Seeded};
use crate::faults::FaultKind;
use crate::seed::Concern;
use crate::timeline::Timeline;
use crate::trace::{Trace, TraceEvent};
use std::collections::{BTreeMap, BTreeSet};

use eddy_engine::testkit::{take_late_records, tap_late_outputs};
use eddy_engine::{CheckpointCoordinator, Job, JobGraph, Layout, MemorySnapshotStore, NO_WATERMARK};

/// At most this many crashes per run, so every run also makes progress.
const CRASH_BUDGET: u64 = 4;

/// At most this many database faults per run: each failed prepare fails the job over, and a
/// run must still make progress.
const DATABASE_FAULT_BUDGET: u64 = 3;

/// Runs `graph` with the choices drawn from `options.seed` ([`Seeded`]).
pub fn simulate(graph: &JobGraph, options: &SimOptions) -> SimOutcome {
    simulate_with(graph, options, Seeded::new(options.seed))
}

/// Runs `graph` with every scheduling, fault and checkpoint choice taken from `decisions`
/// (`options.seed` is then unused here).
pub fn simulate_with<D: Decisions>(graph: &JobGraph, options: &SimOptions, mut decisions: D) -> SimOutcome {
    let store = MemorySnapshotStore::new();
    let coordinator = CheckpointCoordinator::new(&store).expect("a memory store does not fail");
    let crashes_left = if options.faults.crashes() {
        decisions.within(Concern::Faults, 1..=CRASH_BUDGET)
    } else {
        0
    };
    let mut injected = Vec::new();
    let parallelism = match &options.fault_schedule {
        Some(schedule) => schedule.iter().find_map(|f| match f {
            FaultEvent::Rescale { step: 0, parallelism } if fits(graph, parallelism) => Some(parallelism.clone()),
            _ => None,
        }),
        None if options.faults.contains(FaultKind::Rescale) && decisions.chance(Concern::Faults, 0.5) => {
            Some(rescale(graph, &mut decisions))
        }
        None => None,
    }
    .unwrap_or_else(|| graph.parallelism());
    if parallelism != graph.parallelism() {
        injected.push(FaultEvent::Rescale {
            step: 0,
            parallelism: parallelism.clone(),
        });
    }
    let chaining = options.chains(graph);
    let mut job = Job::with_layout(
        graph,
        &Layout {
            parallelism: parallelism.clone(),
            chaining,
        },
    );
    if options.tap_late {
        tap_late_outputs(&mut job);
    }
    if let Some(capacity) = options.channel_capacity {
        job.bound_channels(capacity);
    }
    let mut sim = Simulation {
        graph,
        faults: &options.faults,
        decisions,
        store,
        database: options.database.clone(),
        job,
        coordinator,
        trace: Trace::new(options.keep_trace),
        stats: SimStats::default(),
        step: 0,
        now: 0,
        crashes_left,
        database_faults_left: DATABASE_FAULT_BUDGET,
        delayed: Vec::new(),
        fault_schedule: options.fault_schedule.clone(),
        injected,
        checkpoint_schedule: options.checkpoint_schedule.clone(),
        checkpoint_every_records: options.checkpoint_every_records,
        checkpoint_steps: Vec::new(),
        poll_max: options.poll_max,
        channel_capacity: options.channel_capacity,
        tap_late: options.tap_late,
        late_committed: Vec::new(),
        parallelism,
        chaining,
        checkpoint_parallelism: BTreeMap::new(),
        moments: Moments::default(),
        restored: false,
        late_firings_committed: 0,
        notified: BTreeSet::new(),
        watermark_since: (NO_WATERMARK, 0),
        timeline: options.keep_trace.then(Timeline::default),
        time_of_step: vec![0],
    };
    if sim.parallelism != graph.parallelism() {
        let tasks = sim.parallelism.iter().sum::<usize>() as u64;
        sim.trace.record(TraceEvent::Rescaled { step: 0, tasks });
    }
    let violation = sim.run(options.max_steps).err();
    sim.count_job_moments();
    if let Some(database) = &sim.database {
        sim.moments
            .add(Moment::CommitRetriedAfterLostAnswer, database.retried_commits());
    }
    if let Some(timeline) = &mut sim.timeline {
        let failed_writes: Vec<u64> = sim
            .injected
            .iter()
            .filter_map(|f| match f {
                FaultEvent::FailedWrite { step } => Some(*step),
                _ => None,
            })
            .collect();
        timeline.add_events(sim.trace.events(), &sim.time_of_step, &failed_writes);
    }
    // The run ended with its final checkpoint notified: its late records are committed.
    let mut late = std::mem::take(&mut sim.late_committed);
    late.extend(take_late_records(&mut sim.job));
    sim.stats.steps = sim.step;
    sim.stats.virtual_duration_ms = sim.now;
    SimOutcome {
        checkpoint_steps: sim.checkpoint_steps,
        injected: sim.injected,
        state_entries: sim.job.state_entries(),
        stats: sim.stats,
        trace: sim.trace,
        late,
        moments: sim.moments,
        timeline: sim.timeline,
        violation,
    }
}
