//! Comparing what the two engines emitted, and showing a disagreement.
//!
//! Window and timer outputs are compared as multisets per watermark epoch and stream (main
//! and late side output): within one epoch neither engine promises an order (Flink's test
//! harness sorts between watermarks too), across epochs both must agree on when each result
//! came. Changelogs (`KIND KEY ...`) are compared as Flink's harness does: each key's changes
//! in order, and the tables they materialise into.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::cases::{Case, Kind};
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

/// The prefix of the streams a restored job writes (`restored-main`, `restored-late`): a
/// restore case compares what came before the restore and what came after it, each as
/// multisets per epoch (and so the whole output too).
pub const RESTORED: &str = "restored-";

/// `(epoch, stream)` → the sorted payloads emitted then.
type ByEpoch = BTreeMap<(usize, String), Vec<String>>;

fn by_epoch(script: &Script, outputs: &Outputs) -> ByEpoch {
    // A restored job's sink starts without a watermark (Flink's at `Long.MIN_VALUE`): its
    // outputs before the first watermark after the restore are in the restore point's epoch.
    let restored_from = script.savepoint().map_or(i64::MIN, |(_, watermark)| watermark);
    let mut map = ByEpoch::new();
    for o in outputs {
        let watermark = match o.stream.starts_with(RESTORED) {
            true => o.watermark.max(restored_from),
            false => o.watermark,
        };
        map.entry((script.epoch(watermark), o.stream.clone()))
            .or_default()
            .push(o.payload.clone());
    }
    for payloads in map.values_mut() {
        payloads.sort();
    }
    map
}

/// Each result key's changes in order: the key is the first `key_fields` fields after the
/// row kind, or the whole row, a retraction then cancelling the insertion before it. Keyed by
/// the whole row (a join), a change is compared by its sign only: an inner join's pair takes
/// the kind of the change that came last (`+I`, or the input's `+U`; `-D` or `-U`), and which
/// of the join's two inputs comes last is the schedule's choice in both engines.
fn by_key(outputs: &Outputs, key_fields: Option<usize>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for o in outputs {
        let fields = o.payload.split(' ').skip(1);
        let key: Vec<&str> = match key_fields {
            Some(n) => fields.take(n).collect(),
            None => fields.collect(),
        };
        let key = format!("{} {}", o.stream, key.join(" "));
        let changes = map.entry(key).or_default();
        let adds = |change: &str| change.starts_with('+');
        match changes.last() {
            Some(last) if key_fields.is_none() && adds(last) && !adds(&o.payload) => {
                changes.pop();
            }
            _ if key_fields.is_none() => {
                let row = o.payload.split_once(' ').map_or("", |(_, row)| row);
                changes.push(format!("{} {row}", if adds(&o.payload) { '+' } else { '-' }));
            }
            _ => changes.push(o.payload.clone()),
        }
    }
    map.retain(|_, changes| !changes.is_empty());
    map
}

/// The changelog applied to a table: each row's multiplicity (`+I`, `+U` add one, `-U`, `-D`
/// take one; a count below zero is a retraction of a row that was not there).
fn table(outputs: &Outputs) -> BTreeMap<String, i64> {
    let mut rows: BTreeMap<String, i64> = BTreeMap::new();
    for o in outputs {
        let (kind, row) = o.payload.split_once(' ').unwrap_or((o.payload.as_str(), ""));
        let change = match kind {
            "+I" | "+U" => 1,
            "-U" | "-D" => -1,
            _ => 0,
        };
        *rows.entry(format!("{} {row}", o.stream)).or_default() += change;
    }
    rows.retain(|_, n| *n != 0);
    rows
}

/// Whether both engines agree on `script` by the case's rule.
pub fn agree(case: &Case, script: &Script, eddy: &Outputs, flink: &Outputs) -> bool {
    match case.kind {
        Kind::Sql(sql) => {
            let key_fields = sql.query.key_fields();
            table(eddy) == table(flink) && (!sql.ordered || by_key(eddy, key_fields) == by_key(flink, key_fields))
        }
        Kind::Window(_) | Kind::Process | Kind::TemporalJoin { .. } => {
            by_epoch(script, eddy) == by_epoch(script, flink)
        }
    }
}

