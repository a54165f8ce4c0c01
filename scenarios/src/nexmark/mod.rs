//! Nexmark: the auction-site benchmark of stream processors (persons open auctions, others
//! bid on them), one scenario per query. Events come from the `nexmark` crate's generator,
//! configured explicitly from the seed (its defaults read the wall clock and, through
//! `EventGenerator::default()`, yield only persons), and are mapped to [`Event`]: the fields
//! the queries use, with the event time in the record's `ts` (ms).
//!
//! Query definitions follow the Nexmark suite as Apache Flink and RisingWave run it; window
//! sizes and the generator settings scaled to a thousand events are in docs/scenarios.md.

/// The [`Workload`](eddy_sim::Workload) methods every query shares: its source's bound, the
/// default event count and the seeded generator (a query struct has a `source: Source`).
macro_rules! source_methods {
    () => {
        fn out_of_orderness_ms(&self) -> i64 {
            self.source.out_of_orderness_ms
        }

        fn default_events(&self) -> usize {
            super::DEFAULT_EVENTS
        }

        fn generate(&self, events: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<eddy_engine::Record<super::Event>> {
            super::generate(&self.source, events, rng)
        }
    };
}
use source_methods;

pub mod q0;
pub mod q1;
pub mod q11;
pub mod q18;
pub mod q2;
pub mod q3;
pub mod q4;
pub mod q5;
pub mod q7;
pub mod q8;
pub mod q9;

use eddy_engine::{Record, Stream, WatermarkStrategy};
use nexmark::config::{NexmarkConfig, RateShape};
use nexmark::EventGenerator;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A Nexmark event: a new person, a new auction, or a bid. A person (2% of events, three
/// strings) is boxed so that the enum, which every source copies per record, stays 56 bytes
/// instead of 88; the JSON shape is the same.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Person(Box<Person>),
    Auction(Auction),
    Bid(Bid),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Person {
    pub id: u64,
    pub name: String,
    pub city: String,
    /// A two-letter US state, lower case (`or`, `id`, `ca`, ...).
    pub state: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Auction {
    pub id: u64,
    /// The person who sells the item.
    pub seller: u64,
    pub category: u64,
    /// Cents.
    pub initial_bid: u64,
    /// Cents.
    pub reserve: u64,
    /// Event time (ms) at which the auction closes.
    pub expires: i64,
}

/// A bid: plain numbers, so that bid pipelines copy it without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bid {
    pub auction: u64,
    pub bidder: u64,
    /// Cents.
    pub price: u64,
}

impl Event {
    pub fn bid(&self) -> Option<Bid> {
        match self {
            Event::Bid(bid) => Some(*bid),
            _ => None,
        }
    }
}

/// The generator's parameters that a scenario sets (the rest is in [`config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// Events per second of event time: each seed draws its rate from this range.
    pub rate_min: usize,
    pub rate_max: usize,
    /// The pipeline's out-of-orderness bound `B` (ms); input faults are relative to it.
    pub out_of_orderness_ms: i64,
}

/// What every Nexmark scenario uses unless it says otherwise.
pub const SOURCE: Source = Source {
    rate_min: 8,
    rate_max: 16,
    out_of_orderness_ms: 1_000,
};

/// Default events per run: about 20 persons, 60 auctions and 920 bids.
pub const DEFAULT_EVENTS: usize = 1_000;

/// How often (ms of processing time) sources emit watermarks.
pub const WATERMARK_INTERVAL_MS: i64 = 50;

/// The Nexmark configuration of one seed: base time, first event id and rate come from
/// `rng`, never from the clock.
pub fn config(source: &Source, rng: &mut ChaCha8Rng) -> NexmarkConfig {
    let rate = rng.gen_range(source.rate_min..=source.rate_max);
    // Whole blocks of 100 persons (50 events per person): the run starts with a "hot"
    // seller and bidder, as a run from event 0 does.
    let first_event_id = 5_000 * rng.gen_range(0..100_000);
    // Somewhere in 2020-2029 (ms since the epoch).
    let base_time = rng.gen_range(1_577_836_800_000..1_893_456_000_000);
    NexmarkConfig {
        base_time,
        first_event_id,
        first_event_number: 0,
        first_rate: rate,
        next_rate: rate,
        rate_shape: RateShape::Square,
        num_event_generators: 1,
        out_of_order_group_size: 1,
        // Scaled to a thousand events (the defaults assume millions): sellers and bidders
        // are mostly among the last few persons, bids among the last few auctions, so
        // that joins on persons find them, and half the auctions (not three in four) are
        // the one hot seller's.
        active_people: 8,
        hot_seller_ratio: 2,
        person_id_lead: 2,
        in_flight_auctions: 20,
        auction_id_lead: 2,
        // `..Default::default()` reads the wall clock for `base_time`, overridden above.
        ..NexmarkConfig::default()
    }
}

/// `events` events in timestamp order, from the seed's input stream.
pub fn generate(source: &Source, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Event>> {
    EventGenerator::new(config(source, rng))
        .take(events)
        .map(|event| {
            let ts = event.timestamp() as i64;
            let value = match event {
                nexmark::event::Event::Person(p) => Event::Person(Box::new(Person {
                    id: p.id as u64,
                    name: p.name,
                    city: p.city,
                    state: p.state,
                })),
                nexmark::event::Event::Auction(a) => Event::Auction(Auction {
                    id: a.id as u64,
                    seller: a.seller as u64,
                    category: a.category as u64,
                    initial_bid: a.initial_bid as u64,
                    reserve: a.reserve as u64,
                    expires: a.expires as i64,
                }),
                nexmark::event::Event::Bid(b) => Event::Bid(Bid {
                    auction: b.auction as u64,
                    bidder: b.bidder as u64,
                    price: b.price as u64,
                }),
            };
            Record::new(ts, value)
        })
        .collect()
}

/// The watermark strategy of a Nexmark source.
pub fn watermarks(source: &Source) -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(source.out_of_orderness_ms).with_interval(WATERMARK_INTERVAL_MS)
}

/// The bids of an event stream.
pub fn bids(events: Stream<Event>) -> Stream<Bid> {
    events.filter_map(Event::bid)
}

/// The bids of an input log (for references).
pub fn input_bids(log: &[Record<Event>]) -> Vec<Record<Bid>> {
    log.iter()
        .filter_map(|r| r.value.bid().map(|bid| Record::new(r.ts, bid)))
        .collect()
}

/// Bids as events again (to compare late bids with the input log).
pub fn as_events(bids: &[Record<Bid>]) -> Vec<Record<Event>> {
    bids.iter().map(|r| Record::new(r.ts, Event::Bid(r.value))).collect()
}

/// One JSON line.
pub fn line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("results serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_seed_gives_the_same_events_with_all_three_kinds_in_timestamp_order() {
        let events = |seed| generate(&SOURCE, 500, &mut ChaCha8Rng::seed_from_u64(seed));
        let a = events(7);
        assert_eq!(a, events(7));
        assert_ne!(a, events(8));
        assert!(a.windows(2).all(|w| w[0].ts <= w[1].ts));
        let count = |f: fn(&Event) -> bool| a.iter().filter(|r| f(&r.value)).count();
        assert_eq!(count(|e| matches!(e, Event::Person(_))), 10);
        assert_eq!(count(|e| matches!(e, Event::Auction(_))), 30);
        assert_eq!(count(|e| matches!(e, Event::Bid(_))), 460);
        // The rate is within the source's range: 500 events span 500/16 to 500/8 seconds.
        let span = a.last().unwrap().ts - a[0].ts;
        assert!((31_000..=62_500).contains(&span), "{span}");
    }
}
