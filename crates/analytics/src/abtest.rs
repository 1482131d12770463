//! A/B tests of campaigns: two-proportion z-test, Wald interval and sample
//! sizes, matching `statsmodels` / `scipy` (the references of
//! `analytics.md`).
//!
//! The normal tail probabilities come from an `erfc` accurate to ~1e-15
//! relative (see [`crate::special`]), so small p-values keep their digits
//! (a `1 - cdf` would lose them).

use serde::{Deserialize, Serialize};

use crate::special::{norm_cdf, norm_ppf, norm_sf};

/// Invalid input of an A/B computation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AbTestError {
    #[error(
        "each variant needs at least one recipient and at most as many conversions as recipients"
    )]
    InvalidCounts,
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
}

/// Result of [`two_proportion_ztest`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZTest {
    /// `x_a / n_a`.
    pub rate_a: f64,
    /// `x_b / n_b`.
    pub rate_b: f64,
    /// `rate_a - rate_b`.
    pub difference: f64,
    /// Pooled z statistic.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// 95 % Wald interval of the difference (unpooled standard error).
    pub ci_low: f64,
    pub ci_high: f64,
}

fn rates(x_a: u64, n_a: u64, x_b: u64, n_b: u64) -> Result<(f64, f64), AbTestError> {
    if n_a == 0 || n_b == 0 || x_a > n_a || x_b > n_b {
        return Err(AbTestError::InvalidCounts);
    }
    Ok((x_a as f64 / n_a as f64, x_b as f64 / n_b as f64))
}

/// Pooled two-proportion z-test of `x_a/n_a` against `x_b/n_b`, two-sided,
/// as `statsmodels.stats.proportion.proportions_ztest` (default
/// `prop_var=False`):
/// `z = (p_a - p_b) / sqrt(p (1 - p) (1/n_a + 1/n_b))` with the pooled
/// `p = (x_a + x_b) / (n_a + n_b)`, `p-value = 2 (1 - Phi(|z|))`; plus the
/// 95 % Wald interval of [`wald_interval`]. When the pooled rate is 0 or 1
/// (both variants at 0 % or at 100 %) the difference is exactly 0 and the
/// result is `z = 0`, `p = 1` (statsmodels would divide 0 by 0).
pub fn two_proportion_ztest(x_a: u64, n_a: u64, x_b: u64, n_b: u64) -> Result<ZTest, AbTestError> {
    let (pa, pb) = rates(x_a, n_a, x_b, n_b)?;
    let pooled = (x_a + x_b) as f64 / (n_a + n_b) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_a as f64 + 1.0 / n_b as f64)).sqrt();
    let diff = pa - pb;
    let (z, p) = if se > 0.0 {
        let z = diff / se;
        (z, 2.0 * norm_sf(z.abs()))
    } else {
        (0.0, 1.0)
    };
    let (lo, hi) = wald_interval(x_a, n_a, x_b, n_b, 0.95)?;
    Ok(ZTest {
        rate_a: pa,
        rate_b: pb,
        difference: diff,
        z,
        p_value: p,
        ci_low: lo,
        ci_high: hi,
    })
}

/// Wald interval of `p_a - p_b` at `confidence` (e.g. 0.95):
/// `diff -/+ z_{1 - (1-confidence)/2} sqrt(p_a(1-p_a)/n_a + p_b(1-p_b)/n_b)`
/// (`statsmodels` `confint_proportions_2indep(method="wald")`).
pub fn wald_interval(
    x_a: u64,
    n_a: u64,
    x_b: u64,
    n_b: u64,
    confidence: f64,
) -> Result<(f64, f64), AbTestError> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(AbTestError::InvalidParameter(
            "confidence must be in (0, 1)",
        ));
    }
    let (pa, pb) = rates(x_a, n_a, x_b, n_b)?;
    let se = (pa * (1.0 - pa) / n_a as f64 + pb * (1.0 - pb) / n_b as f64).sqrt();
    let q = norm_ppf(1.0 - (1.0 - confidence) / 2.0);
    let diff = pa - pb;
    Ok((diff - q * se, diff + q * se))
}

fn check_design(baseline: f64, mde: f64, alpha: f64, power: f64) -> Result<f64, AbTestError> {
    if !(baseline > 0.0 && baseline < 1.0) {
        return Err(AbTestError::InvalidParameter(
            "baseline rate must be in (0, 1)",
        ));
    }
    let target = baseline + mde;
    if mde == 0.0 || !(target > 0.0 && target < 1.0) {
        return Err(AbTestError::InvalidParameter(
            "baseline + minimum detectable difference must be in (0, 1) and differ from the baseline",
        ));
    }
    if !(alpha > 0.0 && alpha < 1.0 && power > 0.0 && power < 1.0) {
        return Err(AbTestError::InvalidParameter(
            "alpha and power must be in (0, 1)",
        ));
    }
    Ok(target)
}

