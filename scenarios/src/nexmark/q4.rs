//! `nexmark-q4`: the average closing price per category, an updating result. The winning
//! bid of every auction ([`q9`](super::q9)), re-keyed by category and averaged with
//! retractions: when an auction's winner changes, its old price is retracted (`-U`) and the
//! new one added (`+U`), and the category's average follows. A second output keeps the
//! lowest closing price per category, whose retracted minimum must fall back to the next.

use eddy_engine::{AvgRows, JobGraph, MinRows, Pipeline, Record, Row};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Workload};

use super::q9::{reference_winners, winners, Winner};
use super::{line, watermarks, Event, Source, SOURCE};
use crate::check::{accepted, compare_changelog, outcome};

pub struct Q4 {
    pub source: Source,
}

pub static NEXMARK_Q4: Q4 = Q4 { source: SOURCE };

impl Workload for Q4 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q4"
    }

    fn description(&self) -> &'static str {
        "Nexmark q4, average closing price per category: winning bids averaged with retractions, an updating result"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let events = source.stream(&pipeline, "events", watermarks(&self.source));
        let won = winners(events);
        let averages = won
            .output
            .clone()
            .key_by(|w: &Row<Winner>| w.row.category)
            .aggregate_changelog(AvgRows(|w: &Winner| w.price as i64));
        outputs.changelog_as("averages", averages, |r: &(u64, i64)| r.0, line);
        let lowest = won
            .output
            .key_by(|w: &Row<Winner>| w.row.category)
            .aggregate_changelog(MinRows(|w: &Winner| w.price as i64));
        outputs.changelog_as("lowest", lowest, |r: &(u64, i64)| r.0, line);
        outputs.append("late", won.late);
        pipeline.build().expect("the nexmark-q4 pipeline is valid")
    }

    /// The two changelogs; the late winners are checked by their own rule.
    fn judged_outputs(&self, _input: &[Record<Event>], outputs: &Outputs) -> Vec<OutputTable> {
        vec![
            OutputTable::committed_changelog("averages", &outputs.log::<Row<(u64, i64)>>("averages")),
            OutputTable::committed_changelog("lowest", &outputs.log::<Row<(u64, i64)>>("lowest")),
        ]
    }

    /// The categories with a winner keep their running average and minimum (non-windowed
    /// state).
    fn live_state_entries(&self, input: &[Record<Event>], _outputs: &Outputs) -> usize {
        // The whole input's winners: a superset of the accepted records' categories.
        let categories: std::collections::BTreeSet<u64> = reference_winners(input).iter().map(|w| w.category).collect();
        2 * categories.len()
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let averages_log = outputs.log::<Row<(u64, i64)>>("averages");
        let lowest_log = outputs.log::<Row<(u64, i64)>>("lowest");
        let committed = averages_log.records();
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
            let mut per_category: std::collections::BTreeMap<u64, Vec<i64>> = Default::default();
            for w in reference_winners(&accepted) {
                per_category.entry(w.category).or_default().push(w.price as i64);
            }
            let averages = per_category
                .iter()
                .map(|(category, prices)| (*category, prices.iter().sum::<i64>().div_euclid(prices.len() as i64)))
                .collect();
            compare_changelog("averages", &averages_log, averages)?;
            let lowest = per_category
                .iter()
                .map(|(category, prices)| (*category, *prices.iter().min().expect("a winner")))
                .collect();
            compare_changelog("lowest", &lowest_log, lowest)
        })();
        outcome(&committed, &late, verdict)
    }
}
