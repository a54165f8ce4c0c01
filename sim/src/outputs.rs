//! The outputs a pipeline declares, once, and how the driver attaches their sinks.
//!
//! A pipeline says what each output is (an upsert table by key, an append stream, a
//! changelog, session results) and, if it likes, how one of its rows is written as a line.
//! It never picks the sink: the driver does, through the [`Outputs`] it hands in.
//!
//! - [`Outputs::default`] (the simulator, the batch reference, `eddy run`): each output
//!   commits into a [`CommitLog`] by two-phase commit; the checks read the logs, the
//!   differential oracle compares their [`OutputTable`]s, and [`Outputs::lines`] writes the
//!   final rows.
//! - [`Outputs::live`] (`eddy run --live`): each output's lines go to the driver's
//!   [`LineCommitter`] (a file, a database): an append stream's and a final upsert's
//!   ([`Outputs::upsert_final`]) as plain lines, each written once; the other outputs'
//!   changes as changelog lines (`+I LINE`, `-U LINE`, `+U LINE`, `-D LINE`). Materialised
//!   (`eddy materialize`, where a plain line is an insert) they are the batch run's lines. An
//!   upsert output that never turns final remembers each key's last line to retract it, as
//!   Flink's upsert materialiser does.
//!
//! Outputs a pipeline writes with a sink of its own ([`Outputs::table`],
//! [`Outputs::upsert_with`], [`Outputs::append_with`]) are checked, never written as lines.

use std::any::Any;
use std::cell::OnceCell;
use std::collections::BTreeMap;

use eddy_engine::{
    CommitLog, Committer, Data, Key, KeyedProcessFunction, KeyedStream, ProcessContext, Record, Row, Stream, Table,
    TimeDomain, Timestamp, Window, Windowed,
};

use crate::output::{digest_of, json, Changes, OutputTable, Rows};
use eddy_engine::lines::LineCommitter;
use eddy_engine::lines::LiveTable;

/// The outputs a pipeline declares (module docs).
pub struct Outputs {
    attach: Attach,
    declared: Vec<Declared>,
    /// The tables, once materialised ([`Outputs::tables`]).
    tables: OnceCell<Vec<OutputTable>>,
}

impl Default for Outputs {
    /// Outputs that commit into commit logs (the simulator's, a batch run's).
    fn default() -> Self {
        Outputs {
            attach: Attach::Logs,
            declared: Vec::new(),
            tables: OnceCell::new(),
        }
    }
}

enum Attach {
    Logs,
    Lines(LiveSinks),
}

/// Where a live run's outputs go ([`Outputs::live`]): the output named in `table` to that
/// committer (a database table), every other output to `lines` (the output file).
#[derive(Clone, Default)]
pub struct LiveSinks {
    /// The committer of every output but the table's.
    pub lines: Option<LineCommitter>,
    /// The output written to a database table, by name, and its committer.
    pub table: Option<(String, LineCommitter)>,
}

impl LiveSinks {
    /// Every output's lines to `committer`.
    pub fn lines(committer: LineCommitter) -> Self {
        LiveSinks {
            lines: Some(committer),
            table: None,
        }
    }
}

/// The outputs of a pipeline as a live run writes them ([`Scenario::live_outputs`](crate::Scenario::live_outputs)).
#[derive(Clone, Debug, Default)]
pub struct LiveOutputs {
    /// Every output's name, in the order the pipeline declares them.
    pub names: Vec<String>,
    /// The one output that declares a database table, by name, and its table.
    pub table: Option<(String, LiveTable)>,
}

type Reader<T> = Box<dyn Fn() -> T + Send + Sync>;

struct Declared {
    name: String,
    /// The commit log (`CommitLog<T>`) a check reads by name ([`Outputs::log`]).
    log: Option<Box<dyn Any + Send + Sync>>,
    table: Reader<OutputTable>,
    /// The final rows as lines; `None` for an output the pipeline writes itself.
    lines: Option<Reader<Vec<String>>>,
    schema: Option<LiveTable>,
}

/// One declared output, to say more of it.
pub struct Declaration<'a>(&'a mut Declared);

