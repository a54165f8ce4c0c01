//! `enrich`: clicks enriched with user profiles. One log carries clicks and a profile
//! changelog (created, updated, deleted); the pipeline splits it, builds a versioned profile
//! table from the changelog and joins each click, in event time, with the profile valid at
//! its timestamp (docs/semantics.md, "Temporal join").

use std::collections::{BTreeMap, BTreeSet};

use eddy_engine::{Change, CommitLog, JobGraph, Pipeline, Record, WatermarkStrategy};
use eddy_sim::{Checked, EventSource, OutputTable, Outputs, Recorded, Violation, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{digest, json_line, lateness_soundness, minus};

/// One entry of the input log: a click or a profile change.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrichEvent {
    Click(Click),
    Profile(ProfileChange),
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Click {
    pub click_id: u32,
    pub user: u32,
    pub page: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProfileChange {
    pub user: u32,
    pub op: ProfileOp,
}

/// What happened to a profile. `Created` and `Updated` both set the profile from their
/// timestamp on (an upsert); `Deleted` removes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileOp {
    Created(Profile),
    Updated(Profile),
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Profile {
    pub country: String,
    pub plan: String,
    /// The user's count of profile changes so far: every version differs from the others.
    pub version: u32,
}

/// A click with the profile its user had at the click's timestamp (`None`: no profile).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnrichedClick {
    pub click_id: u32,
    pub user: u32,
    pub page: u16,
    pub profile: Option<Profile>,
}

impl ProfileChange {
    /// The changelog entry the temporal join reads.
    pub fn into_change(self) -> Change<u32, Profile> {
        match self.op {
            ProfileOp::Created(profile) | ProfileOp::Updated(profile) => Change::Upsert {
                key: self.user,
                value: profile,
            },
            ProfileOp::Deleted => Change::Delete { key: self.user },
        }
    }
}

pub const USERS: u32 = 50;
pub const OUT_OF_ORDERNESS_MS: i64 = 1_000;
const COUNTRIES: [&str; 5] = ["de", "fr", "us", "jp", "br"];
const PLANS: [&str; 3] = ["free", "plus", "pro"];

pub struct Enrich;

/// What a run committed, as the check reads it: the enriched clicks and the join's late
/// outputs.
struct Sinks {
    enriched: CommitLog<EnrichedClick>,
    late_clicks: CommitLog<Click>,
    late_changes: CommitLog<Change<u32, Profile>>,
}

impl Sinks {
    fn of(outputs: &Outputs) -> Self {
        Sinks {
            enriched: outputs.log("enriched"),
            late_clicks: outputs.log("late_clicks"),
            late_changes: outputs.log("late_changes"),
        }
    }
}

/// An input entry as the check compares it with the late outputs: created and updated
/// profiles are both upserts there.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Entry {
    Click(Click),
    Change(Change<u32, Profile>),
}

fn entries(input: &[Record<EnrichEvent>]) -> Vec<Record<Entry>> {
    input
        .iter()
        .map(|r| {
            let entry = match &r.value {
                EnrichEvent::Click(click) => Entry::Click(click.clone()),
                EnrichEvent::Profile(change) => Entry::Change(change.clone().into_change()),
            };
            Record::new(r.ts, entry)
        })
        .collect()
}

/// The profile table the reference builds: per user, per timestamp, every accepted change
/// at that timestamp (more than one only where disorder made two changes tie; then the one
/// that arrived last wins, and any of them may be it).
type Versions = BTreeMap<u32, BTreeMap<i64, BTreeSet<Option<Profile>>>>;

fn versions(accepted: &[Record<Entry>]) -> Versions {
    let mut table: Versions = BTreeMap::new();
    for r in accepted {
        if let Entry::Change(change) = &r.value {
            let value = match change {
                Change::Upsert { value, .. } => Some(value.clone()),
                Change::Delete { .. } => None,
            };
            table
                .entry(*change.key())
                .or_default()
                .entry(r.ts)
                .or_default()
                .insert(value);
        }
    }
    table
}

/// The input minus what the sinks report late (one occurrence each).
fn accepted(input: &[Record<EnrichEvent>], sinks: &Sinks) -> Result<Vec<Record<Entry>>, Violation> {
    minus(&entries(input), &late_entries(sinks), "late entry")
}

