//! Debezium JSON lines, as connectors write them and Kafka Connect wraps them: what Flink's
//! `debezium-json` format reads (docs/semantics.md, "Change data capture").
//!
//! A line is an envelope (`{"before": .., "after": .., "source": .., "op": .., "ts_ms": ..}`),
//! the same inside Kafka Connect's `{"schema": .., "payload": ..}` (its JSON converter with
//! schemas enabled; told apart per line, so `debezium-json.schema-include` needs no setting),
//! or `null`, a tombstone (what a dump of the topic shows for the record that follows a
//! delete), which carries no change. `op: "t"` (truncate) and `op: "m"` (a logical decoding
//! message) are errors, as in Flink; a driver that ignores parse errors skips them. Every
//! error names the field (`payload.source.pos`); the driver adds the line.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{binlog_file, ChangeEvent, DebeziumMode, Op, Position, SourceInfo, SqlServerLsn};

/// Why a line is not a Debezium change event this reader can apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DebeziumError {
    /// The line is not JSON.
    #[error("not JSON: {reason}")]
    Json {
        /// The JSON parser's message.
        reason: String,
    },
    /// The line is JSON, but not an object.
    #[error("not a Debezium change event: a JSON object (or `null`, a tombstone) was expected, found {found}")]
    NotAnObject {
        /// What the line holds instead.
        found: &'static str,
    },
    /// A field the event needs is missing or null.
    #[error("no `{field}`{why}")]
    Missing {
        /// The field's path (`payload.source.lsn`).
        field: String,
        /// What needs it, if more than the envelope.
        why: String,
    },
    /// A field holds a value it may not.
    #[error("`{field}`: {reason}")]
    Field {
        /// The field's path.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation Flink's `debezium-json` does not read either.
    #[error(
        "`{field}` is \"{op}\" ({what}), which Flink's debezium-json format fails on too (`Unknown \"op\" value`): \
         skip such lines by ignoring parse errors (`eddy run --ignore-parse-errors`; Flink's `debezium-json.ignore-parse-errors`)"
    )]
    Op {
        /// The path of `op`.
        field: String,
        /// Its value.
        op: String,
        /// What such an event is.
        what: &'static str,
    },
    /// An update or a delete without the whole old row, which a retraction needs.
    #[error("`{field}` {found}: {advice}")]
    PartialBefore {
        /// The path of `before`.
        field: String,
        /// What it holds.
        found: String,
        /// What to change at the source, or how to read the table instead.
        advice: String,
    },
}

/// Reads Debezium JSON lines (Flink's `debezium-json` format) in a [`DebeziumMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DebeziumJson {
    /// What an update's and a delete's `before` must hold.
    pub mode: DebeziumMode,
}

impl DebeziumJson {
    /// A reader of lines in `mode`.
    pub fn new(mode: DebeziumMode) -> Self {
        DebeziumJson { mode }
    }

    /// One line: its event, `None` for a tombstone, or why it is neither.
    pub fn decode<T: DeserializeOwned>(&self, line: &str) -> Result<Option<ChangeEvent<T>>, DebeziumError> {
        let value: Value = serde_json::from_str(line).map_err(|e| DebeziumError::Json { reason: e.to_string() })?;
        let top = match value {
            Value::Null => return Ok(None),
            Value::Object(top) => top,
            other => return Err(DebeziumError::NotAnObject { found: kind(&other) }),
        };
        let envelope = match top.get("payload") {
            // Kafka Connect's wrapping; older converters wrote a tombstone as a null payload.
            Some(payload) if !top.contains_key("op") => match payload {
                Value::Null => return Ok(None),
                Value::Object(payload) => Envelope {
                    fields: payload,
                    prefix: "payload.",
                },
                other => {
                    return Err(DebeziumError::Field {
                        field: "payload".into(),
                        reason: format!("a change event object was expected, found {}", kind(other)),
                    })
                }
            },
            _ => Envelope {
                fields: &top,
                prefix: "",
            },
        };
        envelope.event(self.mode).map(Some)
    }
}

