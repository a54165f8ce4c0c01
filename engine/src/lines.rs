//! Lines in and out of a pipeline, sans-IO (docs/live.md): the input of a live run, either
//! lines read to their end or a [`LineFeed`] that the driver fills as a followed file grows;
//! and the output, lines committed through a [`LineCommitter`] (a file, a database table
//! described by a [`LiveTable`]). The driver does the I/O.
//!
//! A followed input is split over partitions exactly as a batch run splits a file
//! (`Log::round_robin`: input record `i` goes to partition `i % partitions`; a line that
//! carries no event, or one skipped because it does not parse, takes no place), so a source
//! task's checkpointed offsets name the same records after a restart. Records a source has
//! read are dropped (a live process restores only when it starts, before reading), so a
//! long `--follow` run holds only what it has not read yet.

use std::sync::{Arc, Mutex};

use crate::snapshot::{decode_payload, encode_value, RestoreContext, SnapshotError};

use crate::transaction::{Committer, PreparedTransactions, TransactionId};
use crate::{
    read_split, Data, Log, Output, Pipeline, Record, SourceReader, SourceWatermark, SplitActivity, SplitWatermark,
    Stream, TaskInfo, Timestamp, WatermarkStrategy,
};

/// Reads one input line into an event, or into nothing (a line that carries no event, as a
/// Debezium tombstone); the message of an error names what is wrong.
pub type LineParser<E> = fn(&str) -> Result<Option<Record<E>>, String>;

/// What a run does with an input line that does not parse (Flink's formats'
/// `ignore-parse-errors`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ParseErrors {
    /// Stop the run there, naming the line (the default, as in Flink).
    #[default]
    Fail,
    /// Skip it, and report it with the others skipped.
    Skip,
}

/// An input line that does not parse: skipped under [`ParseErrors::Skip`], else the error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadLine {
    /// The line's index in the input (its non-blank lines).
    pub index: usize,
    /// Why it does not parse.
    pub reason: String,
}

/// New lines of a growing input, delivered by the driver (which does the I/O).
pub trait LineFeed: Send + Sync {
    /// Appends the complete non-blank lines that arrived since the last call, each with its
    /// line number in the input.
    fn poll_lines(&self, lines: &mut Vec<(usize, String)>);
    /// A line did not parse: the run cannot go on past it.
    fn report_error(&self, line_number: usize, reason: String);
    /// A line did not parse and was skipped ([`ParseErrors::Skip`]): the run goes on.
    fn report_skipped(&self, line_number: usize, reason: String);
}

/// The table a live run's result lines go to in a database (`eddy run --live --postgres`):
/// each line is a JSON object whose fields are the columns. With a primary key, a line
/// replaces the row of its key (an upsert output); without, it is inserted (append).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LiveTable {
    /// The columns, in order: name and type.
    pub columns: &'static [(&'static str, ColumnType)],
    /// The columns of the primary key (empty: lines are appended).
    pub primary_key: &'static [&'static str],
}

/// The SQL type of a [`LiveTable`] column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// A 64-bit integer.
    BigInt,
    /// A boolean.
    Boolean,
    /// A string.
    Text,
    /// A nested JSON value.
    Json,
}

impl ColumnType {
    /// The type's name in SQL (PostgreSQL's).
    pub fn sql(self) -> &'static str {
        match self {
            ColumnType::BigInt => "bigint",
            ColumnType::Boolean => "boolean",
            ColumnType::Text => "text",
            ColumnType::Json => "jsonb",
        }
    }
}

/// Where a live run's events come from.
#[derive(Clone)]
pub enum LiveInput {
    /// Lines read to their end, parsed up front (errors name the line).
    Lines(Vec<String>),
    /// A file followed as it grows (`--follow`): never ends.
    Follow(Arc<dyn LineFeed>),
}

/// Parses `lines` with `parse` into records, in order: lines that carry no event are left
/// out, and with [`ParseErrors::Skip`] so are lines that do not parse (returned).
/// Otherwise the first of those is the error, with its index.
pub fn parse_lines<E>(
    lines: &[String],
    parse: LineParser<E>,
    errors: ParseErrors,
) -> Result<(Vec<Record<E>>, Vec<BadLine>), BadLine> {
    let mut records = Vec::with_capacity(lines.len());
    let mut skipped = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        match parse(line) {
            Ok(record) => records.extend(record),
            Err(reason) if errors == ParseErrors::Skip => skipped.push(BadLine { index, reason }),
            Err(reason) => return Err(BadLine { index, reason }),
        }
    }
    Ok((records, skipped))
}

