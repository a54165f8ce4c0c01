//! The live runtime's PostgreSQL sink: the database half of the two-phase commit whose
//! decisions `eddy_engine::prepared` makes (docs/live.md, "Into PostgreSQL").
//!
//! Each sink task has its own connection. At a checkpoint's barrier it writes the lines
//! since the last barrier in one transaction and prepares it (`PREPARE TRANSACTION
//! 'eddy:JOB:CHECKPOINT:TASK'`); when the checkpoint completes it runs `COMMIT PREPARED`.
//! After a restore it lists the job's prepared transactions (`pg_prepared_xacts`) and lets
//! the protocol decide each. Upsert outputs (a table with a primary key) write with
//! `INSERT ... ON CONFLICT ... DO UPDATE`, append outputs insert. Lines are rows, or changes of
//! rows (`+I ROW`, `-U ROW`, `+U ROW`, `-D ROW`): with a primary key, `-D` deletes its key's row
//! and `-U` is replaced by the `+U` that follows it; a table without one takes inserts only.
//!
//! The `postgres` client runs its own small runtime, which must not be entered from a tokio
//! worker: every statement runs on a scoped thread of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use postgres::{Client, NoTls};

use eddy_engine::lines::{LineCommitter, LiveTable};
use eddy_engine::{DatabaseError, PreparedTransactions, Record, TaskInfo, TransactionId};

/// Why the database cannot take the run's output; each names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    #[error("--postgres {url}: not a PostgreSQL connection URL: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "cannot connect to PostgreSQL at {url}: {reason} (is the server running, and do the host, port, \
         user and database in --postgres name it?)"
    )]
    Connect { url: String, reason: String },
    #[error(
        "PostgreSQL at {url} has max_prepared_transactions = {setting}: the exactly-once sink prepares one \
         transaction per sink task and checkpoint, so it must be at least {needed} (set \
         max_prepared_transactions = 64 in postgresql.conf, or start the server with \
         -c max_prepared_transactions=64, then restart it)"
    )]
    NoPreparedTransactions { url: String, setting: i64, needed: i64 },
    #[error("--table `{0}`: a table name is letters, digits and `_`, not starting with a digit")]
    TableName(String),
    #[error("PostgreSQL table {table}: {reason}")]
    Table { table: String, reason: String },
}

/// The run's output table in PostgreSQL, shared by its sink tasks.
#[derive(Clone)]
pub struct PostgresOutput {
    shared: Arc<Shared>,
}

struct Shared {
    config: postgres::Config,
    table: String,
    /// The job's name in transaction ids: `eddy:JOB:CHECKPOINT:TASK`.
    job: String,
    /// The statement that writes one transaction's lines (`$1`: a JSON array of them).
    insert: String,
    /// Deletes the rows whose primary key is in a JSON array of rows (`None` without a key).
    delete: Option<String>,
    /// Key columns: lines of one transaction with the same key keep the last.
    primary_key: Vec<String>,
    /// The first failed statement: the run stops before it stores the next checkpoint, or
    /// after the notification of the last one.
    failure: Mutex<Option<String>>,
    committed: AtomicU64,
}

/// Runs `f` on a thread of its own (the client's runtime cannot start on a tokio worker).
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// The error and its causes (the client's own message hides why a connection failed).
fn chain(error: &postgres::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 48
}

