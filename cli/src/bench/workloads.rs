//! The benchmarked workloads: each one's input, engine pipeline and direct computation
//! ([`Workload`]), and the tests that the hand-written loops agree with the engine.

use eddy::scenarios::nexmark::{self, q5, q7};
use eddy::scenarios::{dedup, enrich, pageviews, sessions};
use eddy::{Count, Data, JobGraph, Keep, Log, Pipeline, Record, Window, WindowAssigner, Windowed};
use rand_chacha::ChaCha8Rng;

use super::checksum::Checksum;
use super::direct::{self, result_hash, Direct};
#[cfg(feature = "bench")]
use super::peer;
use super::settings::{watermarks, WATERMARK_EVERY};
use super::timing::Variant;

/// A benchmarked workload: its input, its engine pipeline, its direct computation.
pub trait Workload {
    type Event: Data;
    type Direct: Direct<Event = Self::Event>;
    fn name(&self) -> &'static str;
    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>>;
    /// The source's out-of-orderness bound.
    fn bound_ms(&self) -> i64;
    /// The pipeline at parallelism 1, its results folded into `checksum`.
    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph;
    /// Shortcut variants ([`Variant::shortcut`]).
    fn shortcuts<'a>(&'a self, _input: &'a [Record<Self::Event>]) -> Vec<Variant<'a>> {
        Vec::new()
    }
}

pub struct PageViews;

impl Workload for PageViews {
    type Event = pageviews::PageView;
    type Direct = direct::PageViewCounts;

    fn name(&self) -> &'static str {
        "pageviews"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&pageviews::PageViews, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        pageviews::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let counted = pipeline
            .source("views", log, watermarks(self.bound_ms()))
            .key_by(|v: &pageviews::PageView| v.page)
            .window(WindowAssigner::tumbling(pageviews::WINDOW_MS))
            .allowed_lateness(pageviews::ALLOWED_LATENESS_MS)
            .aggregate(Count);
        checksum.attach(counted.output, |r| {
            result_hash(&[u64::from(r.value.key), r.value.window.start as u64, r.value.value])
        });
        pipeline.build().expect("the pageviews bench pipeline is valid")
    }
}

pub struct Dedup;

impl Workload for Dedup {
    type Event = dedup::Click;
    type Direct = direct::FirstClicks;

    fn name(&self) -> &'static str {
        "dedup"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&dedup::Dedup, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        dedup::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let kept = pipeline
            .source("clicks", log, watermarks(self.bound_ms()))
            .filter(|c: &dedup::Click| !c.bot)
            .key_by(|c: &dedup::Click| c.event_id)
            .deduplicate(Keep::First, dedup::TTL_MS);
        checksum.attach(kept.output, |r| {
            result_hash(&[u64::from(r.value.event_id), r.ts as u64, u64::from(r.value.user)])
        });
        pipeline.build().expect("the dedup bench pipeline is valid")
    }

    fn shortcuts<'a>(&'a self, input: &'a [Record<Self::Event>]) -> Vec<Variant<'a>> {
        let bound_ms = self.bound_ms();
        let mut variants = vec![Variant::shortcut(
            "hand-written loop (at once, in-order only)",
            move || direct::hand_written::<direct::FirstClicksAtOnce>(input, bound_ms, WATERMARK_EVERY),
        )];
        #[cfg(feature = "bench")]
        variants.push(Variant::shortcut("timely (at once, in-order only)", move || {
            peer::timely::<direct::FirstClicksAtOnce>(input, bound_ms, WATERMARK_EVERY)
        }));
        variants
    }
}

/// `sessions-clicks`: clicks per user session (the scenario's gap and allowed lateness).
pub struct SessionsClicks;

impl Workload for SessionsClicks {
    type Event = sessions::UserClick;
    type Direct = direct::SessionClicks;

    fn name(&self) -> &'static str {
        "sessions-clicks"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&sessions::SessionsClicks, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        sessions::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let sessions = pipeline
            .source("clicks", log, watermarks(self.bound_ms()))
            .key_by(|c: &sessions::UserClick| c.user)
            .window(WindowAssigner::session(sessions::GAP_MS))
            .allowed_lateness(sessions::ALLOWED_LATENESS_MS)
            .aggregate(Count);
        checksum.attach(sessions.output, |r| {
            let session = &r.value;
            result_hash(&[
                u64::from(session.key),
                session.window.start as u64,
                session.window.end as u64,
                session.value,
            ])
        });
        pipeline.build().expect("the sessions-clicks bench pipeline is valid")
    }
}

/// `enrich`: the scenario's log split into clicks and profile changes, each click joined in
/// event time with the profile valid at its timestamp.
pub struct Enrich;

impl Workload for Enrich {
    type Event = enrich::EnrichEvent;
    type Direct = direct::EnrichedClicks;

