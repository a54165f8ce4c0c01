//! The differential oracle: any pipeline checked against its own batch run.
//!
//! The reference of a simulated run is the same pipeline, built again and run once by the
//! batch driver without faults, over the same input minus exactly the records that the
//! checked run's committed execution sent to each operator's late output (the simulator
//! taps every late port, wired or not, and rolls back the late records of executions a
//! restore discarded). The reference drops those records at the same operator and input,
//! and its sources emit no watermark before the end, so nothing else is late in it. Records a
//! window operator accepted behind the watermark (a sliding-window record skipped by its late
//! windows, a session record that may touch a session already cleared) are held back instead
//! and replayed last, in the checked run's order, as of the watermark they arrived at: the
//! reference skips the same windows and clears the same sessions first. The
//! committed outputs must then equal the reference's: upsert tables entry by entry, append
//! streams as multisets. Around that: conservation (every dropped record reached its
//! operator in the reference), lateness soundness, bounded state against the reference's
//! final state, and a refusal of processing-time timers, whose results this cannot judge
//! (docs/testing.md).
//!
//! [`Differential`] is a user's pipeline as a [`Workload`] with no hand-written reference:
//! an input generator, a pipeline closure that registers its [`Outputs`], and `check()`.

use std::sync::Arc;

use eddy_engine::testkit::{drop_inputs, InputDrops, LateRecord};
use eddy_engine::{
    run_batch, BatchConfig, Data, InOrder, Job, JobGraph, Log, Pipeline, Record, Stream, WatermarkStrategy,
};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;

use crate::check::{check, CheckConfig};
use crate::faults::Profile;
use crate::output::{compare_outputs, digest_of, first_difference, Committed, OutputTable};
use crate::outputs::Outputs;
use crate::report::Violation;
use crate::scenario::{Checked, InputTree, Recorded, Workload};
use eddy_engine::lines::EventSource;

/// Checks a simulated run of `workload` against its batch reference: `log` is the whole input
/// log, `outputs` the run's committed outputs, `late` the committed execution's late records,
/// `state_entries` the state its job held at the end. With `twice`, the reference is built
/// and run a second time, and a difference between the two is a `determinism` failure.
pub(crate) fn judge<W: Workload>(
    workload: &W,
    log: &[Record<W::Event>],
    outputs: &[OutputTable],
    late: &[LateRecord],
    state_entries: usize,
    twice: bool,
) -> Result<(), Violation> {
    let Reference {
        graph,
        job,
        drops,
        outputs: expected,
    } = reference(workload, log, late)?;
    let operator = |node: usize| graph.nodes[node].name.clone();
    lateness_soundness(
        log,
        workload.partitions(),
        workload.out_of_orderness_ms(),
        late,
        &operator,
    )?;
    if let Some(task) = job.processing_time_tasks().first() {
        return Err(Violation::new(
            "unsupported",
            format!(
                "`{task}` registers processing-time timers: its results depend on when processing time passes, \
                 not only on the records it accepted, so a batch run cannot be its reference (docs/testing.md)"
            ),
        ));
    }
    if let Some((node, input, ts, value, n)) = drops.unmatched().into_iter().next() {
        let record = late
            .iter()
            .find(|r| (r.node, r.input, r.ts, &r.value) == (node, input, ts, &value));
        let what = match record {
            Some(r) if r.behind => "was accepted behind the watermark by",
            _ => "went to the late output of",
        };
        let record = record.map_or_else(|| format!("a record at {ts}"), |r| r.debug.clone());
        return Err(Violation::new(
            "conservation",
            format!(
                "{record} {what} `{}` {n} more time(s) than it reached that operator \
                 in the batch run of the same input",
                operator(node)
            ),
        ));
    }
    if twice {
        let again = reference(workload, log, late)?.outputs;
        reference_determinism(&expected, &again)?;
    }
    compare_outputs(&expected, outputs)?;
    let expected_state = job.state_entries();
    if state_entries > expected_state {
        return Err(Violation::new(
            "bounded-state",
            format!(
                "{state_entries} state entries are left after the end of input, \
                 where the batch run of the same records keeps {expected_state}"
            ),
        ));
    }
    Ok(())
}

/// The batch reference of a run: its graph, its job after the end, the records it dropped
/// and its outputs.
struct Reference {
    graph: JobGraph,
    job: Job,
    drops: InputDrops,
    outputs: Vec<OutputTable>,
}

