//! A [`SnapshotStore`] on the local file system: the I/O half of checkpointing, which the
//! sans-IO engine leaves to its driver.
//!
//! [`FsSnapshotStore`] owns one directory and everything in it:
//!
//! ```text
//! DIR/chk-00000000000000000007/task-1-0.snap   task 1.0's snapshot of checkpoint 7
//! DIR/chk-00000000000000000007/MANIFEST        written last: checkpoint 7 is complete
//! ```
//!
//! Ids are zero-padded to 20 digits (every `u64`), so names sort as ids do.
//!
//! Every object is written to `.<name>.tmp` beside its final name, fsynced, renamed into
//! place, and the directory is fsynced: a reader (or a process restarted after a crash)
//! sees either the whole object or none of it, never a torn write. The coordinator writes
//! the manifest after every task snapshot, so the atomic rename of `MANIFEST` is the commit
//! point of a checkpoint: a `chk-*` directory without one is an unfinished checkpoint, not
//! listed by [`SnapshotStore::checkpoints`], though its id still counts as used
//! ([`SnapshotStore::highest_checkpoint`]) because ids are never reused. Corruption after
//! the fact (a flipped bit on disk) is caught by the snapshots' own checksums when
//! recovery decodes them, and recovery falls back to an older checkpoint.
//!
//! One process writes a store at a time: a writer holds [`FsSnapshotStore::lock`] (an
//! advisory lock on `DIR/LOCK`, released by the OS when the process dies, `kill -9`
//! included). Entries the store did not write (other names, leftover temporary files) are
//! ignored.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use eddy_engine::{CheckpointId, ObjectKey, SnapshotStore, StoreError};

const CHECKPOINT_PREFIX: &str = "chk-";
const MANIFEST: &str = "MANIFEST";
const LOCK: &str = "LOCK";

/// Held while a process writes a store ([`FsSnapshotStore::lock`]).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// Checkpoints stored as files under one directory (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct FsSnapshotStore {
    dir: PathBuf,
}

impl FsSnapshotStore {
    /// Opens the store in `dir`, creating the directory if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| StoreError::WriteFailed {
            object: "snapshot store".into(),
            reason: reason(&dir, &e),
        })?;
        if !dir.is_dir() {
            return Err(StoreError::WriteFailed {
                object: "snapshot store".into(),
                reason: format!("{}: not a directory", dir.display()),
            });
        }
        Ok(FsSnapshotStore { dir })
    }

    /// Takes the store for this process until the returned guard drops: a second writer
    /// would interleave checkpoint ids and truncate the output behind the first one's back.
    pub fn lock(&self) -> Result<StoreLock, StoreError> {
        let path = self.dir.join(LOCK);
        let file = File::create(&path).map_err(|e| StoreError::WriteFailed {
            object: LOCK.into(),
            reason: reason(&path, &e),
        })?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(StoreError::WriteFailed {
                object: "snapshot store".into(),
                reason: format!(
                    "{} is in use by another process (it holds {})",
                    self.dir.display(),
                    path.display()
                ),
            }),
            Err(fs::TryLockError::Error(e)) => Err(StoreError::WriteFailed {
                object: LOCK.into(),
                reason: reason(&path, &e),
            }),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of `checkpoint`'s objects.
    pub fn checkpoint_dir(&self, checkpoint: CheckpointId) -> PathBuf {
        self.dir.join(format!("{CHECKPOINT_PREFIX}{checkpoint:020}"))
    }

    /// The file that holds `key` (whether or not it exists).
    pub fn path(&self, key: ObjectKey) -> PathBuf {
        self.checkpoint_dir(key.checkpoint()).join(file_name(key))
    }

    /// Stores a driver's own object `name` beside `checkpoint`'s task snapshots (written
    /// like them: whole or not at all). Write it before the manifest, so that a complete
    /// checkpoint has it; the store's own names (`MANIFEST`, `task-*`) are not allowed.
    pub fn put_extra(&mut self, checkpoint: CheckpointId, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        assert!(
            name != MANIFEST && !name.starts_with("task-") && !name.starts_with('.') && !name.contains('/'),
            "`{name}` is not a name for a driver's object"
        );
        let write_failed = |(path, e): (PathBuf, io::Error)| StoreError::WriteFailed {
            object: format!("checkpoint {checkpoint} {name}"),
            reason: reason(&path, &e),
        };
        let dir = self.create_checkpoint_dir(checkpoint).map_err(write_failed)?;
        write_atomically(&dir, name, bytes).map_err(write_failed)
    }

    /// Reads a driver's object stored with [`FsSnapshotStore::put_extra`].
    pub fn get_extra(&self, checkpoint: CheckpointId, name: &str) -> Result<Vec<u8>, StoreError> {
        let path = self.checkpoint_dir(checkpoint).join(name);
        let object = format!("checkpoint {checkpoint} {name}");
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing { object },
            _ => StoreError::ReadFailed {
                object,
                reason: reason(&path, &e),
            },
        })
    }

    /// The directory of `checkpoint`, created (and its entry made durable) if new.
    fn create_checkpoint_dir(&self, checkpoint: CheckpointId) -> Result<PathBuf, (PathBuf, io::Error)> {
        let dir = self.checkpoint_dir(checkpoint);
        match fs::create_dir(&dir) {
            // A new checkpoint directory: make its entry durable before anything in it.
            Ok(()) => sync_dir(&self.dir).map_err(|e| (self.dir.clone(), e))?,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err((dir, e)),
        }
        Ok(dir)
    }

    /// The ids of the `chk-*` directories, with whether each holds a manifest.
    fn scan(&self) -> Result<Vec<(CheckpointId, bool)>, StoreError> {
        let listing_failed = |path: &Path, e: &io::Error| StoreError::ReadFailed {
            object: "checkpoint listing".into(),
            reason: reason(path, e),
        };
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(|e| listing_failed(&self.dir, &e))? {
            let entry = entry.map_err(|e| listing_failed(&self.dir, &e))?;
            let Some(checkpoint) = entry.file_name().to_str().and_then(parse_checkpoint_dir) else {
                continue;
            };
            let path = entry.path();
            match fs::metadata(&path) {
                Ok(metadata) if metadata.is_dir() => {}
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue, // discarded meanwhile
                Err(e) => return Err(listing_failed(&path, &e)),
            }
            let manifest = path.join(MANIFEST);
            let complete = match fs::metadata(&manifest) {
                Ok(metadata) => metadata.is_file(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(listing_failed(&manifest, &e)),
            };
            found.push((checkpoint, complete));
        }
        found.sort_unstable();
        Ok(found)
    }
}