/// A pipeline's source of events, typed: a log (batch runs, live runs read to the end) or a
/// followed input; [`EventSource::stream`] adds it to a pipeline.
pub enum EventSource<E> {
    /// The records of a log, read to its end.
    Log(Log<E>),
    /// The lines of a followed input, parsed as they arrive.
    Follow {
        /// The input's new lines, as the driver reads them.
        feed: Arc<dyn LineFeed>,
        /// How many partitions the lines are split over, round-robin.
        partitions: usize,
        /// How a line becomes an event (the simulator's `Workload::line_parser`).
        parse: LineParser<E>,
        /// What to do with a line that does not parse.
        errors: ParseErrors,
    },
}

impl<E: Data> EventSource<E> {
    /// Adds the source to `pipeline` as operator `name`, with `watermarks`.
    pub fn stream(self, pipeline: &Pipeline, name: &str, watermarks: WatermarkStrategy) -> Stream<E> {
        match self {
            EventSource::Log(log) => pipeline.source(name, log, watermarks),
            EventSource::Follow {
                feed,
                partitions,
                parse,
                errors,
            } => {
                let followed = Arc::new(Mutex::new(Followed::<E> {
                    feed,
                    parse,
                    errors,
                    partitions: (0..partitions.max(1)).map(|_| Partition::default()).collect(),
                    records: 0,
                    failed: false,
                }));
                pipeline.source_from_readers(
                    name,
                    move |info: &TaskInfo| -> Box<dyn SourceReader> {
                        Box::new(FollowReader::new(Arc::clone(&followed), info.subtask, info.parallelism))
                    },
                    watermarks,
                )
            }
        }
    }
}

/// The records of a followed input so far, partitioned round-robin; shared by the source
/// tasks of one job.
struct Followed<E> {
    feed: Arc<dyn LineFeed>,
    parse: LineParser<E>,
    errors: ParseErrors,
    partitions: Vec<Partition<E>>,
    /// Input records taken so far (the next one goes to partition `records % partitions`).
    records: usize,
    /// A line did not parse: nothing after it is taken.
    failed: bool,
}

impl<E: Data> Followed<E> {
    fn refresh(&mut self) {
        if self.failed {
            return;
        }
        let mut lines = Vec::new();
        self.feed.poll_lines(&mut lines);
        for (line_number, line) in lines {
            match (self.parse)(&line) {
                Ok(None) => {}
                Ok(Some(record)) => {
                    let partition = self.records % self.partitions.len();
                    self.partitions[partition].records.push(record);
                    self.records += 1;
                }
                Err(reason) if self.errors == ParseErrors::Skip => self.feed.report_skipped(line_number, reason),
                Err(reason) => {
                    self.failed = true;
                    self.feed.report_error(line_number, reason);
                    return;
                }
            }
        }
    }
}

/// One partition's records from offset `base` on; those before it were read and dropped.
/// Offsets stay absolute (line counts).
struct Partition<E> {
    base: usize,
    records: Vec<Record<E>>,
}

impl<E> Default for Partition<E> {
    fn default() -> Self {
        Partition {
            base: 0,
            records: Vec::new(),
        }
    }
}

/// Read records are dropped once they are at least half of what is held (and a few
/// thousand), so that dropping costs O(1) per record.
const DROP_READ_AT: usize = 4096;

impl<E> Partition<E> {
    fn len(&self) -> usize {
        self.base + self.records.len()
    }

    /// The partition's one reader has read everything before `offset`.
    fn read_up_to(&mut self, offset: usize) {
        let read = offset - self.base;
        if read >= DROP_READ_AT && 2 * read >= self.records.len() {
            self.records.drain(..read);
            self.base = offset;
        }
    }
}

/// A split's position in a checkpoint: partition, next offset, and its watermark state
/// (as the engine's log reader keeps it).
type SplitPosition = (usize, usize, SplitWatermark);

struct FollowReader<E> {
    followed: Arc<Mutex<Followed<E>>>,
    splits: Vec<SplitPosition>,
    /// Per split: whether it has had lines to read lately (idleness).
    activity: Vec<SplitActivity>,
    next_split: usize,
}

impl<E> FollowReader<E> {
    fn new(followed: Arc<Mutex<Followed<E>>>, subtask: usize, parallelism: usize) -> Self {
        let partitions = followed.lock().expect("followed input poisoned").partitions.len();
        let splits = (0..partitions)
            .filter(|p| p % parallelism == subtask)
            .map(|p| (p, 0, SplitWatermark::new()))
            .collect::<Vec<_>>();
        FollowReader {
            followed,
            activity: vec![SplitActivity::default(); splits.len()],
            splits,
            next_split: 0,
        }
    }
}

