//! Changelog streams (Flink's dynamic tables): records that insert, update and delete rows,
//! and the operators whose results update as their input changes.
//!
//! A changelog is a `Stream<Row<T>>`: each record carries a [`RowKind`] (`+I -U +U -D`). A
//! plain stream is an insert-only changelog ([`Stream::changelog`](crate::Stream::changelog)).
//! Keyed by a primary key a changelog can be in upsert form (each `+I`/`+U` replaces the key's
//! row, `-D` deletes it) or in retract form (every update is `-U old, +U new`);
//! [`Normalize`] turns upsert form into retract form, dropping updates that change nothing.
//! The operators are keyed process functions: their state is keyed, in snapshots, and
//! restorable at another parallelism like any other. Rules: docs/semantics.md, "Changelogs".

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::element::{Data, Key, Record, Timestamp};
use crate::process::{KeyedProcessFunction, ProcessContext};
use crate::state::{ListState, ValueState};
use crate::testkit::bugs::{self, Bug};

/// What a changelog record does to its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RowKind {
    /// `+I`: a new row.
    #[serde(rename = "+I")]
    Insert,
    /// `-U`: the row as it was before an update (retracted).
    #[serde(rename = "-U")]
    UpdateBefore,
    /// `+U`: the row as it is after an update.
    #[serde(rename = "+U")]
    UpdateAfter,
    /// `-D`: the row is gone.
    #[serde(rename = "-D")]
    Delete,
}

impl RowKind {
    /// `+I` and `+U` add a row, `-U` and `-D` retract one.
    pub fn adds(self) -> bool {
        matches!(self, RowKind::Insert | RowKind::UpdateAfter)
    }

    /// The kind's symbol: `+I`, `-U`, `+U` or `-D`.
    pub fn short(self) -> &'static str {
        match self {
            RowKind::Insert => "+I",
            RowKind::UpdateBefore => "-U",
            RowKind::UpdateAfter => "+U",
            RowKind::Delete => "-D",
        }
    }

    /// The kind [`RowKind::short`] names.
    pub fn from_short(short: &str) -> Option<RowKind> {
        [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ]
        .into_iter()
        .find(|kind| kind.short() == short)
    }
}

/// A changelog record's value: a row and what happens to it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Row<T> {
    /// What the record does to its row.
    pub kind: RowKind,
    /// The row added or retracted.
    pub row: T,
}

impl<T> Row<T> {
    /// A record of `kind` for `row`.
    pub fn new(kind: RowKind, row: T) -> Self {
        Row { kind, row }
    }

    /// A record that inserts `row` (`+I`).
    pub fn insert(row: T) -> Self {
        Row::new(RowKind::Insert, row)
    }

    /// A record that deletes `row` (`-D`).
    pub fn delete(row: T) -> Self {
        Row::new(RowKind::Delete, row)
    }
}

/// Emits `old` replaced by `new` for one key: nothing if equal, `+I` if there was none,
/// `-D` if there is none now, else `-U old, +U new`.
fn emit_change<K: Ord + Clone, S, O: Clone + PartialEq>(
    ctx: &mut ProcessContext<'_, K, S, Row<O>>,
    old: Option<&O>,
    new: Option<&O>,
) {
    match (old, new) {
        (Some(old), Some(new)) if old == new => {}
        (None, Some(new)) => ctx.emit(Row::insert(new.clone())),
        (Some(old), None) => ctx.emit(Row::delete(old.clone())),
        (Some(old), Some(new)) => {
            ctx.emit(Row::new(RowKind::UpdateBefore, old.clone()));
            ctx.emit(Row::new(RowKind::UpdateAfter, new.clone()));
        }
        (None, None) => {}
    }
}

/// Upsert form (or retract form) by key into retract form: the key's row replaced by each
/// `+I`/`+U`, removed by `-D`; `-U` (already implied) and updates that change nothing are
/// dropped, and so is a delete of a key that has no row.
#[derive(Clone)]
pub struct Normalize<T>(PhantomData<fn(T)>);

