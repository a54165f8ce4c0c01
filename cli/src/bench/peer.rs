//! The peer: timely dataflow (one worker) computing a workload's results.
//!
//! Records enter at the current epoch; the epoch follows the watermark (`max ts − bound`,
//! advanced every `interval` records), so timely's frontier is the event-time watermark.
//! One operator runs the workload's [`Direct`] logic, holding a capability at the frontier
//! to emit results; a downstream `inspect` folds them into the checksum.

use std::cell::Cell;
use std::rc::Rc;

use eddy::Record;
use timely::communication::allocator::Thread;
use timely::communication::Allocator;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::worker::Worker;
use timely::WorkerConfig;

use super::direct::Direct;

/// Runs `D` in a timely dataflow over `input`; returns the checksum.
pub fn timely<D: Direct>(input: &[Record<D::Event>], bound_ms: i64, interval: usize) -> u64 {
    let mut worker = Worker::new(WorkerConfig::default(), Allocator::Thread(Thread::default()), None);
    let mut records = InputHandle::new();
    let probe = ProbeHandle::new();
    let checksum = Rc::new(Cell::new(0u64));
    let sum = Rc::clone(&checksum);
    worker.dataflow::<i64, _, _>(|scope| {
        scope
            .input_from(&mut records)
            .unary_frontier(Pipeline, "direct", |capability, _info| {
                let mut direct = D::default();
                let mut held = Some(capability);
                let mut watermark = i64::MIN;
                let mut results: Vec<u64> = Vec::new();
                move |(input, frontier), output| {
                    input.for_each(|_time, data: &mut Vec<Record<D::Event>>| {
                        for record in data.iter() {
                            direct.record(record, &mut |hash| results.push(hash));
                        }
                    });
                    let frontier_min = frontier.frontier().iter().min().copied();
                    let next = frontier_min.map_or(i64::MAX, |time| time.saturating_sub(1));
                    if next > watermark {
                        watermark = next;
                        direct.watermark(watermark, &mut |hash| results.push(hash));
                    }
                    if let Some(capability) = &held {
                        if !results.is_empty() {
                            output.session(capability).give_iterator(results.drain(..));
                        }
                    }
                    match frontier_min {
                        Some(time) => {
                            if let Some(capability) = held.as_mut() {
                                capability.downgrade(&time);
                            }
                        }
                        None => held = None,
                    }
                }
            })
            .container::<Vec<u64>>()
            .inspect(move |hash: &u64| sum.set(sum.get().wrapping_add(*hash)))
            .probe_with(&probe);
    });
    let mut max_ts = i64::MIN;
    for chunk in input.chunks(interval) {
        for record in chunk {
            max_ts = max_ts.max(record.ts);
            records.send(record.clone());
        }
        let epoch = max_ts.saturating_sub(bound_ms);
        if epoch > *records.time() {
            records.advance_to(epoch);
        }
        worker.step();
    }
    drop(records);
    while worker.step_or_park(None) {}
    let _ = probe;
    checksum.get()
}