impl Declaration<'_> {
    /// The columns of its lines (each a JSON object) and their primary key, for a live run
    /// into a database table (`eddy run --live --postgres`).
    pub fn in_table(self, schema: LiveTable) {
        self.0.schema = Some(schema);
    }
}

impl Outputs {
    /// Outputs whose changes go, as changelog lines, to `sinks` (a live run's).
    pub fn live(sinks: LiveSinks) -> Self {
        Outputs {
            attach: Attach::Lines(sinks),
            declared: Vec::new(),
            tables: OnceCell::new(),
        }
    }

    fn declare(&mut self, name: &str, declared: Declared) -> Declaration<'_> {
        assert!(
            self.declared.iter().all(|d| d.name != name),
            "two outputs are declared as `{name}`: each needs a name of its own"
        );
        self.declared.push(declared);
        Declaration(self.declared.last_mut().expect("just pushed"))
    }

    /// A live run's output: `keyed`'s records become lines through `lines` and go to
    /// `committer`; nothing of it is read back.
    fn write_lines<T, K, KS, P>(
        &mut self,
        name: &str,
        keyed: KeyedStream<T, K, KS>,
        lines: P,
        committer: LineCommitter,
    ) -> Declaration<'_>
    where
        T: Data,
        K: Key,
        KS: Fn(&T) -> K + Clone + Send + 'static,
        P: KeyedProcessFunction<K, T, Out = String>,
    {
        keyed
            .process(lines)
            .name(&format!("{name}-lines"))
            .sink_transactional(committer);
        self.declare(name, Declared::written_elsewhere(name))
    }

    /// The live sink of output `name`, or `None` when it commits into a log.
    fn committer(&self, name: &str) -> Option<LineCommitter> {
        match &self.attach {
            Attach::Logs => None,
            Attach::Lines(LiveSinks {
                table: Some((table, committer)),
                ..
            }) if table == name => Some(committer.clone()),
            Attach::Lines(sinks) => Some(sinks.lines.clone().unwrap_or_else(|| {
                panic!("the live run gives output `{name}` no sink: only its table's output goes to the database")
            })),
        }
    }

    /// An upsert table: the last committed value per `key` wins (window results by key and
    /// window, a running total by key). The stream goes by key into its sink, so a key's
    /// updates keep their order. A line is `{"output":NAME,"key":KEY,"value":VALUE}`.
    pub fn upsert<T, K, F>(&mut self, name: &str, stream: Stream<T>, key: F) -> Declaration<'_>
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let (output, by) = (json(&name), key.clone());
        self.upsert_as(name, stream, key, move |v: &T| {
            format!(r#"{{"output":{output},"key":{},"value":{}}}"#, json(&by(v)), json(v))
        })
    }

    /// [`Outputs::upsert`] with each row written as `line(row)`.
    pub fn upsert_as<T, K, F, L>(&mut self, name: &str, stream: Stream<T>, key: F, line: L) -> Declaration<'_>
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
        L: Fn(&T) -> String + Clone + Send + Sync + 'static,
    {
        let keyed = stream.key_by(key.clone());
        if let Some(committer) = self.committer(name) {
            return self.write_lines(name, keyed, UpsertLines { line }, committer);
        }
        let log = CommitLog::new();
        keyed.sink_transactional(log.clone());
        let values = {
            let log = log.clone();
            move || log.records().into_iter().map(|r| r.value).collect::<Vec<T>>()
        };
        let (table_values, table_key, table_name) = (values.clone(), key.clone(), name.to_string());
        self.declare(
            name,
            Declared {
                name: name.to_string(),
                log: Some(Box::new(log)),
                table: Box::new(move || OutputTable::upsert(&table_name, table_values(), &table_key)),
                lines: Some(Box::new(move || {
                    let last: BTreeMap<String, T> = values().into_iter().map(|v| (json(&key(&v)), v)).collect();
                    last.values().map(&line).collect()
                })),
                schema: None,
            },
        )
    }

    /// [`Outputs::upsert_as`] for results that stop changing: a key's row is final once the
    /// watermark reaches `final_at(row)` (a window's result with allowed lateness `L`:
    /// `max_timestamp + L`, after which a record of the window is late). A live run then
    /// writes each key's row once, when it is final, as a plain line: no retractions, and
    /// no state for keys that are done.
    pub fn upsert_final<T, K, F, L>(
        &mut self,
        name: &str,
        stream: Stream<T>,
        key: F,
        line: L,
        final_at: fn(&T) -> Timestamp,
    ) -> Declaration<'_>
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
        L: Fn(&T) -> String + Clone + Send + Sync + 'static,
    {
        if let Some(committer) = self.committer(name) {
            return self.write_lines(name, stream.key_by(key), FinalLines { line, final_at }, committer);
        }
        self.upsert_as(name, stream, key, line)
    }

    /// Session window results: by key and window, where a session that a merged session of
    /// the same key covers is superseded ([`OutputTable::sessions`]). A line is
    /// `{"output":NAME,"key":KEY,"value":RESULT}`, the key being the session's key and window.
    pub fn sessions<K: Key, V: Data + PartialEq>(
        &mut self,
        name: &str,
        stream: Stream<Windowed<K, V>>,
    ) -> Declaration<'_> {
        let output = json(&name);
        self.sessions_as(name, stream, move |w: &Windowed<K, V>| {
            format!(
                r#"{{"output":{output},"key":{},"value":{}}}"#,
                json(&(&w.key, w.window)),
                json(w)
            )
        })
    }

    /// [`Outputs::sessions`] with each result written as `line(result)`.
    pub fn sessions_as<K, V, L>(&mut self, name: &str, stream: Stream<Windowed<K, V>>, line: L) -> Declaration<'_>
    where
        K: Key,
        V: Data + PartialEq,
        L: Fn(&Windowed<K, V>) -> String + Clone + Send + Sync + 'static,
    {
        let keyed = stream.key_by(|w: &Windowed<K, V>| w.key.clone());
        if let Some(committer) = self.committer(name) {
            return self.write_lines(name, keyed, SessionLines { line }, committer);
        }
        let log = CommitLog::new();
        keyed.sink_transactional(log.clone());
        let values = {
            let log = log.clone();
            move || {
                log.records()
                    .into_iter()
                    .map(|r| r.value)
                    .collect::<Vec<Windowed<K, V>>>()
            }
        };
        let (table_values, table_name) = (values.clone(), name.to_string());
        self.declare(
            name,
            Declared {
                name: name.to_string(),
                log: Some(Box::new(log)),
                table: Box::new(move || OutputTable::sessions(&table_name, table_values())),
                lines: Some(Box::new(move || {
                    let mut lines: Vec<String> = live_sessions(values()).iter().map(&line).collect();
                    lines.sort();
                    lines
                })),
                schema: None,
            },
        )
    }

    /// A changelog: the committed rows materialised into a table ([`OutputTable::changelog`]).
    /// The stream goes by `key` (the rows' primary key) into its sink, so that an update's
    /// `-U` and `+U` commit together. A line is `{"output":NAME,"row":ROW}`.
    pub fn changelog<T, K, F>(&mut self, name: &str, stream: Stream<Row<T>>, key: F) -> Declaration<'_>
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let output = json(&name);
        self.changelog_as(name, stream, key, move |row: &T| {
            format!(r#"{{"output":{output},"row":{}}}"#, json(row))
        })
    }

    /// [`Outputs::changelog`] with each row written as `line(row)`.
    pub fn changelog_as<T, K, F, L>(&mut self, name: &str, stream: Stream<Row<T>>, key: F, line: L) -> Declaration<'_>
    where
        T: Data + PartialEq,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
        L: Fn(&T) -> String + Clone + Send + Sync + 'static,
    {
        let keyed = stream.key_by(move |r: &Row<T>| key(&r.row));
        if let Some(committer) = self.committer(name) {
            return self.write_lines(name, keyed, ChangelogLines { line }, committer);
        }
        let log = CommitLog::new();
        keyed.sink_transactional(log.clone());
        let (table_log, table_name) = (log.clone(), name.to_string());
        let lines_log = log.clone();
        self.declare(
            name,
            Declared {
                name: name.to_string(),
                log: Some(Box::new(log)),
                table: Box::new(move || OutputTable::committed_changelog(&table_name, &table_log)),
                lines: Some(Box::new(move || {
                    let mut changes = Changes::new("lines");
                    for r in lines_log.records() {
                        changes.push(r.value.kind, &line(&r.value.row));
                    }
                    let mut lines = changes.finish().lines();
                    lines.sort();
                    lines
                })),
                schema: None,
            },
        )
    }

    /// An append stream: the committed records (with their timestamps) as a multiset. A
    /// line is `{"output":NAME,"record":{"ts":TS,"value":VALUE}}`.
    pub fn append<T: Data + PartialEq>(&mut self, name: &str, stream: Stream<T>) -> Declaration<'_> {
        let output = json(&name);
        self.append_as(name, stream, move |r: &Record<T>| {
            format!(r#"{{"output":{output},"record":{}}}"#, json(r))
        })
    }

    /// [`Outputs::append`] with each record written as `line(record)`.
    pub fn append_as<T, L>(&mut self, name: &str, stream: Stream<T>, line: L) -> Declaration<'_>
    where
        T: Data + PartialEq,
        L: Fn(&Record<T>) -> String + Clone + Send + Sync + 'static,
    {
        self.append_lines(name, stream, move |r: &Record<T>| vec![line(r)])
    }

    /// [`Outputs::append`] with each record written as the lines `lines(record)` (a result
    /// that holds several rows, one line each).
    pub fn append_lines<T, L>(&mut self, name: &str, stream: Stream<T>, lines: L) -> Declaration<'_>
    where
        T: Data + PartialEq,
        L: Fn(&Record<T>) -> Vec<String> + Clone + Send + Sync + 'static,
    {
        if let Some(committer) = self.committer(name) {
            return self.write_lines(name, stream.key_by(|_: &T| ()), AppendLines { lines }, committer);
        }
        let log = stream.collect_committed();
        let (table_log, table_name, lines_log) = (log.clone(), name.to_string(), log.clone());
        self.declare(
            name,
            Declared {
                name: name.to_string(),
                log: Some(Box::new(log)),
                table: Box::new(move || OutputTable::append(&table_name, table_log.records())),
                lines: Some(Box::new(move || {
                    let mut all: Vec<String> = lines_log.records().iter().flat_map(&lines).collect();
                    all.sort();
                    all
                })),
                schema: None,
            },
        )
    }

    /// A table written by [`Stream::sink_table`] or [`Stream::sink_upsert`]: its committed
    /// rows by primary key, and what its changelog did wrong (a retraction of a row the table
    /// does not hold) as a problem of the output.
    pub fn table<K, V, F>(&mut self, name: &str, table: Table<K, V, F>)
    where
        K: Key,
        V: Data + PartialEq,
        F: Fn(&V) -> K + Clone + Send + Sync + 'static,
    {
        let output = name.to_string();
        let read = Box::new(move || {
            let rows: BTreeMap<String, String> = table.rows().iter().map(|(key, row)| (json(key), json(row))).collect();
            OutputTable {
                name: output.clone(),
                digest: digest_of(rows.iter().flat_map(|(key, row)| [key, row])),
                rows: Rows::Upsert(rows),
                problem: table
                    .problems()
                    .into_iter()
                    .next()
                    .map(|p| format!("output `{output}`: {p}")),
            }
        });
        self.declare(name, Declared::own_sink(name, read));
    }

    /// An upsert output written by your own committer (a database table, a file): `read`
    /// returns what the external system holds, as a test would read the real table.
    pub fn upsert_with<T, K, F, C, R>(&mut self, name: &str, stream: Stream<T>, key: F, committer: C, read: R)
    where
        T: Data,
        K: Key,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
        C: Committer<T>,
        R: Fn() -> Vec<T> + Send + Sync + 'static,
    {
        stream.key_by(key.clone()).sink_transactional(committer);
        let output = name.to_string();
        let read = Box::new(move || OutputTable::upsert(&output, read(), &key));
        self.declare(name, Declared::own_sink(name, read));
    }

    /// An append output written by your own committer; `read` returns the rows it holds.
    pub fn append_with<T, C, R>(&mut self, name: &str, stream: Stream<T>, committer: C, read: R)
    where
        T: Data,
        C: Committer<T>,
        R: Fn() -> Vec<T> + Send + Sync + 'static,
    {
        stream.sink_transactional(committer);
        let output = name.to_string();
        let read = Box::new(move || OutputTable::append(&output, read()));
        self.declare(name, Declared::own_sink(name, read));
    }

    /// A commit log the pipeline's own sink writes into (one that commits otherwise than by
    /// two-phase commit, in a test of the checks): read by name like any output's, compared
    /// as an append stream, never written as lines.
    pub fn own_log<T: Data + PartialEq>(&mut self, name: &str, log: CommitLog<T>) {
        let (output, read) = (name.to_string(), log.clone());
        let table = Box::new(move || OutputTable::append(&output, read.records()));
        let declared = Declared {
            log: Some(Box::new(log)),
            ..Declared::own_sink(name, table)
        };
        self.declare(name, declared);
    }

    /// Every output's table, materialised at the first call, once the run is over (a
    /// changelog's is most of a changelog scenario's checking time, and the oracles and the
    /// digest all read it).
    pub fn tables(&self) -> &[OutputTable] {
        self.tables
            .get_or_init(|| self.declared.iter().map(|d| (d.table)()).collect())
    }

    /// The final rows of every output eddy writes, as lines, output by output (what `eddy
    /// run` prints; the lines of a live run, materialised, are the same).
    pub fn lines(&self) -> Vec<String> {
        self.declared
            .iter()
            .filter_map(|d| d.lines.as_ref())
            .flat_map(|lines| lines())
            .collect()
    }

    /// The commit log of output `name`, for a hand-written check: a `CommitLog<T>` of an
    /// upsert, append or session output, a `CommitLog<Row<T>>` of a changelog. Panics,
    /// naming the outputs, if there is no such output or `T` is not its row type (both
    /// mistakes of the check, not of the pipeline).
    pub fn log<T: Data>(&self, name: &str) -> CommitLog<T> {
        let declared = self.declared.iter().find(|d| d.name == name).unwrap_or_else(|| {
            let names: Vec<&str> = self.declared.iter().map(|d| d.name.as_str()).collect();
            panic!("no output is declared as `{name}`; the outputs are {names:?}")
        });
        let log = declared.log.as_ref().and_then(|log| log.downcast_ref::<CommitLog<T>>());
        log.cloned().unwrap_or_else(|| {
            panic!(
                "output `{name}` has no commit log of {} (a live run's, one with a sink of its own, or another row type)",
                std::any::type_name::<T>()
            )
        })
    }

    /// The outputs as a live run writes them: their names, and the table of the one that
    /// declares one ([`Declaration::in_table`]; none if several do).
    pub fn live_outputs(&self) -> LiveOutputs {
        let mut tables = self
            .declared
            .iter()
            .filter_map(|d| d.schema.map(|s| (d.name.clone(), s)));
        let first = tables.next();
        LiveOutputs {
            names: self.declared.iter().map(|d| d.name.clone()).collect(),
            table: first.filter(|_| tables.next().is_none()),
        }
    }
}

