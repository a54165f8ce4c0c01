//! Debezium input (docs/semantics.md, "Change data capture") against references of its own:
//! positions generated along each connector's log compare as the log orders them; any event
//! reads back from its line, bare or inside Kafka Connect's wrapping, with tombstones between;
//! and the changelog of a log with connector restarts (runs of events delivered again) is the
//! changelog of the log without them, computed here change by change, in retract form from
//! whole old rows and in upsert form from PostgreSQL's key-only ones. No line panics the
//! reader.

mod common;

use std::collections::BTreeMap;

use eddy::engine::cdc::{
    encode_line, ChangeEvent, DebeziumError, DebeziumJson, DebeziumMode, Op, Position, SourceInfo, SqlServerLsn,
};
use eddy::engine::{run_to_end, Row};
use eddy::{Pipeline, Scripted};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A table's row; `#[serde(default)]` lets a key-only `before` read (upsert form).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(default)]
struct Item {
    id: u8,
    v: i64,
    note: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Connector {
    Postgres,
    Mysql,
    SqlServer,
}

/// One step along a connector's log.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// A new event (PostgreSQL: a new LSN; MySQL: a new binlog event; SQL Server: a new
    /// change in the open transaction), `by` further.
    Next { by: u64 },
    /// MySQL: another row of the same event; SQL Server: the second event of a change (a
    /// primary key update); PostgreSQL: a new LSN.
    Same,
    /// MySQL: the next binlog file; SQL Server: the next transaction; PostgreSQL: a jump.
    Rotate,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            4 => (1..5_000u64).prop_map(|by| Step::Next { by }),
            2 => Just(Step::Same),
            1 => Just(Step::Rotate),
        ],
        1..60,
    )
}

fn connector() -> impl Strategy<Value = Connector> {
    prop_oneof![
        Just(Connector::Postgres),
        Just(Connector::Mysql),
        Just(Connector::SqlServer)
    ]
}

/// A SQL Server LSN from a counter: its three parts carry into each other as the counter
/// grows (`slot` overflows into `log_block`, that into `log_file`).
fn sqlserver_lsn(counter: u64) -> SqlServerLsn {
    SqlServerLsn {
        log_file: (counter >> 48) as u32,
        log_block: (counter >> 16) as u32,
        slot: counter as u16,
    }
}

/// Positions along a connector's log, in log order, from `start` (MySQL: a binlog number
/// near the six-digit limit too). Each is past the one before.
fn log_positions(connector: Connector, start: u64, steps: &[Step]) -> Vec<Position> {
    let mut positions = Vec::with_capacity(steps.len());
    // PostgreSQL: lsn. MySQL: file, pos, row. SQL Server: commit counter, change counter, serial.
    let (mut a, mut b, mut c) = match connector {
        Connector::Postgres => (start, 0, 0),
        Connector::Mysql => ([1, 999_998, 999_999][(start % 3) as usize], 4 + start % 1_000, 0),
        Connector::SqlServer => (start + 1_000_000, start, 1),
    };
    for step in steps {
        match (connector, *step) {
            (Connector::Postgres, Step::Next { by }) => a += by,
            (Connector::Postgres, Step::Same) => a += 1,
            (Connector::Postgres, Step::Rotate) => a += 1 << 32,
            (Connector::Mysql, Step::Next { by }) => (b, c) = (b + by, 0),
            (Connector::Mysql, Step::Same) => c += 1,
            (Connector::Mysql, Step::Rotate) => (a, b, c) = (a + 1, 4, 0),
            // A change stays below its transaction's commit; the next commit is above all.
            (Connector::SqlServer, Step::Next { by }) if b + by < a => (b, c) = (b + by, 1),
            (Connector::SqlServer, Step::Same) if c == 1 => c = 2,
            (Connector::SqlServer, _) => (a, b, c) = (a + 2 + (a % 7) * (1 << 20), a + 1, 1),
        }
        positions.push(match connector {
            Connector::Postgres => Position::Postgres { lsn: a },
            Connector::Mysql => Position::Binlog {
                file: format!("mysql-bin.{a:06}"),
                pos: b,
                row: c as u32,
            },
            Connector::SqlServer => Position::SqlServer {
                commit_lsn: sqlserver_lsn(a),
                change_lsn: Some(sqlserver_lsn(b)),
                event_serial_no: c,
            },
        });
    }
    positions
}

