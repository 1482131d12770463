//! Gamma-Gamma model of the spend per visit (Fader & Hardie 2013, "The
//! Gamma-Gamma model of monetary value").
//!
//! The spend of a visit is `Gamma(p, nu)`, and `nu ~ Gamma(q, gamma)` across
//! patients; the data per patient are the number of repeat visits `x` and
//! their mean spend `m`. The model assumes spend is independent of visit
//! frequency and needs `m > 0` (it takes logarithms): patients whose repeat
//! visits were all free are left out of the fit, as `lifetimes` refuses them.
//!
//! The likelihood is `lifetimes` 0.11.3 `GammaGammaFitter`'s, summed (not
//! averaged) over patients. For speed, only `ln(x m + gamma)` needs a
//! logarithm per distinct `(x, m)` row and evaluation; the gamma functions
//! are computed once per distinct `x`, and the terms in `ln m` and `ln x`
//! are constants summed once. Spend is rescaled by its mean during the
//! optimisation so that `gamma` starts near its optimum whatever the
//! currency; the reported likelihood is recomputed on the original scale.

use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::optim::{self, Options};
use crate::special::{digamma, digamma_diff, ln_gamma, ln_gamma_ratio};

/// The Gamma-Gamma parameters `(p, q, gamma)` (`lifetimes` calls `gamma`
/// `v`), in the currency unit of the spend they were fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// Result of [`fit`]; serialises to the `gamma_gamma` object of
/// `clv fit --json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
    /// Total log-likelihood over the customers used.
    pub log_likelihood: f64,
    /// Customers used by the fit (`frequency > 0` and `monetary_value > 0`).
    pub customers: u64,
    /// Likelihood evaluations the optimiser used (diagnostic, not serialised).
    #[serde(skip)]
    pub evaluations: usize,
}

impl GammaGammaFit {
    /// The fitted parameters.
    pub fn params(&self) -> GammaGammaParams {
        GammaGammaParams {
            p: self.p,
            q: self.q,
            gamma: self.gamma,
        }
    }
}

impl GammaGammaParams {
    /// Expected mean spend per visit of a patient with `frequency` repeat
    /// visits of mean spend `monetary_value` (`lifetimes`'
    /// `conditional_expected_average_profit`); for `frequency = 0` it is the
    /// population mean `p gamma / (q - 1)`. Meaningful for `q > 1`.
    pub fn expected_average_spend(&self, frequency: f64, monetary_value: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let population = p * gamma / (q - 1.0);
        if frequency <= 0.0 {
            return population;
        }
        let w = p * frequency / (p * frequency + q - 1.0);
        (1.0 - w) * population + w * monetary_value
    }

    /// Log-likelihood of one customer with `x > 0` repeat visits of mean
    /// spend `m > 0`.
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        ln_gamma_ratio(p * x, q) - ln_gamma(q)
            + q * gamma.ln()
            + (p * x - 1.0) * m.ln()
            + p * x * x.ln()
            - (p * x + q) * (x * m + gamma).ln()
    }
}

/// Fits the model on `(frequency, monetary_value)` pairs, one per customer;
/// pairs with `frequency == 0` or `monetary_value <= 0` are skipped (see the
/// module documentation).
pub fn fit<I>(rows: I) -> Result<GammaGammaFit, FitError>
where
    I: IntoIterator<Item = (f64, f64)>,
{
    fit_weighted(rows.into_iter().map(|(x, m)| (x, m, 1.0)))
}

/// Same as [`fit`] with a weight (number of identical customers) per row.
pub fn fit_weighted<I>(rows: I) -> Result<GammaGammaFit, FitError>
where
    I: IntoIterator<Item = (f64, f64, f64)>,
{
    let data = Compressed::new(rows)?;
    if data.total_weight <= 0.0 {
        return Err(FitError::Empty);
    }
    let inv_w = 1.0 / data.total_weight;
    let mut grad = [0.0; 3];
    let objective = |theta: &[f64], g: &mut [f64]| -> f64 {
        let p = [theta[0].exp(), theta[1].exp(), theta[2].exp()];
        let ll = data.log_likelihood(p, Some(&mut grad));
        for i in 0..3 {
            g[i] = -grad[i] * p[i] * inv_w;
        }
        -ll * inv_w
    };
    let opts = Options::default();
    let out = optim::minimize(objective, &[0.0; 3], opts);
    if !(out.converged || out.at_boundary(&opts)) {
        return Err(FitError::NoConvergence { grad: out.grad_max });
    }
    let [p, q, gamma_s] = [out.x[0].exp(), out.x[1].exp(), out.x[2].exp()];
    // Undo the spend scale: gamma scales with spend, and the density of the
    // mean spend picks up a factor 1/scale per customer.
    let ll = data.log_likelihood([p, q, gamma_s], None) - data.total_weight * data.scale.ln();
    Ok(GammaGammaFit {
        p,
        q,
        gamma: gamma_s * data.scale,
        log_likelihood: ll,
        customers: data.total_weight.round() as u64,
        evaluations: out.evaluations,
    })
}

