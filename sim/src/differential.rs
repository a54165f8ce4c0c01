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

use std::collections::BTreeMap;
use std::hash::Hasher;

use eddy_engine::{
    run_batch, BatchConfig, CommitLog, Committer, Data, InOrder, InputDrops, Job, JobGraph, Key, LateRecord, Log,
    Pipeline, Record, Row, RowKind, Stream, WatermarkStrategy, Window, Windowed,
};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rand::RngCore;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::check::{check, CheckConfig};
use crate::faults::Profile;
use crate::report::Violation;
use crate::scenario::{Checked, Recorded, Workload};

/// One output's committed contents, in a form any two runs of a pipeline compare by: each
/// key and value as its JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTable {
    pub name: String,
    pub rows: Rows,
    /// A hash of the records in the order they were committed (part of the trace hash, so
    /// that an output order that differs between two runs of a seed fails determinism).
    pub digest: u64,
    /// What is wrong with the output in itself (a changelog that retracts a row it never
    /// had), whatever the reference says.
    pub problem: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rows {
    /// The last committed value per key.
    Upsert(BTreeMap<String, String>),
    /// Every committed record, with its multiplicity.
    Append(BTreeMap<String, usize>),
}

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("outputs serialise to JSON")
}

fn digest_of<'a>(items: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    for item in items {
        hasher.write(item.as_bytes());
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

impl OutputTable {
    /// `values` in commit order as an upsert table: the last value per `key` wins.
    pub fn upsert<T: Serialize, K: Serialize>(
        name: &str,
        values: impl IntoIterator<Item = T>,
        key: impl Fn(&T) -> K,
    ) -> Self {
        let mut table = BTreeMap::new();
        let mut order = Vec::new();
        for value in values {
            let (k, v) = (json(&key(&value)), json(&value));
            order.push(v.clone());
            table.insert(k, v);
        }
        OutputTable {
            name: name.to_string(),
            digest: digest_of(&order),
            rows: Rows::Upsert(table),
            problem: None,
        }
    }

    /// Session window results in commit order: an upsert table by key and window, where a
    /// session that a merged session of the same key covers is superseded (a record within
    /// the allowed lateness merged it into a bigger one; like Flink, the engine retracts
    /// nothing, so the smaller session's result stays committed).
    pub fn sessions<K: Serialize + Ord + Clone, V: Serialize>(
        name: &str,
        values: impl IntoIterator<Item = Windowed<K, V>>,
    ) -> Self {
        let values: Vec<Windowed<K, V>> = values.into_iter().collect();
        let mut windows: BTreeMap<&K, Vec<Window>> = BTreeMap::new();
        for w in &values {
            windows.entry(&w.key).or_default().push(w.window);
        }
        let superseded = |w: &Windowed<K, V>| {
            windows[&w.key]
                .iter()
                .any(|o| o.start <= w.window.start && w.window.end <= o.end && *o != w.window)
        };
        let live: Vec<&Windowed<K, V>> = values.iter().filter(|w| !superseded(w)).collect();
        let mut table = Self::upsert(name, live, |w| (&w.key, w.window));
        table.digest = Self::append(name, &values).digest;
        table
    }

    /// `items` in commit order as a multiset.
    pub fn append<T: Serialize>(name: &str, items: impl IntoIterator<Item = T>) -> Self {
        let order: Vec<String> = items.into_iter().map(|item| json(&item)).collect();
        let mut table = BTreeMap::new();
        for item in &order {
            *table.entry(item.clone()).or_default() += 1;
        }
        OutputTable {
            name: name.to_string(),
            digest: digest_of(&order),
            rows: Rows::Append(table),
            problem: None,
        }
    }

    /// A committed changelog materialised into the table it describes: each `+I`/`+U` adds
    /// its row, each `-U`/`-D` removes one (the rows as a multiset). A retraction of a row
    /// the table does not hold, or an update-before without its update-after in the same
    /// transaction, is a [`problem`](Self::problem). `transactions` in commit order.
    pub fn changelog<T: Serialize>(name: &str, transactions: impl IntoIterator<Item = Vec<Row<T>>>) -> Self {
        Self::changelog_of_texts(
            name,
            transactions
                .into_iter()
                .map(|rows| rows.iter().map(|r| (r.kind, json(&r.row))).collect()),
        )
    }

