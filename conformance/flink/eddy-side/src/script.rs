//! Scripts: the records and watermarks a source emits, in order, and the seeded generator
//! that writes them.
//!
//! Both engines read a script the same way: each record with its timestamp, each watermark
//! exactly where it stands. The text form (`r KEY TS VALUE [KIND]`, `w TS`, one per line) is
//! what the Flink side reads and what a disagreement shows. A record's kind matters to the
//! changelog cases only, which read the script as a changelog of rows `(key, ts, value)`.

use std::collections::BTreeSet;
use std::fmt;

use eddy::engine::RowKind;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One element of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Element {
    Record {
        key: String,
        ts: i64,
        value: i64,
        kind: RowKind,
    },
    Watermark(i64),
    /// The restore point of a `restore-` case (`s`): both engines take a savepoint (eddy a
    /// checkpoint) once everything before it is processed and restart from it.
    Savepoint,
}

impl Element {
    fn insert(key: &str, ts: i64, value: i64) -> Element {
        Element::Record {
            key: key.to_string(),
            ts,
            value,
            kind: RowKind::Insert,
        }
    }
}

/// A script: strictly increasing watermarks between records (a watermark that did not advance
/// would reach neither engine's operators, so the generator writes none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    pub elements: Vec<Element>,
}

impl Script {
    /// The script's watermarks, in order.
    pub fn watermarks(&self) -> Vec<i64> {
        self.elements
            .iter()
            .filter_map(|e| match e {
                Element::Watermark(t) => Some(*t),
                Element::Record { .. } | Element::Savepoint => None,
            })
            .collect()
    }

    /// Where the script restores: the number of elements (records and watermarks) before its
    /// `s`, and the last watermark before it (`i64::MIN` if none).
    pub fn savepoint(&self) -> Option<(usize, i64)> {
        let at = self.elements.iter().position(|e| *e == Element::Savepoint)?;
        let before = &self.elements[..at];
        let watermark = before.iter().fold(i64::MIN, |w, e| match e {
            Element::Watermark(t) => *t,
            _ => w,
        });
        Some((
            at - before.iter().filter(|e| **e == Element::Savepoint).count(),
            watermark,
        ))
    }

    /// The watermark epoch of an output that came after watermark `last_watermark` (the last
    /// one its task saw, `i64::MIN` if none): the number of the script's watermarks up to it,
    /// and one more than all of them for the end of input (`i64::MAX`).
    pub fn epoch(&self, last_watermark: i64) -> usize {
        let watermarks = self.watermarks();
        if last_watermark == i64::MAX {
            return watermarks.len() + 1;
        }
        watermarks.iter().filter(|w| **w <= last_watermark).count()
    }

    /// Whether, read as a changelog, every retraction (`-U`, `-D`) retracts a row that is
    /// there: the shrinker keeps changelog scripts valid.
    pub fn is_valid_changelog(&self) -> bool {
        let mut rows: Vec<(&str, i64, i64)> = Vec::new();
        for e in &self.elements {
            if let Element::Record { key, ts, value, kind } = e {
                let row = (key.as_str(), *ts, *value);
                if kind.adds() {
                    rows.push(row);
                } else if let Some(at) = rows.iter().position(|r| *r == row) {
                    rows.remove(at);
                } else {
                    return false;
                }
            }
        }
        true
    }

    /// Whether a restore case can run it: one restore point (`s`), and right after it a
    /// watermark or the end (see `with_savepoint`). The shrinker keeps restore scripts so.
    pub fn restores_cleanly(&self) -> bool {
        let marks: Vec<usize> = (0..self.elements.len())
            .filter(|&i| self.elements[i] == Element::Savepoint)
            .collect();
        match marks[..] {
            [at] => matches!(self.elements.get(at + 1), None | Some(Element::Watermark(_))),
            _ => false,
        }
    }

    /// The script with every timestamp and watermark moved by `by`.
    pub fn shifted(&self, by: i64) -> Script {
        let elements = self
            .elements
            .iter()
            .map(|e| match e {
                Element::Record { key, ts, value, kind } => Element::Record {
                    key: key.clone(),
                    ts: ts + by,
                    value: *value,
                    kind: *kind,
                },
                Element::Watermark(t) => Element::Watermark(t + by),
                Element::Savepoint => Element::Savepoint,
            })
            .collect();
        Script { elements }
    }