/// Total log-likelihood of `(frequency, monetary_value)` pairs at `params`,
/// over the pairs the fit would use.
pub fn total_log_likelihood<I>(params: &GammaGammaParams, rows: I) -> f64
where
    I: IntoIterator<Item = (f64, f64)>,
{
    rows.into_iter()
        .filter(|&(x, m)| x > 0.0 && m > 0.0)
        .map(|(x, m)| params.log_likelihood(x, m))
        .sum()
}

struct Compressed {
    /// Spend is divided by this during the fit.
    scale: f64,
    total_weight: f64,
    groups: Vec<Group>,
    /// Per merged row: `x m` (scaled spend) and weight.
    row_xm: Vec<f64>,
    row_w: Vec<f64>,
}

/// The customers with one value of `x`.
struct Group {
    x: f64,
    weight: f64,
    /// `sum w ln(x m)` and `sum w ln m` over the group.
    sum_ln_xm: f64,
    sum_ln_m: f64,
    rows: std::ops::Range<usize>,
}

impl Compressed {
    fn new<I>(rows: I) -> Result<Self, FitError>
    where
        I: IntoIterator<Item = (f64, f64, f64)>,
    {
        let mut raw: Vec<(u64, u64, f64)> = Vec::new();
        let mut sum_wm = 0.0;
        let mut sum_w = 0.0;
        for (i, (x, m, w)) in rows.into_iter().enumerate() {
            if !(x.is_finite() && m.is_finite() && w.is_finite()) {
                return Err(FitError::InvalidRow {
                    row: i,
                    reason: "non-finite value".to_string(),
                });
            }
            if x < 0.0 || x.fract() != 0.0 || w < 0.0 {
                return Err(FitError::InvalidRow {
                    row: i,
                    reason: "frequency must be a non-negative integer and the weight non-negative"
                        .to_string(),
                });
            }
            if x == 0.0 || m <= 0.0 || w == 0.0 {
                continue;
            }
            sum_wm += w * m;
            sum_w += w;
            raw.push((x.to_bits(), m.to_bits(), w));
        }
        raw.sort_unstable_by_key(|a| (a.0, a.1));
        let scale = if sum_w > 0.0 { sum_wm / sum_w } else { 1.0 };
        let mut groups: Vec<Group> = Vec::new();
        let (mut row_xm, mut row_w) = (Vec::new(), Vec::new());
        let mut last: Option<(u64, u64)> = None;
        for (xb, mb, w) in raw {
            let (x, m) = (f64::from_bits(xb), f64::from_bits(mb) / scale);
            let ln_xm = (x * m).ln();
            if last == Some((xb, mb)) {
                if let Some(rw) = row_w.last_mut() {
                    *rw += w;
                }
            } else {
                row_xm.push(x * m);
                row_w.push(w);
            }
            last = Some((xb, mb));
            let end = row_w.len();
            match groups.last_mut() {
                Some(g) if g.x == x => {
                    g.weight += w;
                    g.sum_ln_xm += w * ln_xm;
                    g.sum_ln_m += w * m.ln();
                    g.rows.end = end;
                }
                _ => groups.push(Group {
                    x,
                    weight: w,
                    sum_ln_xm: w * ln_xm,
                    sum_ln_m: w * m.ln(),
                    rows: end - 1..end,
                }),
            }
        }
        Ok(Compressed {
            scale,
            total_weight: sum_w,
            groups,
            row_xm,
            row_w,
        })
    }

    /// Total log-likelihood on the scaled spend at `[p, q, gamma]`, with the
    /// gradient w.r.t. those three when asked.
    ///
    /// Per customer, with `u = gamma / (x m)`, the likelihood is written
    ///
    /// `ln G(px+q) - ln G(px) - ln G(q) + q ln(gamma / (x m + gamma)) - ln m - p x ln(1 + u)`,
    ///
    /// the textbook form rearranged so that nothing cancels when `p x` is
    /// huge or `gamma` tiny (the optimiser probes such points on some data).
    fn log_likelihood(&self, params: [f64; 3], grad: Option<&mut [f64; 3]>) -> f64 {
        let [p, q, v] = params;
        let ln_v = v.ln();
        let lg_q = ln_gamma(q);
        let want = grad.is_some();
        let dg_q = if want { digamma(q) } else { 0.0 };
        let mut ll = 0.0;
        let (mut gp, mut gq, mut gv) = (0.0, 0.0, 0.0);
        for g in &self.groups {
            let (x, w) = (g.x, g.weight);
            let px = p * x;
            let range = g.rows.clone();
            let (xm, ws) = (&self.row_xm[range.clone()], &self.row_w[range]);
            // s_l1 = sum w ln(1 + u); s_f = sum w u / (1 + u) = sum w gamma / (x m + gamma).
            let (mut s_l1, mut s_f) = (0.0, 0.0);
            if want {
                for (&xm, &wr) in xm.iter().zip(ws) {
                    let u = v / xm;
                    s_l1 += wr * u.ln_1p();
                    s_f += wr * (u / (1.0 + u));
                }
            } else {
                for (&xm, &wr) in xm.iter().zip(ws) {
                    s_l1 += wr * (v / xm).ln_1p();
                }
            }
            // sum w ln(x m + gamma) = sum w ln(x m) + s_l1
            let s_ln_d = g.sum_ln_xm + s_l1;
            ll +=
                w * (ln_gamma_ratio(px, q) - lg_q + q * ln_v) - q * s_ln_d - g.sum_ln_m - px * s_l1;
            if want {
                gp += x * (w * digamma_diff(px, q) - s_l1);
                gq += w * (digamma(px + q) - dg_q + ln_v) - s_ln_d;
                // d/d gamma = W q / gamma - (q + p x) sum w / (x m + gamma)
                gv += (w * q - (q + px) * s_f) / v;
            }
        }
        if let Some(g) = grad {
            *g = [gp, gq, gv];
        }
        ll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let rows = (1..150).map(|i| {
            let x = f64::from(i % 6 + 1);
            let m = 3.0 + f64::from(i % 17) * 1.7;
            (x, m, 1.0 + f64::from(i % 4))
        });
        let data = Compressed::new(rows).expect("data");
        crate::testutil::assert_gradient(|p, g| data.log_likelihood(p, g), [2.5, 3.1, 1.7]);
    }

