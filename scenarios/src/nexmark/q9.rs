//! `nexmark-q9`: the winning bid of every auction, an updating result. Per auction, the
//! highest bid placed within the auction's lifetime (`auction.ts <= bid.ts < expires`; ties
//! by the earlier bid, then the smaller bidder) as a changelog: `+I` for the first valid
//! bid, `-U/+U` each time a higher one arrives. Bids may come before their auction. Records
//! at or below the watermark go to the late output; state goes once an auction closes.
//! The winners are then split by whether their bidder has registered as a person: a semi
//! join with the persons (`registered-winners`) and an anti join (`unregistered-winners`).

use std::collections::BTreeSet;

use eddy_engine::{
    JobGraph, KeyedProcessFunction, ListState, Pipeline, ProcessContext, Record, Row, RowKind, SemiJoinKind, Stream,
    TimeDomain, ValueState, WithLate,
};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Workload};
use serde::{Deserialize, Serialize};

use super::{line, watermarks, Auction, Bid, Event, Source, SOURCE};
use crate::check::{accepted, compare_changelog, outcome};

/// The winners split by their bidder: registered as a person (a semi join), or not (anti).
const REGISTRATION: [(&str, SemiJoinKind); 2] = [
    ("registered-winners", SemiJoinKind::Semi),
    ("unregistered-winners", SemiJoinKind::Anti),
];

/// How long a bid waits for its auction before it is dropped (its auction was late).
pub const ORPHAN_MS: i64 = 60_000;

pub struct Q9 {
    pub source: Source,
}

pub static NEXMARK_Q9: Q9 = Q9 { source: SOURCE };

/// An auction's winning bid so far.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Winner {
    pub auction: u64,
    pub category: u64,
    pub bidder: u64,
    /// Cents.
    pub price: u64,
    /// When the bid was placed.
    pub bid_ts: i64,
}

/// Per auction: the auction once seen, the bids that came before it, the winner so far.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuctionState {
    auction: ValueState<Record<Auction>>,
    pending: ListState<Record<Bid>>,
    winner: ValueState<(i64, Bid)>,
}

/// The winning-bid function, keyed by auction id.
#[derive(Clone)]
pub struct WinningBid;

/// Which of two valid bids wins: the higher price, then the earlier bid, then the smaller
/// bidder.
fn beats(a: &Record<Bid>, b: &Record<Bid>) -> bool {
    (a.value.price, -a.ts, std::cmp::Reverse(a.value.bidder))
        > (b.value.price, -b.ts, std::cmp::Reverse(b.value.bidder))
}

fn winner(auction: &Record<Auction>, bid: &Record<Bid>) -> Winner {
    Winner {
        auction: auction.value.id,
        category: auction.value.category,
        bidder: bid.value.bidder,
        price: bid.value.price,
        bid_ts: bid.ts,
    }
}

impl KeyedProcessFunction<u64, Event> for WinningBid {
    type State = AuctionState;
    type Out = Row<Winner>;

    fn process_element(&mut self, record: Record<Event>, ctx: &mut ProcessContext<'_, u64, AuctionState, Row<Winner>>) {
        let candidates: Vec<Record<Bid>> = match record.value {
            Event::Auction(auction) => {
                ctx.register_timer(TimeDomain::EventTime, auction.expires);
                ctx.state().auction.update(Record::new(record.ts, auction));
                ctx.state().pending.take()
            }
            Event::Bid(bid) if ctx.state().auction.value().is_some() => vec![Record::new(record.ts, bid)],
            Event::Bid(bid) => {
                // Its auction has not come yet: wait for it, a while.
                ctx.register_timer(TimeDomain::EventTime, record.ts.saturating_add(ORPHAN_MS));
                ctx.state().pending.add(Record::new(record.ts, bid));
                return;
            }
            Event::Person(_) => return,
        };
        let auction = ctx.state().auction.value().cloned().expect("the auction is known");
        let old = ctx.state().winner.value().map(|(ts, bid)| Record::new(*ts, *bid));
        let mut best = old.clone();
        for bid in candidates {
            let valid = auction.ts <= bid.ts && bid.ts < auction.value.expires;
            if valid && best.as_ref().is_none_or(|best| beats(&bid, best)) {
                best = Some(bid);
            }
        }
        if best == old {
            return;
        }
        let new = best.expect("a better bid");
        match old {
            None => ctx.emit(Row::insert(winner(&auction, &new))),
            Some(old) => {
                ctx.emit(Row::new(RowKind::UpdateBefore, winner(&auction, &old)));
                ctx.emit(Row::new(RowKind::UpdateAfter, winner(&auction, &new)));
            }
        }
        ctx.state().winner.update((new.ts, new.value));
    }

    fn on_timer(
        &mut self,
        now: i64,
        _domain: TimeDomain,
        ctx: &mut ProcessContext<'_, u64, AuctionState, Row<Winner>>,
    ) {
        // A closed auction takes no more bids: its state goes (the winner stays committed).
        if ctx.state().auction.value().is_some_and(|a| a.value.expires <= now) {
            *ctx.state() = AuctionState::default();
            return;
        }
        let pending: Vec<Record<Bid>> = ctx.state().pending.take();
        for bid in pending.into_iter().filter(|b| b.ts.saturating_add(ORPHAN_MS) > now) {
            ctx.state().pending.add(bid);
        }
    }
}

