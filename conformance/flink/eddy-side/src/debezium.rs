//! The Debezium cases' input: a script's records written as the JSON lines a Debezium
//! connector writes (its own `source` block: PostgreSQL's `lsn`, MySQL's binlog `file`, `pos`
//! and `row`, SQL Server's `commit_lsn` and `change_lsn`), bare or inside Kafka Connect's
//! `{"schema": .., "payload": ..}`, with the tombstone after each delete, and for the
//! `ignore-parse-errors` case lines neither engine reads. Written here by hand, not by
//! eddy's encoder: Flink reads the same lines.

use eddy::engine::RowKind;

use crate::script::{Element, Script};

/// Whose `source` block the lines carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Connector {
    /// `{"table": "t", "lsn": N}` only (the first Debezium cases' lines).
    Minimal,
    Postgres,
    Mysql,
    SqlServer,
}

/// How a Debezium case writes its script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Form {
    pub connector: Connector,
    /// Inside Kafka Connect's `{"schema": .., "payload": ..}` (Flink:
    /// `'debezium-json.schema-include' = 'true'`).
    pub wrapped: bool,
    /// A tombstone (`null`) after each delete, as a topic dump shows Debezium's.
    pub tombstones: bool,
    /// Lines that are no change either engine applies (a truncate, a logical decoding
    /// message, a tombstone, an update without its old row, an event without `op`, a cut
    /// line) after every third event (both: `ignore-parse-errors`).
    pub noise: bool,
}

impl Form {
    pub const MINIMAL: Form = Form {
        connector: Connector::Minimal,
        wrapped: false,
        tombstones: false,
        noise: false,
    };
}

/// Kafka Connect's schema of the envelope (readers ignore it; written as the JSON converter
/// writes it for a table `(k STRING, ts BIGINT, v BIGINT)`).
const SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"struct","fields":[{"type":"string","optional":false,"field":"k"},{"type":"int64","optional":true,"field":"ts"},{"type":"int64","optional":true,"field":"v"}],"optional":true,"name":"shop.t.Value","field":"before"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"k"},{"type":"int64","optional":true,"field":"ts"},{"type":"int64","optional":true,"field":"v"}],"optional":true,"name":"shop.t.Value","field":"after"},{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"table"}],"optional":false,"name":"io.debezium.connector.source.Source","field":"source"},{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}],"optional":false,"name":"shop.t.Envelope","version":1}"#;

