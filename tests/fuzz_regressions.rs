//! Inputs the fuzz targets (`fuzz/`, docs/fuzzing.md) found failing, replayed on stable:
//! each test holds the input as bytes and asserts what its target asserts.

use eddy::engine::{
    recover, Action, CheckpointCoordinator, CheckpointOutcome, CommitLog, Job, JobGraph, MemorySnapshotStore,
};
use eddy::replay_file::{case_config, parse_replay_file, ReplayFile};
use eddy::sim::CaseError;
use eddy::{Change, Pipeline, Record, Scripted};

/// Runs a replay file the way `eddy replay` and `failure_file_decode` do.
fn run_case_file(bytes: &[u8]) -> Result<eddy::sim::Run, CaseError> {
    let text = std::str::from_utf8(bytes).expect("the input is UTF-8");
    let Ok(ReplayFile::Case(case)) = parse_replay_file(text) else {
        panic!("the input parses as a case")
    };
    let (scenario, config) = case_config(&case).expect("the case names a scenario and profile");
    scenario.run_case(&config, &case)
}

/// failure_file_decode: a case with a processing-time jump of `i64::MAX` overflowed the
/// simulator's clock (a panic on user input). A jump must now be 1 ms to a day.
#[test]
fn a_case_with_an_overflowing_clock_jump_is_an_error_not_a_panic() {
    let crash: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":9223372036854775807}]}"#;
    match run_case_file(crash) {
        Err(CaseError::Fault { index: 0, reason }) => assert!(reason.contains("9223372036854775807"), "{reason}"),
        Err(other) => panic!("the wrong error: {other}"),
        Ok(run) => panic!("the case ran: {}", run.report),
    }
    let backwards: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":-5}]}"#;
    assert!(matches!(
        run_case_file(backwards),
        Err(CaseError::Fault { index: 0, .. })
    ));
    // A jump a random run could have made still replays, and the run passes.
    let fine: &[u8] = br#"{"scenario":"dedup","seed":1,"profile":"none","bug":null,"property":null,"input":[],"faults":[{"fault":"jump","step":1,"ms":4000}]}"#;
    let run = run_case_file(fine).expect("a valid jump runs");
    assert!(run.report.passed, "{}", run.report);
}

/// failure_file_decode (found by the CI smoke): a float in a case's input did not survive
/// a round trip, because serde_json's default float parser may be off by one ulp
/// (`9.777777777777779e57` came back as `...778e57`). The workspace enables
/// `float_roundtrip`, so a case re-serialises to exactly itself.
#[test]
fn a_case_with_a_float_in_its_input_reserialises_to_itself() {
    let text = r#"{"scenario":"pageviews","seed":4,"profile":"all","input":[{"ts":-19262,"value":{"page":49,"user":9.777777777777779e+57}}],"faults":[]}"#;
    let Ok(ReplayFile::Case(case)) = parse_replay_file(text) else {
        panic!("the input parses as a case")
    };
    let json = serde_json::to_string(&case).expect("a case serialises");
    assert!(json.contains("9.777777777777779e+57"), "{json}");
    assert_eq!(parse_replay_file(&json), Ok(ReplayFile::Case(case)));
}

