//! `nexmark-q18`: the last bid per bidder and auction (`ROW_NUMBER() OVER (PARTITION BY
//! bidder, auction ORDER BY dateTime DESC) = 1`), as event-time deduplication keeping the
//! last record with a TTL of [`TTL_MS`]: one result per (bidder, auction) and dedup interval
//! (the interval's last bid, stamped with the interval's end − 1), so state stays bounded.

use eddy_engine::{JobGraph, Keep, Pipeline, Record};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Workload};
use serde::Serialize;

use super::{as_events, bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{accepted, compare_multisets, outcome, reference_dedup};

pub const TTL_MS: i64 = 30_000;

pub struct Q18 {
    pub source: Source,
}

pub static NEXMARK_Q18: Q18 = Q18 { source: SOURCE };

#[derive(Serialize)]
struct LastBidLine {
    interval_end: i64,
    bidder: u64,
    auction: u64,
    price: u64,
}

impl Workload for Q18 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q18"
    }

    fn description(&self) -> &'static str {
        "Nexmark q18, last bid per bidder and auction: dedup keep-last in event time (30 s TTL)"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        let last = bids(events)
            .key_by(|bid: &Bid| (bid.bidder, bid.auction))
            .deduplicate(Keep::Last, TTL_MS);
        outputs.append_as("last", last.output, |r: &Record<Bid>| {
            line(&LastBidLine {
                interval_end: r.ts + 1,
                bidder: r.value.bidder,
                auction: r.value.auction,
                price: r.value.price,
            })
        });
        outputs.append("late", last.late);
        pipeline.build().expect("the nexmark-q18 pipeline is valid")
    }

    /// The last bids; the late bids are checked by their own rule.
    fn judged_outputs(&self, _input: &[Record<Event>], outputs: &Outputs) -> Vec<OutputTable> {
        vec![OutputTable::append("last", outputs.log::<Bid>("last").records())]
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<Bid>("last").records();
        let late = outputs.log::<Bid>("late").records();
        let verdict = (|| {
            // A bid is late when its ts is at or behind the watermark.
            let accepted = accepted(
                input,
                &as_events(&input_bids(input)),
                &as_events(&late),
                self.partitions(),
                self.source.out_of_orderness_ms,
                |r| r.ts,
            )?;
            let accepted_bids = input_bids(&accepted);
            let expected = reference_dedup(&accepted_bids, |b| (b.bidder, b.auction), Keep::Last, TTL_MS);
            compare_multisets("exactly-once", expected, committed.clone())
        })();
        outcome(&committed, &late, verdict)
    }
}
