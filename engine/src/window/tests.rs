//! The window semantics table: boundaries, lateness and firing, one case per rule.

use super::assigner::{Window, WindowAssigner};
use super::function::{Aggregating, Count, Windowed};
use super::pane::WindowSettings;
use super::session::SessionWindowOperator;
use crate::element::{Batch, Record, Timestamp};
use crate::operator::{Operator, Output, MAIN};

fn windows_of(assigner: WindowAssigner, ts: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let mut windows = Vec::new();
    assigner.assign(ts, &mut windows);
    windows.iter().map(|w| (w.start, w.end)).collect()
}

#[test]
fn tumbling_boundaries() {
    let tumbling = WindowAssigner::tumbling(10);
    // (ts, window): start is inclusive, end exclusive, negative times round down.
    let table = [
        (0, (0, 10)),
        (9, (0, 10)),
        (10, (10, 20)),
        (-1, (-10, 0)),
        (-10, (-10, 0)),
        (-11, (-20, -10)),
    ];
    for (ts, window) in table {
        assert_eq!(windows_of(tumbling, ts), vec![window], "ts {ts}");
    }
}

#[test]
fn tumbling_with_offset() {
    let assigner = WindowAssigner::tumbling_with_offset(10, 3);
    let table = [(3, (3, 13)), (2, (-7, 3)), (12, (3, 13)), (13, (13, 23)), (-7, (-7, 3))];
    for (ts, window) in table {
        assert_eq!(windows_of(assigner, ts), vec![window], "ts {ts}");
    }
    let negative = WindowAssigner::tumbling_with_offset(10, -3);
    assert_eq!(windows_of(negative, 7), vec![(7, 17)]);
    assert_eq!(windows_of(negative, 6), vec![(-3, 7)]);
}

#[test]
fn sliding_assigns_every_window_containing_ts() {
    let sliding = WindowAssigner::sliding(10, 5);
    assert_eq!(windows_of(sliding, 0), vec![(-5, 5), (0, 10)]);
    assert_eq!(windows_of(sliding, 4), vec![(-5, 5), (0, 10)]);
    assert_eq!(windows_of(sliding, 5), vec![(0, 10), (5, 15)]);
    assert_eq!(windows_of(sliding, -1), vec![(-10, 0), (-5, 5)]);
    let uneven = WindowAssigner::sliding(10, 3);
    for ts in -20..20 {
        let got = windows_of(uneven, ts);
        let expected: Vec<_> = (-40..40)
            .filter(|s: &i64| s.rem_euclid(3) == 0 && *s <= ts && ts < s + 10)
            .map(|s| (s, s + 10))
            .collect();
        assert_eq!(got, expected, "ts {ts}");
    }
}

#[test]
fn session_window_is_ts_plus_gap() {
    assert_eq!(windows_of(WindowAssigner::session(30), -5), vec![(-5, 25)]);
}

type ClickSessions = SessionWindowOperator<(u8, i64), u8, fn(&(u8, i64)) -> u8, Aggregating<Count>>;

/// Counts per `(key, session)` of a session operator with gap 10 and allowed lateness 5.
fn sessions() -> ClickSessions {
    let settings = WindowSettings {
        allowed_lateness: 5,
        ..WindowSettings::default()
    };
    SessionWindowOperator::new(10, settings, |click: &(u8, i64)| click.0, Aggregating(Count))
}

fn fired(out: &mut Output) -> Vec<(Timestamp, u8, Window, u64)> {
    out.take::<Windowed<u8, u64>>(MAIN)
        .into_iter()
        .map(|r| (r.ts, r.value.key, r.value.window, r.value.value))
        .collect()
}

#[test]
fn sessions_of_several_keys_fire_in_time_order_within_one_watermark() {
    // Key 1 has sessions ending at 15 and 65, key 2 one ending at 34 that grew from 25:
    // one timer per key, yet the results come in the order of the sessions' ends.
    let mut operator = sessions();
    let clicks = [(1u8, 5i64), (2, 15), (1, 55), (2, 24)];
    let batch = Batch::new(clicks.iter().map(|&(key, ts)| Record::new(ts, (key, ts))).collect());
    let mut out = Output::default();
    operator.handle_records(0, batch, &mut out);
    assert_eq!(operator.state_entries(), 3 + 2, "three sessions, one timer per key");
    operator.handle_watermark(100, &mut out);
    assert_eq!(
        fired(&mut out),
        vec![
            (14, 1, Window::new(5, 15), 1),
            (33, 2, Window::new(15, 34), 2),
            (64, 1, Window::new(55, 65), 1),
        ]
    );
    assert_eq!(operator.state_entries(), 0, "cleared at max_timestamp + 5");
}

#[test]
fn a_session_fires_at_its_end_and_is_cleared_at_its_cleanup_time() {
    let mut operator = sessions();
    let mut out = Output::default();
    operator.handle_records(0, Batch::new(vec![Record::new(0, (7u8, 0i64))]), &mut out);
    operator.handle_watermark(8, &mut out);
    operator.handle_records(0, Batch::new(vec![Record::new(6, (7u8, 6i64))]), &mut out);
    operator.handle_watermark(14, &mut out);
    assert!(fired(&mut out).is_empty(), "grew to [0,16): its end is 15");
    operator.handle_watermark(15, &mut out);
    assert_eq!(fired(&mut out), vec![(15, 7, Window::new(0, 16), 2)]);
    assert_eq!(operator.state_entries(), 2, "kept for the allowed lateness");
    // A late record within the allowed lateness fires the session again at once.
    operator.handle_records(0, Batch::new(vec![Record::new(3, (7u8, 3i64))]), &mut out);
    assert_eq!(fired(&mut out), vec![(15, 7, Window::new(0, 16), 3)]);
    operator.handle_watermark(19, &mut out);
    assert_eq!(operator.state_entries(), 2, "clean-up at 20");
    operator.handle_watermark(20, &mut out);
    assert_eq!(operator.state_entries(), 0);
}

#[test]
fn invalid_assigners_are_rejected() {
    assert!(WindowAssigner::tumbling(0).validate().is_err());
    assert!(WindowAssigner::tumbling(-5).validate().is_err());
    assert!(WindowAssigner::tumbling_with_offset(10, 10).validate().is_err());
    assert!(WindowAssigner::tumbling_with_offset(10, -10).validate().is_err());
    assert!(WindowAssigner::tumbling_with_offset(10, 9).validate().is_ok());
    assert!(WindowAssigner::sliding(10, 0).validate().is_err());
    assert!(WindowAssigner::sliding(0, 5).validate().is_err());
    assert!(WindowAssigner::session(0).validate().is_err());
    assert!(WindowAssigner::session(1).validate().is_ok());
}