/// Builds the pipeline again and runs it once by the batch driver over `log`, dropping the
/// `late` records at their operators.
fn reference<W: Workload>(workload: &W, log: &[Record<W::Event>], late: &[LateRecord]) -> Result<Reference, Violation> {
    let mut outputs = Outputs::default();
    let graph = workload.build(
        EventSource::Log(Log::round_robin(log.to_vec(), workload.partitions())),
        &mut outputs,
    );
    let mut job = Job::new(&graph);
    let drops = InputDrops::new(late);
    drop_inputs(&mut job, &drops);
    // No watermark before the end (processing time stands still): nothing is late in the
    // reference but what it drops.
    let config = BatchConfig {
        step_ms: 0,
        ..BatchConfig::default()
    };
    run_batch(&mut job, &mut InOrder, &config)
        .map_err(|e| Violation::new("reference", format!("the batch run of the same input failed: {e}")))?;
    let outputs = workload.judged_outputs(log, &outputs);
    Ok(Reference {
        graph,
        job,
        drops,
        outputs,
    })
}

/// Two batch runs of the same pipeline over the same records must commit the same outputs
/// in the same order: where they do not, the pipeline itself is not deterministic (a wall
/// clock, a `HashMap`'s order), and no run of it can be judged.
fn reference_determinism(first: &[OutputTable], second: &[OutputTable]) -> Result<(), Violation> {
    let nondeterministic = |what: String| {
        Err(Violation::new(
            "determinism",
            format!("two batch runs of the pipeline over the same input differ: {what}"),
        ))
    };
    if let Some(what) = first_difference(first, second, ["the first committed", "the second"]) {
        return nondeterministic(what);
    }
    if let Some((a, b)) = first.iter().zip(second).find(|(a, b)| a.digest != b.digest) {
        return nondeterministic(format!(
            "output `{}` committed the same records in another order (digest {:016x}, then {:016x})",
            a.name, a.digest, b.digest
        ));
    }
    Ok(())
}

/// A record is late only at or below its operator's watermark, and no watermark exceeds
/// what the input allows: the largest timestamp of a log partition, minus the bound, minus 1.
fn lateness_soundness<E>(
    log: &[Record<E>],
    partitions: usize,
    bound_ms: i64,
    late: &[LateRecord],
    operator: &dyn Fn(usize) -> String,
) -> Result<(), Violation> {
    let highest = (0..partitions)
        .filter_map(|p| log.iter().skip(p).step_by(partitions).map(|r| r.ts).max())
        .max()
        .map(|ts| ts.saturating_sub(bound_ms).saturating_sub(1));
    // Records accepted behind the watermark are not late: the reference replays them.
    for record in late.iter().filter(|r| !r.behind) {
        if record.ts > record.watermark {
            return Err(Violation::new(
                "lateness",
                format!(
                    "{} went to the late output of `{}` at watermark {}: only a record at or below the watermark can be late",
                    record.debug,
                    operator(record.node),
                    record.watermark
                ),
            ));
        }
        if highest.is_none_or(|highest| record.watermark > highest) {
            return Err(Violation::new(
                "lateness",
                format!(
                    "{} went to the late output of `{}` at watermark {}, above any watermark the input allows ({})",
                    record.debug,
                    operator(record.node),
                    record.watermark,
                    highest.map_or("none".into(), |h| h.to_string())
                ),
            ));
        }
    }
    Ok(())
}

type Generate<E> = Box<dyn Fn(&mut ChaCha8Rng, usize) -> Vec<Record<E>> + Send + Sync>;
type Build<E> = Box<dyn Fn(&Pipeline, Stream<E>, &mut Outputs) + Send + Sync>;
type DrawTree<E> = Arc<dyn Fn(&mut ChaCha8Rng) -> InputTree<E> + Send + Sync>;
type Simpler<E> = Box<dyn Fn(&E) -> Vec<E> + Send + Sync>;
type Property<E> = Box<dyn Fn(&[Record<E>], &Committed) -> Result<(), String> + Send + Sync>;