/// snapshot_decode: a session window snapshot holding two overlapping sessions of one key
/// restored, and the next record of that key panicked while merging (the operator keeps
/// each key's sessions disjoint). An empty window decoded as well. Both are now errors of
/// the restore.
#[test]
fn a_snapshot_with_overlapping_or_empty_session_windows_is_rejected() {
    use eddy::engine::snapshot::OperatorState;
    use eddy::{Count, Window, WindowAssigner};

    let pipeline = Pipeline::new();
    let events = pipeline.scripted_source("events", vec![Scripted::Record(3, (1u8, 5i64))]);
    let sessions = events
        .key_by(|e: &(u8, i64)| e.0)
        .window(WindowAssigner::session(5))
        .aggregate(Count);
    sessions.output.collect();
    let graph = pipeline.build().expect("a valid pipeline");
    // The barrier reaches every task before the source reads anything.
    let mut driver = Driver::new(&graph);
    driver.job.trigger_checkpoint(1);
    driver.settle();
    let mut snapshots = Vec::new();
    driver.job.poll_acknowledgements(&mut snapshots);
    let manifest = driver.job.manifest(1);
    assert!(
        Job::restore(&graph, &manifest, &snapshots).is_ok(),
        "the valid snapshot restores"
    );

    let session_node = graph
        .nodes
        .iter()
        .position(|n| n.name.contains("window"))
        .expect("a window node");
    let restore_with = |sessions: Vec<(u8, (i64, i64))>| {
        let mut snapshots = snapshots.clone();
        let task = snapshots
            .iter_mut()
            .find(|s| s.node == session_node)
            .expect("its snapshot");
        // (key, window, fired, pane) as the session operator writes them: the pane is the
        // count and the trigger's state (records since a count firing, next early firing).
        type Pane = (Option<u64>, (u64, Option<i64>));
        let entries: Vec<(u8, Window, bool, Pane)> = sessions
            .into_iter()
            .map(|(key, (start, end))| (key, Window { start, end }, false, (Some(1), (0, None))))
            .collect();
        task.state = OperatorState::from_keyed(entries, |e| &e.0, graph.max_parallelism);
        match Job::restore(&graph, &manifest, &snapshots) {
            Ok(_) => Ok(()),
            Err(error) => Err(error.to_string()),
        }
    };
    // Disjoint sessions restore; overlapping, touching (they would have merged) or empty ones
    // do not.
    assert_eq!(restore_with(vec![(1, (0, 10)), (1, (11, 20)), (2, (5, 15))]), Ok(()));
    let overlapping = restore_with(vec![(1, (0, 10)), (1, (5, 15))]).expect_err("overlap");
    assert!(overlapping.contains("overlap"), "{overlapping}");
    let touching = restore_with(vec![(1, (0, 10)), (1, (10, 20))]).expect_err("touch");
    assert!(touching.contains("touch"), "{touching}");
    // postcard drops a custom decoding error's text; the restore still names what failed.
    let empty = restore_with(vec![(1, (7, 7))]).expect_err("an empty window");
    assert!(empty.contains("does not decode as keyed state entries"), "{empty}");
}

/// Drives a job the way the operator fuzz targets do (`fuzz/src/lib.rs`): one source
/// element at a time, delivered everywhere before the next; checkpoints complete at once.
struct Driver<'a> {
    graph: &'a JobGraph,
    store: MemorySnapshotStore,
    job: Job,
    coordinator: CheckpointCoordinator,
    now: i64,
}

impl<'a> Driver<'a> {
    fn new(graph: &'a JobGraph) -> Self {
        let store = MemorySnapshotStore::new();
        let coordinator = CheckpointCoordinator::new(&store).unwrap();
        Driver {
            graph,
            job: Job::new(graph),
            store,
            coordinator,
            now: 0,
        }
    }

    fn settle(&mut self) {
        let mut actions = Vec::new();
        loop {
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut actions);
            match actions.first() {
                Some(&action @ Action::Deliver { .. }) => self.job.perform(action, 1),
                _ => return,
            }
        }
    }

    /// Source task `task` reads one element; its watermark goes out on the next tick.
    fn read(&mut self, task: usize) {
        self.job.perform(Action::PollSource { task }, 1);
        self.now += 1;
        self.settle();
    }

    fn checkpoint(&mut self) {
        self.coordinator
            .trigger(&mut self.job)
            .expect("no checkpoint in flight");
        self.settle();
        let Some(CheckpointOutcome::Completed(id)) = self.coordinator.collect(&mut self.job, &mut self.store) else {
            panic!("the checkpoint completes once everything is delivered")
        };
        self.job.notify_checkpoint_complete(id);
        self.coordinator
            .notified(id, &mut self.store)
            .expect("the store lists its checkpoints");
    }

    fn crash(&mut self) {
        self.coordinator.abort();
        self.job = recover(self.graph, &self.store).unwrap().job;
        self.coordinator = CheckpointCoordinator::new(&self.store).unwrap();
        self.settle();
    }

    fn finish(&mut self) {
        let mut actions = Vec::new();
        while !self.job.is_finished() {
            self.job.handle_processing_time(self.now);
            self.job.ready_actions(&mut actions);
            match actions.first() {
                Some(&action) => self.job.perform(action, 1),
                None => {
                    self.now = self
                        .job
                        .next_processing_deadline()
                        .unwrap_or(self.now)
                        .max(self.now + 1)
                }
            }
            self.now += 1;
        }
        self.checkpoint();
    }
}