impl Declared {
    /// An output of a live run: written as lines to the driver's committer, read by nothing.
    fn written_elsewhere(name: &str) -> Self {
        let output = name.to_string();
        Declared {
            name: name.to_string(),
            log: None,
            table: Box::new(move || OutputTable::append(&output, Vec::<()>::new())),
            lines: None,
            schema: None,
        }
    }

    fn own_sink(name: &str, table: Reader<OutputTable>) -> Self {
        Declared {
            name: name.to_string(),
            log: None,
            table,
            lines: None,
            schema: None,
        }
    }
}

/// Session results, a session superseded by a merged one of the same key dropped.
fn live_sessions<K: Key, V>(values: Vec<Windowed<K, V>>) -> Vec<Windowed<K, V>> {
    let mut windows: BTreeMap<K, Vec<Window>> = BTreeMap::new();
    for w in &values {
        windows.entry(w.key.clone()).or_default().push(w.window);
    }
    let covered = |w: &Windowed<K, V>| windows[&w.key].iter().any(|o| covers(*o, w.window));
    let mut last: BTreeMap<(K, Window), Windowed<K, V>> = BTreeMap::new();
    for w in values {
        if !covered(&w) {
            last.insert((w.key.clone(), w.window), w);
        }
    }
    last.into_values().collect()
}

