//! Replayable sources: a partitioned log read by offsets, as from Kafka.
//!
//! Each partition is a split with its own watermark (`max ts − B − 1`); a source task owns
//! the splits `p` with `p % parallelism == subtask` and its watermark is the minimum over its
//! unfinished splits that are not idle. Reading is driven: the task asks for at most
//! `max_records` per poll.

use std::sync::Arc;

use crate::element::{Batch, Data, Record, Timestamp};
use crate::operator::{Output, MAIN};
use crate::snapshot::{decode_payload, encode_payload, RestoreContext, SnapshotError};
use crate::time::{SourceWatermark, SplitActivity, SplitWatermark, WatermarkStrategy, END_OF_TIME};

/// An immutable, partitioned log of timestamped records.
#[derive(Clone, Debug)]
pub struct Log<T> {
    partitions: Arc<Vec<Vec<Record<T>>>>,
    stalls: Arc<Vec<Stall>>,
}

/// A stretch in which a partition has nothing new to read, as when its producer pauses (the
/// simulator's `source-stall` fault): once a reader reaches `offset` of `partition`, that
/// partition gives no records for the next `ms` of processing time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stall {
    /// The partition that pauses.
    pub partition: usize,
    /// The offset at which it pauses.
    pub offset: usize,
    /// How long it pauses, in processing time.
    pub ms: i64,
}

impl<T> Log<T> {
    /// A log of `partitions`, each read in order.
    pub fn from_partitions(partitions: Vec<Vec<Record<T>>>) -> Self {
        Log {
            partitions: Arc::new(partitions),
            stalls: Arc::new(Vec::new()),
        }
    }

    /// The same log, with partitions that pause where `stalls` say.
    pub fn with_stalls(mut self, stalls: Vec<Stall>) -> Self {
        self.stalls = Arc::new(stalls);
        self
    }

    /// Spreads `records` over `partitions` round-robin, keeping their order per partition.
    pub fn round_robin(records: impl IntoIterator<Item = Record<T>>, partitions: usize) -> Self {
        let mut split: Vec<Vec<Record<T>>> = (0..partitions.max(1)).map(|_| Vec::new()).collect();
        let n = split.len();
        for (i, record) in records.into_iter().enumerate() {
            split[i % n].push(record);
        }
        Log::from_partitions(split)
    }

    /// The records of each partition, in order.
    pub fn partitions(&self) -> &[Vec<Record<T>>] {
        &self.partitions
    }

    /// How many records the log holds, over all partitions.
    pub fn len(&self) -> usize {
        self.partitions.iter().map(Vec::len).sum()
    }

    /// Whether the log holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A source task's reading position: the erased interface tasks drive.
pub trait SourceReader: Send {
    /// Emits up to `max_records` records on [`MAIN`]; returns how many.
    fn poll(&mut self, max_records: usize, out: &mut Output) -> usize;
    /// At processing time `now`: the minimum watermark over unfinished splits that are not
    /// idle (`END_OF_TIME` when all are done), or `Idle` if every unfinished one is.
    fn watermark(&mut self, strategy: &WatermarkStrategy, now: Timestamp) -> SourceWatermark;
    /// Whether every split of the reader has been read to its end.
    fn is_exhausted(&self) -> bool;
    /// The reading position, for a checkpoint.
    fn snapshot(&self) -> Vec<u8>;
    /// Rewinds to the positions in the old readers' snapshots (splits may move between
    /// tasks when the parallelism changes).
    fn restore(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError>;
}

/// A split's position in a checkpoint: partition, next offset, and its watermark state.
type SplitPosition = (usize, usize, SplitWatermark);

struct Split {
    partition: usize,
    offset: usize,
    watermark: SplitWatermark,
    activity: SplitActivity,
    /// The partition's stalls at or after `offset`, by offset, as `(offset, ms)`.
    stalls: Vec<(usize, i64)>,
    /// The end of the stall the split is in, once a check has seen it reach the stall.
    stalled_until: Option<Timestamp>,
}

impl Split {
    fn new(partition: usize, stalls: &[Stall]) -> Self {
        let mut stalls: Vec<(usize, i64)> = stalls
            .iter()
            .filter(|s| s.partition == partition)
            .map(|s| (s.offset, s.ms))
            .collect();
        stalls.sort_unstable();
        Split {
            partition,
            offset: 0,
            watermark: SplitWatermark::new(),
            activity: SplitActivity::default(),
            stalls,
            stalled_until: None,
        }
    }

