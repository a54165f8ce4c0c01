//! A run laid out over virtual time, lane by task: what `eddy replay --timeline` draws.
//!
//! Recorded by the simulator when a run keeps its trace: every delivery and source read as a
//! mark on its task's lane (with the records' text, the task's watermark and state size after
//! it), every checkpoint, fault and restore as an event. [`Timeline::highlight`] then marks
//! the records and the commit that a violation names.

use serde::Serialize;

use crate::report::Violation;
use crate::trace::TraceEvent;

/// At most this many records' text per mark (the count is kept).
pub const RECORDS_PER_MARK: usize = 12;

/// A run laid out over virtual time, lane by task.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// One lane per task, in the order they first appear.
    pub lanes: Vec<Lane>,
    /// Every delivery and source read, in step order.
    pub marks: Vec<Mark>,
    /// Every checkpoint, fault and restore, in step order.
    pub events: Vec<Event>,
    /// What the violation names, as the page says it (empty if the run passed).
    pub highlight: String,
}

/// A task's lane.
#[derive(Clone, Debug, Serialize)]
pub struct Lane {
    /// `operator[subtask]`.
    pub name: String,
    /// The task's operator (chain): the name without the subtask.
    pub operator: String,
    /// `source`, `operator` or `sink`.
    pub kind: &'static str,
}

/// One step of one task.
#[derive(Clone, Debug, Serialize)]
pub struct Mark {
    /// Virtual time (ms).
    pub t: i64,
    /// The simulator step.
    pub step: u64,
    /// The index of the task's lane in [`Timeline::lanes`].
    pub lane: usize,
    /// `records`, `watermark`, `barrier`, `ack` (a barrier that completed alignment), `end`,
    /// `poll`.
    pub kind: &'static str,
    /// Records in the batch, the watermark's value, or the barrier's checkpoint.
    pub n: i64,
    /// The task's watermark after the step (`None` before any).
    pub watermark: Option<i64>,
    /// State entries the task holds after the step.
    pub state: usize,
    /// The text of the records (at most [`RECORDS_PER_MARK`]).
    pub records: Vec<String>,
    /// Whether a record of the violation is among them.
    pub hit: bool,
}

/// A checkpoint, fault or restore.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// Virtual time (ms).
    pub t: i64,
    /// The simulator step.
    pub step: u64,
    /// `trigger`, `completed`, `checkpoint-failed`, `commit`, `notification-lost`,
    /// `corrupted`, `failed-write`, `crash`, `restored`, `rescaled`, `jump`, `finished`.
    pub kind: &'static str,
    /// What happened, in words.
    pub text: String,
    /// The commit that made the violation's wrong value visible.
    pub hit: bool,
}

impl Timeline {
    /// The lane of task `name`, added if new (a rescaled job has other tasks).
    pub(crate) fn lane(&mut self, name: &str) -> usize {
        if let Some(at) = self.lanes.iter().position(|l| l.name == name) {
            return at;
        }
        let operator = name.split('[').next().unwrap_or(name).to_string();
        let kind = if operator.starts_with("sink") {
            "sink"
        } else {
            "operator"
        };
        self.lanes.push(Lane {
            name: name.to_string(),
            operator,
            kind,
        });
        self.lanes.len() - 1
    }

    pub(crate) fn mark_source(&mut self, lane: usize) {
        self.lanes[lane].kind = "source";
    }

