//! What a [`WindowedStream`] can do: lateness, triggers, evictors and the window function.

use super::feature::Feature;
use std::marker::PhantomData;

use crate::element::{Data, Key};
use crate::graph::{BuildError, OperatorFactory, TimeRule};
use crate::operator::{Operator, LATE, MAIN};
use crate::window::{
    AggregateFunction, Aggregating, Evicting, Evictor, LatenessRule, Processing, Reducing, SessionWindowOperator,
    Trigger, Window, WindowAssigner, WindowFunction, WindowOperator, Windowed,
};

use super::draft::{WindowedStream, WithLate};

impl<T: Data, K: Key, KS: Fn(&T) -> K + Clone + Send + 'static> WindowedStream<T, K, KS> {
    /// Keeps window state `allowed_lateness_ms` past the window's end for late firings.
    pub fn allowed_lateness(mut self, allowed_lateness_ms: i64) -> Self {
        self.settings.allowed_lateness = allowed_lateness_ms;
        self
    }

    /// When the windows fire ([`Trigger::event_time`] unless set; docs/semantics.md,
    /// "Triggers and evictors").
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.settings.trigger = trigger;
        self
    }

    /// Removes records from a window before each firing; the window then keeps its records.
    pub fn evictor(mut self, evictor: Evictor) -> Self {
        self.evictor = Some(evictor);
        self
    }

    /// Which records of sliding windows are late ([`LatenessRule::PerWindow`], Flink's,
    /// unless set).
    pub fn lateness_rule(mut self, rule: LatenessRule) -> Self {
        self.settings.lateness_rule = rule;
        self
    }

    pub(super) fn apply<F: WindowFunction<K, T>>(self, function: F) -> WithLate<F::Out, T> {
        match self.evictor {
            Some(evictor) => self.build(Evicting {
                function,
                evictor,
                _types: PhantomData,
            }),
            None => self.build(function),
        }
    }

    pub(super) fn build<F: WindowFunction<K, T>>(self, function: F) -> WithLate<F::Out, T> {
        let operator = self.keyed.stream.next_name("window");
        let invalid = |reason: String| BuildError::InvalidWindow {
            operator: operator.clone(),
            reason,
        };
        if let Err(reason) = self.assigner.validate() {
            self.keyed.stream.error(invalid(reason));
        }
        if let Err(reason) = self.settings.trigger.validate() {
            self.keyed.stream.error(invalid(reason));
        }
        if let Some(Err(reason)) = self.evictor.map(|e| e.validate()) {
            self.keyed.stream.error(invalid(reason));
        }
        if let WindowAssigner::Sliding { size_ms, slide_ms, .. } = self.assigner {
            if slide_ms > size_ms {
                self.keyed.stream.error(invalid(format!(
                    "window slide {slide_ms} ms exceeds the size {size_ms} ms: records between windows would be dropped"
                )));
            }
        }
        if self.settings.allowed_lateness < 0 {
            self.keyed.stream.error(BuildError::Negative {
                operator,
                what: "allowed lateness",
                value: self.settings.allowed_lateness,
            });
        }
        let stream = &self.keyed.stream;
        stream.uses(match self.assigner {
            WindowAssigner::Tumbling { .. } => Feature::TumblingWindows,
            WindowAssigner::Sliding { .. } => Feature::SlidingWindows,
            WindowAssigner::Session { .. } => Feature::SessionWindows,
        });
        if let WindowAssigner::Tumbling { offset_ms, .. } | WindowAssigner::Sliding { offset_ms, .. } = self.assigner {
            if offset_ms != 0 {
                stream.uses(Feature::WindowOffset);
            }
        }
        if self.settings.allowed_lateness > 0 {
            stream.uses(Feature::AllowedLateness);
        }
        if self.settings.lateness_rule == LatenessRule::WholeRecord {
            stream.uses(Feature::WholeRecordLateness);
        }
        self.settings
            .trigger
            .features()
            .for_each(|feature| stream.uses(feature));
        match self.evictor {
            Some(Evictor::Count { .. }) => stream.uses(Feature::CountEvictor),
            Some(Evictor::Time { .. }) => stream.uses(Feature::TimeEvictor),
            None => {}
        }
        let (assigner, settings) = (self.assigner, self.settings);
        let key_selector = self.keyed.key_selector.clone();
        let factory: OperatorFactory = Box::new(move |_| match assigner {
            WindowAssigner::Session { gap_ms } => Box::new(SessionWindowOperator::new(
                gap_ms,
                settings,
                key_selector.clone(),
                function.clone(),
            )) as Box<dyn Operator>,
            _ => Box::new(WindowOperator::new(
                assigner,
                settings,
                key_selector.clone(),
                function.clone(),
            )),
        });
        let node = self.keyed.keyed_operator("window", Vec::new(), factory);
        self.keyed.stream.set_time_rule(
            node,
            TimeRule::Windows {
                assigner,
                allowed_lateness_ms: settings.allowed_lateness,
            },
        );
        WithLate {
            output: self.keyed.port(node, MAIN),
            late: self.keyed.port(node, LATE),
        }
    }

    /// One result per `(key, window)`, computed incrementally.
    pub fn aggregate<A: AggregateFunction<T>>(self, function: A) -> WithLate<Windowed<K, A::Out>, T> {
        self.keyed.stream.uses(Feature::WindowAggregate);
        self.apply(Aggregating(function))
    }

    /// Combines the window's records pairwise.
    pub fn reduce<F: Fn(T, &T) -> T + Clone + Send + 'static>(self, function: F) -> WithLate<Windowed<K, T>, T> {
        self.keyed.stream.uses(Feature::WindowReduce);
        self.apply(Reducing(function))
    }

    /// Calls `function` with all records of the window when it fires.
    pub fn process<O: Data, F: Fn(&K, Window, &[T], &mut Vec<O>) + Clone + Send + 'static>(
        self,
        function: F,
    ) -> WithLate<O, T> {
        self.keyed.stream.uses(Feature::WindowProcess);
        self.apply(Processing(function, PhantomData))
    }
}
