//! Concentration of revenue: the top-20 % share, the Gini coefficient and
//! the Pareto / Lorenz curves behind them.
//!
//! Everything is summed exactly in `i128` over integer minor units; only the
//! final ratio is floating point, so the figures are identical to what SQL
//! or pandas computes from the same integers (and do not depend on the
//! order of summation). Ties in the top-20 % do not matter: the share is the
//! sum of the `ceil(n / 5)` largest amounts, whichever of several equal
//! amounts is taken. `ceil(0.2 n)` is computed as `(n + 4) / 5` in integers.

use serde::{Deserialize, Serialize};

/// Number of patients in the top 20 %: `ceil(0.2 n)`.
pub fn top20_count(n: usize) -> usize {
    n.div_ceil(5)
}

/// Share of revenue of the top 20 % of patients by `monetary` (0.0 when the
/// total is 0 or there are no patients).
pub fn top20_share(monetary: &[i64]) -> f64 {
    let n = monetary.len();
    if n == 0 {
        return 0.0;
    }
    let k = top20_count(n);
    let mut v = monetary.to_vec();
    // Partition so that the k largest come first (descending order).
    v.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    let top: i128 = v[..k].iter().map(|&x| i128::from(x)).sum();
    let total: i128 = top + v[k..].iter().map(|&x| i128::from(x)).sum::<i128>();
    ratio(top, total)
}

/// [`top20_share`] from amounts already sorted ascending.
pub fn top20_share_sorted(sorted_asc: &[i64]) -> f64 {
    let n = sorted_asc.len();
    if n == 0 {
        return 0.0;
    }
    let k = top20_count(n);
    let top: i128 = sorted_asc[n - k..].iter().map(|&x| i128::from(x)).sum();
    let total: i128 = sorted_asc.iter().map(|&x| i128::from(x)).sum();
    ratio(top, total)
}

/// Gini coefficient of `monetary`:
/// `sum_i (2i - n - 1) x_i / (n sum x)` with `x` ascending and `i` from 1
/// (0.0 when the total is 0).
pub fn gini(monetary: &[i64]) -> f64 {
    let mut v = monetary.to_vec();
    v.sort_unstable();
    gini_sorted(&v)
}

/// [`gini`] from amounts already sorted ascending.
pub fn gini_sorted(sorted_asc: &[i64]) -> f64 {
    let n = sorted_asc.len() as i128;
    let mut num: i128 = 0;
    let mut total: i128 = 0;
    for (i, &x) in sorted_asc.iter().enumerate() {
        let i = i as i128 + 1;
        num += (2 * i - n - 1) * i128::from(x);
        total += i128::from(x);
    }
    ratio(num, n * total)
}

fn ratio(num: i128, den: i128) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// One point of a concentration curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Share of patients, 0.0 to 1.0.
    pub patient_share: f64,
    /// Share of revenue held by those patients, 0.0 to 1.0.
    pub revenue_share: f64,
}

/// Pareto curve: for `j = 0..=points`, the share of revenue of the top
/// `ceil(j n / points)` patients (largest amounts first). With `points =
/// 100`, point 20 is [`top20_share`]. Empty when there are no patients.
pub fn pareto_curve(monetary: &[i64], points: usize) -> Vec<CurvePoint> {
    let mut v = monetary.to_vec();
    v.sort_unstable_by(|a, b| b.cmp(a));
    curve(&v, points)
}

/// Lorenz curve: for `j = 0..=points`, the share of revenue of the bottom
/// `ceil(j n / points)` patients (smallest amounts first); the Gini
/// coefficient is close to twice the area between it and the diagonal.
pub fn lorenz_curve(monetary: &[i64], points: usize) -> Vec<CurvePoint> {
    let mut v = monetary.to_vec();
    v.sort_unstable();
    curve(&v, points)
}