    /// Reads the text form back (a script printed by a disagreement, to replay it).
    pub fn parse(text: &str) -> Result<Script, String> {
        let mut elements = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| -> Result<i64, String> {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .ok_or_else(|| format!("bad script line: {line}"))
            };
            elements.push(match fields[0] {
                "w" => Element::Watermark(number(1)?),
                "s" => Element::Savepoint,
                "r" if fields.len() >= 4 => Element::Record {
                    key: fields[1].to_string(),
                    ts: number(2)?,
                    value: number(3)?,
                    kind: match fields.get(4) {
                        None => RowKind::Insert,
                        Some(kind) => RowKind::from_short(kind).ok_or_else(|| format!("bad row kind: {line}"))?,
                    },
                },
                _ => return Err(format!("bad script line: {line}")),
            });
        }
        Ok(Script { elements })
    }

    /// The script without the elements at `range` (for the shrinker).
    pub fn without(&self, range: std::ops::Range<usize>) -> Script {
        let mut elements = self.elements.clone();
        elements.drain(range);
        Script { elements }
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.elements {
            match e {
                Element::Record {
                    key,
                    ts,
                    value,
                    kind: RowKind::Insert,
                } => writeln!(f, "r {key} {ts} {value}")?,
                Element::Record { key, ts, value, kind } => writeln!(f, "r {key} {ts} {value} {}", kind.short())?,
                Element::Watermark(t) => writeln!(f, "w {t}")?,
                Element::Savepoint => writeln!(f, "s")?,
            }
        }
        Ok(())
    }
}

/// What the generator aims at: the case's period (window size, slide or session gap), its
/// window offset and allowed lateness, so that records fall on boundaries and ±1, and at and
/// around the lateness horizon.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub period_ms: i64,
    pub offset_ms: i64,
    pub lateness_ms: i64,
    /// Boundaries are relative to earlier records (session gaps), not to the epoch.
    pub session: bool,
}

const KEYS: [&str; 3] = ["a", "b", "c"];

/// A random script: out-of-order and late records, records on window and gap boundaries and
/// ±1, negative timestamps, several keys and watermarks that jump.
pub fn generate(rng: &mut ChaCha8Rng, shape: Shape) -> Script {
    let period = shape.period_ms;
    let keys = rng.gen_range(1..=KEYS.len());
    let length = rng.gen_range(4..=36);
    // Start anywhere from two periods before zero to one after: negative timestamps too.
    let mut cursor: i64 = rng.gen_range(-2 * period..=period);
    let mut watermark: Option<i64> = None;
    let mut records: Vec<i64> = Vec::new();
    let mut elements = Vec::with_capacity(length);
    for _ in 0..length {
        if rng.gen_bool(0.25) {
            let lowest = watermark.map_or(i64::MIN, |w| w + 1);
            let next = match rng.gen_range(0..10) {
                // A jump far ahead of the records.
                0 | 1 => cursor + rng.gen_range(period..=4 * period),
                // Just at or before a record's window end, or a boundary.
                2 | 3 => boundary(rng, shape, &records, cursor) - 1 + rng.gen_range(-1..=1),
                _ => cursor - rng.gen_range(0..=period / 2),
            };
            let next = next.max(lowest);
            watermark = Some(next);
            cursor = cursor.max(next);
            elements.push(Element::Watermark(next));
            continue;
        }
        let ts = match rng.gen_range(0..20) {
            0..=7 => cursor + rng.gen_range(-period / 2..=period),
            8..=11 => boundary(rng, shape, &records, cursor) + rng.gen_range(-1..=1),
            // Behind the watermark: late, or within the allowed lateness.
            12..=14 => match watermark {
                Some(w) => w - rng.gen_range(0..=2 * period + shape.lateness_ms),
                None => cursor - rng.gen_range(0..=period),
            },
            // At the lateness horizon and ±1 (relative to the watermark).
            15..=16 => match watermark {
                Some(w) => w - shape.lateness_ms + rng.gen_range(-1..=1),
                None => cursor,
            },
            _ => cursor + rng.gen_range(0..=3 * period),
        };
        records.push(ts);
        cursor += rng.gen_range(0..=period / 2);
        let value = rng.gen_range(1..=9);
        elements.push(Element::insert(KEYS[rng.gen_range(0..keys)], ts, value));
    }
    Script { elements }
}

/// `script` with a restore point (`s`) right before one of its watermarks (after at least
/// one element), or before a watermark added for it. Flink does not snapshot watermarks: a
/// restored job's operators (and its sink) start at `Long.MIN_VALUE` until the next watermark
/// arrives, while eddy restores each task's watermark. A record between the restore and the
/// next watermark would be on time in Flink and possibly late in eddy (and a process
/// function would see other watermarks), so the first element after the restore point is a
/// watermark (greater than every one before it): both engines' operators then see the same
/// watermark again before any record.
pub fn with_savepoint(rng: &mut ChaCha8Rng, script: Script) -> Script {
    let mut elements = script.elements;
    let candidates: Vec<usize> = (1..elements.len())
        .filter(|&i| matches!(elements[i], Element::Watermark(_)))
        .collect();
    let at = if candidates.is_empty() {
        // No watermark after the first element: add one after a random prefix, past every
        // watermark and at the records' middle.
        let at = rng.gen_range(1..=elements.len().max(1)).min(elements.len());
        let mut last = i64::MIN;
        let mut stamps = Vec::new();
        for e in &elements[..at] {
            match e {
                Element::Watermark(t) => last = *t,
                Element::Record { ts, .. } => stamps.push(*ts),
                Element::Savepoint => {}
            }
        }
        stamps.sort_unstable();
        let middle = stamps.get(stamps.len() / 2).copied().unwrap_or(0);
        elements.insert(at, Element::Watermark(middle.max(last.saturating_add(1))));
        at
    } else {
        candidates[rng.gen_range(0..candidates.len())]
    };
    elements.insert(at, Element::Savepoint);
    Script { elements }
}

