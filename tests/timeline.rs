//! The timeline page of a failing run, tested like a page: its structure without a browser,
//! then rendered in headless Chromium (Debian's `chromium`; skipped, saying so, where it is
//! not installed) and read back from the screenshot: lanes, the crash mark and the
//! highlighted violation are drawn.
#![cfg(feature = "planted-bugs")]

use std::path::Path;
use std::process::Command;

use eddy::engine::testkit::bugs::Bug;
use eddy::sim::{Profile, RunConfig};

/// A shrunk `commit-at-barrier` case of `pageviews`, replayed keeping its trace.
fn shrunk_failure_page() -> (String, eddy::sim::Timeline) {
    let scenario = eddy::scenarios::by_name("pageviews").unwrap();
    let config = |seed| RunConfig {
        bug: Some(Bug::CommitAtBarrier),
        ..RunConfig::new(seed, Profile::Crash)
    };
    let seed = (0..1000)
        .find(|&seed| !scenario.run(&config(seed)).report.passed)
        .expect("commit-at-barrier is caught");
    let (run, case) = scenario.record_case(&config(seed));
    let property = run.report.violation.unwrap().property;
    let shrunk = eddy::sim::shrink(scenario, &config(seed), case, &property, 20_000);
    let traced = RunConfig {
        keep_trace: true,
        ..config(seed)
    };
    let run = scenario.run_case(&traced, &shrunk.case).unwrap();
    assert!(!run.report.passed, "the shrunk case fails");
    let timeline = run.timeline.expect("a traced run has a timeline");
    (eddy::timeline::timeline_html(&run.report, &timeline), timeline)
}

#[test]
fn the_timeline_page_draws_lanes_the_crash_and_the_violation() {
    let (html, timeline) = shrunk_failure_page();
    // Structure, without a browser.
    assert!(html.contains("<svg"), "an SVG to draw into");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external assets"
    );
    let lanes: Vec<&str> = timeline.lanes.iter().map(|l| l.name.as_str()).collect();
    for task in ["views[0]", "window-1[0]", "sink-2[0]"] {
        assert!(
            lanes.iter().any(|l| l.starts_with(&task[..task.len() - 3])),
            "no lane for {task}: {lanes:?}"
        );
    }
    assert!(timeline.events.iter().any(|e| e.kind == "crash"), "a crash");
    assert!(timeline.events.iter().any(|e| e.kind == "trigger"), "a checkpoint");
    assert!(
        timeline.marks.iter().any(|m| m.hit),
        "the violation's records are highlighted"
    );
    assert!(
        timeline.events.iter().any(|e| e.hit),
        "the commit that made it visible is highlighted"
    );
    assert!(html.contains("\"hit\":true"));

    // Rendered, in headless Chromium.
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!(
            "SKIPPED the browser half: chromium is not installed (apt-get install chromium; .ci/run installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("run.html");
    let shot = dir.path().join("run.png");
    std::fs::write(&page, &html).unwrap();
    let status = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1340,700",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(
        status.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let count = |rgb: [u8; 3]| {
        pixels[..info.buffer_size()]
            .chunks(channels)
            .filter(|p| p[..3] == rgb)
            .count()
    };
    let lane_background = count([0xf4, 0xf6, 0xfa]);
    let crash = count([0xe0, 0x00, 0x00]);
    let highlight = count([0xff, 0x00, 0xff]);
    assert!(lane_background > 10_000, "lanes drawn: {lane_background} pixels");
    assert!(crash > 100, "the crash mark drawn: {crash} pixels");
    assert!(highlight > 20, "the violation highlighted: {highlight} pixels");
}
