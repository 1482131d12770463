//! The figures of `analyze`: active patients, revenue, RFM segment counts,
//! concentration and cohort retention, in the exact JSON shape of
//! `analyze --json` (`interface.md`).
//!
//! The monetary keys are radix-sorted once and serve three purposes: the
//! monetary ranks (RFM), the top-20 % share and the Gini coefficient.

use chrono::NaiveDate;
use rapport_domain::PatientAggregates;
use serde::{Deserialize, Serialize};

use crate::cohorts::{CohortRow, cohort_retention};
use crate::concentration::{gini_sorted, top20_share_sorted};
use crate::rfm::{RfmScore, Segment, radix_sort_pairs, scores_with_monetary_ranks};

/// Number of patients per segment; serialises as an object with the nine
/// segment names as keys, in contract order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCounts {
    pub champions: u64,
    pub loyal: u64,
    pub potential_loyalist: u64,
    pub new: u64,
    pub need_attention: u64,
    pub about_to_sleep: u64,
    pub at_risk: u64,
    pub hibernating: u64,
    pub lost: u64,
}

impl SegmentCounts {
    /// Counts the segments of `scores`.
    pub fn from_scores(scores: &[RfmScore]) -> Self {
        let mut c = [0u64; 9];
        for s in scores {
            c[s.segment.index()] += 1;
        }
        let mut out = SegmentCounts::default();
        for (seg, n) in Segment::ALL.into_iter().zip(c) {
            *out.get_mut(seg) = n;
        }
        out
    }

    /// The count of one segment.
    pub fn get(&self, segment: Segment) -> u64 {
        match segment {
            Segment::Champions => self.champions,
            Segment::Loyal => self.loyal,
            Segment::PotentialLoyalist => self.potential_loyalist,
            Segment::New => self.new,
            Segment::NeedAttention => self.need_attention,
            Segment::AboutToSleep => self.about_to_sleep,
            Segment::AtRisk => self.at_risk,
            Segment::Hibernating => self.hibernating,
            Segment::Lost => self.lost,
        }
    }

    fn get_mut(&mut self, segment: Segment) -> &mut u64 {
        match segment {
            Segment::Champions => &mut self.champions,
            Segment::Loyal => &mut self.loyal,
            Segment::PotentialLoyalist => &mut self.potential_loyalist,
            Segment::New => &mut self.new,
            Segment::NeedAttention => &mut self.need_attention,
            Segment::AboutToSleep => &mut self.about_to_sleep,
            Segment::AtRisk => &mut self.at_risk,
            Segment::Hibernating => &mut self.hibernating,
            Segment::Lost => &mut self.lost,
        }
    }

    /// Sum over segments (equals the number of active patients).
    pub fn total(&self) -> u64 {
        Segment::ALL.into_iter().map(|s| self.get(s)).sum()
    }
}

/// The output of `analyze --json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// The analysis date, serialised `YYYY-MM-DD`.
    pub as_of: NaiveDate,
    pub active_patients: u64,
    /// Total revenue as a decimal string with two places, e.g. `"12345.67"`.
    pub revenue: String,
    pub segments: SegmentCounts,
    pub top20_share: f64,
    pub gini: f64,
    pub cohorts: Vec<CohortRow>,
}