impl<T> Default for Normalize<T> {
    fn default() -> Self {
        Normalize(PhantomData)
    }
}

impl<K: Key, T: Data + PartialEq> KeyedProcessFunction<K, Row<T>> for Normalize<T> {
    type State = ValueState<T>;
    type Out = Row<T>;

    fn process_element(&mut self, record: Record<Row<T>>, ctx: &mut ProcessContext<'_, K, ValueState<T>, Row<T>>) {
        let Row { kind, row } = record.value;
        let old = ctx.state().value().cloned();
        let new = match kind {
            RowKind::Insert | RowKind::UpdateAfter => Some(row),
            RowKind::Delete => None,
            RowKind::UpdateBefore => return,
        };
        emit_change(ctx, old.as_ref(), new.as_ref());
        match new {
            Some(row) => ctx.state().update(row),
            None => ctx.state().clear(),
        }
    }
}

/// An aggregate over a changelog: rows are added and retracted (Flink's retractable
/// `AggregateFunction`). `result` is `None` while no row is there.
pub trait RetractableAggregate<T>: Clone + Send + Sync + 'static {
    /// The accumulator a key keeps in state.
    type Acc: Default + PartialEq + Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The aggregate's result.
    type Out: Data + PartialEq;
    /// Adds a row to the accumulator.
    fn add(&self, acc: &mut Self::Acc, row: &T);
    /// Takes a row the accumulator holds back out of it.
    fn retract(&self, acc: &mut Self::Acc, row: &T);
    /// The result over the rows in the accumulator, if it has one.
    fn result(&self, acc: &Self::Acc) -> Option<Self::Out>;
}

/// The rows of a key.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountRows;

impl<T> RetractableAggregate<T> for CountRows {
    type Acc = u64;
    type Out = u64;
    fn add(&self, acc: &mut u64, _row: &T) {
        *acc += 1;
    }
    fn retract(&self, acc: &mut u64, _row: &T) {
        *acc -= 1;
    }
    fn result(&self, acc: &u64) -> Option<u64> {
        (*acc > 0).then_some(*acc)
    }
}