impl SnapshotStore for FsSnapshotStore {
    fn put(&mut self, key: ObjectKey, bytes: Vec<u8>) -> Result<(), StoreError> {
        let write_failed = |(path, e): (PathBuf, io::Error)| StoreError::WriteFailed {
            object: key.to_string(),
            reason: reason(&path, &e),
        };
        let dir = self.create_checkpoint_dir(key.checkpoint()).map_err(write_failed)?;
        write_atomically(&dir, &file_name(key), &bytes).map_err(write_failed)
    }

    fn get(&self, key: ObjectKey) -> Result<Vec<u8>, StoreError> {
        let path = self.path(key);
        fs::read(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::Missing {
                object: key.to_string(),
            },
            _ => StoreError::ReadFailed {
                object: key.to_string(),
                reason: reason(&path, &e),
            },
        })
    }

    fn checkpoints(&self) -> Result<Vec<CheckpointId>, StoreError> {
        Ok(self
            .scan()?
            .into_iter()
            .filter_map(|(checkpoint, complete)| complete.then_some(checkpoint))
            .collect())
    }

    fn highest_checkpoint(&self) -> Result<Option<CheckpointId>, StoreError> {
        Ok(self.scan()?.last().map(|&(checkpoint, _)| checkpoint))
    }

    fn discard(&mut self, checkpoint: CheckpointId) -> Result<(), StoreError> {
        let dir = self.checkpoint_dir(checkpoint);
        let discard_failed = |path: &Path, e: &io::Error| StoreError::WriteFailed {
            object: format!("checkpoint {checkpoint}"),
            reason: reason(path, e),
        };
        // The manifest goes first, so that a crash halfway leaves an unfinished checkpoint
        // (never listed), not a listed one with task snapshots missing.
        let manifest = dir.join(MANIFEST);
        match fs::remove_file(&manifest) {
            Ok(()) => sync_dir(&dir).map_err(|e| discard_failed(&dir, &e))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(discard_failed(&manifest, &e)),
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| discard_failed(&self.dir, &e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(discard_failed(&dir, &e)),
        }
    }
}

fn file_name(key: ObjectKey) -> String {
    match key {
        ObjectKey::Task { node, subtask, .. } => format!("task-{node}-{subtask}.snap"),
        ObjectKey::Manifest { .. } => MANIFEST.to_string(),
    }
}

/// The id of a checkpoint directory's name, only in the form the store writes.
fn parse_checkpoint_dir(name: &str) -> Option<CheckpointId> {
    let digits = name.strip_prefix(CHECKPOINT_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Writes `dir/name` so that it holds all of `bytes` or stays as it was, even across a crash.
fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), (PathBuf, io::Error)> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let written = File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp); // best effort: leftovers are ignored anyway
        return Err((tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err((target, e));
    }
    sync_dir(dir).map_err(|e| (dir.to_path_buf(), e))
}

/// Makes a directory's entries (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some platforms cannot open a directory as a file (Windows) and some file systems
        // refuse to fsync one: there, durability is what the platform gives.
        Err(_) if cfg!(not(unix)) => Ok(()),
        Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported) => Ok(()),
        Err(e) => Err(e),
    }
}

fn reason(path: &Path, e: &io::Error) -> String {
    format!("{}: {e}", path.display())
}
