//! The file-system snapshot store: its layout and semantics (those of the memory store),
//! and recovery from it in a restarted process, including past a corrupted checkpoint.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use eddy::engine::{
    recover, run_batch, BatchConfig, CheckpointCoordinator, CheckpointId, CheckpointOutcome, CommitLog, InOrder, Job,
    JobGraph, ObjectKey, SnapshotStore, StoreError,
};
use eddy::store::FsSnapshotStore;
use eddy::{Count, Log, Pipeline, Record, WatermarkStrategy, WindowAssigner, Windowed};

fn task(checkpoint: CheckpointId, node: usize, subtask: usize) -> ObjectKey {
    ObjectKey::Task {
        checkpoint,
        node,
        subtask,
    }
}

fn manifest(checkpoint: CheckpointId) -> ObjectKey {
    ObjectKey::Manifest { checkpoint }
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let parent = path.file_name().unwrap().to_string_lossy().into_owned();
            found.extend(files(&path).into_iter().map(|f| format!("{parent}/{f}")));
        } else {
            found.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    found.sort();
    found
}

#[test]
fn objects_round_trip_in_the_documented_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested").join("store");
    let mut store = FsSnapshotStore::open(&dir).unwrap();
    assert_eq!(store.checkpoints().unwrap(), Vec::<CheckpointId>::new());
    assert_eq!(store.highest_checkpoint().unwrap(), None);

    store.put(task(3, 1, 0), b"task one zero".to_vec()).unwrap();
    store.put(task(3, 0, 12), Vec::new()).unwrap();
    store.put(manifest(3), b"the manifest".to_vec()).unwrap();
    assert_eq!(store.get(task(3, 1, 0)).unwrap(), b"task one zero");
    assert_eq!(store.get(task(3, 0, 12)).unwrap(), b"");
    assert_eq!(store.get(manifest(3)).unwrap(), b"the manifest");
    // A put replaces.
    store.put(task(3, 1, 0), b"again".to_vec()).unwrap();
    assert_eq!(store.get(task(3, 1, 0)).unwrap(), b"again");

    assert_eq!(
        files(&dir),
        [
            "chk-00000000000000000003/MANIFEST",
            "chk-00000000000000000003/task-0-12.snap",
            "chk-00000000000000000003/task-1-0.snap",
        ],
        "no temporary file is left behind"
    );
    assert_eq!(
        store.path(task(3, 1, 0)),
        dir.join("chk-00000000000000000003/task-1-0.snap")
    );
    assert_eq!(store.checkpoints().unwrap(), [3]);
    assert_eq!(store.highest_checkpoint().unwrap(), Some(3));

    for missing in [task(3, 1, 1), task(4, 1, 0), manifest(4)] {
        match store.get(missing) {
            Err(StoreError::Missing { object }) => assert_eq!(object, missing.to_string()),
            other => panic!("{missing}: {other:?}"),
        }
    }

    // Another process opening the same directory sees the same store.
    let reopened = FsSnapshotStore::open(&dir).unwrap();
    assert_eq!(reopened.get(task(3, 1, 0)).unwrap(), b"again");
    assert_eq!(reopened.checkpoints().unwrap(), [3]);
}