/// The sum of an `i64` of each row.
#[derive(Clone, Copy, Debug)]
pub struct SumRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for SumRows<F> {
    /// The sum and the number of rows.
    type Acc = (i64, u64);
    type Out = i64;
    fn add(&self, acc: &mut (i64, u64), row: &T) {
        add_to_sum(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut (i64, u64), row: &T) {
        retract_from_sum(acc, (self.0)(row));
    }
    fn result(&self, acc: &(i64, u64)) -> Option<i64> {
        (acc.1 > 0).then_some(acc.0)
    }
}

fn add_to_sum(acc: &mut (i64, u64), value: i64) {
    acc.0 += value;
    acc.1 += 1;
}

fn retract_from_sum(acc: &mut (i64, u64), value: i64) {
    acc.0 -= value;
    acc.1 -= 1;
}

/// The average of an `i64` of each row, rounded down (integer division, as Flink's `AVG` of
/// a `BIGINT`).
#[derive(Clone, Copy, Debug)]
pub struct AvgRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for AvgRows<F> {
    type Acc = (i64, u64);
    type Out = i64;
    fn add(&self, acc: &mut (i64, u64), row: &T) {
        add_to_sum(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut (i64, u64), row: &T) {
        retract_from_sum(acc, (self.0)(row));
    }
    fn result(&self, acc: &(i64, u64)) -> Option<i64> {
        (acc.1 > 0).then(|| acc.0.div_euclid(acc.1 as i64))
    }
}

/// The values of the rows as a multiset: what min and max fall back to when their extreme
/// is retracted.
pub type ValueCounts = BTreeMap<i64, u64>;

fn add_value(acc: &mut ValueCounts, value: i64) {
    *acc.entry(value).or_default() += 1;
}

fn retract_value(acc: &mut ValueCounts, value: i64, extreme: Option<i64>) {
    // The planted bug keeps only the extreme in mind: a retracted extreme stays.
    if bugs::is_active(Bug::MinMaxWithoutMultiset) && Some(value) == extreme {
        return;
    }
    if let Some(n) = acc.get_mut(&value) {
        *n -= 1;
        if *n == 0 {
            acc.remove(&value);
        }
    }
}

/// The smallest `i64` of the rows.
#[derive(Clone, Copy, Debug)]
pub struct MinRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for MinRows<F> {
    type Acc = ValueCounts;
    type Out = i64;
    fn add(&self, acc: &mut ValueCounts, row: &T) {
        add_value(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut ValueCounts, row: &T) {
        let min = acc.keys().next().copied();
        retract_value(acc, (self.0)(row), min);
    }
    fn result(&self, acc: &ValueCounts) -> Option<i64> {
        acc.keys().next().copied()
    }
}

/// The largest `i64` of the rows.
#[derive(Clone, Copy, Debug)]
pub struct MaxRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for MaxRows<F> {
    type Acc = ValueCounts;
    type Out = i64;
    fn add(&self, acc: &mut ValueCounts, row: &T) {
        add_value(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut ValueCounts, row: &T) {
        let max = acc.keys().next_back().copied();
        retract_value(acc, (self.0)(row), max);
    }
    fn result(&self, acc: &ValueCounts) -> Option<i64> {
        acc.keys().next_back().copied()
    }
}

/// How many distinct `i64` values the rows have (`COUNT(DISTINCT v)`): each value's rows are
/// counted, so that it goes only with its last row.
#[derive(Clone, Copy, Debug)]
pub struct CountDistinctRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for CountDistinctRows<F> {
    type Acc = ValueCounts;
    type Out = u64;
    fn add(&self, acc: &mut ValueCounts, row: &T) {
        add_value(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut ValueCounts, row: &T) {
        retract_value(acc, (self.0)(row), None);
    }
    fn result(&self, acc: &ValueCounts) -> Option<u64> {
        Some(acc.len() as u64)
    }
}

/// The sum of the distinct `i64` values of the rows (`SUM(DISTINCT v)`).
#[derive(Clone, Copy, Debug)]
pub struct SumDistinctRows<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + Sync + 'static> RetractableAggregate<T> for SumDistinctRows<F> {
    type Acc = ValueCounts;
    type Out = i64;
    fn add(&self, acc: &mut ValueCounts, row: &T) {
        add_value(acc, (self.0)(row));
    }
    fn retract(&self, acc: &mut ValueCounts, row: &T) {
        retract_value(acc, (self.0)(row), None);
    }
    fn result(&self, acc: &ValueCounts) -> Option<i64> {
        Some(acc.keys().sum())
    }
}

/// A key's aggregation: the accumulator, how many rows it holds, and its last result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateState<A, O> {
    acc: A,
    rows: u64,
    last: Option<O>,
    /// Read back from a snapshot (only the planted bug `retraction-dropped-on-restore` asks).
    #[serde(skip, default = "restored")]
    restored: bool,
}

fn restored() -> bool {
    true
}

impl<A: Default, O> Default for AggregateState<A, O> {
    fn default() -> Self {
        AggregateState {
            acc: A::default(),
            rows: 0,
            last: None,
            restored: false,
        }
    }
}

/// A non-windowed keyed aggregation over a changelog: emits `(key, result)` in retract form
/// each time a key's result changes. A retraction of a row the key does not hold is ignored.
#[derive(Clone)]
pub struct ChangelogAggregate<A, T> {
    pub(crate) aggregate: A,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<K: Key + PartialEq, T: Data, A: RetractableAggregate<T>> KeyedProcessFunction<K, Row<T>>
    for ChangelogAggregate<A, T>
{
    type State = AggregateState<A::Acc, A::Out>;
    type Out = Row<(K, A::Out)>;

    fn process_element(&mut self, record: Record<Row<T>>, ctx: &mut ProcessContext<'_, K, Self::State, Self::Out>) {
        let Row { kind, row } = record.value;
        let state = ctx.state();
        if std::mem::take(&mut state.restored) && !kind.adds() && bugs::is_active(Bug::RetractionDroppedOnRestore) {
            return;
        }
        if kind.adds() {
            self.aggregate.add(&mut state.acc, &row);
            state.rows += 1;
        } else if state.rows > 0 {
            self.aggregate.retract(&mut state.acc, &row);
            state.rows -= 1;
        } else {
            return;
        }
        let new = if state.rows == 0 {
            None
        } else {
            self.aggregate.result(&state.acc)
        };
        let old = std::mem::replace(&mut state.last, new.clone());
        if state.rows == 0 {
            *state = AggregateState::default();
        }
        let key = ctx.key().clone();
        let pair = |v: Option<A::Out>| v.map(|v| (key.clone(), v));
        emit_change(ctx, pair(old).as_ref(), pair(new).as_ref());
    }
}

/// Which rows a regular join emits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinKind {
    /// Pairs of matching rows.
    Inner,
    /// Pairs, and each left row without a match as `(left, None)`.
    LeftOuter,
}

/// A record of either side of a join, on its way to the join.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Side<L, R> {
    /// A record of the left changelog.
    Left(Row<L>),
    /// A record of the right changelog.
    Right(Row<R>),
}

/// A key's rows on both sides of a join, each with its timestamp.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JoinState<L, R> {
    left: ListState<Record<L>>,
    right: ListState<Record<R>>,
}

impl<L, R> Default for JoinState<L, R> {
    fn default() -> Self {
        JoinState {
            left: ListState::default(),
            right: ListState::default(),
        }
    }
}

/// A regular join of two changelogs on a key, emitting retractions when either side
/// changes. With a TTL per side (event time), a row matches the other side's rows up to
/// `ttl` after its timestamp: `l` and `r` pair when `l.ts <= r.ts < l.ts + ttl_left` or
/// `r.ts < l.ts < r.ts + ttl_right`; rows are cleared once the watermark passes
/// `ts + ttl` (in a left outer join, a right row only with the last left row it matched),
/// and a row at or below the watermark goes to the late side output.
#[derive(Clone)]
pub struct ChangelogJoin<L, R> {
    pub(crate) kind: JoinKind,
    pub(crate) ttl_ms: Option<(i64, i64)>,
    pub(crate) _types: PhantomData<fn(L, R)>,
}

impl<L, R> ChangelogJoin<L, R> {
    fn pair(&self, left_ts: Timestamp, right_ts: Timestamp) -> bool {
        match self.ttl_ms {
            None => true,
            Some((ttl_left, ttl_right)) => {
                (left_ts <= right_ts && right_ts < left_ts.saturating_add(ttl_left))
                    || (right_ts < left_ts && left_ts < right_ts.saturating_add(ttl_right))
            }
        }
    }
}

type JoinContext<'a, K, L, R> = ProcessContext<'a, K, JoinState<L, R>, Row<(L, Option<R>)>>;

impl<K: Key, L: Data + PartialEq, R: Data + PartialEq> KeyedProcessFunction<K, Side<L, R>> for ChangelogJoin<L, R> {
    type State = JoinState<L, R>;
    type Out = Row<(L, Option<R>)>;