fn covers(outer: Window, inner: Window) -> bool {
    outer != inner && outer.start <= inner.start && inner.end <= outer.end
}

fn changelog_line(kind: &str, line: &str) -> String {
    format!("{kind} {line}")
}

/// The changelog lines that take a row from `last` (none: a new row) to `line`.
fn changes(last: Option<String>, line: String) -> Vec<String> {
    match last {
        None => vec![changelog_line("+I", &line)],
        Some(last) if last != line => vec![changelog_line("-U", &last), changelog_line("+U", &line)],
        Some(_) => Vec::new(),
    }
}

/// An upsert output's changes as changelog lines: the first value of a key is `+I`, a new
/// value retracts the key's last line (`-U`) and adds its own (`+U`).
#[derive(Clone)]
struct UpsertLines<L> {
    line: L,
}

impl<K: Key, T: Data, L: Fn(&T) -> String + Clone + Send + 'static> KeyedProcessFunction<K, T> for UpsertLines<L> {
    type State = Option<String>;
    type Out = String;

    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        let line = (self.line)(&record.value);
        let last = ctx.state().replace(line.clone());
        for change in changes(last, line) {
            ctx.emit(change);
        }
    }
}

/// Session results as changelog lines, per key: a session a merged one covers is deleted,
/// a session's new result updates its line.
#[derive(Clone)]
struct SessionLines<L> {
    line: L,
}

