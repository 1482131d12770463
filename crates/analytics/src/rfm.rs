//! RFM scores and segments, exactly as `analytics.md` defines them.
//!
//! A score is `1 + (5 * (RANK() - 1)) / n` in integer arithmetic, where
//! `RANK()` is SQL's (ties share the lowest rank, i.e. one plus the number
//! of strictly better-ordered rows). Ranks therefore depend only on how many
//! values are strictly smaller (or larger), which is what the code computes:
//!
//! - keys with a small range (recency in days, visit counts) are counted in
//!   a histogram, and a prefix sum gives "how many are smaller" for every
//!   value at once: two linear passes;
//! - keys with a wide range (money in minor units) are sorted with an LSD
//!   radix sort on the offset key (passes over constant bytes are skipped),
//!   then runs of equal values get the rank of their first element.
//!
//! Both are linear in practice, a million patients take a few tens of
//! milliseconds, and the results are exactly those of the quadratic
//! definition (a property test checks this against a naive `RANK()`).

use chrono::{Datelike, NaiveDate};
use rapport_domain::PatientAggregates;
use serde::{Deserialize, Serialize};

/// RFM segment of a patient. The order of the variants is the order of the
/// rules in `analytics.md` and of the keys in `analyze --json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Champions,
    Loyal,
    PotentialLoyalist,
    New,
    NeedAttention,
    AboutToSleep,
    AtRisk,
    Hibernating,
    Lost,
}

impl Segment {
    /// All segments in contract order.
    pub const ALL: [Segment; 9] = [
        Segment::Champions,
        Segment::Loyal,
        Segment::PotentialLoyalist,
        Segment::New,
        Segment::NeedAttention,
        Segment::AboutToSleep,
        Segment::AtRisk,
        Segment::Hibernating,
        Segment::Lost,
    ];

    /// The snake_case name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Champions => "champions",
            Segment::Loyal => "loyal",
            Segment::PotentialLoyalist => "potential_loyalist",
            Segment::New => "new",
            Segment::NeedAttention => "need_attention",
            Segment::AboutToSleep => "about_to_sleep",
            Segment::AtRisk => "at_risk",
            Segment::Hibernating => "hibernating",
            Segment::Lost => "lost",
        }
    }

    /// Position in [`Segment::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The segment of scores `r`, `f`, `m` (each 1..=5): the first matching
    /// rule of the table in `analytics.md`, with `fm = (f + m + 1) / 2`.
    pub fn from_scores(r: u8, f: u8, m: u8) -> Segment {
        // Written as in the contract rather than with div_ceil.
        #[allow(clippy::manual_div_ceil)]
        let fm = (u16::from(f) + u16::from(m) + 1) / 2;
        match (r, fm) {
            (4.., 4..) => Segment::Champions,
            (3.., 4..) => Segment::Loyal,
            (4.., 2..) => Segment::PotentialLoyalist,
            (4.., 1) => Segment::New,
            (3, 2..) => Segment::NeedAttention,
            (3, 1) => Segment::AboutToSleep,
            (..=2, 4..) => Segment::AtRisk,
            (2, ..=3) => Segment::Hibernating,
            _ => Segment::Lost,
        }
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`Segment::from_str`](std::str::FromStr).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown segment `{0}`")]
pub struct UnknownSegment(pub String);

impl std::str::FromStr for Segment {
    type Err = UnknownSegment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Segment::ALL
            .into_iter()
            .find(|seg| seg.as_str() == s)
            .ok_or_else(|| UnknownSegment(s.to_string()))
    }
}

/// The RFM scores and segment of one patient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RfmScore {
    pub r_score: u8,
    pub f_score: u8,
    pub m_score: u8,
    pub segment: Segment,
}

/// `recency_days = as_of - last_visit` in days.
pub fn recency_days(agg: &PatientAggregates, as_of: NaiveDate) -> i64 {
    i64::from(as_of.num_days_from_ce()) - i64::from(agg.last_visit.num_days_from_ce())
}

/// `1 + (5 * (rank - 1)) / n` (integer division), for `1 <= rank <= n`.
pub fn score_from_rank(rank: u64, n: u64) -> u8 {
    debug_assert!(rank >= 1 && rank <= n);
    (1 + (5 * (rank - 1)) / n) as u8
}