    #[test]
    fn recovers_simulated_parameters_and_is_scale_equivariant() {
        let truth = GammaGammaParams {
            p: 4.0,
            q: 5.0,
            gamma: 30.0,
        };
        let mut rng = crate::testutil::Rng::new(11);
        let rows: Vec<(f64, f64)> = (0..30_000)
            .map(|_| {
                let x = f64::from(rng.below(8) + 1);
                let nu = rng.gamma(truth.q) / truth.gamma;
                // The mean of x Gamma(p, nu) spends is Gamma(p x, nu x).
                let m = rng.gamma(truth.p * x) / (nu * x);
                (x, m)
            })
            .collect();
        let fit1 = fit(rows.iter().copied()).expect("fit");
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(rel(fit1.p, truth.p) < 0.1, "{fit1:?}");
        assert!(rel(fit1.q, truth.q) < 0.15, "{fit1:?}");
        assert!(rel(fit1.gamma, truth.gamma) < 0.2, "{fit1:?}");
        let direct = total_log_likelihood(&fit1.params(), rows.iter().copied());
        assert!((direct - fit1.log_likelihood).abs() < 1e-7 * direct.abs());
        // Spend in cents: gamma scales by 100, p and q do not move, and the
        // likelihood shifts by -n ln 100.
        let fit100 = fit(rows.iter().map(|&(x, m)| (x, m * 100.0))).expect("fit");
        assert!(rel(fit100.p, fit1.p) < 1e-6 && rel(fit100.q, fit1.q) < 1e-6);
        assert!(rel(fit100.gamma, 100.0 * fit1.gamma) < 1e-6);
        let shift = fit1.log_likelihood - 30_000.0 * 100f64.ln();
        assert!((fit100.log_likelihood - shift).abs() < 1e-6 * shift.abs());
    }

    #[test]
    fn zero_spend_and_first_time_customers_are_left_out() {
        let rows = [
            (0.0, 0.0),
            (2.0, 0.0),
            (1.0, 10.0),
            (3.0, 12.0),
            (2.0, 8.0),
            (1.0, 30.0),
        ];
        let data = Compressed::new(rows.iter().map(|&(x, m)| (x, m, 1.0))).expect("data");
        assert_eq!(data.total_weight, 4.0);
        assert!(matches!(
            fit([(0.0, 5.0), (3.0, 0.0)]),
            Err(FitError::Empty)
        ));
        assert!(matches!(
            fit([(1.5, 5.0)]),
            Err(FitError::InvalidRow { row: 0, .. })
        ));
    }

    /// From random parameters, currencies and sizes the fit converges and
    /// beats the likelihood of the truth. (3000 trials in release during
    /// development: all converged.)
    #[test]
    fn converges_on_varied_data() {
        let mut rng = crate::testutil::Rng::new(77);
        for _ in 0..60 {
            let truth = GammaGammaParams {
                p: 0.3 + 10.0 * rng.uniform(),
                q: 0.5 + 10.0 * rng.uniform(),
                gamma: 10f64.powf(-1.0 + 5.0 * rng.uniform()),
            };
            let n = 30 + rng.below(3000);
            let rows: Vec<(f64, f64)> = (0..n)
                .map(|_| {
                    let x = f64::from(rng.below(10) + 1);
                    let nu = rng.gamma(truth.q) / truth.gamma;
                    (x, rng.gamma(truth.p * x) / (nu * x))
                })
                .filter(|r| r.1 > 0.0 && r.1.is_finite())
                .collect();
            let f =
                fit(rows.iter().copied()).unwrap_or_else(|e| panic!("{e} for {truth:?}, n {n}"));
            let at_truth = total_log_likelihood(&truth, rows.iter().copied());
            assert!(
                f.log_likelihood >= at_truth - 1e-6 * at_truth.abs(),
                "{f:?} vs {at_truth}"
            );
            assert!(f.evaluations < 600, "{f:?}");
        }
    }
}