    fn name(&self) -> &'static str {
        "enrich"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&enrich::Enrich, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        enrich::OUT_OF_ORDERNESS_MS
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        // Both read the source's log in place: each copies only the events it keeps.
        let clicks = events.clone().filter_map(|e: &enrich::EnrichEvent| match e {
            enrich::EnrichEvent::Click(click) => Some(click.clone()),
            enrich::EnrichEvent::Profile(_) => None,
        });
        let changes = events.filter_map(|e: &enrich::EnrichEvent| match e {
            enrich::EnrichEvent::Profile(change) => Some(change.clone().into_change()),
            enrich::EnrichEvent::Click(_) => None,
        });
        let joined = clicks.key_by(|c: &enrich::Click| c.user).temporal_join(changes);
        checksum.attach(joined.output, |r| {
            let (click, profile) = &r.value;
            direct::enriched_hash(click, r.ts, profile.as_ref())
        });
        pipeline.build().expect("the enrich bench pipeline is valid")
    }
}

/// `nexmark-q5`: sliding bid counts per auction, then the top auction(s) per window; the
/// scenario's aggregate functions.
pub struct HotItems;

impl Workload for HotItems {
    type Event = nexmark::Event;
    type Direct = direct::HotItems;

    fn name(&self) -> &'static str {
        "nexmark-q5"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&q5::NEXMARK_Q5, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        nexmark::SOURCE.out_of_orderness_ms
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        let counts = nexmark::bids(events)
            .key_by(|bid: &nexmark::Bid| bid.auction)
            .window(WindowAssigner::sliding(q5::WINDOW_MS, q5::SLIDE_MS))
            .aggregate(Count);
        let hot = counts
            .output
            .key_by(|count: &Windowed<u64, u64>| count.window)
            .window(WindowAssigner::tumbling(q5::SLIDE_MS))
            .aggregate(q5::MaxCount);
        checksum.attach(hot.output, |r| {
            let hot = &r.value;
            hot.value.auctions.iter().fold(0u64, |sum, &auction| {
                sum.wrapping_add(result_hash(&[hot.key.start as u64, auction, hot.value.bids]))
            })
        });
        pipeline.build().expect("the nexmark-q5 bench pipeline is valid")
    }
}

/// `nexmark-q7`: the highest bid(s) per tumbling window, in the scenario's two phases.
pub struct HighestBids;

impl Workload for HighestBids {
    type Event = nexmark::Event;
    type Direct = direct::HighestBids;

    fn name(&self) -> &'static str {
        "nexmark-q7"
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<Self::Event>> {
        eddy::sim::Workload::generate(&q7::NEXMARK_Q7, events, rng)
    }

    fn bound_ms(&self) -> i64 {
        nexmark::SOURCE.out_of_orderness_ms
    }

    fn build(&self, log: Log<Self::Event>, checksum: &Checksum) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(1);
        let events = pipeline.source("events", log, watermarks(self.bound_ms()));
        let per_auction = nexmark::bids(events)
            .key_by(|bid: &nexmark::Bid| bid.auction)
            .window(WindowAssigner::tumbling(q7::WINDOW_MS))
            .aggregate(q7::MaxBid);
        let highest = per_auction
            .output
            .key_by(|highest: &Windowed<u64, q7::HighestBids>| highest.window)
            .window(WindowAssigner::tumbling(q7::WINDOW_MS))
            .aggregate(q7::MaxOfMax);
        checksum.attach(highest.output, |r: &Record<Windowed<Window, q7::HighestBids>>| {
            let highest = &r.value;
            highest.value.bids.iter().fold(0u64, |sum, bid| {
                sum.wrapping_add(result_hash(&[
                    highest.key.start as u64,
                    bid.auction,
                    bid.bidder,
                    bid.price,
                ]))
            })
        });
        pipeline.build().expect("the nexmark-q7 bench pipeline is valid")
    }
}

/// The workloads `eddy bench` knows, in the order it runs them.
pub const WORKLOADS: [&str; 6] = [
    "pageviews",
    "nexmark-q5",
    "nexmark-q7",
    "dedup",
    "sessions-clicks",
    "enrich",
];

#[cfg(test)]
mod tests {
    use eddy::engine::JobMetrics;
    use rand::{Rng, SeedableRng};

    use super::*;

