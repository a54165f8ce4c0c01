//! The examples' pipelines, each checked against its own batch run under the simulator's
//! faults (the differential oracle), with a property of its own that a batch run sharing a
//! mistake could not show: this is all a user writes to test a pipeline.

#[path = "../examples/fraud_alert.rs"]
mod fraud_alert;
#[path = "../examples/session_clicks.rs"]
mod session_clicks;

use eddy::{Committed, Differential, Record, Windowed};

/// A bound: every alert has its cause in the input, a small and a large transaction of its
/// card at most a minute apart, in that order.
fn every_alert_has_its_cause(input: &[Record<fraud_alert::Transaction>], committed: &Committed) -> Result<(), String> {
    for Record { value: alert, .. } in committed.rows::<Record<fraud_alert::Alert>>("alerts") {
        let made = |ts: i64, cents: &dyn Fn(u64) -> bool| {
            input
                .iter()
                .any(|t| t.ts == ts && t.value.card == alert.card && cents(t.value.cents))
        };
        let apart = alert.large_at - alert.small_at;
        if !(0..=60_000).contains(&apart)
            || !made(alert.small_at, &|c| c < 100)
            || !made(alert.large_at, &|c| c == alert.cents && c > 50_000)
        {
            return Err(format!("{alert:?} has no small and large transaction behind it"));
        }
    }
    Ok(())
}

#[test]
fn fraud_alerts_are_exactly_once() {
    Differential::new("fraud-alert", fraud_alert::transactions, |_, transactions, outputs| {
        outputs.append("alerts", fraud_alert::alerts(transactions).output);
    })
    .watermarks(eddy::WatermarkStrategy::bounded_out_of_orderness(5_000).with_interval(50))
    .property("every-alert-has-its-cause", every_alert_has_its_cause)
    .events(300)
    .seeds(200)
    .check();
}

/// Conservation: every click is counted in one session, or went to the late output.
fn every_click_in_one_session(input: &[Record<session_clicks::Click>], committed: &Committed) -> Result<(), String> {
    let counted: u64 = committed
        .rows::<Windowed<u32, u64>>("sessions")
        .iter()
        .map(|s| s.value)
        .sum();
    let late = committed.rows::<Record<session_clicks::Click>>("late").len();
    if counted as usize + late == input.len() {
        Ok(())
    } else {
        Err(format!(
            "{} clicks in, {counted} counted in sessions and {late} late",
            input.len()
        ))
    }
}

#[test]
fn session_click_counts_are_exactly_once() {
    Differential::new("session-clicks", session_clicks::clicks, |_, clicks, outputs| {
        let sessions = session_clicks::sessions(clicks);
        outputs.sessions("sessions", sessions.output);
        outputs.append("late", sessions.late);
    })
    .watermarks(eddy::WatermarkStrategy::bounded_out_of_orderness(2_000).with_interval(50))
    .property("every-click-in-one-session", every_click_in_one_session)
    .events(300)
    .seeds(200)
    .check();
}