impl PostgresOutput {
    /// Connects to `url`, checks that it can prepare transactions, and creates `table` from
    /// `schema` unless it exists (an existing table is used as it is: its primary key, if
    /// any, makes the writes upserts).
    pub fn connect(url: &str, table: &str, schema: &LiveTable) -> Result<Self, PostgresError> {
        if !is_identifier(table) {
            return Err(PostgresError::TableName(table.to_string()));
        }
        let mut config: postgres::Config = url.parse().map_err(|e: postgres::Error| PostgresError::Url {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("eddy");
        let table = table.to_ascii_lowercase();
        let connect_error = |e: postgres::Error| PostgresError::Connect {
            url: url.to_string(),
            reason: chain(&e),
        };
        let table_error = |e: postgres::Error| PostgresError::Table {
            table: table.clone(),
            reason: chain(&e),
        };
        let (primary_key, columns) = off_runtime(|| -> Result<(Vec<String>, Vec<String>), PostgresError> {
            let mut client = config.connect(NoTls).map_err(connect_error)?;
            let setting: String = client
                .query_one("SELECT current_setting('max_prepared_transactions')", &[])
                .map_err(connect_error)?
                .get(0);
            let setting: i64 = setting.trim().parse().unwrap_or(0);
            // One prepared transaction per sink task and checkpoint, two checkpoints at most.
            let needed = 8;
            if setting < needed {
                return Err(PostgresError::NoPreparedTransactions {
                    url: url.to_string(),
                    setting,
                    needed,
                });
            }
            let columns: Vec<String> = schema
                .columns
                .iter()
                .map(|(name, kind)| format!("{name} {}", kind.sql()))
                .collect();
            let key = if schema.primary_key.is_empty() {
                String::new()
            } else {
                format!(", PRIMARY KEY ({})", schema.primary_key.join(", "))
            };
            client
                .batch_execute(&format!(
                    "CREATE TABLE IF NOT EXISTS {table} ({}{key})",
                    columns.join(", ")
                ))
                .map_err(table_error)?;
            let primary_key = client
                .query(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a \
                     ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                     WHERE i.indrelid = $1::text::regclass AND i.indisprimary ORDER BY a.attnum",
                    &[&table],
                )
                .map_err(table_error)?
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect();
            let columns = client
                .query(
                    "SELECT attname FROM pg_attribute WHERE attrelid = $1::text::regclass \
                     AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    &[&table],
                )
                .map_err(table_error)?
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect();
            Ok((primary_key, columns))
        })?;
        let mut insert =
            format!("INSERT INTO {table} SELECT * FROM json_populate_recordset(NULL::{table}, $1::text::json)");
        if !primary_key.is_empty() {
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !primary_key.contains(c))
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            insert.push_str(&format!(" ON CONFLICT ({}) ", primary_key.join(", ")));
            insert.push_str(&if updates.is_empty() {
                "DO NOTHING".to_string()
            } else {
                format!("DO UPDATE SET {}", updates.join(", "))
            });
        }
        let delete = (!primary_key.is_empty()).then(|| {
            let key = primary_key.join(", ");
            format!(
                "DELETE FROM {table} WHERE ({key}) IN \
                 (SELECT {key} FROM json_populate_recordset(NULL::{table}, $1::text::json))"
            )
        });
        Ok(PostgresOutput {
            shared: Arc::new(Shared {
                config,
                job: table.clone(),
                table,
                insert,
                delete,
                primary_key,
                failure: Mutex::new(None),
                committed: AtomicU64::new(0),
            }),
        })
    }

    /// A run with no checkpoint to restore starts over: it rolls back the job's prepared
    /// transactions and empties the table (which belongs to the job, as an output file does).
    pub fn start_over(&self) -> Result<(), PostgresError> {
        let shared = &self.shared;
        let failed = |e: postgres::Error| PostgresError::Table {
            table: shared.table.clone(),
            reason: chain(&e),
        };
        off_runtime(|| {
            let mut client = shared.config.connect(NoTls).map_err(failed)?;
            let prefix = format!("eddy:{}:", shared.job);
            for row in client
                .query(
                    "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)",
                    &[&prefix],
                )
                .map_err(failed)?
            {
                let gid: String = row.get(0);
                client
                    .batch_execute(&format!("ROLLBACK PREPARED '{gid}'"))
                    .map_err(failed)?;
            }
            client
                .batch_execute(&format!("DELETE FROM {}", shared.table))
                .map_err(failed)
        })
    }

    pub fn table(&self) -> &str {
        &self.shared.table
    }

    /// The committer the live pipeline's sinks write through: a connection per sink task.
    pub fn committer(&self) -> LineCommitter {
        let shared = Arc::clone(&self.shared);
        LineCommitter::prepared(move |_task: &TaskInfo| {
            Box::new(SinkConnection {
                shared: Arc::clone(&shared),
                client: None,
            }) as Box<dyn PreparedTransactions<String>>
        })
    }

    /// Transactions this process committed.
    pub fn committed(&self) -> u64 {
        self.shared.committed.load(Ordering::Relaxed)
    }

    /// The first statement that failed since the last call, if any.
    pub fn take_failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("postgres failure poisoned").take()
    }
}

/// One sink task's connection, opened at its first statement (and again after one failed).
struct SinkConnection {
    shared: Arc<Shared>,
    client: Option<Client>,
}