impl<K, V, L> KeyedProcessFunction<K, Windowed<K, V>> for SessionLines<L>
where
    K: Key,
    V: Data,
    L: Fn(&Windowed<K, V>) -> String + Clone + Send + 'static,
{
    type State = BTreeMap<Window, String>;
    type Out = String;

    fn process_element(
        &mut self,
        record: Record<Windowed<K, V>>,
        ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    ) {
        let window = record.value.window;
        if ctx.state().keys().any(|&o| covers(o, window)) {
            return;
        }
        let line = (self.line)(&record.value);
        let covered: Vec<Window> = ctx.state().keys().copied().filter(|&w| covers(window, w)).collect();
        for w in covered {
            let gone = ctx.state().remove(&w).expect("a held session");
            ctx.emit(changelog_line("-D", &gone));
        }
        let last = ctx.state().insert(window, line.clone());
        for change in changes(last, line) {
            ctx.emit(change);
        }
    }
}

/// A changelog's rows as changelog lines, each with its own row kind.
#[derive(Clone)]
struct ChangelogLines<L> {
    line: L,
}

impl<K: Key, T: Data, L: Fn(&T) -> String + Clone + Send + 'static> KeyedProcessFunction<K, Row<T>>
    for ChangelogLines<L>
{
    type State = ();
    type Out = String;

    fn process_element(&mut self, record: Record<Row<T>>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        let line = (self.line)(&record.value.row);
        ctx.emit(changelog_line(record.value.kind.short(), &line));
    }
}

