//! Where a change was read in its database's log, as each Debezium connector writes it in the
//! event's `source` block, and how two such positions lie along that log: the order the
//! replay rule needs (docs/semantics.md, "Change data capture").
//!
//! Each connector orders its positions as its own offset comparison does: PostgreSQL by
//! `lsn`; MySQL and MariaDB by binlog file number, then `pos`, then `row` (Debezium's
//! `BinlogHistoryRecordComparator`: binlogs of different base names are not comparable); SQL
//! Server by `commit_lsn`, then `change_lsn`, then `event_serial_no` (its `TxLogPosition`).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A change's place in its database's log (Debezium's `source` block).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Position {
    /// PostgreSQL: the change's place in the write-ahead log (`source.lsn`).
    Postgres {
        /// `source.lsn`.
        lsn: u64,
    },
    /// MySQL and MariaDB: binlog coordinates.
    Binlog {
        /// `source.file`: `BASE.NUMBER`, as `mysql-bin.000003`.
        file: String,
        /// `source.pos`: the event's byte offset in the file.
        pos: u64,
        /// `source.row`: the row within the event (a statement can change several).
        row: u32,
    },
    /// SQL Server: the commit's log sequence number, the change's within it, and the event's
    /// serial number within the change.
    SqlServer {
        /// `source.commit_lsn`.
        commit_lsn: SqlServerLsn,
        /// `source.change_lsn` (`None` in a snapshot).
        change_lsn: Option<SqlServerLsn>,
        /// `source.event_serial_no` (0 when absent, as in a snapshot).
        event_serial_no: u64,
    },
}

impl Position {
    /// How `self` lies against `other` along their log: `None` when the two cannot be
    /// compared (positions of different connectors, or binlogs of different base names, as
    /// after a failover to a server that names its binlog otherwise).
    pub fn log_order(&self, other: &Position) -> Option<Ordering> {
        match (self, other) {
            (Position::Postgres { lsn: a }, Position::Postgres { lsn: b }) => Some(a.cmp(b)),
            (
                Position::Binlog { file, pos, row },
                Position::Binlog {
                    file: other_file,
                    pos: other_pos,
                    row: other_row,
                },
            ) => {
                let (base, number) = binlog_file(file)?;
                let (other_base, other_number) = binlog_file(other_file)?;
                (base == other_base).then(|| (number, pos, row).cmp(&(other_number, other_pos, other_row)))
            }
            (
                Position::SqlServer {
                    commit_lsn,
                    change_lsn,
                    event_serial_no,
                },
                Position::SqlServer {
                    commit_lsn: other_commit,
                    change_lsn: other_change,
                    event_serial_no: other_serial,
                },
            ) => Some((commit_lsn, change_lsn, event_serial_no).cmp(&(other_commit, other_change, other_serial))),
            _ => None,
        }
    }

    /// The connector that writes this kind of position (`source.connector`).
    pub fn connector(&self) -> &'static str {
        match self {
            Position::Postgres { .. } => "postgresql",
            Position::Binlog { .. } => "mysql",
            Position::SqlServer { .. } => "sqlserver",
        }
    }
}

/// A binlog file name's base and number (`mysql-bin.000003`: `mysql-bin`, 3), or `None` if it
/// is not `BASE.NUMBER`.
pub fn binlog_file(file: &str) -> Option<(&str, u64)> {
    let (base, number) = file.rsplit_once('.')?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, number.parse().ok()?))
}

/// A SQL Server log sequence number: virtual log file, log block, slot (`00000027:00000758:0003`
/// in hexadecimal). Ordered as SQL Server orders them (Debezium's `Lsn` compares the ten bytes
/// unsigned, which is this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SqlServerLsn {
    /// The virtual log file's sequence number.
    pub log_file: u32,
    /// The log block's offset in it.
    pub log_block: u32,
    /// The slot in the block.
    pub slot: u16,
}

impl SqlServerLsn {
    /// Reads `VVVVVVVV:BBBBBBBB:SSSS` (hexadecimal, as Debezium writes `change_lsn` and
    /// `commit_lsn`); `None` if `text` is not that.
    pub fn parse(text: &str) -> Option<SqlServerLsn> {
        let mut parts = text.split(':');
        let mut part = |digits: usize| {
            let part = parts
                .next()
                .filter(|p| p.len() == digits && p.bytes().all(|b| b.is_ascii_hexdigit()))?;
            u32::from_str_radix(part, 16).ok()
        };
        let lsn = SqlServerLsn {
            log_file: part(8)?,
            log_block: part(8)?,
            slot: u16::try_from(part(4)?).ok()?,
        };
        parts.next().is_none().then_some(lsn)
    }
}