/// A random changelog of rows `(key, ts, value)`: inserts (also of a row that is already
/// there), deletes and updates (`-U` then `+U`) of rows that are there, and watermarks. With `insert_only`, inserts only, each ahead
/// of the watermark and with a timestamp of its own per key (the dedup cases: eddy's dedup
/// is in event time and breaks ties by value, Flink SQL's by arrival).
pub fn generate_changelog(rng: &mut ChaCha8Rng, insert_only: bool) -> Script {
    let keys = rng.gen_range(1..=KEYS.len());
    let length = rng.gen_range(4..=30);
    let mut cursor: i64 = rng.gen_range(-3_000..=3_000);
    let mut watermark: Option<i64> = None;
    let mut rows: Vec<(String, i64, i64)> = Vec::new();
    let mut stamps: BTreeSet<(String, i64)> = BTreeSet::new();
    let mut elements = Vec::with_capacity(length + 8);
    for _ in 0..length {
        if rng.gen_bool(0.2) {
            let next = (cursor - rng.gen_range(0..=500)).max(watermark.map_or(i64::MIN, |w| w + 1));
            watermark = Some(next);
            cursor = cursor.max(next);
            elements.push(Element::Watermark(next));
            continue;
        }
        let mut ts = cursor + rng.gen_range(-500..=1_000);
        cursor += rng.gen_range(0..=400);
        if !insert_only && !rows.is_empty() && rng.gen_bool(0.35) {
            let at = rng.gen_range(0..rows.len());
            let (key, old_ts, old_value) = rows[at].clone();
            let retract = |kind| Element::Record {
                key: key.clone(),
                ts: old_ts,
                value: old_value,
                kind,
            };
            if rng.gen_bool(0.4) {
                elements.push(retract(RowKind::Delete));
                rows.remove(at);
            } else {
                elements.push(retract(RowKind::UpdateBefore));
                let value = rng.gen_range(1..=9);
                elements.push(Element::Record {
                    key: key.clone(),
                    ts,
                    value,
                    kind: RowKind::UpdateAfter,
                });
                rows[at] = (key, ts, value);
            }
            continue;
        }
        if !insert_only && !rows.is_empty() && rng.gen_bool(0.15) {
            // A duplicate insert: the same row twice (a table without a primary key).
            let (key, ts, value) = rows[rng.gen_range(0..rows.len())].clone();
            elements.push(Element::insert(&key, ts, value));
            rows.push((key, ts, value));
            continue;
        }
        let key = KEYS[rng.gen_range(0..keys)].to_string();
        if insert_only {
            ts = ts.max(watermark.map_or(i64::MIN, |w| w + 1));
            while !stamps.insert((key.clone(), ts)) {
                ts += 1;
            }
        }
        let value = rng.gen_range(1..=9);
        elements.push(Element::insert(&key, ts, value));
        rows.push((key, ts, value));
    }
    Script { elements }
}

/// A window boundary near `cursor` (fixed windows), or an earlier record's timestamp ± the
/// session gap (sessions).
fn boundary(rng: &mut ChaCha8Rng, shape: Shape, records: &[i64], cursor: i64) -> i64 {
    if shape.session {
        return match records.len() {
            0 => cursor,
            n => {
                let ts = records[rng.gen_range(0..n)];
                if rng.gen_bool(0.5) {
                    ts + shape.period_ms
                } else {
                    ts - shape.period_ms
                }
            }
        };
    }
    let period = shape.period_ms;
    let k = (cursor - shape.offset_ms).div_euclid(period) + rng.gen_range(-1..=2);
    k * period + shape.offset_ms
}

