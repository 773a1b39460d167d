//! Exactly-once rows from streams that may hold a message twice: every
//! event has a deterministic id (`{order_id}:{status}`, ...) and every
//! order its id, and a message whose id was already seen at an earlier
//! stream sequence is dropped before any table or pipeline sees it.
//!
//! The engine no longer publishes an event twice, but streams written
//! before it knew how (or by any other producer) may hold repeats, and the
//! spec asks every consumer to deduplicate by id. Ids are kept as 128-bit
//! fingerprints (XXH3-128, a fixed algorithm, so a snapshot reads the same
//! in every build) with the sequence they were first seen at: reading a
//! message again (a restart re-reads from its checkpoint) is not a repeat.
//! A repeat is a republished copy, which arrives soon after the original in
//! event time, so ids are kept for `horizon` of event time and at most
//! `max_ids` of them.

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use hashbrown::HashMap;

use crate::AnalyticsError;

/// A message id's fingerprint.
pub fn fingerprint(id: &str) -> u128 {
    twox_hash::XxHash3_128::oneshot(id.as_bytes())
}

/// Fingerprints are uniformly random already: hashing them again is waste.
#[derive(Clone, Copy, Default)]
pub struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = value as u64;
    }
}

type Build = std::hash::BuildHasherDefault<FingerprintHasher>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DedupLimits {
    /// Ids are forgotten once this much newer event time has been seen.
    pub horizon_ms: i64,
    /// And the oldest are forgotten beyond this many.
    pub max_ids: usize,
}

impl Default for DedupLimits {
    fn default() -> Self {
        DedupLimits { horizon_ms: 3_600_000, max_ids: 1_000_000 }
    }
}

#[derive(Clone, Default)]
pub struct Dedup {
    limits: DedupLimits,
    first_seq: HashMap<u128, u64, Build>,
    /// (fingerprint, event time) in the order first seen: forgetting order.
    arrivals: VecDeque<(u128, i64)>,
    newest_ms: i64,
    /// Messages dropped as repeats since this job started.
    pub dropped: u64,
}

const FORMAT: u8 = 1;

impl Dedup {
    pub fn new(limits: DedupLimits) -> Dedup {
        Dedup { limits, newest_ms: i64::MIN, ..Dedup::default() }
    }

    /// False when the message at `seq` with this id (`fp`) repeats one seen
    /// at an earlier sequence; `at_ms` is its event time.
    pub fn keep(&mut self, fp: u128, seq: u64, at_ms: i64) -> bool {
        if let Some(&first) = self.first_seq.get(&fp) {
            if first < seq {
                self.dropped += 1;
                return false;
            }
            return true;
        }
        self.first_seq.insert(fp, seq);
        self.arrivals.push_back((fp, at_ms));
        self.newest_ms = self.newest_ms.max(at_ms);
        self.forget();
        true
    }

    fn forget(&mut self) {
        let oldest_kept = self.newest_ms.saturating_sub(self.limits.horizon_ms);
        while let Some(&(fp, at)) = self.arrivals.front() {
            if at >= oldest_kept && self.arrivals.len() <= self.limits.max_ids {
                break;
            }
            self.arrivals.pop_front();
            self.first_seq.remove(&fp);
        }
    }

    pub fn len(&self) -> usize {
        self.arrivals.len()
    }

    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// The state as bytes: a format byte, the newest event time, then per
    /// id (in arrival order) its fingerprint, first sequence and event time.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(17 + self.arrivals.len() * 32);
        out.put_u8(FORMAT);
        out.put_i64_le(self.newest_ms);
        out.put_u64_le(self.arrivals.len() as u64);
        for &(fp, at) in &self.arrivals {
            out.put_u128_le(fp);
            out.put_u64_le(self.first_seq.get(&fp).copied().unwrap_or(0));
            out.put_i64_le(at);
        }
        out.freeze()
    }

    pub fn decode(limits: DedupLimits, mut bytes: Bytes) -> Result<Dedup, AnalyticsError> {
        let bad = |message: &str| AnalyticsError::Checkpoint { path: "dedup state".into(), message: message.into() };
        if bytes.remaining() < 17 || bytes.get_u8() != FORMAT {
            return Err(bad("not a dedup state of a known format"));
        }
        let newest_ms = bytes.get_i64_le();
        let count = bytes.get_u64_le() as usize;
        if bytes.remaining() != count.saturating_mul(32) {
            return Err(bad("truncated"));
        }
        let mut dedup = Dedup::new(limits);
        dedup.newest_ms = newest_ms;
        dedup.first_seq.reserve(count);
        for _ in 0..count {
            let (fp, seq, at) = (bytes.get_u128_le(), bytes.get_u64_le(), bytes.get_i64_le());
            dedup.first_seq.insert(fp, seq);
            dedup.arrivals.push_back((fp, at));
        }
        dedup.forget();
        Ok(dedup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_repeat_at_a_later_sequence_is_dropped_a_reread_is_not() {
        let mut d = Dedup::new(DedupLimits::default());
        let a = fingerprint("a:reserved");
        assert!(d.keep(a, 10, 1_000));
        assert!(d.keep(a, 10, 1_000), "the same message read again");
        assert!(!d.keep(a, 11, 1_000), "a copy published later");
        assert!(d.keep(fingerprint("a:confirmed"), 12, 1_000));
        assert_eq!(d.dropped, 1);
    }

    #[test]
    fn ids_are_forgotten_past_the_horizon_and_the_cap() {
        let mut d = Dedup::new(DedupLimits { horizon_ms: 100, max_ids: 3 });
        d.keep(1, 1, 0);
        d.keep(2, 2, 50);
        d.keep(3, 3, 150); // 1 is now older than the horizon
        assert_eq!(d.len(), 2);
        assert!(d.keep(1, 4, 0), "forgotten, so kept");
        d.keep(4, 5, 150);
        d.keep(5, 6, 150);
        assert!(d.len() <= 3);
    }

    #[test]
    fn fingerprints_are_stable() {
        // The state outlives builds: the algorithm must not change.
        assert_eq!(fingerprint("x"), twox_hash::XxHash3_128::oneshot(b"x"));
        assert_ne!(fingerprint("a:reserved"), fingerprint("a:confirmed"));
    }

    proptest! {
        #[test]
        fn the_state_round_trips(ops in prop::collection::vec((0u128..50, 0i64..500), 0..200)) {
            let mut d = Dedup::new(DedupLimits { horizon_ms: 200, max_ids: 40 });
            for (seq, (fp, at)) in ops.iter().enumerate() {
                d.keep(*fp, seq as u64 + 1, *at);
            }
            let back = Dedup::decode(d.limits, d.encode()).unwrap();
            prop_assert_eq!(back.encode(), d.encode());
            let mut a = d.clone();
            let mut b = back;
            for (seq, (fp, at)) in ops.iter().enumerate() {
                let seq = seq as u64 + 1000;
                prop_assert_eq!(a.keep(*fp, seq, *at), b.keep(*fp, seq, *at));
            }
        }
    }
}