fn late_entries(sinks: &Sinks) -> Vec<Record<Entry>> {
    let clicks = sinks
        .late_clicks
        .records()
        .into_iter()
        .map(|r| Record::new(r.ts, Entry::Click(r.value)));
    let changes = sinks
        .late_changes
        .records()
        .into_iter()
        .map(|r| Record::new(r.ts, Entry::Change(r.value)));
    clicks.chain(changes).collect()
}

impl Workload for Enrich {
    type Event = EnrichEvent;

    fn name(&self) -> &'static str {
        "enrich"
    }

    fn description(&self) -> &'static str {
        "clicks joined in event time with the user profile valid at their timestamp (a versioned table from a changelog)"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<EnrichEvent>> {
        // About a third of the users never get a profile; the others get one at some point,
        // update it, sometimes delete it and create it again.
        let has_profile: Vec<bool> = (0..USERS).map(|_| rng.gen_bool(0.65)).collect();
        let with_profile: Vec<u32> = (0..USERS).filter(|&u| has_profile[u as usize]).collect();
        let mut live = vec![false; USERS as usize];
        let mut changes = vec![0u32; USERS as usize];
        let mut ts: i64 = rng.gen_range(0..10_000);
        let mut last_change: Option<u32> = None;
        let mut log = Vec::with_capacity(events);
        for click_id in 0..events as u32 {
            if !with_profile.is_empty() && rng.gen_bool(0.25) {
                // Changes of one user never share a timestamp (no tie to break).
                ts += rng.gen_range(1..300);
                let user = with_profile[rng.gen_range(0..with_profile.len())];
                let index = user as usize;
                changes[index] += 1;
                let profile = Profile {
                    country: COUNTRIES[rng.gen_range(0..COUNTRIES.len())].to_string(),
                    plan: PLANS[rng.gen_range(0..PLANS.len())].to_string(),
                    version: changes[index],
                };
                let op = if !live[index] {
                    ProfileOp::Created(profile)
                } else if rng.gen_bool(0.15) {
                    ProfileOp::Deleted
                } else {
                    ProfileOp::Updated(profile)
                };
                live[index] = !matches!(op, ProfileOp::Deleted);
                last_change = Some(user);
                log.push(Record::new(ts, EnrichEvent::Profile(ProfileChange { user, op })));
            } else {
                // Sometimes the user whose profile just changed clicks in the same
                // millisecond: the click sees the new version.
                let user = match last_change.take() {
                    Some(user) if rng.gen_bool(0.2) => user,
                    _ => {
                        ts += rng.gen_range(0..300);
                        rng.gen_range(0..USERS)
                    }
                };
                log.push(Record::new(
                    ts,
                    EnrichEvent::Click(Click {
                        click_id,
                        user,
                        page: rng.gen_range(0..100),
                    }),
                ));
            }
        }
        log
    }

    fn build(&self, source: EventSource<EnrichEvent>, outputs: &mut Outputs) -> JobGraph {
        build(source, outputs, |change| Some(change.into_change()))
    }

    fn judged_outputs(&self, input: &[Record<EnrichEvent>], outputs: &Outputs) -> Vec<OutputTable> {
        // Two changes of a user at one timestamp (disorder makes such ties): the one that
        // arrives last wins, and arrival order across partitions is the schedule's choice, so
        // a batch run cannot say which a click from then on sees. Those clicks are left to
        // the hand-written reference, which allows either (docs/testing.md).
        let mut changes: BTreeMap<(u32, i64), usize> = BTreeMap::new();
        for r in input {
            if let EnrichEvent::Profile(change) = &r.value {
                *changes.entry((change.user, r.ts)).or_default() += 1;
            }
        }
        let first_tie: BTreeMap<u32, i64> =
            changes
                .into_iter()
                .filter(|(_, n)| *n > 1)
                .fold(BTreeMap::new(), |mut ties, ((user, ts), _)| {
                    ties.entry(user).or_insert(ts);
                    ties
                });
        let decided = |r: &Record<EnrichedClick>| first_tie.get(&r.value.user).is_none_or(|tie| r.ts < *tie);
        let records = outputs
            .log::<EnrichedClick>("enriched")
            .records()
            .into_iter()
            .filter(decided);
        vec![OutputTable::append("enriched", records)]
    }

    fn check(&self, input: &[Record<EnrichEvent>], _recorded: &Recorded, outputs: &Outputs) -> Checked {
        let sinks = &Sinks::of(outputs);
        let enriched = sinks.enriched.records();
        let late_clicks = sinks.late_clicks.records();
        let late_changes = sinks.late_changes.records();
        let mut checked = Checked {
            events_out: enriched.len() as u64,
            late: (late_clicks.len() + late_changes.len()) as u64,
            digest: digest(&enriched) ^ digest(&late_clicks).rotate_left(1) ^ digest(&late_changes).rotate_left(2),
            violation: None,
        };
        checked.violation = self.violation(input, sinks, &enriched);
        checked
    }

    fn live_state_entries(&self, input: &[Record<EnrichEvent>], outputs: &Outputs) -> usize {
        // A user's current version stays if it is (or, after a tie, may be) a profile.
        let Ok(accepted) = accepted(input, &Sinks::of(outputs)) else {
            return 0;
        };
        versions(&accepted)
            .values()
            .filter(|by_ts| {
                by_ts
                    .values()
                    .next_back()
                    .is_some_and(|last| last.iter().any(Option::is_some))
            })
            .count()
    }
}

