//! The snapshot format: what a task stores for a checkpoint, and its bytes.
//!
//! Every stored object (a task snapshot, a checkpoint manifest) is framed:
//!
//! ```text
//! magic "EDDY" | format version u16 LE | kind u8 | payload length u32 LE | CRC-32 of payload u32 LE | payload (postcard)
//! ```
//!
//! Decoding is total: corrupt, truncated, foreign or newer bytes return a [`SnapshotError`]
//! saying what was expected and what was found, never a panic. Keyed state is stored per key
//! group, so a checkpoint can be restored at another parallelism (docs/snapshots.md).

use std::collections::BTreeMap;

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::element::{CheckpointId, Timestamp};
use crate::state::{key_group_of, KeyGroup, KeyGroupRange};

/// The first bytes of every eddy snapshot object.
pub const MAGIC: [u8; 4] = *b"EDDY";
/// The snapshot format this build writes and reads (2: window panes carry trigger state).
pub const FORMAT_VERSION: u16 = 2;
const HEADER_LEN: usize = 4 + 2 + 1 + 4 + 4;

/// What a framed object holds; a manifest is never decoded as a task snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    /// A task's snapshot.
    TaskSnapshot = 1,
    /// A checkpoint's manifest.
    Manifest = 2,
}

/// Why stored bytes do not decode: what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Fewer bytes than the header.
    #[error("snapshot too short: {len} bytes, the header alone is {HEADER_LEN}")]
    TooShort {
        /// How many bytes there are.
        len: usize,
    },
    /// The bytes do not start with [`MAGIC`].
    #[error("not an eddy snapshot: magic {found:02x?}, expected {MAGIC:02x?}")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// A format version this build does not read.
    #[error("snapshot format version {found} is not supported (this build reads version {FORMAT_VERSION})")]
    UnsupportedVersion {
        /// The version in the header.
        found: u16,
    },
    /// An object of another kind than the one asked for.
    #[error("expected a {expected:?} object, found kind byte {found}")]
    WrongKind {
        /// The kind asked for.
        expected: ObjectKind,
        /// The kind byte in the header.
        found: u8,
    },
    /// The payload is not as long as the header says.
    #[error("snapshot payload length: header says {expected} bytes, found {found}")]
    LengthMismatch {
        /// The length in the header.
        expected: usize,
        /// The payload's length.
        found: usize,
    },
    /// The payload's CRC-32 is not the one in the header.
    #[error("snapshot checksum mismatch: header says {expected:08x}, payload hashes to {found:08x}")]
    ChecksumMismatch {
        /// The checksum in the header.
        expected: u32,
        /// The payload's checksum.
        found: u32,
    },
    /// The payload does not decode as what it should hold.
    #[error("snapshot payload does not decode as {what}: {reason}")]
    Payload {
        /// What it should hold.
        what: &'static str,
        /// Why it does not decode.
        reason: String,
    },
}

/// Encodes `value` framed with the header (the payload is written after room for the
/// header, which is filled in last: no second copy).
pub fn encode_object<T: Serialize>(kind: ObjectKind, value: &T) -> Vec<u8> {
    let mut bytes = encode_after(vec![0; HEADER_LEN], value);
    let payload = &bytes[HEADER_LEN..];
    let header = [
        &MAGIC[..],
        &FORMAT_VERSION.to_le_bytes(),
        &[kind as u8],
        &(payload.len() as u32).to_le_bytes(),
        &crc32fast::hash(payload).to_le_bytes(),
    ]
    .concat();
    bytes[..HEADER_LEN].copy_from_slice(&header);
    bytes
}

/// Checks the frame and decodes the payload.
pub fn decode_object<T: DeserializeOwned>(kind: ObjectKind, bytes: &[u8]) -> Result<T, SnapshotError> {
    if bytes.len() < HEADER_LEN {
        return Err(SnapshotError::TooShort { len: bytes.len() });
    }
    let magic: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
    if magic != MAGIC {
        return Err(SnapshotError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version });
    }
    if bytes[6] != kind as u8 {
        return Err(SnapshotError::WrongKind {
            expected: kind,
            found: bytes[6],
        });
    }
    let expected_len = u32::from_le_bytes(bytes[7..11].try_into().expect("4 bytes")) as usize;
    let payload = &bytes[HEADER_LEN..];
    if payload.len() != expected_len {
        return Err(SnapshotError::LengthMismatch {
            expected: expected_len,
            found: payload.len(),
        });
    }
    let expected_crc = u32::from_le_bytes(bytes[11..15].try_into().expect("4 bytes"));
    let found_crc = crc32fast::hash(payload);
    if found_crc != expected_crc {
        return Err(SnapshotError::ChecksumMismatch {
            expected: expected_crc,
            found: found_crc,
        });
    }
    decode_payload(payload, std::any::type_name::<T>())
}

