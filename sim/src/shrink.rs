//! Shrinking: from a failing case to a small one that fails the same property.
//!
//! Greedy delta debugging, each step kept only if the case still
//! fails with the same property: drop faults, anchor crashes to a checkpoint's progress, read fewer records per
//! poll, drop chunks of input records (halves, then quarters, ... then single records), move
//! faults and checkpoint triggers earlier, drop checkpoint triggers; repeated until a round
//! changes nothing, then repeated with a costlier pass that drops single records (or rounds)
//! and moves the later checkpoint triggers with them. Then move every timestamp by the same
//! whole number of hours towards 0 (window boundaries of every scenario stay where they
//! were), and renumber keys and other integer fields by rank, for a scenario whose
//! reference takes any value (not a user's pipeline checked against its batch run: its
//! generator may never make such values); then try the scenario's simpler values of each
//! record (a user's shrink function).
//! An input a proptest strategy draws is also shrunk through the strategy's value tree, with
//! the seed's faults, and then reduced the same way: the smaller case wins.
//! Scheduling and checkpoint timing keep coming from the seed, so every try is deterministic.

use std::collections::BTreeMap;

use crate::scenario::{Case, RunConfig, Scenario};
use crate::simulator::FaultEvent;

/// A shrunk case, with what shrinking it took.
pub struct Shrunk {
    /// The smallest case found that still fails the same property.
    pub case: Case,
    /// Input records of the case shrinking started from.
    pub events_before: usize,
    /// Faults of the case shrinking started from.
    pub faults_before: usize,
    /// Simulated runs the shrinker spent.
    pub runs: usize,
    /// Whether a last round changed nothing; false when the budget ran out first (the case
    /// may shrink further).
    pub fixpoint: bool,
}

const HOUR_MS: i64 = 3_600_000;

/// How many steps earlier `drop_records_moving_triggers` moves checkpoint triggers: about
/// what reading and delivering one record takes.
const TRIGGER_SHIFT: u64 = 6;

/// A determinism failure can pass by chance (two orders may agree): the shrinker keeps a
/// case if one of this many runs fails, and a replay tries it this many times.
pub const DETERMINISM_TRIES: usize = 8;

/// Shrinks `case`, which fails `property` under `config`, spending at most `max_runs` runs.
pub fn shrink(scenario: &dyn Scenario, config: &RunConfig, case: Case, property: &str, max_runs: usize) -> Shrunk {
    shrink_until(scenario, config, case, property, &|runs| runs >= max_runs)
}

/// Shrinks `case` until `out_of_budget(runs spent)` says stop (a caller's time limit).
pub fn shrink_until(
    scenario: &dyn Scenario,
    config: &RunConfig,
    case: Case,
    property: &str,
    out_of_budget: &dyn Fn(usize) -> bool,
) -> Shrunk {
    // The failing run was shown to repeat (or it is the determinism failure itself): the
    // tries need no second run each, which a failure would take many of.
    let config = &RunConfig {
        check_determinism: config.check_determinism && property == "determinism",
        ..config.clone()
    };
    let mut shrinker = Shrinker {
        scenario,
        config,
        property,
        runs: 0,
        out_of_budget,
    };
    let (events_before, faults_before) = (case.input.len(), case.faults.len());
    let (mut case, mut fixpoint) = shrinker.reduce(case);
    // An input drawn from a strategy shrinks through it too (each value it tries is one the
    // strategy can make), then is reduced the same way; the smaller of the two wins, the
    // strategy's on a tie (its values are the simpler).
    let through_input = scenario.shrink_through_input(config, &mut |c| shrinker.still_fails(c));
    if let Some(simpler) = through_input {
        let (simpler, simpler_fixpoint) = shrinker.reduce(simpler);
        if simpler.input.len() <= case.input.len() {
            (case, fixpoint) = (simpler, simpler_fixpoint);
        }
    }
    if scenario.shrinks_values() {
        shrinker.shift_time(&mut case);
        shrinker.renumber_fields(&mut case);
    }
    shrinker.simplify_values(&mut case);
    // The replay of a determinism case retries it (`DETERMINISM_TRIES`): say what it fails.
    case.property = Some(property.to_string());
    Shrunk {
        case,
        events_before,
        faults_before,
        runs: shrinker.runs,
        // A try the budget refused counts as "still passes", so a round that ran out of budget
        // midway can look unchanged: only a budget left at the end makes it a fixpoint.
        fixpoint: fixpoint && !(shrinker.out_of_budget)(shrinker.runs),
    }
}