    /// Where reading must pause: the next stall's offset, or the partition's end.
    fn readable_end(&self, len: usize) -> usize {
        self.stalls.first().map_or(len, |&(offset, _)| offset.min(len))
    }

    /// At a check: a split at its next stall starts it, and leaves it once it is over.
    fn pass_stall(&mut self, now: Timestamp) {
        let Some(&(offset, ms)) = self.stalls.first() else {
            return;
        };
        if offset != self.offset {
            return;
        }
        match self.stalled_until {
            None => self.stalled_until = Some(now.saturating_add(ms)),
            Some(until) if until <= now => {
                self.stalls.remove(0);
                self.stalled_until = None;
            }
            Some(_) => {}
        }
    }

    /// Moved to `offset` by a restore: stalls behind it are passed.
    fn rewind(&mut self, offset: usize, watermark: SplitWatermark) {
        self.offset = offset;
        self.watermark = watermark;
        self.stalls.retain(|&(at, _)| at >= offset);
        self.stalled_until = None;
    }
}

pub(crate) struct LogReader<T> {
    log: Log<T>,
    splits: Vec<Split>,
    next_split: usize,
}

impl<T> LogReader<T> {
    pub(crate) fn new(log: Log<T>, subtask: usize, parallelism: usize) -> Self {
        let splits = (0..log.partitions.len())
            .filter(|p| p % parallelism == subtask)
            .map(|partition| Split::new(partition, &log.stalls))
            .collect();
        LogReader {
            log,
            splits,
            next_split: 0,
        }
    }

    fn split_done(&self, split: &Split) -> bool {
        split.offset >= self.log.partitions[split.partition].len()
    }
}

/// Emits up to `max_records` of a split's `records` from `*offset` on [`MAIN`], and moves the
/// offset and the split's watermark past them; returns how many.
pub fn read_split<T: Data>(
    records: &[Record<T>],
    offset: &mut usize,
    watermark: &mut SplitWatermark,
    max_records: usize,
    out: &mut Output,
) -> usize {
    let end = (*offset + max_records).min(records.len());
    let batch: Vec<Record<T>> = records[*offset..end].to_vec();
    if let Some(max_ts) = batch.iter().map(|r| r.ts).max() {
        watermark.observe(max_ts);
    }
    *offset = end;
    let n = batch.len();
    out.emit(MAIN, batch);
    n
}

impl<T: Data> SourceReader for LogReader<T> {
    fn poll(&mut self, max_records: usize, out: &mut Output) -> usize {
        // Round-robin over unfinished splits: one batch from one split per poll.
        for _ in 0..self.splits.len() {
            let index = self.next_split % self.splits.len();
            self.next_split = index + 1;
            let split = &mut self.splits[index];
            let partition = &self.log.partitions[split.partition];
            let end = split.readable_end(partition.len());
            if split.offset >= end {
                continue;
            }
            // The records are handed on in place: the batch shares the log.
            let start = split.offset;
            let stop = (start + max_records).min(end);
            if let Some(max_ts) = partition[start..stop].iter().map(|r| r.ts).max() {
                split.watermark.observe(max_ts);
            }
            split.offset = stop;
            out.emit_batch(MAIN, Batch::shared(&self.log.partitions, split.partition, start..stop));
            return stop - start;
        }
        0
    }

    fn watermark(&mut self, strategy: &WatermarkStrategy, now: Timestamp) -> SourceWatermark {
        let partitions = &self.log.partitions;
        SourceWatermark::of_splits(
            self.splits
                .iter_mut()
                .filter(|s| s.offset < partitions[s.partition].len())
                .map(|split| {
                    split.pass_stall(now);
                    let waiting = split.readable_end(partitions[split.partition].len()) > split.offset;
                    let idle = split.activity.is_idle(strategy, waiting, now);
                    (!idle).then(|| split.watermark.current(strategy.out_of_orderness_ms))
                }),
        )
    }