/// temporal_join_ops, input bytes (cargo fuzz fmt):
/// `e2 e1 0b da f5 a3 9f c9 c9 21 9f c9 c9 21 ff ff ff 33 33 33 33 33 21 9f c9 c9 21 e1 03 97`
/// = parallelism 2; changes watermark 95, checkpoint, crash, probes watermark -31, crash,
/// probe (key 0, ts -64). After a restore the changelog source did not announce its
/// watermark 95 again, and the join (which restores one combined watermark, not one per
/// channel) waited on that channel at "no watermark": the probe at -64, late behind the
/// join's watermark -31, was joined as if on time (and an idle changelog would have held
/// the join's output back forever). A restored source now announces its watermark again.
#[test]
fn a_restored_source_announces_its_watermark_again() {
    let probes = vec![Scripted::Watermark(-31), Scripted::Record(-64, (0u8, 0i64))];
    let changes: Vec<Scripted<Change<u8, i64>>> = vec![Scripted::Watermark(95)];
    let joined: CommitLog<((u8, i64), Option<i64>)> = CommitLog::new();
    let late: CommitLog<(u8, i64)> = CommitLog::new();
    let pipeline = Pipeline::new().with_parallelism(2);
    let probe_stream = pipeline.scripted_source("probes", probes);
    let change_stream = pipeline.scripted_source("changes", changes);
    let join = probe_stream.key_by(|e: &(u8, i64)| e.0).temporal_join(change_stream);
    join.output.sink_transactional(joined.clone());
    join.late.sink_transactional(late.clone());
    let graph = pipeline.build().unwrap();
    let (probes_task, changes_task) = (0, 1);
    assert!(Job::new(&graph).tasks()[probes_task].is_source() && Job::new(&graph).tasks()[changes_task].is_source());

    let mut driver = Driver::new(&graph);
    driver.read(changes_task); // watermark 95
    driver.checkpoint();
    driver.crash();
    driver.read(probes_task); // watermark -31: the join is at min(-31, 95)
    driver.crash();
    driver.read(probes_task); // watermark -31 again (replayed)
    driver.read(probes_task); // the probe at -64
    driver.read(probes_task); // end of the probes
    driver.read(changes_task); // end of the changes
    driver.finish();
    assert_eq!(late.records(), vec![Record::new(-64, (0, 0))], "the probe is late");
    assert!(joined.records().is_empty(), "a late probe is not joined");
}

/// sim_tape: after a rescale to 20 tasks, a tape that ends early checkpointed every 20 ms
/// (its smallest interval), each barrier round took about 60 steps of deliveries (which the
/// first-ready default prefers), and the source was never polled again: `liveness` after
/// 20,200 steps. An exhausted tape now checkpoints as seldom as it may (`Tape`).
#[test]
fn back_to_back_checkpoints_of_a_rescaled_job_do_not_starve_its_sources() {
    let input: &[u8] = &[0x01, 0x80, 0x01, 0xbe, 0x0b, 0xbe, 0x27, 0x0b, 0x24, 0x04];
    let [which, profile, seed, events, tape @ ..] = input else {
        unreachable!("the input is long enough")
    };
    let scenarios = eddy::scenarios::all();
    let scenario = scenarios[usize::from(*which) % scenarios.len()];
    let profile = eddy::sim::Profile::ALL[usize::from(*profile) % eddy::sim::Profile::ALL.len()];
    let config = eddy::sim::RunConfig {
        events: Some(5 + usize::from(*events % 48)),
        ..eddy::sim::RunConfig::new(u64::from(*seed), profile)
    };
    let report = scenario.run_tape(&config, tape).report;
    assert!(report.passed, "{report}");
}
