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

mod direct;
#[cfg(feature = "bench")]
mod peer;
mod restore;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use eddy::engine::{
    run_steps, BatchConfig, CheckpointCoordinator, CheckpointOutcome, Committer, InOrder, Job, MemorySnapshotStore,
    ObjectKey, SnapshotStore, TaskSnapshot, TransactionId,
};
use eddy::scenarios::nexmark::{self, q5, q7};
use eddy::scenarios::{dedup, enrich, pageviews, sessions};
use eddy::sim::{simulate, FaultSet, SimOptions};
use eddy::{
    Count, Data, JobGraph, Keep, Log, Pipeline, Record, Sink, Stream, WatermarkStrategy, Window, WindowAssigner,
    Windowed,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use direct::{result_hash, Direct};

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

/// Records per source watermark in the hand-written and timely variants; in batch mode the
/// engine reads as many per step, and emits a watermark every step (see [`watermarks`]).
const WATERMARK_EVERY: usize = 1_024;
/// Records per source poll in batch mode (`BatchConfig::default`), and in the simulator
/// variant that reads as much.
const BATCH_POLL: usize = 1_024;
/// The simulator variant checkpoints each time the sources read this many more records:
/// 200 checkpoints in a 2,000,000-event run (docs/performance.md, "The simulator's
/// checkpoint cadence").
const CHECKPOINT_EVERY: u64 = 10_000;
/// Messages each simulator channel holds before its sender waits. With backpressure the
/// sources cannot run ahead of a barrier, so checkpoints come at the cadence asked for;
/// unbounded, a backlog grew in front of each barrier and a run completed about ten.
const CHANNEL_CAPACITY: usize = 8;
/// Events per seed in the seeds/s measurement.
const SEED_EVENTS: usize = 10_000;

/// One variant's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub variant: &'static str,
    /// Of the median run ([`RUNS`] runs).
    pub events_per_s: f64,
    pub seconds: f64,
    /// Of the results (the runs' distinct checksums, comma-separated, if they disagree).
    pub checksum: String,
    /// Peak resident memory while the variant ran (VmHWM, reset before its first run), in MiB.
    pub peak_mib: Option<f64>,
    /// Simulator variants: the checkpoints one run completed (the cadence it really had).
    pub checkpoints: Option<u64>,
    /// Computes with other semantics than the engine (e.g. decides at once, right only for
    /// in-order input): not in `engine_over_*` nor in `checksums_agree`.
    pub shortcut: bool,
}

/// The state of the largest completed checkpoint (by bytes) of an untimed engine run at
/// parallelism 1 with a checkpoint each time the source has read `CHECKPOINT_EVERY` more
/// records (the simulator variant's cadence, in the batch driver's order).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StateSize {
    pub checkpoints: u64,
    /// Bytes of every task snapshot of that checkpoint, as stored (frames, source offsets
    /// and operator state included).
    pub checkpoint_bytes: u64,
    /// Keyed state entries in it: one per key for dedup and the temporal join, one per
    /// (key, window) pane for windows, one per (key, session) for sessions.
    pub keyed_entries: u64,
    /// `checkpoint_bytes / keyed_entries` (none if the checkpoint held no keyed entry).
    pub bytes_per_entry: Option<f64>,
}

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

/// A benchmarked workload: its input, its engine pipeline, its direct computation.
trait Workload {
    type Event: Data;
    type Direct: Direct<Event = Self::Event>;
    fn name(&self) -> &'static str;
    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>>;
    /// The source's out-of-orderness bound.
    fn bound_ms(&self) -> i64;
    /// The pipeline at parallelism 1, its results folded into `checksum`.
    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph;
    /// Shortcut variants, measured apart ([`Measured::shortcut`]).
    fn shortcuts(&self, _input: &[Record<Self::Event>]) -> Vec<Measured> {
        Vec::new()
    }
}

/// Folds results into a checksum: a sink for batch runs, a committer for checkpointed ones.
#[derive(Clone)]
pub struct Checksum {
    sum: Arc<AtomicU64>,
    transactional: bool,
}

impl Checksum {
    fn new(transactional: bool) -> Self {
        Checksum {
            sum: Arc::default(),
            transactional,
        }
    }