    fn process_element(&mut self, record: Record<Side<L, R>>, ctx: &mut JoinContext<'_, K, L, R>) {
        let ts = record.ts;
        if let Some((ttl_left, ttl_right)) = self.ttl_ms {
            let ttl = match &record.value {
                Side::Left(_) => ttl_left,
                Side::Right(_) => ttl_right,
            };
            ctx.register_timer(crate::TimeDomain::EventTime, ts.saturating_add(ttl));
        }
        let outer = self.kind == JoinKind::LeftOuter;
        match record.value {
            Side::Left(Row { kind, row }) => {
                let matches: Vec<R> = ctx
                    .state()
                    .right
                    .get()
                    .iter()
                    .filter(|r| self.pair(ts, r.ts))
                    .map(|r| r.value.clone())
                    .collect();
                let out_kind = if kind.adds() {
                    ctx.state().left.add(Record::new(ts, row.clone()));
                    self.pair_kind(kind, RowKind::Insert)
                } else {
                    // The retraction takes the row it retracts (the oldest equal one).
                    let mut rows = ctx.state().left.take();
                    let Some(at) = rows.iter().position(|l| l.value == row) else {
                        restore_list(&mut ctx.state().left, rows);
                        return;
                    };
                    let retracted = rows.remove(at);
                    restore_list(&mut ctx.state().left, rows);
                    return self.retract_left(ctx, retracted, kind);
                };
                if matches.is_empty() {
                    if outer {
                        ctx.emit(Row::new(out_kind, (row, None)));
                    }
                } else {
                    for r in matches {
                        ctx.emit(Row::new(out_kind, (row.clone(), Some(r))));
                    }
                }
            }
            Side::Right(Row { kind, row }) => {
                let lefts: Vec<Record<L>> = ctx.state().left.get().to_vec();
                let mut rights: Vec<Record<R>> = ctx.state().right.take();
                if kind.adds() {
                    for l in lefts.iter().filter(|l| self.pair(l.ts, ts)) {
                        let had_match = rights.iter().any(|r| self.pair(l.ts, r.ts));
                        if outer && !had_match && !bugs::is_active(Bug::JoinForgetsNullRetraction) {
                            ctx.emit(Row::delete((l.value.clone(), None)));
                        }
                        ctx.emit(Row::new(
                            self.pair_kind(kind, RowKind::Insert),
                            (l.value.clone(), Some(row.clone())),
                        ));
                    }
                    rights.push(Record::new(ts, row));
                } else if let Some(at) = rights.iter().position(|r| r.value == row) {
                    let retracted = rights.remove(at);
                    for l in lefts.iter().filter(|l| self.pair(l.ts, retracted.ts)) {
                        let pair = (l.value.clone(), Some(retracted.value.clone()));
                        ctx.emit(Row::new(self.pair_kind(kind, RowKind::Delete), pair));
                        if outer && !rights.iter().any(|r| self.pair(l.ts, r.ts)) {
                            ctx.emit(Row::insert((l.value.clone(), None)));
                        }
                    }
                }
                restore_list(&mut ctx.state().right, rights);
            }
        }
    }

