//! `nexmark-q2`: selection. `SELECT auction, price FROM bid WHERE MOD(auction, skip) = 0`,
//! with Beam's `auctionSkip` parameter scaled from 123 to [`AUCTION_SKIP`] for runs of a few
//! dozen auctions.

use eddy_engine::{JobGraph, Pipeline, Record};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};
use serde::{Deserialize, Serialize};

use super::{bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{compare_multisets, outcome};

pub const AUCTION_SKIP: u64 = 7;

pub struct Q2 {
    pub source: Source,
}

pub static NEXMARK_Q2: Q2 = Q2 { source: SOURCE };

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuctionPrice {
    pub auction: u64,
    pub price: u64,
}

impl Workload for Q2 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q2"
    }

    fn description(&self) -> &'static str {
        "Nexmark q2, selection: auction and price of the bids on every 7th auction"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        let selected = bids(events)
            .filter(|bid: &Bid| bid.auction.is_multiple_of(AUCTION_SKIP))
            .map(|bid: Bid| AuctionPrice {
                auction: bid.auction,
                price: bid.price,
            });
        outputs.append_as("selected", selected, |r: &Record<AuctionPrice>| line(&r.value));
        pipeline.build().expect("the nexmark-q2 pipeline is valid")
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<AuctionPrice>("selected").records();
        let expected = input_bids(input)
            .into_iter()
            .filter(|r| r.value.auction.is_multiple_of(AUCTION_SKIP))
            .map(|r| {
                Record::new(
                    r.ts,
                    AuctionPrice {
                        auction: r.value.auction,
                        price: r.value.price,
                    },
                )
            })
            .collect();
        let verdict = compare_multisets("exactly-once", expected, committed.clone());
        outcome::<AuctionPrice, AuctionPrice>(&committed, &[], verdict)
    }
}
