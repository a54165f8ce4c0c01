//! `nexmark-q11`: user sessions. Bids per bidder session (session windows with a gap of
//! [`GAP_MS`]), with [`ALLOWED_LATENESS_MS`] of allowed lateness: a late bid can still extend
//! or merge sessions, whose results are then upserts.

use eddy_engine::{Count, JobGraph, Pipeline, Record, WindowAssigner, Windowed};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Workload};
use serde::Serialize;

use super::{as_events, bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{accepted, check_sessions, late_at_recorded_watermark, outcome, session_upserts, values};

pub const GAP_MS: i64 = 10_000;
pub const ALLOWED_LATENESS_MS: i64 = 2_000;

pub struct Q11 {
    pub source: Source,
}

pub static NEXMARK_Q11: Q11 = Q11 { source: SOURCE };

#[derive(Serialize)]
struct SessionLine {
    session_start: i64,
    session_end: i64,
    bidder: u64,
    bids: u64,
}

impl Workload for Q11 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q11"
    }

    fn description(&self) -> &'static str {
        "Nexmark q11, user sessions: bids per bidder session (10 s gap, 2 s allowed lateness)"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        let sessions = bids(events)
            .key_by(|bid: &Bid| bid.bidder)
            .window(WindowAssigner::session(GAP_MS))
            .allowed_lateness(ALLOWED_LATENESS_MS)
            .aggregate(Count);
        // Upserts: keyed by bidder on their way to the sink, so each bidder's results keep
        // their order.
        outputs.sessions_as("sessions", sessions.output, |w: &Windowed<u64, u64>| {
            line(&SessionLine {
                session_start: w.window.start,
                session_end: w.window.end,
                bidder: w.key,
                bids: w.value,
            })
        });
        outputs.append("late", sessions.late);
        pipeline.build().expect("the nexmark-q11 pipeline is valid")
    }

    /// The sessions; the late bids are checked by their own rule.
    fn judged_outputs(&self, _input: &[Record<Event>], outputs: &Outputs) -> Vec<OutputTable> {
        let sessions = outputs.log::<Windowed<u64, u64>>("sessions");
        vec![OutputTable::sessions("sessions", values(&sessions))]
    }

    fn check(&self, input: &[Record<Event>], recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<Windowed<u64, u64>>("sessions").records();
        let late = outputs.log::<Bid>("late").records();
        let verdict = (|| {
            // A session bid is late only when its merged session, so its own window
            // [ts, ts + gap), has expired: ts + gap - 1 + allowed lateness <= watermark.
            let late_at = |ts: i64| ts + GAP_MS - 1 + ALLOWED_LATENESS_MS;
            let accepted = accepted(
                input,
                &as_events(&input_bids(input)),
                &as_events(&late),
                self.partitions(),
                self.source.out_of_orderness_ms,
                |r| late_at(r.ts),
            )?;
            late_at_recorded_watermark(recorded.late().map(|(ts, _, w)| (ts, w)), late_at)?;
            let bids: Vec<Record<Bid>> = accepted
                .into_iter()
                .filter_map(|r| Some(Record::new(r.ts, r.value.bid()?)))
                .collect();
            check_sessions(
                &bids,
                recorded.behind(),
                |r| r.value.bidder,
                &session_upserts(&committed),
                GAP_MS,
                ALLOWED_LATENESS_MS,
            )
        })();
        outcome(&committed, &late, verdict)
    }
}