/// Both outputs, by the case's rule.
pub fn show(case: &Case, script: &Script, eddy: &Outputs, flink: &Outputs) -> String {
    match case.kind {
        Kind::Sql(_) => show_changelogs(eddy, flink),
        Kind::Window(_) | Kind::Process | Kind::TemporalJoin { .. } => show_epochs(script, eddy, flink),
    }
}

/// Both changelogs in the order emitted, then the tables they end with; a table row the
/// other engine does not have (as often) is marked `*`.
fn show_changelogs(eddy: &Outputs, flink: &Outputs) -> String {
    let mut text = String::new();
    let tables = [table(eddy), table(flink)];
    for (i, (name, outputs)) in [("eddy", eddy), ("flink", flink)].into_iter().enumerate() {
        let _ = writeln!(text, "    {name} changelog:");
        for o in outputs {
            let _ = writeln!(text, "      {} {}", o.stream, o.payload);
        }
        let _ = writeln!(text, "    {name} table:");
        for (row, n) in &tables[i] {
            let marker = if tables[1 - i].get(row) == Some(n) { ' ' } else { '*' };
            let _ = writeln!(text, "     {marker}{row} (x{n})");
        }
    }
    text
}

/// Both outputs, epoch by epoch; a line the other engine did not emit (as often) is marked
/// `*`.
fn show_epochs(script: &Script, eddy: &Outputs, flink: &Outputs) -> String {
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
    use crate::cases;
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
        let window = &cases::all()[0];
        let agree = |a: &Outputs, b: &Outputs| agree(window, &script, a, b);
        let a = vec![tagged("main", 10, "x"), tagged("main", 15, "y")];
        let b = vec![tagged("main", 12, "y"), tagged("main", 10, "x")];
        assert!(agree(&a, &b));
        let c = vec![tagged("main", 10, "x"), tagged("main", 20, "y")];
        assert!(!agree(&a, &c));
        let d = vec![tagged("main", 10, "x"), tagged("late", 10, "y")];
        assert!(!agree(&a, &d));
        let twice = vec![
            tagged("main", 10, "x"),
            tagged("main", 10, "x"),
            tagged("main", 10, "y"),
        ];
        assert!(!agree(&a, &twice), "multisets: a repeated output counts");
        let shown = show(window, &script, &a, &twice);
        assert!(shown.contains("*epoch 1 (w 10 .. w 20) main: x"), "{shown}");
    }

    #[test]
    fn changelogs_agree_per_key_in_order_and_as_tables() {
        let case = |name: &str| cases::all().into_iter().find(|c| c.name == name).unwrap();
        let (ordered, tables_only) = (case("sql-group-count"), case("sql-dedup-keep-first"));
        let script = Script::default();
        let rows = |rows: &[&str]| -> Outputs { rows.iter().map(|r| tagged("main", 0, r)).collect() };
        let a = rows(&["+I a 1", "+I b 1", "-U a 1", "+U a 2"]);
        let b = rows(&["+I a 1", "-U a 1", "+I b 1", "+U a 2"]);
        assert!(agree(&ordered, &script, &a, &b), "keys interleave freely");
        let c = rows(&["+I a 1", "-D a 1", "+I a 2", "+I b 1"]);
        let join = case("sql-inner-join");
        let (x, y) = (rows(&["+I a 1 2", "+I a 3 2"]), rows(&["+I a 3 2", "+I a 1 2"]));
        assert!(agree(&join, &script, &x, &y), "a join's rows are their own keys");
        let z = rows(&["+I a 1 null", "+I a 3 2", "-D a 1 null", "+I a 1 2"]);
        assert!(agree(&join, &script, &x, &z), "an insertion retracted again cancels");
        let u = rows(&["+I a 1 2", "+U a 3 2"]);
        assert!(agree(&join, &script, &x, &u), "a join's pairs compare by sign");
        assert!(!agree(&join, &script, &x, &rows(&["+I a 1 2", "-U a 3 2"])));
        assert!(!agree(&ordered, &script, &a, &c), "the same table, other changes");
        assert!(agree(&tables_only, &script, &a, &c));
        let d = rows(&["+I a 2", "+I b 1", "+I b 1"]);
        assert!(!agree(&tables_only, &script, &a, &d));
        assert!(show(&tables_only, &script, &a, &d).contains("*main b 1 (x2)"));
    }
}