    /// Adds the trace's checkpoint, fault and restore events, at the time of their step.
    pub(crate) fn add_events(&mut self, trace: &[TraceEvent], time_of_step: &[i64], failed_writes: &[u64]) {
        let at = |step: u64| time_of_step.get(step as usize).copied().unwrap_or_default();
        for event in trace {
            let (step, kind, text) = match *event {
                TraceEvent::Trigger { step, checkpoint } => {
                    (step, "trigger", format!("checkpoint {checkpoint} triggered"))
                }
                TraceEvent::Completed { step, checkpoint } => {
                    (step, "completed", format!("checkpoint {checkpoint} completed"))
                }
                TraceEvent::CheckpointFailed { step, checkpoint } => {
                    (step, "checkpoint-failed", format!("checkpoint {checkpoint} failed"))
                }
                TraceEvent::Notified { step, checkpoint } => (
                    step,
                    "commit",
                    format!("checkpoint {checkpoint} notified: sinks commit its transactions"),
                ),
                TraceEvent::NotificationLost { step, checkpoint } => (
                    step,
                    "notification-lost",
                    format!("the notification of checkpoint {checkpoint} was lost"),
                ),
                TraceEvent::Corrupted { step, checkpoint } => (
                    step,
                    "corrupted",
                    format!("a stored object of checkpoint {checkpoint} was damaged"),
                ),
                TraceEvent::Crash { step } => (step, "crash", "the job crashed".to_string()),
                TraceEvent::Restored { step, checkpoint } => (
                    step,
                    "restored",
                    if checkpoint == 0 {
                        "restarted from scratch (no intact checkpoint)".to_string()
                    } else {
                        format!("restored checkpoint {checkpoint}; its staged transactions commit")
                    },
                ),
                TraceEvent::Rescaled { step, tasks } => {
                    (step, "rescaled", format!("the job runs {tasks} tasks from here"))
                }
                TraceEvent::Jump { step, now } => (step, "jump", format!("processing time jumped to {now} ms")),
                TraceEvent::Finished { step } => (step, "finished", "the job finished".to_string()),
                TraceEvent::DatabaseFault { step, kind } => (step, kind, format!("database fault armed: {kind}")),
                TraceEvent::Deliver { .. } | TraceEvent::Poll { .. } | TraceEvent::Output { .. } => continue,
            };
            self.events.push(Event {
                t: at(step),
                step,
                kind,
                text,
                hit: false,
            });
        }
        for &step in failed_writes {
            self.events.push(Event {
                t: at(step),
                step,
                kind: "failed-write",
                text: "the next snapshot write fails".to_string(),
                hit: false,
            });
        }
        self.events.sort_by_key(|e| e.step);
    }

    /// Marks the records the violation names, in every lane they crossed, and the first
    /// commit after the last of them reached a sink: the one that made the value visible.
    pub fn highlight(&mut self, violation: &Violation) {
        let Some(matcher) = Matcher::of(&violation.message) else {
            return;
        };
        self.highlight = matcher.describe();
        let mut last_sink_hit = None;
        for mark in &mut self.marks {
            mark.hit = mark.records.iter().any(|r| matcher.matches(r));
            if mark.hit && self.lanes[mark.lane].kind == "sink" {
                last_sink_hit = Some(mark.step);
            }
        }
        if let Some(step) = last_sink_hit {
            if let Some(commit) = self
                .events
                .iter_mut()
                .find(|e| e.step >= step && (e.kind == "commit" || e.kind == "restored"))
            {
                commit.hit = true;
            }
        }
    }
}

/// Where two runs of one seed first differ: the first step whose mark (or trace event)
/// differs, both versions of it, and the steps just before it. `None` if they agree.
pub fn first_divergence(a: &Timeline, b: &Timeline, trace_a: &[TraceEvent], trace_b: &[TraceEvent]) -> Option<String> {
    let show = |mark: &Mark, lanes: &[Lane]| {
        let records = if mark.records.is_empty() {
            String::new()
        } else {
            format!(" [{}]", mark.records.join(", "))
        };
        format!(
            "step {} (t {} ms) {} {} {}{}",
            mark.step, mark.t, lanes[mark.lane].name, mark.kind, mark.n, records
        )
    };
    let same = |x: &Mark, y: &Mark| {
        (x.step, x.t, &a.lanes[x.lane].name, x.kind, x.n, &x.records)
            == (y.step, y.t, &b.lanes[y.lane].name, y.kind, y.n, &y.records)
    };
    let at = (0..a.marks.len().max(b.marks.len()))
        .find(|&i| !matches!((a.marks.get(i), b.marks.get(i)), (Some(x), Some(y)) if same(x, y)));
    let (first, second, before) = match at {
        Some(i) => (
            a.marks
                .get(i)
                .map_or("(the run had ended)".to_string(), |m| show(m, &a.lanes)),
            b.marks
                .get(i)
                .map_or("(the run had ended)".to_string(), |m| show(m, &b.lanes)),
            a.marks[i.saturating_sub(3)..i]
                .iter()
                .map(|m| show(m, &a.lanes))
                .collect::<Vec<_>>(),
        ),
        None => {
            let i = (0..trace_a.len().max(trace_b.len())).find(|&i| trace_a.get(i) != trace_b.get(i))?;
            let text = |e: Option<&TraceEvent>| e.map_or("(the run had ended)".to_string(), |e| format!("{e:?}"));
            (
                text(trace_a.get(i)),
                text(trace_b.get(i)),
                trace_a[i.saturating_sub(3)..i]
                    .iter()
                    .map(|e| format!("{e:?}"))
                    .collect(),
            )
        }
    };
    let mut text = format!("first divergence:\n  first run:  {first}\n  second run: {second}");
    if !before.is_empty() {
        text.push_str("\n  the steps before it, the same in both:");
        for step in before {
            text.push_str(&format!("\n    {step}"));
        }
    }
    Some(text)
}

