//! `nexmark-q0`: pass-through. `SELECT auction, bidder, price, dateTime FROM bid`: measures
//! the cost of moving records (source, a parallel map, a transactional sink).

use eddy_engine::{CommitLog, JobGraph, Log, Pipeline, Record};
use eddy_sim::{Checked, OutputTable, Recorded, Workload};

use super::{bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{compare_multisets, outcome};

pub struct Q0 {
    pub source: Source,
}

pub static NEXMARK_Q0: Q0 = Q0 { source: SOURCE };

pub struct Sinks {
    pub bids: CommitLog<Bid>,
}

/// A bid with its event time, as `eddy run` prints it.
#[derive(serde::Serialize)]
pub struct BidLine {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub date_time: i64,
}

/// Bids as output lines, in event-time order (then by bid).
pub fn bid_lines(mut bids: Vec<Record<Bid>>) -> Vec<String> {
    bids.sort();
    bids.iter()
        .map(|r| {
            line(&BidLine {
                auction: r.value.auction,
                bidder: r.value.bidder,
                price: r.value.price,
                date_time: r.ts,
            })
        })
        .collect()
}

impl Workload for Q0 {
    type Event = Event;
    type Sinks = Sinks;

    fn name(&self) -> &'static str {
        "nexmark-q0"
    }

    fn description(&self) -> &'static str {
        "Nexmark q0, pass-through: every bid, unchanged"
    }

    super::source_methods!();

    fn build(&self, log: Log<Event>) -> (JobGraph, Sinks) {
        let sinks = Sinks { bids: CommitLog::new() };
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = pipeline.source("events", log, watermarks(&self.source));
        bids(events).map(|bid: Bid| bid).sink_transactional(sinks.bids.clone());
        (pipeline.build().expect("the nexmark-q0 pipeline is valid"), sinks)
    }

    fn outputs(&self, _input: &[Record<Self::Event>], sinks: &Sinks) -> Vec<OutputTable> {
        vec![OutputTable::append("bids", sinks.bids.records())]
    }

    fn output_lines(&self, sinks: &Sinks) -> Vec<String> {
        bid_lines(sinks.bids.records())
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, sinks: &Sinks) -> Checked {
        let committed = sinks.bids.records();
        let verdict = compare_multisets("exactly-once", input_bids(input), committed.clone());
        outcome::<Bid, Bid>(&committed, &[], verdict)
    }
}
