//! Records and watermarks from the fuzzer's bytes into a tumbling count with allowed
//! lateness; every record must be counted in exactly one final result or be late.
#![no_main]

use std::collections::BTreeMap;

use eddy_engine::{run_to_end, Count, Pipeline, Scripted, WindowAssigner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut script = Vec::new();
    let mut records = 0u64;
    for chunk in data.chunks_exact(3) {
        let ts = i64::from(i16::from_le_bytes([chunk[0], chunk[1]]));
        if chunk[2] & 0x80 != 0 {
            script.push(Scripted::Watermark(ts));
        } else {
            script.push(Scripted::Record(ts, chunk[2] % 8));
            records += 1;
        }
    }
    let pipeline = Pipeline::new().with_parallelism(2);
    let counted = pipeline
        .scripted_source("fuzz", script)
        .key_by(|k: &u8| *k)
        .window(WindowAssigner::tumbling(100))
        .allowed_lateness(50)
        .aggregate(Count);
    let results = counted.output.collect();
    let late = counted.late.collect();
    let summary = run_to_end(&pipeline.build().unwrap()).unwrap();
    let mut last = BTreeMap::new();
    for r in results.records() {
        last.insert((r.value.key, r.value.window), r.value.value);
    }
    let counted: u64 = last.values().sum();
    assert_eq!(counted + late.records().len() as u64, records, "conservation");
    assert_eq!(summary.state_entries, 0, "bounded state");
});
