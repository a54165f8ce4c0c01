//! Debezium change events as Debezium's documentation shows them (`tests/debezium/`, see its
//! README), read by `cdc::DebeziumJson` wrapped and bare, and decoded into changelogs; and
//! lines that are not events, each refused with the field named.

use eddy_engine::cdc::{
    encode_line, ChangeEvent, DebeziumError, DebeziumJson, DebeziumMode, Op, Position, SourceInfo, SqlServerLsn,
};
use eddy_engine::{run_to_end, Pipeline, Row, Scripted};
use serde::{Deserialize, Serialize};

/// The `customers` table of Debezium's examples.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
struct Customer {
    id: i32,
    first_name: String,
    last_name: String,
    email: String,
}

/// The same table for upsert form: a delete's key-only `before` reads (the other columns
/// default).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(default)]
struct CustomerByKey {
    id: i32,
    first_name: String,
    last_name: String,
    email: String,
}

fn example(name: &str) -> String {
    let path = format!("{}/tests/debezium/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The payload alone: the line Kafka Connect's JSON converter writes with schemas disabled.
fn bare(wrapped: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(wrapped).unwrap();
    value["payload"].to_string()
}

fn decode<T: serde::de::DeserializeOwned>(
    line: &str,
    mode: DebeziumMode,
) -> Result<Option<ChangeEvent<T>>, DebeziumError> {
    DebeziumJson::new(mode).decode(line)
}

/// Both forms of an example read into the same event.
fn read<T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(
    name: &str,
    mode: DebeziumMode,
) -> ChangeEvent<T> {
    let wrapped = example(name);
    let event = decode::<T>(&wrapped, mode)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .unwrap_or_else(|| panic!("{name}: a tombstone?"));
    let unwrapped = decode::<T>(&bare(&wrapped), mode).unwrap_or_else(|e| panic!("{name}, bare: {e}"));
    assert_eq!(unwrapped.as_ref(), Some(&event), "{name}: wrapped and bare differ");
    event
}

fn customer(id: i32, first_name: &str, last_name: &str, email: &str) -> Customer {
    Customer {
        id,
        first_name: first_name.into(),
        last_name: last_name.into(),
        email: email.into(),
    }
}

fn lsn(text: &str) -> SqlServerLsn {
    SqlServerLsn::parse(text).unwrap()
}

#[test]
fn mysql_examples_read_with_their_binlog_positions_in_log_order() {
    let anne = customer(1004, "Anne", "Kretchmar", "annek@noanswer.org");
    let anne_marie = customer(1004, "Anne Marie", "Kretchmar", "annek@noanswer.org");
    let binlog = |pos| Position::Binlog {
        file: "mysql-bin.000003".into(),
        pos,
        row: 0,
    };
    let create = read::<Customer>("mysql-create.json", DebeziumMode::Retract);
    let expected = ChangeEvent {
        op: Op::Create,
        before: None,
        after: Some(anne.clone()),
        source: SourceInfo {
            table: "customers".into(),
            position: binlog(154),
        },
        ts_ms: 1465491411815,
    };
    assert_eq!(create, expected);
    let update = read::<Customer>("mysql-update.json", DebeziumMode::Retract);
    assert_eq!(
        (update.op, update.before.as_ref(), update.after.as_ref()),
        (Op::Update, Some(&anne), Some(&anne_marie))
    );
    assert_eq!(update.source.position, binlog(484));
    let delete = read::<Customer>("mysql-delete.json", DebeziumMode::Retract);
    assert_eq!(
        (delete.op, delete.before.as_ref(), delete.after.as_ref()),
        (Op::Delete, Some(&anne_marie), None)
    );
    assert_eq!(delete.source.position, binlog(805));
    for (a, b) in [(&create, &update), (&update, &delete)] {
        assert!(a.source.position.log_order(&b.source.position).unwrap().is_lt());
    }
}

#[test]
fn sqlserver_examples_read_with_commit_and_change_lsns_in_log_order() {
    let create = read::<Customer>("sqlserver-create.json", DebeziumMode::Retract);
    assert_eq!(
        create.after,
        Some(customer(1005, "john", "doe", "john.doe@example.org"))
    );
    assert_eq!(
        create.source.position,
        Position::SqlServer {
            commit_lsn: lsn("00000027:00000758:0005"),
            change_lsn: Some(lsn("00000027:00000758:0003")),
            event_serial_no: 1,
        }
    );
    assert_eq!(create.ts_ms, 1559729471739);
    let update = read::<Customer>("sqlserver-update.json", DebeziumMode::Retract);
    assert_eq!(update.after.unwrap().email, "noreply@example.org");
    let delete = read::<Customer>("sqlserver-delete.json", DebeziumMode::Retract);
    assert_eq!(delete.before.as_ref().map(|c| c.id), Some(1005));
    let update = read::<Customer>("sqlserver-update.json", DebeziumMode::Retract);
    for (a, b) in [(&create, &update), (&update, &delete)] {
        assert!(a.source.position.log_order(&b.source.position).unwrap().is_lt());
    }
}

#[test]
fn postgresql_create_reads_with_its_lsn() {
    let create = read::<Customer>("postgresql-create.json", DebeziumMode::Retract);
    assert_eq!(
        create.after,
        Some(customer(1, "Anne", "Kretchmar", "annek@noanswer.org"))
    );
    assert_eq!(create.source.position, Position::Postgres { lsn: 24023128 });
    assert_eq!(create.source.table, "customers");
}

#[test]
fn replica_identity_default_is_refused_in_retract_form_with_what_to_change() {
    for (name, found) in [
        (
            "postgresql-update-replica-identity-default.json",
            "lacks columns that `after` has (`email`, `first_name`, `last_name`)",
        ),
        (
            "postgresql-delete-replica-identity-default.json",
            "does not read as a row: missing field `first_name`",
        ),
    ] {
        let error = decode::<Customer>(&example(name), DebeziumMode::Retract).unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, DebeziumError::PartialBefore { field, .. } if field == "payload.before"),
            "{message}"
        );
        assert!(message.contains(found), "{message}");
        assert!(
            message.contains("run `ALTER TABLE public.customers REPLICA IDENTITY FULL`"),
            "{message}"
        );
        let bare_error = decode::<Customer>(&bare(&example(name)), DebeziumMode::Retract).unwrap_err();
        assert!(matches!(&bare_error, DebeziumError::PartialBefore { field, .. } if field == "before"));
    }
    // Untyped rows read a key-only `before` too: its columns, compared with `after`'s, tell.
    let error = decode::<serde_json::Value>(
        &example("postgresql-update-replica-identity-default.json"),
        DebeziumMode::Retract,
    )
    .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "`payload.before` lacks columns that `after` has (`email`, `first_name`, `last_name`): PostgreSQL sends"
        ),
        "{error}"
    );
    // PostgreSQL sends no old row at all for most updates of such a table.
    let line = r#"{"before":null,"after":{"id":1},"source":{"connector":"postgresql","schema":"inventory","table":"orders","lsn":7},"op":"u","ts_ms":1}"#;
    let error = decode::<serde_json::Value>(line, DebeziumMode::Retract).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("`before` is null in a `u` event: PostgreSQL sends the whole old row")
            && error
                .to_string()
                .contains("`ALTER TABLE inventory.orders REPLICA IDENTITY FULL`"),
        "{error}"
    );
    let line = r#"{"before":null,"after":{"id":1},"source":{"connector":"mysql","table":"orders","file":"b.000001","pos":7,"row":0},"op":"u","ts_ms":1}"#;
    let error = decode::<serde_json::Value>(line, DebeziumMode::Retract).unwrap_err();
    assert!(error.to_string().contains("`binlog_row_image=FULL`"), "{error}");
}

