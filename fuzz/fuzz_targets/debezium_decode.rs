//! Arbitrary bytes as a line of Debezium JSON (`cdc::DebeziumJson`, docs/semantics.md,
//! "Change data capture"): an event, a tombstone or an error naming a field, never a panic,
//! in either mode and for typed and untyped rows; an event re-encoded, bare and wrapped,
//! reads back to itself.
#![no_main]

use eddy_engine::cdc::{encode_line, ChangeEvent, DebeziumJson, DebeziumMode};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A typed row, its other columns optional.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: i64,
    name: Option<String>,
}

fn reads_back<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(json: DebeziumJson, line: &str) {
    match json.decode::<T>(line) {
        Ok(Some(event)) => {
            for wrapped in [false, true] {
                let again: Option<ChangeEvent<T>> = json
                    .decode(&encode_line(&event, wrapped))
                    .unwrap_or_else(|e| panic!("an encoded event does not read: {e}"));
                assert_eq!(again.as_ref(), Some(&event));
            }
        }
        Ok(None) => {}
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    for mode in [DebeziumMode::Retract, DebeziumMode::Upsert] {
        let json = DebeziumJson::new(mode);
        reads_back::<serde_json::Value>(json, &line);
        reads_back::<Row>(json, &line);
    }
});