/// The envelope's fields, and the path they sit under in the line.
struct Envelope<'a> {
    fields: &'a Map<String, Value>,
    prefix: &'static str,
}

impl Envelope<'_> {
    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn event<T: DeserializeOwned>(&self, mode: DebeziumMode) -> Result<ChangeEvent<T>, DebeziumError> {
        let op_path = self.path("op");
        let code = required::<String>(self.fields, &op_path)?;
        let Some(op) = Op::from_code(&code) else {
            let what = match code.as_str() {
                "t" => "a truncate",
                "m" => "a logical decoding message",
                _ => "no operation Debezium writes",
            };
            return Err(DebeziumError::Op {
                field: op_path,
                op: code,
                what,
            });
        };
        let (source, table) = self.source()?;
        let ts_ms = match optional::<i64>(self.fields, &self.path("ts_ms"))? {
            Some(ts_ms) => ts_ms,
            None => optional::<i64>(self.source_fields()?, &self.path("source.ts_ms"))?.ok_or_else(|| {
                DebeziumError::Missing {
                    field: self.path("ts_ms"),
                    why: " (nor `source.ts_ms`): the event's time".into(),
                }
            })?,
        };
        let after = match op {
            Op::Delete => None,
            _ => Some(self.row::<T>("after", op)?),
        };
        let before = match (op, mode) {
            (Op::Update, DebeziumMode::Retract) => Some(self.old_row::<T>(op, mode, &source.position, &table)?),
            (Op::Delete, _) => Some(self.old_row::<T>(op, mode, &source.position, &table)?),
            _ => None,
        };
        Ok(ChangeEvent {
            op,
            before,
            after,
            source,
            ts_ms,
        })
    }

    /// A row the operation needs (`after`).
    fn row<T: DeserializeOwned>(&self, name: &str, op: Op) -> Result<T, DebeziumError> {
        optional::<T>(self.fields, &self.path(name))?.ok_or_else(|| DebeziumError::Missing {
            field: self.path(name),
            why: format!(" in a `{}` event: its row", op.code()),
        })
    }

    /// An update's or a delete's `before`, which must hold the whole old row in retract
    /// form; one that cannot is diagnosed as the source table's setting that causes it.
    fn old_row<T: DeserializeOwned>(
        &self,
        op: Op,
        mode: DebeziumMode,
        position: &Position,
        table: &str,
    ) -> Result<T, DebeziumError> {
        let field = self.path("before");
        let partial = |found: String| DebeziumError::PartialBefore {
            field: field.clone(),
            found,
            advice: advice(op, mode, position, table),
        };
        let before = match self.fields.get("before") {
            None | Some(Value::Null) => return Err(partial(format!("is null in a `{}` event", op.code()))),
            Some(before) => before,
        };
        if let (Some(Value::Object(old)), Some(Value::Object(new))) = (Some(before), self.fields.get("after")) {
            let missing: Vec<&str> = new
                .keys()
                .filter(|c| !old.contains_key(*c))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() && mode == DebeziumMode::Retract {
                return Err(partial(format!(
                    "lacks columns that `after` has (`{}`)",
                    missing.join("`, `")
                )));
            }
        }
        T::deserialize(before).map_err(|e| partial(format!("does not read as a row: {e}")))
    }

    fn source_fields(&self) -> Result<&Map<String, Value>, DebeziumError> {
        match self.fields.get("source") {
            Some(Value::Object(source)) => Ok(source),
            None | Some(Value::Null) => Err(DebeziumError::Missing {
                field: self.path("source"),
                why: ": the change's table and log position".into(),
            }),
            Some(other) => Err(DebeziumError::Field {
                field: self.path("source"),
                reason: format!("an object was expected, found {}", kind(other)),
            }),
        }
    }

    /// The table and position, and the table's qualified name for advice (`public.orders`).
    fn source(&self) -> Result<(SourceInfo, String), DebeziumError> {
        let source = self.source_fields()?;
        let path = |name: &str| self.path(&format!("source.{name}"));
        let connector = optional::<String>(source, &path("connector"))?;
        let kind = match connector.as_deref() {
            Some("postgresql") => "lsn",
            Some("mysql" | "mariadb") => "file",
            Some("sqlserver") => "commit_lsn",
            Some(other) => {
                return Err(DebeziumError::Field {
                    field: path("connector"),
                    reason: format!(
                        "\"{other}\": eddy reads the log positions of postgresql, mysql, mariadb and sqlserver"
                    ),
                })
            }
            None => ["lsn", "file", "commit_lsn"]
                .into_iter()
                .find(|field| source.get(*field).is_some_and(|v| !v.is_null()))
                .ok_or_else(|| DebeziumError::Missing {
                    field: path("lsn"),
                    why: ": `source` has no log position (`lsn` of PostgreSQL, `file` and `pos` of MySQL and \
                          MariaDB, or `commit_lsn` of SQL Server)"
                        .into(),
                })?,
        };
        let position = match kind {
            "lsn" => Position::Postgres {
                lsn: required(source, &path("lsn"))?,
            },
            "file" => {
                let file: String = required(source, &path("file"))?;
                if binlog_file(&file).is_none() {
                    return Err(DebeziumError::Field {
                        field: path("file"),
                        reason: format!("\"{file}\" is not a binlog file name (`BASE.NUMBER`, as mysql-bin.000003)"),
                    });
                }
                Position::Binlog {
                    file,
                    pos: required(source, &path("pos"))?,
                    row: optional(source, &path("row"))?.unwrap_or(0),
                }
            }
            _ => Position::SqlServer {
                commit_lsn: sqlserver_lsn(required(source, &path("commit_lsn"))?, &path("commit_lsn"))?,
                change_lsn: match optional::<String>(source, &path("change_lsn"))? {
                    Some(lsn) if lsn != "NULL" => Some(sqlserver_lsn(lsn, &path("change_lsn"))?),
                    _ => None,
                },
                event_serial_no: match optional::<NumberOrText>(source, &path("event_serial_no"))? {
                    None => 0,
                    Some(NumberOrText::Number(n)) => n,
                    Some(NumberOrText::Text(text)) => text.parse().map_err(|_| DebeziumError::Field {
                        field: path("event_serial_no"),
                        reason: format!("\"{text}\" is not a number"),
                    })?,
                },
            },
        };
        let table: String = required(source, &path("table"))?;
        let qualified = match optional::<String>(source, &path("schema"))? {
            Some(schema) => format!("{schema}.{table}"),
            None => table.clone(),
        };
        Ok((SourceInfo { table, position }, qualified))
    }
}