/// Decodes postcard bytes of operator state (inside an already checked frame).
pub fn decode_payload<T: DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, SnapshotError> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| SnapshotError::Payload {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(SnapshotError::Payload {
            what,
            reason: format!("{} trailing bytes", rest.len()),
        });
    }
    Ok(value)
}

pub(crate) fn encode_payload<T: Serialize>(value: &T) -> Vec<u8> {
    encode_value(value)
}

/// The compact encoding snapshot payloads use (postcard's format), for any serde value.
pub fn encode_value<T: Serialize>(value: &T) -> Vec<u8> {
    encode_after(Vec::new(), value)
}

/// `value`'s encoding appended to `bytes`.
pub(crate) fn encode_after<T: Serialize>(mut bytes: Vec<u8>, value: &T) -> Vec<u8> {
    crate::codec::encode_into(&mut bytes, value).expect("snapshot state always serialises");
    bytes
}

/// An operator's state at a checkpoint: keyed state per key group, and the operator's own
/// (non-keyed) state, which a restore hands to the operator to redistribute.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorState {
    /// Keyed state: each key group's entries, encoded.
    #[serde(with = "keyed_bytes")]
    pub keyed: BTreeMap<KeyGroup, Vec<u8>>,
    /// The operator's own state, encoded (a source's read positions, a sink's staged transactions).
    #[serde(with = "serde_bytes")]
    pub operator: Vec<u8>,
}

/// `OperatorState::keyed` with each group's payload as one byte string (`serde_bytes`).
mod keyed_bytes {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};
    use serde_bytes::{ByteBuf, Bytes};

    use crate::state::KeyGroup;

    pub fn serialize<S: Serializer>(keyed: &BTreeMap<KeyGroup, Vec<u8>>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(keyed.iter().map(|(group, payload)| (group, Bytes::new(payload))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<KeyGroup, Vec<u8>>, D::Error> {
        let keyed = BTreeMap::<KeyGroup, ByteBuf>::deserialize(deserializer)?;
        Ok(keyed
            .into_iter()
            .map(|(group, payload)| (group, payload.into_vec()))
            .collect())
    }
}

impl OperatorState {
    /// Groups `entries` by the key group of `key_of(entry)`, in their order within a group;
    /// each group encoded on its own (as a sequence of its entries).
    pub fn from_keyed<E: Serialize, K: std::hash::Hash + ?Sized>(
        entries: impl IntoIterator<Item = E>,
        key_of: impl Fn(&E) -> &K,
        max_parallelism: usize,
    ) -> Self {
        let entries: Vec<E> = entries.into_iter().collect();
        let groups: Vec<u32> = entries
            .iter()
            .map(|entry| key_group_of(key_of(entry), max_parallelism).0)
            .collect();
        // A counting sort of the entries' indices by key group (stable, and no entry moves):
        // a sort of the entries themselves cost as much as encoding them.
        let mut starts = vec![0; max_parallelism + 1];
        for &group in &groups {
            starts[group as usize + 1] += 1;
        }
        for group in 0..max_parallelism {
            starts[group + 1] += starts[group];
        }
        let mut next = starts.clone();
        let mut by_group = vec![0; entries.len()];
        for (index, &group) in groups.iter().enumerate() {
            by_group[next[group as usize]] = index;
            next[group as usize] += 1;
        }
        // Each group is encoded into one scratch buffer and copied out at its exact size,
        // instead of growing a vector of its own.
        let mut scratch = Vec::new();
        let mut keyed = BTreeMap::new();
        for group in 0..max_parallelism {
            let run = &by_group[starts[group]..starts[group + 1]];
            if !run.is_empty() {
                scratch.clear();
                scratch = encode_after(std::mem::take(&mut scratch), &GroupEntries(&entries, run));
                keyed.insert(KeyGroup(group as u32), scratch.clone());
            }
        }
        OperatorState {
            keyed,
            operator: Vec::new(),
        }
    }
}

/// One key group's entries (indices into all entries), encoded as the sequence `Vec<E>`
/// would be.
struct GroupEntries<'a, E>(&'a [E], &'a [usize]);

impl<E: Serialize> Serialize for GroupEntries<'_, E> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.1.iter().map(|&index| &self.0[index]))
    }
}

