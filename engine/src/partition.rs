//! Partitioners: how a sending task spreads a batch over the channels of one edge.

use std::marker::PhantomData;

use crate::element::{Batch, Data, Key, Record};
use crate::state::{key_group_of, subtask_for_key_group};

/// How records of an edge are routed to the receiving operator's tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioning {
    /// Task `i` sends to task `i` (same parallelism on both sides).
    Forward,
    /// Records go round-robin over all receiving tasks.
    Rebalance,
    /// Every receiving task gets every record.
    Broadcast,
    /// By the key's key group: a key always reaches the same task.
    Hash,
}

pub(crate) trait Partitioner: Send {
    /// Sends `batch` (possibly split) to channels `0..channels` through `send`.
    fn partition(&mut self, batch: Batch, channels: usize, send: &mut dyn FnMut(usize, Batch));
}

pub(crate) struct ForwardPartitioner;

impl Partitioner for ForwardPartitioner {
    fn partition(&mut self, batch: Batch, channels: usize, send: &mut dyn FnMut(usize, Batch)) {
        debug_assert_eq!(channels, 1, "a forward edge has one channel per sender");
        send(0, batch);
    }
}

pub(crate) struct BroadcastPartitioner;

impl Partitioner for BroadcastPartitioner {
    fn partition(&mut self, batch: Batch, channels: usize, send: &mut dyn FnMut(usize, Batch)) {
        for channel in 0..channels.saturating_sub(1) {
            send(channel, batch.clone());
        }
        send(channels - 1, batch);
    }
}

pub(crate) struct RebalancePartitioner<T> {
    pub(crate) next: usize,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<T: Data> Partitioner for RebalancePartitioner<T> {
    fn partition(&mut self, batch: Batch, channels: usize, send: &mut dyn FnMut(usize, Batch)) {
        if channels == 1 {
            return send(0, batch);
        }
        let mut split: Vec<Vec<Record<T>>> = (0..channels).map(|_| Vec::new()).collect();
        for record in batch.into_records::<T>() {
            split[self.next % channels].push(record);
            self.next = self.next.wrapping_add(1);
        }
        for (channel, records) in split.into_iter().enumerate() {
            if !records.is_empty() {
                send(channel, Batch::new(records));
            }
        }
    }
}

pub(crate) struct HashPartitioner<T, KS> {
    pub(crate) key_selector: KS,
    pub(crate) max_parallelism: usize,
    pub(crate) _types: PhantomData<fn(T)>,
}

impl<T: Data, K: Key, KS: Fn(&T) -> K + Send> Partitioner for HashPartitioner<T, KS> {
    fn partition(&mut self, batch: Batch, channels: usize, send: &mut dyn FnMut(usize, Batch)) {
        if channels == 1 {
            return send(0, batch);
        }
        let mut split: Vec<Vec<Record<T>>> = (0..channels).map(|_| Vec::new()).collect();
        for record in batch.into_records::<T>() {
            let key_group = key_group_of(&(self.key_selector)(&record.value), self.max_parallelism);
            split[subtask_for_key_group(key_group, channels, self.max_parallelism)].push(record);
        }
        for (channel, records) in split.into_iter().enumerate() {
            if !records.is_empty() {
                send(channel, Batch::new(records));
            }
        }
    }
}