#[test]
fn replica_identity_default_reads_in_upsert_form() {
    let update = read::<CustomerByKey>("postgresql-update-replica-identity-default.json", DebeziumMode::Upsert);
    assert_eq!(
        (update.op, update.before.as_ref()),
        (Op::Update, None),
        "an update's before is not read"
    );
    assert_eq!(update.after.unwrap().first_name, "Anne Marie");
    let delete = read::<CustomerByKey>("postgresql-delete-replica-identity-default.json", DebeziumMode::Upsert);
    assert_eq!(
        delete.before,
        Some(CustomerByKey {
            id: 1,
            ..CustomerByKey::default()
        })
    );
    // A row type that cannot read a key-only row is told how to.
    let error = decode::<Customer>(
        &example("postgresql-delete-replica-identity-default.json"),
        DebeziumMode::Upsert,
    )
    .unwrap_err();
    assert!(error.to_string().contains("`#[serde(default)]`"), "{error}");
}

#[test]
fn truncate_and_message_events_fail_as_in_flink() {
    for (name, op) in [
        ("postgresql-truncate.json", "t"),
        ("mysql-truncate.json", "t"),
        ("postgresql-message.json", "m"),
    ] {
        for (line, field) in [(example(name), "payload.op"), (bare(&example(name)), "op")] {
            let error = decode::<Customer>(&line, DebeziumMode::Retract).unwrap_err();
            assert!(
                matches!(&error, DebeziumError::Op { field: f, op: o, .. } if f == field && o == op),
                "{name}: {error}"
            );
            assert!(error.to_string().contains("ignore-parse-errors"), "{error}");
        }
    }
}

