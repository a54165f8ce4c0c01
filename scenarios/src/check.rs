//! Checks shared by scenarios: multiset arithmetic over logs and outputs, lateness
//! soundness, and the reference computations several scenarios share (sessions,
//! deduplication), written without engine code.

use std::collections::BTreeMap;

use eddy_engine::{Keep, Record, Windowed};
use eddy_sim::{Checked, Violation};
use serde::Serialize;

/// A committed changelog against the rows it should leave: materialised transaction by
/// transaction (`OutputTable::changelog`: a retraction of an absent row or a lone
/// update-before is a `changelog` violation), then compared as multisets of rows.
pub fn compare_changelog<T: eddy_engine::Data + PartialEq>(
    name: &str,
    committed: &eddy_engine::CommitLog<eddy_engine::Row<T>>,
    expected: Vec<T>,
) -> Result<(), Violation> {
    let table = eddy_sim::OutputTable::committed_changelog(name, committed);
    if let Some(problem) = table.problem {
        return Err(Violation::new("changelog", problem));
    }
    let want = eddy_sim::OutputTable::append(name, expected);
    eddy_sim::output::compare_outputs(&[want], &[table])
}

/// A row as its JSON line (what `eddy run` prints of a changelog's rows).
pub fn json_line<T: Serialize>(row: &T) -> String {
    serde_json::to_string(row).expect("rows serialise")
}

/// The committed values of `log`, in commit order (what an upsert output table folds).
pub fn values<T: Clone + PartialEq + std::fmt::Debug>(log: &eddy_engine::CommitLog<T>) -> Vec<T> {
    log.records().into_iter().map(|r| r.value).collect()
}

/// `all` minus one occurrence of each of `some`. A `some` entry that is not in `all` (or
/// occurs more often) is a conservation violation: a record on a late output that was never
/// in the input, or late twice.
pub fn minus<T: Ord + Clone + std::fmt::Debug>(all: &[T], some: &[T], what: &str) -> Result<Vec<T>, Violation> {
    let mut left: BTreeMap<&T, usize> = BTreeMap::new();
    for item in all {
        *left.entry(item).or_default() += 1;
    }
    for item in some {
        match left.get_mut(item) {
            Some(n) if *n > 0 => *n -= 1,
            _ => {
                return Err(Violation::new(
                    "conservation",
                    format!("{what} {item:?} is not in the input, or was emitted more often than it occurs"),
                ))
            }
        }
    }
    Ok(left
        .into_iter()
        .flat_map(|(item, n)| std::iter::repeat_n(item.clone(), n))
        .collect())
}

/// The first difference between an expected and an actual table, as a violation.
pub fn compare_tables<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    property: &str,
    expected: &BTreeMap<K, V>,
    actual: &BTreeMap<K, V>,
) -> Result<(), Violation> {
    for (key, want) in expected {
        match actual.get(key) {
            None => {
                return Err(Violation::new(
                    property,
                    format!("{key:?}: expected {want:?}, nothing committed"),
                ))
            }
            Some(got) if got != want => {
                return Err(Violation::new(
                    property,
                    format!("{key:?}: expected {want:?}, committed {got:?}"),
                ))
            }
            _ => {}
        }
    }
    match actual.iter().find(|(key, _)| !expected.contains_key(key)) {
        Some((key, got)) => Err(Violation::new(
            property,
            format!("{key:?}: committed {got:?}, expected nothing"),
        )),
        None => Ok(()),
    }
}