impl fmt::Display for SqlServerLsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}:{:08x}:{:04x}", self.log_file, self.log_block, self.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binlog(file: &str, pos: u64, row: u32) -> Position {
        Position::Binlog {
            file: file.to_string(),
            pos,
            row,
        }
    }

    fn sqlserver(commit: &str, change: Option<&str>, serial: u64) -> Position {
        Position::SqlServer {
            commit_lsn: SqlServerLsn::parse(commit).unwrap(),
            change_lsn: change.map(|c| SqlServerLsn::parse(c).unwrap()),
            event_serial_no: serial,
        }
    }

    #[test]
    fn binlog_positions_order_by_file_number_then_pos_then_row() {
        let a = binlog("mysql-bin.000003", 805, 0);
        assert_eq!(a.log_order(&binlog("mysql-bin.000003", 805, 1)), Some(Ordering::Less));
        assert_eq!(
            a.log_order(&binlog("mysql-bin.000003", 484, 7)),
            Some(Ordering::Greater)
        );
        assert_eq!(a.log_order(&binlog("mysql-bin.000004", 4, 0)), Some(Ordering::Less));
        assert_eq!(a.log_order(&a.clone()), Some(Ordering::Equal));
        // By number, not by text: the seven-digit file after `.999999` comes later.
        assert_eq!(
            binlog("mysql-bin.999999", 9, 0).log_order(&binlog("mysql-bin.1000000", 4, 0)),
            Some(Ordering::Less)
        );
        // Another base name (a failover to a server that names its binlog otherwise).
        assert_eq!(a.log_order(&binlog("other-bin.000003", 805, 0)), None);
    }

    #[test]
    fn sqlserver_positions_order_by_commit_then_change_then_serial() {
        let change = sqlserver("00000027:00000758:0005", Some("00000027:00000758:0003"), 1);
        let later_change = sqlserver("00000027:00000758:0005", Some("00000027:00000758:0004"), 1);
        let later_commit = sqlserver("00000027:00000ac0:0007", Some("00000027:00000ac0:0002"), 2);
        let snapshot = sqlserver("00000027:00000758:0005", None, 0);
        assert_eq!(change.log_order(&later_change), Some(Ordering::Less));
        assert_eq!(later_change.log_order(&later_commit), Some(Ordering::Less));
        assert_eq!(snapshot.log_order(&change), Some(Ordering::Less));
        assert_eq!(
            change.log_order(&sqlserver("00000027:00000758:0005", Some("00000027:00000758:0003"), 2)),
            Some(Ordering::Less),
            "the two events of a primary key update"
        );
        // The bytes compare unsigned: `f...` is after `0...`.
        assert_eq!(
            sqlserver("00000027:00000758:0005", None, 0).log_order(&sqlserver("ffffffff:00000000:0000", None, 0)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn positions_of_different_connectors_do_not_compare() {
        assert_eq!(Position::Postgres { lsn: 1 }.log_order(&binlog("a.1", 1, 0)), None);
        assert_eq!(
            Position::Postgres { lsn: 1 }.log_order(&Position::Postgres { lsn: 2 }),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn sqlserver_lsns_parse_and_print_as_debezium_writes_them() {
        let lsn = SqlServerLsn::parse("00000027:00000ac0:0002").unwrap();
        assert_eq!(
            lsn,
            SqlServerLsn {
                log_file: 0x27,
                log_block: 0xac0,
                slot: 2
            }
        );
        assert_eq!(lsn.to_string(), "00000027:00000ac0:0002");
        assert_eq!(SqlServerLsn::parse("00000027:00000AC0:0002"), Some(lsn));
        for bad in [
            "",
            "NULL",
            "27:ac0:2",
            "00000027:00000ac0",
            "00000027:00000ac0:0002:0",
            "0000002g:00000ac0:0002",
        ] {
            assert_eq!(SqlServerLsn::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn binlog_file_names_are_base_dot_number() {
        assert_eq!(binlog_file("mysql-bin.000003"), Some(("mysql-bin", 3)));
        assert_eq!(binlog_file("mariadb.bin.000012"), Some(("mariadb.bin", 12)));
        assert_eq!(binlog_file("mysql-bin"), None);
        assert_eq!(binlog_file("mysql-bin."), None);
        assert_eq!(binlog_file("mysql-bin.-1"), None);
        assert_eq!(binlog_file("mysql-bin.99999999999999999999999"), None);
    }
}