/// What a violation message names: a record, or a window `[start, end)` and other numbers
/// (a key).
struct Matcher {
    record: Option<String>,
    window: Option<(i64, i64)>,
    atoms: Vec<i64>,
}

impl Matcher {
    /// Reads the key of `message`: the part before the first `: `, or after `key ` in the
    /// differential oracle's messages.
    fn of(message: &str) -> Option<Matcher> {
        if let Some(at) = message.find("Record { ") {
            // The record as `{:?}` printed it: up to its closing brace.
            let mut depth = 0;
            for (i, c) in message[at..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => continue,
                }
                if depth == 0 {
                    return Some(Matcher {
                        record: Some(message[at..=at + i].to_string()),
                        window: None,
                        atoms: Vec::new(),
                    });
                }
            }
        }
        let key = match message.find("key ") {
            Some(at) => &message[at + 4..],
            None => message,
        };
        // Up to the first `: ` outside brackets (a key prints as `(1, Window { start: .. })`).
        let mut depth = 0i32;
        let mut end = key.len();
        for (i, c) in key.char_indices() {
            match c {
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => depth -= 1,
                ':' if depth == 0 && key[i..].starts_with(": ") => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let key = &key[..end];
        let numbers = numbers_in(key);
        if numbers.is_empty() {
            return None;
        }
        let after = |word: &str| {
            let at = key.find(word)? + word.len();
            numbers_in(&key[at..]).first().copied()
        };
        let window = after("start").zip(after("end"));
        let atoms = numbers
            .into_iter()
            .filter(|n| window.is_none_or(|(s, e)| *n != s && *n != e))
            .collect();
        Some(Matcher {
            record: None,
            window,
            atoms,
        })
    }

    fn describe(&self) -> String {
        if let Some(record) = &self.record {
            return record.clone();
        }
        let mut parts: Vec<String> = self.atoms.iter().map(|a| a.to_string()).collect();
        if let Some((start, end)) = self.window {
            parts.push(format!("window [{start}, {end})"));
        }
        parts.join(", ")
    }

    /// `record` is a `Record { ts, value }` as `{:?}` prints it.
    fn matches(&self, record: &str) -> bool {
        if let Some(named) = &self.record {
            return record == named;
        }
        let in_window = match self.window {
            None => true,
            Some((start, end)) => {
                record.contains(&format!("start: {start},"))
                    || numbers_in(record.strip_prefix("Record { ts: ").unwrap_or(""))
                        .first()
                        .is_some_and(|ts| (start..end).contains(ts))
            }
        };
        in_window
            && self.atoms.iter().all(|a| {
                [format!(": {a},"), format!(": {a} "), format!("({a},"), format!("[{a},")]
                    .iter()
                    .any(|p| record.contains(p.as_str()))
            })
    }
}

fn numbers_in(text: &str) -> Vec<i64> {
    let mut numbers = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() || (c == '-' && current.is_empty()) {
            current.push(c);
        } else {
            if let Ok(n) = current.parse() {
                numbers.push(n);
            }
            current.clear();
        }
    }
    numbers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_names_a_key_and_window_that_records_match() {
        let m = Matcher::of("(1, Window { start: 60000, end: 120000 }): committed 21 after 21").unwrap();
        assert_eq!((m.window, m.atoms.clone()), (Some((60000, 120000)), vec![1]));
        assert!(m.matches("Record { ts: 61000, value: PageView { page: 1, user: 7 } }"));
        assert!(!m.matches("Record { ts: 61000, value: PageView { page: 2, user: 7 } }"));
        assert!(!m.matches("Record { ts: 121000, value: PageView { page: 1, user: 7 } }"));
        assert!(m.matches(
            "Record { ts: 119999, value: Windowed { key: 1, window: Window { start: 60000, end: 120000 }, value: 21 } }"
        ));
        let d = Matcher::of(r#"output `counts`, key [3,{"start":332,"end":1648}]: expected 9"#).unwrap();
        assert_eq!((d.window, d.atoms), (Some((332, 1648)), vec![3]));
        assert!(Matcher::of("the job did not finish").is_none());
        let r = Matcher::of(
            "late record Record { ts: 3479999, value: PageView { page: 7, user: 16 } } is not in the input",
        )
        .unwrap();
        assert!(r.matches("Record { ts: 3479999, value: PageView { page: 7, user: 16 } }"));
        assert!(!r.matches("Record { ts: 3479999, value: PageView { page: 7, user: 17 } }"));
    }
}