fn curve(ordered: &[i64], points: usize) -> Vec<CurvePoint> {
    let n = ordered.len();
    if n == 0 || points == 0 {
        return Vec::new();
    }
    let total: i128 = ordered.iter().map(|&x| i128::from(x)).sum();
    let mut out = Vec::with_capacity(points + 1);
    let mut acc: i128 = 0;
    let mut taken = 0usize;
    for j in 0..=points {
        let k = ((j as u128 * n as u128).div_ceil(points as u128)) as usize;
        while taken < k {
            acc += i128::from(ordered[taken]);
            taken += 1;
        }
        out.push(CurvePoint {
            patient_share: k as f64 / n as f64,
            revenue_share: ratio(acc, total),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Naive definitions: full sort by (monetary desc, id asc) for the top
    /// 20 %, and the pairwise mean absolute difference for Gini,
    /// `G = sum_i sum_j |x_i - x_j| / (2 n^2 mean) = sum |x_i - x_j| / (2 n total)`,
    /// which equals the spec's formula exactly (as rationals).
    fn naive_top20(x: &[i64]) -> (i128, i128) {
        let mut idx: Vec<usize> = (0..x.len()).collect();
        idx.sort_by(|&a, &b| x[b].cmp(&x[a]).then(a.cmp(&b)));
        let k = (x.len() as f64 * 0.2).ceil() as usize;
        let top = idx[..k].iter().map(|&i| i128::from(x[i])).sum();
        (top, x.iter().map(|&v| i128::from(v)).sum())
    }

    fn naive_gini(x: &[i64]) -> (i128, i128) {
        let mut s: i128 = 0;
        for &a in x {
            for &b in x {
                s += (i128::from(a) - i128::from(b)).abs();
            }
        }
        let total: i128 = x.iter().map(|&v| i128::from(v)).sum();
        // sum |xi - xj| / (2 n total)
        (s, 2 * x.len() as i128 * total)
    }

    #[test]
    fn hand_computed() {
        // Amounts 1, 2, 3, 4, 10 (n = 5, total 20): top ceil(1) = {10}: 0.5.
        // Gini: sorted 1,2,3,4,10, weights 2i-6 = -4,-2,0,2,4:
        // -4 - 4 + 0 + 8 + 40 = 40; 40 / (5 * 20) = 0.4.
        let x = [3, 10, 1, 4, 2];
        assert_eq!(top20_share(&x), 0.5);
        assert_eq!(gini(&x), 0.4);
        // n = 6: ceil(1.2) = 2 patients: {10, 10} of 1+10+10+3+3+3 = 30.
        let y = [10, 3, 10, 3, 3, 1];
        assert_eq!(top20_share(&y), 20.0 / 30.0);
        // Everyone equal: no concentration.
        assert_eq!(gini(&[7, 7, 7]), 0.0);
        assert_eq!(gini(&[]), 0.0);
        assert_eq!(top20_share(&[0, 0]), 0.0);
        // One patient holds everything among four: (2*4-5)x/(4x) = 0.75.
        assert_eq!(gini(&[0, 0, 0, 9]), 0.75);
    }

    #[test]
    fn sums_do_not_overflow_64_bits() {
        let x = vec![i64::MAX / 2; 10];
        assert_eq!(gini(&x), 0.0);
        assert_eq!(top20_share(&x), 0.2);
    }

    #[test]
    fn curves() {
        let x = [3, 10, 1, 4, 2];
        let p = pareto_curve(&x, 5);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].revenue_share, 0.0);
        assert_eq!(p[1].revenue_share, 0.5);
        assert_eq!(p[2].revenue_share, 14.0 / 20.0);
        assert_eq!(p[5].revenue_share, 1.0);
        let l = lorenz_curve(&x, 5);
        assert_eq!(l[1].revenue_share, 1.0 / 20.0);
        let big: Vec<i64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(pareto_curve(&big, 100)[20].revenue_share, top20_share(&big));
    }

    proptest! {
        #[test]
        fn equal_to_naive_definitions(x in proptest::collection::vec(0i64..1_000_000_000_000, 1..80)) {
            let (t, tot) = naive_top20(&x);
            let (g, gd) = naive_gini(&x);
            let want_top = if tot == 0 { 0.0 } else { t as f64 / tot as f64 };
            prop_assert_eq!(top20_share(&x), want_top);
            let mut s = x.clone();
            s.sort_unstable();
            prop_assert_eq!(top20_share_sorted(&s), want_top);
            // Same rational number: compare exactly by cross-multiplication
            // of the spec's integer numerator/denominator.
            let n = x.len() as i128;
            let num: i128 = s.iter().enumerate().map(|(i, &v)| (2 * (i as i128 + 1) - n - 1) * i128::from(v)).sum();
            prop_assert_eq!(num * gd, g * (n * tot));
            let want_gini = if tot == 0 { 0.0 } else { num as f64 / (n * tot) as f64 };
            prop_assert_eq!(gini(&x), want_gini);
        }
    }
}