impl<E: Data> SourceReader for FollowReader<E> {
    fn poll(&mut self, max_records: usize, out: &mut Output) -> usize {
        let mut followed = self.followed.lock().expect("followed input poisoned");
        followed.refresh();
        for _ in 0..self.splits.len() {
            let index = self.next_split % self.splits.len();
            self.next_split = index + 1;
            let (partition, offset, watermark) = &mut self.splits[index];
            let partition = &mut followed.partitions[*partition];
            if *offset >= partition.len() {
                continue;
            }
            let mut local = *offset - partition.base;
            let read = read_split(&partition.records, &mut local, watermark, max_records, out);
            *offset = partition.base + local;
            partition.read_up_to(*offset);
            return read;
        }
        0
    }

    fn watermark(&mut self, strategy: &WatermarkStrategy, now: Timestamp) -> SourceWatermark {
        // Every split is open (a followed file never ends): the slowest one that is not idle
        // holds it back.
        let followed = self.followed.lock().expect("followed input poisoned");
        SourceWatermark::of_splits(self.splits.iter().zip(&mut self.activity).map(
            |((partition, offset, watermark), activity)| {
                let waiting = *offset < followed.partitions[*partition].len();
                let idle = activity.is_idle(strategy, waiting, now);
                (!idle).then(|| watermark.current(strategy.out_of_orderness_ms))
            },
        ))
    }

    fn is_exhausted(&self) -> bool {
        false
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_value(&self.splits)
    }