    fn get(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// The sum so far, starting the next run's from zero.
    fn take(&self) -> u64 {
        self.sum.swap(0, Ordering::Relaxed)
    }

    /// Attaches the checksum to `stream`, hashing each result with `hash`.
    fn attach<T: Data>(&self, stream: Stream<T>, hash: fn(&Record<T>) -> u64) {
        let sink = Hashing {
            checksum: self.clone(),
            hash,
        };
        if self.transactional {
            stream.sink_transactional(sink);
        } else {
            stream.sink(sink);
        }
    }
}

#[derive(Clone)]
struct Hashing<T> {
    checksum: Checksum,
    hash: fn(&Record<T>) -> u64,
}

impl<T> Hashing<T> {
    fn add(&self, records: &[Record<T>]) {
        let sum = records.iter().fold(0u64, |sum, r| sum.wrapping_add((self.hash)(r)));
        self.checksum.sum.fetch_add(sum, Ordering::Relaxed);
    }
}

impl<T: Data> Sink<T> for Hashing<T> {
    fn write(&mut self, records: Vec<Record<T>>) {
        self.add(&records);
    }
}

impl<T: Data> Committer<T> for Hashing<T> {
    fn commit(&mut self, _transaction: TransactionId, records: Vec<Record<T>>) {
        // Without faults every transaction commits once.
        self.add(&records);
    }
}

struct PageViews;

impl Workload for PageViews {
    type Event = pageviews::PageView;
    type Direct = direct::PageViewCounts;

    fn name(&self) -> &'static str {
        "pageviews"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&pageviews::PageViews, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        pageviews::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let counted = pipeline
            .source("views", log, watermarks(self.bound_ms()))
            .key_by(|v: &pageviews::PageView| v.page)
            .window(WindowAssigner::tumbling(pageviews::WINDOW_MS))
            .allowed_lateness(pageviews::ALLOWED_LATENESS_MS)
            .aggregate(Count);
        checksum.attach(counted.output, |r| {
            result_hash(&[u64::from(r.value.key), r.value.window.start as u64, r.value.value])
        });
        pipeline.build().expect("the pageviews bench pipeline is valid")
    }
}

struct Dedup;

impl Workload for Dedup {
    type Event = dedup::Click;
    type Direct = direct::FirstClicks;

    fn name(&self) -> &'static str {
        "dedup"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&dedup::Dedup, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        dedup::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let kept = pipeline
            .source("clicks", log, watermarks(self.bound_ms()))
            .filter(|c: &dedup::Click| !c.bot)
            .key_by(|c: &dedup::Click| c.event_id)
            .deduplicate(Keep::First, dedup::TTL_MS);
        checksum.attach(kept.output, |r| {
            result_hash(&[u64::from(r.value.event_id), r.ts as u64, u64::from(r.value.user)])
        });
        pipeline.build().expect("the dedup bench pipeline is valid")
    }

    fn shortcuts(&self, input: &[Record<Self::Event>]) -> Vec<Measured> {
        let events = input.len();
        let bound_ms = self.bound_ms();
        let mut variants = vec![shortcut(timed(
            "hand-written loop (at once, in-order only)",
            events,
            || direct::hand_written::<direct::FirstClicksAtOnce>(input, bound_ms, WATERMARK_EVERY),
        ))];
        #[cfg(feature = "bench")]
        variants.push(shortcut(timed("timely (at once, in-order only)", events, || {
            peer::timely::<direct::FirstClicksAtOnce>(input, bound_ms, WATERMARK_EVERY)
        })));
        variants
    }
}

fn shortcut(measured: Measured) -> Measured {
    Measured {
        shortcut: true,
        ..measured
    }
}

/// `sessions-clicks`: clicks per user session (the scenario's gap and allowed lateness).
struct SessionsClicks;

impl Workload for SessionsClicks {
    type Event = sessions::UserClick;
    type Direct = direct::SessionClicks;

