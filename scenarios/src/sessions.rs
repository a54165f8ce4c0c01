//! `sessions-clicks`: clicks per user session (session windows with a gap, allowed lateness,
//! a late side output).

use eddy_engine::{Count, JobGraph, Pipeline, Record, WatermarkStrategy, WindowAssigner, Windowed};
use eddy_sim::{Checked, EventSource, Outputs, Recorded, Workload};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::check::{accepted, check_sessions, counts_grow, late_at_recorded_watermark, outcome, session_upserts};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserClick {
    pub user: u32,
    pub page: u16,
}

pub const GAP_MS: i64 = 10_000;
pub const ALLOWED_LATENESS_MS: i64 = 3_000;
pub const OUT_OF_ORDERNESS_MS: i64 = 1_500;

pub struct SessionsClicks;

impl Workload for SessionsClicks {
    type Event = UserClick;

    fn name(&self) -> &'static str {
        "sessions-clicks"
    }

    fn description(&self) -> &'static str {
        "clicks per user session (10 s gap, 3 s allowed lateness), late side output"
    }

    fn out_of_orderness_ms(&self) -> i64 {
        OUT_OF_ORDERNESS_MS
    }

    fn default_events(&self) -> usize {
        1_000
    }

    fn generate(&self, events: usize, rng: &mut ChaCha8Rng) -> Vec<Record<UserClick>> {
        // Users click in bursts: short pauses inside a session, long ones between sessions.
        let users = 40;
        let mut next_click: Vec<i64> = (0..users).map(|_| rng.gen_range(0..30_000)).collect();
        let mut clicks = Vec::with_capacity(events);
        for _ in 0..events {
            let user = rng.gen_range(0..users);
            let ts = next_click[user];
            next_click[user] += if rng.gen_bool(0.85) {
                rng.gen_range(100..GAP_MS)
            } else {
                rng.gen_range(GAP_MS..4 * GAP_MS)
            };
            clicks.push(Record::new(
                ts,
                UserClick {
                    user: user as u32,
                    page: rng.gen_range(0..50),
                },
            ));
        }
        clicks.sort_by_key(|r| r.ts);
        clicks
    }

    fn build(&self, source: EventSource<UserClick>, outputs: &mut Outputs) -> JobGraph {
        let pipeline = Pipeline::new().with_parallelism(3);
        let sessions = source
            .stream(
                &pipeline,
                "clicks",
                WatermarkStrategy::bounded_out_of_orderness(OUT_OF_ORDERNESS_MS).with_interval(50),
            )
            .parallelism(2)
            .key_by(|c: &UserClick| c.user)
            .window(WindowAssigner::session(GAP_MS))
            .allowed_lateness(ALLOWED_LATENESS_MS)
            .aggregate(Count);
        outputs.sessions_as("sessions", sessions.output, |w: &Windowed<u32, u64>| {
            let (start, end, user, clicks) = (w.window.start, w.window.end, w.key, w.value);
            format!(r#"{{"session_start":{start},"session_end":{end},"user":{user},"clicks":{clicks}}}"#)
        });
        outputs.append("late", sessions.late);
        pipeline.build().expect("the sessions-clicks pipeline is valid")
    }

    fn check(&self, input: &[Record<UserClick>], recorded: &Recorded, outputs: &Outputs) -> Checked {
        let late = outputs.log::<UserClick>("late").records();
        let committed = outputs.log::<Windowed<u32, u64>>("sessions").records();
        let verdict = (|| {
            // A click is late only when its merged session, so its own window [ts, ts + gap),
            // has expired: ts + gap - 1 + allowed lateness <= watermark.
            let late_at = |ts: i64| ts + GAP_MS - 1 + ALLOWED_LATENESS_MS;
            let accepted = accepted(input, input, &late, self.partitions(), OUT_OF_ORDERNESS_MS, |r| {
                late_at(r.ts)
            })?;
            late_at_recorded_watermark(recorded.late().map(|(ts, _, w)| (ts, w)), late_at)?;
            counts_grow(committed.iter().map(|r| ((r.value.key, r.value.window), r.value.value)))?;
            // Reference: the sessions of the accepted clicks, per user, split where the run's
            // recorded watermarks had cleared a session before a click touching it arrived.
            check_sessions(
                &accepted,
                recorded.behind(),
                |r| r.value.user,
                &session_upserts(&committed),
                GAP_MS,
                ALLOWED_LATENESS_MS,
            )
        })();
        outcome(&committed, &late, verdict)
    }
}