/// The position a connector's snapshot reads carry, before the log's first.
fn snapshot_position(connector: Connector, first: &Position) -> Position {
    match (connector, first) {
        (Connector::SqlServer, Position::SqlServer { commit_lsn, .. }) => Position::SqlServer {
            commit_lsn: *commit_lsn,
            change_lsn: None,
            event_serial_no: 0,
        },
        _ => first.clone(),
    }
}

/// What happens to a key next: the generator turns it into a valid history per key.
type Action = (u8, u8, i64);

/// A log of one table: snapshot reads of some keys, then creates, updates (the value always
/// changes) and deletes, at positions along the connector's log.
fn history(connector: Connector, start: u64, steps: &[Step], actions: &[Action]) -> Vec<ChangeEvent<Item>> {
    let positions = log_positions(connector, start, steps);
    let snapshot = snapshot_position(connector, &positions[0]);
    let mut rows: BTreeMap<u8, Item> = BTreeMap::new();
    let mut events = Vec::new();
    let mut positions = positions.into_iter();
    let mut snapshot_done = false;
    for (i, &(key, action, value)) in actions.iter().enumerate() {
        let key = key % 5;
        let old = rows.get(&key).cloned();
        let (op, before, after) = match (old, action % 3) {
            // The snapshot reads the first keys, before any change.
            (None, _) if i < 3 && !snapshot_done => (Op::Read, None, Some(item(key, value))),
            (None, _) => (Op::Create, None, Some(item(key, value))),
            (Some(old), 0) => (Op::Delete, Some(old), None),
            (Some(old), _) => {
                let mut new = old.clone();
                new.v = old.v + 1 + value.rem_euclid(9);
                (Op::Update, Some(old), Some(new))
            }
        };
        match &after {
            Some(row) => rows.insert(key, row.clone()),
            None => rows.remove(&key),
        };
        snapshot_done |= op != Op::Read;
        let position = if op == Op::Read {
            snapshot.clone()
        } else {
            // Fewer steps than changes: the log ends there.
            let Some(position) = positions.next() else { break };
            position
        };
        events.push(ChangeEvent {
            op,
            before,
            after,
            source: SourceInfo {
                table: "items".into(),
                position,
            },
            ts_ms: 1_000 + i as i64,
        });
    }
    events
}

fn item(id: u8, v: i64) -> Item {
    Item {
        id,
        v,
        note: format!("n{}", v.rem_euclid(3)),
    }
}

/// The log as a restarted connector delivers it: after event `at`, the run of `len` events
/// before it again (each restart as the simulator's `connector-restart` fault does).
fn with_restarts<T: Clone>(events: &[T], restarts: &[(usize, usize)]) -> Vec<T> {
    let mut delivered = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        delivered.push(event.clone());
        for &(at, len) in restarts {
            if at % events.len().max(1) == i {
                let from = (i + 1).saturating_sub(len.max(1));
                delivered.extend(events[from..=i].iter().cloned());
            }
        }
    }
    delivered
}

/// The reference changelog: each event once, as Debezium's envelope says: `+I after`,
/// `-U before, +U after`, `-D before`; per key.
fn reference_changelog(events: &[ChangeEvent<Item>]) -> BTreeMap<u8, Vec<String>> {
    let mut changes: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for event in events {
        let show = |kind: &str, row: &Option<Item>| {
            let row = row.as_ref().expect("the generator's events have their rows");
            format!("{kind} {} {} {}", row.id, row.v, row.note)
        };
        let (key, lines) = match event.op {
            Op::Create | Op::Read => (event.after.as_ref().unwrap().id, vec![show("+I", &event.after)]),
            Op::Update => (
                event.after.as_ref().unwrap().id,
                vec![show("-U", &event.before), show("+U", &event.after)],
            ),
            Op::Delete => (event.before.as_ref().unwrap().id, vec![show("-D", &event.before)]),
        };
        changes.entry(key).or_default().extend(lines);
    }
    changes
}