/// The `source` block of the `n`-th event (from 0), at `ts_ms`.
fn source(connector: Connector, n: usize, ts_ms: i64) -> String {
    let common = format!(r#""version":"2.7.0.Final","name":"shop","ts_ms":{ts_ms},"snapshot":"false","db":"shop""#);
    match connector {
        Connector::Minimal => format!(r#"{{"table":"t","lsn":{}}}"#, n + 1),
        Connector::Postgres => {
            let lsn = 24_023_128 + 88 * n;
            format!(
                r#"{{{common},"connector":"postgresql","sequence":"[\"{}\",\"{lsn}\"]","schema":"public","table":"t","txId":{},"lsn":{lsn},"xmin":null}}"#,
                lsn - 40,
                555 + n
            )
        }
        // A new binlog file every 7 events; every third event a second row of the one before.
        Connector::Mysql => {
            let (file, event) = (3 + n / 7, n % 7);
            let (pos, row) = if event % 3 == 2 {
                (154 + 331 * (event - 1), 1)
            } else {
                (154 + 331 * event, 0)
            };
            format!(
                r#"{{{common},"connector":"mysql","table":"t","server_id":223344,"gtid":null,"file":"mysql-bin.{file:06}","pos":{pos},"row":{row},"thread":7,"query":null}}"#
            )
        }
        // A transaction of two changes per commit.
        Connector::SqlServer => format!(
            r#"{{{common},"connector":"sqlserver","schema":"dbo","table":"t","change_lsn":"00000027:{:08x}:{:04x}","commit_lsn":"00000027:{:08x}:0005","event_serial_no":"1"}}"#,
            0x758 + n / 2 * 0x10,
            n % 2 + 2,
            0x758 + n / 2 * 0x10
        ),
    }
}

fn envelope(form: Form, body: String) -> String {
    if form.wrapped {
        format!(r#"{{"schema":{SCHEMA},"payload":{body}}}"#)
    } else {
        body
    }
}

/// A line of noise after the `n`-th event.
fn noise(form: Form, n: usize, ts_ms: i64) -> String {
    let source = source(form.connector, n, ts_ms);
    match (n / 3) % 6 {
        0 => "null".to_string(),
        1 => envelope(
            form,
            format!(r#"{{"before":null,"after":null,"source":{source},"op":"t","ts_ms":{ts_ms}}}"#),
        ),
        2 => envelope(
            form,
            format!(r#"{{"source":{source},"op":"m","ts_ms":{ts_ms},"message":{{"prefix":"eddy","content":"Ymfy"}}}}"#),
        ),
        3 => envelope(
            form,
            format!(
                r#"{{"before":null,"after":{{"k":"zz","ts":{ts_ms},"v":1}},"source":{source},"op":"u","ts_ms":{ts_ms}}}"#
            ),
        ),
        4 => envelope(
            form,
            format!(r#"{{"before":null,"after":{{"k":"zz","ts":{ts_ms},"v":1}},"source":{source},"ts_ms":{ts_ms}}}"#),
        ),
        _ => r#"{"before":null,"after":{"k":"zz","#.to_string(),
    }
}

/// The script's records as Debezium change events, one JSON line each (its watermarks left
/// out): `+I` a create, `-U` then `+U` one update, `-D` (or a `-U` alone) a delete, a `+U`
/// alone a create; log positions increase along the script.
pub fn lines(script: &Script, form: Form) -> Vec<String> {
    let row = |key: &str, ts: i64, value: i64| format!(r#"{{"k":"{key}","ts":{ts},"v":{value}}}"#);
    let records: Vec<(&str, i64, i64, RowKind)> = script
        .elements
        .iter()
        .filter_map(|e| match e {
            Element::Record { key, ts, value, kind } => Some((key.as_str(), *ts, *value, *kind)),
            Element::Watermark(_) | Element::Savepoint => None,
        })
        .collect();
    let mut lines = Vec::new();
    let mut events = 0;
    let mut i = 0;
    while i < records.len() {
        let (key, ts, value, kind) = records[i];
        let next_after = records
            .get(i + 1)
            .filter(|next| kind == RowKind::UpdateBefore && next.3 == RowKind::UpdateAfter);
        let (op, before, after, ts_ms) = match (kind, next_after) {
            (RowKind::UpdateBefore, Some(&(k2, ts2, v2, _))) => {
                i += 1;
                ("u", row(key, ts, value), row(k2, ts2, v2), ts2)
            }
            (RowKind::Insert | RowKind::UpdateAfter, _) => ("c", "null".to_string(), row(key, ts, value), ts),
            _ => ("d", row(key, ts, value), "null".to_string(), ts),
        };
        let source = source(form.connector, events, ts_ms);
        let body = match form.connector {
            Connector::Minimal => {
                format!(r#"{{"before":{before},"after":{after},"op":"{op}","source":{source},"ts_ms":{ts_ms}}}"#)
            }
            _ => format!(
                r#"{{"before":{before},"after":{after},"source":{source},"op":"{op}","ts_ms":{ts_ms},"ts_us":{},"transaction":null}}"#,
                ts_ms * 1_000
            ),
        };
        lines.push(envelope(form, body));
        if form.tombstones && op == "d" {
            lines.push("null".to_string());
        }
        if form.noise && events % 3 == 2 {
            lines.push(noise(form, events, ts_ms));
        }
        events += 1;
        i += 1;
    }
    lines
}

/// What Flink reads of `lines`: the same, but a tombstone as Kafka hands it to a format, an
/// empty message (an empty line of the file), unless the case ignores parse errors (then
/// Flink reads the `null` line and skips it as one).
pub fn flink_lines(lines: &[String], form: Form) -> Vec<String> {
    lines
        .iter()
        .map(|line| {
            if line == "null" && !form.noise {
                String::new()
            } else {
                line.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_are_one_event_and_positions_are_the_connectors() {
        let script = Script::parse("r a 1 2\nw 5\nr a 1 2 -U\nr a 7 3 +U\nr a 7 3 -D\n").unwrap();
        assert_eq!(
            lines(&script, Form::MINIMAL),
            vec![
                r#"{"before":null,"after":{"k":"a","ts":1,"v":2},"op":"c","source":{"table":"t","lsn":1},"ts_ms":1}"#,
                r#"{"before":{"k":"a","ts":1,"v":2},"after":{"k":"a","ts":7,"v":3},"op":"u","source":{"table":"t","lsn":2},"ts_ms":7}"#,
                r#"{"before":{"k":"a","ts":7,"v":3},"after":null,"op":"d","source":{"table":"t","lsn":3},"ts_ms":7}"#,
            ]
        );
        let form = Form {
            connector: Connector::Mysql,
            wrapped: true,
            tombstones: true,
            noise: false,
        };
        let written = lines(&script, form);
        assert_eq!(written.len(), 4, "a tombstone after the delete");
        assert!(
            written[0].starts_with(r#"{"schema":{"type":"struct""#),
            "{}",
            written[0]
        );
        assert!(
            written[1].contains(r#""file":"mysql-bin.000003","pos":485,"row":0"#),
            "{}",
            written[1]
        );
        assert!(
            written[2].contains(r#""file":"mysql-bin.000003","pos":485,"row":1"#),
            "{}",
            written[2]
        );
        assert_eq!(written[3], "null");
        assert_eq!(flink_lines(&written, form)[3], "");
    }

    /// Every line eddy's reader takes reads, and the noise is exactly what it refuses (or a
    /// tombstone).
    #[test]
    fn every_connector_reads_and_the_noise_is_refused() {
        // 18 events: a noise line of each kind after every third.
        let text: String = (0..16).map(|i| format!("r k{i} {i} {i}\n")).collect();
        let script = Script::parse(&(text + "r k0 0 0 -U\nr k0 1 1 +U\nr k1 1 1 -D\n")).unwrap();
        let json = eddy::engine::cdc::DebeziumJson::default();
        for connector in [
            Connector::Minimal,
            Connector::Postgres,
            Connector::Mysql,
            Connector::SqlServer,
        ] {
            for wrapped in [false, true] {
                let form = Form {
                    connector,
                    wrapped,
                    tombstones: true,
                    noise: true,
                };
                let (mut events, mut refused) = (0, 0);
                for line in lines(&script, form) {
                    match json.decode::<serde_json::Value>(&line) {
                        Ok(Some(_)) => events += 1,
                        Ok(None) => {}
                        Err(_) => refused += 1,
                    }
                }
                assert_eq!((events, refused), (18, 5), "{form:?}");
            }
        }
    }
}