/// Formats integer minor units as a decimal with two places (`-5` is
/// `"-0.05"`).
pub fn format_minor_units(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// The figures of `analytics.md` over `aggs`, which must be the aggregates
/// of the active patients computed as of `as_of` (only visits on or before
/// it counted).
pub fn analyze(aggs: &[PatientAggregates], as_of: NaiveDate) -> Analysis {
    analyze_with_scores(aggs, as_of).0
}

/// [`analyze`] plus the per-patient RFM scores (aligned with `aggs`), for
/// storing them, at the cost of one pass.
///
/// # Panics
/// With more than `u32::MAX` patients.
pub fn analyze_with_scores(
    aggs: &[PatientAggregates],
    as_of: NaiveDate,
) -> (Analysis, Vec<RfmScore>) {
    let n = aggs.len();
    assert!(u32::try_from(n).is_ok(), "too many patients to rank");
    let monetary: Vec<i64> = aggs.iter().map(|a| a.monetary).collect();
    let min = monetary.iter().copied().min().unwrap_or(0);
    let sorted = radix_sort_pairs(&monetary, min);
    drop(monetary);
    // Ranks (ascending) from the sorted keys, and the sorted amounts.
    let mut m_ranks = vec![0u32; n];
    let mut sorted_amounts = Vec::with_capacity(n);
    let mut start = 0;
    while start < n {
        let key = sorted[start].0;
        let mut end = start + 1;
        while end < n && sorted[end].0 == key {
            end += 1;
        }
        for &(_, idx) in &sorted[start..end] {
            m_ranks[idx as usize] = start as u32 + 1;
        }
        start = end;
    }
    for &(k, _) in &sorted {
        sorted_amounts.push((i128::from(min) + i128::from(k)) as i64);
    }
    drop(sorted);
    let revenue: i128 = sorted_amounts.iter().map(|&x| i128::from(x)).sum();
    let top20 = top20_share_sorted(&sorted_amounts);
    let gini = gini_sorted(&sorted_amounts);
    drop(sorted_amounts);
    let scores = scores_with_monetary_ranks(aggs, as_of, &m_ranks);
    let analysis = Analysis {
        as_of,
        active_patients: n as u64,
        revenue: format_minor_units(revenue),
        segments: SegmentCounts::from_scores(&scores),
        top20_share: top20,
        gini,
        cohorts: cohort_retention(aggs, as_of),
    };
    (analysis, scores)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::concentration::{gini, top20_share};
    use crate::rfm::rfm_scores;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn money_formatting() {
        assert_eq!(format_minor_units(0), "0.00");
        assert_eq!(format_minor_units(5), "0.05");
        assert_eq!(format_minor_units(1_234_567), "12345.67");
        assert_eq!(format_minor_units(-120), "-1.20");
        assert_eq!(
            format_minor_units(i128::from(i64::MAX) * 3),
            "276701161105643274.21"
        );
    }

    #[test]
    fn json_shape_matches_the_contract() {
        let visits = [
            vec![(d("2026-05-02"), 12_345), (d("2026-06-01"), 1)],
            vec![(d("2026-06-30"), 100_000)],
        ];
        let aggs: Vec<PatientAggregates> = visits
            .iter()
            .map(|v| PatientAggregates::from_visits(v.clone()).unwrap())
            .collect();
        let a = analyze(&aggs, d("2026-06-30"));
        let json = serde_json::to_value(&a).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut want = vec![
            "as_of",
            "active_patients",
            "revenue",
            "segments",
            "top20_share",
            "gini",
            "cohorts",
        ];
        let mut sorted_keys = keys.clone();
        sorted_keys.sort_unstable();
        want.sort_unstable();
        assert_eq!(sorted_keys, want);
        assert_eq!(json["as_of"], "2026-06-30");
        assert_eq!(json["revenue"], "1123.46");
        assert_eq!(json["active_patients"], 2);
        // Segment keys in contract order (serde_json keeps the struct order
        // in the text).
        let text = serde_json::to_string(&a.segments).unwrap();
        let mut pos = 0;
        for s in Segment::ALL {
            let at = text.find(&format!("\"{}\"", s.as_str())).unwrap();
            assert!(at >= pos, "{text}");
            pos = at;
        }
        assert_eq!(json["cohorts"][0]["cohort"], "2026-05");
        assert_eq!(json["cohorts"][0]["retention"][0], 1.0);
        assert_eq!(json["cohorts"][0]["retention"][1], 1.0);
        assert!(json["cohorts"][0]["retention"][2].is_null());
        assert_eq!(json["cohorts"][1]["cohort"], "2026-06");
        assert_eq!(
            json["cohorts"][0]["retention"].as_array().unwrap().len(),
            12
        );
        let back: Analysis = serde_json::from_value(json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn agrees_with_the_separate_functions() {
        let mut rng = crate::testutil::Rng::new(3);
        let as_of = d("2025-12-31");
        let aggs: Vec<PatientAggregates> = (0..5000)
            .map(|_| {
                let k = rng.below(8) + 1;
                let visits: Vec<(NaiveDate, i64)> = (0..k)
                    .map(|_| {
                        (
                            as_of - chrono::Days::new(u64::from(rng.below(900))),
                            i64::from(rng.below(50)) * 1000,
                        )
                    })
                    .collect();
                PatientAggregates::from_visits(visits).unwrap()
            })
            .collect();
        let (a, scores) = analyze_with_scores(&aggs, as_of);
        assert_eq!(scores, rfm_scores(&aggs, as_of));
        let money: Vec<i64> = aggs.iter().map(|x| x.monetary).collect();
        assert_eq!(a.top20_share, top20_share(&money));
        assert_eq!(a.gini, gini(&money));
        assert_eq!(a.segments.total(), 5000);
        let total: i64 = money.iter().sum();
        assert_eq!(a.revenue, format_minor_units(i128::from(total)));
        assert_eq!(a.cohorts.iter().map(|c| c.size).sum::<u64>(), 5000);
    }

    #[test]
    fn empty_input() {
        let a = analyze(&[], d("2026-06-30"));
        assert_eq!(a.active_patients, 0);
        assert_eq!(a.revenue, "0.00");
        assert_eq!(a.segments, SegmentCounts::default());
        assert!(a.cohorts.is_empty());
        assert_eq!((a.top20_share, a.gini), (0.0, 0.0));
    }
}