#[test]
fn a_checkpoint_without_manifest_is_not_listed_but_its_id_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let mut store = FsSnapshotStore::open(tmp.path()).unwrap();
    store.put(task(1, 0, 0), b"a".to_vec()).unwrap();
    store.put(manifest(1), b"m".to_vec()).unwrap();
    store.put(task(2, 0, 0), b"b".to_vec()).unwrap();
    store.put(task(2, 0, 1), b"c".to_vec()).unwrap();
    // A crash while writing checkpoint 2's manifest leaves its temporary file.
    let chk2 = store.checkpoint_dir(2);
    fs::write(chk2.join(".MANIFEST.tmp"), b"half a manif").unwrap();
    // Entries the store did not write.
    fs::create_dir(tmp.path().join("chk-abc")).unwrap();
    fs::create_dir(tmp.path().join("chk-9")).unwrap();
    fs::create_dir(tmp.path().join("chk-+0000000000000000009")).unwrap();
    fs::create_dir(tmp.path().join(".chk-00000000000000000009.tmp")).unwrap();
    fs::write(tmp.path().join("chk-00000000000000000008"), b"a file").unwrap();
    fs::write(tmp.path().join("notes.txt"), b"").unwrap();

    assert_eq!(store.checkpoints().unwrap(), [1]);
    assert_eq!(store.highest_checkpoint().unwrap(), Some(2));
    assert!(matches!(store.get(manifest(2)), Err(StoreError::Missing { .. })));
    // A restarted coordinator does not reuse id 2.
    let reopened = FsSnapshotStore::open(tmp.path()).unwrap();
    assert_eq!(reopened.checkpoints().unwrap(), [1]);
    assert_eq!(reopened.highest_checkpoint().unwrap(), Some(2));

    // Writing the manifest (over the leftover temporary file) completes checkpoint 2.
    store.put(manifest(2), b"whole manifest".to_vec()).unwrap();
    assert_eq!(store.checkpoints().unwrap(), [1, 2]);
    assert!(!chk2.join(".MANIFEST.tmp").exists());

    store.discard(1).unwrap();
    assert!(!store.checkpoint_dir(1).exists());
    store.discard(1).unwrap();
    store.discard(42).unwrap();
    assert_eq!(store.checkpoints().unwrap(), [2]);
    assert_eq!(store.get(task(2, 0, 1)).unwrap(), b"c");
    assert!(matches!(store.get(task(1, 0, 0)), Err(StoreError::Missing { .. })));
}