    /// A changelog in its line form, `+I ROW` (the row kind, a space, the row as JSON: what a
    /// live run of a changelog scenario writes, [`changelog_line`]), materialised as
    /// [`OutputTable::changelog`] does, all lines as one transaction. A line that is not in
    /// that form is an error naming its index.
    pub fn changelog_lines(name: &str, lines: &[String]) -> Result<Self, (usize, String)> {
        let rows = lines
            .iter()
            .enumerate()
            .map(|(index, line)| {
                let (kind, row) = line.split_once(' ').unwrap_or((line, ""));
                let kind = RowKind::from_short(kind)
                    .ok_or_else(|| (index, format!("`{kind}` is not a row kind (+I, -U, +U or -D)")))?;
                let row: serde_json::Value =
                    serde_json::from_str(row).map_err(|e| (index, format!("the row is not JSON: {e}")))?;
                Ok((kind, json(&row)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::changelog_of_texts(name, [rows]))
    }

    fn changelog_of_texts(name: &str, transactions: impl IntoIterator<Item = Vec<(RowKind, String)>>) -> Self {
        let mut table: BTreeMap<String, usize> = BTreeMap::new();
        let mut order = Vec::new();
        let mut problem = None;
        for (index, transaction) in transactions.into_iter().enumerate() {
            let mut open_updates = 0usize;
            for (kind, text) in transaction {
                let kind = &kind;
                order.push(format!("{}{text}", kind.short()));
                match kind {
                    RowKind::Insert | RowKind::UpdateAfter => {
                        if *kind == RowKind::UpdateAfter {
                            open_updates = open_updates.saturating_sub(1);
                        }
                        *table.entry(text).or_default() += 1;
                    }
                    RowKind::UpdateBefore | RowKind::Delete => {
                        if *kind == RowKind::UpdateBefore {
                            open_updates += 1;
                        }
                        match table.get_mut(&text) {
                            Some(n) => {
                                *n -= 1;
                                if *n == 0 {
                                    table.remove(&text);
                                }
                            }
                            None => {
                                problem.get_or_insert_with(|| {
                                    format!(
                                        "output `{name}`: {} {text} retracts a row the table does not hold (its count would go negative)",
                                        kind.short()
                                    )
                                });
                            }
                        }
                    }
                }
            }
            if open_updates > 0 {
                problem.get_or_insert_with(|| {
                    format!(
                        "output `{name}`: committed transaction {index} has an update-before without its update-after"
                    )
                });
            }
        }
        OutputTable {
            name: name.to_string(),
            digest: digest_of(&order),
            rows: Rows::Append(table),
            problem,
        }
    }

    /// [`OutputTable::changelog`] of what `log` committed, transaction by transaction.
    pub fn committed_changelog<T: Data + PartialEq>(name: &str, log: &CommitLog<Row<T>>) -> Self {
        Self::changelog(
            name,
            log.by_transaction()
                .into_iter()
                .map(|(_, records)| records.into_iter().map(|r| r.value).collect()),
        )
    }

    /// The table's rows as JSON lines, each as often as it holds it (what `eddy run` prints
    /// of a changelog output).
    pub fn lines(&self) -> Vec<String> {
        match &self.rows {
            Rows::Append(rows) => rows
                .iter()
                .flat_map(|(row, n)| std::iter::repeat_n(row.clone(), *n))
                .collect(),
            Rows::Upsert(rows) => rows.values().cloned().collect(),
        }
    }

    /// Rows in the table (an append stream counts each occurrence).
    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Upsert(table) => table.len(),
            Rows::Append(table) => table.values().sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A changelog row as one line, `+U ["eu",[1200,3]]`: what a live run of a changelog
/// scenario appends to its output ([`OutputTable::changelog_lines`] materialises them).
pub fn changelog_line<T: Serialize>(row: &Row<T>) -> String {
    format!("{} {}", row.kind.short(), json(&row.row))
}

/// The first difference between the reference's outputs and the committed ones.
pub fn compare_outputs(expected: &[OutputTable], committed: &[OutputTable]) -> Result<(), Violation> {
    let differs = |message: String| Err(Violation::new("exactly-once", message));
    for table in committed.iter().chain(expected) {
        if let Some(problem) = &table.problem {
            return Err(Violation::new("changelog", problem.clone()));
        }
    }
    for (want, got) in expected.iter().zip(committed) {
        let name = &want.name;
        match (&want.rows, &got.rows) {
            (Rows::Upsert(want), Rows::Upsert(got)) => {
                for (key, value) in want {
                    match got.get(key) {
                        None => {
                            return differs(format!(
                                "output `{name}`, key {key}: expected {value}, nothing committed"
                            ))
                        }
                        Some(other) if other != value => {
                            return differs(format!(
                                "output `{name}`, key {key}: expected {value}, committed {other}"
                            ))
                        }
                        Some(_) => {}
                    }
                }
                if let Some((key, value)) = got.iter().find(|(key, _)| !want.contains_key(*key)) {
                    return differs(format!(
                        "output `{name}`, key {key}: committed {value}, expected nothing"
                    ));
                }
            }
            (Rows::Append(want), Rows::Append(got)) => {
                let keys: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
                for record in keys {
                    let (w, g) = (want.get(record).unwrap_or(&0), got.get(record).unwrap_or(&0));
                    if w != g {
                        return differs(format!(
                            "output `{name}`: {record} expected {w} time(s), committed {g} time(s)"
                        ));
                    }
                }
            }
            _ => unreachable!("both runs register the same outputs"),
        }
    }
    Ok(())
}

/// Checks a simulated run of `workload` against its batch reference: `log` is the whole input
/// log, `outputs` the run's committed outputs, `late` the committed execution's late records,
/// `state_entries` the state its job held at the end.
pub(crate) fn judge<W: Workload>(
    workload: &W,
    log: &[Record<W::Event>],
    outputs: &[OutputTable],
    late: &[LateRecord],
    state_entries: usize,
) -> Result<(), Violation> {
    let (graph, reference_sinks) = workload.build(Log::round_robin(log.to_vec(), workload.partitions()));
    let operator = |node: usize| graph.nodes[node].name.clone();
    lateness_soundness(
        log,
        workload.partitions(),
        workload.out_of_orderness_ms(),
        late,
        &operator,
    )?;
    let mut job = Job::new(&graph);
    let drops = InputDrops::new(late);
    job.drop_inputs(&drops);
    // No watermark before the end (processing time stands still): nothing is late in the
    // reference but what it drops.
    let config = BatchConfig {
        step_ms: 0,
        ..BatchConfig::default()
    };
    run_batch(&mut job, &mut InOrder, &config)
        .map_err(|e| Violation::new("reference", format!("the batch run of the same input failed: {e}")))?;
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
    compare_outputs(&workload.outputs(log, &reference_sinks), outputs)?;
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

type Reader = Box<dyn Fn() -> OutputTable + Send + Sync>;

/// The outputs a pipeline registers to be checked, each read back after a run.
#[derive(Default)]
pub struct Outputs {
    readers: Vec<Reader>,
}

impl Outputs {
    /// Checks `stream` as an upsert table: the last committed value per `key` wins (window
    /// results by key and window, a running total by key). The stream goes by key into a
    /// two-phase-commit sink, so a key's updates keep their order.
    pub fn upsert<T, K, F>(&mut self, name: &str, stream: Stream<T>, key: F)
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let log = CommitLog::new();
        self.upsert_with(name, stream, key, log.clone(), move || {
            log.records().into_iter().map(|r| r.value).collect()
        });
    }

    /// Checks the results of session windows: by key and window, a session superseded by a
    /// merged one dropped ([`OutputTable::sessions`]).
    pub fn sessions<K: Key, V: Data + PartialEq>(&mut self, name: &str, stream: Stream<Windowed<K, V>>) {
        let log = CommitLog::new();
        stream
            .key_by(|w: &Windowed<K, V>| w.key.clone())
            .sink_transactional(log.clone());
        let name = name.to_string();
        self.readers.push(Box::new(move || {
            OutputTable::sessions(&name, log.records().into_iter().map(|r| r.value))
        }));
    }

    /// Checks a changelog: the committed rows materialised into a table
    /// ([`OutputTable::changelog`]). The stream goes by `key` (the rows' primary key) into a
    /// two-phase-commit sink, so that an update's `-U` and `+U` commit together.
    pub fn changelog<T, K, F>(&mut self, name: &str, stream: Stream<Row<T>>, key: F)
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let log = CommitLog::new();
        stream
            .key_by(move |r: &Row<T>| key(&r.row))
            .sink_transactional(log.clone());
        let name = name.to_string();
        self.readers
            .push(Box::new(move || OutputTable::committed_changelog(&name, &log)));
    }

    /// Checks `stream` as an append stream: the committed records as a multiset.
    pub fn append<T: Data + PartialEq>(&mut self, name: &str, stream: Stream<T>) {
        let log = stream.collect_committed();
        let name = name.to_string();
        self.readers
            .push(Box::new(move || OutputTable::append(&name, log.records())));
    }

    /// An upsert output written by your own committer (a database table, a file): `read`
    /// returns what the external system holds, as a test would read the real table.
    pub fn upsert_with<T, K, F, C, R>(&mut self, name: &str, stream: Stream<T>, key: F, committer: C, read: R)
    where
        T: Data,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
        C: Committer<T>,
        R: Fn() -> Vec<T> + Send + Sync + 'static,
    {
        stream.key_by(key.clone()).sink_transactional(committer);
        let name = name.to_string();
        self.readers
            .push(Box::new(move || OutputTable::upsert(&name, read(), &key)));
    }

    /// An append output written by your own committer; `read` returns the rows it holds.
    pub fn append_with<T, C, R>(&mut self, name: &str, stream: Stream<T>, committer: C, read: R)
    where
        T: Data,
        C: Committer<T>,
        R: Fn() -> Vec<T> + Send + Sync + 'static,
    {
        stream.sink_transactional(committer);
        let name = name.to_string();
        self.readers.push(Box::new(move || OutputTable::append(&name, read())));
    }

    /// Every output as it stands now.
    pub fn tables(&self) -> Vec<OutputTable> {
        self.readers.iter().map(|read| read()).collect()
    }
}

type Generate<E> = Box<dyn Fn(&mut ChaCha8Rng, usize) -> Vec<Record<E>> + Send + Sync>;
type Build<E> = Box<dyn Fn(&Pipeline, Stream<E>, &mut Outputs) + Send + Sync>;

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
        }
    }

