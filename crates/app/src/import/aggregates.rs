//! Patients' aggregates while an import runs.
//!
//! A visits file in date order touches each patient again and again: ten
//! million visits of a million patients rewrite every patient's row about
//! ten times if each chunk writes what it changed. The import keeps the
//! aggregates it has computed in [`AggCache`] instead and writes each
//! patient once, when the import ends. The cache holds a bounded number
//! of patients, so memory is bounded whatever the file's size; patients
//! beyond it are written chunk by chunk. On PostgreSQL each rewrite inside
//! one transaction would also leave a dead row version and an entry in
//! every index behind.
//!
//! The visits themselves are written chunk by chunk, so the visits table
//! always holds every visit the cache has counted: a patient whose new
//! visit falls strictly between its first and last visit has its dates
//! read from there.

use std::collections::HashMap;

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use rapport_domain::aggregates::month_index;
use rapport_store::Tx;
use rapport_store::import as store;

use super::first_load::Bloom;
use super::lane::Lane;
use crate::AppError;

/// Patients the cache holds at most: 2^20 hash buckets of 48 bytes, about
/// 50 MB, with the map's load factor of 7/8.
pub(super) const CACHE_PATIENTS: usize = 917_504;

/// [`PatientAggregates`] in 40 bytes instead of 56 (dates as days, counts
/// as `u32`, the 12-bit cohort mask as `u16`), with whether the database
/// holds a row for the patient and whether the cached figures differ.
#[derive(Debug, Clone, Copy)]
struct Packed {
    monetary: i64,
    first_day_monetary: i64,
    first_visit: i32,
    last_visit: i32,
    visits: u32,
    visit_days: u32,
    months_with_visits: u32,
    cohort_mask: u16,
    stored: bool,
    dirty: bool,
}

impl Packed {
    /// `None` when a figure does not fit (billions of visits of one
    /// patient): such a patient is not cached.
    fn pack(a: &PatientAggregates, stored: bool, dirty: bool) -> Option<Packed> {
        use chrono::Datelike;
        Some(Packed {
            monetary: a.monetary,
            first_day_monetary: a.first_day_monetary,
            first_visit: a.first_visit.num_days_from_ce(),
            last_visit: a.last_visit.num_days_from_ce(),
            visits: u32::try_from(a.visits).ok()?,
            visit_days: u32::try_from(a.visit_days).ok()?,
            months_with_visits: u32::try_from(a.months_with_visits).ok()?,
            cohort_mask: u16::try_from(a.cohort_mask).ok()?,
            stored,
            dirty,
        })
    }

    fn unpack(&self) -> PatientAggregates {
        let day = |d: i32| NaiveDate::from_num_days_from_ce_opt(d).unwrap_or(NaiveDate::MIN);
        PatientAggregates {
            first_visit: day(self.first_visit),
            last_visit: day(self.last_visit),
            visits: i64::from(self.visits),
            visit_days: i64::from(self.visit_days),
            monetary: self.monetary,
            first_day_monetary: self.first_day_monetary,
            months_with_visits: i64::from(self.months_with_visits),
            cohort_mask: i64::from(self.cohort_mask),
        }
    }
}

/// A patient's aggregates before a chunk: `None` for a patient without
/// visits; `stored` when the database has a row for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Before {
    pub aggregates: Option<PatientAggregates>,
    stored: bool,
}

/// The aggregates the import has computed and not yet written.
pub(super) struct AggCache {
    slots: Slots,
    /// Patients held at most (in a map; see [`Slots`]).
    cap: usize,
    /// On a first load (the aggregates table empty at the start and held
    /// by the import), the patients whose rows the import may have
    /// written: no other patient has a row to read.
    written: Option<Bloom>,
    /// Set once the cache was written out: the few rows applied after
    /// grow the map as they come instead of reserving it whole again.
    flushed: bool,
}

/// Where the cache keeps its patients. Patients' keys come from one
/// sequence, so while every key is small, an array indexed by the key
/// holds them with no hashing and no spare buckets: 40 bytes a patient
/// against the map's 55, so the same memory holds a third more patients
/// (the million patients of a large hospital, where the map held 917,504
/// and read and wrote the others chunk after chunk).
enum Slots {
    /// Patient `k` at index `k - 1`; keys from `limit + 1` on are not held.
    Dense {
        slots: Vec<Option<Packed>>,
        limit: usize,
    },
    Map(HashMap<i64, Packed>),
}

impl Slots {
    fn index(k: i64, limit: usize) -> Option<usize> {
        usize::try_from(k - 1).ok().filter(|i| *i < limit)
    }

    fn get(&self, k: i64) -> Option<&Packed> {
        match self {
            Slots::Dense { slots, limit } => {
                Self::index(k, *limit).and_then(|i| slots.get(i)?.as_ref())
            }
            Slots::Map(m) => m.get(&k),
        }
    }

