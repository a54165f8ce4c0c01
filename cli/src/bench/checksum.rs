//! [`Checksum`]: the results of a benchmark run folded into one number, by a sink or a committer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use eddy::engine::{Committer, TransactionId};
use eddy::{Data, Record, Sink, Stream};

/// Folds results into a checksum: a sink for batch runs, a committer for checkpointed ones.
#[derive(Clone)]
pub struct Checksum {
    sum: Arc<AtomicU64>,
    transactional: bool,
}

impl Checksum {
    pub fn new(transactional: bool) -> Self {
        Checksum {
            sum: Arc::default(),
            transactional,
        }
    }

    pub fn get(&self) -> u64 {
        self.sum.load(Ordering::Relaxed)
    }

    /// The sum so far, starting the next run's from zero.
    pub fn take(&self) -> u64 {
        self.sum.swap(0, Ordering::Relaxed)
    }

    /// Attaches the checksum to `stream`, hashing each result with `hash`.
    pub fn attach<T: Data>(&self, stream: Stream<T>, hash: fn(&Record<T>) -> u64) {
        let sink = Hashing {
            checksum: self.clone(),
            hash,
        };
        if self.transactional {
            stream.sink_transactional(sink);
        } else {
            stream.sink(sink);
        }
    }
}

#[derive(Clone)]
struct Hashing<T> {
    checksum: Checksum,
    hash: fn(&Record<T>) -> u64,
}

impl<T> Hashing<T> {
    fn add(&self, records: &[Record<T>]) {
        let sum = records.iter().fold(0u64, |sum, r| sum.wrapping_add((self.hash)(r)));
        self.checksum.sum.fetch_add(sum, Ordering::Relaxed);
    }
}

impl<T: Data> Sink<T> for Hashing<T> {
    fn write(&mut self, records: Vec<Record<T>>) {
        self.add(&records);
    }
}

impl<T: Data> Committer<T> for Hashing<T> {
    fn commit(&mut self, _transaction: TransactionId, records: Vec<Record<T>>) {
        // Without faults every transaction commits once.
        self.add(&records);
    }
}