/// Exactly-once for counts: within one consistent execution a `(key, window)` count only
/// grows (a late firing adds records), so a count committed that is not larger than the one
/// before it for the same `(key, window)` comes from an execution that was rolled back
/// (output committed before its checkpoint completed, or a transaction committed twice).
/// `results` are in commit order.
pub fn counts_grow<K: Ord + std::fmt::Debug>(results: impl IntoIterator<Item = (K, u64)>) -> Result<(), Violation> {
    let mut last: BTreeMap<K, u64> = BTreeMap::new();
    for (key, count) in results {
        if let Some(&before) = last.get(&key) {
            if count <= before {
                return Err(Violation::new(
                    "exactly-once",
                    format!("{key:?}: committed {count} after {before}: a result of a rolled-back run was committed"),
                ));
            }
        }
        last.insert(key, count);
    }
    Ok(())
}

/// The highest watermark an operator could have had when `record` reached it: the
/// operator's watermark is at most the minimum over splits of `max ts seen − B − 1`, so at
/// most, over the record's occurrences, the largest timestamp before it in its log partition
/// minus `B + 1` (`None`: no watermark at all). `input` is the log before it was spread
/// round-robin over `partitions`.
pub fn highest_watermark_at<T: PartialEq>(
    input: &[Record<T>],
    partitions: usize,
    bound_ms: i64,
    record: &Record<T>,
) -> Option<i64> {
    input
        .iter()
        .enumerate()
        .filter(|(_, candidate)| *candidate == record)
        .filter_map(|(index, _)| {
            input[..index]
                .iter()
                .enumerate()
                .filter(|(j, _)| j % partitions == index % partitions)
                .map(|(_, r)| r.ts)
                .max()
        })
        .max()
        .map(|max| max - bound_ms - 1)
}

/// Whether `record` could have reached an operator whose watermark was already `watermark`
/// ([`highest_watermark_at`]).
pub fn could_arrive_after<T: PartialEq>(
    input: &[Record<T>],
    partitions: usize,
    bound_ms: i64,
    record: &Record<T>,
    watermark: i64,
) -> bool {
    highest_watermark_at(input, partitions, bound_ms, record).is_some_and(|highest| watermark <= highest)
}

/// Lateness soundness: a record can only be late if it could arrive after the watermark
/// reached `late_at(record)`, the smallest watermark at which it is late
/// ([`could_arrive_after`]).
pub fn lateness_soundness<T: PartialEq + std::fmt::Debug>(
    input: &[Record<T>],
    partitions: usize,
    bound_ms: i64,
    late: &[Record<T>],
    late_at: impl Fn(&Record<T>) -> i64,
) -> Option<Violation> {
    for record in late {
        if !could_arrive_after(input, partitions, bound_ms, record, late_at(record)) {
            return Some(Violation::new(
                "lateness",
                format!(
                    "{record:?} is on the late output, but no watermark could have reached {} when it arrived",
                    late_at(record)
                ),
            ));
        }
    }
    None
}

/// Lateness, exactly: each record on a late output, with the watermark the run recorded when
/// its operator sent it there, was late by Flink's rule at that watermark: `late_at(ts)`, the
/// smallest watermark at which a record of that time is late, is at or below it.
pub fn late_at_recorded_watermark(
    late: impl IntoIterator<Item = (i64, i64)>,
    late_at: impl Fn(i64) -> i64,
) -> Result<(), Violation> {
    for (ts, watermark) in late {
        if watermark < late_at(ts) {
            return Err(Violation::new(
                "lateness",
                format!(
                    "a record at {ts} went to the late output at watermark {watermark}, but is late only from {}",
                    late_at(ts)
                ),
            ));
        }
    }
    Ok(())
}

