//! Each workload's computation written directly, with no engine: the hand-written loop that
//! is the practical upper limit, and the logic inside the timely operator.
//!
//! A [`Direct`] computation sees records and watermarks and emits one hash per result; a
//! run's checksum is the wrapping sum of those hashes, so it does not depend on the order of
//! results and all variants of a workload can be compared.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use eddy::Record;
use rustc_hash::FxHashMap;

/// A workload's computation over records and watermarks, emitting result hashes.
pub trait Direct: Default + 'static {
    type Event: Clone + 'static;
    fn record(&mut self, record: &Record<Self::Event>, emit: &mut impl FnMut(u64));
    /// The watermark advanced to `watermark`: emit every result it completes.
    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64));
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of one word.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The hash of one result, given as its fields (every variant hashes the same fields).
pub fn result_hash(fields: &[u64]) -> u64 {
    hash_words(fields.iter().copied())
}

fn hash_words(words: impl Iterator<Item = u64>) -> u64 {
    words.fold(0x9e37_79b9_7f4a_7c15, |hash, word| mix(hash ^ word))
}

/// Runs `D` as a plain loop: a watermark of `max ts − bound − 1` every `interval` records,
/// and `i64::MAX` at the end. Returns the checksum.
pub fn hand_written<D: Direct>(input: &[Record<D::Event>], bound_ms: i64, interval: usize) -> u64 {
    let mut direct = D::default();
    let mut checksum = 0u64;
    let mut emit = |hash: u64| checksum = checksum.wrapping_add(hash);
    let mut max_ts = i64::MIN;
    let mut watermark = i64::MIN;
    for chunk in input.chunks(interval) {
        for record in chunk {
            max_ts = max_ts.max(record.ts);
            direct.record(record, &mut emit);
        }
        let next = max_ts.saturating_sub(bound_ms + 1);
        if next > watermark {
            watermark = next;
            direct.watermark(watermark, &mut emit);
        }
    }
    direct.watermark(i64::MAX, &mut emit);
    checksum
}

/// `pageviews`: a count per page per tumbling window.
pub struct PageViewCounts {
    /// Open windows by start: counts per page.
    windows: BTreeMap<i64, FxHashMap<u16, u64>>,
    watermark: i64,
}

impl Default for PageViewCounts {
    fn default() -> Self {
        PageViewCounts {
            windows: BTreeMap::new(),
            watermark: i64::MIN,
        }
    }
}

impl Direct for PageViewCounts {
    type Event = eddy::scenarios::pageviews::PageView;

    fn record(&mut self, record: &Record<Self::Event>, _emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::pageviews::{ALLOWED_LATENESS_MS, WINDOW_MS};
        let start = record.ts.div_euclid(WINDOW_MS) * WINDOW_MS;
        if start + WINDOW_MS - 1 + ALLOWED_LATENESS_MS <= self.watermark {
            return; // late: the benchmark input has none
        }
        *self
            .windows
            .entry(start)
            .or_default()
            .entry(record.value.page)
            .or_insert(0) += 1;
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::pageviews::WINDOW_MS;
        self.watermark = watermark;
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start + WINDOW_MS - 1 > watermark {
                break;
            }
            for (page, count) in entry.remove() {
                emit(result_hash(&[u64::from(page), start as u64, count]));
            }
        }
    }
}

/// `dedup` in event time, as the engine decides it (docs/semantics.md, "Deduplication"):
/// drop bot clicks; buffer the others until the watermark reaches their timestamp (an
/// earlier click of the id may still come); then, in `(ts, click)` order, keep the first
/// click per event id and TTL interval. A click at or behind the watermark is late.
pub struct FirstClicks {
    /// Clicks waiting for the watermark, earliest `(ts, click)` first.
    pending: BinaryHeap<Reverse<Record<eddy::scenarios::dedup::Click>>>,
    decided: FirstClicksAtOnce,
    watermark: i64,
}

impl Default for FirstClicks {
    fn default() -> Self {
        FirstClicks {
            pending: BinaryHeap::new(),
            decided: FirstClicksAtOnce::default(),
            watermark: i64::MIN,
        }
    }
}

impl Direct for FirstClicks {
    type Event = eddy::scenarios::dedup::Click;

    fn record(&mut self, record: &Record<Self::Event>, _emit: &mut impl FnMut(u64)) {
        if record.value.bot || record.ts <= self.watermark {
            return; // a bot, or late (the engine's side output, not in the checksum)
        }
        self.pending.push(Reverse(record.clone()));
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        self.watermark = watermark;
        // Popped in (ts, click) order, so per id too: the at-once rule is then exact.
        while self.pending.peek().is_some_and(|Reverse(r)| r.ts <= watermark) {
            let Reverse(record) = self.pending.pop().expect("checked non-empty");
            self.decided.record(&record, emit);
        }
        self.decided.watermark(watermark, emit);
    }
}