#[test]
fn tombstones_carry_no_change() {
    for line in ["null", " null ", r#"{"schema":null,"payload":null}"#] {
        assert_eq!(decode::<Customer>(line, DebeziumMode::Retract), Ok(None), "{line}");
    }
}

#[test]
fn lines_that_are_not_events_name_the_field() {
    let source = r#""source":{"connector":"mysql","table":"t","file":"mysql-bin.000003","pos":154,"row":0}"#;
    let after = r#""after":{"id":1,"first_name":"a","last_name":"b","email":"c"}"#;
    let cases = [
        ("{", "not JSON: EOF while parsing an object at line 1 column 1"),
        (
            "[1]",
            "not a Debezium change event: a JSON object (or `null`, a tombstone) was expected, found an array",
        ),
        (
            r#"{"payload":3}"#,
            "`payload`: a change event object was expected, found a number",
        ),
        (
            &format!(r#"{{"schema":{{}},"payload":{{{after},{source},"ts_ms":1}}}}"#),
            "no `payload.op`",
        ),
        (
            &format!(r#"{{"op":"x",{after},{source},"ts_ms":1}}"#),
            "`op` is \"x\" (no operation Debezium writes)",
        ),
        (
            &format!(r#"{{"op":1,{after},{source},"ts_ms":1}}"#),
            "`op`: invalid type: integer `1`, expected a string",
        ),
        (
            &format!(r#"{{"op":"c",{source},"ts_ms":1}}"#),
            "no `after` in a `c` event: its row",
        ),
        (
            &format!(r#"{{"op":"c","after":{{"id":1}},{source},"ts_ms":1}}"#),
            "`after`: missing field `first_name`",
        ),
        (
            &format!(r#"{{"op":"c",{after},"ts_ms":1}}"#),
            "no `source`: the change's table and log position",
        ),
        (
            &format!(r#"{{"op":"c",{after},"source":{{"table":"t"}},"ts_ms":1}}"#),
            "no `source.lsn`: `source` has no log position",
        ),
        (
            &format!(
                r#"{{"op":"c",{after},"source":{{"connector":"mysql","table":"t","file":"mysql-bin.000003"}},"ts_ms":1}}"#
            ),
            "no `source.pos`",
        ),
        (
            &format!(
                r#"{{"op":"c",{after},"source":{{"connector":"mysql","table":"t","file":"binlog","pos":4}},"ts_ms":1}}"#
            ),
            "`source.file`: \"binlog\" is not a binlog file name",
        ),
        (
            &format!(r#"{{"op":"c",{after},"source":{{"table":"t","file":"b.000001","pos":-4}},"ts_ms":1}}"#),
            "`source.pos`: invalid value: integer `-4`, expected u64",
        ),
        (
            &format!(
                r#"{{"op":"c",{after},"source":{{"connector":"sqlserver","table":"t","commit_lsn":"27:758:5"}},"ts_ms":1}}"#
            ),
            "`source.commit_lsn`: \"27:758:5\" is not a SQL Server LSN",
        ),
        (
            &format!(r#"{{"op":"c",{after},"source":{{"connector":"oracle","table":"t","scn":"1"}},"ts_ms":1}}"#),
            "`source.connector`: \"oracle\": eddy reads the log positions of postgresql, mysql, mariadb and sqlserver",
        ),
        (
            &format!(r#"{{"op":"c",{after},"source":{{"table":"t","lsn":1}}}}"#),
            "no `ts_ms` (nor `source.ts_ms`)",
        ),
        (
            &format!(r#"{{"op":"c",{after},"source":{{"lsn":1}},"ts_ms":1}}"#),
            "no `source.table`",
        ),
    ];
    for (line, expected) in cases {
        let error = decode::<Customer>(line, DebeziumMode::Retract).unwrap_err().to_string();
        assert!(
            error.starts_with(expected),
            "{line}\n  gave: {error}\n  want: {expected}"
        );
    }
    // `source.ts_ms` stands in for a missing `ts_ms`; `event_serial_no` may be a number or text.
    let line = format!(
        r#"{{"op":"c",{after},"source":{{"connector":"sqlserver","table":"t","ts_ms":5,"commit_lsn":"00000027:00000758:0005","change_lsn":null,"event_serial_no":2}}}}"#
    );
    let event = decode::<Customer>(&line, DebeziumMode::Retract).unwrap().unwrap();
    assert_eq!(event.ts_ms, 5);
    assert_eq!(
        event.source.position,
        Position::SqlServer {
            commit_lsn: lsn("00000027:00000758:0005"),
            change_lsn: None,
            event_serial_no: 2
        }
    );
}

#[test]
fn encoded_lines_read_back_into_their_events() {
    for name in ["mysql-update.json", "sqlserver-create.json", "postgresql-create.json"] {
        let event = read::<Customer>(name, DebeziumMode::Retract);
        for wrapped in [false, true] {
            let line = encode_line(&event, wrapped);
            assert_eq!(
                decode::<Customer>(&line, DebeziumMode::Retract),
                Ok(Some(event.clone())),
                "{line}"
            );
        }
    }
}

fn changelog(events: Vec<ChangeEvent<CustomerByKey>>, mode: DebeziumMode) -> Vec<String> {
    let pipeline = Pipeline::new();
    let script = events.into_iter().map(|e| Scripted::Record(e.ts_ms, e)).collect();
    let events = pipeline.scripted_source("changes", script);
    let rows = match mode {
        DebeziumMode::Retract => events.debezium_changelog(|c: &CustomerByKey| c.id),
        DebeziumMode::Upsert => events.debezium_upsert(|c: &CustomerByKey| c.id),
    };
    let sink = rows.collect();
    run_to_end(&pipeline.build().unwrap()).unwrap();
    sink.values()
        .into_iter()
        .map(|Row { kind, row }: Row<CustomerByKey>| format!("{} {} {}", kind.short(), row.id, row.first_name))
        .collect()
}

#[test]
fn events_decode_into_changelogs_replays_dropped() {
    let create = read::<CustomerByKey>("mysql-create.json", DebeziumMode::Retract);
    let update = read::<CustomerByKey>("mysql-update.json", DebeziumMode::Retract);
    let delete = read::<CustomerByKey>("mysql-delete.json", DebeziumMode::Retract);
    // A restarted connector replays the update and the create.
    let log = vec![create.clone(), update.clone(), create.clone(), update, delete];
    assert_eq!(
        changelog(log.clone(), DebeziumMode::Retract),
        [
            "+I 1004 Anne",
            "-U 1004 Anne",
            "+U 1004 Anne Marie",
            "-D 1004 Anne Marie"
        ]
    );
    assert_eq!(
        changelog(log, DebeziumMode::Upsert),
        [
            "+I 1004 Anne",
            "-U 1004 Anne",
            "+U 1004 Anne Marie",
            "-D 1004 Anne Marie"
        ]
    );
    // PostgreSQL's default REPLICA IDENTITY, in upsert form: retractions come from the kept row.
    let mut created = read::<CustomerByKey>("postgresql-create.json", DebeziumMode::Retract);
    created.source.position = Position::Postgres { lsn: 100 };
    let update = read::<CustomerByKey>("postgresql-update-replica-identity-default.json", DebeziumMode::Upsert);
    let delete = read::<CustomerByKey>("postgresql-delete-replica-identity-default.json", DebeziumMode::Upsert);
    assert_eq!(
        changelog(vec![created, update, delete], DebeziumMode::Upsert),
        ["+I 1 Anne", "-U 1 Anne", "+U 1 Anne Marie", "-D 1 Anne Marie"]
    );
}