    fn name(&self) -> &'static str {
        "sessions-clicks"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&sessions::SessionsClicks, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        sessions::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let sessions = pipeline
            .source("clicks", log, watermarks(self.bound_ms()))
            .key_by(|c: &sessions::UserClick| c.user)
            .window(WindowAssigner::session(sessions::GAP_MS))
            .allowed_lateness(sessions::ALLOWED_LATENESS_MS)
            .aggregate(Count);
        checksum.attach(sessions.output, |r| {
            let session = &r.value;
            result_hash(&[
                u64::from(session.key),
                session.window.start as u64,
                session.window.end as u64,
                session.value,
            ])
        });
        pipeline.build().expect("the sessions-clicks bench pipeline is valid")
    }
}

/// `enrich`: the scenario's log split into clicks and profile changes, each click joined in
/// event time with the profile valid at its timestamp.
struct Enrich;

impl Workload for Enrich {
    type Event = enrich::EnrichEvent;
    type Direct = direct::EnrichedClicks;

    fn name(&self) -> &'static str {
        "enrich"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&enrich::Enrich, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        enrich::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        // Both read the source's log in place: each copies only the events it keeps.
        let clicks = events.clone().filter_map(|e: &enrich::EnrichEvent| match e {
            enrich::EnrichEvent::Click(click) => Some(click.clone()),
            enrich::EnrichEvent::Profile(_) => None,
        });
        let changes = events.filter_map(|e: &enrich::EnrichEvent| match e {
            enrich::EnrichEvent::Profile(change) => Some(change.clone().into_change()),
            enrich::EnrichEvent::Click(_) => None,
        });
        let joined = clicks.key_by(|c: &enrich::Click| c.user).temporal_join(changes);
        checksum.attach(joined.output, |r| {
            let (click, profile) = &r.value;
            direct::enriched_hash(click, r.ts, profile.as_ref())
        });
        pipeline.build().expect("the enrich bench pipeline is valid")
    }
}

/// `nexmark-q5`: sliding bid counts per auction, then the top auction(s) per window; the
/// scenario's aggregate functions.
struct HotItems;

impl Workload for HotItems {
    type Event = nexmark::Event;
    type Direct = direct::HotItems;

    fn name(&self) -> &'static str {
        "nexmark-q5"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&q5::NEXMARK_Q5, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        nexmark::SOURCE.out_of_orderness_ms
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        let counts = nexmark::bids(events)
            .key_by(|bid: &nexmark::Bid| bid.auction)
            .window(WindowAssigner::sliding(q5::WINDOW_MS, q5::SLIDE_MS))
            .aggregate(Count);
        let hot = counts
            .output
            .key_by(|count: &Windowed<u64, u64>| count.window)
            .window(WindowAssigner::tumbling(q5::SLIDE_MS))
            .aggregate(q5::MaxCount);
        checksum.attach(hot.output, |r| {
            let hot = &r.value;
            hot.value.auctions.iter().fold(0u64, |sum, &auction| {
                sum.wrapping_add(result_hash(&[hot.key.start as u64, auction, hot.value.bids]))
            })
        });
        pipeline.build().expect("the nexmark-q5 bench pipeline is valid")
    }
}

/// `nexmark-q7`: the highest bid(s) per tumbling window, in the scenario's two phases.
struct HighestBids;

impl Workload for HighestBids {
    type Event = nexmark::Event;
    type Direct = direct::HighestBids;

    fn name(&self) -> &'static str {
        "nexmark-q7"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&q7::NEXMARK_Q7, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        nexmark::SOURCE.out_of_orderness_ms
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        let per_auction = nexmark::bids(events)
            .key_by(|bid: &nexmark::Bid| bid.auction)
            .window(WindowAssigner::tumbling(q7::WINDOW_MS))
            .aggregate(q7::MaxBid);
        let highest = per_auction
            .output
            .key_by(|highest: &Windowed<u64, q7::HighestBids>| highest.window)
            .window(WindowAssigner::tumbling(q7::WINDOW_MS))
            .aggregate(q7::MaxOfMax);
        checksum.attach(highest.output, |r: &Record<Windowed<Window, q7::HighestBids>>| {
            let highest = &r.value;
            highest.value.bids.iter().fold(0u64, |sum, bid| {
                sum.wrapping_add(result_hash(&[
                    highest.key.start as u64,
                    bid.auction,
                    bid.bidder,
                    bid.price,
                ]))
            })
        });
        pipeline.build().expect("the nexmark-q7 bench pipeline is valid")
    }
}