/// `dedup` decided at once on arrival: drop bot clicks, keep the first click per event id
/// and TTL interval in arrival order. Right only when every id's clicks arrive in timestamp
/// order (the engine waits for the watermark instead): a shortcut, measured apart.
#[derive(Default)]
pub struct FirstClicksAtOnce {
    /// Per event id, the end of its current TTL interval.
    interval_end: FxHashMap<u32, i64>,
    /// `(interval end, id)` in the order intervals were opened, to expire them.
    expiry: VecDeque<(i64, u32)>,
}

impl Direct for FirstClicksAtOnce {
    type Event = eddy::scenarios::dedup::Click;

    fn record(&mut self, record: &Record<Self::Event>, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::dedup::TTL_MS;
        let click = &record.value;
        if click.bot {
            return;
        }
        let end = self.interval_end.entry(click.event_id).or_insert(i64::MIN);
        if record.ts >= *end {
            *end = record.ts + TTL_MS;
            self.expiry.push_back((*end, click.event_id));
            emit(result_hash(&[
                u64::from(click.event_id),
                record.ts as u64,
                u64::from(click.user),
            ]));
        }
    }

    fn watermark(&mut self, watermark: i64, _emit: &mut impl FnMut(u64)) {
        while let Some(&(end, id)) = self.expiry.front() {
            if end > watermark {
                break;
            }
            self.expiry.pop_front();
            if self.interval_end.get(&id) == Some(&end) {
                self.interval_end.remove(&id);
            }
        }
    }
}

/// `sessions-clicks`: clicks per user session (docs/semantics.md, "Windows", session rules):
/// a click opens `[ts, ts + gap)` and merges with the user's sessions it overlaps or touches;
/// it is late (dropped) if the merged session is past `max_timestamp + L`. A session fires
/// when the watermark reaches its `max_timestamp`, and again at once for every click merged
/// into it after that (a late firing); it is cleared at `max_timestamp + L`.
#[derive(Default)]
pub struct SessionClicks {
    /// Per user, disjoint (not touching) sessions sorted by start.
    users: FxHashMap<u32, Vec<Session>>,
    watermark: Option<i64>,
}

struct Session {
    start: i64,
    end: i64,
    clicks: u64,
    /// Its window end was reached and it fired (later merges fire again at once).
    fired: bool,
}

impl Direct for SessionClicks {
    type Event = eddy::scenarios::sessions::UserClick;

    fn record(&mut self, record: &Record<Self::Event>, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::sessions::{ALLOWED_LATENESS_MS, GAP_MS};
        let watermark = self.watermark.unwrap_or(i64::MIN);
        let user = record.value.user;
        let sessions = self.users.entry(user).or_default();
        let (start, end) = (record.ts, record.ts + GAP_MS);
        let first = sessions.partition_point(|s| s.end < start);
        let last = sessions.partition_point(|s| s.start <= end);
        let merged_start = sessions[first..last].iter().map(|s| s.start).fold(start, i64::min);
        let merged_end = sessions[first..last].iter().map(|s| s.end).fold(end, i64::max);
        if merged_end - 1 + ALLOWED_LATENESS_MS <= watermark {
            return; // late: the merged session has expired
        }
        let clicks = sessions[first..last].iter().map(|s| s.clicks).sum::<u64>() + 1;
        sessions.drain(first..last);
        let fired = merged_end - 1 <= watermark;
        if fired {
            emit(result_hash(&[
                u64::from(user),
                merged_start as u64,
                merged_end as u64,
                clicks,
            ]));
        }
        sessions.insert(
            first,
            Session {
                start: merged_start,
                end: merged_end,
                clicks,
                fired,
            },
        );
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::sessions::ALLOWED_LATENESS_MS;
        self.watermark = Some(watermark);
        self.users.retain(|&user, sessions| {
            for s in sessions.iter_mut().filter(|s| !s.fired && s.end - 1 <= watermark) {
                s.fired = true;
                emit(result_hash(&[u64::from(user), s.start as u64, s.end as u64, s.clicks]));
            }
            sessions.retain(|s| s.end - 1 + ALLOWED_LATENESS_MS > watermark);
            !sessions.is_empty()
        });
    }
}

/// A hash of an enriched click's profile (`None`: 0), over its fields.
pub fn profile_hash(profile: Option<&eddy::scenarios::enrich::Profile>) -> u64 {
    profile.map_or(0, |p| {
        result_hash(&[u64::from(p.version), text_hash(&p.country), text_hash(&p.plan)])
    })
}

/// [`result_hash`] of the text's bytes as words.
fn text_hash(text: &str) -> u64 {
    hash_words(text.bytes().map(u64::from))
}

/// The hash of one enriched click.
pub fn enriched_hash(
    click: &eddy::scenarios::enrich::Click,
    ts: i64,
    profile: Option<&eddy::scenarios::enrich::Profile>,
) -> u64 {
    result_hash(&[
        u64::from(click.click_id),
        u64::from(click.user),
        u64::from(click.page),
        ts as u64,
        profile_hash(profile),
    ])
}

