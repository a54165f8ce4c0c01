//! The session window operator: sessions per key that merge when a record bridges them,
//! judged for lateness after the merge.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use smallvec::SmallVec;

use super::assigner::{is_window_late, Window};
use super::function::WindowFunction;
use super::pane::{act, add_to_contents, add_to_pane, pending_timer, Pane, WindowSettings};
use super::trigger::Trigger;
use crate::element::{Batch, CheckpointId, Data, Key, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};
use crate::snapshot::{OperatorState, RestoreContext, SnapshotError};
use crate::state::{fast_map, FastMap};
use crate::time::NO_WATERMARK;
use crate::timer::TimerQueue;

struct Session<A> {
    window: Window,
    pane: Pane<A>,
    /// In a snapshot taken or restored (what the coverage map's session merge counts).
    checkpointed: bool,
    /// Its end-of-window firing is still to come.
    fire_pending: bool,
}

/// What a session waits for next: its end-of-window firing, or else its clean-up.
fn session_due<A>(session: &Session<A>, allowed_lateness: i64) -> Timestamp {
    let end = session.window.max_timestamp();
    if session.fire_pending {
        end
    } else {
        end.saturating_add(allowed_lateness)
    }
}

/// A key's sessions and the one timer the key waits on.
struct KeySessions<A> {
    /// Disjoint (not touching) sessions sorted by start.
    list: Vec<Session<A>>,
    /// The time of the key's queued timer: at or before every session's next firing or
    /// clean-up (a session that grew or fired since is due later, not earlier).
    armed: Option<Timestamp>,
}

impl<A> KeySessions<A> {
    /// When the key next has something to do: its sessions' earliest firing or clean-up.
    fn next_due(&self, allowed_lateness: i64) -> Option<Timestamp> {
        self.list.iter().map(|s| session_due(s, allowed_lateness)).min()
    }
}

impl<A> Default for KeySessions<A> {
    fn default() -> Self {
        KeySessions {
            list: Vec::new(),
            armed: None,
        }
    }
}

/// Session windows: each record opens `[ts, ts + gap)`; overlapping or touching windows of a
/// key merge (Flink's `MergingWindowSet`).
///
/// As in Flink, a record first merges, and is late only if the merged session is: its state
/// is gone or going (`max_timestamp + L <= watermark`), which can only be the record's own
/// window, since a session still held is not past its clean-up.
pub(crate) struct SessionWindowOperator<T, K, KS, F: WindowFunction<K, T>> {
    gap_ms: i64,
    settings: WindowSettings,
    key_selector: KS,
    function: F,
    sessions: FastMap<K, KeySessions<F::Acc>>,
    /// One timer per key, not per session, at the key's earliest due firing or clean-up:
    /// when it comes up, everything of the key due by the watermark is done at once and the
    /// key is re-armed at its next. A session that grows (most records) re-arms nothing, and
    /// a key with several sessions ending within one watermark step is visited once. A timer
    /// whose key has been re-armed or cleared since is skipped (lazy deletion).
    timers: TimerQueue<K>,
    early_timers: BTreeSet<(Timestamp, K, Window)>,
    watermark: Timestamp,
    scratch: Vec<F::Out>,
    _types: PhantomData<fn(T)>,
}

impl<T, K: Ord, KS, F: WindowFunction<K, T>> SessionWindowOperator<T, K, KS, F> {
    pub(crate) fn new(gap_ms: i64, settings: WindowSettings, key_selector: KS, function: F) -> Self {
        SessionWindowOperator {
            gap_ms,
            settings,
            key_selector,
            function,
            sessions: fast_map(),
            timers: TimerQueue::default(),
            early_timers: BTreeSet::new(),
            watermark: NO_WATERMARK,
            scratch: Vec::new(),
            _types: PhantomData,
        }
    }
}

