//! The `eddy` command as a user runs it: exit codes, messages, files.

use std::process::Command;

fn eddy(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_eddy"))
        .args(args)
        .output()
        .expect("eddy runs");
    let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn list_names_every_scenario() {
    let (code, out) = eddy(&["list"]);
    assert_eq!(code, 0);
    assert!(out.contains("pageviews") && out.contains("dedup"), "{out}");
}

#[test]
fn explore_writes_its_json_summary_and_shards_split_a_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let json = |name: &str| dir.path().join(name);
    let (code, out) = eddy(&[
        "explore",
        "--seeds",
        "6",
        "--faults",
        "all",
        "--json",
        json("all.json").to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("seeds/s") && out.contains("events/s"), "{out}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json("all.json")).unwrap()).unwrap();
    assert_eq!(summary["runs"], 6 * eddy::scenarios::all().len());
    assert_eq!(summary["failed"], 0);
    assert_eq!(summary["scenarios"][0]["name"], "pageviews");
    let mut runs = 0;
    for shard in ["0/3", "1/3", "2/3"] {
        let path = json(&format!("shard-{}.json", &shard[..1]));
        let (code, _) = eddy(&[
            "explore",
            "--scenario",
            "dedup",
            "--seeds",
            "10",
            "--shard",
            shard,
            "--json",
            path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0);
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        runs += summary["runs"].as_u64().unwrap();
    }
    assert_eq!(runs, 10);
}

#[test]
fn explore_reports_the_same_with_any_number_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let campaign = |jobs: &str| {
        let json = dir.path().join(format!("jobs-{jobs}.json"));
        let out_dir = dir.path().join(format!("failures-{jobs}"));
        let (code, out) = eddy(&[
            "explore",
            "--bug",
            "windows-closed-interval",
            "--seeds",
            "12",
            "--jobs",
            jobs,
            "--out",
            out_dir.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ]);
        assert_eq!(code, 1, "the planted bug is caught: {out}");
        let fails: Vec<String> = out
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .map(String::from)
            .collect();
        let mut summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
        summary["failures"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .for_each(|f| f["replay"] = serde_json::Value::Null); // names the --out directory
        summary["scenarios"].as_array_mut().unwrap().iter_mut().for_each(|s| {
            // wall-clock time
            s["seconds"] = serde_json::Value::Null;
            s["phase_seconds"] = serde_json::Value::Null;
        });
        (fails, summary)
    };
    let (one_fails, one) = campaign("1");
    let (three_fails, three) = campaign("3");
    assert!(one_fails.len() > 1, "{one_fails:?}");
    assert_eq!(one_fails, three_fails, "failures in the same (seed) order");
    assert_eq!(one, three);

    let (code, out) = eddy(&["explore", "--jobs", "0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--jobs"), "{out}");
}

#[test]
fn replay_prints_the_trace_hash_and_writes_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let args = [
        "replay",
        "--scenario",
        "pageviews",
        "--seed",
        "7",
        "--faults",
        "all",
        "--check-determinism",
    ];
    let (code, out) = eddy(&[&args[..], &["--trace", trace.to_str().unwrap()]].concat());
    assert_eq!(code, 0, "{out}");
    let hash = out
        .lines()
        .find(|l| l.starts_with("trace-hash: "))
        .expect("a trace-hash line");
    assert_eq!(hash.len(), "trace-hash: ".len() + 16);
    let (_, again) = eddy(&args);
    assert!(again.contains(hash), "the same hash in another process");
    let lines = std::fs::read_to_string(trace).unwrap();
    assert!(lines.lines().count() > 100);
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));
}