/// `enrich`: each click joined, in event time, with its user's profile valid at its
/// timestamp (docs/semantics.md, "Temporal join"): the latest change at or before the click,
/// none if there is none or it is a delete. A click is emitted once the watermark reaches
/// its timestamp; a click or change at or behind the watermark is late (not applied, not
/// emitted).
pub struct EnrichedClicks {
    /// Per user, versions by valid-from timestamp (`None`: deleted).
    profiles: FxHashMap<u32, BTreeMap<i64, Option<eddy::scenarios::enrich::Profile>>>,
    /// Clicks waiting for the watermark, earliest first.
    pending: BinaryHeap<Reverse<Record<eddy::scenarios::enrich::Click>>>,
    watermark: i64,
}

impl Default for EnrichedClicks {
    fn default() -> Self {
        EnrichedClicks {
            profiles: FxHashMap::default(),
            pending: BinaryHeap::new(),
            watermark: i64::MIN,
        }
    }
}

impl Direct for EnrichedClicks {
    type Event = eddy::scenarios::enrich::EnrichEvent;

    fn record(&mut self, record: &Record<Self::Event>, _emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::enrich::{EnrichEvent, ProfileOp};
        if record.ts <= self.watermark {
            return; // late: the engine's side outputs, not in the checksum
        }
        match &record.value {
            EnrichEvent::Click(click) => self.pending.push(Reverse(Record::new(record.ts, click.clone()))),
            EnrichEvent::Profile(change) => {
                let value = match &change.op {
                    ProfileOp::Created(profile) | ProfileOp::Updated(profile) => Some(profile.clone()),
                    ProfileOp::Deleted => None,
                };
                self.profiles.entry(change.user).or_default().insert(record.ts, value);
            }
        }
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        self.watermark = watermark;
        while self.pending.peek().is_some_and(|Reverse(r)| r.ts <= watermark) {
            let Reverse(click) = self.pending.pop().expect("checked non-empty");
            let profile = self
                .profiles
                .get(&click.value.user)
                .and_then(|versions| versions.range(..=click.ts).next_back())
                .and_then(|(_, profile)| profile.as_ref());
            emit(enriched_hash(&click.value, click.ts, profile));
        }
        // Future clicks are above the watermark: only the version valid at the watermark
        // and later ones can still be seen.
        // A user left with only a delete at or behind the watermark has no state.
        self.profiles.retain(|_, versions| {
            if let Some((&current, _)) = versions.range(..=watermark).next_back() {
                *versions = versions.split_off(&current);
            }
            let deleted = |(&ts, profile): (&i64, &Option<_>)| ts <= watermark && profile.is_none();
            !(versions.len() == 1 && versions.iter().all(deleted))
        });
    }
}

/// `nexmark-q5`: bids per auction in sliding windows, then the auction(s) with the most.
#[derive(Default)]
pub struct HotItems {
    /// Open sliding windows by start: bids per auction.
    windows: BTreeMap<i64, FxHashMap<u64, u64>>,
}

impl Direct for HotItems {
    type Event = eddy::scenarios::nexmark::Event;

    fn record(&mut self, record: &Record<Self::Event>, _emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::nexmark::q5::{SLIDE_MS, WINDOW_MS};
        let Some(bid) = record.value.bid() else { return };
        let last_start = record.ts.div_euclid(SLIDE_MS) * SLIDE_MS;
        let mut start = last_start;
        while start > record.ts - WINDOW_MS {
            *self.windows.entry(start).or_default().entry(bid.auction).or_insert(0) += 1;
            start -= SLIDE_MS;
        }
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::nexmark::q5::WINDOW_MS;
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start + WINDOW_MS - 1 > watermark {
                break;
            }
            let counts = entry.remove();
            let most = counts.values().copied().max().unwrap_or(0);
            for (auction, n) in counts {
                if n == most {
                    emit(result_hash(&[start as u64, auction, n]));
                }
            }
        }
    }
}

/// `nexmark-q7`: per tumbling window, the bid(s) with the highest price.
#[derive(Default)]
pub struct HighestBids {
    /// Open windows by start: the highest price and its bids.
    windows: BTreeMap<i64, (u64, Vec<eddy::scenarios::nexmark::Bid>)>,
}

impl Direct for HighestBids {
    type Event = eddy::scenarios::nexmark::Event;

    fn record(&mut self, record: &Record<Self::Event>, _emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::nexmark::q7::WINDOW_MS;
        let Some(bid) = record.value.bid() else { return };
        let start = record.ts.div_euclid(WINDOW_MS) * WINDOW_MS;
        let (price, bids) = self.windows.entry(start).or_default();
        if bid.price > *price || bids.is_empty() {
            *price = bid.price;
            bids.clear();
        }
        if bid.price == *price {
            bids.push(bid);
        }
    }

    fn watermark(&mut self, watermark: i64, emit: &mut impl FnMut(u64)) {
        use eddy::scenarios::nexmark::q7::WINDOW_MS;
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            if start + WINDOW_MS - 1 > watermark {
                break;
            }
            for bid in entry.remove().1 {
                emit(result_hash(&[start as u64, bid.auction, bid.bidder, bid.price]));
            }
        }
    }
}