/// The pipeline, with `changelog` turning profile changes into the join's changelog.
fn build(
    source: EventSource<EnrichEvent>,
    outputs: &mut Outputs,
    changelog: fn(ProfileChange) -> Option<Change<u32, Profile>>,
) -> JobGraph {
    let pipeline = Pipeline::new().with_parallelism(3);
    let events = source
        .stream(
            &pipeline,
            "events",
            WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS).with_interval(50),
        )
        .parallelism(2);
    let clicks = events
        .clone()
        .filter_map(|e: &EnrichEvent| match e {
            EnrichEvent::Click(click) => Some(click.clone()),
            EnrichEvent::Profile(_) => None,
        })
        .parallelism(2);
    let changes = events
        .filter_map(move |e: &EnrichEvent| match e {
            EnrichEvent::Profile(change) => changelog(change.clone()),
            EnrichEvent::Click(_) => None,
        })
        .parallelism(2);
    let joined = clicks.key_by(|c: &Click| c.user).temporal_join(changes);
    let enriched = joined
        .output
        .map(|(click, profile): (Click, Option<Profile>)| EnrichedClick {
            click_id: click.click_id,
            user: click.user,
            page: click.page,
            profile,
        })
        .parallelism(2);
    outputs.append_as("enriched", enriched, json_line);
    outputs.append("late_clicks", joined.late);
    outputs.append("late_changes", joined.late_changes);
    pipeline.build().expect("the enrich pipeline is valid")
}