/// `--channel-capacity` bounds every channel (backpressure): another schedule, so another
/// trace hash; a failure found with it records it, and replaying or shrinking the failure
/// file runs with it again.
#[test]
fn bounded_channels_are_another_run_and_failure_files_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    let hash = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("trace-hash: "))
            .map(String::from)
            .unwrap_or_else(|| panic!("a trace-hash line: {out}"))
    };
    let seed = ["replay", "--scenario", "pageviews", "--seed", "3", "--faults", "all"];
    let (code, unbounded) = eddy(&seed);
    assert_eq!(code, 0, "{unbounded}");
    let (code, bounded) = eddy(&[&seed[..], &["--channel-capacity", "2"]].concat());
    assert_eq!(code, 0, "{bounded}");
    assert!(bounded.contains("channels: 2 messages"), "{bounded}");
    assert_ne!(hash(&unbounded), hash(&bounded));

    let failures = dir.path().join("failures");
    let (code, out) = eddy(&[
        "explore",
        "--scenario",
        "pageviews",
        "--bug",
        "windows-closed-interval",
        "--seeds",
        "8",
        "--channel-capacity",
        "2",
        "--fail-fast",
        "--out",
        failures.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "the planted bug is caught: {out}");
    assert!(out.contains("--channel-capacity 2"), "the replay line keeps it: {out}");
    let file = std::fs::read_dir(&failures).unwrap().next().unwrap().unwrap().path();
    let failure: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(failure["channel_capacity"], 2, "{failure}");
    let (code, replayed) = eddy(&["replay", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{replayed}");
    assert!(replayed.contains("channels: 2 messages"), "{replayed}");
    let min = dir.path().join("min.json");
    let (code, out) = eddy(&[
        "shrink",
        file.to_str().unwrap(),
        "--max-runs",
        "300",
        "-o",
        min.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let case: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&min).unwrap()).unwrap();
    assert_eq!(case["channel_capacity"], 2, "{case}");
    let (code, out) = eddy(&["replay", min.to_str().unwrap()]);
    assert_eq!(code, 1, "the shrunk case still fails: {out}");

    let zero = dir.path().join("zero.json");
    std::fs::write(
        &zero,
        r#"{"scenario":"pageviews","seed":3,"profile":"all","events":null,"channel_capacity":0,"property":"x","message":"y"}"#,
    )
    .unwrap();
    let (code, out) = eddy(&["replay", zero.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("zero.json") && out.contains("channel_capacity"), "{out}");
    let (code, out) = eddy(&["explore", "--channel-capacity", "0"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--channel-capacity"), "{out}");
}

#[test]
fn bad_input_exits_2_with_a_message_that_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = eddy(&["explore", "--scenario", "no-such-scenario", "--seeds", "1"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("no-such-scenario") && out.contains("known scenarios"),
        "{out}"
    );
    let (code, out) = eddy(&["explore", "--seeds", "many"]);
    assert_eq!(code, 2);
    assert!(out.contains("many"), "{out}");
    let (code, out) = eddy(&["explore", "--faults", "most"]);
    assert_eq!(code, 2);
    assert!(out.contains("most"), "{out}");
    let (code, out) = eddy(&["explore", "--shard", "3/2"]);
    assert_eq!(code, 2);
    assert!(out.contains("3/2"), "{out}");
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{ not json").unwrap();
    let (code, out) = eddy(&["replay", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("bad.json:1:"), "names the file and line: {out}");
    let wrong = dir.path().join("wrong.json");
    std::fs::write(
        &wrong,
        r#"{"scenario":"pageviews","seed":1,"profile":"lots","events":null,"property":"x","message":"y"}"#,
    )
    .unwrap();
    let (code, out) = eddy(&["replay", wrong.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(out.contains("profile") && out.contains("lots"), "{out}");
    let (code, _) = eddy(&["replay", dir.path().join("missing.json").to_str().unwrap()]);
    assert_eq!(code, 2);
}

#[test]
fn run_gives_the_same_results_from_generated_and_from_file_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for scenario in eddy::scenarios::all() {
        let name = scenario.name();
        let (code, out) = eddy(&[
            "run",
            "--scenario",
            name,
            "--seed",
            "1",
            "--emit-input",
            &path("in"),
            "--output",
            &path("a"),
        ]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = eddy(&[
            "run",
            "--scenario",
            name,
            "--input",
            &path("in"),
            "--output",
            &path("b"),
        ]);
        assert_eq!(code, 0, "{out}");
        let a = std::fs::read_to_string(path("a")).unwrap();
        assert!(!a.is_empty(), "{name} produced results");
        assert_eq!(a, std::fs::read_to_string(path("b")).unwrap(), "{name}");
    }
    std::fs::write(path("bad"), "\n{\"ts\":1,\"value\":{\"page\":1}}\n").unwrap();
    let (code, out) = eddy(&["run", "--scenario", "pageviews", "--input", &path("bad")]);
    assert_eq!(code, 2);
    assert!(
        out.contains("bad:2:") && out.contains("user"),
        "names the line and the field: {out}"
    );
}

/// Debezium as a dump of a Kafka topic shows it: a MySQL event inside Kafka Connect's
/// `{"schema": .., "payload": ..}` and the tombstone after a delete read; a truncate stops the
/// run (as in Flink) unless parse errors are ignored, when it is skipped and reported.
#[test]
fn run_reads_wrapped_debezium_and_tombstones_and_skips_what_it_is_told_to() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mysql-wrapped.jsonl");
    let input = input.to_str().unwrap();
    let create = r#"{"schema":{"type":"struct","optional":false,"name":"mysql.shop.orders.Envelope"},"payload":{"before":null,"after":{"id":1,"customer_id":1,"amount":1500,"status":"open"},"source":{"version":"2.7.0.Final","connector":"mysql","name":"mysql","ts_ms":1700000000000,"snapshot":"false","db":"shop","table":"orders","server_id":223344,"file":"mysql-bin.000003","pos":154,"row":0},"op":"c","ts_ms":1700000000100}}"#;
    let customer = r#"{"before":null,"after":{"id":1,"name":"ada","region":"eu"},"source":{"connector":"postgresql","schema":"public","table":"customers","lsn":24023128},"op":"r","ts_ms":1700000000000}"#;
    let delete = r#"{"before":{"id":1,"name":"ada","region":"eu"},"after":null,"source":{"connector":"postgresql","table":"customers","lsn":24023300},"op":"d","ts_ms":1700000000200}"#;
    let truncate = r#"{"source":{"connector":"mysql","table":"orders","file":"mysql-bin.000003","pos":484,"row":0},"op":"t","ts_ms":1700000000300}"#;
    std::fs::write(input, format!("{create}\nnull\n{customer}\n")).unwrap();
    let (code, out) = eddy(&["run", "--scenario", "cdc-orders", "--input", input]);
    assert_eq!((code, out.as_str()), (0, "[\"eu\",[1500,1]]\n"));
    std::fs::write(
        input,
        format!("{create}\nnull\n{customer}\n{delete}\nnull\n{truncate}\n"),
    )
    .unwrap();
    let (code, out) = eddy(&["run", "--scenario", "cdc-orders", "--input", input]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("mysql-wrapped.jsonl:6: `op` is \"t\" (a truncate)"),
        "names the line and the field: {out}"
    );
    let (code, out) = eddy(&[
        "run",
        "--scenario",
        "cdc-orders",
        "--input",
        input,
        "--ignore-parse-errors",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("[\"unknown\",[1500,1]]\n"), "{out}");
    assert!(
        out.contains("eddy: skipped ") && out.contains("mysql-wrapped.jsonl:6: `op` is \"t\""),
        "{out}"
    );
    assert!(out.contains("skipped 1 input line that does not parse"), "{out}");
}

#[test]
fn bench_measures_every_variant_and_their_checksums_agree() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let plot = dir.path().join("bench.svg");
    let (code, out) = eddy(&[
        "bench",
        "--events",
        "20000",
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    let workloads: Vec<&str> = results.iter().map(|r| r["workload"].as_str().unwrap()).collect();
    assert_eq!(
        workloads,
        [
            "pageviews",
            "nexmark-q5",
            "nexmark-q7",
            "dedup",
            "sessions-clicks",
            "enrich"
        ]
    );
    for workload in results {
        assert_eq!(workload["checksums_agree"], true, "{workload}");
        assert!(
            workload["state"]["bytes_per_entry"].as_f64().unwrap() > 0.0,
            "{workload}"
        );
        let variants = workload["variants"].as_array().unwrap();
        let names: Vec<&str> = variants.iter().map(|v| v["variant"].as_str().unwrap()).collect();
        assert!(names.contains(&"hand-written loop"), "{names:?}");
        let shortcuts = variants.iter().filter(|v| v["shortcut"] == true).count();
        assert_eq!(shortcuts > 0, workload["workload"] == "dedup", "{names:?}");
        assert_eq!(
            names.contains(&"timely (1 worker)"),
            cfg!(feature = "bench"),
            "{names:?}"
        );
        assert!(variants.iter().all(|v| v["events_per_s"].as_f64().unwrap() > 0.0));
    }
    assert!(std::fs::read_to_string(&plot).unwrap().starts_with("<svg"));
    let (code, out) = eddy(&["bench", "--scenario", "no-such-workload"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("no-such-workload"), "{out}");
    let (code, out) = eddy(&["bench", "--restore-keys", "5000", "--json", json.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let restore: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(restore["keyed_entries"], 5000, "{restore}");
    assert_eq!(restore["verified"], true, "{restore}");
}

#[test]
fn run_live_names_what_is_wrong_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(
        path("in.jsonl"),
        "{\"ts\":1,\"value\":{\"page\":1,\"user\":2}}\n\n{\"ts\":2,\"value\":{\"page\":1}}\n",
    )
    .unwrap();
    let live = |scenario: &str, input: &str| {
        eddy(&[
            "run",
            "--live",
            "--scenario",
            scenario,
            "--input",
            input,
            "--output",
            &path("out.jsonl"),
            "--state-dir",
            &path("state"),
        ])
    };
    // Every scenario runs live; only some declare a database table.
    let (code, out) = eddy(&[
        "run",
        "--live",
        "--scenario",
        "sessions-clicks",
        "--state-dir",
        &path("state"),
        "--postgres",
        "postgresql://nobody@127.0.0.1:1/none",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("`sessions-clicks` declares no database table for --postgres")
            && out.contains("scenarios with one: pageviews, dedup"),
        "{out}"
    );
    let (code, out) = live("pageviews", &path("in.jsonl"));
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("in.jsonl:3: missing field `user`"), "{out}");
    // Followed, the bad line stops the run when it is read.
    let (code, out) = eddy(&[
        "run",
        "--live",
        "--follow",
        "--scenario",
        "pageviews",
        "--input",
        &path("in.jsonl"),
        "--output",
        &path("out.jsonl"),
        "--state-dir",
        &path("follow-state"),
        "--checkpoint-interval",
        "20",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("in.jsonl:3: missing field `user`"), "{out}");
    let (code, out) = eddy(&["run", "--live", "--scenario", "pageviews", "--input", &path("in.jsonl")]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--output") && out.contains("--state-dir"), "{out}");
}

#[test]
fn run_live_writes_the_batch_lines_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (code, out) = eddy(&[
        "run",
        "--scenario",
        "pageviews",
        "--seed",
        "4",
        "--events",
        "3000",
        "--emit-input",
        &path("in.jsonl"),
        "--output",
        &path("batch.jsonl"),
    ]);
    assert_eq!(code, 0, "{out}");
    let sorted = |name: &str| {
        let mut lines: Vec<String> = std::fs::read_to_string(path(name))
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        lines
    };
    let live = || {
        eddy(&[
            "run",
            "--live",
            "--scenario",
            "pageviews",
            "--input",
            &path("in.jsonl"),
            "--output",
            &path("live.jsonl"),
            "--state-dir",
            &path("state"),
            "--checkpoint-interval",
            "20",
        ])
    };
    let (code, out) = live();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("starting from the beginning"), "{out}");
    assert!(!sorted("batch.jsonl").is_empty());
    assert_eq!(sorted("live.jsonl"), sorted("batch.jsonl"));
    // Restarted after it finished: restores the final checkpoint, commits nothing new.
    let (code, out) = live();
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restored checkpoint"), "{out}");
    assert_eq!(sorted("live.jsonl"), sorted("batch.jsonl"));
    // Stdin cannot be rewound: no restart from it.
    let (code, out) = eddy(&[
        "run",
        "--live",
        "--scenario",
        "pageviews",
        "--input",
        "-",
        "--output",
        &path("live.jsonl"),
        "--state-dir",
        &path("state"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("stdin is not restorable"), "{out}");
}

#[test]
fn report_merge_of_shards_equals_one_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let explore = |extra: &[&str], json: &str| {
        let mut args = vec![
            "explore",
            "--scenario",
            "dedup",
            "--scenario",
            "pageviews",
            "--seeds",
            "24",
        ];
        args.extend_from_slice(&["--json", json]);
        args.extend_from_slice(extra);
        let (code, out) = eddy(&args);
        assert_eq!(code, 0, "{out}");
    };
    explore(&["--faults", "all"], &path("all.json"));
    let mut shards = Vec::new();
    for i in 0..4 {
        let shard = format!("{i}/4");
        explore(&["--faults", "all", "--shard", &shard], &path(&format!("s{i}.json")));
        shards.push(path(&format!("s{i}.json")));
    }
    let mut args = vec!["report", "merge"];
    args.extend(shards.iter().map(String::as_str));
    let (merged, page) = (path("merged.json"), path("merged.html"));
    args.extend_from_slice(&["-o", &merged, "--html", &page]);
    let (code, out) = eddy(&args);
    assert_eq!(code, 0, "{out}");
    let read = |p: &str| -> serde_json::Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let (merged, all) = (read(&merged), read(&path("all.json")));
    for field in ["runs", "failed", "profile"] {
        assert_eq!(merged[field], all[field], "{field}");
    }
    for (m, a) in merged["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .zip(all["scenarios"].as_array().unwrap())
    {
        for field in [
            "name",
            "runs",
            "events",
            "crashes",
            "restores",
            "checkpoints_completed",
            "late",
            "coverage",
        ] {
            assert_eq!(m[field], a[field], "{field} of {}", a["name"]);
        }
    }
    assert!(std::fs::read_to_string(&page).unwrap().contains("<table"));
    // Shards of different fault profiles are not one campaign.
    explore(&["--faults", "crash"], &path("crash.json"));
    let (code, out) = eddy(&[
        "report",
        "merge",
        &shards[0],
        &path("crash.json"),
        "-o",
        &path("bad.json"),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("crash.json"), "{out}");
}

#[test]
fn check_determinism_names_the_first_diverging_step() {
    let (code, out) = eddy(&[
        "replay",
        "--scenario",
        "pageviews",
        "--seed",
        "0",
        "--bug",
        "hashmap-output-order",
        "--check-determinism",
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first divergence:"), "{out}");
    assert!(out.contains("first run:") && out.contains("second run:"), "{out}");
}

#[test]
fn explore_prints_its_coverage_and_writes_a_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let (code, out) = eddy(&[
        "explore",
        "--scenario",
        "pageviews",
        "--seeds",
        "30",
        "--faults",
        "all",
        "--coverage",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("restore-rescaled") && out.contains("boundary-window-end"),
        "{out}"
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("pageviews") && html.contains("seeds/s"), "{html}");
}

#[test]
fn run_live_into_an_unreachable_database_says_so_and_exits_2() {
    // Nothing listens on port 1: the connection is refused before any state is touched.
    let (code, out) = eddy(&[
        "run",
        "--live",
        "--scenario",
        "pageviews",
        "--seed",
        "1",
        "--events",
        "100",
        "--postgres",
        "postgresql://nobody@127.0.0.1:1/none",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("cannot connect to PostgreSQL at postgresql://nobody@127.0.0.1:1/none"),
        "{out}"
    );
    let (code, out) = eddy(&[
        "run",
        "--live",
        "--scenario",
        "pageviews",
        "--postgres",
        "host=/nowhere",
        "--table",
        "a;b",
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--table `a;b`"), "{out}");
    let (code, out) = eddy(&["run", "--scenario", "pageviews", "--postgres", "host=/nowhere"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--live"), "{out}");
}