/// A digest of committed output in commit order (folded into the trace hash, so that an
/// order that differs between runs of one seed shows as non-determinism).
pub fn digest<T: Serialize>(records: &[Record<T>]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for record in records {
        for byte in eddy_engine::snapshot::encode_value(record) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}

/// A check's verdict with the counts and digest the report shows: `committed` and `late`
/// are the committed main and late outputs in commit order.
pub fn outcome<O: Serialize, L: Serialize>(
    committed: &[Record<O>],
    late: &[Record<L>],
    verdict: Result<(), Violation>,
) -> Checked {
    Checked {
        events_out: committed.len() as u64,
        late: late.len() as u64,
        digest: digest(committed) ^ digest(late).rotate_left(1),
        violation: verdict.err(),
    }
}

/// The records of `eligible` the pipeline accepted: `eligible` minus the committed `late`
/// records (conservation), after checking that each late record could be late
/// ([`lateness_soundness`] over the whole `log`, which moves the watermark).
pub fn accepted<T: Ord + Clone + std::fmt::Debug>(
    log: &[Record<T>],
    eligible: &[Record<T>],
    late: &[Record<T>],
    partitions: usize,
    bound_ms: i64,
    late_at: impl Fn(&Record<T>) -> i64,
) -> Result<Vec<Record<T>>, Violation> {
    let accepted = minus(eligible, late, "late record")?;
    match lateness_soundness(log, partitions, bound_ms, late, late_at) {
        Some(violation) => Err(violation),
        None => Ok(accepted),
    }
}

/// [`accepted`] for a pipeline whose sources have idleness (`with_idleness`), conservation
/// only: a partition that paused may read its records after the others moved the watermark
/// on, or ended (an ended source's channel is at the end of time, and an idle one no longer
/// holds it back), so any record may be late. The differential oracle still judges each
/// late record against its task's watermark (the tap).
pub fn accepted_with_idleness<T: Ord + Clone + std::fmt::Debug>(
    eligible: &[Record<T>],
    late: &[Record<T>],
) -> Result<Vec<Record<T>>, Violation> {
    minus(eligible, late, "late record")
}

/// Expected and actual results as multisets: the first record one has more often than the
/// other, as a violation.
pub fn compare_multisets<T: Ord + std::fmt::Debug>(
    property: &str,
    mut expected: Vec<T>,
    mut actual: Vec<T>,
) -> Result<(), Violation> {
    expected.sort();
    actual.sort();
    if expected == actual {
        return Ok(());
    }
    let (want, got) = (multiplicities(&expected), multiplicities(&actual));
    let sizes = format!("({} committed, {} expected)", actual.len(), expected.len());
    if let Some((item, n)) = want.iter().find(|(item, n)| got.get(*item).copied().unwrap_or(0) < **n) {
        let had = got.get(item).copied().unwrap_or(0);
        return Err(Violation::new(
            property,
            format!("expected {item:?} {n} time(s), committed {had} {sizes}"),
        ));
    }
    let (item, n) = got
        .iter()
        .find(|(item, n)| want.get(*item).copied().unwrap_or(0) < **n)
        .expect("unequal multisets differ somewhere");
    let wanted = want.get(item).copied().unwrap_or(0);
    Err(Violation::new(
        property,
        format!("committed {item:?} {n} time(s), expected {wanted} {sizes}"),
    ))
}

fn multiplicities<T: Ord>(items: &[T]) -> BTreeMap<&T, usize> {
    let mut counts: BTreeMap<&T, usize> = BTreeMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
}

/// A table of results that must each be committed once (no upserts: allowed lateness 0).
pub fn table_once<K: Ord + std::fmt::Debug, V: std::fmt::Debug>(
    property: &str,
    rows: impl IntoIterator<Item = (K, V)>,
) -> Result<BTreeMap<K, V>, Violation> {
    let mut table = BTreeMap::new();
    for (key, value) in rows {
        if let Some(earlier) = table.get(&key) {
            return Err(Violation::new(
                property,
                format!("{key:?} committed twice: {earlier:?}, then {value:?}"),
            ));
        }
        table.insert(key, value);
    }
    Ok(table)
}

/// Reference session windows: per key, sorted times; a time past the session's end starts a
/// new session `[ts, ts + gap)` (as Flink, sessions that touch merge). The number of events
/// per `(key, start, end)`.
pub fn reference_sessions<K: Ord + Clone>(
    events: impl IntoIterator<Item = (K, i64)>,
    gap_ms: i64,
) -> BTreeMap<(K, i64, i64), u64> {
    let mut by_key: BTreeMap<K, Vec<i64>> = BTreeMap::new();
    for (key, ts) in events {
        by_key.entry(key).or_default().push(ts);
    }
    let mut sessions = BTreeMap::new();
    for (key, mut times) in by_key {
        times.sort_unstable();
        let mut open: Option<(i64, i64, u64)> = None;
        for ts in times {
            open = match open {
                Some((start, end, count)) if ts <= end => Some((start, end.max(ts + gap_ms), count + 1)),
                done => {
                    if let Some((start, end, count)) = done {
                        sessions.insert((key.clone(), start, end), count);
                    }
                    Some((ts, ts + gap_ms, 1))
                }
            };
        }
        if let Some((start, end, count)) = open {
            sessions.insert((key, start, end), count);
        }
    }
    sessions
}

/// The committed session results as an upsert table: the last value per `(key, start, end)`.
pub fn session_upserts<K: Ord + Clone, V: Clone>(results: &[Record<Windowed<K, V>>]) -> BTreeMap<(K, i64, i64), V> {
    results
        .iter()
        .map(|r| {
            let w = &r.value;
            ((w.key.clone(), w.window.start, w.window.end), w.value.clone())
        })
        .collect()
}

/// Which accepted records a window operator accepted behind its watermark, and at which
/// watermark: `(index into accepted, watermark)` in arrival order. Each tapped record is one
/// occurrence of an accepted record, found by its timestamp and encoding; one that is not
/// there was accepted more often than it was.
pub fn behind_arrivals<'b, T: Serialize>(
    accepted: &[Record<T>],
    behind: impl IntoIterator<Item = (i64, &'b [u8], i64)>,
) -> Result<Vec<(usize, i64)>, Violation> {
    let mut by_encoding: BTreeMap<(i64, Vec<u8>), Vec<usize>> = BTreeMap::new();
    for (index, r) in accepted.iter().enumerate().rev() {
        by_encoding
            .entry((r.ts, eddy_engine::encode_value(&r.value)))
            .or_default()
            .push(index);
    }
    let mut arrivals = Vec::new();
    for (ts, value, watermark) in behind {
        let Some(index) = by_encoding.get_mut(&(ts, value.to_vec())).and_then(Vec::pop) else {
            return Err(Violation::new(
                "conservation",
                format!("a record at {ts} was accepted behind watermark {watermark} more often than it was accepted"),
            ));
        };
        arrivals.push((index, watermark));
    }
    Ok(arrivals)
}

/// Exactly-once for session windows under Flink's rules, exactly, reading the schedule the
/// run recorded. Where a record meets a session decides the result: Flink clears a session
/// once the watermark passes `end - 1 + L`, and a record that arrives after that starts a
/// session of its own, even where a batch run would have merged the two. Only a record at
/// least `L - 1` behind the watermark can touch a cleared session (docs/semantics.md), and
/// the run records each such record with the watermark it came at (`behind`, in arrival
/// order). So: the sessions of the other accepted records, as in a batch run; then each
/// behind record in turn: clear its key's sessions whose `end - 1 + L` the watermark
/// reached (their results are final), merge it with the touching sessions left (`[s, e)`
/// and `[t, t + gap)` merge when `s <= t + gap && t <= e`), and require the merged session
/// not to be late (else the record belonged on the late output).
///
/// `committed` is the upsert table of results ([`session_upserts`]). Every session of that
/// computation must be committed with its count; any other committed row must be covered by
/// one of them (a session that fired and then grew by a merge: Flink retracts nothing).
pub fn check_sessions<'b, T: Serialize, K: Ord + Clone + std::fmt::Debug>(
    accepted: &[Record<T>],
    behind: impl IntoIterator<Item = (i64, &'b [u8], i64)>,
    key: impl Fn(&Record<T>) -> K,
    committed: &BTreeMap<(K, i64, i64), u64>,
    gap_ms: i64,
    allowed_lateness_ms: i64,
) -> Result<(), Violation> {
    let arrivals = behind_arrivals(accepted, behind)?;
    let late_arrivals: std::collections::BTreeSet<usize> = arrivals.iter().map(|a| a.0).collect();
    let in_batch = accepted
        .iter()
        .enumerate()
        .filter(|(index, _)| !late_arrivals.contains(index))
        .map(|(_, r)| (key(r), r.ts));
    let mut open: BTreeMap<K, Vec<(i64, i64, u64)>> = BTreeMap::new();
    for ((k, start, end), count) in reference_sessions(in_batch, gap_ms) {
        open.entry(k).or_default().push((start, end, count));
    }
    let mut expected: BTreeMap<(K, i64, i64), u64> = BTreeMap::new();
    for (index, watermark) in arrivals {
        let record = &accepted[index];
        let k = key(record);
        let sessions = open.entry(k.clone()).or_default();
        let (cleared, kept): (Vec<_>, Vec<_>) = std::mem::take(sessions)
            .into_iter()
            .partition(|&(_, end, _)| end - 1 + allowed_lateness_ms <= watermark);
        for (start, end, count) in cleared {
            expected.insert((k.clone(), start, end), count);
        }
        let (mut start, mut end, mut count) = (record.ts, record.ts + gap_ms, 1);
        for (s, e, c) in kept {
            if s <= record.ts + gap_ms && record.ts <= e {
                (start, end, count) = (start.min(s), end.max(e), count + c);
            } else {
                sessions.push((s, e, c));
            }
        }
        if end - 1 + allowed_lateness_ms <= watermark {
            return Err(Violation::new(
                "lateness",
                format!(
                    "({k:?}, {}) was accepted at watermark {watermark} into session [{start}, {end}), \
                     which that watermark had expired: it belonged on the late output",
                    record.ts
                ),
            ));
        }
        sessions.push((start, end, count));
    }
    for (k, sessions) in open {
        for (start, end, count) in sessions {
            expected.insert((k.clone(), start, end), count);
        }
    }
    for (session, count) in &expected {
        match committed.get(session) {
            Some(got) if got == count => {}
            got => {
                let (k, start, end) = session;
                let found: Vec<_> = committed
                    .iter()
                    .filter(|((ck, cs, ce), _)| ck == k && cs < end && start < ce)
                    .map(|((_, s, e), c)| (*s, *e, *c))
                    .collect();
                return Err(Violation::new(
                    "exactly-once",
                    format!(
                        "{session:?}: expected {count}, committed {} (sessions of the key committed around it: {found:?})",
                        got.map_or("nothing".to_string(), |c| c.to_string())
                    ),
                ));
            }
        }
    }
    for ((k, start, end), count) in committed {
        if expected.contains_key(&(k.clone(), *start, *end)) {
            continue;
        }
        let covered = expected.keys().any(|(ek, es, ee)| ek == k && es <= start && end <= ee);
        if !covered {
            return Err(Violation::new(
                "exactly-once",
                format!("({k:?}, {start}, {end}): committed {count}, in no session of the accepted records"),
            ));
        }
    }
    Ok(())
}

/// Reference deduplication in event time (docs/semantics.md, "Deduplication"): per key,
/// records sorted by `(ts, value)`; the first opens an interval `[ts, ts + ttl)`, the first
/// record at or past its end opens the next. `Keep::First` keeps each interval's first
/// record; `Keep::Last` its last, stamped with the interval's end − 1.
pub fn reference_dedup<T: Ord + Clone, K: Ord>(
    records: &[Record<T>],
    key: impl Fn(&T) -> K,
    keep: Keep,
    ttl_ms: i64,
) -> Vec<Record<T>> {
    let mut by_key: BTreeMap<K, Vec<&Record<T>>> = BTreeMap::new();
    for r in records {
        by_key.entry(key(&r.value)).or_default().push(r);
    }
    let mut kept = Vec::new();
    for (_, mut group) in by_key {
        group.sort();
        let mut interval: Option<(i64, &Record<T>)> = None;
        for r in group {
            interval = match interval {
                Some((end, last)) if r.ts >= end => {
                    if keep == Keep::Last {
                        kept.push(Record::new(end - 1, last.value.clone()));
                    }
                    None
                }
                open => open,
            };
            interval = match interval {
                Some((end, _)) => Some((end, r)),
                None => {
                    if keep == Keep::First {
                        kept.push(r.clone());
                    }
                    Some((r.ts + ttl_ms, r))
                }
            };
        }
        if let (Keep::Last, Some((end, last))) = (keep, interval) {
            kept.push(Record::new(end - 1, last.value.clone()));
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(items: &[(i64, u32)]) -> Vec<Record<u32>> {
        items.iter().map(|&(ts, v)| Record::new(ts, v)).collect()
    }

    /// Each lateness check at its own boundary: one millisecond looser must be caught.
    #[test]
    fn lateness_checks_hold_at_the_boundary_and_fail_one_millisecond_past_it() {
        // One partition, bound 100: before the record at 50 came 1 000, so the watermark
        // could have been at most 1 000 - 100 - 1 = 899 when it arrived.
        let input = records(&[(1_000, 1), (50, 2)]);
        let late = records(&[(50, 2)]);
        assert_eq!(highest_watermark_at(&input, 1, 100, &late[0]), Some(899));
        assert!(lateness_soundness(&input, 1, 100, &late, |_| 899).is_none());
        assert!(lateness_soundness(&input, 1, 100, &late, |_| 900).is_some());
        // Two partitions: the record's own partition had nothing before it.
        assert!(lateness_soundness(&input, 2, 100, &late, |_| 0).is_some());
        // At the recorded watermark: late from `late_at(ts)` on, not a millisecond before.
        let late_at = |ts: i64| ts + 10 - 1 + 5; // a window [ts, ts + 10), lateness 5
        assert!(late_at_recorded_watermark([(50, 64)], late_at).is_ok());
        assert!(late_at_recorded_watermark([(50, 63)], late_at).is_err());
    }

    #[test]
    fn reference_dedup_follows_the_semantics_table() {
        // ttl 10: ts 3, 5, 8, 13 are the intervals [3,13) and [13,23) (docs/semantics.md).
        let input = records(&[(8, 1), (3, 1), (13, 1), (5, 1), (4, 2)]);
        let first = reference_dedup(&input, |v| *v, Keep::First, 10);
        assert_eq!(first, records(&[(3, 1), (13, 1), (4, 2)]));
        let last = reference_dedup(&input, |v| *v, Keep::Last, 10);
        assert_eq!(last, records(&[(12, 1), (22, 1), (13, 2)]));
    }

    #[test]
    fn reference_sessions_split_at_the_gap_and_merge_on_overlap_or_touch() {
        // gap 10: [0,10) and [7,17) overlap and merge; [17,27) touches [0,17) and merges too;
        // 38 is past [0,27)'s end: a new session.
        let sessions = reference_sessions([(1, 0), (1, 17), (1, 7), (2, 5), (1, 38)], 10);
        let expected: BTreeMap<(u32, i64, i64), u64> = [((1, 0, 27), 3), ((1, 38, 48), 1), ((2, 5, 15), 1)]
            .into_iter()
            .collect();
        assert_eq!(sessions, expected);
    }

    fn session_table(rows: &[(u32, i64, i64, u64)]) -> BTreeMap<(u32, i64, i64), u64> {
        rows.iter().map(|&(k, s, e, c)| ((k, s, e), c)).collect()
    }

    fn behind(records: &[(i64, u32, i64)]) -> Vec<(i64, Vec<u8>, i64)> {
        records
            .iter()
            .map(|&(ts, v, watermark)| (ts, eddy_engine::encode_value(&v), watermark))
            .collect()
    }

    #[test]
    fn sessions_split_where_the_recorded_watermark_had_cleared_one() {
        // gap 10, L 2 (nexmark-q11 seed 184 in small): 1 made [1,11); 6 came at W12, when
        // [1,11) was cleared (10 + 2 <= 12): it opens [6,16) alone, and 0, at W13, merges
        // with it. Flink commits [1,11) = 1 and [0,16) = 2, not one session of 3.
        let accepted = records(&[(1, 7), (6, 7), (0, 7)]);
        let arrivals = behind(&[(6, 7, 12), (0, 7, 13)]);
        let check = |committed: &[(u32, i64, i64, u64)], arrivals: Vec<(i64, Vec<u8>, i64)>| {
            let arrivals = arrivals.iter().map(|(ts, value, w)| (*ts, value.as_slice(), *w));
            check_sessions(&accepted, arrivals, |r| r.value, &session_table(committed), 10, 2)
        };
        assert_eq!(check(&[(7, 1, 11, 1), (7, 0, 16, 2)], arrivals.clone()), Ok(()));
        let one = check(&[(7, 0, 16, 3)], arrivals.clone()).unwrap_err();
        assert!(
            one.message.contains("(7, 0, 16): expected 2, committed 3"),
            "{}",
            one.message
        );
        // One millisecond earlier, W11 had not cleared [1,11): one session of 3.
        let not_cleared = behind(&[(6, 7, 11), (0, 7, 13)]);
        assert_eq!(check(&[(7, 1, 11, 1), (7, 0, 16, 3)], not_cleared.clone()), Ok(()));
        assert!(check(&[(7, 1, 11, 1), (7, 0, 16, 2)], not_cleared).is_err());
        // A record accepted into a session its watermark had expired was late: 0 at W18 would
        // merge into [0,16), whose end - 1 + L = 17 <= 18.
        let expired = check(&[(7, 1, 11, 1), (7, 0, 16, 2)], behind(&[(6, 7, 12), (0, 7, 17)])).unwrap_err();
        assert_eq!(expired.property, "lateness", "{}", expired.message);
        assert!(check(&[(7, 1, 11, 1), (7, 0, 16, 2)], behind(&[(6, 7, 12), (0, 7, 16)])).is_ok());
        // Without behind records it is one batch session; a result of it fired before a merge
        // may stay committed (covered), a result outside it may not.
        assert!(check(&[(7, 0, 16, 3), (7, 1, 11, 1)], Vec::new()).is_ok());
        assert!(check(&[(7, 0, 16, 3), (7, 20, 30, 1)], Vec::new()).is_err());
        assert!(check(&[(7, 0, 16, 2)], Vec::new()).is_err());
        // A behind record that was not accepted breaks conservation.
        assert_eq!(check(&[], behind(&[(5, 7, 20)])).unwrap_err().property, "conservation");
    }

    #[test]
    fn multisets_differ_when_a_result_is_missing_or_committed_twice() {
        assert!(compare_multisets("p", vec![1, 2, 2], vec![2, 1, 2]).is_ok());
        let missing = compare_multisets("p", vec![1, 2, 2], vec![1, 2]).unwrap_err();
        assert!(
            missing.message.contains("expected 2 2 time(s), committed 1"),
            "{}",
            missing.message
        );
        let twice = compare_multisets("p", vec![1, 2], vec![1, 2, 2]).unwrap_err();
        assert!(
            twice.message.contains("committed 2 2 time(s), expected 1"),
            "{}",
            twice.message
        );
        assert!(table_once("p", [(1, 'a'), (1, 'b')]).is_err());
        assert_eq!(table_once("p", [(1, 'a'), (2, 'b')]).unwrap().len(), 2);
    }
}
