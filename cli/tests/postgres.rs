//! `eddy run --live --postgres` against a real PostgreSQL (docs/live.md, "Into
//! PostgreSQL"): a server started here in a temporary directory (`initdb`, then `postgres`
//! on a unix socket there), the live run killed with SIGKILL at three random moments and
//! restarted; the table then holds exactly the batch run's lines and no transaction is left
//! prepared. A server without `max_prepared_transactions` is refused with a message naming
//! the setting. Without PostgreSQL installed (Debian's `postgresql`; `.ci/run` installs
//! it) the tests say so and pass.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EDDY: &str = env!("CARGO_BIN_EXE_eddy");
const EVENTS: usize = 30_000;
/// A whole run takes `EVENTS / RATE` = 3 s.
const RATE: u64 = 10_000;
/// A child that runs longer than this is a hang, not a slow machine.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// The directory with `initdb`, `postgres` and `psql`: on the PATH, else Debian's
/// `/usr/lib/postgresql/VERSION/bin` (the newest).
fn postgres_bin() -> Option<PathBuf> {
    let has_all = |dir: &Path| ["initdb", "postgres", "psql"].iter().all(|b| dir.join(b).is_file());
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(dir) = std::env::split_paths(&path).find(|dir| has_all(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            has_all(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn output(command: &mut Command) -> (bool, String) {
    let out = command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A PostgreSQL server in a temporary directory, listening on a unix socket there only;
/// stopped (fast shutdown) when dropped.
struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Run as this user: PostgreSQL refuses to run as root.
    user: Option<String>,
    postmaster: Option<Child>,
}

impl Server {
    /// Initialises a cluster in `dir`; `None` (with the reason) if that cannot be done here.
    fn init(dir: &Path) -> Result<Server, String> {
        let bin = postgres_bin().ok_or("PostgreSQL is not installed (no initdb, postgres and psql on the PATH or in /usr/lib/postgresql/*/bin; apt-get install postgresql)")?;
        let (_, uid) = output(Command::new("id").arg("-u"));
        let user = if uid.trim() == "0" {
            let (exists, _) = output(Command::new("id").arg("postgres"));
            if !exists {
                return Err("running as root and there is no `postgres` user to run the server as".into());
            }
            let (chowned, text) = output(Command::new("chown").args(["-R", "postgres"]).arg(dir));
            assert!(chowned, "chown the server's directory: {text}");
            Some("postgres".to_string())
        } else {
            None
        };
        let port = 20_000 + (std::process::id() % 20_000) as u16;
        let server = Server {
            bin,
            dir: dir.to_path_buf(),
            port,
            user,
            postmaster: None,
        };
        let (ok, text) = output(server.command("initdb").arg("-D").arg(dir.join("data")).args([
            "-U",
            "eddy",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]));
        assert!(ok, "initdb failed: {text}");
        Ok(server)
    }

    /// `program` of the server's binaries, as the server's user.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        match &self.user {
            Some(user) => {
                let mut command = Command::new("setpriv");
                command
                    .args([
                        format!("--reuid={user}"),
                        format!("--regid={user}"),
                        "--init-groups".into(),
                    ])
                    .arg(program);
                command
            }
            None => Command::new(program),
        }
    }

    /// Starts the server with `max_prepared_transactions` and waits until it answers.
    fn start(&mut self, max_prepared_transactions: u32) {
        let log = File::create(self.dir.join(format!("server-{max_prepared_transactions}.log"))).expect("server log");
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-k")
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-c",
                "listen_addresses=",
                "-c",
                "fsync=off",
            ])
            .args(["-c", &format!("max_prepared_transactions={max_prepared_transactions}")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start postgres");
        self.postmaster = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.psql("SELECT 1").0 {
            assert!(Instant::now() < deadline, "the server did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fast shutdown (SIGINT), and waits for the postmaster to end.
    fn stop(&mut self) {
        if let Some(mut child) = self.postmaster.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// The connection string `eddy run --postgres` takes.
    fn url(&self) -> String {
        format!(
            "host={} port={} user=eddy dbname=postgres",
            self.dir.display(),
            self.port
        )
    }

    /// Runs `sql` with psql; its unaligned output.
    fn psql(&self, sql: &str) -> (bool, String) {
        output(
            Command::new(self.bin.join("psql"))
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(&self.dir)
                .args(["-p", &self.port.to_string(), "-U", "eddy", "-d", "postgres", "-c", sql]),
        )
    }

    fn query(&self, sql: &str) -> Vec<String> {
        let (ok, text) = self.psql(sql);
        assert!(ok, "{sql}: {text}");
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines.sort();
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A temporary directory the server's user can enter, and the server in it; `None` after
/// printing why the test is skipped.
fn server(dir: &Path) -> Option<Server> {
    match Server::init(dir) {
        Ok(server) => Some(server),
        Err(reason) => {
            eprintln!("postgres: SKIPPED: {reason}");
            None
        }
    }
}

fn live_command(dir: &Path, url: &str, log: &Path) -> Command {
    let mut command = Command::new(EDDY);
    command
        .args([
            "run",
            "--live",
            "--scenario",
            "pageviews",
            "--checkpoint-interval",
            "50",
        ])
        .arg("--rate")
        .arg(RATE.to_string())
        .arg("--input")
        .arg(dir.join("in.jsonl"))
        .args(["--postgres", url, "--table", "page_views"])
        // The late side output is not the table's: it goes to a file.
        .arg("--output")
        .arg(dir.join("late.jsonl"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::from(File::create(log).expect("create the log")));
    command
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

#[test]
fn killed_three_times_the_table_holds_exactly_the_batch_lines_and_nothing_stays_prepared() {
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path();
    let Some(mut server) = server(dir) else { return };
    let (ok, text) = output(
        Command::new(EDDY)
            .args(["run", "--scenario", "pageviews", "--seed", "5", "--events"])
            .arg(EVENTS.to_string())
            .arg("--emit-input")
            .arg(dir.join("in.jsonl"))
            .arg("--output")
            .arg(dir.join("batch.jsonl")),
    );
    assert!(ok, "the batch run failed: {text}");
    // The batch lines: the table's rows, and the late side output's lines.
    let (mut late_expected, mut expected): (Vec<String>, Vec<String>) = fs::read_to_string(dir.join("batch.jsonl"))
        .expect("read the batch output")
        .lines()
        .map(String::from)
        .partition(|line| line.starts_with(r#"{"output":"late""#));
    expected.sort();
    late_expected.sort();

    // Without a file for the late side output the run is refused, naming the output.
    server.start(16);
    let (ok, text) = output(
        Command::new(EDDY)
            .args(["run", "--live", "--scenario", "pageviews", "--postgres", &server.url()])
            .arg("--state-dir")
            .arg(dir.join("no-file-state")),
    );
    assert!(!ok && text.contains("also `late`: give --output FILE for it"), "{text}");
    server.stop();

    // Without prepared transactions the run is refused, naming the setting.
    server.start(0);
    let (ok, text) = output(live_command(dir, &server.url(), &dir.join("refused.log")).stderr(Stdio::piped()));
    assert!(!ok && text.contains("max_prepared_transactions"), "{text}");
    server.stop();
    server.start(16);

    // Each run dies at a random moment (from a fixed seed, so that a failure replays).
    let mut rng = ChaCha8Rng::seed_from_u64(18);
    let mut prepared_seen = 0;
    for run in 0..3 {
        let log = dir.join(format!("kill-{run}.log"));
        let mut child = live_command(dir, &server.url(), &log)
            .spawn()
            .expect("start eddy run --live");
        let delay = Duration::from_millis(rng.gen_range(300..1_500));
        std::thread::sleep(delay);
        assert!(
            child.try_wait().expect("poll eddy").is_none(),
            "run {run} ended before its kill: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
        child.kill().expect("SIGKILL eddy");
        assert!(
            !wait_bounded(&mut child).success(),
            "a killed run does not exit cleanly"
        );
        let prepared = server.query("SELECT gid FROM pg_prepared_xacts");
        eprintln!("run {run}: SIGKILL after {delay:?}; prepared then: {prepared:?}");
        prepared_seen += prepared.len();
    }
    eprintln!("{prepared_seen} prepared transactions found after the kills");

    let log = dir.join("last.log");
    let mut child = live_command(dir, &server.url(), &log)
        .spawn()
        .expect("start eddy run --live");
    let status = wait_bounded(&mut child);
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "the last run failed: {text}");
    assert!(
        text.contains("live: restored checkpoint"),
        "the last run restored: {text}"
    );

    let table = server.query("SELECT row_to_json(t) FROM page_views t");
    if table != expected {
        // What each run said and which rows differ: a failure here is timing-dependent.
        for name in ["kill-0.log", "kill-1.log", "kill-2.log", "last.log"] {
            eprintln!("{name}:\n{}", fs::read_to_string(dir.join(name)).unwrap_or_default());
        }
        let missing: Vec<&String> = expected.iter().filter(|row| !table.contains(row)).take(5).collect();
        let extra: Vec<&String> = table.iter().filter(|row| !expected.contains(row)).take(5).collect();
        eprintln!(
            "rows missing from the table (first 5): {missing:?}\nrows not in the batch output (first 5): {extra:?}"
        );
    }
    assert_eq!(table.len(), expected.len(), "rows in the table vs batch lines");
    assert_eq!(table, expected, "the table differs from the batch output");
    let mut late: Vec<String> = fs::read_to_string(dir.join("late.jsonl"))
        .expect("read the late side output")
        .lines()
        .map(String::from)
        .collect();
    late.sort();
    assert_eq!(late, late_expected, "the late side output differs from the batch run's");
    assert_eq!(
        server.query("SELECT gid FROM pg_prepared_xacts"),
        Vec::<String>::new(),
        "transactions left prepared after a clean end"
    );
}