    /// The workload's input with every record displaced by up to `jitter_ms` of event time
    /// (arrival order by `ts + jitter`), and the checksums of the engine in batch mode and of
    /// the hand-written loop over it, and the engine's metrics.
    fn checksums<W: Workload>(workload: &W, events: usize, jitter_ms: i64) -> (u64, u64, JobMetrics) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let input = workload.generate(events, &mut rng);
        let mut keyed: Vec<(i64, usize, Record<W::Event>)> = input
            .into_iter()
            .enumerate()
            .map(|(i, r)| (r.ts + rng.gen_range(0..=jitter_ms), i, r))
            .collect();
        keyed.sort_by_key(|(arrival, i, _)| (*arrival, *i));
        let input: Vec<Record<W::Event>> = keyed.into_iter().map(|(_, _, r)| r).collect();
        let checksum = Checksum::new(false);
        let summary = eddy::run_to_end(&workload.build(Log::round_robin(input.clone(), 1), &checksum)).unwrap();
        let direct = direct::hand_written::<W::Direct>(&input, workload.bound_ms(), WATERMARK_EVERY);
        (checksum.get(), direct, summary.metrics)
    }

    /// Within the bound nothing is late, but records arrive out of order: sessions merge in
    /// another order, clicks and profile changes cross, an id's duplicate comes first.
    #[test]
    fn hand_written_loops_agree_with_the_engine_on_out_of_order_input() {
        let (engine, direct, metrics) = checksums(&Dedup, 5_000, dedup::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "dedup");
        let (engine, direct, metrics) = checksums(&SessionsClicks, 5_000, sessions::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "sessions-clicks");
        let (engine, direct, metrics) = checksums(&Enrich, 5_000, enrich::OUT_OF_ORDERNESS_MS / 2);
        assert_eq!((engine, metrics.late_records), (direct, 0), "enrich");
    }

    /// Far beyond the bound (for sessions, beyond a session's gap and allowed lateness):
    /// records are late, sessions fire late and changes are dropped, at the same watermarks
    /// in both.
    #[test]
    fn hand_written_loops_agree_with_the_engine_on_late_input() {
        let (engine, direct, metrics) = checksums(&Dedup, 5_000, 5 * dedup::OUT_OF_ORDERNESS_MS);
        assert_eq!(engine, direct, "dedup");
        assert!(metrics.late_records > 0, "dedup: {metrics:?}");
        let (engine, direct, metrics) = checksums(
            &SessionsClicks,
            5_000,
            2 * (sessions::GAP_MS + sessions::ALLOWED_LATENESS_MS),
        );
        assert_eq!(engine, direct, "sessions-clicks");
        assert!(
            metrics.late_records > 0 && metrics.events.late_firings > 0,
            "sessions-clicks: {metrics:?}"
        );
        let (engine, direct, metrics) = checksums(&Enrich, 5_000, 5 * enrich::OUT_OF_ORDERNESS_MS);
        assert_eq!(engine, direct, "enrich");
        assert!(metrics.late_records > 0, "enrich: {metrics:?}");
    }

    /// Clicks exactly a gap apart touch: one session (rare in the generated input).
    #[test]
    fn touching_sessions_merge_in_both() {
        let click = |ts: i64| Record::new(ts, sessions::UserClick { user: 1, page: 0 });
        let input = vec![click(0), click(sessions::GAP_MS), click(2 * sessions::GAP_MS + 1)];
        let checksum = Checksum::new(false);
        eddy::run_to_end(&SessionsClicks.build(Log::round_robin(input.clone(), 1), &checksum)).unwrap();
        let direct = direct::hand_written::<direct::SessionClicks>(&input, SessionsClicks.bound_ms(), WATERMARK_EVERY);
        let gap = sessions::GAP_MS as u64;
        let expected = result_hash(&[1, 0, 2 * gap, 2]).wrapping_add(result_hash(&[1, 2 * gap + 1, 3 * gap + 1, 1]));
        assert_eq!((checksum.get(), direct), (expected, expected));
    }

    /// The shortcut is not like for like: out of order, it keeps a later duplicate that
    /// arrived first.
    #[test]
    fn the_at_once_dedup_differs_on_out_of_order_input() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut input = Dedup.generate(5_000, &mut rng);
        // Swap neighbours that are a duplicate pair of one id, later first.
        let swaps = (1..input.len())
            .filter(|&i| input[i - 1].value.event_id == input[i].value.event_id && input[i - 1].ts < input[i].ts)
            .collect::<Vec<_>>();
        assert!(!swaps.is_empty(), "the input has close duplicates");
        for i in swaps {
            input.swap(i - 1, i);
        }
        let bound = Dedup.bound_ms();
        let event_time = direct::hand_written::<direct::FirstClicks>(&input, bound, WATERMARK_EVERY);
        let at_once = direct::hand_written::<direct::FirstClicksAtOnce>(&input, bound, WATERMARK_EVERY);
        let checksum = Checksum::new(false);
        eddy::run_to_end(&Dedup.build(Log::round_robin(input, 1), &checksum)).unwrap();
        assert_eq!(checksum.get(), event_time);
        assert_ne!(checksum.get(), at_once);
    }
}