/// The workloads `eddy bench` knows, in the order it runs them.
pub const WORKLOADS: [&str; 6] = [
    "pageviews",
    "nexmark-q5",
    "nexmark-q7",
    "dedup",
    "sessions-clicks",
    "enrich",
];

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

fn measure<W: Workload>(workload: &W, events: usize) -> WorkloadResult {
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

/// Runs `graph` in order (as `run_to_end`) with a checkpoint each time the sources have read
/// `CHECKPOINT_EVERY` more records, and measures the largest completed checkpoint.
fn state_size(graph: &JobGraph) -> StateSize {
    let mut largest = StateSize::default();
    let mut checkpoints = 0;
    run_with_checkpoints(graph, CHECKPOINT_EVERY, |store, checkpoint| {
        checkpoints += 1;
        let (bytes, entries) = checkpoint_size(store, checkpoint);
        if bytes > largest.checkpoint_bytes {
            largest.checkpoint_bytes = bytes;
            largest.keyed_entries = entries;
        }
        Continue::Yes
    });
    largest.checkpoints = checkpoints;
    largest.bytes_per_entry =
        (largest.keyed_entries > 0).then(|| largest.checkpoint_bytes as f64 / largest.keyed_entries as f64);
    largest
}

/// Whether [`run_with_checkpoints`] goes on after a completed checkpoint.
#[derive(PartialEq, Eq)]
enum Continue {
    Yes,
    No,
}

/// Runs a fresh job of `graph` with the batch driver ([`run_steps`]: 1,024 records per poll,
/// 1 ms of processing time per step), triggering a checkpoint each time the sources have read
/// `every` more records; `completed` sees each completed checkpoint in the store (then
/// discarded) and may stop the run.
fn run_with_checkpoints(
    graph: &JobGraph,
    every: u64,
    mut completed: impl FnMut(&MemorySnapshotStore, u64) -> Continue,
) {
    let mut job = Job::new(graph);
    let mut store = MemorySnapshotStore::new();
    let mut coordinator = CheckpointCoordinator::new(&store).expect("a memory store does not fail");
    let mut next_checkpoint_at = every;
    let config = BatchConfig {
        max_steps: 1_000_000_000,
        ..BatchConfig::default()
    };
    let mut after_step = |job: &mut Job| {
        let read = job.metrics().source_records;
        if read >= next_checkpoint_at && coordinator.pending().is_none() {
            coordinator.trigger(job);
            next_checkpoint_at = read + every;
        }
        match coordinator.collect(job, &mut store) {
            Some(CheckpointOutcome::Completed(checkpoint)) => {
                let go_on = completed(&store, checkpoint);
                job.notify_checkpoint_complete(checkpoint);
                store.discard(checkpoint).expect("a memory store does not fail");
                if go_on == Continue::No {
                    return ControlFlow::Break(());
                }
            }
            Some(failed) => panic!("a benchmark checkpoint failed: {failed:?}"),
            None => {}
        }
        ControlFlow::Continue(())
    };
    run_steps(&mut job, &mut InOrder, &config, &mut after_step).expect("a benchmark job finishes");
}

/// The stored bytes of `checkpoint`'s task snapshots, and the keyed state entries in them.
fn checkpoint_size(store: &MemorySnapshotStore, checkpoint: u64) -> (u64, u64) {
    let mut bytes = 0;
    let mut entries = 0;
    for key in store.keys() {
        if !matches!(key, ObjectKey::Task { checkpoint: c, .. } if c == checkpoint) {
            continue;
        }
        let object = store.get(key).expect("listed");
        bytes += object.len() as u64;
        let snapshot = TaskSnapshot::decode(&object).expect("a snapshot just written decodes");
        // Each key group holds a postcard sequence of entries: its length comes first.
        entries += snapshot.state.keyed.values().map(|group| varint(group)).sum::<u64>();
    }
    (bytes, entries)
}

/// The unsigned LEB128 varint at the start of `bytes` (postcard's sequence length).
fn varint(bytes: &[u8]) -> u64 {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().take(10).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("a keyed state group does not start with a sequence length")
}

/// The engine's watermarks for a benchmark: `bound` out of order, emitted every millisecond
/// of processing time, which in batch mode is every step (a poll of up to 1,024 records).
fn watermarks(bound_ms: i64) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(bound_ms).with_interval(1)
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

/// Runs of each variant: the median is reported, so that one run's page faults (the first
/// touches its memory) or a neighbour's burst do not decide a ratio.
const RUNS: usize = 5;

/// Times `run` [`RUNS`] times; reports the median run, the peak memory of all, and the
/// checksum (or every distinct one, if the runs disagree).
fn timed(variant: &'static str, events: usize, mut run: impl FnMut() -> u64) -> Measured {
    reset_peak_memory();
    let mut seconds = Vec::with_capacity(RUNS);
    let mut checksums: Vec<u64> = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let checksum = run();
        seconds.push(started.elapsed().as_secs_f64());
        if !checksums.contains(&checksum) {
            checksums.push(checksum);
        }
    }
    seconds.sort_by(f64::total_cmp);
    let median = seconds[RUNS / 2];
    let checksum = checksums
        .iter()
        .map(|c| format!("{c:016x}"))
        .collect::<Vec<_>>()
        .join(",");
    Measured {
        variant,
        events_per_s: events as f64 / median,
        seconds: median,
        checksum,
        peak_mib: peak_memory_mib(),
        checkpoints: None,
        shortcut: false,
    }
}

