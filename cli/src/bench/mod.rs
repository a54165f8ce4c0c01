//! `eddy bench`: what eddy costs, side by side with the practical limit and a peer engine.
//!
//! For each workload, on one pre-generated input (generation is not timed), single-threaded:
//! the engine in batch mode at parallelism 1; the same pipeline under the simulator with a
//! checkpoint every 1,000 records and no faults; a hand-written loop computing the same
//! results ([`direct`]); and timely dataflow with one worker ([`peer`], behind the `bench`
//! feature). Every variant's result checksum must agree. docs/performance.md has a table.

mod direct;
#[cfg(feature = "bench")]
mod peer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use eddy::engine::Committer;
use eddy::engine::TransactionId;
use eddy::scenarios::nexmark::{self, q5, q7};
use eddy::scenarios::{dedup, pageviews};
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
    /// Workload to measure (repeatable): pageviews, nexmark-q5, nexmark-q7, dedup; all if none.
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
}

/// Records per source watermark in the hand-written and timely variants; in batch mode the
/// engine reads as many per step, and emits a watermark every step (see [`watermarks`]).
const WATERMARK_EVERY: usize = 1_024;
/// The simulator variant checkpoints each time the sources read this many more records.
const CHECKPOINT_EVERY: u64 = 1_000;
/// Events per seed in the seeds/s measurement.
const SEED_EVENTS: usize = 10_000;

/// One variant's measurement.
#[derive(Clone, Debug, Serialize)]
pub struct Measured {
    pub variant: &'static str,
    pub events_per_s: f64,
    pub seconds: f64,
    pub checksum: String,
    /// Peak resident memory while the variant ran (VmHWM, reset before it), in MiB.
    pub peak_mib: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkloadResult {
    pub workload: &'static str,
    pub events: usize,
    pub variants: Vec<Measured>,
    /// Simulated 10,000-event runs per second (checkpoints every 1,000 records, no faults).
    pub sim_seeds_per_s: f64,
    pub engine_over_limit: f64,
    pub engine_over_timely: Option<f64>,
    pub checksums_agree: bool,
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
pub const WORKLOADS: [&str; 4] = ["pageviews", "nexmark-q5", "nexmark-q7", "dedup"];

pub fn run(args: &BenchArgs) -> Result<Vec<WorkloadResult>, String> {
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
    Ok(results)
}

fn measure<W: Workload>(workload: &W, events: usize) -> WorkloadResult {
    let input = workload.generate(events, &mut ChaCha8Rng::seed_from_u64(1));
    let mut variants = Vec::new();

    let checksum = Checksum::new(false);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    variants.push(timed("engine (batch)", events, || {
        eddy::run_to_end(&graph).expect("a benchmark run ends");
        checksum.get()
    }));

    let checksum = Checksum::new(true);
    let graph = workload.build(Log::round_robin(input.clone(), 1), &checksum);
    variants.push(timed("engine (simulator, checkpoints)", events, || {
        if let Some(violation) = simulate(&graph, &sim_options(0, events)).violation {
            eprintln!("{}: the simulated run failed: {violation:?}", workload.name());
        }
        checksum.get()
    }));

    variants.push(timed("hand-written loop", events, || {
        direct::hand_written::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    #[cfg(feature = "bench")]
    variants.push(timed("timely (1 worker)", events, || {
        peer::timely::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY)
    }));

    let sim_seeds_per_s = seeds_per_second(workload, &input);
    let rate = |variant: &str| variants.iter().find(|m| m.variant == variant).map(|m| m.events_per_s);
    let engine = rate("engine (batch)").expect("measured");
    let checksums_agree = variants.iter().all(|m| m.checksum == variants[0].checksum);
    WorkloadResult {
        workload: workload.name(),
        events,
        engine_over_limit: engine / rate("hand-written loop").expect("measured"),
        engine_over_timely: rate("timely (1 worker)").map(|timely| engine / timely),
        variants,
        sim_seeds_per_s,
        checksums_agree,
    }
}

/// The engine's watermarks for a benchmark: `bound` out of order, emitted every millisecond
/// of processing time, which in batch mode is every step (a poll of up to 1,024 records).
fn watermarks(bound_ms: i64) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(bound_ms).with_interval(1)
}

fn sim_options(seed: u64, events: usize) -> SimOptions {
    SimOptions {
        seed,
        faults: FaultSet::of(&[]),
        fault_schedule: None,
        checkpoint_schedule: None,
        checkpoint_every_records: Some(CHECKPOINT_EVERY),
        poll_max: None,
        keep_trace: false,
        tap_late: false,
        max_steps: 10_000 + 200 * events as u64,
        database: None,
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
        let _ = simulate(&graph, &sim_options(seeds, input.len()));
        spent += started.elapsed().as_secs_f64();
        seeds += 1;
    }
    seeds as f64 / spent
}

fn timed(variant: &'static str, events: usize, run: impl FnOnce() -> u64) -> Measured {
    reset_peak_memory();
    let started = Instant::now();
    let checksum = run();
    let seconds = started.elapsed().as_secs_f64();
    Measured {
        variant,
        events_per_s: events as f64 / seconds,
        seconds,
        checksum: format!("{checksum:016x}"),
        peak_mib: peak_memory_mib(),
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
        "  {:<34} {:>14} {:>9} {:>10}  checksum",
        "variant", "events/s", "seconds", "peak MiB"
    );
    for m in &result.variants {
        let peak = m.peak_mib.map_or("-".to_string(), |p| format!("{p:.0}"));
        println!(
            "  {:<34} {:>14} {:>9.3} {:>10}  {}",
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
    if result.checksums_agree {
        println!("  checksums: all variants agree");
    } else {
        println!("  checksums: MISMATCH, the variants differ");
    }
}

fn print_ratios(results: &[WorkloadResult]) {
    println!();
    println!(
        "{:<12} {:>14} {:>14} {:>12} {:>13}",
        "workload", "engine/limit", "engine/timely", "sim ev/s", "sim seeds/s"
    );
    for r in results {
        let sim = r
            .variants
            .iter()
            .find(|m| m.variant.starts_with("engine (simulator"))
            .map_or(0.0, |m| m.events_per_s);
        let timely = r.engine_over_timely.map_or("-".to_string(), |x| format!("{x:.2}"));
        println!(
            "{:<12} {:>14.2} {:>14} {:>12} {:>13.0}",
            r.workload,
            r.engine_over_limit,
            timely,
            thousands(sim),
            r.sim_seeds_per_s
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
    const COLOURS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
    let max = results
        .iter()
        .flat_map(|r| r.variants.iter().map(|m| m.events_per_s))
        .fold(1.0, f64::max);
    let (bar, gap, height, top, left) = (28.0, 30.0, 300.0, 40.0, 70.0);
    let variants = results.first().map_or(0, |r| r.variants.len());
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
    if let Some(first) = results.first() {
        for (v, m) in first.variants.iter().enumerate() {
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