    fn on_timer(&mut self, now: Timestamp, _domain: crate::TimeDomain, ctx: &mut JoinContext<'_, K, L, R>) {
        // Rows past their TTL can pair with no future on-time row: cleared, nothing emitted.
        let Some((ttl_left, ttl_right)) = self.ttl_ms else {
            return;
        };
        let left: Vec<_> = ctx
            .state()
            .left
            .take()
            .into_iter()
            .filter(|l| l.ts.saturating_add(ttl_left) > now)
            .collect();
        // A right row past its TTL stays while a left row it matched does, in a left outer
        // join: that left row had a match, so a new match must not retract `(left, null)`
        // (found by the `ratings` scenario: the run retracted a null row it never emitted).
        // It can pair with no new on-time row, and goes with the last left row it matched.
        let outer = self.kind == JoinKind::LeftOuter;
        let right: Vec<_> = ctx
            .state()
            .right
            .take()
            .into_iter()
            .filter(|r| r.ts.saturating_add(ttl_right) > now || (outer && left.iter().any(|l| self.pair(l.ts, r.ts))))
            .collect();
        restore_list(&mut ctx.state().left, left);
        restore_list(&mut ctx.state().right, right);
    }
}

impl<L: Data + PartialEq, R: Data + PartialEq> ChangelogJoin<L, R> {
    /// The kind of a pair a change of `kind` adds or removes: an inner join forwards the
    /// input's kind (`+U` pairs for a `+U`, `-U` for a `-U`), as Flink's streaming join does;
    /// an outer join sends `fixed` (`+I` or `-D`).
    fn pair_kind(&self, kind: RowKind, fixed: RowKind) -> RowKind {
        match self.kind {
            JoinKind::Inner => kind,
            JoinKind::LeftOuter => fixed,
        }
    }

