//! Parity with Apache Flink's window operator: Flink's own test cases and documented examples,
//! written anew as eddy pipelines, one test per case. Each names the Flink case it reproduces;
//! the table in docs/semantics.md ("Parity with Flink") points here.
//!
//! Flink's test harness compares the output between two watermarks sorted, so the timelines
//! here sort the results between watermarks too: `key2=5@[1000,11500)` is the sum 5 for key
//! `key2` over the window `[1000, 11500)`, `W11501` a watermark reaching the sink. Records are
//! `(key, value)` and windows sum the values, as Flink's `SumReducer`.

use eddy_engine::{
    run_to_end, Collected, Evictor, LatenessRule, Pipeline, Record, Scripted, Sum, Trigger, WindowAssigner, Windowed,
    END_OF_TIME,
};

type Event = (String, i64);

fn r(key: &str, value: i64, ts: i64) -> Scripted<Event> {
    Scripted::Record(ts, (key.to_string(), value))
}

fn w(ts: i64) -> Scripted<Event> {
    Scripted::Watermark(ts)
}

/// One window case: the assigner, allowed lateness, trigger, evictor and lateness rule.
struct Case {
    assigner: WindowAssigner,
    allowed_lateness: i64,
    trigger: Trigger,
    evictor: Option<Evictor>,
    rule: LatenessRule,
}

impl Case {
    fn new(assigner: WindowAssigner) -> Self {
        Case {
            assigner,
            allowed_lateness: 0,
            trigger: Trigger::event_time(),
            evictor: None,
            rule: LatenessRule::PerWindow,
        }
    }

    fn lateness(self, allowed_lateness: i64) -> Self {
        Case {
            allowed_lateness,
            ..self
        }
    }

    fn trigger(self, trigger: Trigger) -> Self {
        Case { trigger, ..self }
    }

    fn evictor(self, evictor: Evictor) -> Self {
        Case {
            evictor: Some(evictor),
            ..self
        }
    }

    fn rule(self, rule: LatenessRule) -> Self {
        Case { rule, ..self }
    }

    /// Runs the script; returns the sink's timeline (results sorted between watermarks, the
    /// final watermark left out) and the late side output's records as `key@ts`.
    fn run(&self, script: Vec<Scripted<Event>>) -> (Vec<String>, Vec<String>) {
        let pipeline = Pipeline::new();
        let mut windowed = pipeline
            .scripted_source("input", script)
            .key_by(|e: &Event| e.0.clone())
            .window(self.assigner)
            .allowed_lateness(self.allowed_lateness)
            .trigger(self.trigger)
            .lateness_rule(self.rule);
        if let Some(evictor) = self.evictor {
            windowed = windowed.evictor(evictor);
        }
        let summed = windowed.aggregate(Sum(|e: &Event| e.1));
        let results = summed.output.collect();
        let late = summed.late.collect();
        let graph = pipeline.build().expect("valid pipeline");
        let summary = run_to_end(&graph).expect("runs to the end");
        assert_eq!(
            summary.state_entries, 0,
            "window and trigger state is cleared at the end"
        );
        let mut timeline = Vec::new();
        let mut between: Vec<String> = Vec::new();
        for event in results.timeline() {
            match event {
                Collected::Record(Record { value, .. }) => between.push(show(&value)),
                Collected::Watermark(t) => {
                    between.sort();
                    timeline.append(&mut between);
                    if t != END_OF_TIME {
                        timeline.push(format!("W{t}"));
                    }
                }
            }
        }
        between.sort();
        timeline.append(&mut between);
        let late = late
            .records()
            .iter()
            .map(|r| format!("{}@{}", r.value.0, r.ts))
            .collect();
        (timeline, late)
    }
}

