//! `ratings`: changelogs full of ties, so that a campaign takes retraction bookkeeping through
//! crashes and restores where it breaks: equal values, equal sort keys, equal timestamps.
//! Users rate items 1 to 3 stars (a handful of users and items, so that the same rating
//! comes again and again); items are listed on shelves.
//!
//! - each user's best rating per item (a changelog aggregation, `-U/+U` as it rises);
//! - per item, the lowest and the count of those bests, materialised by `sink_table` (a
//!   retraction must name the row the table holds);
//! - per item, the two best raters (Top-N with ties on stars, broken by the row), in upsert
//!   form (`to_upsert`) through `sink_upsert`;
//! - ratings joined with the listings of their item within a TTL (`join_changelog_with_ttl`,
//!   left outer: a rating with no listing yet is `(rating, None)`, retracted when one comes),
//!   counted per shelf, with the join's late rows as a side output.
//!
//! Judged by the differential oracle (the same pipeline's batch run): every output's final
//! table depends only on which records were accepted, not on their order (a maximum, a
//! minimum, counts, Top-N over a total order, and a join whose matches depend only on the
//! rows' timestamps).

use std::cmp::Reverse;
use std::sync::LazyLock;

use eddy_engine::{CountRows, JoinKind, MaxRows, MinRows, Pipeline, Record, Row, Stream, WatermarkStrategy};
use eddy_sim::{Differential, Outputs};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rating {
    pub user: u8,
    pub item: u8,
    pub stars: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Listing {
    pub item: u8,
    pub shelf: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Rate(Rating),
    List(Listing),
}

/// How long a rating matches listings after it, and a listing ratings after it.
pub const RATING_TTL_MS: i64 = 3_000;
pub const LISTING_TTL_MS: i64 = 10_000;

pub static RATINGS: LazyLock<Differential<Event>> = LazyLock::new(|| {
    Differential::new("ratings", generate, build)
        .description(
            "ratings with ties: best per user (normalised), min and count per item (sink_table), top raters (to_upsert, sink_upsert), an inner join with the listings, a TTL join",
        )
        .watermarks(WatermarkStrategy::bounded_out_of_orderness(1_000).with_interval(200))
        .partitions(3)
        .events(1_000)
});

/// Ratings from 5 users of 4 items, 1 to 3 stars; one event in ten a listing of an item on
/// one of 3 shelves. A third of the events share the previous one's timestamp.
fn generate(rng: &mut ChaCha8Rng, events: usize) -> Vec<Record<Event>> {
    let mut ts: i64 = rng.gen_range(-20_000..20_000);
    (0..events)
        .map(|_| {
            if !rng.gen_bool(0.33) {
                ts += rng.gen_range(1..150);
            }
            let item = rng.gen_range(0..4);
            let event = if rng.gen_bool(0.1) {
                Event::List(Listing {
                    item,
                    shelf: rng.gen_range(0..3),
                })
            } else {
                Event::Rate(Rating {
                    user: rng.gen_range(0..5),
                    item,
                    stars: rng.gen_range(1..=3),
                })
            };
            Record::new(ts, event)
        })
        .collect()
}

/// A user's best stars for an item.
type Best = ((u8, u8), i64);

fn build(_pipeline: &Pipeline, events: Stream<Event>, outputs: &mut Outputs) {
    let ratings = events.clone().filter_map(|e: &Event| match e {
        Event::Rate(r) => Some(r.clone()),
        Event::List(_) => None,
    });
    let listings = events.filter_map(|e: &Event| match e {
        Event::List(l) => Some(l.clone()),
        Event::Rate(_) => None,
    });
    let best = ratings
        .clone()
        .changelog()
        .key_by(|r: &Row<Rating>| (r.row.user, r.row.item))
        .aggregate_changelog(MaxRows(|r: &Rating| i64::from(r.stars)))
        // Already retract form without no-op updates: normalising changes nothing, and runs
        // the operator under the campaign's faults.
        .key_by(|r: &Row<Best>| r.row.0)
        .normalize();
    let item_of_best = |r: &Row<Best>| r.row.0 .1;
    let lowest = best
        .clone()
        .key_by(item_of_best)
        .aggregate_changelog(MinRows(|b: &Best| b.1));
    outputs.table("lowest-best", lowest.sink_table(|row: &(u8, i64)| row.0));
    // Each listed item's best ratings per shelf: an inner join (no TTL) with the listings.
    let listed = best
        .clone()
        .key_by(item_of_best)
        .join_changelog(listings.clone().changelog(), |l: &Listing| l.item, JoinKind::Inner)
        .key_by(|r: &Row<(Best, Option<Listing>)>| r.row.1.as_ref().map(|l| l.shelf))
        .aggregate_changelog(CountRows);
    outputs.changelog("best-per-shelf", listed, |row: &(Option<u8>, u64)| row.0);
    let raters = best.clone().key_by(item_of_best).aggregate_changelog(CountRows);
    outputs.table("raters", raters.sink_table(|row: &(u8, u64)| row.0));
    let top = best.key_by(item_of_best).top_n(2, |b: &Best| Reverse(b.1)).to_upsert();
    outputs.table("top-raters", top.sink_upsert(|row: &(u8, u32, Best)| (row.0, row.1)));
    let rated = ratings
        .changelog()
        .key_by(|r: &Row<Rating>| r.row.item)
        .join_changelog_with_ttl(
            listings.changelog(),
            |l: &Listing| l.item,
            JoinKind::LeftOuter,
            RATING_TTL_MS,
            LISTING_TTL_MS,
        );
    let per_shelf = rated
        .output
        .key_by(|r: &Row<(Rating, Option<Listing>)>| r.row.1.as_ref().map(|l| l.shelf))
        .aggregate_changelog(CountRows);
    outputs.changelog("ratings-per-shelf", per_shelf, |row: &(Option<u8>, u64)| row.0);
    outputs.append("join-late", rated.late);
}
