//! `nexmark-q8`: new users. The persons who opened an auction in the same tumbling window of
//! [`WINDOW_MS`] in which they registered: Flink's join of persons and auction sellers
//! grouped by `TUMBLE(dateTime, 10 s)`, on id and window.
//!
//! Persons and auctions in one stream, keyed by person id (the auction's seller), into
//! tumbling windows that note the person's name and whether an auction was seen; a window
//! with both is a new user. One result per (person, window); the smallest name if a person
//! id came with several.

use std::collections::BTreeMap;

use eddy_engine::{AggregateFunction, JobGraph, Pipeline, Record, WindowAssigner, Windowed};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Workload};
use serde::{Deserialize, Serialize};

use super::{line, watermarks, Event, Source, SOURCE};
use crate::check::{accepted, compare_tables, outcome, table_once, values};

pub const WINDOW_MS: i64 = 10_000;

pub struct Q8 {
    pub source: Source,
}

pub static NEXMARK_Q8: Q8 = Q8 { source: SOURCE };

/// What one person's window saw: their name (if they registered) and their auctions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    name: Option<String>,
    auctions: u64,
}

/// A person id's window: the name if the person registered and sold something in it.
#[derive(Clone, Copy, Debug)]
pub struct NewUser;

impl AggregateFunction<Event> for NewUser {
    type Acc = Seen;
    type Out = Option<String>;
    fn create_accumulator(&self) -> Seen {
        Seen::default()
    }
    fn add(&self, acc: &mut Seen, event: &Event) {
        match event {
            Event::Person(p) => {
                if acc.name.as_ref().is_none_or(|name| p.name < *name) {
                    acc.name = Some(p.name.clone());
                }
            }
            Event::Auction(_) => acc.auctions += 1,
            Event::Bid(_) => {}
        }
    }
    fn merge(&self, acc: &mut Seen, other: Seen) {
        acc.auctions += other.auctions;
        if let Some(name) = other.name {
            if acc.name.as_ref().is_none_or(|mine| name < *mine) {
                acc.name = Some(name);
            }
        }
    }
    fn result(&self, acc: &Seen) -> Option<String> {
        acc.name.clone().filter(|_| acc.auctions > 0)
    }
}

#[derive(Serialize)]
struct NewUserLine<'a> {
    window_start: i64,
    window_end: i64,
    id: u64,
    name: &'a str,
}

fn person_or_auction(event: &Event) -> bool {
    !matches!(event, Event::Bid(_))
}

fn person_id(event: &Event) -> u64 {
    match event {
        Event::Person(p) => p.id,
        Event::Auction(a) => a.seller,
        Event::Bid(b) => b.bidder,
    }
}

impl Workload for Q8 {
    type Event = Event;

    fn name(&self) -> &'static str {
        "nexmark-q8"
    }

    fn description(&self) -> &'static str {
        "Nexmark q8, new users: persons who opened an auction in the 10 s tumbling window they registered in"
    }

    super::source_methods!();

    fn build(&self, source: EventSource<Event>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(2);
        let windows = source
            .stream(&pipeline, "events", watermarks(&self.source))
            .filter(person_or_auction)
            .key_by(person_id)
            .window(WindowAssigner::tumbling(WINDOW_MS))
            .aggregate(NewUser);
        let new_users = windows.output.flat_map(|w: Windowed<u64, Option<String>>| {
            w.value.map(|name| Windowed {
                key: w.key,
                window: w.window,
                value: name,
            })
        });
        // Appended as the old sink was (no key_by before it, so the graph is unchanged);
        // the oracle judges it as an upsert table (`judged_outputs`).
        outputs.append_as("new-users", new_users, |r: &Record<Windowed<u64, String>>| {
            line(&NewUserLine {
                window_start: r.value.window.start,
                window_end: r.value.window.end,
                id: r.value.key,
                name: &r.value.value,
            })
        });
        outputs.append("late", windows.late);
        pipeline.build().expect("the nexmark-q8 pipeline is valid")
    }

    /// The new users by id and window (an upsert table); the late persons and auctions are
    /// checked by their own rule.
    fn judged_outputs(&self, _input: &[Record<Event>], outputs: &Outputs) -> Vec<OutputTable> {
        let new_users = outputs.log::<Windowed<u64, String>>("new-users");
        vec![OutputTable::upsert("new-users", values(&new_users), |w| {
            (w.key, w.window)
        })]
    }

    fn check(&self, input: &[Record<Event>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let committed = outputs.log::<Windowed<u64, String>>("new-users").records();
        let late = outputs.log::<Event>("late").records();
        let verdict = (|| {
            let eligible: Vec<_> = input.iter().filter(|r| person_or_auction(&r.value)).cloned().collect();
            let accepted = accepted(
                input,
                &eligible,
                &late,
                self.partitions(),
                self.source.out_of_orderness_ms,
                |r| r.ts.div_euclid(WINDOW_MS) * WINDOW_MS + WINDOW_MS - 1,
            )?;
            // Reference: persons per (id, window start) with their smallest name, sellers per
            // (id, window start); the new users are the keys in both.
            let mut persons: BTreeMap<(u64, i64), &str> = BTreeMap::new();
            let mut sellers: BTreeMap<(u64, i64), ()> = BTreeMap::new();
            for r in &accepted {
                let start = r.ts - r.ts.rem_euclid(WINDOW_MS);
                match &r.value {
                    Event::Person(p) => {
                        let name = persons.entry((p.id, start)).or_insert(&p.name);
                        *name = (*name).min(p.name.as_str());
                    }
                    Event::Auction(a) => {
                        sellers.insert((a.seller, start), ());
                    }
                    Event::Bid(_) => {}
                }
            }
            let expected: BTreeMap<(i64, i64, u64), String> = persons
                .into_iter()
                .filter(|(key, _)| sellers.contains_key(key))
                .map(|((id, start), name)| ((start, start + WINDOW_MS, id), name.to_string()))
                .collect();
            let actual = table_once(
                "exactly-once",
                committed.iter().map(|r| {
                    let w = &r.value;
                    ((w.window.start, w.window.end, w.key), w.value.clone())
                }),
            )?;
            compare_tables("exactly-once", &expected, &actual)
        })();
        outcome(&committed, &late, verdict)
    }
}