/// An append stream's records as plain lines: each is final when it is emitted.
#[derive(Clone)]
struct AppendLines<L> {
    lines: L,
}

impl<K: Key, T: Data, L: Fn(&Record<T>) -> Vec<String> + Clone + Send + 'static> KeyedProcessFunction<K, T>
    for AppendLines<L>
{
    type State = ();
    type Out = String;

    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        for line in (self.lines)(&record) {
            ctx.emit(line);
        }
    }
}

/// An upsert output's rows, each key's last one written once it is final, as a plain line.
#[derive(Clone)]
struct FinalLines<T, L> {
    line: L,
    final_at: fn(&T) -> Timestamp,
}

impl<K, T, L> KeyedProcessFunction<K, T> for FinalLines<T, L>
where
    K: Key,
    T: Data + PartialEq,
    L: Fn(&T) -> String + Clone + Send + 'static,
{
    type State = Option<T>;
    type Out = String;

    fn process_element(&mut self, record: Record<T>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        // A key's deadline is a function of its row's key (its window), so registering it
        // again changes nothing.
        let final_at = (self.final_at)(&record.value);
        *ctx.state() = Some(record.value);
        ctx.register_timer(TimeDomain::EventTime, final_at);
    }

    fn on_timer(
        &mut self,
        _at: Timestamp,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>,
    ) {
        if let Some(last) = ctx.state().take() {
            let line = (self.line)(&last);
            ctx.emit(line);
        }
    }
}
