//! Streams of changelog rows (Flink's dynamic tables): normalisation, aggregation, Top-N,
//! regular joins and the sinks that materialise them.

use super::feature::Feature;
use std::marker::PhantomData;

use crate::changelog::{
    ChangelogAggregate, ChangelogJoin, JoinKind, Normalize, RetractableAggregate, Row, RowKind, Side, TopN,
};
use crate::element::{Data, Key};
use crate::graph::BuildError;
use crate::semi_join::{SemiJoin, SemiJoinKind};
use crate::sink::{Table, TableMode};

use super::draft::{JoinedWithLate, KeyedStream, Stream};

impl<T: Data> Stream<Row<T>> {
    /// Upsert form of a retract-form changelog: `-U` rows dropped (each `+U` replaces its
    /// key's row).
    pub fn to_upsert(self) -> Stream<Row<T>> {
        self.uses(Feature::ToUpsert);
        self.filter(|r: &Row<T>| r.kind != RowKind::UpdateBefore)
    }

    /// Materialises the changelog into a [`Table`] by `primary_key` through a
    /// two-phase-commit sink ([`TableMode::Materialize`]: a retraction must name the row
    /// the table holds). The stream goes by primary key, so that a key's changes commit in
    /// order and an update's `-U` and `+U` in one transaction.
    pub fn sink_table<K, F>(self, primary_key: F) -> Table<K, T, F>
    where
        T: PartialEq,
        K: Key + std::fmt::Debug,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        self.uses(Feature::TableSink);
        self.sink_keyed_table(TableMode::Materialize, primary_key)
    }

    /// Writes the changelog in upsert form by `primary_key` into a [`Table`] through a
    /// two-phase-commit sink ([`TableMode::Upsert`], as Flink's upsert sinks write).
    pub fn sink_upsert<K, F>(self, primary_key: F) -> Table<K, T, F>
    where
        T: PartialEq,
        K: Key + std::fmt::Debug,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        self.uses(Feature::UpsertSink);
        self.sink_keyed_table(TableMode::Upsert, primary_key)
    }

    pub(super) fn sink_keyed_table<K, F>(self, mode: TableMode, primary_key: F) -> Table<K, T, F>
    where
        T: PartialEq,
        K: Key + std::fmt::Debug,
        F: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let table = Table::new(mode, primary_key.clone());
        self.key_by(move |r: &Row<T>| primary_key(&r.row))
            .sink_transactional(table.clone());
        table
    }
}

