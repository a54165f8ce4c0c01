//! What a run committed, in a form any two runs of a pipeline compare by ([`OutputTable`]),
//! and a typed view of it for a user's properties ([`Committed`]).

use std::collections::BTreeMap;
use std::hash::Hasher;

use eddy_engine::{CommitLog, Data, Row, RowKind, Window, Windowed};
use serde::Serialize;

use crate::report::Violation;

/// One output's committed contents, in a form any two runs of a pipeline compare by: each
/// key and value as its JSON text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTable {
    /// The name the output was declared under.
    pub name: String,
    /// The committed contents.
    pub rows: Rows,
    /// A hash of the records in the order they were committed (part of the trace hash, so
    /// that an output order that differs between two runs of a seed fails determinism).
    pub digest: u64,
    /// What is wrong with the output in itself (a changelog that retracts a row it never
    /// had), whatever the reference says.
    pub problem: Option<String>,
}

/// An output's committed contents: an upsert table, or a multiset of records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rows {
    /// The last committed value per key.
    Upsert(BTreeMap<String, String>),
    /// Every committed record, with its multiplicity.
    Append(BTreeMap<String, usize>),
}

pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("outputs serialise to JSON")
}

pub(crate) fn digest_of<'a>(items: impl IntoIterator<Item = &'a String>) -> u64 {
    let mut digest = LineDigest::default();
    for item in items {
        digest.push(item);
    }
    digest.finish()
}

/// The digest of lines in order (each line's bytes, then `0xff`), fed a line at a time: what
/// [`digest_of`] computes.
#[derive(Default)]
pub(crate) struct LineDigest(rustc_hash::FxHasher);

impl LineDigest {
    pub(crate) fn push(&mut self, line: &str) {
        self.0.write(line.as_bytes());
        self.0.write_u8(0xff);
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// A changelog being materialised change by change ([`OutputTable::changelog`]): each
/// `+I`/`+U` adds its row, each `-U`/`-D` removes one; rows are kept as JSON text, written
/// through one buffer so that a row already in the table costs no allocation.
pub(crate) struct Changes<'a> {
    name: &'a str,
    table: BTreeMap<String, usize>,
    /// The digest of the changes in order, the lines `KIND ROW`.
    order: LineDigest,
    line: String,
    json: Vec<u8>,
    transactions: usize,
    open_updates: usize,
    problem: Option<String>,
}

impl<'a> Changes<'a> {
    pub(crate) fn new(name: &'a str) -> Self {
        Changes {
            name,
            table: BTreeMap::new(),
            order: LineDigest::default(),
            line: String::new(),
            json: Vec::new(),
            transactions: 0,
            open_updates: 0,
            problem: None,
        }
    }

    fn push_row<T: Serialize>(&mut self, row: &Row<T>) {
        let mut json = std::mem::take(&mut self.json);
        json.clear();
        serde_json::to_writer(&mut json, &row.row).expect("outputs serialise to JSON");
        self.push(row.kind, std::str::from_utf8(&json).expect("JSON is UTF-8"));
        self.json = json;
    }