    fn restore(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        let mut followed = self.followed.lock().expect("followed input poisoned");
        followed.refresh();
        for (_, state) in &context.previous {
            for (partition, offset, watermark) in
                decode_payload::<Vec<SplitPosition>>(&state.operator, "followed source positions")?
            {
                let held = followed.partitions.get(partition).map(|p| (p.base, p.len()));
                if held.is_none_or(|(_, len)| offset > len) {
                    return Err(SnapshotError::Payload {
                        what: "followed source positions",
                        reason: format!(
                            "offset {offset} of partition {partition} is beyond the {} records the input has",
                            followed.records
                        ),
                    });
                }
                if held.is_some_and(|(base, _)| offset < base) {
                    return Err(SnapshotError::Payload {
                        what: "followed source positions",
                        reason: format!(
                            "offset {offset} of partition {partition} was read and dropped already: a \
                             followed input restores only before it is read"
                        ),
                    });
                }
                if let Some(split) = self.splits.iter_mut().find(|s| s.0 == partition) {
                    *split = (partition, offset, watermark);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A feed that hands out `lines` lines once.
    struct Lines(Mutex<Vec<(usize, String)>>);

    impl LineFeed for Lines {
        fn poll_lines(&self, lines: &mut Vec<(usize, String)>) {
            lines.append(&mut self.0.lock().unwrap());
        }
        fn report_error(&self, line_number: usize, reason: String) {
            panic!("line {line_number}: {reason}");
        }
        fn report_skipped(&self, line_number: usize, reason: String) {
            panic!("line {line_number} skipped: {reason}");
        }
    }

    /// A number is a record, `-` carries none, anything else does not parse.
    fn parse_number_or_dash(line: &str) -> Result<Option<Record<u64>>, String> {
        if line == "-" {
            return Ok(None);
        }
        let n: u64 = line.parse().map_err(|e| format!("{e}"))?;
        Ok(Some(Record::new(n as i64, n)))
    }

    #[test]
    fn lines_without_events_take_no_place_and_skipped_lines_are_returned() {
        let lines: Vec<String> = ["1", "-", "x", "2"].iter().map(|l| l.to_string()).collect();
        let (records, skipped) = parse_lines(&lines, parse_number_or_dash, ParseErrors::Skip).unwrap();
        assert_eq!(records.iter().map(|r| r.value).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].index, 2);
        let failed = parse_lines(&lines, parse_number_or_dash, ParseErrors::Fail).unwrap_err();
        assert_eq!(
            (failed.index, failed.reason.as_str()),
            (2, "invalid digit found in string")
        );
    }

    /// A feed that records what it is told.
    #[derive(Default)]
    struct Told(Mutex<Vec<String>>);

    impl LineFeed for Told {
        fn poll_lines(&self, lines: &mut Vec<(usize, String)>) {
            let input = ["7", "null?", "-", "8"];
            lines.extend(input.iter().enumerate().map(|(i, l)| (i + 1, l.to_string())));
        }
        fn report_error(&self, line_number: usize, reason: String) {
            self.0.lock().unwrap().push(format!("error {line_number}: {reason}"));
        }
        fn report_skipped(&self, line_number: usize, reason: String) {
            self.0.lock().unwrap().push(format!("skipped {line_number}: {reason}"));
        }
    }

    #[test]
    fn a_followed_source_skips_lines_that_do_not_parse_only_when_told() {
        for (errors, taken, told) in [
            (
                ParseErrors::Skip,
                vec![7, 8],
                "skipped 2: invalid digit found in string",
            ),
            (ParseErrors::Fail, vec![7], "error 2: invalid digit found in string"),
        ] {
            let feed = Arc::new(Told::default());
            let mut followed = Followed::<u64> {
                feed: feed.clone(),
                parse: parse_number_or_dash,
                errors,
                partitions: vec![Partition::default()],
                records: 0,
                failed: false,
            };
            followed.refresh();
            let values: Vec<u64> = followed.partitions[0].records.iter().map(|r| r.value).collect();
            assert_eq!(values, taken, "{errors:?}");
            assert_eq!(
                followed.records,
                taken.len(),
                "{errors:?}: a line without an event takes no offset"
            );
            assert_eq!(*feed.0.lock().unwrap(), vec![told.to_string()]);
        }
    }

    #[test]
    fn a_followed_source_drops_what_it_has_read_and_keeps_offsets_absolute() {
        let total = 3 * DROP_READ_AT;
        let lines = (0..total).map(|i| (i + 1, i.to_string())).collect();
        // A line is a number: the record's timestamp and value.
        fn parse_number(line: &str) -> Result<Option<Record<u64>>, String> {
            let n: u64 = line.parse().map_err(|e| format!("{e}"))?;
            Ok(Some(Record::new(n as i64, n)))
        }
        let followed = Arc::new(Mutex::new(Followed::<u64> {
            feed: Arc::new(Lines(Mutex::new(lines))),
            parse: parse_number,
            errors: ParseErrors::Fail,
            partitions: (0..2).map(|_| Partition::default()).collect(),
            records: 0,
            failed: false,
        }));
        let mut reader = FollowReader::new(Arc::clone(&followed), 0, 1);
        let mut values = Vec::new();
        loop {
            let mut out = Output::default();
            if reader.poll(100, &mut out) == 0 {
                break;
            }
            values.extend(out.take::<u64>(crate::MAIN).into_iter().map(|r| r.value));
        }
        values.sort_unstable();
        assert_eq!(values, (0..total as u64).collect::<Vec<_>>(), "every record once");
        let followed = followed.lock().unwrap();
        for (index, partition) in followed.partitions.iter().enumerate() {
            assert_eq!(partition.len(), total / 2, "partition {index}: offsets stay absolute");
            assert!(partition.base > 0, "partition {index}: read records were dropped");
            assert!(partition.records.len() < DROP_READ_AT, "partition {index}");
        }
        let offsets: Vec<usize> = reader.splits.iter().map(|s| s.1).collect();
        assert_eq!(offsets, vec![total / 2, total / 2]);
    }
}

/// The committer of a live run's output: each committed transaction's result lines go to
/// one callback (the live runtime's transactional file sink), or each sink task prepares
/// its transactions in a database ([`LineCommitter::prepared`], the PostgreSQL sink).
/// Sans-IO here: the callback and the database belong to the driver.
#[derive(Clone)]
pub struct LineCommitter {
    commit: Arc<Mutex<CommitLines>>,
    prepared: Option<Arc<OpenDatabase>>,
}

type CommitLines = dyn FnMut(TransactionId, Vec<Record<String>>) + Send;
type OpenDatabase = dyn Fn(&TaskInfo) -> Box<dyn PreparedTransactions<String>> + Send + Sync;

impl LineCommitter {
    /// Lines committed by `commit`, called with each committed transaction's lines.
    pub fn new(commit: impl FnMut(TransactionId, Vec<Record<String>>) + Send + 'static) -> Self {
        LineCommitter {
            commit: Arc::new(Mutex::new(commit)),
            prepared: None,
        }
    }

    /// Lines committed through a database's prepared transactions: `open` gives each sink
    /// task its view of them (`eddy_engine::prepared`).
    pub fn prepared(open: impl Fn(&TaskInfo) -> Box<dyn PreparedTransactions<String>> + Send + Sync + 'static) -> Self {
        LineCommitter {
            commit: Arc::new(Mutex::new(|_, _| {
                unreachable!("a sink over prepared transactions commits in the database")
            })),
            prepared: Some(Arc::new(open)),
        }
    }
}

impl Committer<String> for LineCommitter {
    fn commit(&mut self, transaction: TransactionId, records: Vec<Record<String>>) {
        let mut commit = self.commit.lock().expect("line committer poisoned");
        (*commit)(transaction, records);
    }

    fn prepared_transactions(&self, task: &TaskInfo) -> Option<Box<dyn PreparedTransactions<String>>> {
        self.prepared.as_ref().map(|open| open(task))
    }
}
