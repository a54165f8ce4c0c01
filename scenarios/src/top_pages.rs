//! `top-pages`: the three most viewed pages per site, updated as counts change. Views are
//! counted per (site, page) without windows (a changelog aggregation: each new view updates
//! its page's count, `-U/+U`), then ranked per site (Top-N, `ROW_NUMBER() <= 3` by views,
//! then page): a page climbing into the top three retracts the one it displaces.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use eddy_engine::{CountRows, JobGraph, Pipeline, Record, Row, WatermarkStrategy};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{compare_changelog, json_line, outcome};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct View {
    pub site: u8,
    pub page: u16,
}

pub const TOP: usize = 3;
pub const OUT_OF_ORDERNESS_MS: i64 = 1_000;

/// A page, `(site, page)`, with its views.
pub type PageViews = ((u8, u16), u64);

/// A ranked row: the site, the rank (1 to 3), and the page with its views.
pub type Ranked = (u8, u32, PageViews);

pub struct TopPages;

/// The reference: views per (site, page) over every record (nothing is late for a
/// non-windowed count), the first three per site by views, then page.
fn reference_top(input: &[Record<View>]) -> Vec<Ranked> {
    let mut counts: BTreeMap<(u8, u16), u64> = BTreeMap::new();
    for r in input {
        *counts.entry((r.value.site, r.value.page)).or_default() += 1;
    }
    let mut per_site: BTreeMap<u8, Vec<PageViews>> = BTreeMap::new();
    for (page, views) in counts {
        per_site.entry(page.0).or_default().push((page, views));
    }
    let mut ranked = Vec::new();
    for (site, mut pages) in per_site {
        pages.sort_by_key(|&(page, views)| (Reverse(views), page));
        for (rank, page) in pages.into_iter().take(TOP).enumerate() {
            ranked.push((site, rank as u32 + 1, page));
        }
    }
    ranked
}

impl Workload for TopPages {
    type Event = View;

    fn name(&self) -> &'static str {
        "top-pages"
    }

    fn description(&self) -> &'static str {
        "the three most viewed pages per site: a changelog count per page, Top-3 per site, updating"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<View>> {
        let mut ts: i64 = rng.gen_range(0..10_000);
        (0..events)
            .map(|_| {
                ts += rng.gen_range(0..200);
                // A few popular pages per site, whose order changes as views come in.
                let page = if rng.gen_bool(0.6) {
                    rng.gen_range(0..5)
                } else {
                    rng.gen_range(0..40)
                };
                Record::new(
                    ts,
                    View {
                        site: rng.gen_range(0..4),
                        page,
                    },
                )
            })
            .collect()
    }

    fn build(&self, source: EventSource<View>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let top = source
            .stream(
                &pipeline,
                "views",
                WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS).with_interval(50),
            )
            .changelog()
            .key_by(|v: &Row<View>| (v.row.site, v.row.page))
            .aggregate_changelog(CountRows)
            .key_by(|r: &Row<PageViews>| r.row.0 .0)
            .top_n(TOP, |&((_, page), views): &PageViews| (Reverse(views), page));
        outputs.changelog_as("top", top, |r: &Ranked| (r.0, r.1), json_line);
        pipeline.build().expect("the top-pages pipeline is valid")
    }

    /// A non-windowed count keeps every page's count, and Top-N every site's rows.
    fn live_state_entries(&self, input: &[Record<View>], _outputs: &Outputs) -> usize {
        let pages: std::collections::BTreeSet<(u8, u16)> = input.iter().map(|r| (r.value.site, r.value.page)).collect();
        let sites: std::collections::BTreeSet<u8> = pages.iter().map(|p| p.0).collect();
        pages.len() + sites.len()
    }

    fn check(&self, input: &[Record<View>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let top = outputs.log::<Row<Ranked>>("top");
        let committed = top.records();
        let verdict = compare_changelog("top", &top, reference_top(input));
        outcome::<_, View>(&committed, &[], verdict)
    }
}