/// What to do about an update or delete without the whole old row.
fn advice(op: Op, mode: DebeziumMode, position: &Position, table: &str) -> String {
    if mode == DebeziumMode::Upsert {
        return "in upsert form a delete's `before` is read for its key: let the row type read a row of only the \
                key's columns (`#[serde(default)]` on the others)"
            .into();
    }
    let upsert = "or read the table in upsert form (`debezium_upsert`, keyed on the after-image)";
    match position {
        Position::Postgres { .. } => format!(
            "PostgreSQL sends the whole old row of an {} only for a table with REPLICA IDENTITY FULL (its \
             default, DEFAULT, sends at most the key's columns): run `ALTER TABLE {table} REPLICA IDENTITY FULL`, \
             {upsert}",
            if op == Op::Update { "update" } else { "update or delete" }
        ),
        Position::Binlog { .. } => format!(
            "MySQL and MariaDB log the whole old row only with `binlog_row_image=FULL` (MINIMAL logs the key's \
             columns): set it on the server, {upsert}"
        ),
        Position::SqlServer { .. } => format!("a retraction needs the whole old row: {upsert}"),
    }
}

/// `event_serial_no`: a number, or (as in Debezium's documentation) a number in a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

fn sqlserver_lsn(text: String, field: &str) -> Result<SqlServerLsn, DebeziumError> {
    SqlServerLsn::parse(&text).ok_or_else(|| DebeziumError::Field {
        field: field.to_string(),
        reason: format!("\"{text}\" is not a SQL Server LSN (`VVVVVVVV:BBBBBBBB:SSSS` in hexadecimal)"),
    })
}