/// A user's pipeline, checked against its own batch run under the simulator's faults.
///
/// ```
/// use eddy_sim::differential::Differential;
/// use eddy_engine::{Count, Record, Windowed, WindowAssigner};
/// use rand::Rng;
///
/// Differential::new(
///     "clicks-per-minute",
///     |rng, events| (0..events as i64).map(|i| Record::new(i * 300, rng.gen_range(0..5u32))).collect(),
///     |_pipeline, clicks, outputs| {
///         let counts = clicks.key_by(|user: &u32| *user).window(WindowAssigner::tumbling(60_000)).aggregate(Count);
///         outputs.upsert("counts", counts.output, |w: &Windowed<u32, u64>| (w.key, w.window));
///     },
/// )
/// .seeds(4)
/// .check();
/// ```
pub struct Differential<E> {
    name: &'static str,
    description: &'static str,
    generate: Generate<E>,
    build: Build<E>,
    watermarks: WatermarkStrategy,
    parallelism: usize,
    partitions: usize,
    events: usize,
    config: CheckConfig,
    properties: Vec<(&'static str, Property<E>)>,
    input_tree: Option<DrawTree<E>>,
    simpler: Option<Simpler<E>>,
}

impl<E: Data> Differential<E> {
    /// `generate(rng, events)` draws a run's input from the seed's input stream (any order:
    /// it is sorted by timestamp, and input faults then disorder it); `build` builds the
    /// pipeline on `pipeline` from the source stream and registers the outputs to check.
    pub fn new(
        name: &'static str,
        generate: impl Fn(&mut ChaCha8Rng, usize) -> Vec<Record<E>> + Send + Sync + 'static,
        build: impl Fn(&Pipeline, Stream<E>, &mut Outputs) + Send + Sync + 'static,
    ) -> Self {
        Differential {
            name,
            description: "a pipeline checked against its own batch run",
            generate: Box::new(generate),
            build: Box::new(build),
            watermarks: WatermarkStrategy::bounded_out_of_orderness(1_000).with_interval(50),
            parallelism: 2,
            partitions: 2,
            events: 100,
            config: CheckConfig {
                check_determinism: true,
                ..CheckConfig::default()
            },
            properties: Vec::new(),
            input_tree: None,
            simpler: None,
        }
    }

    /// The input drawn from a proptest strategy, seeded by the run's seed. A failure shrinks
    /// through the strategy (its value tree) before records and faults are dropped, so that
    /// a shrunk input is one the strategy can make.
    pub fn from_strategy<S>(
        name: &'static str,
        strategy: S,
        build: impl Fn(&Pipeline, Stream<E>, &mut Outputs) + Send + Sync + 'static,
    ) -> Self
    where
        S: Strategy<Value = Vec<Record<E>>> + Send + Sync + 'static,
        S::Tree: 'static,
    {
        let tree = Arc::new(move |rng: &mut ChaCha8Rng| -> InputTree<E> {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let mut runner =
                TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
            Box::new(
                strategy
                    .new_tree(&mut runner)
                    .expect("the input strategy draws a value"),
            )
        });
        let draw = Arc::clone(&tree);
        let mut differential = Differential::new(name, move |rng, _events| draw(rng).current(), build);
        differential.input_tree = Some(tree);
        differential
    }

    /// Simpler events to try in place of each input event while shrinking (without it, and
    /// without a strategy, a failure shrinks by dropping records and faults only: the
    /// shrinker never makes a value the generator could not).
    pub fn shrink_values(mut self, simpler: impl Fn(&E) -> Vec<E> + Send + Sync + 'static) -> Self {
        self.simpler = Some(Box::new(simpler));
        self
    }

    /// The source's watermark strategy (default: 1 s out of orderness, every 50 ms).
    pub fn watermarks(mut self, watermarks: WatermarkStrategy) -> Self {
        self.watermarks = watermarks;
        self
    }

    /// What `eddy list` says of it (default: "a pipeline checked against its own batch run").
    pub fn description(mut self, description: &'static str) -> Self {
        self.description = description;
        self
    }

    /// The pipeline's default parallelism (default 2).
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Partitions of the input log (default 2).
    pub fn partitions(mut self, partitions: usize) -> Self {
        self.partitions = partitions.max(1);
        self
    }

    /// Events per run (default 100; a strategy decides for itself).
    pub fn events(mut self, events: usize) -> Self {
        self.events = events;
        self
    }

    /// Seeds per `check` (default 32; `EDDY_SEEDS=N` overrides, `EDDY_SEED=S` runs one).
    pub fn seeds(mut self, seeds: u64) -> Self {
        self.config.seeds = seeds;
        self
    }

    /// The fault profile (default swarm: each seed turns on a random half of the kinds).
    pub fn profile(mut self, profile: Profile) -> Self {
        self.config.profile = profile;
        self
    }

    /// Everything else `check` takes (start seed, determinism, shrink time, regressions).
    pub fn config(mut self, config: CheckConfig) -> Self {
        self.config = config;
        self
    }

    /// States what must hold of every run: `holds(input, committed)` gets the input log the
    /// run read (duplicates and disorder included) and what its outputs committed, and
    /// returns why it does not hold. It is checked on every seed after the batch reference,
    /// and a violation (property `name`) shrinks like any other. This is what catches a
    /// mistake the batch run shares (a wrong threshold of the pipeline's own): state
    /// conservation (nothing counted twice or lost) or a bound (docs/guide.md).
    pub fn property(
        mut self,
        name: &'static str,
        holds: impl Fn(&[Record<E>], &Committed) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.properties.push((name, Box::new(holds)));
        self
    }