impl<T, K, KS, F> SessionWindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    /// Adds `record` to its key's sessions, pushing any firing to `results`.
    fn add_record(
        &mut self,
        record: &Record<T>,
        lateness_watermark: Timestamp,
        results: &mut Vec<Record<F::Out>>,
        out: &mut Output,
    ) -> AddOutcome {
        let key = (self.key_selector)(&record.value);
        let own = Window::new(record.ts, record.ts.saturating_add(self.gap_ms));
        let entry = self.sessions.entry(key.clone()).or_default();
        let sessions = &mut entry.list;
        // Sessions overlapping or touching [ts, ts + gap) form a contiguous run of the list.
        let (first, last) = match sessions.last() {
            // The common case, a record at or after the newest session's start: the older
            // sessions end before the newest starts, so only the newest can touch it.
            Some(newest) if newest.window.start <= own.start => {
                let n = sessions.len();
                (if newest.window.end >= own.start { n - 1 } else { n }, n)
            }
            _ => (
                sessions.partition_point(|s| s.window.end < own.start),
                sessions.partition_point(|s| s.window.start <= own.end),
            ),
        };
        let merged_window = sessions[first..last].iter().fold(own, |w, s| {
            Window::new(w.start.min(s.window.start), w.end.max(s.window.end))
        });
        // Flink's order: merge, then drop the record if the merged session has expired.
        if is_window_late(merged_window, self.settings.allowed_lateness, lateness_watermark) {
            if sessions.is_empty() {
                self.sessions.remove(&key);
            }
            return AddOutcome::Late;
        }
        // As in Flink: the record joins the state of the session it falls into, and
        // accumulators merge only when it bridges two or more sessions. The first session of
        // the run takes the others in, in place, and keeps its timers (`fire_timers`).
        let window = merged_window;
        let (watermark, trigger) = (self.watermark, self.settings.trigger);
        let early_timers = &mut self.early_timers;
        let fresh = first == last;
        // Whether sessions merged (Flink calls `onMerge`): the record extended a session or
        // bridged several, not fell inside one.
        let merged_sessions = !fresh && (last > first + 1 || sessions[first].window != window);
        if fresh {
            let session = Session {
                window,
                pane: Pane::default(),
                checkpointed: false,
                fire_pending: false,
            };
            sessions.insert(first, session);
        } else if last == first + 1 {
            // The common case: the record falls into or extends one session.
            let target = &mut sessions[first];
            if target.window != window {
                if let Some(timer) = pending_timer(target.window, &target.pane.trigger) {
                    early_timers.remove(&(timer, key.clone(), target.window));
                }
                target.window = window;
            }
            if target.checkpointed {
                out.events.checkpointed_session_merges += 1;
            }
        } else {
            // The record bridges sessions. Flink's `MergingWindowSet` keeps the state of the
            // first of the merged windows in a Java `HashSet`'s order and appends the others'
            // contents in that order: what an evictor or a process function sees.
            let order = flink_merge_order(sessions[first..last].iter().map(|s| s.window), own);
            let mut bridged: SmallVec<[Option<Session<F::Acc>>; 2]> = sessions.drain(first..last).map(Some).collect();
            let mut target = bridged[order[0]].take().expect("each session once");
            for session in bridged.iter().flatten().chain(std::iter::once(&target)) {
                if let Some(timer) = pending_timer(session.window, &session.pane.trigger) {
                    early_timers.remove(&(timer, key.clone(), session.window));
                }
                if session.checkpointed {
                    out.events.checkpointed_session_merges += 1;
                }
            }
            for &at in &order[1..] {
                let session = bridged[at].take().expect("each session once");
                if let Some(other) = session.pane.acc {
                    match &mut target.pane.acc {
                        Some(acc) => self.function.merge(acc, other),
                        None => target.pane.acc = Some(other),
                    }
                }
                Trigger::merge(&mut target.pane.trigger, session.pane.trigger);
                target.checkpointed |= session.checkpointed;
                target.fire_pending |= session.fire_pending;
            }
            target.window = window;
            sessions.insert(first, target);
        }
        let session = &mut sessions[first];
        if trigger.is_quiet_before_end() && window.max_timestamp() > watermark {
            // Before the session's end the trigger has nothing to say: just add.
            add_to_contents(&self.function, &mut session.pane, record);
        } else {
            if let Some(timer) = pending_timer(window, &session.pane.trigger) {
                early_timers.insert((timer, key.clone(), window));
            }
            let (decision, timer) = add_to_pane(&self.function, &trigger, &mut session.pane, window, record, watermark);
            if let Some(timer) = timer {
                early_timers.insert((timer, key.clone(), window));
            }
            let emitted = act(
                &self.function,
                &key,
                window,
                &mut session.pane,
                decision,
                &mut self.scratch,
                results,
            );
            if window.max_timestamp() <= watermark && emitted {
                // Within allowed lateness of an already-passed session end: a late firing.
                out.events.late_firings += 1;
            } else if emitted {
                out.events.early_firings += 1;
            }
        }
        // A session ending past the watermark fires at its end: a new one, and one that had
        // fired and grew past the watermark by a late merge (it fires again). One opened
        // past its end (within the allowed lateness) waits only for its clean-up.
        session.fire_pending |= window.max_timestamp() > watermark;
        // Flink's continuous trigger re-registers its next firing on a merge; where that is the
        // end of a session the watermark has passed, the session fires again at the next
        // watermark (an earlier one is an early timer, above, whose chain ends there too).
        if merged_sessions && trigger.refires_on_merge() && session.pane.trigger.next_fire.is_some() {
            session.fire_pending = true;
        }
        let due = session_due(session, self.settings.allowed_lateness);
        if entry.armed.is_none_or(|armed| due < armed) {
            entry.armed = Some(due);
            self.timers.push(due, key);
        }
        // A record at most L - 1 behind the watermark may touch a session already cleared:
        // the differential reference must replay it as of this watermark.
        let behind = record
            .ts
            .saturating_add(self.settings.allowed_lateness)
            .saturating_sub(1)
            <= lateness_watermark;
        AddOutcome::Added { behind }
    }

    /// Fires (as the window's end would) and clears `key`'s sessions whose clean-up time is
    /// at or before `watermark`: what the checked run had done by then.
    fn retire(&mut self, key: &K, watermark: Timestamp, results: &mut Vec<Record<F::Out>>) {
        let Some(KeySessions { list: sessions, .. }) = self.sessions.get_mut(key) else {
            return;
        };
        let allowed_lateness = self.settings.allowed_lateness;
        let (retired, kept): (Vec<_>, Vec<_>) = std::mem::take(sessions)
            .into_iter()
            .partition(|s| is_window_late(s.window, allowed_lateness, watermark));
        *sessions = kept;
        for mut session in retired {
            if let Some(timer) = pending_timer(session.window, &session.pane.trigger) {
                self.early_timers.remove(&(timer, key.clone(), session.window));
            }
            if session.fire_pending {
                let decision = self.settings.trigger.on_window_end();
                act(
                    &self.function,
                    key,
                    session.window,
                    &mut session.pane,
                    decision,
                    &mut self.scratch,
                    results,
                );
            }
        }
        if self.sessions.get(key).is_some_and(|k| k.list.is_empty()) {
            self.sessions.remove(key);
        }
    }
}

