//! Where the simulator's choices come from: a [`Decisions`] source.
//!
//! [`Seeded`] is the normal source: one `ChaCha8Rng` stream per concern ([`crate::seed`]),
//! drawn exactly as the simulator always drew them, so a seed's run (and its trace hash)
//! does not depend on this abstraction. [`Tape`] reads the choices from a byte string
//! instead — a fuzzer's input — so coverage-guided fuzzing steers interleavings, crashes and
//! fault timings directly; when the tape runs out every further choice is the fixed default
//! (no fault, the first ready step, the smallest amount).

use std::ops::{Range, RangeInclusive};

use rand::distributions::uniform::SampleUniform;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::seed::{rng, Concern};

/// An integer type the simulator draws (sealed to the ones it uses).
pub trait Drawn: SampleUniform + Copy + PartialOrd {
    #[doc(hidden)]
    fn to_i128(self) -> i128;
    #[doc(hidden)]
    fn from_i128(value: i128) -> Self;
}

macro_rules! drawn {
    ($($t:ty),*) => {$(
        impl Drawn for $t {
            fn to_i128(self) -> i128 {
                self as i128
            }
            fn from_i128(value: i128) -> Self {
                value as $t
            }
        }
    )*};
}
drawn!(u8, u32, u64, usize, i64);

/// The simulator's source of choices; `concern` says which stream a choice belongs to.
pub trait Decisions {
    /// True with probability `p`.
    fn chance(&mut self, concern: Concern, p: f64) -> bool;
    /// A value in `range` (not empty).
    fn below<T: Drawn>(&mut self, concern: Concern, range: Range<T>) -> T;
    /// A value in `range` (not empty).
    fn within<T: Drawn>(&mut self, concern: Concern, range: RangeInclusive<T>) -> T;
    /// An index into a slice of `len > 0` elements (as `SliceRandom::choose` picks one).
    fn index(&mut self, concern: Concern, len: usize) -> usize;
}

/// The seeded source: independent ChaCha streams for scheduling, faults and checkpoints.
pub struct Seeded {
    schedule: ChaCha8Rng,
    faults: ChaCha8Rng,
    checkpoints: ChaCha8Rng,
}

impl Seeded {
    /// The streams of the run seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Seeded {
            schedule: rng(seed, Concern::Schedule),
            faults: rng(seed, Concern::Faults),
            checkpoints: rng(seed, Concern::Checkpoints),
        }
    }

    fn stream(&mut self, concern: Concern) -> &mut ChaCha8Rng {
        match concern {
            Concern::Faults => &mut self.faults,
            Concern::Checkpoints => &mut self.checkpoints,
            _ => &mut self.schedule,
        }
    }
}

impl Decisions for Seeded {
    fn chance(&mut self, concern: Concern, p: f64) -> bool {
        self.stream(concern).gen_bool(p)
    }

    fn below<T: Drawn>(&mut self, concern: Concern, range: Range<T>) -> T {
        self.stream(concern).gen_range(range)
    }

    fn within<T: Drawn>(&mut self, concern: Concern, range: RangeInclusive<T>) -> T {
        self.stream(concern).gen_range(range)
    }

    fn index(&mut self, concern: Concern, len: usize) -> usize {
        // What `SliceRandom::choose` draws for a slice shorter than `u32::MAX`.
        self.stream(concern).gen_range(0..len as u32) as usize
    }
}

/// Choices read from bytes, in the order the simulator asks for them (all concerns share
/// the tape). A chance of `p` is one byte, true when the byte is among the top `⌈256 p⌉`
/// values; a value from a range of `n` takes as many bytes as `n` needs, modulo `n`. An
/// exhausted tape answers false, the range's start, index 0.
#[derive(Clone, Debug)]
pub struct Tape<'a> {
    bytes: &'a [u8],
    used: usize,
}

impl<'a> Tape<'a> {
    /// Choices read from `bytes`, first byte first.
    pub fn new(bytes: &'a [u8]) -> Self {
        Tape { bytes, used: 0 }
    }

