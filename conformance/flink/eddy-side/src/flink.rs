//! The Flink side, driven from here: one JVM (`eddy.conformance.FlinkSide`) running one
//! local MiniCluster for the whole suite. Scripts and outputs go through files in the work
//! directory; requests and answers through the JVM's stdin and stdout (see FlinkSide.java).

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::cases::Case;
use crate::compare::{Outputs, Tagged};
use crate::script::Script;

pub struct Flink {
    child: Child,
    /// Taken when the suite ends: closing it ends the JVM's request loop.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    dir: PathBuf,
    log: PathBuf,
    /// Scripts per job: each runs as a pipeline of its own, all in one job.
    batch: usize,
    next_file: u64,
}

impl Flink {
    /// Starts the JVM and waits until its MiniCluster is up.
    pub fn start(java: &str, classpath: &str, dir: &Path, batch: usize) -> Result<Flink, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let log = dir.join("flink.log");
        let stderr = fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(java)
            .args([
                "-Xmx1g",
                "-XX:+UseSerialGC",
                "-cp",
                classpath,
                "eddy.conformance.FlinkSide",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {java}: {e}"))?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut flink = Flink {
            child,
            stdin: Some(stdin),
            stdout,
            dir: dir.to_path_buf(),
            log,
            batch: batch.max(1),
            next_file: 0,
        };
        flink.answer("@@ready")?;
        Ok(flink)
    }

    /// Reads stdout up to the next line starting with `@@` (Flink's own lines are skipped);
    /// an `@@error` or the end of stdout is an error.
    fn answer(&mut self, expected: &str) -> Result<(), String> {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("the Flink side exited (see {})", self.log.display()));
            }
            let line = line.trim_end();
            if line == expected {
                return Ok(());
            }
            if let Some(error) = line.strip_prefix("@@error") {
                return Err(format!("the Flink side failed:{error} (see {})", self.log.display()));
            }
        }
    }

    /// Runs `case` over each script; returns each script's outputs.
    pub fn run(&mut self, case: &Case, scripts: &[Script]) -> Result<Vec<Outputs>, String> {
        let mut all = Vec::with_capacity(scripts.len());
        for chunk in scripts.chunks(self.batch) {
            let mut request = format!("batch\t{}", case.spec());
            let mut outs = Vec::new();
            for script in chunk {
                self.next_file += 1;
                let script_path = self.dir.join(format!("script-{}.txt", self.next_file));
                let out_path = self.dir.join(format!("flink-{}.txt", self.next_file));
                fs::write(&script_path, case.flink_input(script)).map_err(|e| e.to_string())?;
                request += &format!("\t{}\t{}", script_path.display(), out_path.display());
                outs.push((script_path, out_path));
            }
            let stdin = self.stdin.as_mut().expect("open until dropped");
            writeln!(stdin, "{request}")
                .and_then(|()| stdin.flush())
                .map_err(|e| format!("cannot reach the Flink side: {e}"))?;
            self.answer("@@ok")?;
            for (script_path, out_path) in outs {
                let text = fs::read_to_string(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
                all.push(parse(&text)?);
                let _ = fs::remove_file(script_path);
                let _ = fs::remove_file(out_path);
            }
        }
        Ok(all)
    }
}

impl Drop for Flink {
    fn drop(&mut self) {
        // The JVM then shuts its MiniCluster down and exits.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// `stream TAB watermark TAB payload` lines.
fn parse(text: &str) -> Result<Outputs, String> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let (Some(stream), Some(watermark), Some(payload)) = (fields.next(), fields.next(), fields.next()) else {
                return Err(format!("bad output line from the Flink side: {line}"));
            };
            Ok(Tagged {
                stream: stream.to_string(),
                watermark: watermark
                    .parse()
                    .map_err(|_| format!("bad watermark in output line: {line}"))?,
                payload: payload.to_string(),
            })
        })
        .collect()
}
