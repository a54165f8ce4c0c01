//! `nexmark-q1`: currency conversion.
//! `SELECT auction, bidder, 0.908 * price AS price, dateTime FROM bid`: prices from US cents
//! to euro cents, in integers (`price * 908 / 1000`, rounded down).

use eddy_engine::{JobGraph, Pipeline, Record};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};

use super::q0::bid_line;
use super::{bids, input_bids, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{compare_multisets, outcome};

/// Euro per dollar, in thousandths.
pub const EURO_PER_DOLLAR_MILLI: u64 = 908;

pub struct Q1 {
    pub source: Source,
}

pub static NEXMARK_Q1: Q1 = Q1 { source: SOURCE };

fn to_euro(bid: Bid) -> Bid {
    Bid {
        price: bid.price * EURO_PER_DOLLAR_MILLI / 1_000,
        ..bid
    }
}

impl Workload for Q1 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q1"
    }

    fn description(&self) -> &'static str {
        "Nexmark q1, currency conversion: every bid with its price in euro cents"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        outputs.append_as("bids", bids(events).map(to_euro), bid_line);
        pipeline.build().expect("the nexmark-q1 pipeline is valid")
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<Bid>("bids").records();
        let expected = input_bids(input)
            .into_iter()
            .map(|r| {
                let euro_cents = (u128::from(r.value.price) * u128::from(EURO_PER_DOLLAR_MILLI) / 1_000) as u64;
                Record::new(
                    r.ts,
                    Bid {
                        price: euro_cents,
                        ..r.value
                    },
                )
            })
            .collect();
        let verdict = compare_multisets("exactly-once", expected, committed.clone());
        outcome::<Bid, Bid>(&committed, &[], verdict)
    }
}