    fn get_mut(&mut self, k: i64) -> Option<&mut Packed> {
        match self {
            Slots::Dense { slots, limit } => {
                Self::index(k, *limit).and_then(|i| slots.get_mut(i)?.as_mut())
            }
            Slots::Map(m) => m.get_mut(&k),
        }
    }

    fn remove(&mut self, k: i64) {
        match self {
            Slots::Dense { slots, limit } => {
                if let Some(slot) = Self::index(k, *limit).and_then(|i| slots.get_mut(i)) {
                    *slot = None;
                }
            }
            Slots::Map(m) => {
                m.remove(&k);
            }
        }
    }

    /// Holds a patient not held yet, if there is room.
    fn insert(&mut self, k: i64, p: Packed, cap: usize) -> bool {
        match self {
            Slots::Dense { slots, limit } => {
                let Some(i) = Self::index(k, *limit) else {
                    return false;
                };
                if i >= slots.len() {
                    let len = (i + 1).max(slots.len() * 2).min(*limit);
                    slots.resize(len, None);
                }
                slots[i] = Some(p);
                true
            }
            Slots::Map(m) if m.len() < cap => {
                m.insert(k, p);
                true
            }
            Slots::Map(_) => false,
        }
    }

    /// The patients whose figures changed, in key order.
    fn dirty(&self) -> Vec<i64> {
        match self {
            Slots::Dense { slots, .. } => (1i64..)
                .zip(slots)
                .filter(|(_, p)| p.is_some_and(|p| p.dirty))
                .map(|(k, _)| k)
                .collect(),
            Slots::Map(m) => {
                let mut keys: Vec<i64> =
                    m.iter().filter(|(_, p)| p.dirty).map(|(k, _)| *k).collect();
                keys.sort_unstable();
                keys
            }
        }
    }
}

/// Bits of the filter of written patients: 2^24, 2 MB, 16 bits for each
/// of a million patients beyond the cache.
const WRITTEN_BITS: u32 = 24;

impl AggCache {
    /// A cache of at most `cap` patients' worth of memory; `max_key` is
    /// the largest patient key when the import starts.
    pub fn new(cap: usize, first_load: bool, max_key: i64) -> Self {
        let cap = cap.max(1);
        // The map's bytes for `cap` patients hold this many array slots.
        let limit = cap + cap / 3;
        let dense = usize::try_from(max_key).is_ok_and(|m| m <= limit);
        AggCache {
            slots: match dense {
                true => Slots::Dense {
                    slots: Vec::new(),
                    limit,
                },
                false => Slots::Map(HashMap::new()),
            },
            cap,
            written: first_load.then(|| Bloom::new(WRITTEN_BITS)),
            flushed: false,
        }
    }

    /// Notes that the database now holds `key`'s row.
    fn wrote(&mut self, key: i64) {
        if let Some(w) = self.written.as_mut() {
            w.add(key);
        }
    }