impl Drop for SinkConnection {
    /// Closing a connection runs the client's runtime too: not on a tokio worker.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// PostgreSQL's `undefined_object`: `COMMIT PREPARED` or `ROLLBACK PREPARED` of an id that
/// is not prepared (here: committed before, or never prepared).
const UNDEFINED_OBJECT: &str = "42704";

impl SinkConnection {
    fn gid(&self, id: TransactionId) -> String {
        format!("eddy:{}:{}:{}", self.shared.job, id.checkpoint, id.sink_task)
    }

    /// Runs `statements` on this task's connection; a failure is recorded (the run stops
    /// at the next checkpoint) and tells the protocol whether the statement took effect.
    fn run<R: Send>(
        &mut self,
        what: &str,
        statements: impl FnOnce(&mut Client) -> Result<R, postgres::Error> + Send,
    ) -> Result<R, DatabaseError> {
        let shared = &self.shared;
        let client = &mut self.client;
        let result = off_runtime(move || {
            if client.is_none() {
                *client = Some(shared.config.connect(NoTls)?);
            }
            statements(client.as_mut().expect("connected above"))
        });
        result.map_err(|e| {
            let message = format!("{what}: {}", chain(&e));
            let mut failure = self.shared.failure.lock().expect("postgres failure poisoned");
            failure.get_or_insert_with(|| message.clone());
            match e.as_db_error() {
                Some(_) => DatabaseError::Refused(message),
                None => {
                    // No answer: the connection is gone; the next statement reconnects.
                    self.client = None;
                    DatabaseError::Unavailable(message)
                }
            }
        })
    }

    /// Runs `COMMIT PREPARED` or `ROLLBACK PREPARED`; an id not prepared is not an error.
    fn finish(&mut self, verb: &str, id: TransactionId) -> Result<(), DatabaseError> {
        let statement = format!("{verb} PREPARED '{}'", self.gid(id));
        self.run(&statement.clone(), move |client| {
            match client.batch_execute(&statement) {
                Err(e) if e.code().is_some_and(|c| c.code() == UNDEFINED_OBJECT) => Ok(()),
                other => other,
            }
        })
    }
}

impl PreparedTransactions<String> for SinkConnection {
    fn prepare(&mut self, id: TransactionId, records: &[Record<String>]) -> Result<(), DatabaseError> {
        let (rows, deleted) = rows_json(records, &self.shared.primary_key).map_err(|reason| {
            let message = format!("an output line cannot be written: {reason}");
            let mut failure = self.shared.failure.lock().expect("postgres failure poisoned");
            failure.get_or_insert_with(|| message.clone());
            DatabaseError::Refused(message)
        })?;
        let insert = self.shared.insert.clone();
        let delete = self.shared.delete.clone();
        let prepare = format!("PREPARE TRANSACTION '{}'", self.gid(id));
        self.run(&prepare.clone(), move |client| {
            client.batch_execute("BEGIN")?;
            let deleted = match (&delete, deleted) {
                (Some(delete), Some(deleted)) => client.execute(delete.as_str(), &[&deleted]).map(|_| ()),
                _ => Ok(()),
            };
            let written = deleted
                .and_then(|_| client.execute(insert.as_str(), &[&rows]))
                .and_then(|_| client.batch_execute(&prepare));
            if written.is_err() {
                let _ = client.batch_execute("ROLLBACK");
            }
            written
        })
    }