    /// Bytes read so far.
    pub fn used(&self) -> usize {
        self.used
    }

    fn take(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.used)?;
        self.used += 1;
        Some(byte)
    }

    /// A number in `0..n` (`n > 0`); 0 once the tape is exhausted.
    fn number(&mut self, n: u128) -> u128 {
        let mut value = 0u128;
        let mut span = 1u128;
        while span < n {
            let Some(byte) = self.take() else { return 0 };
            value = (value << 8) | u128::from(byte);
            span <<= 8;
        }
        value % n
    }

    fn draw<T: Drawn>(&mut self, low: T, high_inclusive: T) -> T {
        let (low, high) = (low.to_i128(), high_inclusive.to_i128());
        assert!(low <= high, "a draw from an empty range");
        T::from_i128(low + self.number((high - low) as u128 + 1) as i128)
    }
}

impl Decisions for Tape<'_> {
    fn chance(&mut self, _: Concern, p: f64) -> bool {
        let top = (p.clamp(0.0, 1.0) * 256.0).ceil() as u16;
        if top == 0 {
            return false;
        }
        self.take().is_some_and(|byte| u16::from(byte) >= 256 - top)
    }

    fn below<T: Drawn>(&mut self, concern: Concern, range: Range<T>) -> T {
        assert!(range.start < range.end, "a draw from an empty range");
        let high = T::from_i128(range.end.to_i128() - 1);
        self.within(concern, range.start..=high)
    }

    fn within<T: Drawn>(&mut self, concern: Concern, range: RangeInclusive<T>) -> T {
        // Once the tape is exhausted, checkpoints come as seldom as they may: back-to-back
        // checkpoints of a big job, with the first ready step (a delivery) always preferred,
        // would starve its sources (found by the sim_tape fuzz target: 20 tasks after a
        // rescale, a checkpoint every 20 ms, no record read for 20,000 steps).
        if concern == Concern::Checkpoints && self.used >= self.bytes.len() {
            return *range.end();
        }
        self.draw(*range.start(), *range.end())
    }

    fn index(&mut self, _: Concern, len: usize) -> usize {
        self.draw(0, len - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::seq::SliceRandom;

    #[test]
    fn seeded_draws_what_the_rngs_draw() {
        let mut seeded = Seeded::new(7);
        let (mut schedule, mut faults) = (rng(7, Concern::Schedule), rng(7, Concern::Faults));
        let items: Vec<u32> = (0..13).collect();
        for _ in 0..100 {
            assert_eq!(seeded.within(Concern::Faults, 1..=4u64), faults.gen_range(1..=4u64));
            assert_eq!(
                seeded.below(Concern::Schedule, 10..300u64),
                schedule.gen_range(10..300u64)
            );
            assert_eq!(seeded.chance(Concern::Faults, 0.3), faults.gen_bool(0.3));
            let picked = items[seeded.index(Concern::Schedule, items.len())];
            assert_eq!(Some(&picked), items.choose(&mut schedule));
        }
    }

    #[test]
    fn a_tape_reads_its_bytes_then_falls_back() {
        let mut tape = Tape::new(&[255, 0, 7, 1, 2]);
        assert!(tape.chance(Concern::Faults, 0.002), "255 is the top value");
        assert!(!tape.chance(Concern::Faults, 0.5), "0 is in the bottom half");
        assert_eq!(tape.below(Concern::Schedule, 10..13i64), 10 + 7 % 3);
        assert_eq!(
            tape.within(Concern::Schedule, 0..=999usize),
            256 + 2,
            "two bytes, big-endian"
        );
        assert_eq!(tape.used(), 5);
        assert!(!tape.chance(Concern::Faults, 0.99));
        assert_eq!(
            tape.within(Concern::Checkpoints, 20..=400i64),
            400,
            "checkpoints seldom"
        );
        assert_eq!(tape.index(Concern::Schedule, 5), 0);
        assert!(!Tape::new(&[255]).chance(Concern::Faults, 0.0));
    }
}
