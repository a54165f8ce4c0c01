//! Semi and anti joins of two changelogs on a key, as Flink SQL's `WHERE k IN (SELECT ..)` /
//! `EXISTS` and `NOT IN` / `NOT EXISTS` (its `StreamingSemiAntiJoinOperator`): a left row
//! is emitted while its key has at least one right row (semi), or none (anti); when the
//! right side of a key changes between none and some, every left row of the key is emitted
//! or retracted. See docs/semantics.md, "Changelogs".

use serde::{Deserialize, Serialize};

use crate::changelog::{restore_list, Row, RowKind, Side};
use crate::element::{Data, Key, Record};
use crate::process::{KeyedProcessFunction, ProcessContext};
use crate::state::ListState;

/// Which left rows a [`SemiJoin`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SemiJoinKind {
    /// Rows whose key has a right row (`IN`, `EXISTS`).
    Semi,
    /// Rows whose key has none (`NOT IN` over non-null keys, `NOT EXISTS`).
    Anti,
}

/// A key's left rows and how many right rows it has.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SemiJoinState<L> {
    left: ListState<L>,
    right: u64,
}

impl<L> Default for SemiJoinState<L> {
    fn default() -> Self {
        SemiJoinState {
            left: ListState::default(),
            right: 0,
        }
    }
}

/// The semi or anti join of a left changelog with a right one, as a keyed process function
/// over both sides ([`Side`]). Output: left rows, with Flink's row kinds: a left change goes
/// out with its own kind; when a key's right side goes from none to some, a semi join emits
/// its left rows with the right change's kind (`+I`/`+U`) and an anti join retracts them
/// (`-D`); from some to none, a semi join retracts them with the right change's kind
/// (`-U`/`-D`) and an anti join emits them (`+I`).
#[derive(Clone)]
pub struct SemiJoin<L, R> {
    pub(crate) kind: SemiJoinKind,
    pub(crate) _types: std::marker::PhantomData<fn(L, R)>,
}

type SemiContext<'a, K, L> = ProcessContext<'a, K, SemiJoinState<L>, Row<L>>;

impl<K: Key, L: Data + PartialEq, R: Data> KeyedProcessFunction<K, Side<L, R>> for SemiJoin<L, R> {
    type State = SemiJoinState<L>;
    type Out = Row<L>;

    fn process_element(&mut self, record: Record<Side<L, R>>, ctx: &mut SemiContext<'_, K, L>) {
        let semi = self.kind == SemiJoinKind::Semi;
        match record.value {
            Side::Left(Row { kind, row }) => {
                if kind.adds() {
                    ctx.state().left.add(row.clone());
                } else {
                    // The retraction takes the row it retracts (the oldest equal one); one of
                    // a row the key does not hold changes nothing (Flink passes it on).
                    let mut rows = ctx.state().left.take();
                    let held = rows.iter().position(|l| *l == row).map(|at| rows.remove(at));
                    restore_list(&mut ctx.state().left, rows);
                    if held.is_none() {
                        return;
                    }
                }
                let matched = ctx.state().right > 0;
                if matched == semi {
                    ctx.emit(Row::new(kind, row));
                }
            }
            Side::Right(Row { kind, .. }) => {
                let before = ctx.state().right;
                let after = if kind.adds() {
                    before + 1
                } else {
                    before.saturating_sub(1)
                };
                ctx.state().right = after;
                let out = match (before, after) {
                    (0, 1) if semi => kind,
                    (0, 1) => RowKind::Delete,
                    (1, 0) if semi => kind,
                    (1, 0) => RowKind::Insert,
                    _ => return,
                };
                let rows = ctx.state().left.get().to_vec();
                for row in rows {
                    ctx.emit(Row::new(out, row));
                }
            }
        }
    }
}
