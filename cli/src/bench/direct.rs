//! Each workload's computation written directly, with no engine: the hand-written loop that
//! is the practical upper limit, and the logic inside the timely operator.
//!
//! A [`Direct`] computation sees records and watermarks and emits one hash per result; a
//! run's checksum is the wrapping sum of those hashes, so it does not depend on the order of
//! results and all variants of a workload can be compared.

use std::collections::{BTreeMap, VecDeque};

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
    fields
        .iter()
        .fold(0x9e37_79b9_7f4a_7c15, |hash, &field| mix(hash ^ field))
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

/// `dedup`: drop bot clicks, keep the first click per event id and TTL interval.
#[derive(Default)]
pub struct FirstClicks {
    /// Per event id, the end of its current TTL interval.
    interval_end: FxHashMap<u32, i64>,
    /// `(interval end, id)` in the order intervals were opened, to expire them.
    expiry: VecDeque<(i64, u32)>,
}

impl Direct for FirstClicks {
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
