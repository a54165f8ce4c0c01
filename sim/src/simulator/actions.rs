//! One step's action: which ready action runs (channel delays held back, the `Schedule`
//! decision stream choosing among the rest) and running it, recorded in the trace and, with
//! `keep_trace`, on the timeline. The draws here keep their order whatever is overridden, so
//! that the schedule stream stays the same.

use super::state::Simulation;
use crate::coverage::Moment;
use crate::decide::Decisions;
use crate::faults::FaultKind;
use crate::seed::Concern;
use crate::timeline::{Mark, RECORDS_PER_MARK};
use crate::trace::TraceEvent;

use eddy_engine::{Action, Message, NO_WATERMARK};

impl<D: Decisions> Simulation<'_, D> {
    pub(super) fn choose(&mut self, actions: &[Action]) -> Action {
        if self.on(FaultKind::ChannelDelay) {
            self.delayed.retain(|(_, until)| *until > self.step);
            if self.decisions.chance(Concern::Schedule, 0.02) {
                let picked = self.decisions.index(Concern::Schedule, actions.len());
                if let Action::Deliver { task, input } = actions[picked] {
                    let until = self.step + self.decisions.below(Concern::Schedule, 10..300u64);
                    self.delayed.push(((task, input), until));
                }
            }
            let open: Vec<Action> = actions
                .iter()
                .copied()
                .filter(|a| match a {
                    Action::Deliver { task, input } => !self.delayed.iter().any(|(c, _)| *c == (*task, *input)),
                    Action::PollSource { .. } => true,
                })
                .collect();
            if !open.is_empty() {
                return open[self.decisions.below(Concern::Schedule, 0..open.len())];
            }
        }
        actions[self.decisions.below(Concern::Schedule, 0..actions.len())]
    }

    pub(super) fn perform(&mut self, action: Action) {
        // Drawn even when overridden, so that the schedule stream stays the same.
        let drawn = self.decisions.within(Concern::Schedule, 1..=32usize);
        let max = self.poll_max.unwrap_or(drawn);
        match action {
            Action::Deliver { task, input } => {
                let (element, size) = match self.job.tasks()[task].peek_input(input) {
                    Some(Message::Records(batch)) => ("records", batch.len() as i64),
                    Some(Message::Watermark(w)) => ("watermark", *w),
                    Some(Message::Barrier(c)) => ("barrier", *c as i64),
                    Some(Message::Idle) => {
                        self.moments.add(Moment::InputIdle, 1);
                        ("idle", 0)
                    }
                    Some(Message::Active) => {
                        if self.job.tasks()[task].idle_at_watermark(input) {
                            self.moments.add(Moment::IdleActiveAtWatermark, 1);
                        }
                        ("active", 0)
                    }
                    Some(Message::EndOfInput) | None => ("end", 0),
                };
                self.trace.record(TraceEvent::Deliver {
                    step: self.step,
                    task,
                    channel: input,
                    element,
                    size,
                });
            }
            Action::PollSource { task } => self.trace.record(TraceEvent::Poll {
                step: self.step,
                task,
                max,
            }),
        }
        let Some(timeline) = &mut self.timeline else {
            self.job.perform(action, max);
            return;
        };
        let (task, kind, n, records, more) = match action {
            Action::Deliver { task, input } => match self.job.tasks()[task].peek_input(input) {
                Some(Message::Records(batch)) => {
                    let mut records: Vec<String> = batch.describe().into_iter().map(|(_, _, text)| text).collect();
                    let more = records.len().saturating_sub(RECORDS_PER_MARK);
                    records.truncate(RECORDS_PER_MARK);
                    (task, "records", batch.len() as i64, records, more)
                }
                Some(Message::Watermark(w)) => (task, "watermark", *w, Vec::new(), 0),
                Some(Message::Barrier(c)) => (task, "barrier", *c as i64, Vec::new(), 0),
                Some(Message::Idle) => (task, "idle", 0, Vec::new(), 0),
                Some(Message::Active) => (task, "active", 0, Vec::new(), 0),
                Some(Message::EndOfInput) | None => (task, "end", 0, Vec::new(), 0),
            },
            Action::PollSource { task } => (task, "poll", 0, Vec::new(), 0),
        };
        self.job.perform(action, max);
        let t = &self.job.tasks()[task];
        let lane = timeline.lane(&t.name);
        if t.is_source() {
            timeline.mark_source(lane);
        }
        // A barrier after which the task no longer waits for others completed its alignment:
        // the task snapshotted and acknowledged.
        let kind = if kind == "barrier" && !t.is_aligning() {
            "ack"
        } else {
            kind
        };
        let mut records = records;
        if more > 0 {
            records.push(format!("... and {more} more"));
        }
        timeline.marks.push(Mark {
            t: self.now,
            step: self.step,
            lane,
            kind,
            n,
            watermark: (t.watermark() > NO_WATERMARK).then(|| t.watermark()),
            state: t.state_entries(),
            records,
            hit: false,
        });
    }
}