fn show(result: &Windowed<String, i64>) -> String {
    format!(
        "{}={}@[{},{})",
        result.key, result.value, result.window.start, result.window.end
    )
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The out-of-order input of Flink's tumbling and sliding window tests.
fn out_of_order_input() -> Vec<Scripted<Event>> {
    vec![
        r("key2", 1, 3999),
        r("key2", 1, 3000),
        r("key1", 1, 20),
        r("key1", 1, 0),
        r("key1", 1, 999),
        r("key2", 1, 1998),
        r("key2", 1, 1999),
        r("key2", 1, 1000),
    ]
}

// Flink: WindowOperatorTest#testTumblingEventTimeWindowsReduce (size 3 s).
#[test]
fn tumbling_event_time_windows() {
    let mut script = out_of_order_input();
    script.extend([w(999), w(1999), w(2999), w(3999), w(4999), w(5999), w(6999), w(7999)]);
    let (timeline, late) = Case::new(WindowAssigner::tumbling(3000)).run(script);
    assert_eq!(
        timeline,
        strings(&[
            "W999",
            "W1999",
            "key1=3@[0,3000)",
            "key2=3@[0,3000)",
            "W2999",
            "W3999",
            "W4999",
            "key2=2@[3000,6000)",
            "W5999",
            "W6999",
            "W7999",
        ])
    );
    assert!(late.is_empty());
}

// Flink: WindowOperatorTest#testSlidingEventTimeWindowsReduce (size 3 s, slide 1 s).
#[test]
fn sliding_event_time_windows() {
    let mut script = out_of_order_input();
    script.extend([w(999), w(1999), w(2999), w(3999), w(4999), w(5999), w(6999), w(7999)]);
    let (timeline, late) = Case::new(WindowAssigner::sliding(3000, 1000)).run(script);
    assert_eq!(
        timeline,
        strings(&[
            "key1=3@[-2000,1000)",
            "W999",
            "key1=3@[-1000,2000)",
            "key2=3@[-1000,2000)",
            "W1999",
            "key1=3@[0,3000)",
            "key2=3@[0,3000)",
            "W2999",
            "key2=5@[1000,4000)",
            "W3999",
            "key2=2@[2000,5000)",
            "W4999",
            "key2=2@[3000,6000)",
            "W5999",
            "W6999",
            "W7999",
        ])
    );
    assert!(late.is_empty());
}

// Flink: WindowOperatorTest#testSessionWindows (gap 3 s; sums, reported as key-sum).
#[test]
fn session_windows() {
    let script = vec![
        r("key2", 1, 0),
        r("key2", 2, 1000),
        r("key2", 3, 2500),
        r("key1", 1, 10),
        r("key1", 2, 1000),
        r("key1", 3, 2500),
        r("key2", 4, 5501),
        r("key2", 5, 6000),
        r("key2", 5, 6000),
        r("key2", 6, 6050),
        w(12000),
        r("key2", 10, 15000),
        r("key2", 20, 15000),
        w(17999),
    ];
    let (timeline, late) = Case::new(WindowAssigner::session(3000)).run(script);
    assert_eq!(
        timeline,
        strings(&[
            "key1=6@[10,5500)",
            "key2=20@[5501,9050)",
            "key2=6@[0,5500)",
            "W12000",
            "key2=30@[15000,18000)",
            "W17999",
        ])
    );
    assert!(late.is_empty());
}

// Flink: TimeWindow#intersects merges windows that touch (EventTimeSessionWindows): records
// exactly one gap apart are one session.
#[test]
fn touching_sessions_merge() {
    let script = vec![r("key1", 1, 0), r("key1", 1, 3000), r("key1", 1, 6000), w(9000)];
    let (timeline, _) = Case::new(WindowAssigner::session(3000)).run(script);
    assert_eq!(timeline, strings(&["key1=3@[0,9000)", "W9000"]));
}

// Flink: WindowOperatorTest#testSideOutputDueToLatenessTumbling (size 2 s, lateness 0).
#[test]
fn late_side_output_tumbling() {
    let script = vec![
        r("key2", 1, 1000),
        w(1985),
        // Not late: its window's max timestamp + lateness is past the watermark.
        r("key2", 1, 1980),
        w(1999),
        r("key2", 1, 1998),
        r("key2", 1, 2001),
        w(2999),
        w(3999),
    ];
    let (timeline, late) = Case::new(WindowAssigner::tumbling(2000)).run(script);
    assert_eq!(
        timeline,
        strings(&[
            "W1985",
            "key2=2@[0,2000)",
            "W1999",
            "W2999",
            "key2=1@[2000,4000)",
            "W3999"
        ])
    );
    assert_eq!(late, strings(&["key2@1998"]));
}

fn partly_late_sliding_script() -> Vec<Scripted<Event>> {
    vec![
        r("key2", 1, 1000),
        w(1999),
        r("key2", 1, 2000),
        w(3000),
        r("key1", 1, 3001),
        // In [0,3000) (late at W3000), [1000,4000) and [2000,5000) (open): kept in the open ones.
        r("key2", 1, 2400),
        r("key2", 1, 2400),
        r("key1", 1, 3001),
        r("key2", 1, 3900),
        w(6000),
        r("key1", 1, 3001),
        w(25000),
    ]
}

// Flink: WindowOperatorTest#testSideOutputDueToLatenessSliding (size 3 s, slide 1 s, lateness
// 0): a record joins those of its windows that are still open; only a record whose every
// window is late goes to the side output.
#[test]
fn partly_late_sliding_records_join_their_open_windows() {
    let (timeline, late) = Case::new(WindowAssigner::sliding(3000, 1000)).run(partly_late_sliding_script());
    assert_eq!(
        timeline,
        strings(&[
            "key2=1@[-1000,2000)",
            "W1999",
            "key2=2@[0,3000)",
            "W3000",
            "key1=2@[1000,4000)",
            "key1=2@[2000,5000)",
            "key1=2@[3000,6000)",
            "key2=1@[3000,6000)",
            "key2=4@[2000,5000)",
            "key2=5@[1000,4000)",
            "W6000",
            "W25000",
        ])
    );
    assert_eq!(late, strings(&["key1@3001"]));
}

// eddy's option (not Flink's): with LatenessRule::WholeRecord the same input sends the two
// partly late records to the side output, whole, and they count in no window.
#[test]
fn whole_record_lateness_option_for_sliding_windows() {
    let (timeline, late) = Case::new(WindowAssigner::sliding(3000, 1000))
        .rule(LatenessRule::WholeRecord)
        .run(partly_late_sliding_script());
    assert!(timeline.contains(&"key2=3@[1000,4000)".to_string()), "{timeline:?}");
    assert!(timeline.contains(&"key2=2@[2000,5000)".to_string()), "{timeline:?}");
    assert_eq!(late, strings(&["key2@2400", "key2@2400", "key1@3001"]));
}

fn session_lateness_script(with_second_late: bool) -> Vec<Scripted<Event>> {
    let mut script = vec![
        r("key2", 1, 1000),
        w(1999),
        r("key2", 1, 2000),
        w(4998),
        // Not late: the session it joins ends after the watermark.
        r("key2", 1, 4500),
        // A new session.
        r("key2", 1, 8500),
        w(7400),
        // Merges the two sessions into one.
        r("key2", 1, 7000),
        w(11501),
        r("key2", 1, 11600),
        w(14600),
        r("key2", 1, 10000),
    ];
    if with_second_late {
        script.push(r("key2", 1, 10100));
    }
    script.extend([r("key2", 1, 14500), w(20000), w(100000)]);
    script
}

/// What Flink's four zero-lateness (or too-small-lateness) session cases all expect.
fn flink_session_zero_lateness_timeline() -> Vec<String> {
    strings(&[
        "W1999",
        "W4998",
        "W7400",
        "key2=5@[1000,11500)",
        "W11501",
        "key2=1@[11600,14600)",
        "W14600",
        // Overlaps the cleared session [11600,14600): Flink starts a new one.
        "key2=1@[14500,17500)",
        "W20000",
        "W100000",
    ])
}

// Flink: WindowOperatorTest#testSideOutputDueToLatenessSessionZeroLateness (gap 3 s): merge
// first, then drop only a record whose merged session has expired. The case issue 19 quotes.
#[test]
fn session_lateness_merges_first_zero_lateness() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000)).run(session_lateness_script(false));
    assert_eq!(timeline, flink_session_zero_lateness_timeline());
    assert_eq!(late, strings(&["key2@10000"]));
}