/// The order in which Flink merges bridged sessions' state: a Java `HashSet` of the bridged
/// windows and the record's own (inserted by start, the record's after an equal start),
/// iterated (buckets of `TimeWindow.hashCode`, a table of 16 that doubles past 3/4 full),
/// without the record's. Returns indexes into `bridged` (sorted by start): the first holds the
/// merged state, the others' contents follow in order.
fn flink_merge_order(bridged: impl Iterator<Item = Window>, own: Window) -> SmallVec<[usize; 4]> {
    // Flink's `MathUtils.longToIntWithBitMixing(start + end)`, then `HashMap.hash`'s spread.
    fn java_hash(window: Window) -> u32 {
        let mut x = window.start.wrapping_add(window.end) as u64;
        x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        let h = (x ^ (x >> 31)) as u32;
        h ^ (h >> 16)
    }
    // Insertion order: by start, the record's window after a bridged one of equal start.
    let mut inserted: SmallVec<[(Window, Option<usize>); 4]> = bridged.enumerate().map(|(i, w)| (w, Some(i))).collect();
    inserted.push((own, None));
    inserted.sort_by_key(|&(window, index)| (window.start, index.is_none()));
    let mut buckets = 16u32;
    while inserted.len() as u32 > buckets / 4 * 3 {
        buckets *= 2;
    }
    // Iteration order: by bucket, then insertion within a bucket (a resize keeps it).
    let mut order: SmallVec<[(u32, usize, usize); 4]> = inserted
        .iter()
        .enumerate()
        .filter_map(|(at, &(window, index))| index.map(|index| (java_hash(window) & (buckets - 1), at, index)))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, _, index)| index).collect()
}