    fn is_exhausted(&self) -> bool {
        self.splits.iter().all(|s| self.split_done(s))
    }

    fn snapshot(&self) -> Vec<u8> {
        let positions: Vec<SplitPosition> = self
            .splits
            .iter()
            .map(|s| (s.partition, s.offset, s.watermark))
            .collect();
        encode_payload(&positions)
    }

    fn restore(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        for (_, state) in &context.previous {
            for (partition, offset, watermark) in
                decode_payload::<Vec<SplitPosition>>(&state.operator, "source positions")?
            {
                let partition_len = self.log.partitions.get(partition).map(Vec::len);
                if partition_len.is_none_or(|len| offset > len) {
                    return Err(SnapshotError::Payload {
                        what: "source positions",
                        reason: format!("offset {offset} of partition {partition} is beyond the log"),
                    });
                }
                if let Some(split) = self.splits.iter_mut().find(|s| s.partition == partition) {
                    let offset = if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::SourceNotRewound) {
                        partition_len.unwrap_or(offset)
                    } else {
                        offset
                    };
                    split.rewind(offset, watermark);
                }
            }
        }
        Ok(())
    }
}

/// One element of a scripted source: a record, or a watermark placed exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scripted<T> {
    /// A record, with its timestamp.
    Record(Timestamp, T),
    /// A watermark, emitted after the records before it.
    Watermark(Timestamp),
}

/// A source that emits exactly its script: for semantics tests of a pipeline, as Flink's
/// operator test harnesses do. Each poll emits the records up to the next watermark, then the
/// watermark on the following processing-time tick.
pub(crate) struct ScriptReader<T> {
    script: Arc<Vec<Scripted<T>>>,
    position: usize,
    watermark: Timestamp,
    /// Set by the poll after the last element, so that a final scripted watermark is
    /// emitted on its own before the end-of-input watermark.
    finished: bool,
}

impl<T> ScriptReader<T> {
    pub(crate) fn new(script: Arc<Vec<Scripted<T>>>, subtask: usize) -> Self {
        // A script is one split: only the first task reads it.
        let position = if subtask == 0 { 0 } else { script.len() };
        ScriptReader {
            script,
            position,
            watermark: crate::time::NO_WATERMARK,
            finished: false,
        }
    }
}

impl<T: Data> SourceReader for ScriptReader<T> {
    fn poll(&mut self, max_records: usize, out: &mut Output) -> usize {
        self.finished = self.position >= self.script.len();
        let mut batch = Vec::new();
        while self.position < self.script.len() && batch.len() < max_records {
            match &self.script[self.position] {
                Scripted::Record(ts, value) => batch.push(Record::new(*ts, value.clone())),
                Scripted::Watermark(watermark) => {
                    if batch.is_empty() {
                        self.watermark = self.watermark.max(*watermark);
                        self.position += 1;
                    }
                    break;
                }
            }
            self.position += 1;
        }
        let n = batch.len();
        out.emit(MAIN, batch);
        n
    }

    fn watermark(&mut self, _strategy: &WatermarkStrategy, _now: Timestamp) -> SourceWatermark {
        SourceWatermark::At(if self.is_exhausted() {
            END_OF_TIME
        } else {
            self.watermark
        })
    }

    fn is_exhausted(&self) -> bool {
        self.finished
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_payload(&(self.position, self.watermark, self.finished))
    }

    fn restore(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        if context.subtask != 0 {
            return Ok(());
        }
        for (old_subtask, state) in &context.previous {
            if *old_subtask == 0 {
                let (position, watermark, finished) = decode_payload(&state.operator, "script position")?;
                if position > self.script.len() {
                    return Err(SnapshotError::Payload {
                        what: "script position",
                        reason: format!("position {position} is beyond the script"),
                    });
                }
                (self.position, self.watermark, self.finished) = (position, watermark, finished);
            }
        }
        Ok(())
    }
}