// Flink: WindowOperatorTest#testSideOutputDueToLatenessSessionZeroLatenessPurgingTrigger.
#[test]
fn session_lateness_merges_first_zero_lateness_purging() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .trigger(Trigger::event_time().purging())
        .run(session_lateness_script(true));
    assert_eq!(timeline, flink_session_zero_lateness_timeline());
    assert_eq!(late, strings(&["key2@10000", "key2@10100"]));
}

// Flink: WindowOperatorTest#testNotSideOutputDueToLatenessSessionWithLateness (lateness 10
// ms, accumulating): 10000 merges into the fired session [11600,14600), whose end has passed:
// an immediate late firing; 14500 then extends it past the watermark.
#[test]
fn session_late_merge_fires_at_once_with_lateness() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(10)
        .run(session_lateness_script(false));
    assert_eq!(
        timeline,
        strings(&[
            "W1999",
            "W4998",
            "W7400",
            "key2=5@[1000,11500)",
            "W11501",
            "key2=1@[11600,14600)",
            "W14600",
            "key2=2@[10000,14600)",
            "key2=3@[10000,17500)",
            "W20000",
            "W100000",
        ])
    );
    assert!(late.is_empty());
}

// Flink: WindowOperatorTest#testSideOutputDueToLatenessSessionWithLatenessPurgingTrigger
// (lateness 10 ms, purging): the late firings carry only what arrived since the last one.
#[test]
fn session_late_merge_with_purging_trigger_emits_deltas() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(10)
        .trigger(Trigger::event_time().purging())
        .run(session_lateness_script(false));
    assert_eq!(
        timeline,
        strings(&[
            "W1999",
            "W4998",
            "W7400",
            "key2=5@[1000,11500)",
            "W11501",
            "key2=1@[11600,14600)",
            "W14600",
            "key2=1@[10000,14600)",
            "key2=1@[10000,17500)",
            "W20000",
            "W100000",
        ])
    );
    assert!(late.is_empty());
}

