//! Arbitrary bytes into every snapshot decoder: the framed task snapshot and manifest (raw,
//! and inside a valid frame so the fuzzer reaches the payload decoder), and the state of
//! every operator kind through `Job::restore` (valid snapshots of a small job with one
//! node's state replaced by the fuzzer's). Each gives a value or an error, never a panic; a
//! decoded object re-encodes to bytes that decode to the same value; a job that restores
//! runs to its end.
#![no_main]

use arbitrary::Arbitrary;
use eddy_engine::snapshot::{decode_object, encode_object, ObjectKind};
use eddy_engine::{
    run_batch, BatchConfig, Change, Count, InOrder, Job, JobGraph, Keep, KeyGroup, Manifest, Pipeline, Scripted,
    TaskSnapshot, WindowAssigner,
};
use eddy_fuzz::{plant_from_env, Event};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Replace {
    node: u8,
    watermark: Option<i64>,
    keyed: Option<Vec<(u16, Vec<u8>)>>,
    operator: Option<Vec<u8>>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    raw: Vec<u8>,
    framed: bool,
    replace: Vec<Replace>,
}

/// A frame with a correct header and checksum around `payload`.
fn frame(kind: ObjectKind, payload: &[u8]) -> Vec<u8> {
    let mut bytes = b"EDDY".to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.push(kind as u8);
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast_hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// CRC-32 (IEEE), bit by bit: independent of the engine's `crc32fast`.
fn crc32fast_hash(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn round_trips(bytes: &[u8]) {
    if let Ok(snapshot) = TaskSnapshot::decode(bytes) {
        assert_eq!(TaskSnapshot::decode(&snapshot.encode()).as_ref(), Ok(&snapshot));
    }
    if let Ok(manifest) = Manifest::decode(bytes) {
        assert_eq!(Manifest::decode(&manifest.encode()).as_ref(), Ok(&manifest));
    }
}

/// Every stateful operator kind: tumbling and session windows, dedup, a temporal join.
fn graph() -> JobGraph {
    let pipeline = Pipeline::new();
    let script = vec![
        Scripted::Record(3, (1u8, 5i64)),
        Scripted::Record(12, (2, 7)),
        Scripted::Watermark(4),
        Scripted::Record(9, (1, 1)),
    ];
    let changes = vec![
        Scripted::Record(1, Change::Upsert { key: 1u8, value: 10i64 }),
        Scripted::Record(8, Change::Delete { key: 1 }),
    ];
    let events = pipeline.scripted_source("events", script);
    let table = pipeline.scripted_source("changes", changes);
    let key = |e: &Event| e.0;
    let tumbling = events
        .clone()
        .key_by(key)
        .window(WindowAssigner::tumbling(10))
        .allowed_lateness(3)
        .aggregate(Count);
    tumbling.output.collect();
    let sessions = events
        .clone()
        .key_by(key)
        .window(WindowAssigner::session(5))
        .aggregate(Count);
    sessions.output.collect();
    events.clone().key_by(key).deduplicate(Keep::Last, 6).output.collect();
    events.key_by(key).temporal_join(table).output.collect();
    pipeline.build().expect("a valid pipeline")
}

/// Valid snapshots of checkpoint 1, taken half-way through the scripts.
fn snapshots(graph: &JobGraph) -> (Manifest, Vec<TaskSnapshot>) {
    let mut job = Job::new(graph);
    let mut actions = Vec::new();
    for _ in 0..3 {
        job.ready_actions(&mut actions);
        for &action in actions.clone().iter() {
            job.perform(action, 1);
        }
    }
    job.trigger_checkpoint(1);
    loop {
        job.ready_actions(&mut actions);
        let deliveries: Vec<_> = actions
            .iter()
            .copied()
            .filter(|a| matches!(a, eddy_engine::Action::Deliver { .. }))
            .collect();
        if deliveries.is_empty() {
            break;
        }
        for action in deliveries {
            job.perform(action, 1);
        }
    }
    let mut snapshots = Vec::new();
    job.poll_acknowledgements(&mut snapshots);
    (job.manifest(1), snapshots)
}

fuzz_target!(|input: Input| {
    let _bug = plant_from_env();
    round_trips(&input.raw);
    if input.framed {
        round_trips(&frame(ObjectKind::TaskSnapshot, &input.raw));
        round_trips(&frame(ObjectKind::Manifest, &input.raw));
        if let Ok(value) =
            decode_object::<Vec<(u64, i64)>>(ObjectKind::TaskSnapshot, &frame(ObjectKind::TaskSnapshot, &input.raw))
        {
            let again = encode_object(ObjectKind::TaskSnapshot, &value);
            assert_eq!(
                decode_object::<Vec<(u64, i64)>>(ObjectKind::TaskSnapshot, &again),
                Ok(value)
            );
        }
    }

    let graph = graph();
    let (manifest, mut snapshots) = snapshots(&graph);
    assert_eq!(
        snapshots.len(),
        manifest.nodes.len(),
        "one task per node, all acknowledged"
    );
    for replace in input.replace.iter().take(4) {
        let snapshot = &mut snapshots[usize::from(replace.node) % manifest.nodes.len()];
        if let Some(watermark) = replace.watermark {
            snapshot.watermark = watermark;
        }
        if let Some(keyed) = &replace.keyed {
            snapshot.state.keyed = keyed
                .iter()
                .map(|(g, bytes)| (KeyGroup(u32::from(*g) % 128), bytes.clone()))
                .collect();
        }
        if let Some(operator) = &replace.operator {
            snapshot.state.operator = operator.clone();
        }
    }
    // Through the store's bytes, as a restore reads them.
    let snapshots: Vec<TaskSnapshot> = snapshots
        .iter()
        .map(|s| TaskSnapshot::decode(&s.encode()).expect("a snapshot round-trips"))
        .collect();
    if let Ok(mut job) = Job::restore(&graph, &manifest, &snapshots) {
        let config = BatchConfig {
            max_steps: 100_000,
            ..BatchConfig::default()
        };
        let _ = run_batch(&mut job, &mut InOrder, &config);
    }
});