impl<T: Data + PartialEq, K: Key, KS: Fn(&Row<T>) -> K + Clone + Send + 'static> KeyedStream<Row<T>, K, KS> {
    /// Retract form by key: each key's row replaced by its `+I`/`+U`, removed by `-D`;
    /// updates that change nothing dropped (docs/semantics.md, "Changelogs").
    pub fn normalize(self) -> Stream<Row<T>> {
        self.stream.uses(Feature::Normalize);
        self.process_node(Normalize::default())
    }

    /// A non-windowed aggregation per key over a changelog: `(key, result)` in retract form
    /// each time the key's result changes.
    pub fn aggregate_changelog<A: RetractableAggregate<T>>(self, aggregate: A) -> Stream<Row<(K, A::Out)>>
    where
        K: PartialEq,
    {
        self.stream.uses(Feature::ChangelogAggregate);
        self.process_node(ChangelogAggregate {
            aggregate,
            _types: PhantomData,
        })
    }

    /// Top-N per key: the `n` rows that sort first by `order` (ties by the rows), as
    /// `(key, rank, row)` in retract form whenever a rank's row changes.
    pub fn top_n<S: Ord, O: Fn(&T) -> S + Clone + Send + Sync + 'static>(
        self,
        n: usize,
        order: O,
    ) -> Stream<Row<(K, u32, T)>>
    where
        T: Ord,
    {
        if n == 0 {
            self.stream.error(BuildError::NotPositive {
                operator: self.stream.next_name("top_n"),
                what: "top-n size",
                value: 0,
            });
        }
        self.stream.uses(Feature::TopN);
        self.process_node(TopN {
            n,
            order,
            _types: PhantomData,
        })
    }

    /// A regular join with the changelog `right` on the key (`right_key` of its rows):
    /// retractions when either side changes; `LeftOuter` also emits each unmatched left row
    /// as `(left, None)`, retracted when a match arrives.
    pub fn join_changelog<R: Data + PartialEq, RK: Fn(&R) -> K + Clone + Send + 'static>(
        self,
        right: Stream<Row<R>>,
        right_key: RK,
        kind: JoinKind,
    ) -> Stream<Row<(T, Option<R>)>> {
        let (keyed, join) = self.join_sides(right, right_key, kind, None);
        keyed.process_node(join)
    }

    /// [`join_changelog`](Self::join_changelog) with an event-time TTL per side: a row
    /// matches the other side's rows up to its TTL after its timestamp, is cleared once the
    /// watermark passes it, and a row at or below the watermark goes to `late`.
    pub fn join_changelog_with_ttl<R: Data + PartialEq, RK: Fn(&R) -> K + Clone + Send + 'static>(
        self,
        right: Stream<Row<R>>,
        right_key: RK,
        kind: JoinKind,
        ttl_left_ms: i64,
        ttl_right_ms: i64,
    ) -> JoinedWithLate<T, R> {
        for ttl in [ttl_left_ms, ttl_right_ms] {
            if ttl <= 0 {
                self.stream.error(BuildError::NotPositive {
                    operator: self.stream.next_name("join"),
                    what: "join state TTL",
                    value: ttl,
                });
            }
        }
        self.stream.uses(Feature::JoinTtl);
        let (keyed, join) = self.join_sides(right, right_key, kind, Some((ttl_left_ms, ttl_right_ms)));
        keyed.process_on_time_node(join)
    }

    /// The semi (`kind` [`SemiJoinKind::Semi`]) or anti join of this changelog with `right`
    /// on the key (Flink SQL's `IN`/`EXISTS` and `NOT EXISTS`): each left row while its key
    /// has some right row, or none, retracted and emitted again as that changes.
    pub fn semi_join_changelog<R: Data, RK: Fn(&R) -> K + Clone + Send + 'static>(
        self,
        right: Stream<Row<R>>,
        right_key: RK,
        kind: SemiJoinKind,
    ) -> Stream<Row<T>>
    where
        T: PartialEq,
    {
        self.stream.uses(match kind {
            SemiJoinKind::Semi => Feature::SemiJoin,
            SemiJoinKind::Anti => Feature::AntiJoin,
        });
        self.sides(right, right_key).process_node(SemiJoin {
            kind,
            _types: PhantomData,
        })
    }

    #[allow(clippy::type_complexity)]
    pub(super) fn join_sides<R: Data + PartialEq, RK: Fn(&R) -> K + Clone + Send + 'static>(
        self,
        right: Stream<Row<R>>,
        right_key: RK,
        kind: JoinKind,
        ttl_ms: Option<(i64, i64)>,
    ) -> (
        KeyedStream<Side<T, R>, K, impl Fn(&Side<T, R>) -> K + Clone + Send + 'static>,
        ChangelogJoin<T, R>,
    ) {
        self.stream.uses(match kind {
            JoinKind::Inner => Feature::InnerJoin,
            JoinKind::LeftOuter => Feature::LeftOuterJoin,
        });
        let join = ChangelogJoin {
            kind,
            ttl_ms,
            _types: PhantomData,
        };
        (self.sides(right, right_key), join)
    }

    /// Both changelogs of a join as one stream of [`Side`]s, by key.
    #[allow(clippy::type_complexity)]
    fn sides<R: Data, RK: Fn(&R) -> K + Clone + Send + 'static>(
        self,
        right: Stream<Row<R>>,
        right_key: RK,
    ) -> KeyedStream<Side<T, R>, K, impl Fn(&Side<T, R>) -> K + Clone + Send + 'static> {
        let left_key = self.key_selector.clone();
        let left = self.stream.map(Side::<T, R>::Left);
        let right = right.map(Side::<T, R>::Right);
        left.union(right).key_by(move |side: &Side<T, R>| match side {
            Side::Left(row) => left_key(row),
            Side::Right(row) => right_key(&row.row),
        })
    }
}