// Flink: WindowOperatorTest#testNotSideOutputDueToLatenessSessionWithHugeLateness (lateness
// 10 s): 10000 bridges both fired sessions into [1000,14600), already past: fires at once.
#[test]
fn session_late_merge_bridges_fired_sessions_with_huge_lateness() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(10000)
        .run(session_lateness_script(false));
    assert_eq!(
        timeline,
        strings(&[
            "W1999",
            "W4998",
            "W7400",
            "key2=5@[1000,11500)",
            "W11501",
            "key2=1@[11600,14600)",
            "W14600",
            "key2=7@[1000,14600)",
            "key2=8@[1000,17500)",
            "W20000",
            "W100000",
        ])
    );
    assert!(late.is_empty());
}

// Flink: WindowOperatorTest#testNotSideOutputDueToLatenessSessionWithHugeLatenessPurgingTrigger.
#[test]
fn session_late_merge_bridges_fired_sessions_with_huge_lateness_purging() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(10000)
        .trigger(Trigger::event_time().purging())
        .run(session_lateness_script(false));
    assert_eq!(
        timeline,
        strings(&[
            "W1999",
            "W4998",
            "W7400",
            "key2=5@[1000,11500)",
            "W11501",
            "key2=1@[11600,14600)",
            "W14600",
            "key2=1@[1000,14600)",
            "key2=1@[1000,17500)",
            "W20000",
            "W100000",
        ])
    );
    assert!(late.is_empty());
}