    fn retract_left<K: Key>(&self, ctx: &mut JoinContext<'_, K, L, R>, retracted: Record<L>, kind: RowKind) {
        let matches: Vec<R> = ctx
            .state()
            .right
            .get()
            .iter()
            .filter(|r| self.pair(retracted.ts, r.ts))
            .map(|r| r.value.clone())
            .collect();
        if matches.is_empty() {
            if self.kind == JoinKind::LeftOuter {
                ctx.emit(Row::delete((retracted.value, None)));
            }
        } else {
            for r in matches {
                ctx.emit(Row::new(
                    self.pair_kind(kind, RowKind::Delete),
                    (retracted.value.clone(), Some(r)),
                ));
            }
        }
    }
}

/// Puts `values` back into `list`, in order: what is left after a `take` that removed a row.
pub(crate) fn restore_list<V>(list: &mut ListState<V>, values: Vec<V>) {
    for value in values {
        list.add(value);
    }
}

/// `rows` by `order`, ties by the rows themselves.
fn sorted<'a, T: Ord, S: Ord>(rows: &'a [T], order: &impl Fn(&T) -> S) -> Vec<&'a T> {
    let mut sorted: Vec<&T> = rows.iter().collect();
    sorted.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.cmp(b)));
    sorted
}

/// Top-N per key: the `n` rows that sort first by `order` (ties by the rows themselves),
/// emitted as `(key, rank, row)` in retract form, as Flink's retracting Top-N does: from the
/// rank of the row added or retracted on, every rank's row again as the rows shift.
#[derive(Clone)]
pub struct TopN<T, O> {
    pub(crate) n: usize,
    pub(crate) order: O,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<K: Key, T: Data + Ord, S: Ord, O: Fn(&T) -> S + Clone + Send + 'static> KeyedProcessFunction<K, Row<T>>
    for TopN<T, O>
{
    /// Every row of the key (a retracted top row is replaced by the next one).
    type State = ListState<T>;
    type Out = Row<(K, u32, T)>;

    fn process_element(&mut self, record: Record<Row<T>>, ctx: &mut ProcessContext<'_, K, ListState<T>, Self::Out>) {
        let Row { kind, row } = record.value;
        let mut rows = ctx.state().take();
        let ranked = |rows: &[T]| {
            sorted(rows, &self.order)
                .into_iter()
                .take(self.n)
                .cloned()
                .collect::<Vec<T>>()
        };
        let before = ranked(&rows);
        // The rank Flink's retracting Top-N starts from: an added row after the rows equal to
        // it, a retracted row's first copy. From there every rank's row is emitted again as
        // the rows shift, even where it equals the old one (`-U/+U` of the same row).
        let (from, after) = if kind.adds() {
            rows.push(row.clone());
            // One sort gives both the added row's rank and the new top `n`.
            let all = sorted(&rows, &self.order);
            let from = all.iter().rposition(|r| **r == row).unwrap_or(self.n);
            (from, all.into_iter().take(self.n).cloned().collect())
        } else if let Some(at) = rows.iter().position(|r| *r == row) {
            rows.remove(at);
            (before.iter().position(|r| *r == row).unwrap_or(self.n), ranked(&rows))
        } else {
            (self.n, before.clone())
        };
        restore_list(ctx.state(), rows);
        let key = ctx.key().clone();
        for rank in 0..before.len().max(after.len()) {
            let with_rank = |row: Option<&T>| row.map(|r| (key.clone(), rank as u32 + 1, r.clone()));
            match (with_rank(before.get(rank)), with_rank(after.get(rank))) {
                (Some(old), Some(new)) if rank >= from => {
                    ctx.emit(Row::new(RowKind::UpdateBefore, old));
                    ctx.emit(Row::new(RowKind::UpdateAfter, new));
                }
                (old, new) => emit_change(ctx, old.as_ref(), new.as_ref()),
            }
        }
    }
}