/// Resets the peak resident set size that [`peak_memory_mib`] reads (Linux; elsewhere a
/// no-op).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn print_workload(result: &WorkloadResult) {
    println!("{} ({} events)", result.workload, result.events);
    println!(
        "  {:<52} {:>14} {:>9} {:>10}  checksum",
        "variant", "events/s", "seconds", "peak MiB"
    );
    for m in &result.variants {
        let peak = m.peak_mib.map_or("-".to_string(), |p| format!("{p:.0}"));
        println!(
            "  {:<52} {:>14} {:>9.3} {:>10}  {}",
            m.variant,
            thousands(m.events_per_s),
            m.seconds,
            peak,
            m.checksum
        );
    }
    println!(
        "  simulator: {:.0} seeds/s ({} events, a checkpoint every {} records)",
        result.sim_seeds_per_s, SEED_EVENTS, CHECKPOINT_EVERY
    );
    for m in &result.variants {
        if let Some(checkpoints) = m.checkpoints {
            println!(
                "  {}: {} checkpoints completed per run",
                m.variant,
                thousands(checkpoints as f64)
            );
        }
    }
    let state = &result.state;
    println!(
        "  state: largest of {} checkpoints {} bytes, {} keyed entries, {} bytes per entry",
        state.checkpoints,
        thousands(state.checkpoint_bytes as f64),
        thousands(state.keyed_entries as f64),
        state.bytes_per_entry.map_or("-".to_string(), |b| format!("{b:.1}"))
    );
    if result.checksums_agree {
        println!("  checksums: all variants agree");
    } else {
        println!("  checksums: MISMATCH, the variants differ");
    }
    match result.shortcuts_agree {
        Some(true) => println!(
            "  shortcuts (at once): not like for like, left out of the ratios and the agreement; \
             their checksums equal the others' on this input (every id's clicks arrive in timestamp order)"
        ),
        Some(false) => println!(
            "  shortcuts (at once): not like for like, left out of the ratios and the agreement; \
             their checksums differ, as they may where input is out of order"
        ),
        None => {}
    }
}

