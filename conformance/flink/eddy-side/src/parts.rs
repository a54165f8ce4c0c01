//! What every eddy-side pipeline is made of: the script as a source and the sink that tags
//! each output with the last watermark its task saw.

use std::sync::{Arc, Mutex};

use eddy::engine::Row;
use eddy::{Record, Scripted, Sink};

use crate::compare::Tagged;
use crate::script::{Element, Script};

/// A record: key, timestamp (also kept in the value, as the Flink side's `Tuple3`), value.
pub type Event = (String, i64, i64);

/// The script's records `(key, ts, value)` and watermarks.
pub fn scripted(script: &Script) -> Vec<Scripted<Event>> {
    script
        .elements
        .iter()
        .filter_map(|e| match e {
            Element::Record { key, ts, value, .. } => Some(Scripted::Record(*ts, (key.clone(), *ts, *value))),
            Element::Watermark(t) => Some(Scripted::Watermark(*t)),
            Element::Savepoint => None,
        })
        .collect()
}

/// The script as a changelog of rows `(key, ts, value)`.
pub fn scripted_rows(script: &Script) -> Vec<Scripted<Row<Event>>> {
    script
        .elements
        .iter()
        .filter_map(|e| match e {
            Element::Record { key, ts, value, kind } => {
                Some(Scripted::Record(*ts, Row::new(*kind, (key.clone(), *ts, *value))))
            }
            Element::Watermark(t) => Some(Scripted::Watermark(*t)),
            Element::Savepoint => None,
        })
        .collect()
}

/// The sink: one clone per sink task, each with the last watermark its task saw.
#[derive(Clone)]
pub struct TagSink {
    stream: String,
    watermark: i64,
    outputs: Arc<Mutex<Vec<Tagged>>>,
}

impl TagSink {
    pub fn new(stream: String, outputs: &Arc<Mutex<Vec<Tagged>>>) -> Self {
        TagSink {
            stream,
            watermark: i64::MIN,
            outputs: Arc::clone(outputs),
        }
    }
}

impl Sink<String> for TagSink {
    fn write(&mut self, records: Vec<Record<String>>) {
        let mut outputs = self.outputs.lock().unwrap_or_else(|e| e.into_inner());
        outputs.extend(records.into_iter().map(|r| Tagged {
            stream: self.stream.clone(),
            watermark: self.watermark,
            payload: r.value,
        }));
    }

    fn write_watermark(&mut self, watermark: i64) {
        self.watermark = watermark;
    }
}