/// A temporal join's script: a script of records and watermarks (`script::generate`, on a
/// 1 s period) whose records are probes (`+I`, about half), upserts of the versioned table
/// (`+U`) and deletes (`-D`), each with its key and timestamp. `on_time`: every record ahead
/// of the watermark (moved to just past it), the case both engines define the same way.
pub fn generate_temporal(rng: &mut ChaCha8Rng, on_time: bool) -> Script {
    let shape = Shape {
        period_ms: 1_000,
        offset_ms: 0,
        lateness_ms: 0,
        session: false,
    };
    let mut watermark = i64::MIN;
    let elements = generate(rng, shape)
        .elements
        .into_iter()
        .map(|e| match e {
            Element::Record { key, ts, value, .. } => {
                let kind = match rng.gen_range(0..10) {
                    0..=4 => RowKind::Insert,
                    5..=8 => RowKind::UpdateAfter,
                    _ => RowKind::Delete,
                };
                let ts = if on_time {
                    ts.max(watermark.saturating_add(1))
                } else {
                    ts
                };
                Element::Record { key, ts, value, kind }
            }
            Element::Watermark(t) => {
                watermark = t;
                e
            }
            Element::Savepoint => e,
        })
        .collect();
    Script { elements }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn shape() -> Shape {
        Shape {
            period_ms: 3_000,
            offset_ms: 0,
            lateness_ms: 1_000,
            session: false,
        }
    }

    #[test]
    fn watermarks_strictly_increase() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..500 {
            let script = generate(&mut rng, shape());
            let w = script.watermarks();
            assert!(w.windows(2).all(|p| p[0] < p[1]), "{script}");
        }
    }

    /// The generator reaches the cases that matter: records behind the watermark, negative
    /// timestamps, records on a window boundary, several keys (measured over 500 scripts).
    #[test]
    fn the_generator_writes_late_negative_and_boundary_records() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut late, mut negative, mut boundary, mut keys) = (0, 0, 0, 0);
        for _ in 0..500 {
            let script = generate(&mut rng, shape());
            let mut watermark = i64::MIN;
            let mut seen = std::collections::BTreeSet::new();
            for e in &script.elements {
                match e {
                    Element::Watermark(t) => watermark = *t,
                    Element::Savepoint => {}
                    Element::Record { key, ts, .. } => {
                        late += usize::from(*ts <= watermark);
                        negative += usize::from(*ts < 0);
                        boundary += usize::from(ts.rem_euclid(3_000) == 0);
                        seen.insert(key.clone());
                    }
                }
            }
            keys += usize::from(seen.len() > 1);
        }
        assert!(late > 500, "late records: {late}");
        assert!(negative > 500, "negative timestamps: {negative}");
        assert!(boundary > 200, "records on a boundary: {boundary}");
        assert!(keys > 200, "scripts with several keys: {keys}");
    }

    #[test]
    fn epochs_count_watermarks_up_to_the_last_one_seen() {
        let script = Script {
            elements: vec![
                Element::Watermark(10),
                Element::insert("a", 3, 1),
                Element::Watermark(20),
            ],
        };
        assert_eq!(script.epoch(i64::MIN), 0);
        assert_eq!(script.epoch(10), 1);
        assert_eq!(script.epoch(20), 2);
        assert_eq!(script.epoch(i64::MAX), 3);
        assert_eq!(script.to_string(), "w 10\nr a 3 1\nw 20\n");
        assert_eq!(Script::parse(&script.to_string()), Ok(script));
        let changelog = "r a 1 2 -U\nr a 3 4 +U\n";
        assert_eq!(Script::parse(changelog).unwrap().to_string(), changelog);
    }

    #[test]
    fn restore_points_come_right_before_a_watermark() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for _ in 0..300 {
            let plain = generate(&mut rng, shape());
            let script = with_savepoint(&mut rng, plain);
            assert!(script.restores_cleanly(), "{script}");
            let w = script.watermarks();
            assert!(w.windows(2).all(|p| p[0] < p[1]), "{script}");
            assert_eq!(Script::parse(&script.to_string()).as_ref(), Ok(&script));
        }
        let script = Script::parse("r a 1 1\nw 5\nr a 7 1\ns\nw 9\nr a 8 1\n").unwrap();
        assert_eq!(script.savepoint(), Some((3, 5)));
        assert_eq!(script.epoch(5), 1);
        assert!(
            !script.without(4..5).restores_cleanly(),
            "a record may not follow the restore"
        );
        assert!(!script.without(3..4).restores_cleanly(), "no restore point");
    }

    #[test]
    fn changelogs_retract_only_rows_that_are_there() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut retractions = 0;
        for insert_only in [false, true] {
            for _ in 0..300 {
                let script = generate_changelog(&mut rng, insert_only);
                assert!(script.is_valid_changelog(), "{script}");
                retractions += script
                    .elements
                    .iter()
                    .filter(|e| matches!(e, Element::Record { kind, .. } if !kind.adds()))
                    .count();
            }
        }
        assert!(retractions > 300, "retractions: {retractions}");
        let invalid = Script {
            elements: vec![Element::Record {
                key: "a".into(),
                ts: 1,
                value: 1,
                kind: RowKind::Delete,
            }],
        };
        assert!(!invalid.is_valid_changelog());
    }
}