    /// The input drawn from a proptest strategy, seeded by the run's seed.
    pub fn from_strategy(
        name: &'static str,
        strategy: impl Strategy<Value = Vec<Record<E>>> + Send + Sync + 'static,
        build: impl Fn(&Pipeline, Stream<E>, &mut Outputs) + Send + Sync + 'static,
    ) -> Self {
        let generate = move |rng: &mut ChaCha8Rng, _events: usize| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            let mut runner =
                TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
            strategy
                .new_tree(&mut runner)
                .expect("the input strategy draws a value")
                .current()
        };
        Differential::new(name, generate, build)
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
    type Sinks = Outputs;

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

    fn build(&self, log: Log<E>) -> (JobGraph, Outputs) {
        let pipeline = Pipeline::new().with_parallelism(self.parallelism);
        let source = pipeline.source("input", log, self.watermarks);
        let mut outputs = Outputs::default();
        (self.build)(&pipeline, source, &mut outputs);
        let graph = pipeline
            .build()
            .unwrap_or_else(|e| panic!("differential check `{}`: the pipeline does not build: {e}", self.name));
        (graph, outputs)
    }

    fn has_reference(&self) -> bool {
        false
    }

    fn check(&self, _input: &[Record<E>], _recorded: &Recorded, sinks: &Outputs) -> Checked {
        let tables = sinks.tables();
        Checked {
            events_out: tables.iter().map(|t| t.len() as u64).sum(),
            late: 0,
            digest: digest_of(&tables.iter().map(|t| t.digest.to_string()).collect::<Vec<_>>()),
            violation: None,
        }
    }

    fn outputs(&self, _input: &[Record<E>], sinks: &Outputs) -> Vec<OutputTable> {
        sinks.tables()
    }

    fn output_lines(&self, sinks: &Outputs) -> Vec<String> {
        let mut lines = Vec::new();
        for table in sinks.tables() {
            match table.rows {
                Rows::Upsert(rows) => {
                    lines.extend(rows.into_iter().map(|(key, value)| {
                        format!(r#"{{"output":{},"key":{key},"value":{value}}}"#, json(&table.name))
                    }))
                }
                Rows::Append(rows) => lines.extend(rows.into_iter().flat_map(|(record, n)| {
                    std::iter::repeat_n(format!(r#"{{"output":{},"record":{record}}}"#, json(&table.name)), n)
                })),
            }
        }
        lines
    }
}