    fn commit_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError> {
        self.finish("COMMIT", id)?;
        self.shared.committed.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn rollback_prepared(&mut self, id: TransactionId) -> Result<(), DatabaseError> {
        self.finish("ROLLBACK", id)
    }

    fn fail(&mut self, error: DatabaseError) {
        // The run stops before the checkpoint in flight is stored; a restart recovers.
        let mut failure = self.shared.failure.lock().expect("postgres failure poisoned");
        failure.get_or_insert_with(|| error.to_string());
    }

    fn prepared(&mut self) -> Result<Vec<TransactionId>, DatabaseError> {
        let prefix = format!("eddy:{}:", self.shared.job);
        let gids: Vec<String> = self.run("listing pg_prepared_xacts", move |client| {
            let rows = client.query(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, $1)",
                &[&prefix],
            )?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })?;
        let mut ids: Vec<TransactionId> = gids.iter().filter_map(|gid| parse_gid(gid)).collect();
        ids.sort_unstable();
        Ok(ids)
    }
}

/// The checkpoint and sink task of `eddy:JOB:CHECKPOINT:TASK`.
fn parse_gid(gid: &str) -> Option<TransactionId> {
    let mut parts = gid.rsplitn(3, ':');
    let sink_task = parts.next()?.parse().ok()?;
    let checkpoint = parts.next()?.parse().ok()?;
    Some(TransactionId { checkpoint, sink_task })
}

/// The changelog lines of one transaction as the rows to write (one JSON array) and the
/// rows whose keys to delete first (`None` if none). With a primary key, only each key's
/// last change counts (one statement cannot update a row twice): a row, or its deletion.
fn rows_json(records: &[Record<String>], primary_key: &[String]) -> Result<(String, Option<String>), String> {
    let mut last: Vec<(bool, serde_json::Value)> = Vec::with_capacity(records.len());
    let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
    for record in records {
        let line = record.value.as_str();
        // A plain line (a final row) is an insert.
        let (kind, row) = match line.split_once(' ') {
            Some((kind, row)) if kind.starts_with(['+', '-']) => (kind, row),
            _ => ("+I", line),
        };
        let written = match kind {
            "+I" | "+U" => true,
            // The `+U` that follows replaces the row.
            "-U" if !primary_key.is_empty() => continue,
            "-D" if !primary_key.is_empty() => false,
            "-U" | "-D" => return Err(format!("`{line}` retracts a row of a table without a primary key")),
            _ => return Err(format!("`{kind}` is not a row kind (+I, -U, +U or -D) in `{line}`")),
        };
        let row: serde_json::Value = serde_json::from_str(row).map_err(|e| format!("`{row}`: {e}"))?;
        if !row.is_object() {
            return Err(format!("`{row}` is not a JSON object"));
        }
        if primary_key.is_empty() {
            last.push((written, row));
            continue;
        }
        let key: Vec<String> = primary_key.iter().map(|c| row[c.as_str()].to_string()).collect();
        match by_key.get(&key.join("\u{1f}")) {
            Some(&at) => last[at] = (written, row),
            None => {
                by_key.insert(key.join("\u{1f}"), last.len());
                last.push((written, row));
            }
        }
    }
    // Every key written or deleted here loses its old row first; then the rows go in.
    let touched: Vec<serde_json::Value> = if primary_key.is_empty() {
        Vec::new()
    } else {
        last.iter().map(|(_, row)| row.clone()).collect()
    };
    let rows: Vec<serde_json::Value> = last.into_iter().filter(|(w, _)| *w).map(|(_, row)| row).collect();
    let deleted = (!touched.is_empty()).then(|| serde_json::Value::Array(touched).to_string());
    Ok((serde_json::Value::Array(rows).to_string(), deleted))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_read_back_and_lines_keep_the_last_per_key() {
        assert_eq!(
            parse_gid("eddy:page_views:12:3"),
            Some(TransactionId {
                checkpoint: 12,
                sink_task: 3
            })
        );
        assert_eq!(parse_gid("eddy:other"), None);
        let line = |s: &str| Record::new(0, s.to_string());
        let (rows, deleted) = rows_json(
            &[
                line(r#"+I {"k":1,"v":1}"#),
                line(r#"+I {"k":2,"v":1}"#),
                line(r#"-U {"k":1,"v":1}"#),
                line(r#"+U {"k":1,"v":2}"#),
                line(r#"+I {"k":3,"v":1}"#),
                line(r#"-D {"k":3,"v":1}"#),
            ],
            &["k".to_string()],
        )
        .unwrap();
        assert_eq!(rows, r#"[{"k":1,"v":2},{"k":2,"v":1}]"#);
        assert_eq!(
            deleted.as_deref(),
            Some(r#"[{"k":1,"v":2},{"k":2,"v":1},{"k":3,"v":1}]"#)
        );
        let (rows, deleted) = rows_json(&[line(r#"+I {"k":1}"#), line(r#"+I {"k":1}"#)], &[]).unwrap();
        assert_eq!((rows.as_str(), deleted), (r#"[{"k":1},{"k":1}]"#, None));
        assert!(rows_json(&[line("+I [1]")], &[]).is_err());
        assert_eq!(rows_json(&[line(r#"{"k":1}"#)], &[]).unwrap().0, r#"[{"k":1}]"#);
        assert!(rows_json(&[line(r#"-D {"k":1}"#)], &[]).is_err());
        assert!(is_identifier("page_views") && !is_identifier("1x") && !is_identifier("a;drop"));
    }
}
