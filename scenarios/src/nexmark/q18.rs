//! `nexmark-q18`: the last bid per bidder and auction (`ROW_NUMBER() OVER (PARTITION BY
//! bidder, auction ORDER BY dateTime DESC) = 1`), as event-time deduplication keeping the
//! last record with a TTL of [`TTL_MS`]: one result per (bidder, auction) and dedup interval
//! (the interval's last bid, stamped with the interval's end − 1), so state stays bounded.

use eddy_engine::{CommitLog, JobGraph, Keep, Log, Pipeline, Record};
use eddy_sim::{Checked, OutputTable, Recorded, Workload};
use serde::Serialize;

use super::{as_events, bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{accepted, compare_multisets, outcome, reference_dedup};

pub const TTL_MS: i64 = 30_000;

pub struct Q18 {
    pub source: Source,
}

pub static NEXMARK_Q18: Q18 = Q18 { source: SOURCE };

pub struct Sinks {
    pub last: CommitLog<Bid>,
    pub late: CommitLog<Bid>,
}

#[derive(Serialize)]
struct LastBidLine {
    interval_end: i64,
    bidder: u64,
    auction: u64,
    price: u64,
}

impl Workload for Q18 {
    type Event = Event;
    type Sinks = Sinks;

    fn name(&self) -> &'static str {
        "nexmark-q18"
    }

    fn description(&self) -> &'static str {
        "Nexmark q18, last bid per bidder and auction: dedup keep-last in event time (30 s TTL)"
    }

    super::source_methods!();

    fn build(&self, log: Log<Event>) -> (JobGraph, Sinks) {
        let sinks = Sinks {
            last: CommitLog::new(),
            late: CommitLog::new(),
        };
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = pipeline.source("events", log, watermarks(&self.source));
        let last = bids(events)
            .key_by(|bid: &Bid| (bid.bidder, bid.auction))
            .deduplicate(Keep::Last, TTL_MS);
        last.output.sink_transactional(sinks.last.clone());
        last.late.sink_transactional(sinks.late.clone());
        (pipeline.build().expect("the nexmark-q18 pipeline is valid"), sinks)
    }

    fn outputs(&self, _input: &[Record<Self::Event>], sinks: &Sinks) -> Vec<OutputTable> {
        vec![OutputTable::append("last", sinks.last.records())]
    }

    fn output_lines(&self, sinks: &Sinks) -> Vec<String> {
        let mut last = sinks.last.records();
        last.sort_by_key(|r| (r.ts, r.value.bidder, r.value.auction, r.value.price));
        last.iter()
            .map(|r| {
                line(&LastBidLine {
                    interval_end: r.ts + 1,
                    bidder: r.value.bidder,
                    auction: r.value.auction,
                    price: r.value.price,
                })
            })
            .collect()
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, sinks: &Sinks) -> Checked {
        let committed = sinks.last.records();
        let late = sinks.late.records();
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