struct Shrinker<'a> {
    scenario: &'a dyn Scenario,
    config: &'a RunConfig,
    property: &'a str,
    runs: usize,
    out_of_budget: &'a dyn Fn(usize) -> bool,
}

impl Shrinker<'_> {
    /// Drops faults and records, anchors crashes, reads slowly and simplifies checkpoints
    /// until a round changes nothing (or the budget is spent); then again with the costlier
    /// pass that drops single records and moves checkpoint triggers with them. Returns the
    /// case and whether it reached a fixpoint.
    fn reduce(&mut self, mut case: Case) -> (Case, bool) {
        let mut fixpoint = true;
        for thorough in [false, true] {
            loop {
                let before = (case.input.len(), case.faults.clone());
                // Faults first: there are few, and a crash anchored to a checkpoint's progress
                // stays where it matters while records go.
                self.drop_faults(&mut case);
                self.anchor_crashes(&mut case);
                self.read_slowly(&mut case);
                self.drop_records(&mut case);
                if thorough {
                    self.drop_records_moving_triggers(&mut case, 1);
                    let partitions = self.scenario.partitions();
                    if partitions > 1 {
                        self.drop_records_moving_triggers(&mut case, partitions);
                    }
                }
                self.move_faults_earlier(&mut case);
                self.simplify_checkpoints(&mut case);
                if thorough && (case.input.len(), case.faults.clone()) == before {
                    self.drop_records_reanchoring(&mut case);
                }
                if (case.input.len(), case.faults.clone()) == before {
                    break;
                }
                if (self.out_of_budget)(self.runs) {
                    fixpoint = false;
                    break;
                }
            }
        }
        (case, fixpoint)
    }

    /// Whether `case` still fails the property. A determinism failure shows only in some
    /// runs (two orders may agree): the case is kept if any of `DETERMINISM_TRIES` runs
    /// fails, as a replay gives it that many tries.
    fn still_fails(&mut self, case: &Case) -> bool {
        let tries = if self.property == "determinism" {
            DETERMINISM_TRIES
        } else {
            1
        };
        for _ in 0..tries {
            if (self.out_of_budget)(self.runs) {
                return false;
            }
            self.runs += 1;
            let fails = match self.scenario.run_case(self.config, case) {
                Ok(run) => run.report.violation.is_some_and(|v| v.property == self.property),
                Err(_) => false,
            };
            if fails {
                return true;
            }
        }
        false
    }

    fn drop_records(&mut self, case: &mut Case) {
        let mut chunk = case.input.len().div_ceil(2).max(1);
        loop {
            self.drop_chunks(case, chunk);
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
        // The log is spread round-robin: dropping one record moves every later record to
        // another partition, which often undoes the failure. Dropping a whole number of
        // rounds keeps every later record in its partition.
        let partitions = self.scenario.partitions();
        if partitions > 1 {
            let mut rounds = (case.input.len() / partitions / 2).max(1);
            loop {
                self.drop_chunks(case, rounds * partitions);
                if rounds == 1 {
                    break;
                }
                rounds = rounds.div_ceil(2);
            }
        }
    }

    /// Checkpoint triggers are steps, and a dropped record takes the steps that read and
    /// delivered it along: every later trigger then falls later among the records, which
    /// can undo the failure. So each record is tried again with the triggers from one of
    /// them on moved up to `TRIGGER_SHIFT` steps per record earlier. `chunk` records go at
    /// once (a whole round-robin round keeps the later records in their partitions).
    fn drop_records_moving_triggers(&mut self, case: &mut Case, chunk: usize) {
        let mut index = 0;
        while index + chunk <= case.input.len() {
            let mut dropped = false;
            'tries: for first in 0..case.checkpoints.len() {
                for shift in 1..=TRIGGER_SHIFT * chunk as u64 {
                    let mut smaller = case.clone();
                    smaller.input.drain(index..index + chunk);
                    for step in &mut smaller.checkpoints[first..] {
                        *step = step.saturating_sub(shift);
                    }
                    smaller.checkpoints.sort_unstable();
                    smaller.checkpoints.dedup();
                    if self.still_fails(&smaller) {
                        *case = smaller;
                        dropped = true;
                        break 'tries;
                    }
                }
            }
            if !dropped {
                index += chunk;
            }
        }
    }

    /// Drops runs of `chunk` records (starting at multiples of `chunk`) while it still fails.
    fn drop_chunks(&mut self, case: &mut Case, chunk: usize) {
        let mut start = 0;
        while start < case.input.len() {
            let end = (start + chunk).min(case.input.len());
            let mut smaller = case.clone();
            smaller.input.drain(start..end);
            if self.still_fails(&smaller) {
                *case = smaller;
            } else {
                start = end;
            }
        }
    }

    fn drop_faults(&mut self, case: &mut Case) {
        let mut index = 0;
        while index < case.faults.len() {
            let mut smaller = case.clone();
            smaller.faults.remove(index);
            if self.still_fails(&smaller) {
                *case = smaller;
            } else {
                index += 1;
            }
        }
        // Faults that only work together: a crash and the rescale its restore takes, or two
        // crashes whose second repeats what the first did. Pairs, while there are few.
        'pairs: while (2..=6).contains(&case.faults.len()) {
            for first in 0..case.faults.len() {
                for second in first + 1..case.faults.len() {
                    let mut smaller = case.clone();
                    smaller.faults.remove(second);
                    smaller.faults.remove(first);
                    if self.still_fails(&smaller) {
                        *case = smaller;
                        continue 'pairs;
                    }
                }
            }
            break;
        }
    }

    /// Faults happen at a step or a checkpoint; with fewer records a run is shorter, so a
    /// fault late in the original run may never come. Binary-search each one earlier.
    fn move_faults_earlier(&mut self, case: &mut Case) {
        for index in 0..case.faults.len() {
            let mut low = 0u64;
            while let Some(current) = fault_time(&case.faults[index]) {
                if low >= current {
                    break;
                }
                let candidate = low + (current - low) / 2;
                let mut earlier = case.clone();
                set_fault_time(&mut earlier.faults[index], candidate);
                if self.still_fails(&earlier) {
                    *case = earlier;
                } else {
                    low = candidate + 1;
                }
            }
        }
    }

    /// Reading few records at a time spreads a small input over many steps, so that
    /// watermarks and checkpoints can fall between its records.
    fn read_slowly(&mut self, case: &mut Case) {
        for poll_max in [1, 2, 4, 8] {
            if case.poll_max.is_some_and(|current| current <= poll_max) {
                return;
            }
            let mut slower = case.clone();
            slower.poll_max = Some(poll_max);
            if self.still_fails(&slower) {
                *case = slower;
                return;
            }
        }
    }

    /// A crash at a step may need to fall inside a checkpoint; anchored to the checkpoint's
    /// progress instead, it stays there when records go.
    fn anchor_crashes(&mut self, case: &mut Case) {
        for index in 0..case.faults.len() {
            if !matches!(case.faults[index], FaultEvent::Crash { .. }) {
                continue;
            }
            'anchored: for checkpoint in 1..=case.checkpoints.len() as u64 + 1 {
                for acknowledged in 1..=32 {
                    let mut anchored = case.clone();
                    anchored.faults[index] = FaultEvent::CrashMidCheckpoint {
                        checkpoint,
                        acknowledged,
                    };
                    if self.still_fails(&anchored) {
                        *case = anchored;
                        break 'anchored;
                    }
                }
            }
        }
    }

    /// A crash anchored to a checkpoint's progress counts acknowledgements, and fewer records
    /// change how many tasks have acknowledged when the moment that matters comes (found on
    /// `commit-at-barrier`: stuck at 186 records, 10 fail with the crash 2 acknowledgements
    /// later); a crash at a step moves relative to the records the same way. When nothing
    /// else shrinks, records are dropped again with each crash at other counts or steps, and
    /// the smallest failing case is kept.
    fn drop_records_reanchoring(&mut self, case: &mut Case) {
        for index in 0..case.faults.len() {
            // The same crash elsewhere: another acknowledgement count of its checkpoint, or
            // (a crash at a step that no checkpoint's progress anchors) steps before or after.
            let others: Vec<FaultEvent> = match case.faults[index] {
                FaultEvent::CrashMidCheckpoint {
                    checkpoint,
                    acknowledged,
                } => (0..=acknowledged + 4)
                    .filter(|&a| a != acknowledged)
                    .map(|acknowledged| FaultEvent::CrashMidCheckpoint {
                        checkpoint,
                        acknowledged,
                    })
                    .collect(),
                FaultEvent::Crash { step } => [-32i64, -16, -8, -4, -2, -1, 1, 2, 4]
                    .into_iter()
                    .filter_map(|delta| step.checked_add_signed(delta))
                    .map(|step| FaultEvent::Crash { step })
                    .collect(),
                _ => continue,
            };
            let mut best: Option<Case> = None;
            for other in others {
                let mut candidate = case.clone();
                candidate.faults[index] = other;
                self.drop_records(&mut candidate);
                let smallest = best.as_ref().map_or(case.input.len(), |b| b.input.len());
                if candidate.input.len() < smallest && self.still_fails(&candidate) {
                    best = Some(candidate);
                }
            }
            if let Some(best) = best {
                *case = best;
            }
        }
    }

    /// Fewer and earlier checkpoints: what a short run needs to reach the failing state.
    fn simplify_checkpoints(&mut self, case: &mut Case) {
        let mut index = 0;
        while index < case.checkpoints.len() {
            let mut fewer = case.clone();
            fewer.checkpoints.remove(index);
            if self.still_fails(&fewer) {
                *case = fewer;
                continue;
            }
            let mut low = if index == 0 { 0 } else { case.checkpoints[index - 1] + 1 };
            while low < case.checkpoints[index] {
                let candidate = low + (case.checkpoints[index] - low) / 2;
                let mut earlier = case.clone();
                earlier.checkpoints[index] = candidate;
                if self.still_fails(&earlier) {
                    *case = earlier;
                } else {
                    low = candidate + 1;
                }
            }
            index += 1;
        }
    }

    /// Keys and other integer fields (never `ts`) renumbered by rank: the distinct values of
    /// one field become 0, 1, 2, ... in the same order, so equal stays equal and order stays.
    fn renumber_fields(&mut self, case: &mut Case) {
        let mut leaves = Vec::new();
        for record in &case.input {
            if let Some(value) = record.get("value") {
                integer_leaves(value, &mut vec!["value".to_string()], &mut leaves);
            }
        }
        let mut by_path: BTreeMap<Vec<String>, Vec<i64>> = BTreeMap::new();
        for (path, n) in leaves {
            by_path.entry(path).or_default().push(n);
        }
        for (path, mut values) in by_path {
            values.sort_unstable();
            values.dedup();
            if values.iter().enumerate().all(|(rank, &n)| n == rank as i64) {
                continue;
            }
            let mut renumbered = case.clone();
            for record in &mut renumbered.input {
                if let Some(field) = field_mut(record, &path) {
                    if let Some(n) = field.as_i64() {
                        let rank = values.binary_search(&n).expect("every value was collected");
                        *field = (rank as i64).into();
                    }
                }
            }
            if self.still_fails(&renumbered) {
                *case = renumbered;
            }
        }
    }

    /// Each record's value replaced by the first simpler one (the scenario's) that still
    /// fails, until none does.
    fn simplify_values(&mut self, case: &mut Case) {
        let mut changed = true;
        while changed && !(self.out_of_budget)(self.runs) {
            changed = false;
            for index in 0..case.input.len() {
                for simpler in self.scenario.simpler_values(&case.input[index]["value"]) {
                    let mut candidate = case.clone();
                    candidate.input[index]["value"] = simpler;
                    if self.still_fails(&candidate) {
                        *case = candidate;
                        changed = true;
                        break;
                    }
                }
            }
        }
    }

    fn shift_time(&mut self, case: &mut Case) {
        let min_ts = case.input.iter().filter_map(|r| r["ts"].as_i64()).min();
        let Some(min_ts) = min_ts else { return };
        let shift = min_ts.div_euclid(HOUR_MS) * HOUR_MS;
        if shift == 0 {
            return;
        }
        let mut shifted = case.clone();
        for record in &mut shifted.input {
            if let Some(ts) = record["ts"].as_i64() {
                record["ts"] = (ts - shift).into();
            }
        }
        if self.still_fails(&shifted) {
            *case = shifted;
        }
    }
}

