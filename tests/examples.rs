//! The examples' pipelines, each checked against its own batch run under the simulator's
//! faults (the differential oracle): this is all a user writes to test a pipeline.

#[path = "../examples/fraud_alert.rs"]
mod fraud_alert;
#[path = "../examples/session_clicks.rs"]
mod session_clicks;

use eddy::sim::Differential;

#[test]
fn fraud_alerts_are_exactly_once() {
    Differential::new("fraud-alert", fraud_alert::transactions, |_, transactions, outputs| {
        outputs.append("alerts", fraud_alert::alerts(transactions).output);
    })
    .watermarks(eddy::WatermarkStrategy::bounded_out_of_orderness(5_000).with_interval(50))
    .events(300)
    .seeds(200)
    .check();
}

#[test]
fn session_click_counts_are_exactly_once() {
    Differential::new("session-clicks", session_clicks::clicks, |_, clicks, outputs| {
        outputs.sessions("sessions", session_clicks::sessions(clicks).output);
    })
    .watermarks(eddy::WatermarkStrategy::bounded_out_of_orderness(2_000).with_interval(50))
    .events(300)
    .seeds(200)
    .check();
}