/// `fields[name]` read as a `V`; `None` when it is missing or null.
fn optional<V: DeserializeOwned>(fields: &Map<String, Value>, path: &str) -> Result<Option<V>, DebeziumError> {
    let name = path.rsplit('.').next().unwrap_or(path);
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => V::deserialize(value).map(Some).map_err(|e| DebeziumError::Field {
            field: path.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn required<V: DeserializeOwned>(fields: &Map<String, Value>, path: &str) -> Result<V, DebeziumError> {
    optional(fields, path)?.ok_or_else(|| DebeziumError::Missing {
        field: path.to_string(),
        why: String::new(),
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The envelope as a connector writes it, fields in Debezium's order.
#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    before: &'a Option<T>,
    after: &'a Option<T>,
    source: SourceOut<'a>,
    op: &'static str,
    ts_ms: i64,
}

#[derive(Serialize)]
struct SourceOut<'a> {
    connector: &'static str,
    table: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    lsn: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pos: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    row: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit_lsn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    change_lsn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_serial_no: Option<u64>,
}

#[derive(Serialize)]
struct Wrapped<'a, T> {
    schema: SchemaOut,
    payload: EnvelopeOut<'a, T>,
}

/// The part of Kafka Connect's schema that names the envelope (readers ignore the rest).
#[derive(Serialize)]
struct SchemaOut {
    #[serde(rename = "type")]
    kind: &'static str,
    optional: bool,
    name: String,
}

/// `event` as the line its connector writes: the envelope, or with `wrapped` the envelope
/// inside Kafka Connect's `{"schema": .., "payload": ..}`. [`DebeziumJson::decode`] reads
/// it back into `event` (an update's `before` aside, in upsert form).
///
/// # Panics
///
/// If a row does not serialise to JSON (a map with keys that are not strings).
pub fn encode_line<T: Serialize>(event: &ChangeEvent<T>, wrapped: bool) -> String {
    let position = &event.source.position;
    let mut source = SourceOut {
        connector: position.connector(),
        table: &event.source.table,
        lsn: None,
        file: None,
        pos: None,
        row: None,
        commit_lsn: None,
        change_lsn: None,
        event_serial_no: None,
    };
    match position {
        Position::Postgres { lsn } => source.lsn = Some(*lsn),
        Position::Binlog { file, pos, row } => {
            source.file = Some(file);
            source.pos = Some(*pos);
            source.row = Some(*row);
        }
        Position::SqlServer {
            commit_lsn,
            change_lsn,
            event_serial_no,
        } => {
            source.commit_lsn = Some(commit_lsn.to_string());
            source.change_lsn = change_lsn.map(|lsn| lsn.to_string());
            source.event_serial_no = Some(*event_serial_no);
        }
    }
    let envelope = EnvelopeOut {
        before: &event.before,
        after: &event.after,
        source,
        op: event.op.code(),
        ts_ms: event.ts_ms,
    };
    let line = if wrapped {
        serde_json::to_string(&Wrapped {
            schema: SchemaOut {
                kind: "struct",
                optional: false,
                name: format!("{}.{}.Envelope", position.connector(), event.source.table),
            },
            payload: envelope,
        })
    } else {
        serde_json::to_string(&envelope)
    };
    line.expect("rows serialise to JSON")
}