/// The integer leaves of a JSON value, each with its path of object keys.
fn integer_leaves(value: &serde_json::Value, path: &mut Vec<String>, out: &mut Vec<(Vec<String>, i64)>) {
    match value {
        serde_json::Value::Object(fields) => {
            for (name, field) in fields {
                path.push(name.clone());
                integer_leaves(field, path, out);
                path.pop();
            }
        }
        serde_json::Value::Number(n) => {
            if let Some(n) = n.as_i64() {
                out.push((path.clone(), n));
            }
        }
        _ => {}
    }
}

/// The value at `path` inside `value`, if it is there.
fn field_mut<'v>(value: &'v mut serde_json::Value, path: &[String]) -> Option<&'v mut serde_json::Value> {
    path.iter().try_fold(value, |value, name| value.get_mut(name))
}

/// A fault's step, or its checkpoint for faults tied to a checkpoint.
fn fault_time(fault: &FaultEvent) -> Option<u64> {
    match *fault {
        FaultEvent::Crash { step }
        | FaultEvent::Jump { step, .. }
        | FaultEvent::FailedWrite { step }
        | FaultEvent::Rescale { step, .. }
        | FaultEvent::FailedPrepare { step }
        | FaultEvent::LostCommitReply { step }
        | FaultEvent::DatabaseRestart { step, .. } => Some(step),
        FaultEvent::Corrupt { checkpoint, .. }
        | FaultEvent::CrashMidCheckpoint { checkpoint, .. }
        | FaultEvent::CrashBeforeCommit { checkpoint }
        | FaultEvent::LostNotification { checkpoint } => Some(checkpoint),
        FaultEvent::Stall { .. } => None,
    }
}

fn set_fault_time(fault: &mut FaultEvent, time: u64) {
    match fault {
        FaultEvent::Crash { step }
        | FaultEvent::Jump { step, .. }
        | FaultEvent::FailedWrite { step }
        | FaultEvent::Rescale { step, .. }
        | FaultEvent::FailedPrepare { step }
        | FaultEvent::LostCommitReply { step }
        | FaultEvent::DatabaseRestart { step, .. } => *step = time,
        FaultEvent::Corrupt { checkpoint, .. }
        | FaultEvent::CrashMidCheckpoint { checkpoint, .. }
        | FaultEvent::CrashBeforeCommit { checkpoint }
        | FaultEvent::LostNotification { checkpoint } => *checkpoint = time,
        FaultEvent::Stall { .. } => {}
    }
}
