//! `eddy run --live` as a real child process, killed with SIGKILL at random moments and
//! restarted with the same state directory (docs/live.md): the final output file holds
//! exactly the batch run's lines and an independent count's, nothing lost, nothing twice.
//! Once, the newest checkpoint's file is corrupted before a restart: recovery says so and
//! falls back to the previous checkpoint. A second process on a state directory in use is
//! refused.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EDDY: &str = env!("CARGO_BIN_EXE_eddy");
const EVENTS: usize = 40_000;
/// A whole run takes `EVENTS / RATE` = 4 s.
const RATE: u64 = 10_000;
const WINDOW_MS: i64 = 60_000;
/// A child that runs longer than this is a hang, not a slow machine.
const CHILD_LIMIT: Duration = Duration::from_secs(40);

fn live_command(dir: &Path, log: &Path) -> Command {
    live_command_on(dir, "in.jsonl", log)
}

fn live_command_on(dir: &Path, input: &str, log: &Path) -> Command {
    live_scenario_command(dir, "pageviews", input, log)
}

fn live_scenario_command(dir: &Path, scenario: &str, input: &str, log: &Path) -> Command {
    let mut command = Command::new(EDDY);
    command
        .args(["run", "--live", "--scenario", scenario, "--checkpoint-interval", "50"])
        .arg("--rate")
        .arg(RATE.to_string())
        .arg("--input")
        .arg(dir.join(input))
        .arg("--output")
        .arg(dir.join("live.jsonl"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(log).expect("create the log")));
    command
}

/// A child process that is killed when dropped: a failing assertion must not leave a
/// followed run (which never ends) behind.
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Already ended (and reaped) in a passing test: both calls fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_bounded(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + CHILD_LIMIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for eddy") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("eddy run --live did not end within {CHILD_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The completed checkpoints in the state directory, ascending.
fn completed_checkpoints(state: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = fs::read_dir(state) else {
        return Vec::new(); // not created yet
    };
    let mut found: Vec<(u64, PathBuf)> = entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let id = path.file_name()?.to_str()?.strip_prefix("chk-")?.parse().ok()?;
            path.join("MANIFEST").is_file().then_some((id, path))
        })
        .collect();
    found.sort();
    found
}

/// Reference: views per (page, window) counted from the input lines with a BTreeMap, in
/// the output's line format. (No input record is late: the generator's disorder stays
/// within the pipeline's out-of-orderness bound.)
fn reference_lines(input: &str) -> Vec<String> {
    let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    for line in input.lines().filter(|l| !l.trim().is_empty()) {
        let event: serde_json::Value = serde_json::from_str(line).expect("input lines are JSON");
        let ts = event["ts"].as_i64().expect("ts");
        let page = event["value"]["page"].as_u64().expect("page");
        *counts.entry((ts.div_euclid(WINDOW_MS) * WINDOW_MS, page)).or_default() += 1;
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|((start, page), views)| {
            format!(
                r#"{{"window_start":{start},"window_end":{},"page":{page},"views":{views}}}"#,
                start + WINDOW_MS
            )
        })
        .collect();
    lines.sort();
    lines
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).expect("read output");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: a torn last line",
        path.display()
    );
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

/// A batch run of `scenario` over `EVENTS` events of `seed`: its input in `DIR/in.jsonl`,
/// its output in `DIR/batch.jsonl`.
fn batch_run(dir: &Path, scenario: &str, seed: u64) {
    let batch = Command::new(EDDY)
        .args(["run", "--scenario", scenario, "--seed", &seed.to_string(), "--events"])
        .arg(EVENTS.to_string())
        .arg("--emit-input")
        .arg(dir.join("in.jsonl"))
        .arg("--output")
        .arg(dir.join("batch.jsonl"))
        .status()
        .expect("run eddy");
    assert!(batch.success(), "the batch run of {scenario} failed");
}

