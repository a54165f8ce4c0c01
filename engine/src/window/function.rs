//! Window functions: what a window computes over its contents (aggregate, reduce, process,
//! and the evicting wrapper that keeps records instead of an accumulator).

use std::marker::PhantomData;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::assigner::Window;
use super::evictor::Evictor;
use crate::element::{Data, Key, Record, Timestamp};

/// A window result: the value computed for `key` over `window`. With allowed lateness a
/// `(key, window)` can be emitted again; the later value replaces the earlier (an upsert).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Windowed<K, V> {
    /// The key the value was computed for.
    pub key: K,
    /// The window the value was computed over.
    pub window: Window,
    /// What the window function computed.
    pub value: V,
}

/// Incremental aggregation (Flink's `AggregateFunction`).
pub trait AggregateFunction<T>: Clone + Send + 'static {
    /// The accumulator a window keeps per key.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// The window's result.
    type Out: Data;
    /// An accumulator of no value.
    fn create_accumulator(&self) -> Self::Acc;
    /// Adds a value to the accumulator.
    fn add(&self, acc: &mut Self::Acc, value: &T);
    /// Combines two accumulators (session windows merge).
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result of the values in the accumulator.
    fn result(&self, acc: &Self::Acc) -> Self::Out;
}

/// Counts records.
#[derive(Clone, Copy, Debug, Default)]
pub struct Count;

impl<T> AggregateFunction<T> for Count {
    type Acc = u64;
    type Out = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, acc: &mut u64, _value: &T) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Sums an `i64` extracted from each record.
#[derive(Clone, Copy, Debug)]
pub struct Sum<F>(pub F);

impl<T, F: Fn(&T) -> i64 + Clone + Send + 'static> AggregateFunction<T> for Sum<F> {
    type Acc = i64;
    type Out = i64;
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, acc: &mut i64, value: &T) {
        *acc += (self.0)(value);
    }
    fn merge(&self, acc: &mut i64, other: i64) {
        *acc += other;
    }
    fn result(&self, acc: &i64) -> i64 {
        *acc
    }
}

/// What a window operator computes per `(key, window)`: the erased form of aggregate,
/// reduce and process window functions.
pub trait WindowFunction<K, T>: Clone + Send + 'static {
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    type Out: Data;
    fn create(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, ts: Timestamp, value: &T);
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// Pushes the firing's results to `out`, stamped with the window's max timestamp
    /// (`scratch`: room for a process function's values, empty before and after). Mutable: an
    /// evictor removes records from the window as it fires.
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Self::Acc,
        scratch: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    );
}

#[derive(Clone)]
pub(crate) struct Aggregating<A>(pub(crate) A);

impl<K: Key, T, A: AggregateFunction<T>> WindowFunction<K, T> for Aggregating<A> {
    type Acc = A::Acc;
    type Out = Windowed<K, A::Out>;
    fn create(&self) -> A::Acc {
        self.0.create_accumulator()
    }
    fn add(&self, acc: &mut A::Acc, _ts: Timestamp, value: &T) {
        self.0.add(acc, value)
    }
    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.0.merge(acc, other)
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut A::Acc,
        _: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    ) {
        let value = Windowed {
            key: key.clone(),
            window,
            value: self.0.result(acc),
        };
        out.push(Record::new(window.max_timestamp(), value));
    }
}

#[derive(Clone)]
pub(crate) struct Reducing<F>(pub(crate) F);

impl<K: Key, T: Data, F: Fn(T, &T) -> T + Clone + Send + 'static> WindowFunction<K, T> for Reducing<F> {
    type Acc = Option<T>;
    type Out = Windowed<K, T>;
    fn create(&self) -> Option<T> {
        None
    }
    fn add(&self, acc: &mut Option<T>, _ts: Timestamp, value: &T) {
        *acc = Some(match acc.take() {
            None => value.clone(),
            Some(reduced) => (self.0)(reduced, value),
        });
    }
    fn merge(&self, acc: &mut Option<T>, other: Option<T>) {
        if let Some(other) = other {
            *acc = Some(match acc.take() {
                None => other,
                Some(reduced) => (self.0)(reduced, &other),
            });
        }
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Option<T>,
        _: &mut Vec<Self::Out>,
        out: &mut Vec<Record<Self::Out>>,
    ) {
        if let Some(value) = acc {
            let value = Windowed {
                key: key.clone(),
                window,
                value: value.clone(),
            };
            out.push(Record::new(window.max_timestamp(), value));
        }
    }
}

/// A process window function sees every record of the window (in arrival order).
#[derive(Clone)]
pub(crate) struct Processing<F, O>(pub(crate) F, pub(crate) PhantomData<fn() -> O>);

impl<K: Key, T: Data, O: Data, F> WindowFunction<K, T> for Processing<F, O>
where
    F: Fn(&K, Window, &[T], &mut Vec<O>) + Clone + Send + 'static,
{
    type Acc = Vec<T>;
    type Out = O;
    fn create(&self) -> Vec<T> {
        Vec::new()
    }
    fn add(&self, acc: &mut Vec<T>, _ts: Timestamp, value: &T) {
        acc.push(value.clone());
    }
    fn merge(&self, acc: &mut Vec<T>, other: Vec<T>) {
        acc.extend(other);
    }
    fn emit(&self, key: &K, window: Window, acc: &mut Vec<T>, scratch: &mut Vec<O>, out: &mut Vec<Record<O>>) {
        (self.0)(key, window, acc, scratch);
        out.extend(scratch.drain(..).map(|v| Record::new(window.max_timestamp(), v)));
    }
}

/// A window function behind an evictor: the window keeps its records (with timestamps), and
/// each firing evicts, then runs the function over what is left (Flink's
/// `EvictingWindowOperator`, evicting before the function).
#[derive(Clone)]
pub(crate) struct Evicting<F, T> {
    pub(crate) function: F,
    pub(crate) evictor: Evictor,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<K: Key, T: Data, F: WindowFunction<K, T>> WindowFunction<K, T> for Evicting<F, T> {
    type Acc = Vec<(Timestamp, T)>;
    type Out = F::Out;
    fn create(&self) -> Self::Acc {
        Vec::new()
    }
    fn add(&self, acc: &mut Self::Acc, ts: Timestamp, value: &T) {
        acc.push((ts, value.clone()));
    }
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
        acc.extend(other);
    }
    fn emit(
        &self,
        key: &K,
        window: Window,
        acc: &mut Self::Acc,
        scratch: &mut Vec<F::Out>,
        out: &mut Vec<Record<F::Out>>,
    ) {
        self.evictor.evict(acc);
        let mut inner = self.function.create();
        for (ts, value) in acc.iter() {
            self.function.add(&mut inner, *ts, value);
        }
        self.function.emit(key, window, &mut inner, scratch, out);
    }
}