/// The auctions and bids of `events` by auction, through the winning-bid function.
pub fn winners(events: Stream<Event>) -> WithLate<Row<Winner>, Event> {
    events
        .filter(|e: &Event| !matches!(e, Event::Person(_)))
        .key_by(|e: &Event| match e {
            Event::Auction(a) => a.id,
            Event::Bid(b) => b.auction,
            Event::Person(p) => p.id,
        })
        .process_on_time(WinningBid)
}

/// The reference: per accepted auction, the best accepted bid within its lifetime. An
/// auction is one row however often its event came (a duplicated log entry is the same
/// auction, and the state keeps one per id).
pub fn reference_winners(accepted: &[Record<Event>]) -> Vec<Winner> {
    let mut winners = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for a in accepted {
        let Event::Auction(auction) = &a.value else { continue };
        if !seen.insert(auction.id) {
            continue;
        }
        let mut best: Option<Record<Bid>> = None;
        for b in accepted {
            let Event::Bid(bid) = &b.value else { continue };
            if bid.auction != auction.id || b.ts < a.ts || b.ts >= auction.expires {
                continue;
            }
            let candidate = Record::new(b.ts, *bid);
            let better = match &best {
                None => true,
                Some(best) => {
                    let key = |r: &Record<Bid>| (r.value.price, -r.ts, std::cmp::Reverse(r.value.bidder));
                    key(&candidate) > key(best)
                }
            };
            if better {
                best = Some(candidate);
            }
        }
        if let Some(b) = best {
            winners.push(Winner {
                auction: auction.id,
                category: auction.category,
                bidder: b.value.bidder,
                price: b.value.price,
                bid_ts: b.ts,
            });
        }
    }
    winners
}

impl Workload for Q9 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q9"
    }

    fn description(&self) -> &'static str {
        "Nexmark q9, winning bids: the highest bid within each auction's lifetime, an updating result (+I, -U/+U), split by a semi and an anti join with the persons"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        let persons = events
            .clone()
            .filter_map(|e: &Event| match e {
                Event::Person(p) => Some(p.id),
                Event::Auction(_) | Event::Bid(_) => None,
            })
            .changelog();
        let won = winners(events);
        // A new winning bid can change the bidder, so a winner's `-U` and `+U` may reach
        // different keys of the joins: each is a delete and an insert there.
        let by_bidder = won.output.clone().map(|w: Row<Winner>| {
            let kind = if w.kind.adds() {
                RowKind::Insert
            } else {
                RowKind::Delete
            };
            Row::new(kind, w.row)
        });
        for (name, kind) in REGISTRATION {
            let split = by_bidder
                .clone()
                .key_by(|w: &Row<Winner>| w.row.bidder)
                .semi_join_changelog(persons.clone(), |person: &u64| *person, kind);
            outputs.changelog_as(name, split, |w: &Winner| w.auction, line);
        }
        // Lines are the materialised rows, as JSON.
        outputs.changelog_as("winners", won.output, |w: &Winner| w.auction, line);
        outputs.append("late", won.late);
        pipeline.build().expect("the nexmark-q9 pipeline is valid")
    }

    /// The winners' changelog and its two splits by registration; the late auctions and bids
    /// are checked by their own rule.
    fn judged_outputs(&self, _input: &[Record<Event>], outputs: &Outputs) -> Vec<OutputTable> {
        ["winners", REGISTRATION[0].0, REGISTRATION[1].0]
            .into_iter()
            .map(|name| OutputTable::committed_changelog(name, &outputs.log::<Row<Winner>>(name)))
            .collect()
    }

    /// The semi and anti joins keep, each, a key per bidder that holds a winner and per person
    /// (no TTL, as Flink SQL's joins without one): at most every bidder and person id.
    fn live_state_entries(&self, input: &[Record<Event>], _outputs: &Outputs) -> usize {
        let ids: BTreeSet<u64> = input
            .iter()
            .filter_map(|r| match &r.value {
                Event::Person(p) => Some(p.id),
                Event::Bid(b) => Some(b.bidder),
                Event::Auction(_) => None,
            })
            .collect();
        REGISTRATION.len() * ids.len()
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let winners = outputs.log::<Row<Winner>>("winners");
        let committed = winners.records();
        let late = outputs.log::<Event>("late").records();
        let verdict = (|| {
            let accepted = accepted(
                input,
                input,
                &late,
                self.partitions(),
                self.source.out_of_orderness_ms,
                |r| r.ts,
            )?;
            let expected = reference_winners(&accepted);
            compare_changelog("winners", &winners, expected.clone())?;
            // Persons are never late here (only the winning-bid function judges lateness).
            let persons: BTreeSet<u64> = input
                .iter()
                .filter_map(|r| match &r.value {
                    Event::Person(p) => Some(p.id),
                    _ => None,
                })
                .collect();
            for (name, kind) in REGISTRATION {
                let registered = kind == SemiJoinKind::Semi;
                let split = expected
                    .iter()
                    .filter(|w| persons.contains(&w.bidder) == registered)
                    .cloned();
                compare_changelog(name, &outputs.log::<Row<Winner>>(name), split.collect())?;
            }
            Ok(())
        })();
        outcome(&committed, &late, verdict)
    }
}