    /// Runs the saved regression cases, then the seeds; a failure shrinks, is saved under
    /// `eddy-regressions/` beside the calling test, and panics with the case and how to
    /// replay it.
    #[track_caller]
    pub fn check(&self) {
        check(self, self.config.clone());
    }
}

impl<E: Data> Workload for Differential<E> {
    type Event = E;

    fn name(&self) -> &'static str {
        self.name
    }

    fn description(&self) -> &'static str {
        self.description
    }

    fn out_of_orderness_ms(&self) -> i64 {
        self.watermarks.out_of_orderness_ms
    }

    fn default_events(&self) -> usize {
        self.events
    }

    fn partitions(&self) -> usize {
        self.partitions
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<E>> {
        let mut input = (self.generate)(rng, events);
        input.sort_by_key(|r| r.ts);
        input
    }

    fn build(&self, source: EventSource<E>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(self.parallelism);
        let source = source.stream(&pipeline, "input", self.watermarks);
        (self.build)(&pipeline, source, outputs);
        pipeline
            .build()
            .unwrap_or_else(|e| panic!("differential check `{}`: the pipeline does not build: {e}", self.name))
    }

    fn has_reference(&self) -> bool {
        false
    }

    fn check(&self, input: &[Record<E>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let tables = outputs.tables();
        let committed = Committed::new(tables);
        let violation = self.properties.iter().find_map(|(name, holds)| {
            holds(input, &committed)
                .err()
                .map(|why| Violation::new(name, format!("property `{name}` does not hold: {why}")))
        });
        Checked {
            events_out: tables.iter().map(|t| t.len() as u64).sum(),
            late: 0,
            digest: digest_of(&tables.iter().map(|t| t.digest.to_string()).collect::<Vec<_>>()),
            violation,
        }
    }

    fn property_names(&self) -> Vec<&'static str> {
        self.properties.iter().map(|(name, _)| *name).collect()
    }

    fn input_tree(&self, _events: usize, rng: &mut ChaCha8Rng) -> Option<InputTree<E>> {
        self.input_tree.as_ref().map(|tree| tree(rng))
    }

    fn shrinks_values(&self) -> bool {
        false
    }

    fn simpler_values(&self, event: &E) -> Vec<E> {
        self.simpler.as_ref().map_or_else(Vec::new, |simpler| simpler(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn late(ts: i64, watermark: i64) -> LateRecord {
        LateRecord {
            node: 1,
            input: 0,
            ts,
            value: Vec::new(),
            debug: format!("a record at {ts}"),
            watermark,
            behind: false,
            after_checkpoint: 0,
        }
    }

    /// Lateness soundness at its own boundaries: a late record at its watermark passes, a
    /// millisecond above fails; a watermark at the highest the input allows passes, a
    /// millisecond above fails.
    #[test]
    fn lateness_soundness_fails_one_millisecond_past_each_boundary() {
        // Two partitions, bound 100: partition 0 reads 1 000, partition 1 reads 2 000, so no
        // watermark exceeds 2 000 - 100 - 1 = 1 899.
        let log = vec![Record::new(1_000, ()), Record::new(2_000, ())];
        let judge = |record: LateRecord| lateness_soundness(&log, 2, 100, &[record], &|n| format!("node {n}"));
        assert!(judge(late(500, 500)).is_ok());
        assert!(judge(late(501, 500)).is_err());
        assert!(judge(late(500, 1_899)).is_ok());
        assert!(judge(late(500, 1_900)).is_err());
    }

    /// Two batch runs that differ in a row, or only in their order, are a determinism failure.
    #[test]
    fn two_batch_runs_that_differ_are_a_determinism_failure() {
        let a = [OutputTable::upsert("counts", [(1u8, 2u64)], |r| r.0)];
        let b = [OutputTable::upsert("counts", [(1u8, 3u64)], |r| r.0)];
        let reordered = [OutputTable::append("seen", [1u8, 2])];
        let original = [OutputTable::append("seen", [2u8, 1])];
        assert!(reference_determinism(&a, &a).is_ok());
        let differs = reference_determinism(&a, &b).unwrap_err();
        assert_eq!(differs.property, "determinism");
        assert!(
            differs.message.contains("the first committed [1,2], the second [1,3]"),
            "{}",
            differs.message
        );
        let order = reference_determinism(&original, &reordered).unwrap_err();
        assert!(order.message.contains("in another order"), "{}", order.message);
    }
}
