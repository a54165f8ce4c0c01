//! The cases: what pipeline a script runs through, named as `run.sh` prints it, and the spec
//! that tells the Flink side to build the same pipeline.

use rand_chacha::ChaCha8Rng;

use crate::debezium::{self, Connector};
use crate::script::{self, Script, Shape};

/// Window size (tumbling, sliding), slide, session gap, continuous-trigger interval.
const SIZE_MS: i64 = 3_000;
const SLIDE_MS: i64 = 1_000;
const GAP_MS: i64 = 3_000;
const INTERVAL_MS: i64 = 1_000;

/// A case's windows: eddy's own assigner (its Flink twin is named in the case's spec).
pub use eddy::WindowAssigner as Assigner;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerKind {
    Event,
    Continuous { interval_ms: i64 },
    Count { count: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictorKind {
    Count { keep: usize },
    Time { keep_ms: i64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowCase {
    pub assigner: Assigner,
    pub lateness_ms: i64,
    pub trigger: TriggerKind,
    pub purging: bool,
    pub evictor: Option<EvictorKind>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A keyed window: sum and count per `(key, window)`, late records on the side output.
    Window(WindowCase),
    /// A keyed process function with event-time timers (`TimerFunction` on both sides).
    Process,
    /// A changelog query through Flink SQL (`Sql.java`), eddy's changelog operators here.
    Sql(SqlCase),
    /// The event-time temporal join (`joins.rs`) against Flink SQL's `FOR SYSTEM_TIME AS OF`,
    /// compared per watermark epoch as the windows are; `late`: its scripts have probes and
    /// changes behind the watermark (eddy runs the join in Flink's mode,
    /// `LateRows::JoinAtNextWatermark`).
    TemporalJoin { late: bool },
}

/// The SQL cases' queries, by the name `Sql.java` knows them by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `SELECT k, COUNT(*) | SUM(v) | AVG(v) | MIN(v) | MAX(v) FROM t GROUP BY k`.
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// `SELECT k, COUNT(DISTINCT v) | SUM(DISTINCT v) FROM t GROUP BY k`.
    CountDistinct,
    SumDistinct,
    /// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, ts ASC) <= 2`.
    Top2,
    /// Rows with `v <= 5` joined with rows with `v > 5` on `k`.
    InnerJoin,
    LeftJoin,
    /// Rows with `v <= 5` whose `k` has a row with `v > 5` (`k IN (SELECT ..)`), or none
    /// (`NOT EXISTS`): eddy's `semi_join_changelog`.
    SemiJoin,
    AntiJoin,
    /// The same rows, inner-joined on `k` where `r.ts` is in `[l.ts - 499, l.ts + 999]` (an
    /// interval join; eddy's `join_changelog_with_ttl` with TTLs 1000 and 500 ms).
    IntervalJoin,
    /// `ROW_NUMBER() OVER (PARTITION BY k ORDER BY rowtime ASC | DESC) = 1`.
    KeepFirst,
    KeepLast,
    /// The script as Debezium JSON lines written in a [`debezium::Form`] (`debezium-json` in
    /// a filesystem table), decoded: `SELECT k, ts, v`.
    DebeziumRows(debezium::Form),
    /// The same lines, `SELECT k, SUM(v) ... GROUP BY k`.
    DebeziumSum(debezium::Form),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlCase {
    pub query: Query,
    /// The input has no retractions (else inserts, updates and deletes).
    pub insert_only: bool,
    /// Compare each result key's changes in order, not only the tables they materialise into.
    pub ordered: bool,
}

impl Query {
    /// How many fields after the row kind identify a result row whose changes must come in
    /// order (its key: the group key, the group key and rank); `None`: the whole row, whose
    /// insertions a later retraction cancels. A join result has no key, and Flink's join
    /// reads its two inputs from two channels in no promised order: a row may be inserted
    /// and retracted again, or never, depending on which side came first.
    pub fn key_fields(self) -> Option<usize> {
        match self {
            Query::Top2 => Some(2),
            Query::InnerJoin | Query::LeftJoin | Query::IntervalJoin | Query::SemiJoin | Query::AntiJoin => None,
            _ => Some(1),
        }
    }

    /// The form of a Debezium case's lines.
    pub fn debezium(self) -> Option<debezium::Form> {
        match self {
            Query::DebeziumRows(form) | Query::DebeziumSum(form) => Some(form),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Query::Count => "count",
            Query::Sum => "sum",
            Query::Avg => "avg",
            Query::Min => "min",
            Query::Max => "max",
            Query::CountDistinct => "count-distinct",
            Query::SumDistinct => "sum-distinct",
            Query::Top2 => "top2",
            Query::InnerJoin => "inner-join",
            Query::LeftJoin => "left-join",
            Query::SemiJoin => "semi-join",
            Query::AntiJoin => "anti-join",
            Query::IntervalJoin => "interval-join",
            Query::KeepFirst => "keep-first",
            Query::KeepLast => "keep-last",
            Query::DebeziumRows(_) => "debezium-rows",
            Query::DebeziumSum(_) => "debezium-sum",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    pub kind: Kind,
    pub parallelism: usize,
    /// Stop at the script's restore point (`s`) with a savepoint (eddy: a checkpoint), and
    /// run the rest in a new job restored from it.
    pub restore: bool,
}

impl Case {
    /// The Flink side's description of the pipeline (`FlinkSide.java` parses it).
    pub fn spec(&self) -> String {
        let mut spec = format!("parallelism={}", self.parallelism);
        if self.restore {
            spec += " restore=1";
        }
        let w = match self.kind {
            Kind::Window(w) => w,
            Kind::Process => return format!("kind=process {spec}"),
            Kind::Sql(sql) => {
                let mut spec = format!("kind=sql query={} {spec}", sql.query.name());
                if let Some(form) = sql.query.debezium() {
                    // Flink's `debezium-json.schema-include` and `.ignore-parse-errors`.
                    spec += &format!(
                        " schema-include={} ignore-parse-errors={}",
                        u8::from(form.wrapped),
                        u8::from(form.noise)
                    );
                }
                return spec;
            }
            // A late case's source waits after each watermark until the sink saw it
            // (`Sql.java`, `RowSource`): then the join has it on both inputs.
            Kind::TemporalJoin { late } => {
                return format!("kind=sql query=temporal-join paced={} {spec}", u8::from(late))
            }
        };
        spec.insert_str(0, "kind=window ");
        match w.assigner {
            Assigner::Tumbling { size_ms, offset_ms } => {
                spec += &format!(" assigner=tumbling size={size_ms} offset={offset_ms}")
            }
            Assigner::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => spec += &format!(" assigner=sliding size={size_ms} slide={slide_ms} offset={offset_ms}"),
            Assigner::Session { gap_ms } => spec += &format!(" assigner=session gap={gap_ms}"),
        }
        spec += &format!(" lateness={}", w.lateness_ms);
        match w.trigger {
            TriggerKind::Event => spec += " trigger=event",
            TriggerKind::Continuous { interval_ms } => spec += &format!(" trigger=continuous interval={interval_ms}"),
            TriggerKind::Count { count } => spec += &format!(" trigger=count count={count}"),
        }
        spec += &format!(" purging={}", u8::from(w.purging));
        match w.evictor {
            None => {}
            Some(EvictorKind::Count { keep }) => spec += &format!(" evictor=count keep={keep}"),
            Some(EvictorKind::Time { keep_ms }) => spec += &format!(" evictor=time keep={keep_ms}"),
        }
        spec
    }

    /// What the Flink side reads for `script`: the script, or for the Debezium cases the
    /// JSON lines eddy reads too (a tombstone as Kafka hands it over, `debezium::flink_lines`).
    pub fn flink_input(&self, script: &Script) -> String {
        match self.kind {
            Kind::Sql(SqlCase { query, .. }) if query.debezium().is_some() => {
                let form = query.debezium().expect("a Debezium case");
                debezium::flink_lines(&debezium::lines(script, form), form).join("\n") + "\n"
            }
            _ => script.to_string(),
        }
    }

    /// A random script for this case.
    pub fn generate(&self, rng: &mut ChaCha8Rng) -> Script {
        match self.kind {
            // Flink's interval join starts its state's expiration time at 0 (and clamps its
            // operator time to it): a row whose match bounds lie wholly below 0 finds no
            // match (`r a -912 2`, `r a -911 7`: eddy pairs them, Flink does not). Its scripts
            // are moved to positive time.
            Kind::Sql(SqlCase {
                query: Query::IntervalJoin,
                insert_only,
                ..
            }) => script::generate_changelog(rng, insert_only).shifted(10_000),
            Kind::Sql(sql) => script::generate_changelog(rng, sql.insert_only),
            Kind::TemporalJoin { late } => script::generate_temporal(rng, !late),
            _ if self.restore => {
                let script = script::generate(rng, self.shape());
                script::with_savepoint(rng, script)
            }
            _ => script::generate(rng, self.shape()),
        }
    }

    /// What the script generator aims at for this case.
    fn shape(&self) -> Shape {
        match self.kind {
            Kind::Process | Kind::Sql(_) | Kind::TemporalJoin { .. } => Shape {
                period_ms: 1_000,
                offset_ms: 0,
                lateness_ms: 0,
                session: false,
            },
            Kind::Window(w) => {
                let (period_ms, offset_ms, session) = match w.assigner {
                    Assigner::Tumbling { size_ms, offset_ms } => (size_ms, offset_ms, false),
                    Assigner::Sliding {
                        slide_ms, offset_ms, ..
                    } => (slide_ms, offset_ms, false),
                    Assigner::Session { gap_ms } => (gap_ms, 0, true),
                };
                Shape {
                    period_ms,
                    offset_ms,
                    lateness_ms: w.lateness_ms,
                    session,
                }
            }
        }
    }
}

/// Parses a window case's name (`session-offset-lateness1-purging-continuous-evict-count2`):
/// the assigner, `offset` (700 ms tumbling, −300 ms sliding), the allowed lateness in
/// seconds, `purging`, the trigger (`event`, `continuous` every 1 s, `count` of 3) and an
/// optional evictor (`evict-count2`, `evict-time1500`).
fn window_case(name: &str) -> WindowCase {
    let (window, evictor) = match name.split_once("-evict-") {
        Some((window, evictor)) => (window, Some(evictor)),
        None => (name, None),
    };
    let parts: Vec<&str> = window.split('-').collect();
    let offset = parts.contains(&"offset");
    let assigner = match parts[0] {
        "tumbling" => Assigner::Tumbling {
            size_ms: SIZE_MS,
            offset_ms: if offset { 700 } else { 0 },
        },
        "sliding" => Assigner::Sliding {
            size_ms: SIZE_MS,
            slide_ms: SLIDE_MS,
            offset_ms: if offset { -300 } else { 0 },
        },
        "session" => Assigner::Session { gap_ms: GAP_MS },
        other => panic!("unknown assigner in case {name}: {other}"),
    };
    let lateness_s: i64 = parts
        .iter()
        .find_map(|p| p.strip_prefix("lateness").and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("case {name} names no lateness"));
    let trigger = match parts.last() {
        Some(&"event") => TriggerKind::Event,
        Some(&"continuous") => TriggerKind::Continuous {
            interval_ms: INTERVAL_MS,
        },
        Some(&"count") => TriggerKind::Count { count: 3 },
        _ => panic!("case {name} names no trigger"),
    };
    let evictor = evictor.map(|e| {
        if let Some(keep) = e.strip_prefix("count").and_then(|n| n.parse().ok()) {
            EvictorKind::Count { keep }
        } else if let Some(keep_ms) = e.strip_prefix("time").and_then(|n| n.parse().ok()) {
            EvictorKind::Time { keep_ms }
        } else {
            panic!("unknown evictor in case {name}")
        }
    });
    WindowCase {
        assigner,
        lateness_ms: lateness_s * 1_000,
        trigger,
        purging: parts.contains(&"purging"),
        evictor,
    }
}

/// The window cases run at parallelism 1.
const WINDOW_CASES: [&str; 33] = [
    "tumbling-lateness0-event",
    "tumbling-lateness1-event",
    "tumbling-lateness5-event",
    "tumbling-offset-lateness1-event",
    "tumbling-lateness1-continuous",
    "tumbling-lateness1-count",
    "tumbling-lateness1-purging-event",
    "tumbling-lateness1-purging-continuous",
    "tumbling-lateness0-purging-count",
    "tumbling-lateness1-event-evict-count2",
    "tumbling-lateness1-event-evict-time1500",
    "tumbling-lateness1-count-evict-count2",
    "sliding-lateness0-event",
    "sliding-lateness1-event",
    "sliding-offset-lateness5-event",
    "sliding-lateness1-continuous",
    "sliding-offset-lateness1-count",
    "sliding-lateness1-purging-continuous",
    "sliding-lateness0-event-evict-count2",
    "sliding-lateness1-continuous-evict-time1500",
    "session-lateness0-event",
    "session-lateness1-event",
    "session-lateness5-event",
    "session-lateness0-continuous",
    "session-lateness1-continuous",
    "session-lateness5-continuous",
    "session-lateness1-count",
    "session-lateness1-purging-event",
    "session-lateness1-purging-continuous",
    "session-lateness1-purging-count",
    "session-lateness1-event-evict-count2",
    "session-lateness1-event-evict-time1500",
    "session-lateness5-count-evict-count2",
];

/// Window cases run again with the window at parallelism 2 (keyed results as at 1).
const PARALLEL_WINDOW_CASES: [&str; 3] = [
    "tumbling-lateness1-continuous",
    "session-lateness1-event",
    "sliding-lateness1-count-evict-count2",
];

/// Window cases run with a savepoint and a restore in the middle of each script (names
/// `restore-...`; `s` in a script marks the restore point, see `script::with_savepoint`).
const RESTORE_WINDOW_CASES: [&str; 6] = [
    "tumbling-lateness1-event",
    "tumbling-lateness0-purging-count",
    "sliding-offset-lateness1-continuous",
    "session-lateness1-event",
    "session-lateness5-continuous",
    "session-lateness1-event-evict-count2",
];

/// Every case, in the order `run.sh` prints them.
pub fn all() -> Vec<Case> {
    let case = |name: String, kind, parallelism, restore| Case {
        name,
        kind,
        parallelism,
        restore,
    };
    let mut cases: Vec<Case> = WINDOW_CASES
        .iter()
        .map(|name| case(name.to_string(), Kind::Window(window_case(name)), 1, false))
        .collect();
    cases.push(case("process-timers".to_string(), Kind::Process, 1, false));
    cases.extend(
        PARALLEL_WINDOW_CASES
            .iter()
            .map(|name| case(format!("parallel2-{name}"), Kind::Window(window_case(name)), 2, false)),
    );
    cases.push(case("parallel2-process-timers".to_string(), Kind::Process, 2, false));
    cases.extend(
        RESTORE_WINDOW_CASES
            .iter()
            .map(|name| case(format!("restore-{name}"), Kind::Window(window_case(name)), 1, true)),
    );
    cases.push(case("restore-process-timers".to_string(), Kind::Process, 1, true));
    cases.push(case(
        "restore-parallel2-tumbling-lateness1-continuous".to_string(),
        Kind::Window(window_case("tumbling-lateness1-continuous")),
        2,
        true,
    ));
    // Probes and changes ahead of the watermark, then with late ones too: eddy sends late
    // ones to side outputs by default; in Flink's mode, which these cases run, a late probe
    // joins at the next watermark and a late change is applied.
    cases.push(case(
        "temporal-join-left".to_string(),
        Kind::TemporalJoin { late: false },
        1,
        false,
    ));
    cases.push(case(
        "temporal-join-left-late".to_string(),
        Kind::TemporalJoin { late: true },
        1,
        false,
    ));
    let sql = |name: &str, query, insert_only, ordered| Case {
        name: format!("sql-{name}"),
        kind: Kind::Sql(SqlCase {
            query,
            insert_only,
            ordered,
        }),
        parallelism: 1,
        restore: false,
    };
    cases.extend([
        sql("group-count", Query::Count, false, true),
        sql("group-sum", Query::Sum, false, true),
        sql("group-avg", Query::Avg, false, true),
        sql("group-min", Query::Min, false, true),
        sql("group-max", Query::Max, false, true),
        sql("group-count-distinct", Query::CountDistinct, false, true),
        sql("group-sum-distinct", Query::SumDistinct, false, true),
        sql("top2-append", Query::Top2, true, true),
        sql("top2-changelog", Query::Top2, false, true),
        sql("inner-join", Query::InnerJoin, false, true),
        sql("left-join", Query::LeftJoin, false, true),
        sql("semi-join", Query::SemiJoin, false, true),
        sql("anti-join", Query::AntiJoin, false, true),
        // Insert-only rows ahead of the watermark: eddy sends a row at or behind the watermark
        // to a late side output, Flink's interval join judges lateness by its own bounds.
        Case {
            name: "interval-join".to_string(),
            ..sql("", Query::IntervalJoin, true, true)
        },
        // eddy's dedup decides in event time (once the watermark passes), Flink SQL's on
        // arrival with updates: only the tables they end with can agree.
        sql("dedup-keep-first", Query::KeepFirst, true, false),
        sql("dedup-keep-last", Query::KeepLast, true, false),
        sql(
            "cdc-debezium-rows",
            Query::DebeziumRows(debezium::Form::MINIMAL),
            false,
            true,
        ),
        sql(
            "cdc-debezium-sum",
            Query::DebeziumSum(debezium::Form::MINIMAL),
            false,
            true,
        ),
    ]);
    // Debezium as it is found in the wild: connectors' own `source` blocks, Kafka Connect's
    // wrapping, tombstones, and lines neither engine reads.
    let form = |connector, wrapped, tombstones, noise| debezium::Form {
        connector,
        wrapped,
        tombstones,
        noise,
    };
    cases.extend([
        sql(
            "cdc-debezium-mysql-rows",
            Query::DebeziumRows(form(Connector::Mysql, false, false, false)),
            false,
            true,
        ),
        sql(
            "cdc-debezium-wrapped-sum",
            Query::DebeziumSum(form(Connector::Postgres, true, false, false)),
            false,
            true,
        ),
        sql(
            "cdc-debezium-wrapped-sqlserver-rows",
            Query::DebeziumRows(form(Connector::SqlServer, true, false, false)),
            false,
            true,
        ),
        sql(
            "cdc-debezium-tombstone-sum",
            Query::DebeziumSum(form(Connector::Postgres, false, true, false)),
            false,
            true,
        ),
        sql(
            "cdc-debezium-ignore-parse-errors-rows",
            Query::DebeziumRows(form(Connector::Mysql, true, true, true)),
            false,
            true,
        ),
    ]);
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_into_what_they_say() {
        let case = window_case("session-lateness5-count-evict-count2");
        assert_eq!(case.assigner, Assigner::Session { gap_ms: 3_000 });
        assert_eq!(case.lateness_ms, 5_000);
        assert_eq!(case.trigger, TriggerKind::Count { count: 3 });
        assert_eq!(case.evictor, Some(EvictorKind::Count { keep: 2 }));
        let case = window_case("tumbling-lateness1-event-evict-count2");
        assert_eq!(case.trigger, TriggerKind::Event);
        let case = window_case("sliding-offset-lateness1-count");
        assert_eq!(case.trigger, TriggerKind::Count { count: 3 });
        assert_eq!(case.evictor, None);
        let case = window_case("tumbling-lateness1-purging-continuous");
        assert!(case.purging);
        assert_eq!(case.trigger, TriggerKind::Continuous { interval_ms: 1_000 });
        let case = window_case("sliding-lateness1-continuous-evict-time1500");
        assert_eq!(case.evictor, Some(EvictorKind::Time { keep_ms: 1_500 }));
    }

    #[test]
    fn case_names_are_unique_and_printable() {
        let cases = all();
        let names: std::collections::BTreeSet<_> = cases.iter().map(|c| c.name.clone()).collect();
        assert_eq!(names.len(), cases.len());
        for name in names {
            assert!(name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".+-".contains(c)));
        }
    }
}