// Flink: EvictingWindowOperatorTest#testTimeEvictorEvictBefore (tumbling 4 s, CountTrigger 2,
// TimeEvictor 2 s): each firing evicts the records at or before max ts − 2 s, for good.
#[test]
fn time_evictor_before_the_function() {
    let script = vec![
        r("key2", 1, 1000),
        r("key2", 1, 3999),
        r("key1", 1, 20),
        r("key1", 1, 0),
        r("key1", 1, 999),
        r("key1", 1, 5999),
        r("key2", 1, 3500),
        r("key2", 1, 2001),
        r("key2", 1, 1001),
        r("key1", 1, 6500),
        r("key2", 1, 1002),
    ];
    let (timeline, _) = Case::new(WindowAssigner::tumbling(4000))
        .trigger(Trigger::count(2))
        .evictor(Evictor::time(2000))
        .run(script);
    // No watermark before the end, and a count trigger never fires at a window's end.
    assert_eq!(
        timeline,
        strings(&[
            "key1=2@[0,4000)",
            "key1=2@[4000,8000)",
            "key2=1@[0,4000)",
            "key2=3@[0,4000)",
            "key2=3@[0,4000)",
        ])
    );
}

// Flink: CountEvictor (evicting before the function) with CountTrigger 2, keeping 4, on the
// input of EvictingWindowOperatorTest#testCountEvictorEvictAfter; Flink's GlobalWindows
// become one tumbling window holding every timestamp.
#[test]
fn count_evictor_keeps_the_last_records() {
    let script = vec![
        r("key2", 1, 3000),
        r("key2", 1, 3999),
        r("key1", 1, 20),
        r("key1", 1, 0),
        r("key1", 1, 999),
        r("key2", 1, 1998),
        r("key2", 1, 1999),
        r("key2", 1, 1000),
        r("key1", 1, 10999),
        r("key2", 2, 1000),
        r("key2", 4, 1000),
        r("key2", 8, 1000),
    ];
    let (timeline, _) = Case::new(WindowAssigner::tumbling(1_000_000))
        .trigger(Trigger::count(2))
        .evictor(Evictor::count(4))
        .run(script);
    assert_eq!(
        timeline,
        strings(&[
            "key1=2@[0,1000000)",
            "key1=4@[0,1000000)",
            "key2=15@[0,1000000)",
            "key2=2@[0,1000000)",
            "key2=4@[0,1000000)",
            "key2=5@[0,1000000)",
        ])
    );
}

// Flink: CountTrigger (CountTriggerTest#testWindowSeparationAndFiring): fires every 2 records
// of a (key, window), counts per window, and never at the window's end.
#[test]
fn count_trigger_fires_per_window_every_n_records() {
    let script = vec![
        r("key1", 1, 0),
        r("key1", 1, 0),
        r("key1", 1, 2),
        r("key1", 1, 0),
        r("key1", 1, 2),
        w(10),
    ];
    let (timeline, _) = Case::new(WindowAssigner::tumbling(2))
        .trigger(Trigger::count(2))
        .run(script);
    assert_eq!(
        timeline,
        strings(&["key1=2@[0,2)", "key1=2@[2,4)", "W10"]),
        "[0,2) fired at its second record; its third is left unemitted"
    );
    let purged = Case::new(WindowAssigner::tumbling(2))
        .trigger(Trigger::count(1).purging())
        .run(vec![r("key1", 1, 0), r("key1", 2, 0), w(10)]);
    assert_eq!(purged.0, strings(&["key1=1@[0,2)", "key1=2@[0,2)", "W10"]));
}

