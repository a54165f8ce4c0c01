//! A followed input file (`--follow`, like `tail -f`): each poll hands the source the complete
//! lines appended since the last one. It only reads: a line that does not parse is recorded
//! here, and the runtime loop stops the run on it; one skipped (`--ignore-parse-errors`) is
//! reported on stderr and counted.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::options::LiveError;
use eddy_engine::lines::LineFeed;

/// A JSON-lines file followed as it grows (`--follow`, like `tail -f`): each poll hands
/// the source the complete lines appended since the last one. A line still being written
/// (no line break yet) waits for the next poll.
#[derive(Debug)]
pub struct FileFeed {
    path: PathBuf,
    state: Mutex<FeedState>,
}

#[derive(Debug)]
struct FeedState {
    file: File,
    /// Bytes after the last line break read so far.
    partial: Vec<u8>,
    /// Lines read so far (blank ones included): the next line's number minus one.
    lines: usize,
    /// The first error: a line that does not parse, or a failed read.
    error: Option<String>,
    /// Lines that do not parse, skipped.
    skipped: u64,
}

impl FileFeed {
    pub fn open(path: &Path) -> Result<Arc<Self>, LiveError> {
        let file = File::open(path).map_err(|e| LiveError::Input(format!("{}: {e}", path.display())))?;
        Ok(Arc::new(FileFeed {
            path: path.to_path_buf(),
            state: Mutex::new(FeedState {
                file,
                partial: Vec::new(),
                lines: 0,
                error: None,
                skipped: 0,
            }),
        }))
    }

    /// How many lines that do not parse were skipped (`--ignore-parse-errors`).
    pub fn skipped(&self) -> u64 {
        self.lock().skipped
    }

    pub(super) fn take_error(&self) -> Option<LiveError> {
        let error = self.lock().error.take()?;
        Some(LiveError::Input(error))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().expect("followed file poisoned")
    }
}

impl LineFeed for FileFeed {
    fn poll_lines(&self, lines: &mut Vec<(usize, String)>) {
        let mut state = self.lock();
        let FeedState {
            file, partial, error, ..
        } = &mut *state;
        if error.is_some() {
            return;
        }
        if let Err(e) = file.read_to_end(partial) {
            *error = Some(format!("{}: {e}", self.path.display()));
            return;
        }
        let Some(last_break) = partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=last_break).collect();
        for line in complete[..complete.len() - 1].split(|&b| b == b'\n') {
            state.lines += 1;
            let line_number = state.lines;
            match std::str::from_utf8(line) {
                Ok(text) if text.trim().is_empty() => {}
                Ok(text) => lines.push((line_number, text.to_string())),
                Err(e) => {
                    state.error = Some(format!("{}:{line_number}: {e}", self.path.display()));
                    return;
                }
            }
        }
    }

    fn report_error(&self, line_number: usize, reason: String) {
        let mut state = self.lock();
        if state.error.is_none() {
            state.error = Some(format!("{}:{line_number}: {reason}", self.path.display()));
        }
    }

    fn report_skipped(&self, line_number: usize, reason: String) {
        self.lock().skipped += 1;
        eprintln!("live: skipped {}:{line_number}: {reason}", self.path.display());
    }
}