/// The session of `window` among a key's sessions (sorted by start, disjoint), if it has one.
fn session_of<A>(sessions: &mut [Session<A>], window: Window) -> Option<&mut Session<A>> {
    let at = sessions.partition_point(|s| s.window.start < window.start);
    sessions.get_mut(at).filter(|s| s.window == window)
}

/// What became of a record (the caller copies it on only if it goes on).
enum AddOutcome {
    Late,
    /// `behind`: the differential reference must replay it (see `add_record`).
    Added {
        behind: bool,
    },
}

impl<T, K, KS, F> Operator for SessionWindowOperator<T, K, KS, F>
where
    T: Data,
    K: Key,
    KS: Fn(&T) -> K + Send,
    F: WindowFunction<K, T>,
{
    fn handle_records(&mut self, _input: usize, batch: Batch, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        let mut behind = Vec::new();
        // Read in place (a batch shared with the source is not copied).
        for record in batch.as_slice::<T>() {
            match self.add_record(record, self.watermark, &mut results, out) {
                AddOutcome::Late => late.push(record.clone()),
                AddOutcome::Added { behind: true } => behind.push(record.clone()),
                AddOutcome::Added { behind: false } => {}
            }
        }
        out.emit(MAIN, results);
        out.emit_late(late);
        out.emit_behind(behind);
    }

    fn handle_records_behind(&mut self, _input: usize, batch: Batch, watermark: Timestamp, out: &mut Output) {
        let mut results = Vec::new();
        let mut late = Vec::new();
        for record in batch.as_slice::<T>() {
            let key = (self.key_selector)(&record.value);
            self.retire(&key, watermark, &mut results);
            if let AddOutcome::Late = self.add_record(record, self.watermark.max(watermark), &mut results, out) {
                late.push(record.clone());
            }
        }
        out.emit(MAIN, results);
        out.emit_late(late);
    }

    fn handle_watermark(&mut self, watermark: Timestamp, out: &mut Output) {
        debug_assert!(watermark > self.watermark, "watermarks only advance");
        self.watermark = watermark;
        let mut results = Vec::new();
        let trigger = self.settings.trigger;
        while self.early_timers.first().is_some_and(|t| t.0 <= watermark) {
            let (time, key, window) = self.early_timers.pop_first().expect("checked non-empty");
            let session = self
                .sessions
                .get_mut(&key)
                .and_then(|k| session_of(&mut k.list, window))
                .expect("an early timer always has its session");
            let (decision, next) = trigger.on_timer(time, window, &mut session.pane.trigger);
            if let Some(next) = next {
                self.early_timers.insert((next, key.clone(), window));
            }
            if act(
                &self.function,
                &key,
                window,
                &mut session.pane,
                decision,
                &mut self.scratch,
                &mut results,
            ) {
                out.events.early_firings += 1;
            }
        }
        let decision = trigger.on_window_end();
        let allowed_lateness = self.settings.allowed_lateness;
        let firings_from = results.len();
        while let Some((time, key)) = self.timers.pop_due(watermark) {
            let Some(entry) = self.sessions.get_mut(&key).filter(|k| k.armed == Some(time)) else {
                continue; // lapsed: the key was re-armed, or its sessions are gone
            };
            for session in entry.list.iter_mut() {
                if session.fire_pending && session.window.max_timestamp() <= watermark {
                    session.fire_pending = false;
                    act(
                        &self.function,
                        &key,
                        session.window,
                        &mut session.pane,
                        decision,
                        &mut self.scratch,
                        &mut results,
                    );
                }
            }
            entry
                .list
                .retain(|s| !is_window_late(s.window, allowed_lateness, watermark));
            entry.armed = entry.next_due(allowed_lateness);
            match entry.armed {
                Some(next) => self.timers.push(next, key),
                None => {
                    self.sessions.remove(&key);
                }
            }
        }
        // Keys fire in the order their timers came up, a key's sessions at once: put the
        // firings in time order, as per-session timers would have them (Flink's).
        let firings = &mut results[firings_from..];
        if !firings.is_sorted_by_key(|r| r.ts) {
            firings.sort_unstable_by_key(|r| r.ts);
        }
        out.emit(MAIN, results);
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId, max_parallelism: usize) -> OperatorState {
        for session in self.sessions.values_mut().flat_map(|k| &mut k.list) {
            session.checkpointed = true;
        }
        let mut sessions: Vec<(&K, Window, bool, &Pane<F::Acc>)> = Vec::new();
        for (key, key_sessions) in &self.sessions {
            for session in &key_sessions.list {
                sessions.push((key, session.window, !session.fire_pending, &session.pane));
            }
        }
        sessions.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        OperatorState::from_keyed(sessions, |s| s.0, max_parallelism)
    }

    fn restore_state(&mut self, context: &RestoreContext<'_>) -> Result<(), SnapshotError> {
        self.watermark = context.watermark;
        for (key, window, fired, pane) in context.keyed_entries::<(K, Window, bool, Pane<F::Acc>)>()? {
            if let Some(timer) = pending_timer(window, &pane.trigger) {
                if !crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::TimersNotSnapshotted) {
                    self.early_timers.insert((timer, key.clone(), window));
                }
            }
            let sessions = &mut self.sessions.entry(key).or_default().list;
            let at = sessions.partition_point(|s| s.window.start < window.start);
            sessions.insert(
                at,
                Session {
                    window,
                    pane,
                    checkpointed: true,
                    fire_pending: !fired,
                },
            );
        }
        // Each key's timer, set in time order (not the map's).
        let allowed_lateness = self.settings.allowed_lateness;
        let mut timers: Vec<(Timestamp, &K)> = Vec::new();
        for (key, k) in self.sessions.iter_mut() {
            let due = k.next_due(allowed_lateness);
            if crate::testkit::bugs::is_active(crate::testkit::bugs::Bug::TimersNotSnapshotted) {
                // The planted bug: the key believes it waits on a timer that is not there.
                k.armed = Some(Timestamp::MAX);
                continue;
            }
            k.armed = due;
            timers.extend(due.map(|due| (due, key)));
        }
        timers.sort_unstable();
        for (due, key) in timers {
            self.timers.push(due, key.clone());
        }
        // Merging relies on each key's sessions being disjoint (found by fuzz/snapshot_decode).
        for sessions in self.sessions.values() {
            if let Some(pair) = sessions
                .list
                .windows(2)
                .find(|pair| pair[0].window.end >= pair[1].window.start)
            {
                return Err(SnapshotError::Payload {
                    what: "session windows",
                    reason: format!(
                        "sessions {:?} and {:?} of one key overlap or touch",
                        pair[0].window, pair[1].window
                    ),
                });
            }
        }
        Ok(())
    }

    fn state_entries(&self) -> usize {
        // Per session its state, per key the timer it waits on (the timers that lapsed are not
        // state).
        let sessions: usize = self.sessions.values().map(|k| k.list.len()).sum();
        sessions + self.sessions.len() + self.early_timers.len()
    }
}
