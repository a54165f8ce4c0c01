//! `nexmark-q7`: highest bid. Per tumbling window of [`WINDOW_MS`], the bid(s) with the
//! highest price (all of them on a tie), as Flink's query joining bids with `MAX(price)`
//! per window.
//!
//! Two phases: bids keyed by auction into tumbling windows keeping each auction's highest
//! bids (parallel), then those keyed by their window into the same tumbling windows,
//! keeping the overall highest. A phase-one result is stamped with its window's end − 1, so
//! it falls into the same window again and is never late. No allowed lateness: an updated
//! maximum would need the earlier one retracted.

use eddy_engine::{AggregateFunction, CommitLog, JobGraph, Log, Pipeline, Record, Window, WindowAssigner, Windowed};
use eddy_sim::{Checked, OutputTable, Recorded, Workload};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use super::{as_events, bids, input_bids, line, watermarks, Bid, Event, Source, SOURCE};
use crate::check::{accepted, compare_tables, outcome, table_once, values};

pub const WINDOW_MS: i64 = 10_000;

pub struct Q7 {
    pub source: Source,
}

pub static NEXMARK_Q7: Q7 = Q7 { source: SOURCE };

/// The bids with the highest price seen (in bid order once emitted). A tie is rare, so the
/// one bid is kept inline: no heap allocation per (auction, window) pane, nor when a result
/// is cloned out of its pane.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HighestBids {
    pub price: u64,
    pub bids: SmallVec<[Bid; 1]>,
}

impl HighestBids {
    /// A copy (bids are `Copy`: one slice copy, where the derived `Clone` goes bid by bid).
    fn copied(&self) -> HighestBids {
        HighestBids {
            price: self.price,
            bids: SmallVec::from_slice(&self.bids),
        }
    }

    fn offer(&mut self, bid: &Bid) {
        if bid.price > self.price || self.bids.is_empty() {
            self.price = bid.price;
            self.bids.clear();
        }
        if bid.price == self.price {
            self.bids.push(*bid);
        }
    }
}

/// Phase one: the highest bids of one auction in a window.
#[derive(Clone, Copy, Debug)]
pub struct MaxBid;

impl AggregateFunction<Bid> for MaxBid {
    type Acc = HighestBids;
    type Out = HighestBids;
    fn create_accumulator(&self) -> HighestBids {
        HighestBids::default()
    }
    fn add(&self, acc: &mut HighestBids, bid: &Bid) {
        acc.offer(bid);
    }
    fn merge(&self, acc: &mut HighestBids, other: HighestBids) {
        for bid in &other.bids {
            acc.offer(bid);
        }
    }
    fn result(&self, acc: &HighestBids) -> HighestBids {
        acc.copied()
    }
}

/// Phase two: the highest of the per-auction highest bids of a window.
#[derive(Clone, Copy, Debug)]
pub struct MaxOfMax;

impl AggregateFunction<Windowed<u64, HighestBids>> for MaxOfMax {
    type Acc = HighestBids;
    type Out = HighestBids;
    fn create_accumulator(&self) -> HighestBids {
        HighestBids::default()
    }
    fn add(&self, acc: &mut HighestBids, highest: &Windowed<u64, HighestBids>) {
        for bid in &highest.value.bids {
            acc.offer(bid);
        }
    }
    fn merge(&self, acc: &mut HighestBids, other: HighestBids) {
        for bid in &other.bids {
            acc.offer(bid);
        }
    }
    fn result(&self, acc: &HighestBids) -> HighestBids {
        let mut highest = acc.copied();
        highest.bids.sort_unstable();
        highest
    }
}

pub struct Sinks {
    pub highest: CommitLog<Windowed<Window, HighestBids>>,
    pub late: CommitLog<Bid>,
}

#[derive(Serialize)]
struct HighestLine {
    window_start: i64,
    window_end: i64,
    auction: u64,
    bidder: u64,
    price: u64,
}

impl Workload for Q7 {
    type Event = Event;
    type Sinks = Sinks;

    fn name(&self) -> &'static str {
        "nexmark-q7"
    }

    fn description(&self) -> &'static str {
        "Nexmark q7, highest bid: the bid(s) with the highest price per 10 s tumbling window"
    }

    super::source_methods!();

    fn build(&self, log: Log<Event>) -> (JobGraph, Sinks) {
        let sinks = Sinks {
            highest: CommitLog::new(),
            late: CommitLog::new(),
        };
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = pipeline.source("events", log, watermarks(&self.source));
        let per_auction = bids(events)
            .key_by(|bid: &Bid| bid.auction)
            .window(WindowAssigner::tumbling(WINDOW_MS))
            .aggregate(MaxBid);
        let highest = per_auction
            .output
            .key_by(|highest: &Windowed<u64, HighestBids>| highest.window)
            .window(WindowAssigner::tumbling(WINDOW_MS))
            .aggregate(MaxOfMax);
        highest.output.sink_transactional(sinks.highest.clone());
        per_auction.late.sink_transactional(sinks.late.clone());
        (pipeline.build().expect("the nexmark-q7 pipeline is valid"), sinks)
    }

    fn outputs(&self, _input: &[Record<Self::Event>], sinks: &Sinks) -> Vec<OutputTable> {
        vec![OutputTable::upsert("highest", values(&sinks.highest), |w| {
            (w.key, w.window)
        })]
    }

    fn output_lines(&self, sinks: &Sinks) -> Vec<String> {
        let mut highest = sinks.highest.records();
        highest.sort_by_key(|r| r.value.key);
        highest
            .iter()
            .flat_map(|r| {
                let w = &r.value;
                w.value.bids.iter().map(|bid| {
                    line(&HighestLine {
                        window_start: w.key.start,
                        window_end: w.key.end,
                        auction: bid.auction,
                        bidder: bid.bidder,
                        price: bid.price,
                    })
                })
            })
            .collect()
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, sinks: &Sinks) -> Checked {
        let committed = sinks.highest.records();
        let late = sinks.late.records();
        let verdict = (|| {
            let accepted = accepted(
                input,
                &as_events(&input_bids(input)),
                &as_events(&late),
                self.partitions(),
                self.source.out_of_orderness_ms,
                |r| r.ts.div_euclid(WINDOW_MS) * WINDOW_MS + WINDOW_MS - 1,
            )?;
            // Reference: per window, the bids whose price is the window's maximum.
            let mut by_window: std::collections::BTreeMap<(i64, i64), Vec<Bid>> = Default::default();
            for r in &accepted {
                let Event::Bid(bid) = &r.value else { continue };
                let start = r.ts - r.ts.rem_euclid(WINDOW_MS);
                by_window.entry((start, start + WINDOW_MS)).or_default().push(*bid);
            }
            let expected: std::collections::BTreeMap<(i64, i64), (u64, Vec<Bid>)> = by_window
                .into_iter()
                .map(|(window, bids)| {
                    let max = bids.iter().map(|b| b.price).max().expect("a window has bids");
                    let mut top: Vec<Bid> = bids.into_iter().filter(|b| b.price == max).collect();
                    top.sort();
                    (window, (max, top))
                })
                .collect();
            let actual = table_once(
                "exactly-once",
                committed.iter().map(|r| {
                    let w = &r.value;
                    ((w.key.start, w.key.end), (w.value.price, w.value.bids.to_vec()))
                }),
            )?;
            compare_tables("exactly-once", &expected, &actual)
        })();
        outcome(&committed, &late, verdict)
    }
}