/// Sample size per arm (not rounded; round up) to detect a change of the
/// conversion rate from `baseline` to `baseline + mde` with a two-sided
/// test at level `alpha` and the given `power`, by the standard
/// normal-approximation formula with the **pooled** variance under H0 and
/// the **unpooled** variance under H1 (Fleiss, "Statistical methods for
/// rates and proportions", without continuity correction):
///
/// `n = (z_{1-alpha/2} sqrt(2 pbar (1 - pbar)) + z_{power} sqrt(p1 (1 - p1) + p2 (1 - p2)))^2 / (p2 - p1)^2`
///
/// with `p1 = baseline`, `p2 = baseline + mde`, `pbar = (p1 + p2) / 2`.
/// 20 % to 25 %, alpha 0.05, power 0.8 gives 1093.74.
pub fn sample_size_per_arm(
    baseline: f64,
    mde: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, AbTestError> {
    let p2 = check_design(baseline, mde, alpha, power)?;
    let p1 = baseline;
    let pbar = 0.5 * (p1 + p2);
    let za = norm_ppf(1.0 - alpha / 2.0);
    let zb = norm_ppf(power);
    let num =
        za * (2.0 * pbar * (1.0 - pbar)).sqrt() + zb * (p1 * (1.0 - p1) + p2 * (1.0 - p2)).sqrt();
    Ok(num * num / (mde * mde))
}

/// Sample size per arm with Cohen's effect size
/// `h = 2 asin(sqrt(p2)) - 2 asin(sqrt(p1))` and the two-sided normal power
/// function including both rejection tails, solved exactly for `n`:
/// `power = Phi(h sqrt(n/2) - z) + Phi(-h sqrt(n/2) - z)`, `z = z_{1-alpha/2}`.
/// This is `statsmodels`' `NormalIndPower().solve_power(effect_size=h,
/// alpha, power, ratio=1)` (20 % to 25 %: 1091.90).
pub fn sample_size_per_arm_arcsine(
    baseline: f64,
    mde: f64,
    alpha: f64,
    power: f64,
) -> Result<f64, AbTestError> {
    let p2 = check_design(baseline, mde, alpha, power)?;
    if power <= alpha / 2.0 {
        return Err(AbTestError::InvalidParameter("power must exceed alpha / 2"));
    }
    let h = (2.0 * p2.sqrt().asin() - 2.0 * baseline.sqrt().asin()).abs();
    let z = norm_ppf(1.0 - alpha / 2.0);
    // Power as a function of s = h sqrt(n/2) is increasing in s >= 0;
    // start from the one-tail closed form and bisect/Newton on s.
    let pow_at = |s: f64| norm_cdf(s - z) + norm_cdf(-s - z);
    let mut lo = 0.0;
    let mut hi = z + norm_ppf(power).max(0.0) + 1.0;
    while pow_at(hi) < power {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if pow_at(mid) < power {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-15 * hi {
            break;
        }
    }
    let s = 0.5 * (lo + hi);
    Ok(2.0 * (s / h).powi(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_and_invalid_inputs() {
        let t = two_proportion_ztest(0, 10, 0, 20).unwrap();
        assert_eq!((t.z, t.p_value), (0.0, 1.0));
        assert_eq!(
            two_proportion_ztest(11, 10, 0, 20),
            Err(AbTestError::InvalidCounts)
        );
        assert_eq!(
            two_proportion_ztest(1, 0, 0, 20),
            Err(AbTestError::InvalidCounts)
        );
        assert!(sample_size_per_arm(0.2, 0.0, 0.05, 0.8).is_err());
        assert!(sample_size_per_arm(0.9, 0.2, 0.05, 0.8).is_err());
        assert!(wald_interval(1, 2, 1, 2, 1.0).is_err());
    }

    #[test]
    fn symmetric_in_the_variants() {
        let ab = two_proportion_ztest(30, 200, 45, 210).unwrap();
        let ba = two_proportion_ztest(45, 210, 30, 200).unwrap();
        assert_eq!(ab.z, -ba.z);
        assert_eq!(ab.p_value, ba.p_value);
        assert!((ab.ci_low + ba.ci_high).abs() < 1e-15);
    }

    #[test]
    fn sample_size_gives_the_requested_power() {
        // Plugging n back into the normal approximation gives the power.
        let (p1, p2) = (0.1, 0.13);
        let n = sample_size_per_arm(p1, 0.03, 0.05, 0.9).unwrap();
        let pbar = (p1 + p2) / 2.0;
        let z = norm_ppf(0.975);
        let s0 = (2.0 * pbar * (1.0 - pbar) / n).sqrt();
        let s1 = ((p1 * (1.0 - p1) + p2 * (1.0 - p2)) / n).sqrt();
        let power = norm_cdf(((p2 - p1) - z * s0) / s1);
        assert!((power - 0.9).abs() < 1e-12, "{power}");
    }
}
