//! What a first load knows without asking the database.
//!
//! When a visits import starts on an empty visits table it holds the
//! tables it loads (the bulk transaction on SQLite; on PostgreSQL the
//! locks taken to set the foreign keys aside, and an explicit one on the
//! patients), so nothing but the import itself changes them until it
//! commits. Then:
//!
//! - every patient's key can be read once, up front, into
//!   [`PatientKeys`], instead of probing the patients table for each
//!   chunk;
//! - a visit id can only be in the database if this import wrote it: a
//!   [`Bloom`] filter of the ids written so far says which ids cannot be
//!   there, and only the others are looked up. The same holds for the
//!   aggregates rows the import wrote.
//!
//! Both are bounded: the key map is only built for a hospital of at most
//! [`MAX_PATIENTS`] patients, and a filter has a fixed size (a file far
//! larger than it was sized for makes it answer "maybe" more often, which
//! costs lookups, never a wrong answer).

use std::hash::{DefaultHasher, Hash, Hasher};

/// The largest hospital whose patients' keys are held in memory: at the
/// benchmark's id length, about 30 bytes each, so at most about 60 MB.
pub(super) const MAX_PATIENTS: usize = 2_000_000;

/// A 64-bit hash, the same in every run.
fn hash64(value: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// The hospital's patient ids and their keys (the patient's row, or the
/// one it was merged into), in flat arrays: the ids' bytes end to end, an
/// offset per id, a key per id and an open-addressing table of indexes,
/// each beside the high half of its id's hash so that a lookup compares
/// ids (a read far away in memory) only when the hashes agree.
#[derive(Default)]
pub(super) struct PatientKeys {
    bytes: Vec<u8>,
    /// Where each id ends in `bytes`; it starts where the one before ends.
    ends: Vec<u32>,
    keys: Vec<i64>,
    /// 0 for an empty slot, else the index of an id plus one in the low
    /// half and the high half of the id's hash in the high half.
    slots: Vec<u64>,
}

impl PatientKeys {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    fn id(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// The slot holding `id`, or the empty slot where it would go, and
    /// the high half of its hash.
    fn slot(&self, id: &[u8]) -> (usize, u64) {
        let mask = self.slots.len() - 1;
        let h = hash64(id);
        let high = h & !0xffff_ffff;
        let mut s = h as usize & mask;
        loop {
            match self.slots[s] {
                0 => return (s, high),
                v if v & !0xffff_ffff == high && self.id(index(v)) == id => return (s, high),
                _ => s = (s + 1) & mask,
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<i64> {
        if self.slots.is_empty() {
            return None;
        }
        match self.slots[self.slot(id.as_bytes()).0] {
            0 => None,
            v => Some(self.keys[index(v)]),
        }
    }

    /// Sets `id`'s key, adding the id if it is new. `None` when the map
    /// cannot grow further (its offsets are 32-bit).
    pub fn insert(&mut self, id: &str, key: i64) -> Option<()> {
        if (self.keys.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let (s, high) = self.slot(id.as_bytes());
        match self.slots[s] {
            0 => {
                let end = u32::try_from(self.bytes.len() + id.len()).ok()?;
                let index = u32::try_from(self.keys.len() + 1).ok()?;
                self.bytes.extend_from_slice(id.as_bytes());
                self.ends.push(end);
                self.keys.push(key);
                self.slots[s] = high | u64::from(index);
            }
            v => self.keys[index(v)] = key,
        }
        Some(())
    }

    /// Doubles the table (at most half full after) and places every id
    /// again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        self.slots = vec![0; size];
        let mask = size - 1;
        for i in 0..self.keys.len() {
            let h = hash64(self.id(i));
            let mut s = h as usize & mask;
            while self.slots[s] != 0 {
                s = (s + 1) & mask;
            }
            self.slots[s] = (h & !0xffff_ffff) | (i as u64 + 1);
        }
    }
}

/// The index of the id a non-empty slot holds.
fn index(slot: u64) -> usize {
    (slot & 0xffff_ffff) as usize - 1
}

/// A Bloom filter: `maybe` is false only for values never added.
///
/// Blocked: a value's bits all lie in one 64-byte line, so adding or
/// testing it reads one line of memory, not one per bit (a filter of
/// megabytes is far larger than the processor's caches).
pub(super) struct Bloom {
    lines: Vec<[u64; 8]>,
}

/// Bits set per value. With 16 bits per value this answers "maybe" for
/// about 0.2 % of values never added; at 8, about 3 %.
const PROBES: u64 = 7;

impl Bloom {
    /// A filter of `2^log2_bits` bits (at least one line). Its memory is
    /// only touched as bits are set (the allocation is zeroed lazily by
    /// the system).
    pub fn new(log2_bits: u32) -> Self {
        Bloom {
            lines: vec![[0; 8]; 1 << log2_bits.saturating_sub(9)],
        }
    }

    /// The line of a value and its bits in the line: double hashing of
    /// the hash's high half, the low half choosing the line.
    fn positions(lines: usize, value: impl Hash) -> (usize, impl Iterator<Item = usize>) {
        let h = hash64(value);
        let line = (h & 0xffff_ffff) as usize & (lines - 1);
        let (a, b) = ((h >> 32) & 0xffff, (h >> 48) | 1);
        (
            line,
            (0..PROBES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) & 511) as usize),
        )
    }

    pub fn add(&mut self, value: impl Hash) {
        let (line, bits) = Self::positions(self.lines.len(), value);
        let line = &mut self.lines[line];
        for p in bits {
            line[p / 64] |= 1 << (p % 64);
        }
    }

    /// [`Bloom::maybe`], then [`Bloom::add`]: one hash, one line read.
    pub fn test_and_add(&mut self, value: impl Hash) -> bool {
        let (line, bits) = Self::positions(self.lines.len(), value);
        let line = &mut self.lines[line];
        let mut all = true;
        for p in bits {
            let bit = 1 << (p % 64);
            all &= line[p / 64] & bit != 0;
            line[p / 64] |= bit;
        }
        all
    }

    pub fn maybe(&self, value: impl Hash) -> bool {
        let (line, mut bits) = Self::positions(self.lines.len(), value);
        let line = &self.lines[line];
        bits.all(|p| line[p / 64] & (1 << (p % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        #[test]
        fn patient_keys_answer_like_a_map(
            ops in prop::collection::vec(("[a-c]{0,3}", any::<i64>()), 0..400),
            probes in prop::collection::vec("[a-c]{0,3}", 0..50),
        ) {
            let mut keys = PatientKeys::default();
            let mut map = HashMap::new();
            for (id, key) in &ops {
                keys.insert(id, *key).unwrap();
                map.insert(id.clone(), *key);
            }
            prop_assert_eq!(keys.len(), map.len());
            for id in ops.iter().map(|o| &o.0).chain(probes.iter()) {
                prop_assert_eq!(keys.get(id), map.get(id).copied());
            }
        }

        #[test]
        fn a_bloom_filter_never_forgets(values in prop::collection::vec(any::<u64>(), 0..2000)) {
            let mut bloom = Bloom::new(12);
            let mut tested = Bloom::new(12);
            for v in &values {
                bloom.add(v);
                let before = tested.maybe(v);
                prop_assert_eq!(tested.test_and_add(v), before);
            }
            for v in &values {
                prop_assert!(bloom.maybe(v));
                prop_assert!(tested.maybe(v));
            }
        }
    }

    #[test]
    fn a_bloom_filter_mostly_says_no_to_values_never_added() {
        // 16 bits per value.
        let mut bloom = Bloom::new(20);
        for i in 0..65_536u64 {
            bloom.add(format!("V{i:08}"));
        }
        let false_hits = (65_536..165_536u64)
            .filter(|i| bloom.maybe(format!("V{i:08}")))
            .count();
        assert!(false_hits < 1_000, "{false_hits} of 100,000");
        // A filter of one line works too.
        let mut tiny = Bloom::new(0);
        tiny.add(1u64);
        assert!(tiny.maybe(1u64));
        assert!(!Bloom::new(10).maybe("anything"));
    }
}