    /// One change, its row as JSON text.
    pub(crate) fn push(&mut self, kind: RowKind, text: &str) {
        self.line.clear();
        self.line.push_str(kind.short());
        self.line.push_str(text);
        self.order.push(&self.line);
        match kind {
            RowKind::Insert | RowKind::UpdateAfter => {
                if kind == RowKind::UpdateAfter {
                    self.open_updates = self.open_updates.saturating_sub(1);
                }
                match self.table.get_mut(text) {
                    Some(n) => *n += 1,
                    None => {
                        self.table.insert(text.to_string(), 1);
                    }
                }
            }
            RowKind::UpdateBefore | RowKind::Delete => {
                if kind == RowKind::UpdateBefore {
                    self.open_updates += 1;
                }
                match self.table.get_mut(text) {
                    Some(n) if *n > 1 => *n -= 1,
                    Some(_) => {
                        self.table.remove(text);
                    }
                    None => {
                        let name = self.name;
                        self.problem.get_or_insert_with(|| {
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

    /// The end of a committed transaction: an update-before must have had its update-after.
    pub(crate) fn end_transaction(&mut self) {
        if self.open_updates > 0 {
            let (name, index) = (self.name, self.transactions);
            self.problem.get_or_insert_with(|| {
                format!("output `{name}`: committed transaction {index} has an update-before without its update-after")
            });
        }
        self.open_updates = 0;
        self.transactions += 1;
    }

    pub(crate) fn finish(self) -> OutputTable {
        OutputTable {
            name: self.name.to_string(),
            digest: self.order.finish(),
            rows: Rows::Append(self.table),
            problem: self.problem,
        }
    }
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
        let mut changes = Changes::new(name);
        for transaction in transactions {
            for row in &transaction {
                changes.push_row(row);
            }
            changes.end_transaction();
        }
        changes.finish()
    }

    /// A changelog in its line form, `+I ROW` (the row kind, a space, the row as JSON: what a
    /// live run of a changelog scenario writes, [`changelog_line`]; a line without a kind is
    /// an insert), materialised as
    /// [`OutputTable::changelog`] does, all lines as one transaction. A line that is not in
    /// that form is an error naming its index.
    pub fn changelog_lines(name: &str, lines: &[String]) -> Result<Self, (usize, String)> {
        let mut changes = Changes::new(name);
        for (index, line) in lines.iter().enumerate() {
            // A plain line (a final row, not a change) is an insert.
            let (kind, row) = match line.split_once(' ') {
                Some((kind, row)) if kind.starts_with(['+', '-']) => (kind, row),
                _ => ("+I", line.as_str()),
            };
            let kind = RowKind::from_short(kind)
                .ok_or_else(|| (index, format!("`{kind}` is not a row kind (+I, -U, +U or -D)")))?;
            // The row as written (a line function's own field order), once it reads as JSON.
            serde_json::from_str::<serde::de::IgnoredAny>(row)
                .map_err(|e| (index, format!("the row is not JSON: {e}")))?;
            changes.push(kind, row);
        }
        changes.end_transaction();
        Ok(changes.finish())
    }

    /// [`OutputTable::changelog`] of what `log` committed, transaction by transaction (read
    /// in place: a changelog scenario commits thousands of rows).
    pub fn committed_changelog<T: Data + PartialEq>(name: &str, log: &CommitLog<Row<T>>) -> Self {
        let mut changes = Changes::new(name);
        log.for_each_transaction(|_, records| {
            for record in records {
                changes.push_row(&record.value);
            }
            changes.end_transaction();
        });
        changes.finish()
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

    /// Whether the table holds no row.
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
    for table in committed.iter().chain(expected) {
        if let Some(problem) = &table.problem {
            return Err(Violation::new("changelog", problem.clone()));
        }
    }
    match first_difference(expected, committed, ["expected", "committed"]) {
        Some(difference) => Err(Violation::new("exactly-once", difference)),
        None => Ok(()),
    }
}

/// The first difference between two sets of outputs, `a` and `b` as the `labels` name them.
pub(crate) fn first_difference(a: &[OutputTable], b: &[OutputTable], [la, lb]: [&str; 2]) -> Option<String> {
    for (want, got) in a.iter().zip(b) {
        let name = &want.name;
        match (&want.rows, &got.rows) {
            (Rows::Upsert(want), Rows::Upsert(got)) => {
                let keys: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
                for key in keys {
                    let [w, g] = [want.get(key), got.get(key)].map(|v| v.map_or("nothing", String::as_str));
                    if w != g {
                        return Some(format!("output `{name}`, key {key}: {la} {w}, {lb} {g}"));
                    }
                }
            }
            (Rows::Append(want), Rows::Append(got)) => {
                let keys: std::collections::BTreeSet<&String> = want.keys().chain(got.keys()).collect();
                for record in keys {
                    let (w, g) = (want.get(record).unwrap_or(&0), got.get(record).unwrap_or(&0));
                    if w != g {
                        return Some(format!("output `{name}`: {record} {la} {w} time(s), {lb} {g} time(s)"));
                    }
                }
            }
            _ => unreachable!("both runs register the same outputs"),
        }
    }
    None
}

/// What a run committed, by the names its outputs were registered under: what a user's
/// [`property`](crate::Differential::property) reads.
pub struct Committed<'a> {
    tables: &'a [OutputTable],
}

impl<'a> Committed<'a> {
    /// The committed `tables`, read by name.
    pub fn new(tables: &'a [OutputTable]) -> Self {
        Committed { tables }
    }

    /// The rows output `name` holds, each as often as it holds it: an upsert table's last
    /// value per key (in key order), an append stream's records (as `Record<T>`, with their
    /// timestamps), a changelog's or a table's rows. Panics, naming the registered outputs, if there is none called `name`, and if
    /// a row does not read as a `T` (both mistakes of the test, not of the pipeline).
    pub fn rows<T: serde::de::DeserializeOwned>(&self, name: &str) -> Vec<T> {
        let table = self.tables.iter().find(|t| t.name == name).unwrap_or_else(|| {
            let names: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
            panic!("no output is registered as `{name}`; the outputs are {names:?}")
        });
        table
            .lines()
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!(
                        "a row of output `{name}` does not read as {}: {e}: {line}",
                        std::any::type_name::<T>()
                    )
                })
            })
            .collect()
    }
}
