//! Shared pieces of the fuzz targets: the planted bug from `EDDY_BUG`, a driver that feeds
//! scripted sources one element at a time with checkpoints and crash-restores in between,
//! and reference models that share no code with the engine.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use eddy_engine::testkit::bugs::{self, Bug, Planted};
use eddy_engine::{recover, Action, CheckpointCoordinator, CheckpointOutcome, Job, JobGraph, MemorySnapshotStore};

/// Plants the bug named by the environment variable `EDDY_BUG` (e.g.
/// `EDDY_BUG=windows-closed-interval`) on this thread until the guard drops; nothing if the
/// variable is unset. An unknown name stops the fuzzer at its first input.
pub fn plant_from_env() -> Planted {
    bugs::plant(bug_from_env())
}

/// The bug `EDDY_BUG` names, if any.
pub fn bug_from_env() -> Option<Bug> {
    static BUG: OnceLock<Option<Bug>> = OnceLock::new();
    *BUG.get_or_init(|| {
        std::env::var("EDDY_BUG")
            .ok()
            .filter(|name| !name.is_empty())
            .map(|name| name.parse().unwrap_or_else(|e| panic!("EDDY_BUG: {e}")))
    })
}

/// One step of a driven run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Source `n` (modulo the number of sources) reads its next script element (or, at the
    /// end of its script, finishes), and everything it causes is delivered.
    Next(usize),
    /// A checkpoint is taken and completes (sinks commit).
    Checkpoint,
    /// The job crashes and is restored from the newest completed checkpoint.
    Crash,
}

/// What a source read, in the order operators saw it (after restores: the history that
/// the committed output reflects).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// Element `index` of source `source`'s script.
    Element { source: usize, index: usize },
    /// Source `source` finished: its watermark is `i64::MAX` from here on.
    Finished { source: usize },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Positions {
    next: Vec<usize>,
    finished: Vec<bool>,
    history: usize,
}

/// Drives `graph` (whose sources are scripted, of `lengths` elements) through `steps`, then
/// reads every source to its end and takes a final checkpoint. Returns the effective read
/// history and the state entries left at the end.
pub fn drive(graph: &JobGraph, lengths: &[usize], steps: impl IntoIterator<Item = Step>) -> (Vec<Read>, usize) {
    let mut driver = Driver::new(graph, lengths);
    for step in steps {
        match step {
            Step::Next(n) => driver.next(n % lengths.len()),
            Step::Checkpoint => driver.checkpoint(),
            Step::Crash => driver.crash(),
        }
    }
    for source in 0..lengths.len() {
        while !driver.positions.finished[source] {
            driver.next(source);
        }
    }
    driver.finish();
    let entries = driver.job.state_entries();
    (driver.history, entries)
}

struct Driver<'a> {
    graph: &'a JobGraph,
    lengths: Vec<usize>,
    sources: Vec<usize>,
    store: MemorySnapshotStore,
    job: Job,
    coordinator: CheckpointCoordinator,
    now: i64,
    actions: Vec<Action>,
    history: Vec<Read>,
    positions: Positions,
    checkpointed: Positions,
}

impl<'a> Driver<'a> {
    fn new(graph: &'a JobGraph, lengths: &[usize]) -> Self {
        let store = MemorySnapshotStore::new();
        let job = Job::new(graph);
        let sources: Vec<usize> = (0..job.tasks().len()).filter(|&t| job.tasks()[t].is_source()).collect();
        assert_eq!(sources.len(), lengths.len(), "one script length per source");
        let coordinator = CheckpointCoordinator::new(&store).expect("a memory store");
        let positions = Positions {
            next: vec![0; lengths.len()],
            finished: vec![false; lengths.len()],
            history: 0,
        };
        Driver {
            graph,
            lengths: lengths.to_vec(),
            sources,
            store,
            job,
            coordinator,
            now: 0,
            actions: Vec::new(),
            history: Vec::new(),
            checkpointed: positions.clone(),
            positions,
        }
    }

    /// Delivers everything in flight (never reads a source).
    fn settle(&mut self) {
        loop {
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut self.actions);
            match self.actions.first() {
                Some(&action @ Action::Deliver { .. }) => self.job.perform(action, 1),
                _ => return,
            }
        }
    }

    fn next(&mut self, source: usize) {
        if self.positions.finished[source] {
            return;
        }
        let at = self.positions.next[source];
        if at < self.lengths[source] {
            self.history.push(Read::Element { source, index: at });
            self.positions.next[source] += 1;
        } else {
            self.history.push(Read::Finished { source });
            self.positions.finished[source] = true;
        }
        self.positions.history = self.history.len();
        self.job.perform(
            Action::PollSource {
                task: self.sources[source],
            },
            1,
        );
        // The source emits its watermark on the next processing-time tick.
        self.now += 1;
        self.settle();
    }

    fn checkpoint(&mut self) {
        let Some(id) = self.coordinator.trigger(&mut self.job) else {
            panic!("a checkpoint is already in flight")
        };
        self.settle();
        match self.coordinator.collect(&mut self.job, &mut self.store) {
            Some(CheckpointOutcome::Completed(done)) => {
                assert_eq!(done, id);
                self.job.notify_checkpoint_complete(done);
                self.coordinator
                    .notified(done, &mut self.store)
                    .expect("a memory store does not fail");
                self.checkpointed = self.positions.clone();
            }
            other => panic!("checkpoint {id} did not complete after everything was delivered: {other:?}"),
        }
    }

    fn crash(&mut self) {
        self.coordinator.abort();
        let recovery = recover(self.graph, &self.store).expect("a memory store does not fail reads");
        assert!(recovery.skipped.is_empty(), "nothing in the store is damaged");
        self.job = recovery.job;
        self.coordinator = CheckpointCoordinator::new(&self.store).expect("a memory store");
        self.positions = self.checkpointed.clone();
        self.history.truncate(self.positions.history);
        self.settle();
    }

    fn finish(&mut self) {
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 1_000_000, "the job does not finish");
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut self.actions);
            match self.actions.first() {
                Some(&action) => {
                    self.job.perform(action, 1);
                    self.now += 1;
                }
                None if self.job.is_finished() => break,
                None => {
                    self.now = self
                        .job
                        .next_processing_deadline()
                        .map_or(self.now + 1, |d| d.max(self.now + 1));
                }
            }
        }
        self.checkpoint();
    }
}

/// A record of the window and dedup targets: `(key, value)`.
pub type Event = (u8, i64);

/// `(key, start, end) -> (count, sum)`.
pub type Table = BTreeMap<(u8, i64, i64), (u64, i64)>;

/// Keeps only windows not inside another window of the same key (a session that grew by a
/// late merge supersedes the results of the smaller sessions it absorbed).
pub fn without_superseded<V: Clone>(upserts: &BTreeMap<(u8, i64, i64), V>) -> BTreeMap<(u8, i64, i64), V> {
    upserts
        .iter()
        .filter(|((key, start, end), _)| {
            !upserts
                .keys()
                .any(|(k, s, e)| k == key && s <= start && end <= e && (s, e) != (start, end))
        })
        .map(|(k, v)| (*k, v.clone()))
        .collect()
}

/// Sorts a list (to compare multisets).
pub fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}
