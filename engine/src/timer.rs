//! Timers per key, in event time and in processing time.
//!
//! Timers fire in timestamp order, ties broken by key order; registering the same
//! `(timestamp, key)` twice yields one timer (as in Flink).

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, VecDeque};

use crate::element::Timestamp;

/// Event-time timers `(time, entry)` of an operator that sets most of them in nondecreasing
/// time order (a session's end moves with its newest record): those queue in a FIFO, the
/// others in a binary min-heap, so the common case costs a push and the rest a short sift
/// (cheaper than a tree insert, and than inserting a straggler into the FIFO: measured).
/// Due timers come out in time order (ties: the smaller `(time, entry)` of the two heads
/// first; in the FIFO, the order they were set in). Nothing is removed early, and setting one
/// timer twice queues it twice: an operator skips a timer that no longer applies when it
/// comes up (lazy deletion), so a moved session costs no removal.
#[derive(Clone, Debug)]
pub(crate) struct TimerQueue<E> {
    in_order: VecDeque<(Timestamp, E)>,
    others: BinaryHeap<Reverse<(Timestamp, E)>>,
}

impl<E: Ord> Default for TimerQueue<E> {
    fn default() -> Self {
        TimerQueue {
            in_order: VecDeque::new(),
            others: BinaryHeap::new(),
        }
    }
}

impl<E: Ord> TimerQueue<E> {
    pub(crate) fn push(&mut self, time: Timestamp, entry: E) {
        if self.in_order.back().is_none_or(|(last, _)| *last <= time) {
            self.in_order.push_back((time, entry));
        } else {
            self.others.push(Reverse((time, entry)));
        }
    }

    /// Removes and returns the earliest timer with `time <= watermark`, if any.
    pub(crate) fn pop_due(&mut self, watermark: Timestamp) -> Option<(Timestamp, E)> {
        let from_fifo = match (self.in_order.front(), self.others.peek()) {
            (Some(a), Some(Reverse(b))) => a <= b,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        if from_fifo {
            if self.in_order.front()?.0 <= watermark {
                return self.in_order.pop_front();
            }
        } else if self.others.peek()?.0 .0 <= watermark {
            return self.others.pop().map(|Reverse(timer)| timer);
        }
        None
    }
}

/// Which clock a timer follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub enum TimeDomain {
    /// Event time: the timer fires when the watermark reaches it.
    EventTime,
    /// Processing time: the timer fires when the driver's clock reaches it.
    ProcessingTime,
}

/// Pending timers of one task.
#[derive(Clone, Debug)]
pub struct TimerService<K> {
    event_time: BTreeSet<(Timestamp, K)>,
    processing_time: BTreeSet<(Timestamp, K)>,
    /// Whether a processing-time timer was ever registered (not part of snapshots).
    used_processing_time: bool,
}

impl<K: Ord> Default for TimerService<K> {
    fn default() -> Self {
        TimerService {
            event_time: BTreeSet::new(),
            processing_time: BTreeSet::new(),
            used_processing_time: false,
        }
    }
}

impl<K: Ord + Clone> TimerService<K> {
    fn set(&mut self, domain: TimeDomain) -> &mut BTreeSet<(Timestamp, K)> {
        match domain {
            TimeDomain::EventTime => &mut self.event_time,
            TimeDomain::ProcessingTime => &mut self.processing_time,
        }
    }

    /// Sets a timer of `key` at `timestamp` in `domain` (setting it twice keeps one).
    pub fn register(&mut self, domain: TimeDomain, timestamp: Timestamp, key: K) {
        self.used_processing_time |= domain == TimeDomain::ProcessingTime;
        self.set(domain).insert((timestamp, key));
    }

    /// Deletes the timer of `key` at `timestamp` in `domain`, if there is one.
    pub fn delete(&mut self, domain: TimeDomain, timestamp: Timestamp, key: K) {
        self.set(domain).remove(&(timestamp, key));
    }

    /// Removes and returns the earliest timer with `timestamp <= time`, if any.
    pub fn pop_due(&mut self, domain: TimeDomain, time: Timestamp) -> Option<(Timestamp, K)> {
        let set = self.set(domain);
        if set.first()?.0 <= time {
            set.pop_first()
        } else {
            None
        }
    }