/// The engine's changelog of `events` (parallelism 2), per key.
fn engine_changelog(events: Vec<ChangeEvent<Item>>, mode: DebeziumMode) -> BTreeMap<u8, Vec<String>> {
    let pipeline = Pipeline::new().with_parallelism(2);
    let script = events.into_iter().map(|e| Scripted::Record(e.ts_ms, e)).collect();
    let events = pipeline.scripted_source("changes", script);
    let rows = match mode {
        DebeziumMode::Retract => events.debezium_changelog(|i: &Item| i.id),
        DebeziumMode::Upsert => events.debezium_upsert(|i: &Item| i.id),
    };
    let sink = rows.collect();
    run_to_end(&pipeline.build().expect("a valid pipeline")).expect("runs to the end");
    let mut changes: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for Row { kind, row } in sink.values() {
        changes
            .entry(row.id)
            .or_default()
            .push(format!("{} {} {} {}", kind.short(), row.id, row.v, row.note));
    }
    changes
}

/// The lines a topic dump shows for `events`: each bare or wrapped as `wrapped` says (cycled),
/// and a tombstone after each delete.
fn lines(events: &[ChangeEvent<Item>], wrapped: &[bool]) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, event) in events.iter().enumerate() {
        lines.push(encode_line(event, wrapped[i % wrapped.len()]));
        if event.op == Op::Delete {
            lines.push("null".to_string());
        }
    }
    lines
}

fn read(lines: &[String], mode: DebeziumMode) -> Vec<ChangeEvent<Item>> {
    let json = DebeziumJson::new(mode);
    lines
        .iter()
        .filter_map(|line| json.decode(line).unwrap_or_else(|e| panic!("{line}: {e}")))
        .collect()
}

/// What PostgreSQL sends for a table with REPLICA IDENTITY DEFAULT: no old row for an update,
/// only the key's columns for a delete.
fn replica_identity_default(line: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    let envelope = if value.get("payload").is_some() {
        &mut value["payload"]
    } else {
        &mut value
    };
    match envelope["op"].as_str() {
        Some("u") => envelope["before"] = serde_json::Value::Null,
        Some("d") => envelope["before"] = serde_json::json!({ "id": envelope["before"]["id"] }),
        _ => {}
    }
    value.to_string()
}