// Flink: ContinuousEventTimeTrigger (documentation: "fires based on a given time interval as
// measured by the watermark"): early firings at each interval boundary while the window is
// open, then the window's end; each an upsert of the same (key, window).
#[test]
fn continuous_event_time_trigger_fires_early() {
    let script = vec![
        r("key1", 1, 1),
        r("key1", 1, 5),
        w(9),
        w(10),
        r("key1", 1, 12),
        w(19),
        w(20),
        r("key1", 1, 25),
        w(29),
    ];
    let (timeline, _) = Case::new(WindowAssigner::tumbling(30))
        .trigger(Trigger::continuous_event_time(10))
        .run(script.clone());
    assert_eq!(
        timeline,
        strings(&[
            "W9",
            "key1=2@[0,30)",
            "W10",
            "W19",
            "key1=3@[0,30)",
            "W20",
            "key1=4@[0,30)",
            "W29",
        ])
    );
    // Purging: each firing carries what arrived since the previous one (deltas).
    let (timeline, _) = Case::new(WindowAssigner::tumbling(30))
        .trigger(Trigger::continuous_event_time(10).purging())
        .run(script);
    assert_eq!(
        timeline,
        strings(&[
            "W9",
            "key1=2@[0,30)",
            "W10",
            "W19",
            "key1=1@[0,30)",
            "W20",
            "key1=1@[0,30)",
            "W29",
        ])
    );
}

// Flink: EventTimeTrigger under allowed lateness (documentation, "Late elements considerations":
// a late but not dropped element fires the window again): one late firing per late record.
#[test]
fn late_firing_per_late_record() {
    let script = vec![r("key1", 1, 1), w(9), r("key1", 1, 3), r("key1", 1, 4), w(13)];
    let (timeline, _) = Case::new(WindowAssigner::tumbling(10)).lateness(5).run(script.clone());
    assert_eq!(
        timeline,
        strings(&["key1=1@[0,10)", "W9", "key1=2@[0,10)", "key1=3@[0,10)", "W13"])
    );
    let (timeline, _) = Case::new(WindowAssigner::tumbling(10))
        .lateness(5)
        .trigger(Trigger::event_time().purging())
        .run(script);
    assert_eq!(
        timeline,
        strings(&["key1=1@[0,10)", "W9", "key1=1@[0,10)", "key1=1@[0,10)", "W13"])
    );
}

// Found by the Flink conformance suite (case session-lateness5-continuous): a late record
// merges a session whose end the watermark has passed. Flink fires at once (onElement: the
// window's end is behind the watermark), and its continuous trigger's onMerge registers the
// merged state's next firing, the session's end, again: behind the watermark, it fires the
// session once more at the next watermark (Flink 2.3.0 emits 12 twice).
#[test]
fn session_late_merge_with_continuous_trigger_fires_again_at_the_next_watermark() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(1000)
        .trigger(Trigger::continuous_event_time(1000))
        .run(vec![r("a", 5, 7048), w(10890), r("a", 7, 4105)]);
    assert_eq!(
        timeline,
        strings(&[
            "a=5@[7048,10048)",
            "a=5@[7048,10048)",
            "a=5@[7048,10048)",
            "a=5@[7048,10048)",
            "W10890",
            "a=12@[4105,10048)",
            "a=12@[4105,10048)",
        ])
    );
    assert!(late.is_empty());
}

// Found by the Flink conformance suite (case session-lateness1-event-evict-count2): a record
// bridges two sessions. Flink's MergingWindowSet keeps the state of the first window of a
// Java HashSet of the merged windows ([8686,11686) here, by TimeWindow.hashCode) and
// appends the other's contents, then the record: the count evictor keeps 4 and 5.
#[test]
fn count_evictor_after_a_record_bridges_sessions_keeps_flinks_merge_order() {
    let (timeline, late) = Case::new(WindowAssigner::session(3000))
        .lateness(1000)
        .evictor(Evictor::count(2))
        .run(vec![r("b", 1, 8686), r("b", 4, 5685), r("b", 5, 8188)]);
    assert_eq!(timeline, strings(&["b=9@[5685,11686)"]));
    assert!(late.is_empty());
}