fn print_ratios(results: &[WorkloadResult]) {
    println!();
    println!(
        "{:<16} {:>13} {:>14} {:>15} {:>15} {:>12} {:>14}",
        "workload",
        "engine/limit",
        "engine/timely",
        "sim/engine 1024",
        "sim/engine 1-32",
        "sim seeds/s",
        "state B/entry"
    );
    for r in results {
        let rate = |prefix: &str| {
            r.variants
                .iter()
                .find(|m| m.variant.starts_with(prefix))
                .map_or(0.0, |m| m.events_per_s)
        };
        let engine = rate("engine (batch)");
        let timely = r.engine_over_timely.map_or("-".to_string(), |x| format!("{x:.2}"));
        let per_entry = r.state.bytes_per_entry.map_or("-".to_string(), |b| format!("{b:.1}"));
        println!(
            "{:<16} {:>13.2} {:>14} {:>15.2} {:>15.2} {:>12.0} {:>14}",
            r.workload,
            r.engine_over_limit,
            timely,
            rate("engine (simulator, checkpoints, polls of") / engine,
            rate("engine (simulator, checkpoints, drawn") / engine,
            r.sim_seeds_per_s,
            per_entry
        );
    }
}

/// `12,345,678`: whole events per second with thousands separators.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A grouped bar chart of events/s: one group per workload, one bar per variant.
fn plot(results: &[WorkloadResult]) -> String {
    const COLOURS: [&str; 6] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
    let max = results
        .iter()
        .flat_map(|r| r.variants.iter().map(|m| m.events_per_s))
        .fold(1.0, f64::max);
    let (bar, gap, height, top, left) = (28.0, 30.0, 300.0, 40.0, 70.0);
    // The legend lists the variants of the workload with the most (shortcuts come last).
    let widest = results.iter().max_by_key(|r| r.variants.len());
    let variants = widest.map_or(0, |r| r.variants.len());
    let group = bar * variants as f64 + gap;
    let width = left + group * results.len() as f64 + 260.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{:.0}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        top + height + 60.0
    );
    svg +=
        &format!("<text x=\"{left}\" y=\"20\" font-size=\"14\">eddy bench: million events/s (single thread)</text>\n");
    for step in 0..=4 {
        let value = max * f64::from(step) / 4.0;
        let y = top + height - height * f64::from(step) / 4.0;
        svg += &format!(
            "<line x1=\"{left}\" x2=\"{:.0}\" y1=\"{y:.0}\" y2=\"{y:.0}\" stroke=\"#ddd\"/><text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{:.1}</text>\n",
            left + group * results.len() as f64,
            left - 6.0,
            y + 4.0,
            value / 1e6
        );
    }
    for (g, result) in results.iter().enumerate() {
        let x0 = left + gap / 2.0 + group * g as f64;
        for (v, m) in result.variants.iter().enumerate() {
            let h = height * m.events_per_s / max;
            svg += &format!(
                "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"{:.0}\" height=\"{h:.0}\" fill=\"{}\"/>\n",
                x0 + bar * v as f64,
                top + height - h,
                bar - 2.0,
                COLOURS[v % COLOURS.len()]
            );
        }
        svg += &format!(
            "<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"middle\">{}</text>\n",
            x0 + bar * variants as f64 / 2.0,
            top + height + 18.0,
            result.workload
        );
    }
    if let Some(widest) = widest {
        for (v, m) in widest.variants.iter().enumerate() {
            let y = top + 10.0 + 18.0 * v as f64;
            let x = left + group * results.len() as f64 + 20.0;
            svg += &format!(
                "<rect x=\"{x:.0}\" y=\"{:.0}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{y:.0}\">{}</text>\n",
                y - 10.0,
                COLOURS[v % COLOURS.len()],
                x + 18.0,
                m.variant
            );
        }
    }
    svg + "</svg>\n"
}

#[cfg(test)]
mod tests {
    use eddy::engine::JobMetrics;
    use rand::Rng;

    use super::*;