#[test]
fn io_errors_name_the_path_and_the_os_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a-file");
    fs::write(&file, b"").unwrap();
    match FsSnapshotStore::open(&file) {
        Err(StoreError::WriteFailed { reason, .. }) => assert!(reason.contains("a-file"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut store = FsSnapshotStore::open(tmp.path().join("store")).unwrap();
    // An object path taken by a directory cannot be read, nor written.
    fs::create_dir_all(store.path(task(5, 0, 0))).unwrap();
    match store.get(task(5, 0, 0)) {
        Err(StoreError::ReadFailed { object, reason }) => {
            assert_eq!(object, "checkpoint 5 task 0.0");
            assert!(
                reason.contains("task-0-0.snap") && reason.contains("os error"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    match store.put(task(5, 0, 0), b"x".to_vec()) {
        Err(StoreError::WriteFailed { reason, .. }) => assert!(reason.contains("task-0-0.snap"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.checkpoints().unwrap(), Vec::<CheckpointId>::new());
}

// ---------------------------------------------------------------------------------------
// Recovery from the store.

type Event = (u8, i64);
type Counts = CommitLog<Windowed<u8, u64>>;

fn events() -> Vec<Record<Event>> {
    (0..200i64).map(|i| Record::new(i, ((i % 5) as u8, i))).collect()
}

fn build(counts: &Counts) -> JobGraph {
    let pipeline = Pipeline::new().with_parallelism(2);
    pipeline
        .source(
            "events",
            Log::round_robin(events(), 2),
            WatermarkStrategy::bounded_out_of_orderness(0),
        )
        .key_by(|e: &Event| e.0)
        .window(WindowAssigner::tumbling(10))
        .aggregate(Count)
        .output
        .sink_transactional(counts.clone());
    pipeline.build().expect("valid pipeline")
}

/// The final value per (key, window): the last committed upsert.
fn table(counts: &Counts) -> BTreeMap<(u8, i64, i64), u64> {
    counts
        .records()
        .into_iter()
        .map(|r| ((r.value.key, r.value.window.start, r.value.window.end), r.value.value))
        .collect()
}

fn fault_free() -> BTreeMap<(u8, i64, i64), u64> {
    let counts = Counts::new();
    eddy::engine::run_to_end(&build(&counts)).unwrap();
    let table = table(&counts);
    assert_eq!(table.len(), 5 * 20);
    table
}

/// Runs `graph` with a checkpoint every few steps until `completions` checkpoints completed,
/// then a few steps more, and "crashes" (drops the job): the last completion is never
/// notified, the work after it is lost. Returns the completed checkpoints.
fn run_then_crash(graph: &JobGraph, store: &mut FsSnapshotStore, completions: usize) -> Vec<CheckpointId> {
    let mut job = Job::new(graph);
    let mut coordinator = CheckpointCoordinator::new(store).unwrap();
    let mut actions = Vec::new();
    let mut completed = Vec::new();
    let mut after = 0;
    for now in 0..10_000i64 {
        if completed.len() < completions && now % 10 == 0 {
            coordinator.trigger(&mut job);
        }
        job.handle_processing_time(now);
        job.ready_actions(&mut actions);
        if let Some(&action) = actions.first() {
            job.perform(action, 2);
        }
        match coordinator.collect(&mut job, store) {
            Some(CheckpointOutcome::Completed(checkpoint)) => {
                completed.push(checkpoint);
                if completed.len() < completions {
                    job.notify_checkpoint_complete(checkpoint);
                    coordinator
                        .notified(checkpoint, store)
                        .expect("the store lists its checkpoints");
                }
            }
            Some(CheckpointOutcome::Failed { checkpoint, error }) => panic!("checkpoint {checkpoint}: {error}"),
            None => {}
        }
        if completed.len() == completions {
            after += 1;
            if after == 15 {
                assert!(!job.is_finished(), "the crash comes before the end of the input");
                return completed;
            }
        }
    }
    panic!("{} checkpoints completed: {completed:?}", completed.len());
}

/// A restarted process: a new store on the same directory, the same pipeline, recovery,
/// and a run to the end. Returns the recovery's checkpoint and skipped ids, and the output.
fn restart_and_finish(dir: &Path, counts: &Counts) -> (Option<CheckpointId>, Vec<CheckpointId>) {
    let store = FsSnapshotStore::open(dir).unwrap();
    let highest = store.highest_checkpoint().unwrap().expect("checkpoints were taken");
    let graph = build(counts);
    let mut recovery = recover(&graph, &store).unwrap();
    let config = BatchConfig {
        first_checkpoint: Some(highest + 1),
        ..BatchConfig::default()
    };
    run_batch(&mut recovery.job, &mut InOrder, &config).unwrap();
    let skipped = recovery.skipped.iter().map(|(id, _)| *id).collect();
    (recovery.checkpoint, skipped)
}

#[test]
fn a_restarted_process_recovers_from_the_store_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let counts = Counts::new();
    let completed = {
        let mut store = FsSnapshotStore::open(tmp.path()).unwrap();
        run_then_crash(&build(&counts), &mut store, 5)
    };
    assert_eq!(completed, [1, 2, 3, 4, 5]);
    let committed_before = counts.records().len();

    let store = FsSnapshotStore::open(tmp.path()).unwrap();
    // The coordinator retains the three newest notified checkpoints (2, 3, 4) and the newer,
    // unnotified 5: the oldest was discarded from disk.
    assert_eq!(store.checkpoints().unwrap(), [2, 3, 4, 5]);
    assert!(!store.checkpoint_dir(1).exists());
    drop(store);

    let (restored, skipped) = restart_and_finish(tmp.path(), &counts);
    assert_eq!(restored, Some(5));
    assert!(skipped.is_empty());
    assert!(counts.records().len() > committed_before);
    assert_eq!(table(&counts), fault_free());
}

#[test]
fn a_corrupted_manifest_on_disk_falls_back_to_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let counts = Counts::new();
    let mut store = FsSnapshotStore::open(tmp.path()).unwrap();
    let completed = run_then_crash(&build(&counts), &mut store, 2);
    assert_eq!(completed, [1, 2]);

    let path = store.path(manifest(2));
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    fs::write(&path, bytes).unwrap();
    drop(store);

    let (restored, skipped) = restart_and_finish(tmp.path(), &counts);
    assert_eq!(restored, Some(1));
    assert_eq!(skipped, [2]);
    assert_eq!(table(&counts), fault_free());
}

#[test]
fn a_truncated_task_snapshot_on_disk_falls_back_to_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let counts = Counts::new();
    let mut store = FsSnapshotStore::open(tmp.path()).unwrap();
    let completed = run_then_crash(&build(&counts), &mut store, 3);
    assert_eq!(completed, [1, 2, 3]);

    let path = store.path(task(3, 1, 1));
    let len = fs::metadata(&path).unwrap().len();
    assert!(len > 1);
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    drop(store);

    let (restored, skipped) = restart_and_finish(tmp.path(), &counts);
    assert_eq!(restored, Some(2));
    assert_eq!(skipped, [3]);
    assert_eq!(table(&counts), fault_free());
}