impl Enrich {
    fn violation(
        &self,
        input: &[Record<EnrichEvent>],
        sinks: &Sinks,
        enriched: &[Record<EnrichedClick>],
    ) -> Option<Violation> {
        let accepted = match accepted(input, sinks) {
            Ok(accepted) => accepted,
            Err(violation) => return Some(violation),
        };
        // A click or change is late when its ts is at or behind the join's watermark.
        if let Some(violation) = lateness_soundness(
            &entries(input),
            self.partitions(),
            OUT_OF_ORDERNESS_MS,
            &late_entries(sinks),
            |r| r.ts,
        ) {
            return Some(violation);
        }
        // Conservation: every accepted click is in the output once.
        let accepted_clicks: Vec<Record<Click>> = accepted
            .iter()
            .filter_map(|r| match &r.value {
                Entry::Click(click) => Some(Record::new(r.ts, click.clone())),
                Entry::Change(_) => None,
            })
            .collect();
        let output_clicks: Vec<Record<Click>> = enriched
            .iter()
            .map(|r| {
                let e = &r.value;
                Record::new(
                    r.ts,
                    Click {
                        click_id: e.click_id,
                        user: e.user,
                        page: e.page,
                    },
                )
            })
            .collect();
        match minus(&accepted_clicks, &output_clicks, "enriched click") {
            Err(violation) => return Some(violation),
            Ok(missing) => {
                if let Some(click) = missing.first() {
                    return Some(Violation::new(
                        "conservation",
                        format!(
                            "{click:?} is neither in the output nor on the late output ({} clicks missing)",
                            missing.len()
                        ),
                    ));
                }
            }
        }
        // Reference: each click carries the latest accepted change of its user at or before
        // its ts; none if there is none or it is a delete. One version is one value: clicks
        // that see the same version carry the same profile.
        let table = versions(&accepted);
        let mut chosen: BTreeMap<(u32, i64), &Option<Profile>> = BTreeMap::new();
        for r in enriched {
            let click = &r.value;
            let version = table
                .get(&click.user)
                .and_then(|by_ts| by_ts.range(..=r.ts).next_back());
            let Some((&valid_from, candidates)) = version else {
                if click.profile.is_some() {
                    return Some(Violation::new(
                        "exactly-once",
                        format!(
                            "click {} of user {} at {} carries {:?}, but the user had no profile change by then",
                            click.click_id, click.user, r.ts, click.profile
                        ),
                    ));
                }
                continue;
            };
            if !candidates.contains(&click.profile) {
                return Some(Violation::new(
                    "exactly-once",
                    format!(
                        "click {} of user {} at {} carries {:?}, but the profile valid then (changed at {valid_from}) is {:?}",
                        click.click_id, click.user, r.ts, click.profile, candidates
                    ),
                ));
            }
            let first = *chosen.entry((click.user, valid_from)).or_insert(&click.profile);
            if first != &click.profile {
                return Some(Violation::new(
                    "exactly-once",
                    format!(
                        "clicks of user {} see two values of the version from {valid_from}: {first:?} and {:?}",
                        click.user, click.profile
                    ),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use eddy_sim::{Profile as Faults, RunConfig, Scenario};

    use super::*;

    /// `enrich` with a changelog that forgets deletes: deleted profiles live on.
    struct ForgetsDeletes;

    impl Workload for ForgetsDeletes {
        type Event = EnrichEvent;

        fn name(&self) -> &'static str {
            "enrich-forgets-deletes"
        }

        fn description(&self) -> &'static str {
            "enrich, but deletes never reach the profile table"
        }

        fn out_of_orderness_ms(&self) -> i64 {
            Enrich.out_of_orderness_ms()
        }

        fn default_events(&self) -> usize {
            Enrich.default_events()
        }

        fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<EnrichEvent>> {
            Enrich.generate(events, rng)
        }

        fn build(&self, source: EventSource<EnrichEvent>, outputs: &mut Outputs) -> JobGraph {
            build(source, outputs, |change| match change.op {
                ProfileOp::Deleted => None,
                _ => Some(change.into_change()),
            })
        }

        fn check(&self, input: &[Record<EnrichEvent>], recorded: &Recorded, outputs: &Outputs) -> Checked {
            Enrich.check(input, recorded, outputs)
        }
    }

    #[test]
    fn the_check_catches_a_join_that_forgets_deletes() {
        let config = RunConfig::new(1, Faults::None);
        assert!(Scenario::run(&Enrich, &config).report.passed);
        let report = Scenario::run(&ForgetsDeletes, &config).report;
        let violation = report.violation.expect("deleted profiles that live on are caught");
        assert_eq!(violation.property, "exactly-once", "{violation:?}");
    }

    #[test]
    fn generated_input_has_every_kind_of_change_and_users_without_profiles() {
        let input = Enrich.generate(1_000, &mut <ChaCha8Rng as rand::SeedableRng>::seed_from_u64(3));
        let count = |f: fn(&EnrichEvent) -> bool| input.iter().filter(|r| f(&r.value)).count();
        assert!(
            count(|e| matches!(
                e,
                EnrichEvent::Profile(ProfileChange {
                    op: ProfileOp::Created(_),
                    ..
                })
            )) > 0
        );
        assert!(
            count(|e| matches!(
                e,
                EnrichEvent::Profile(ProfileChange {
                    op: ProfileOp::Updated(_),
                    ..
                })
            )) > 0
        );
        assert!(
            count(|e| matches!(
                e,
                EnrichEvent::Profile(ProfileChange {
                    op: ProfileOp::Deleted,
                    ..
                })
            )) > 0
        );
        let with_profile: BTreeSet<u32> = input
            .iter()
            .filter_map(|r| match &r.value {
                EnrichEvent::Profile(change) => Some(change.user),
                EnrichEvent::Click(_) => None,
            })
            .collect();
        assert!(input
            .iter()
            .any(|r| matches!(&r.value, EnrichEvent::Click(c) if !with_profile.contains(&c.user))));
        assert!(
            input.windows(2).all(|w| w[0].ts <= w[1].ts),
            "generated in timestamp order"
        );
    }
}