    /// The workload's input with every record displaced by up to `jitter_ms` of event time
    /// (arrival order by `ts + jitter`), and the checksums of the engine in batch mode and of
    /// the hand-written loop over it, and the engine's metrics.
    fn checksums<W: Workload>(workload: &W, events: usize, jitter_ms: i64) -> (u64, u64, JobMetrics) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let input = workload.generate(events, &mut rng);
        let mut keyed: Vec<(i64, usize, Record<W::Event>)> = input
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r.ts + rng.gen_range(0..=jitter_ms), i, r))
            .collect();
        keyed.sort_by_key(|(arrival, i, _)| (*arrival, *i));
        let input: Vec<Record<W::Event>> = keyed.into_iter().map(|(_, _, r)| r).collect();
        let checksum = Checksum::new(false);
        let summary = eddy::run_to_end(&workload.build(Log::round_robin(input.clone(), 1), &checksum)).unwrap();
        let direct = direct::hand_written::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY);
        (checksum.get(), direct, summary.metrics)
    }

    /// Within the bound nothing is late, but records arrive out of order: sessions merge in
    /// another order, clicks and profile changes cross, an id's duplicate comes first.
    #[test]
    fn hand_written_loops_agree_with_the_engine_on_out_of_order_input() {
        let (engine, direct, metrics) = checksums(&Dedup, 5_000, dedup::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "dedup");
        let (engine, direct, metrics) = checksums(&SessionsClicks, 5_000, sessions::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "sessions-clicks");
        let (engine, direct, metrics) = checksums(&Enrich, 5_000, enrich::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "enrich");
    }

    /// Far beyond the bound (for sessions, beyond a session's gap and allowed lateness):
    /// records are late, sessions fire late and changes are dropped, at the same watermarks
    /// in both.
    #[test]
    fn hand_written_loops_agree_with_the_engine_on_late_input() {
        let (engine, direct, metrics) = checksums(&Dedup, 5_000, 5 * dedup::OUT_OF_ORDERNESS_MS);
        assert_eq!(engine, direct, "dedup");
        assert!(metrics.late_records > 0, "dedup: {metrics:?}");
        let (engine, direct, metrics) = checksums(
            &SessionsClicks,
            5_000,
            2 * (sessions::GAP_MS + sessions::ALLOWED_LATENESS_MS),
        );
        assert_eq!(engine, direct, "sessions-clicks");
        assert!(
            metrics.late_records > 0 && metrics.events.late_firings > 0,
            "sessions-clicks: {metrics:?}"
        );
        let (engine, direct, metrics) = checksums(&Enrich, 5_000, 5 * enrich::OUT_OF_ORDERNESS_MS);
        assert_eq!(engine, direct, "enrich");
        assert!(metrics.late_records > 0, "enrich: {metrics:?}");
    }

    /// Clicks exactly a gap apart touch: one session (rare in the generated input).
    #[test]
    fn touching_sessions_merge_in_both() {
        let click = |ts: i64| Record::new(ts, sessions::UserClick { user: 1, page: 0 });
        let input = vec![click(0), click(sessions::GAP_MS), click(2 * sessions::GAP_MS + 1)];
        let checksum = Checksum::new(false);
        eddy::run_to_end(&SessionsClicks.build(Log::round_robin(input.clone(), 1), &checksum)).unwrap();
        let direct = direct::hand_written::<direct::SessionClicks>(&input, SessionsClicks.bound_ms(), WATERMARK_EVERY);
        let gap = sessions::GAP_MS as u64;
        let expected = result_hash(&[1, 0, 2 * gap, 2]).wrapping_add(result_hash(&[1, 2 * gap + 1, 3 * gap + 1, 1]));
        assert_eq!((checksum.get(), direct), (expected, expected));
    }

    /// The shortcut is not like for like: out of order, it keeps a later duplicate that
    /// arrived first.
    #[test]
    fn the_at_once_dedup_differs_on_out_of_order_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut input = Dedup.generate(5_000, &mut rng);
        // Swap neighbours that are a duplicate pair of one id, later first.
        let swaps = (1..input.len())
            .filter(|&i| input[i - 1].value.event_id == input[i].value.event_id && input[i - 1].ts < input[i].ts)
            .collect::<Vec<_>>();
        assert!(!swaps.is_empty(), "the input has close duplicates");
        for i in swaps {
            input.swap(i - 1, i);
        }
        let bound = Dedup.bound_ms();
        let event_time = direct::hand_written::<direct::FirstClicks>(&input, bound, WATERMARK_EVERY);
        let at_once = direct::hand_written::<direct::FirstClicksAtOnce>(&input, bound, WATERMARK_EVERY);
        let checksum = Checksum::new(false);
        eddy::run_to_end(&Dedup.build(Log::round_robin(input, 1), &checksum)).unwrap();
        assert_eq!(checksum.get(), event_time);
        assert_ne!(checksum.get(), at_once);
    }
}