/// RFM scores of every patient, aligned with `aggs`. The aggregates must
/// be computed as of `as_of` (only visits on or before it), and every
/// patient in the slice counts as active.
pub fn rfm_scores(aggs: &[PatientAggregates], as_of: NaiveDate) -> Vec<RfmScore> {
    let monetary: Vec<i64> = aggs.iter().map(|a| a.monetary).collect();
    let m_ranks = rank_asc(&monetary);
    scores_with_monetary_ranks(aggs, as_of, &m_ranks)
}

/// The rest of [`rfm_scores`] once the monetary ranks are known (the
/// analysis computes those together with the sorted amounts).
pub(crate) fn scores_with_monetary_ranks(
    aggs: &[PatientAggregates],
    as_of: NaiveDate,
    m_ranks: &[u32],
) -> Vec<RfmScore> {
    let n = aggs.len() as u64;
    let recency: Vec<i64> = aggs.iter().map(|a| recency_days(a, as_of)).collect();
    let r_ranks = rank_desc(&recency);
    drop(recency);
    let visits: Vec<i64> = aggs.iter().map(|a| a.visits).collect();
    let f_ranks = rank_asc(&visits);
    drop(visits);
    r_ranks
        .iter()
        .zip(&f_ranks)
        .zip(m_ranks)
        .map(|((&r, &f), &m)| {
            let (r, f, m) = (
                score_from_rank(u64::from(r), n),
                score_from_rank(u64::from(f), n),
                score_from_rank(u64::from(m), n),
            );
            RfmScore {
                r_score: r,
                f_score: f,
                m_score: m,
                segment: Segment::from_scores(r, f, m),
            }
        })
        .collect()
}

/// `RANK() OVER (ORDER BY key ASC)` for every element: one plus the number
/// of strictly smaller keys.
///
/// # Panics
/// If there are more than `u32::MAX` keys.
pub fn rank_asc(keys: &[i64]) -> Vec<u32> {
    ranks(keys, false)
}

/// `RANK() OVER (ORDER BY key DESC)`: one plus the number of strictly
/// larger keys.
pub fn rank_desc(keys: &[i64]) -> Vec<u32> {
    ranks(keys, true)
}