    /// Every pending timer, event time first, each domain in firing order.
    pub fn iter(&self) -> impl Iterator<Item = (TimeDomain, Timestamp, &K)> {
        let event = self.event_time.iter().map(|(ts, k)| (TimeDomain::EventTime, *ts, k));
        let processing = self
            .processing_time
            .iter()
            .map(|(ts, k)| (TimeDomain::ProcessingTime, *ts, k));
        event.chain(processing)
    }

    /// Whether a processing-time timer was ever registered (snapshots do not keep this).
    pub fn used_processing_time(&self) -> bool {
        self.used_processing_time
    }

    /// The earliest pending processing-time timer.
    pub fn next_processing_time(&self) -> Option<Timestamp> {
        self.processing_time.first().map(|(ts, _)| *ts)
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.event_time.len() + self.processing_time.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_timestamp_then_key_order() {
        let mut timers = TimerService::default();
        for (ts, key) in [(30, "b"), (10, "z"), (30, "a"), (20, "c"), (10, "z")] {
            timers.register(TimeDomain::EventTime, ts, key);
        }
        assert_eq!(timers.len(), 4, "duplicate registration is one timer");
        timers.delete(TimeDomain::EventTime, 20, "c");
        let mut fired = Vec::new();
        while let Some(timer) = timers.pop_due(TimeDomain::EventTime, 30) {
            fired.push(timer);
        }
        assert_eq!(fired, vec![(10, "z"), (30, "a"), (30, "b")]);
    }

    #[test]
    fn a_timer_queue_pops_due_timers_in_time_order_whatever_the_push_order() {
        let mut timers = TimerQueue::default();
        for (time, entry) in [(10, 'a'), (20, 'b'), (15, 'c'), (20, 'a'), (5, 'd'), (30, 'e')] {
            timers.push(time, entry);
        }
        let mut fired = Vec::new();
        while let Some(timer) = timers.pop_due(20) {
            fired.push(timer);
        }
        // Ties within the FIFO keep the order they were set in.
        assert_eq!(fired, vec![(5, 'd'), (10, 'a'), (15, 'c'), (20, 'b'), (20, 'a')]);
        assert_eq!(timers.pop_due(29), None);
        assert_eq!(timers.pop_due(30), Some((30, 'e')));
    }

    proptest::proptest! {
        /// Whatever the push order (sorted runs with stragglers, as sessions set them), the
        /// due timers come out in time order, all of them, each as often as it was set.
        #[test]
        fn a_timer_queue_pops_every_due_timer_in_time_order(
            pushes in proptest::collection::vec((0i64..100, 0u8..4), 0..60),
            watermarks in proptest::collection::vec(0i64..120, 1..6),
        ) {
            let mut timers = TimerQueue::default();
            for &(time, entry) in &pushes {
                timers.push(time, entry);
            }
            let mut watermarks = watermarks;
            watermarks.sort_unstable();
            let mut fired = Vec::new();
            for &watermark in &watermarks {
                while let Some(timer) = timers.pop_due(watermark) {
                    proptest::prop_assert!(timer.0 <= watermark, "{timer:?} is not due at {watermark}");
                    fired.push(timer);
                }
            }
            proptest::prop_assert!(fired.windows(2).all(|w| w[0].0 <= w[1].0), "out of order: {fired:?}");
            let last = watermarks[watermarks.len() - 1];
            let mut expected: Vec<_> = pushes.iter().copied().filter(|t| t.0 <= last).collect();
            expected.sort_unstable();
            fired.sort_unstable();
            proptest::prop_assert_eq!(fired, expected);
        }
    }

    #[test]
    fn only_due_timers_fire() {
        let mut timers = TimerService::default();
        timers.register(TimeDomain::ProcessingTime, 5, 1u8);
        assert_eq!(timers.pop_due(TimeDomain::ProcessingTime, 4), None);
        assert_eq!(timers.pop_due(TimeDomain::EventTime, 100), None, "domains are separate");
        assert_eq!(timers.pop_due(TimeDomain::ProcessingTime, 5), Some((5, 1)));
    }
}