#[test]
fn killed_three_times_and_a_corrupt_checkpoint_still_commit_exactly_the_batch_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    batch_run(dir, "pageviews", 11);
    let expected = sorted_lines(&dir.join("batch.jsonl"));
    assert_eq!(
        expected,
        reference_lines(&fs::read_to_string(dir.join("in.jsonl")).expect("read input")),
        "the batch run disagrees with the reference count"
    );

    // Each run completes a checkpoint of its own, then dies at a random moment (from a
    // fixed seed, so that a failure replays) within the next 400 ms: 4 000 events at most
    // at this pace, so every kill lands mid-run.
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let state = dir.join("state");
    let newest = |state: &Path| completed_checkpoints(state).last().map(|(id, _)| *id);
    for run in 0..3 {
        let before = newest(&state);
        let log = dir.join(format!("kill-{run}.log"));
        let mut child = Running(live_command(dir, &log).spawn().expect("start eddy run --live"));
        let deadline = Instant::now() + CHILD_LIMIT;
        while newest(&state) <= before {
            assert!(Instant::now() < deadline, "run {run} completed no checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        let delay = Duration::from_millis(rng.gen_range(0..400));
        eprintln!("run {run}: SIGKILL {delay:?} after checkpoint {:?}", newest(&state));
        std::thread::sleep(delay);
        assert!(
            child.try_wait().expect("poll eddy").is_none(),
            "run {run} ended before its kill: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        child.kill().expect("SIGKILL eddy");
        let status = wait_bounded(&mut child);
        assert!(!status.success(), "a killed run does not exit cleanly");
    }

    // Flip one byte in a task snapshot of the newest checkpoint: it no longer decodes.
    let checkpoints = completed_checkpoints(&state);
    assert!(
        checkpoints.len() >= 2,
        "a previous checkpoint to fall back to: {checkpoints:?}"
    );
    let (newest, newest_dir) = checkpoints.last().expect("checked above").clone();
    let previous = checkpoints[checkpoints.len() - 2].0;
    let snapshot = newest_dir.join("task-0-0.snap");
    let mut bytes = fs::read(&snapshot).expect("read a task snapshot");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    fs::write(&snapshot, bytes).expect("corrupt the snapshot");

    let log = dir.join("final.log");
    let mut child = Running(live_command(dir, &log).spawn().expect("start eddy run --live"));
    let status = wait_bounded(&mut child);
    let stderr = fs::read_to_string(&log).expect("read the log");
    assert!(status.success(), "the final run failed: {stderr}");
    assert!(
        stderr.contains(&format!("cannot restore checkpoint {newest}, falling back")),
        "recovery did not report the corrupt checkpoint {newest}: {stderr}"
    );
    assert!(
        stderr.contains(&format!("restored checkpoint {previous};")),
        "recovery did not fall back to checkpoint {previous}: {stderr}"
    );
    assert!(
        stderr.contains("events/s") && stderr.contains("watermark"),
        "no progress lines: {stderr}"
    );

    let live = sorted_lines(&dir.join("live.jsonl"));
    let missing: Vec<&String> = expected.iter().filter(|l| live.binary_search(l).is_err()).collect();
    assert!(
        missing.is_empty(),
        "lost {} lines, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(live, expected, "the live output has lines twice or extra lines");
}

/// Generates `events` pageviews with `seed` as JSON lines; returns them and the batch output.
fn generate(dir: &Path, seed: u64, events: usize) -> (String, Vec<String>) {
    let status = Command::new(EDDY)
        .args(["run", "--scenario", "pageviews", "--seed"])
        .arg(seed.to_string())
        .arg("--events")
        .arg(events.to_string())
        .arg("--emit-input")
        .arg(dir.join("generated.jsonl"))
        .arg("--output")
        .arg(dir.join("batch.jsonl"))
        .status()
        .expect("run eddy");
    assert!(status.success(), "the batch run failed");
    let input = fs::read_to_string(dir.join("generated.jsonl")).expect("read input");
    (input, sorted_lines(&dir.join("batch.jsonl")))
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open input");
    file.write_all(text.as_bytes()).expect("append input");
}

/// Waits until `path` holds `lines` lines (bounded).
fn wait_for_lines(path: &Path, lines: usize, child: &mut Child) {
    let deadline = Instant::now() + CHILD_LIMIT;
    while fs::read_to_string(path).map_or(0, |t| t.lines().count()) < lines {
        assert!(child.try_wait().expect("poll eddy").is_none(), "the follow run ended");
        assert!(Instant::now() < deadline, "the output did not reach {lines} lines");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_followed_file_is_read_as_it_grows_across_a_kill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let (input, expected) = generate(dir, 12, 20_000);
    let lines: Vec<&str> = input.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    let followed = dir.join("followed.jsonl");
    append(&followed, &(first.join("\n") + "\n"));

    let mut child = Running(
        live_command_on(dir, "followed.jsonl", &dir.join("follow-0.log"))
            .arg("--follow")
            .spawn()
            .expect("start eddy run --live --follow"),
    );
    std::thread::sleep(Duration::from_millis(700));
    // The second half arrives while it runs, the last line in two writes (a torn line
    // waits for its line break).
    let (last, second) = second.split_last().expect("input");
    append(&followed, &(second.join("\n") + "\n"));
    let (head, tail) = last.split_at(last.len() / 2);
    append(&followed, head);
    std::thread::sleep(Duration::from_millis(300));
    let deadline = Instant::now() + CHILD_LIMIT;
    while completed_checkpoints(&dir.join("state")).is_empty() {
        assert!(Instant::now() < deadline, "the follow run completed no checkpoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL eddy");
    wait_bounded(&mut child);
    append(&followed, &format!("{tail}\n"));
    // One far-future view per partition (4) moves every split's watermark past every
    // window, so all windows of the real input are final; theirs stay open.
    for page in 0..4 {
        append(
            &followed,
            &format!("{{\"ts\":1000000000000,\"value\":{{\"page\":{page},\"user\":0}}}}\n"),
        );
    }

    let log = dir.join("follow-1.log");
    let mut child = Running(
        live_command_on(dir, "followed.jsonl", &log)
            .arg("--follow")
            .spawn()
            .expect("restart"),
    );
    wait_for_lines(&dir.join("live.jsonl"), expected.len(), &mut child);
    std::thread::sleep(Duration::from_millis(300)); // nothing more may come
    assert!(
        child.try_wait().expect("poll eddy").is_none(),
        "a followed run does not end"
    );
    // A second process on the same state directory is refused while this one holds it (the
    // restart above took the lock that the killed run held: kill -9 releases it).
    let second_log = dir.join("second.log");
    let mut second = Running(
        live_command_on(dir, "followed.jsonl", &second_log)
            .spawn()
            .expect("start a second eddy"),
    );
    let status = wait_bounded(&mut second);
    let second_stderr = fs::read_to_string(&second_log).expect("read the second log");
    assert_eq!(status.code(), Some(2), "{second_stderr}");
    assert!(
        second_stderr.contains("is in use by another process"),
        "{second_stderr}"
    );
    child.kill().expect("SIGKILL eddy");
    wait_bounded(&mut child);
    let stderr = fs::read_to_string(&log).expect("read the log");
    assert!(stderr.contains("restored checkpoint"), "{stderr}");
    assert_eq!(sorted_lines(&dir.join("live.jsonl")), expected);
}

/// Debezium change events, live: killed twice, the committed changelog (`+I`/`-U`/`+U`/`-D`
/// lines) materialises into exactly the batch run's table (`eddy materialize`).
#[test]
fn a_debezium_changelog_killed_twice_materialises_to_the_batch_table() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    batch_run(dir, "cdc-orders", 5);
    let state = dir.join("state");
    let newest = |state: &Path| completed_checkpoints(state).last().map(|(id, _)| *id);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for run in 0..2 {
        let before = newest(&state);
        let log = dir.join(format!("kill-{run}.log"));
        let command = &mut live_scenario_command(dir, "cdc-orders", "in.jsonl", &log);
        let mut child = Running(command.spawn().expect("start eddy run --live"));
        let deadline = Instant::now() + CHILD_LIMIT;
        while newest(&state) <= before {
            assert!(Instant::now() < deadline, "run {run} completed no checkpoint");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..400)));
        assert!(
            child.try_wait().expect("poll eddy").is_none(),
            "run {run} ended before its kill"
        );
        child.kill().expect("SIGKILL eddy");
        wait_bounded(&mut child);
    }
    let log = dir.join("final.log");
    let mut child = Running(
        live_scenario_command(dir, "cdc-orders", "in.jsonl", &log)
            .spawn()
            .expect("start eddy run --live"),
    );
    let status = wait_bounded(&mut child);
    assert!(
        status.success(),
        "the final run failed: {}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    let materialized = Command::new(EDDY)
        .arg("materialize")
        .arg(dir.join("live.jsonl"))
        .arg("--output")
        .arg(dir.join("table.jsonl"))
        .output()
        .expect("run eddy materialize");
    assert!(
        materialized.status.success(),
        "the committed changelog does not materialise: {}",
        String::from_utf8_lossy(&materialized.stderr)
    );
    assert_eq!(
        sorted_lines(&dir.join("table.jsonl")),
        sorted_lines(&dir.join("batch.jsonl"))
    );
}

#[test]
fn a_malformed_debezium_event_stops_a_live_run_naming_its_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let good = r#"{"op":"c","before":null,"after":{"id":1,"name":"ada","region":"eu"},"source":{"table":"customers","lsn":4},"ts_ms":1000}"#;
    let missing_after = r#"{"op":"u","before":{"id":1,"name":"ada","region":"eu"},"after":null,"source":{"table":"customers","lsn":9},"ts_ms":2000}"#;
    fs::write(dir.join("in.jsonl"), format!("{good}\n{missing_after}\n")).expect("write the input");
    let log = dir.join("run.log");
    let status = live_scenario_command(dir, "cdc-orders", "in.jsonl", &log)
        .status()
        .expect("run eddy");
    let stderr = fs::read_to_string(&log).expect("read the log");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("in.jsonl:2") && stderr.contains("after"), "{stderr}");
}

/// The generated Debezium lines (MySQL orders wrapped, PostgreSQL customers bare) with what a
/// topic dump also holds: a tombstone after each delete, a truncate and a line that is not
/// JSON. Read live with `--ignore-parse-errors`, the two are skipped and reported, the
/// tombstones read as nothing, and the committed changelog materialises into the batch table.
#[test]
fn a_live_debezium_run_reads_tombstones_and_skips_what_it_is_told_to() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let batch = Command::new(EDDY)
        .args([
            "run",
            "--scenario",
            "cdc-orders",
            "--seed",
            "8",
            "--events",
            "3000",
            "--emit-input",
        ])
        .arg(dir.join("generated.jsonl"))
        .arg("--output")
        .arg(dir.join("batch.jsonl"))
        .status()
        .expect("run eddy");
    assert!(batch.success());
    let generated = fs::read_to_string(dir.join("generated.jsonl")).expect("read input");
    assert!(generated.contains(r#""payload":{"#) && generated.contains(r#""file":"mysql-bin."#));
    let mut input = String::new();
    let mut truncate_line = 0;
    for (i, line) in generated.lines().enumerate() {
        input.push_str(line);
        input.push('\n');
        if line.contains(r#""op":"d""#) {
            input.push_str("null\n");
        }
        if i == 100 {
            truncate_line = input.lines().count() + 1;
            input.push_str(r#"{"op":"t","source":{"connector":"mysql","table":"orders","file":"mysql-bin.000003","pos":4,"row":0},"ts_ms":1}"#);
            input.push_str("\nnot json\n");
        }
    }
    assert!(truncate_line > 102, "tombstones came before the truncate");
    fs::write(dir.join("in.jsonl"), &input).expect("write the input");
    let log = dir.join("live.log");
    let status = live_scenario_command(dir, "cdc-orders", "in.jsonl", &log)
        .arg("--ignore-parse-errors")
        .status()
        .expect("run eddy");
    let stderr = fs::read_to_string(&log).expect("read the log");
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("in.jsonl:{truncate_line}: `op` is \"t\""))
            && stderr.contains(&format!("in.jsonl:{}: not JSON", truncate_line + 1))
            && stderr.contains("skipped 2 input lines"),
        "{stderr}"
    );
    let materialized = Command::new(EDDY)
        .arg("materialize")
        .arg(dir.join("live.jsonl"))
        .arg("--output")
        .arg(dir.join("table.jsonl"))
        .status()
        .expect("run eddy materialize");
    assert!(materialized.success());
    assert_eq!(
        sorted_lines(&dir.join("table.jsonl")),
        sorted_lines(&dir.join("batch.jsonl"))
    );

    // Followed, a line that does not parse is reported when it is read, and the run goes on.
    let followed = dir.join("followed.jsonl");
    fs::write(&followed, "not json\n").expect("write the input");
    let follow_log = dir.join("follow.log");
    let mut child = Running(
        Command::new(EDDY)
            .args([
                "run",
                "--live",
                "--follow",
                "--ignore-parse-errors",
                "--scenario",
                "cdc-orders",
            ])
            .args(["--checkpoint-interval", "50", "--input"])
            .arg(&followed)
            .arg("--output")
            .arg(dir.join("followed-out.jsonl"))
            .arg("--state-dir")
            .arg(dir.join("follow-state"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(File::create(&follow_log).expect("create the log")))
            .spawn()
            .expect("start eddy run --live --follow"),
    );
    append(
        &followed,
        &(generated.lines().take(50).collect::<Vec<_>>().join("\n") + "\n"),
    );
    wait_for_lines(&dir.join("followed-out.jsonl"), 1, &mut child);
    let follow_stderr = fs::read_to_string(&follow_log).expect("read the log");
    assert!(
        follow_stderr.contains("live: skipped ") && follow_stderr.contains("followed.jsonl:1: not JSON"),
        "{follow_stderr}"
    );
}
