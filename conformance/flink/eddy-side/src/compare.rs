//! Comparing what the two engines emitted, and showing a disagreement.
//!
//! Outputs are compared as multisets per watermark epoch and stream (main and late side
//! output): within one epoch neither engine promises an order (Flink's test harness sorts
//! between watermarks too), across epochs both must agree on when each result came.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::script::Script;

/// One output: its stream (`main`, `late`; `error` for a run that failed), the last
/// watermark its task saw before it, and what it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tagged {
    pub stream: String,
    pub watermark: i64,
    pub payload: String,
}

pub type Outputs = Vec<Tagged>;

/// `(epoch, stream)` → the sorted payloads emitted then.
type ByEpoch = BTreeMap<(usize, String), Vec<String>>;

fn by_epoch(script: &Script, outputs: &Outputs) -> ByEpoch {
    let mut map = ByEpoch::new();
    for o in outputs {
        map.entry((script.epoch(o.watermark), o.stream.clone()))
            .or_default()
            .push(o.payload.clone());
    }
    for payloads in map.values_mut() {
        payloads.sort();
    }
    map
}

/// Whether both engines emitted the same multiset of outputs in every epoch.
pub fn agree(script: &Script, eddy: &Outputs, flink: &Outputs) -> bool {
    by_epoch(script, eddy) == by_epoch(script, flink)
}

/// Both outputs, epoch by epoch; a line the other engine did not emit (as often) is marked
/// `*`.
pub fn show(script: &Script, eddy: &Outputs, flink: &Outputs) -> String {
    let (eddy, flink) = (by_epoch(script, eddy), by_epoch(script, flink));
    let watermarks = script.watermarks();
    let mut text = String::new();
    for (name, mine, theirs) in [("eddy", &eddy, &flink), ("flink", &flink, &eddy)] {
        let _ = writeln!(text, "    {name}:");
        if mine.is_empty() {
            let _ = writeln!(text, "      (nothing)");
        }
        for ((epoch, stream), payloads) in mine {
            let mut others = theirs.get(&(*epoch, stream.clone())).cloned().unwrap_or_default();
            let span = epoch_span(&watermarks, *epoch);
            for payload in payloads {
                let marker = match others.iter().position(|o| o == payload) {
                    Some(i) => {
                        others.remove(i);
                        ' '
                    }
                    None => '*',
                };
                let _ = writeln!(text, "     {marker}epoch {epoch} ({span}) {stream}: {payload}");
            }
        }
    }
    text
}

/// Epoch `n` holds what a task emitted after the script's `n`-th watermark reached it and
/// before the next one did: records' late firings after watermark `n`, and the firings that
/// watermark `n + 1` (or the end of input) caused. Shown as `w A .. w B`.
fn epoch_span(watermarks: &[i64], epoch: usize) -> String {
    let from = match epoch {
        0 => "start".to_string(),
        e => watermarks.get(e - 1).map_or("end".to_string(), |w| format!("w {w}")),
    };
    let to = watermarks.get(epoch).map_or("end".to_string(), |w| format!("w {w}"));
    format!("{from} .. {to}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Element;

    fn tagged(stream: &str, watermark: i64, payload: &str) -> Tagged {
        Tagged {
            stream: stream.to_string(),
            watermark,
            payload: payload.to_string(),
        }
    }

    #[test]
    fn order_within_an_epoch_does_not_matter_but_the_epoch_does() {
        let script = Script {
            elements: vec![Element::Watermark(10), Element::Watermark(20)],
        };
        let a = vec![tagged("main", 10, "x"), tagged("main", 15, "y")];
        let b = vec![tagged("main", 12, "y"), tagged("main", 10, "x")];
        assert!(agree(&script, &a, &b));
        let c = vec![tagged("main", 10, "x"), tagged("main", 20, "y")];
        assert!(!agree(&script, &a, &c));
        let d = vec![tagged("main", 10, "x"), tagged("late", 10, "y")];
        assert!(!agree(&script, &a, &d));
        let twice = vec![
            tagged("main", 10, "x"),
            tagged("main", 10, "x"),
            tagged("main", 10, "y"),
        ];
        assert!(!agree(&script, &a, &twice), "multisets: a repeated output counts");
        let shown = show(&script, &a, &twice);
        assert!(shown.contains("*epoch 1 (w 10 .. w 20) main: x"), "{shown}");
    }
}