fn ranks(keys: &[i64], desc: bool) -> Vec<u32> {
    let n = keys.len();
    assert!(u32::try_from(n).is_ok(), "too many keys to rank");
    if n == 0 {
        return Vec::new();
    }
    let (min, max) = keys
        .iter()
        .fold((i64::MAX, i64::MIN), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    let range = (i128::from(max) - i128::from(min)) as u128;
    if range < (2 * n as u128).max(1 << 16) {
        counting_ranks(keys, min, range as usize + 1, desc)
    } else {
        let sorted = radix_sort_pairs(keys, min);
        ranks_from_sorted(&sorted, n, desc)
    }
}

fn counting_ranks(keys: &[i64], min: i64, buckets: usize, desc: bool) -> Vec<u32> {
    let mut count = vec![0u32; buckets];
    for &k in keys {
        count[(k - min) as usize] += 1;
    }
    // Turn counts into "number of keys strictly before this value".
    let mut acc = 0u32;
    if desc {
        for c in count.iter_mut().rev() {
            let here = *c;
            *c = acc;
            acc += here;
        }
    } else {
        for c in count.iter_mut() {
            let here = *c;
            *c = acc;
            acc += here;
        }
    }
    keys.iter()
        .map(|&k| count[(k - min) as usize] + 1)
        .collect()
}

/// `(key - min, original index)` pairs sorted by key (LSD radix, 8 bits per
/// pass, skipping bytes that are the same in every key).
pub(crate) fn radix_sort_pairs(keys: &[i64], min: i64) -> Vec<(u64, u32)> {
    let n = keys.len();
    let mut a: Vec<(u64, u32)> = keys
        .iter()
        .enumerate()
        .map(|(i, &k)| ((i128::from(k) - i128::from(min)) as u64, i as u32))
        .collect();
    let mut hist = vec![[0usize; 256]; 8];
    for &(k, _) in &a {
        for (byte, h) in hist.iter_mut().enumerate() {
            h[((k >> (8 * byte)) & 0xff) as usize] += 1;
        }
    }
    let mut b: Vec<(u64, u32)> = vec![(0, 0); n];
    for (byte, h) in hist.iter().enumerate() {
        if h.contains(&n) {
            continue; // every key has the same byte here
        }
        let mut offset = [0usize; 256];
        let mut acc = 0;
        for (o, &c) in offset.iter_mut().zip(h.iter()) {
            *o = acc;
            acc += c;
        }
        let shift = 8 * byte;
        for &item in &a {
            let d = ((item.0 >> shift) & 0xff) as usize;
            b[offset[d]] = item;
            offset[d] += 1;
        }
        std::mem::swap(&mut a, &mut b);
    }
    a
}

fn ranks_from_sorted(sorted: &[(u64, u32)], n: usize, desc: bool) -> Vec<u32> {
    let mut out = vec![0u32; n];
    let mut start = 0;
    while start < n {
        let key = sorted[start].0;
        let mut end = start + 1;
        while end < n && sorted[end].0 == key {
            end += 1;
        }
        // asc: `start` keys are smaller; desc: `n - end` keys are larger.
        let rank = if desc { n - end + 1 } else { start + 1 } as u32;
        for &(_, idx) in &sorted[start..end] {
            out[idx as usize] = rank;
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_rank(keys: &[i64], desc: bool) -> Vec<u32> {
        keys.iter()
            .map(|&k| {
                1 + keys
                    .iter()
                    .filter(|&&o| if desc { o > k } else { o < k })
                    .count() as u32
            })
            .collect()
    }

    #[test]
    fn ranks_share_the_lowest_rank_on_ties() {
        let keys = [10, 20, 10, 30, 20, 20];
        assert_eq!(rank_asc(&keys), vec![1, 3, 1, 6, 3, 3]);
        assert_eq!(rank_desc(&keys), vec![5, 2, 5, 1, 2, 2]);
        // Wide range: radix path.
        let wide = [i64::MAX, i64::MIN, 0, i64::MIN, 5_000_000_000];
        assert_eq!(rank_asc(&wide), vec![5, 1, 3, 1, 4]);
        assert_eq!(rank_desc(&wide), vec![1, 4, 3, 4, 2]);
    }

    #[test]
    fn segment_rules_follow_the_table() {
        use Segment::*;
        // fm = (f + m + 1) / 2
        assert_eq!(Segment::from_scores(5, 4, 3), Champions); // fm 4
        assert_eq!(Segment::from_scores(4, 5, 2), Champions); // fm 4
        assert_eq!(Segment::from_scores(4, 4, 2), PotentialLoyalist); // fm 3
        assert_eq!(Segment::from_scores(3, 5, 5), Loyal);
        assert_eq!(Segment::from_scores(5, 2, 1), PotentialLoyalist); // fm 2
        assert_eq!(Segment::from_scores(5, 1, 1), New); // fm 1
        assert_eq!(Segment::from_scores(3, 2, 1), NeedAttention);
        assert_eq!(Segment::from_scores(3, 1, 1), AboutToSleep);
        assert_eq!(Segment::from_scores(2, 4, 3), AtRisk);
        assert_eq!(Segment::from_scores(1, 5, 5), AtRisk);
        assert_eq!(Segment::from_scores(2, 3, 3), Hibernating);
        assert_eq!(Segment::from_scores(2, 1, 1), Hibernating);
        assert_eq!(Segment::from_scores(1, 3, 3), Lost);
        assert_eq!(Segment::from_scores(1, 1, 1), Lost);
        for s in Segment::ALL {
            assert_eq!(s.as_str().parse::<Segment>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert!("vip".parse::<Segment>().is_err());
    }

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn agg(first: &str, last: &str, visits: i64, monetary: i64) -> PatientAggregates {
        PatientAggregates {
            first_visit: d(first),
            last_visit: d(last),
            visits,
            visit_days: visits,
            monetary,
            first_day_monetary: 0,
            months_with_visits: 1,
            cohort_mask: 1,
        }
    }

    /// Five patients worked by hand (as_of 2024-12-31, n = 5):
    ///
    /// | p | recency | R rank (desc) | r | visits | F rank | f | monetary | M rank | m |
    /// |---|---------|---------------|---|--------|--------|---|----------|--------|---|
    /// | A | 0       | 5             | 5 | 10     | 5      | 5 | 50000    | 4      | 4 |
    /// | B | 30      | 3             | 3 | 3      | 2      | 2 | 50000    | 4      | 4 |
    /// | C | 30      | 3             | 3 | 3      | 2      | 2 | 100      | 1      | 1 |
    /// | D | 365     | 1             | 1 | 1      | 1      | 1 | 200      | 2      | 2 |
    /// | E | 100     | 2             | 2 | 5      | 4      | 4 | 300      | 3      | 3 |
    ///
    /// score = 1 + 5(rank-1)/5 = rank. fm: A (5+4+1)/2=5, B (2+4+1)/2=3,
    /// C 2, D 2, E 4. Segments: A champions, B need_attention (r 3, fm 3),
    /// C need_attention, D lost, E at_risk.
    #[test]
    fn hand_computed_scores() {
        let as_of = d("2024-12-31");
        let aggs = [
            agg("2024-01-01", "2024-12-31", 10, 50_000),
            agg("2024-01-01", "2024-12-01", 3, 50_000),
            agg("2024-02-01", "2024-12-01", 3, 100),
            agg("2023-12-31", "2023-12-31", 1, 200),
            agg("2024-01-01", "2024-09-22", 5, 300),
        ];
        let s = rfm_scores(&aggs, as_of);
        let got: Vec<(u8, u8, u8, Segment)> = s
            .iter()
            .map(|x| (x.r_score, x.f_score, x.m_score, x.segment))
            .collect();
        use Segment::*;
        assert_eq!(
            got,
            vec![
                (5, 5, 4, Champions),
                (3, 2, 4, NeedAttention),
                (3, 2, 1, NeedAttention),
                (1, 1, 2, Lost),
                (2, 4, 3, AtRisk),
            ]
        );
    }

    /// n = 7: score = 1 + 5(rank-1)/7, so ranks 1..=7 give 1,1,2,3,3,4,5.
    #[test]
    fn integer_division_of_scores() {
        let got: Vec<u8> = (1..=7).map(|r| score_from_rank(r, 7)).collect();
        assert_eq!(got, vec![1, 1, 2, 3, 3, 4, 5]);
        assert_eq!(score_from_rank(1, 1), 1);
    }

    proptest! {
        #[test]
        fn fast_ranks_equal_naive_rank(keys in proptest::collection::vec(-50i64..50, 0..200),
                                       wide in proptest::collection::vec(any::<i64>(), 0..100),
                                       dup in 0usize..5) {
            prop_assert_eq!(rank_asc(&keys), naive_rank(&keys, false));
            prop_assert_eq!(rank_desc(&keys), naive_rank(&keys, true));
            let mut wide = wide;
            let extra: Vec<i64> = wide.iter().take(dup).copied().collect();
            wide.extend(extra);
            prop_assert_eq!(rank_asc(&wide), naive_rank(&wide, false));
            prop_assert_eq!(rank_desc(&wide), naive_rank(&wide, true));
        }

        #[test]
        fn scores_equal_naive_scores(rows in proptest::collection::vec((0i64..400, 1i64..30, 0i64..2_000_000_000_000), 1..120)) {
            let as_of = d("2025-06-30");
            let aggs: Vec<PatientAggregates> = rows.iter().map(|&(rec, visits, money)| {
                let last = as_of - chrono::Days::new(rec as u64);
                PatientAggregates { first_visit: last, last_visit: last, visits, visit_days: 1, monetary: money,
                    first_day_monetary: money, months_with_visits: 1, cohort_mask: 1 }
            }).collect();
            let n = aggs.len() as u64;
            let rec: Vec<i64> = rows.iter().map(|r| r.0).collect();
            let vis: Vec<i64> = rows.iter().map(|r| r.1).collect();
            let mon: Vec<i64> = rows.iter().map(|r| r.2).collect();
            let (rr, fr, mr) = (naive_rank(&rec, true), naive_rank(&vis, false), naive_rank(&mon, false));
            let got = rfm_scores(&aggs, as_of);
            for i in 0..aggs.len() {
                let r = (1 + 5 * (u64::from(rr[i]) - 1) / n) as u8;
                let f = (1 + 5 * (u64::from(fr[i]) - 1) / n) as u8;
                let m = (1 + 5 * (u64::from(mr[i]) - 1) / n) as u8;
                prop_assert_eq!(got[i], RfmScore { r_score: r, f_score: f, m_score: m, segment: Segment::from_scores(r, f, m) });
            }
        }
    }
}