proptest! {
    #![proptest_config(common::proptest_config("proptest-regressions/cdc.txt", 256))]

    #[test]
    fn positions_compare_as_their_log_orders_them(
        connector in connector(),
        start in 0..1_000_000u64,
        steps in steps(),
    ) {
        let positions = log_positions(connector, start, &steps);
        for (i, a) in positions.iter().enumerate() {
            for (j, b) in positions.iter().enumerate() {
                prop_assert_eq!(a.log_order(b), Some(i.cmp(&j)), "{:?} against {:?}", a, b);
            }
        }
    }

    #[test]
    fn events_read_back_from_their_lines_bare_or_wrapped(
        connector in connector(),
        start in 0..1_000_000u64,
        steps in steps(),
        actions in prop::collection::vec((any::<u8>(), any::<u8>(), -50..50i64), 1..40),
        wrapped in prop::collection::vec(any::<bool>(), 1..4),
    ) {
        let events = history(connector, start, &steps, &actions);
        prop_assert_eq!(read(&lines(&events, &wrapped), DebeziumMode::Retract), events);
    }

    #[test]
    fn restarted_connectors_change_no_changelog_in_either_form(
        connector in connector(),
        start in 0..1_000_000u64,
        steps in steps(),
        actions in prop::collection::vec((any::<u8>(), any::<u8>(), -50..50i64), 1..40),
        restarts in prop::collection::vec((any::<usize>(), 1..8usize), 0..4),
        wrapped in prop::collection::vec(any::<bool>(), 1..4),
    ) {
        let events = history(connector, start, &steps, &actions);
        let expected = reference_changelog(&events);
        let delivered = lines(&with_restarts(&events, &restarts), &wrapped);
        prop_assert_eq!(&engine_changelog(read(&delivered, DebeziumMode::Retract), DebeziumMode::Retract), &expected);
        // Upsert form, from key-only old rows: the kept rows make the same retractions.
        let key_only: Vec<String> = delivered
            .iter()
            .map(|l| if l == "null" { l.clone() } else { replica_identity_default(l) })
            .collect();
        for update in key_only.iter().filter(|l| l.contains(r#""op":"u""#)) {
            let refused = DebeziumJson::new(DebeziumMode::Retract).decode::<Item>(update);
            prop_assert!(matches!(refused, Err(DebeziumError::PartialBefore { .. })), "{:?}", refused);
        }
        prop_assert_eq!(&engine_changelog(read(&key_only, DebeziumMode::Upsert), DebeziumMode::Upsert), &expected);
    }

    #[test]
    fn no_line_panics_the_reader(line in ".{0,200}", cut in any::<prop::sample::Index>(), events in prop::collection::vec((any::<u8>(), any::<u8>(), -5..5i64), 1..4)) {
        for mode in [DebeziumMode::Retract, DebeziumMode::Upsert] {
            let json = DebeziumJson::new(mode);
            let _ = json.decode::<Item>(&line);
            let _ = json.decode::<serde_json::Value>(&line);
            // Valid lines cut anywhere, and with the arbitrary text spliced in.
            for event in history(Connector::Mysql, 7, &[Step::Next { by: 3 }; 4], &events) {
                let whole = encode_line(&event, true);
                let at = cut.index(whole.len() + 1);
                if whole.is_char_boundary(at) {
                    let _ = json.decode::<Item>(&whole[..at]);
                    let _ = json.decode::<Item>(&format!("{}{line}{}", &whole[..at], &whole[at..]));
                }
            }
        }
    }
}

/// The generators reach what matters: restarts that replay, snapshot reads, binlog files past
/// `.999999`, several rows of one binlog event, both events of a SQL Server key update.
#[test]
fn the_generators_reach_the_cases_that_matter() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut replays, mut reads, mut seven_digits, mut rows, mut serial_two) = (0, 0, 0, 0, 0);
    for _ in 0..200 {
        let (connector, start, steps, actions, restarts) = (
            connector(),
            0..1_000_000u64,
            steps(),
            prop::collection::vec((any::<u8>(), any::<u8>(), -50..50i64), 1..40),
            prop::collection::vec((any::<usize>(), 1..8usize), 0..4),
        )
            .new_tree(&mut runner)
            .unwrap()
            .current();
        let events = history(connector, start, &steps, &actions);
        replays += usize::from(with_restarts(&events, &restarts).len() > events.len());
        reads += usize::from(events.iter().any(|e| e.op == Op::Read));
        for event in &events {
            match &event.source.position {
                Position::Binlog { file, row, .. } => {
                    seven_digits += usize::from(file.len() == "mysql-bin.".len() + 7);
                    rows += usize::from(*row > 0);
                }
                Position::SqlServer { event_serial_no, .. } => serial_two += usize::from(*event_serial_no == 2),
                Position::Postgres { .. } => {}
            }
        }
    }
    assert!(replays > 60, "replays: {replays}");
    assert!(reads > 150, "snapshot reads: {reads}");
    assert!(seven_digits > 20, "binlog files past .999999: {seven_digits}");
    assert!(rows > 50, "rows of one binlog event: {rows}");
    assert!(serial_two > 20, "second events of a SQL Server change: {serial_two}");
}
