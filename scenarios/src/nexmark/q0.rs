//! `nexmark-q0`: pass-through. `SELECT auction, bidder, price, dateTime FROM bid`: measures
//! the cost of moving records (source, a parallel map, a transactional sink).

use eddy_engine::{JobGraph, Pipeline, Record};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};

use super::{bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{compare_multisets, outcome};

pub struct Q0 {
    pub source: Source,
}

pub static NEXMARK_Q0: Q0 = Q0 { source: SOURCE };

/// A bid with its event time, as `eddy run` prints it.
#[derive(serde::Serialize)]
pub struct BidLine {
    pub auction: u64,
    pub bidder: u64,
    pub price: u64,
    pub date_time: i64,
}

/// A bid as an output line, with its event time.
pub fn bid_line(r: &Record<Bid>) -> String {
    line(&BidLine {
        auction: r.value.auction,
        bidder: r.value.bidder,
        price: r.value.price,
        date_time: r.ts,
    })
}

impl Workload for Q0 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q0"
    }

    fn description(&self) -> &'static str {
        "Nexmark q0, pass-through: every bid, unchanged"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        outputs.append_as("bids", bids(events).map(|bid: Bid| bid), bid_line);
        pipeline.build().expect("the nexmark-q0 pipeline is valid")
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<Bid>("bids").records();
        let verdict = compare_multisets("exactly-once", input_bids(input), committed.clone());
        outcome::<Bid, Bid>(&committed, &[], verdict)
    }
}