/// One task's snapshot for one checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSnapshot {
    /// The checkpoint the snapshot belongs to.
    pub checkpoint: CheckpointId,
    /// The task's operator: its index in the job graph.
    pub node: usize,
    /// The task's index among its operator's parallel subtasks.
    pub subtask: usize,
    /// The task's watermark when it took the snapshot.
    pub watermark: Timestamp,
    /// The operator's state.
    pub state: OperatorState,
}

impl TaskSnapshot {
    /// The snapshot's bytes, framed.
    pub fn encode(&self) -> Vec<u8> {
        encode_object(ObjectKind::TaskSnapshot, self)
    }

    /// Decodes a task snapshot's framed bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        decode_object(ObjectKind::TaskSnapshot, bytes)
    }
}

/// Written last: a checkpoint without a valid manifest does not exist.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint the manifest completes.
    pub checkpoint: CheckpointId,
    /// Per node: its name and the parallelism the checkpoint was taken at.
    pub nodes: Vec<(String, usize)>,
}

impl Manifest {
    /// The manifest's bytes, framed.
    pub fn encode(&self) -> Vec<u8> {
        encode_object(ObjectKind::Manifest, self)
    }

    /// Decodes a manifest's framed bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        decode_object(ObjectKind::Manifest, bytes)
    }
}

/// What a task restores from: the snapshots of its node's tasks at the checkpoint.
pub struct RestoreContext<'a> {
    /// The restoring task's index among its operator's parallel subtasks.
    pub subtask: usize,
    /// How many parallel subtasks the operator has now.
    pub parallelism: usize,
    /// The key groups whose state the task restores.
    pub key_groups: KeyGroupRange,
    /// The job's max parallelism: the number of key groups.
    pub max_parallelism: usize,
    /// The watermark the task resumes at (never lower than what it had processed).
    pub watermark: Timestamp,
    /// Every old task of the node: `(old subtask, its state)`.
    pub previous: Vec<(usize, &'a OperatorState)>,
}

impl RestoreContext<'_> {
    /// Decodes the keyed entries of this task's key groups, from whichever old task had them.
    pub fn keyed_entries<E: DeserializeOwned>(&self) -> Result<Vec<E>, SnapshotError> {
        let mut entries = Vec::new();
        for (_, state) in &self.previous {
            for (group, bytes) in &state.keyed {
                if self.key_groups.contains(*group) {
                    entries.extend(decode_payload::<Vec<E>>(bytes, "keyed state entries")?);
                }
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TaskSnapshot {
        TaskSnapshot {
            checkpoint: 3,
            node: 1,
            subtask: 0,
            watermark: 42,
            state: OperatorState::from_keyed(vec![(1u64, 10i64), (2, 20)], |e| &e.0, 128),
        }
    }

    #[test]
    fn round_trips_byte_identically() {
        let bytes = sample().encode();
        let decoded = TaskSnapshot::decode(&bytes).unwrap();
        assert_eq!(decoded, sample());
        assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        let bytes = sample().encode();
        assert_eq!(
            TaskSnapshot::decode(&bytes[..5]),
            Err(SnapshotError::TooShort { len: 5 })
        );
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert!(matches!(
            TaskSnapshot::decode(&foreign),
            Err(SnapshotError::BadMagic { .. })
        ));
        let mut newer = bytes.clone();
        newer[4] = 3;
        assert_eq!(
            TaskSnapshot::decode(&newer),
            Err(SnapshotError::UnsupportedVersion { found: 3 })
        );
        assert!(matches!(Manifest::decode(&bytes), Err(SnapshotError::WrongKind { .. })));
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(
            TaskSnapshot::decode(&flipped),
            Err(SnapshotError::ChecksumMismatch { .. })
        ));
        assert!(matches!(
            TaskSnapshot::decode(&bytes[..bytes.len() - 1]),
            Err(SnapshotError::LengthMismatch { .. })
        ));
        let mut appended = bytes;
        appended.push(0);
        assert!(matches!(
            TaskSnapshot::decode(&appended),
            Err(SnapshotError::LengthMismatch { .. })
        ));
    }
}