    /// The aggregates of `keys` before the coming chunk, read from the
    /// database for the patients the cache does not hold.
    pub async fn before(
        &mut self,
        lane: &mut Lane,
        keys: &[i64],
    ) -> Result<HashMap<i64, Before>, AppError> {
        // One look into the cache per patient: it is far larger than the
        // processor's caches, so each look is a read from memory.
        let mut out = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        for k in keys {
            match self.slots.get(*k) {
                Some(p) => {
                    out.insert(
                        *k,
                        Before {
                            aggregates: Some(p.unpack()),
                            stored: p.stored,
                        },
                    );
                }
                None if self.written.as_ref().is_none_or(|w| w.maybe(k)) => missing.push(*k),
                None => {
                    out.insert(
                        *k,
                        Before {
                            aggregates: None,
                            stored: false,
                        },
                    );
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let stored = store::aggregates_of(lane.tx().await?, &missing).await?;
        for k in missing {
            out.insert(
                k,
                Before {
                    aggregates: stored.get(&k).copied(),
                    stored: stored.contains_key(&k),
                },
            );
        }
        Ok(out)
    }

    /// Keeps the patients' aggregates once a chunk is applied. Once the
    /// cache is full, the patients it holds stay (a file's frequent
    /// patients come early and come back) and the others are written at
    /// once, as are figures too large to pack.
    pub async fn keep(
        &mut self,
        lane: &mut Lane,
        hospital_id: i64,
        after: impl IntoIterator<Item = (i64, Before, PatientAggregates)>,
    ) -> Result<(), AppError> {
        if let Slots::Map(m) = &mut self.slots
            && m.capacity() == 0
            && !self.flushed
        {
            m.reserve(self.cap);
        }
        let (mut fresh, mut changed) = (Vec::new(), Vec::new());
        for (key, before, a) in after {
            // Not `entry`: it makes room for one more key before looking,
            // which at the cap would double the table.
            let packed = Packed::pack(&a, before.stored, true);
            let kept = match (self.slots.get_mut(key), packed) {
                (Some(slot), Some(p)) => {
                    *slot = p;
                    true
                }
                (Some(_), None) => {
                    self.slots.remove(key);
                    false
                }
                (None, Some(p)) => self.slots.insert(key, p, self.cap),
                (None, None) => false,
            };
            if !kept {
                if before.stored {
                    changed.push((key, a));
                } else {
                    fresh.push((key, a));
                }
            }
        }
        fresh.sort_unstable_by_key(|r| r.0);
        changed.sort_unstable_by_key(|r| r.0);
        for (key, _) in fresh.iter().chain(&changed) {
            self.wrote(*key);
        }
        if fresh.is_empty() && changed.is_empty() {
            return Ok(());
        }
        store::write_aggregates(lane.tx().await?, hospital_id, &fresh, &changed).await?;
        Ok(())
    }

    /// Forgets a patient whose aggregates were recomputed in the database.
    pub fn forget(&mut self, key: i64) {
        self.slots.remove(key);
        self.wrote(key);
    }

    /// Writes every patient the cache changed, in key order and a chunk
    /// at a time, and frees the cache's memory.
    pub async fn flush(&mut self, tx: &mut Tx, hospital_id: i64) -> rapport_store::Result<()> {
        let keys = self.slots.dirty();
        for batch in keys.chunks(super::CHUNK) {
            let mut fresh = Vec::new();
            let mut changed = Vec::new();
            for (k, p) in batch.iter().filter_map(|k| Some((*k, self.slots.get(*k)?))) {
                let row = (k, p.unpack());
                if p.stored {
                    changed.push(row);
                } else {
                    fresh.push(row);
                }
            }
            store::write_aggregates(tx, hospital_id, &fresh, &changed).await?;
        }
        self.slots = Slots::Map(HashMap::new());
        // Every patient may have a row now.
        self.written = None;
        self.flushed = true;
        rapport_store::memory::give_back();
        Ok(())
    }
}

/// A patient's aggregates while a chunk's new visits are applied.
pub(super) struct AggState {
    /// As before the chunk.
    pub before: Before,
    pub now: Option<PatientAggregates>,
    /// Dates added in this chunk.
    added: Vec<NaiveDate>,
    /// The patient's visit dates before the chunk, read when a new date
    /// falls strictly inside its first..last range.
    pub stored_dates: Option<Vec<NaiveDate>>,
}

impl AggState {
    pub fn new(before: Before) -> Self {
        AggState {
            before,
            now: before.aggregates,
            added: Vec::new(),
            stored_dates: None,
        }
    }

    /// Whether a visit on `d` would fall strictly inside the patient's
    /// first..last range before the chunk (its dates are then needed).
    pub fn inside(&self, d: NaiveDate) -> bool {
        self.before
            .aggregates
            .is_some_and(|a| a.first_visit < d && d < a.last_visit)
    }

    /// Whether the visits before the chunk have `d`'s day and `d`'s
    /// month: known from the aggregates outside first..last, from the
    /// dates read strictly inside.
    fn stored_seen(&self, d: NaiveDate) -> (bool, bool) {
        let Some(s) = self.before.aggregates else {
            return (false, false);
        };
        s.known_novelty(d).unwrap_or_else(|| {
            let dates = self.stored_dates.as_deref().unwrap_or_default();
            (
                dates.contains(&d),
                dates.iter().any(|x| month_index(*x) == month_index(d)),
            )
        })
    }

    pub fn add(&mut self, d: NaiveDate, amount: i64) {
        let (mut day_seen, mut month_seen) = self.stored_seen(d);
        day_seen |= self.added.contains(&d);
        month_seen |= self.added.iter().any(|x| month_index(*x) == month_index(d));
        match &mut self.now {
            None => self.now = Some(PatientAggregates::single(d, amount)),
            Some(a) => a.add_visit(d, amount, day_seen, month_seen),
        }
        self.added.push(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn aggregates() -> impl Strategy<Value = PatientAggregates> {
        prop::collection::vec((0i64..4000, 0i64..100_000_000), 1..40).prop_map(|v| {
            let start = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap();
            PatientAggregates::from_visits(
                v.into_iter()
                    .map(|(d, a)| (start + chrono::Days::new(d as u64), a)),
            )
            .unwrap()
        })
    }

    proptest! {
        #[test]
        fn packing_keeps_every_figure(a in aggregates(), stored: bool, dirty: bool) {
            let p = Packed::pack(&a, stored, dirty).unwrap();
            prop_assert_eq!(p.unpack(), a);
            prop_assert_eq!((p.stored, p.dirty), (stored, dirty));
        }
    }

    #[test]
    fn a_figure_too_large_is_not_packed() {
        let start = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        let mut a = PatientAggregates::single(start, 100);
        a.visits = i64::from(u32::MAX) + 1;
        assert!(Packed::pack(&a, false, true).is_none());
    }

    #[test]
    fn a_packed_entry_is_small() {
        assert_eq!(std::mem::size_of::<Packed>(), 40);
        assert_eq!(std::mem::size_of::<Option<Packed>>(), 40);
    }
}
