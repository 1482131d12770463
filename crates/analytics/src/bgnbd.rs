//! BG/NBD: the beta-geometric / negative binomial distribution model of
//! repeat visits (Fader, Hardie & Lee 2005, "Counting your customers the
//! easy way").
//!
//! Each patient visits as a Poisson process with rate `lambda ~ Gamma(r,
//! alpha)` and, after every visit, stops for good with probability
//! `p ~ Beta(a, b)`. The data per patient are `(x, t_x, T)`: repeat visits,
//! time of the last visit and age, all measured from the first visit.
//!
//! # Why the fit looks the way it does
//!
//! - The likelihood (paper eq. 6) depends on the data only through distinct
//!   `(x, t_x, T)` triples, and with the day as period a million patients
//!   have far fewer distinct triples; identical rows are merged into
//!   weights. Within a row the terms that depend only on `x` (gamma
//!   functions) are computed once per distinct `x`, and `ln(alpha + T)`,
//!   `ln(alpha + t_x)` once per distinct value, so a likelihood evaluation
//!   costs one `exp` and one `ln` per merged row.
//! - Time is rescaled so that the largest `T` is 10 (as `lifetimes` does),
//!   which puts `alpha` near 1 whatever the period; the optimiser works on
//!   the logarithms of `(r, alpha, a, b)` with analytic gradients (BFGS, see
//!   the `optim` module). The scale is undone exactly afterwards: scaling time
//!   by `c` multiplies the likelihood of a patient by `c^-x`.
//! - The reported log-likelihood is the total of eq. 6 over patients in the
//!   data's own unit (CDNOW in weeks: -9582.43), not `lifetimes`' mean on
//!   rescaled time.
//!
//! The predictions reproduce `lifetimes` 0.11.3 `BetaGeoFitter`
//! (`conditional_expected_number_of_purchases_up_to_time`,
//! `conditional_probability_alive`, `expected_number_of_purchases_up_to_time`,
//! `probability_of_n_purchases_up_to_time`).

use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::optim::{self, Options};
use crate::special::{digamma_diff, ln_gamma, ln_gamma_ratio, ln_hyp2f1};

/// The four BG/NBD parameters, in the period unit of the data they were
/// fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// One row of fit input with a weight (number of identical patients).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WeightedObservation {
    /// Repeat purchases `x` (a non-negative integer).
    pub frequency: f64,
    /// Time of the last purchase since the first, `t_x`.
    pub recency: f64,
    /// Age of the customer, `T`.
    pub t: f64,
    /// How many customers share these values.
    pub weight: f64,
}

/// Result of [`fit`]; serialises to the `bgnbd` object of `clv fit --json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
    /// Total log-likelihood over customers (paper eq. 6), in the data's
    /// period unit.
    pub log_likelihood: f64,
    /// Number of customers (sum of weights).
    pub customers: u64,
    /// Likelihood evaluations the optimiser used (diagnostic, not serialised).
    #[serde(skip)]
    pub evaluations: usize,
}

impl BgNbdFit {
    /// The fitted parameters.
    pub fn params(&self) -> BgNbdParams {
        BgNbdParams {
            r: self.r,
            alpha: self.alpha,
            a: self.a,
            b: self.b,
        }
    }
}

/// Fits BG/NBD by maximum likelihood on `(frequency, recency, T)` triples,
/// one per customer.
pub fn fit<I>(rows: I) -> Result<BgNbdFit, FitError>
where
    I: IntoIterator<Item = (f64, f64, f64)>,
{
    fit_weighted(rows.into_iter().map(|(x, tx, t)| WeightedObservation {
        frequency: x,
        recency: tx,
        t,
        weight: 1.0,
    }))
}

/// Fits BG/NBD on weighted rows (a weight is a number of customers; it may
/// be fractional, and rows of weight 0 are ignored).
///
/// Rows must have a non-negative integer `frequency` and
/// `0 <= recency <= T`; at least one customer needs a repeat purchase.
/// When the maximum lies at infinity (typically `a, b -> inf` with `a / (a
/// + b)` fixed: the data show one dropout probability shared by everybody,
/// as happens on tiny data sets), the fit returns the point where the
/// likelihood stopped changing, with very large `a` and `b`.
pub fn fit_weighted<I>(rows: I) -> Result<BgNbdFit, FitError>
where
    I: IntoIterator<Item = WeightedObservation>,
{
    let data = Compressed::new(rows)?;
    if data.total_weight <= 0.0 {
        return Err(FitError::Empty);
    }
    if data.groups.is_empty() {
        return Err(FitError::Degenerate(
            "no customer has a repeat purchase, so the purchase rate and dropout cannot be told apart",
        ));
    }
    let inv_w = 1.0 / data.total_weight;
    let mut grad = [0.0; 4];
    let objective = |theta: &[f64], g: &mut [f64]| -> f64 {
        let p = [
            theta[0].exp(),
            theta[1].exp(),
            theta[2].exp(),
            theta[3].exp(),
        ];
        let ll = data.log_likelihood(p, Some(&mut grad));
        for i in 0..4 {
            // d/d(ln p) = p d/dp; minimise the negative mean.
            g[i] = -grad[i] * p[i] * inv_w;
        }
        -ll * inv_w
    };
    let opts = Options::default();
    let out = optim::minimize(objective, &[0.0; 4], opts);
    if !(out.converged || out.at_boundary(&opts)) {
        return Err(FitError::NoConvergence { grad: out.grad_max });
    }
    let [r, alpha_s, a, b] = [
        out.x[0].exp(),
        out.x[1].exp(),
        out.x[2].exp(),
        out.x[3].exp(),
    ];
    let ll_scaled = data.log_likelihood([r, alpha_s, a, b], None);
    Ok(BgNbdFit {
        r,
        alpha: alpha_s / data.scale,
        a,
        b,
        log_likelihood: ll_scaled + data.scale.ln() * data.sum_wx,
        customers: data.total_weight.round() as u64,
        evaluations: out.evaluations,
    })
}

/// Total log-likelihood of `rows` at `params` (paper eq. 6), without
/// fitting; mainly for checks against published figures.
pub fn total_log_likelihood<I>(params: &BgNbdParams, rows: I) -> f64
where
    I: IntoIterator<Item = (f64, f64, f64)>,
{
    rows.into_iter()
        .map(|(x, tx, t)| params.log_likelihood(x, tx, t))
        .sum()
}

/// The fit input after merging identical rows and indexing the distinct
/// values of `T` and `t_x`. Times are scaled by `scale`.
struct Compressed {
    scale: f64,
    total_weight: f64,
    /// Sum of `weight * x`, for undoing the time scale in the likelihood.
    sum_wx: f64,
    /// Distinct scaled `T` values.
    t_vals: Vec<f64>,
    /// Distinct scaled `t_x` values of customers with `x > 0`.
    tx_vals: Vec<f64>,
    /// Weight of the `x = 0` customers per distinct `T`.
    zero_w: Vec<f64>,
    groups: Vec<Group>,
    /// Merged rows with `x > 0`, grouped by `x` (see `Group::rows`).
    row_t: Vec<u32>,
    row_tx: Vec<u32>,
    row_w: Vec<f64>,
}

struct Group {
    x: f64,
    weight: f64,
    rows: std::ops::Range<usize>,
}

fn key(v: f64) -> u64 {
    // All values are >= 0 here; +0.0 and -0.0 must merge.
    if v == 0.0 { 0 } else { v.to_bits() }
}

impl Compressed {
    fn new<I>(rows: I) -> Result<Self, FitError>
    where
        I: IntoIterator<Item = WeightedObservation>,
    {
        let mut raw: Vec<([u64; 3], f64)> = Vec::new();
        let mut max_t: f64 = 0.0;
        for (i, o) in rows.into_iter().enumerate() {
            validate(i, o)?;
            if o.weight == 0.0 {
                continue;
            }
            max_t = max_t.max(o.t);
            // For x = 0 the likelihood ignores t_x.
            let tx = if o.frequency == 0.0 { 0.0 } else { o.recency };
            raw.push(([key(o.frequency), key(o.t), key(tx)], o.weight));
        }
        raw.sort_unstable_by_key(|a| a.0);
        let mut merged: Vec<([u64; 3], f64)> = Vec::with_capacity(raw.len() / 4 + 1);
        for (k, w) in raw {
            match merged.last_mut() {
                Some(last) if last.0 == k => last.1 += w,
                _ => merged.push((k, w)),
            }
        }
        let scale = if max_t > 0.0 { 10.0 / max_t } else { 1.0 };
        let mut t_keys: Vec<u64> = merged.iter().map(|r| r.0[1]).collect();
        t_keys.sort_unstable();
        t_keys.dedup();
        let mut tx_keys: Vec<u64> = merged
            .iter()
            .filter(|r| r.0[0] != 0)
            .map(|r| r.0[2])
            .collect();
        tx_keys.sort_unstable();
        tx_keys.dedup();
        let t_vals: Vec<f64> = t_keys.iter().map(|&k| f64::from_bits(k) * scale).collect();
        let tx_vals: Vec<f64> = tx_keys.iter().map(|&k| f64::from_bits(k) * scale).collect();
        let mut zero_w = vec![0.0; t_vals.len()];
        let mut groups: Vec<Group> = Vec::new();
        let (mut row_t, mut row_tx, mut row_w) = (Vec::new(), Vec::new(), Vec::new());
        let mut total_weight = 0.0;
        let mut sum_wx = 0.0;
        for (k, w) in merged {
            let x = f64::from_bits(k[0]);
            total_weight += w;
            sum_wx += w * x;
            let it = t_keys.binary_search(&k[1]).unwrap_or(0);
            if k[0] == 0 {
                zero_w[it] += w;
                continue;
            }
            let itx = tx_keys.binary_search(&k[2]).unwrap_or(0);
            let start = row_w.len();
            row_t.push(it as u32);
            row_tx.push(itx as u32);
            row_w.push(w);
            match groups.last_mut() {
                Some(g) if g.x == x => {
                    g.weight += w;
                    g.rows.end = start + 1;
                }
                _ => groups.push(Group {
                    x,
                    weight: w,
                    rows: start..start + 1,
                }),
            }
        }
        Ok(Compressed {
            scale,
            total_weight,
            sum_wx,
            t_vals,
            tx_vals,
            zero_w,
            groups,
            row_t,
            row_tx,
            row_w,
        })
    }

    /// Total log-likelihood on the scaled data at `[r, alpha, a, b]`; when
    /// `grad` is given, writes the partial derivatives w.r.t. those four.
    ///
    /// `r ln alpha - (r + x) ln(alpha + T)` is computed as
    /// `-r ln(1 + T/alpha) - x ln(alpha + T)`, which stays accurate when `r`
    /// and `alpha` grow together (a gamma distribution collapsing to one
    /// purchase rate), where the textbook form cancels catastrophically.
    fn log_likelihood(&self, p: [f64; 4], grad: Option<&mut [f64; 4]>) -> f64 {
        let [r, al, a, b] = p;
        let want_grad = grad.is_some();
        let tables = |vals: &[f64]| {
            let l1: Vec<f64> = vals.iter().map(|&t| (t / al).ln_1p()).collect();
            let l: Vec<f64> = vals.iter().map(|&t| (al + t).ln()).collect();
            let (q, inv) = if want_grad {
                (
                    vals.iter().map(|&t| t / al / (al + t)).collect(),
                    vals.iter().map(|&t| 1.0 / (al + t)).collect(),
                )
            } else {
                (Vec::new(), Vec::new())
            };
            (l1, l, q, inv)
        };
        // Per distinct value v: ln(1 + v/alpha), ln(alpha + v), and for the
        // gradient v / (alpha (alpha + v)) and 1 / (alpha + v).
        let (l1t, lt, qt, it) = tables(&self.t_vals);
        let (l1x, lx, qx, ix) = tables(&self.tx_vals);

        // Customers without repeat purchases: ll = -r ln(1 + T/alpha).
        let (mut s_l1, mut s_q) = (0.0, 0.0);
        for (j, &w) in self.zero_w.iter().enumerate() {
            if w != 0.0 {
                s_l1 += w * l1t[j];
                if want_grad {
                    s_q += w * qt[j];
                }
            }
        }
        let mut ll = -r * s_l1;
        let mut gr = -s_l1;
        let mut gal = r * s_q;
        let mut ga = 0.0;
        let mut gb = 0.0;

        // ln Gamma(base + x) - ln Gamma(base) for the three bases, advanced
        // along the (ascending) distinct x.
        let mut rise_r = Rising::new(r);
        let mut rise_b = Rising::new(b);
        let mut rise_ab = Rising::new(a + b);
        let ln_a = a.ln();
        for g in &self.groups {
            let x = g.x;
            let w = g.weight;
            rise_r.advance(x);
            rise_b.advance(x);
            rise_ab.advance(x);
            // A1 + A2 without r ln alpha (moved into A3, A4).
            ll += w * (rise_r.ln + rise_b.ln - rise_ab.ln);
            let c = ln_a - (b + (x - 1.0)).ln();
            let range = g.rows.clone();
            let (rows_t, rows_tx, rows_w) = (
                &self.row_t[range.clone()],
                &self.row_tx[range.clone()],
                &self.row_w[range],
            );
            let mut s_ll = 0.0;
            if want_grad {
                let (mut s_r, mut s_q, mut s_i, mut s_4) = (0.0, 0.0, 0.0, 0.0);
                for ((&jt, &jx), &wr) in rows_t.iter().zip(rows_tx).zip(rows_w) {
                    let (jt, jx) = (jt as usize, jx as usize);
                    // A3 = -r l1(T) - x l(T); A4 = c - r l1(tx) - x l(tx);
                    // ln(e^A3 + e^A4) = A3 + softplus(A4 - A3).
                    let a3 = -r * l1t[jt] - x * lt[jt];
                    let d = c + r * (l1t[jt] - l1x[jx]) + x * (lt[jt] - lx[jx]);
                    let e = (-d.abs()).exp();
                    let sp = d.max(0.0) + (1.0 + e).ln();
                    let p4 = if d >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    let p3 = 1.0 - p4;
                    s_ll += wr * (a3 + sp);
                    s_r += wr * (p3 * l1t[jt] + p4 * l1x[jx]);
                    s_q += wr * (p3 * qt[jt] + p4 * qx[jx]);
                    s_i += wr * (p3 * it[jt] + p4 * ix[jx]);
                    s_4 += wr * p4;
                }
                gr += w * rise_r.dg - s_r;
                gal += r * s_q - x * s_i;
                ga += -w * rise_ab.dg + s_4 / a;
                gb += w * (rise_b.dg - rise_ab.dg) - s_4 / (b + (x - 1.0));
            } else {
                for ((&jt, &jx), &wr) in rows_t.iter().zip(rows_tx).zip(rows_w) {
                    let (jt, jx) = (jt as usize, jx as usize);
                    let a3 = -r * l1t[jt] - x * lt[jt];
                    let d = c + r * (l1t[jt] - l1x[jx]) + x * (lt[jt] - lx[jx]);
                    let sp = d.max(0.0) + (1.0 + (-d.abs()).exp()).ln();
                    s_ll += wr * (a3 + sp);
                }
            }
            ll += s_ll;
        }
        if let Some(g) = grad {
            *g = [gr, gal, ga, gb];
        }
        ll
    }
}

/// `ln Gamma(base + x) - ln Gamma(base)` and `psi(base + x) - psi(base)`
/// for integer `x` visited in ascending order. Small steps use the
/// recurrence `Gamma(z + 1) = z Gamma(z)`, which stays exact when `base` is
/// huge (a difference of two enormous `ln_gamma` values would not: near a
/// boundary of the parameter space that noise would swamp the gradient).
struct Rising {
    base: f64,
    x: f64,
    ln: f64,
    dg: f64,
}

impl Rising {
    fn new(base: f64) -> Self {
        Rising {
            base,
            x: 0.0,
            ln: 0.0,
            dg: 0.0,
        }
    }

    fn advance(&mut self, to: f64) {
        if to - self.x > 64.0 {
            self.ln = ln_gamma_ratio(self.base, to);
            self.dg = digamma_diff(self.base, to);
            self.x = to;
            return;
        }
        while self.x < to {
            let z = self.base + self.x;
            self.ln += z.ln();
            self.dg += 1.0 / z;
            self.x += 1.0;
        }
    }
}

fn validate(i: usize, o: WeightedObservation) -> Result<(), FitError> {
    let bad = |reason: &str| {
        Err(FitError::InvalidRow {
            row: i,
            reason: reason.to_string(),
        })
    };
    if !(o.frequency.is_finite()
        && o.recency.is_finite()
        && o.t.is_finite()
        && o.weight.is_finite())
    {
        return bad("non-finite value");
    }
    if o.frequency < 0.0 || o.frequency.fract() != 0.0 {
        return bad("frequency must be a non-negative integer");
    }
    if o.recency < 0.0 || o.t < 0.0 {
        return bad("recency and T must be non-negative");
    }
    if o.recency > o.t {
        return bad("recency exceeds T");
    }
    if o.weight < 0.0 {
        return bad("negative weight");
    }
    Ok(())
}

impl BgNbdParams {
    /// Log-likelihood of one customer (paper eq. 6), in the stable form
    /// of the fit (`r ln alpha - (r + x) ln(alpha + T) = -r ln(1 + T/alpha)
    /// - x ln(alpha + T)`).
    pub fn log_likelihood(&self, x: f64, tx: f64, t: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let a1 = ln_gamma_ratio(r, x);
        let a2 = ln_gamma_ratio(b, x) - ln_gamma_ratio(a + b, x);
        let a3 = -r * (t / alpha).ln_1p() - x * (alpha + t).ln();
        if x > 0.0 {
            let a4 =
                a.ln() - (b + (x - 1.0)).ln() - r * (tx / alpha).ln_1p() - x * (alpha + tx).ln();
            a1 + a2 + crate::special::log_add_exp(a3, a4)
        } else {
            a1 + a2 + a3
        }
    }

    /// Probability that a customer with history `(x, t_x, T)` is still
    /// alive (`lifetimes`' `conditional_probability_alive`).
    pub fn p_alive(&self, x: f64, tx: f64, t: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let log_div = (r + x) * ((t - tx) / (alpha + tx)).ln_1p() + (a / (b + (x - 1.0))).ln();
        1.0 / (1.0 + log_div.exp())
    }

    /// Expected number of purchases in the next `horizon` periods for a
    /// customer with history `(x, t_x, T)` (`lifetimes`'
    /// `conditional_expected_number_of_purchases_up_to_time`, paper eq. 10).
    pub fn expected_purchases(&self, horizon: f64, x: f64, tx: f64, t: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        // The formula divides by a - 1; at a = 1 exactly both sides of the
        // fraction vanish, and the average of the two neighbours is the
        // limit to ~1e-9.
        if (self.a - 1.0).abs() < 1e-7 {
            let lo = BgNbdParams {
                a: 1.0 - 1e-7,
                ..*self
            };
            let hi = BgNbdParams {
                a: 1.0 + 1e-7,
                ..*self
            };
            return 0.5
                * (lo.expected_purchases(horizon, x, tx, t)
                    + hi.expected_purchases(horizon, x, tx, t));
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let (ha, hb, hc) = (r + x, b + x, a + b + (x - 1.0));
        let z = horizon / (alpha + t + horizon);
        let ln_hyp = ln_hyp2f1(ha, hb, hc, z);
        let first = (a + b + (x - 1.0)) / (a - 1.0);
        // ln((alpha+T)/(alpha+T+t)) and ln((alpha+T)/(alpha+t_x)) via ln_1p,
        // which keeps them accurate when alpha is large.
        let second = 1.0 - (ln_hyp - (r + x) * (horizon / (alpha + t)).ln_1p()).exp();
        let denominator = if x > 0.0 {
            1.0 + a / (b + (x - 1.0)) * ((r + x) * ((t - tx) / (alpha + tx)).ln_1p()).exp()
        } else {
            1.0
        };
        first * second / denominator
    }

    /// Expected number of purchases of a new customer in a period of length
    /// `horizon` (`lifetimes`' `expected_number_of_purchases_up_to_time`,
    /// paper eq. 9).
    pub fn expected_purchases_new(&self, horizon: f64) -> f64 {
        if horizon <= 0.0 {
            return 0.0;
        }
        if (self.a - 1.0).abs() < 1e-7 {
            let lo = BgNbdParams {
                a: 1.0 - 1e-7,
                ..*self
            };
            let hi = BgNbdParams {
                a: 1.0 + 1e-7,
                ..*self
            };
            return 0.5 * (lo.expected_purchases_new(horizon) + hi.expected_purchases_new(horizon));
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let z = horizon / (alpha + horizon);
        let ln_hyp = ln_hyp2f1(r, b, a + b - 1.0, z);
        (a + b - 1.0) / (a - 1.0) * (1.0 - (ln_hyp - r * (horizon / alpha).ln_1p()).exp())
    }

    /// Probability of exactly `n` purchases in a period of length `horizon`
    /// for a new customer (paper eq. 8).
    pub fn prob_purchases(&self, horizon: f64, n: u32) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        let x = f64::from(n);
        let ln_beta = |p: f64, q: f64| ln_gamma(p) + ln_gamma(q) - ln_gamma(p + q);
        let ln_q = -(horizon / alpha).ln_1p();
        let ln_z = (horizon / (alpha + horizon)).ln();
        let first =
            (ln_beta(a, b + x) - ln_beta(a, b) + ln_gamma(r + x) - ln_gamma(r) - ln_gamma(x + 1.0)
                + r * ln_q
                + if n > 0 { x * ln_z } else { 0.0 })
            .exp();
        if n == 0 {
            return first;
        }
        // 1 - q^r sum_{j<n} NB(j) is the upper tail of the negative
        // binomial; when it is small, sum it directly rather than subtract
        // two nearly equal numbers.
        let z = horizon / (alpha + horizon);
        let mut term = (r * ln_q).exp(); // NB(0)
        let mut head = 0.0;
        for j in 0..n {
            head += term;
            term *= (r + f64::from(j)) / (f64::from(j) + 1.0) * z;
        }
        let tail = if head > 0.5 {
            let mut tail = 0.0;
            let mut j = f64::from(n);
            for _ in 0..10_000_000 {
                tail += term;
                term *= (r + j) / (j + 1.0) * z;
                j += 1.0;
                if term <= 1e-17 * tail && (r + j) / (j + 1.0) * z < 1.0 {
                    break;
                }
            }
            tail
        } else {
            1.0 - head
        };
        let second = (ln_beta(a + 1.0, b + (x - 1.0)) - ln_beta(a, b)).exp() * tail;
        first + second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Simulates BG/NBD customers with a small deterministic generator and
    /// checks that the fit recovers the parameters it was given.
    #[test]
    fn recovers_simulated_parameters() {
        let truth = BgNbdParams {
            r: 0.8,
            alpha: 20.0,
            a: 1.5,
            b: 4.0,
        };
        let mut rng = crate::testutil::Rng::new(7);
        let mut rows = Vec::new();
        for _ in 0..40_000 {
            let t = f64::from(rng.below(300) + 60);
            rows.push(crate::testutil::simulate_bgnbd(&mut rng, &truth, t));
        }
        let fit = fit(rows.iter().copied()).expect("fit");
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(rel(fit.r, truth.r) < 0.1, "{fit:?}");
        assert!(rel(fit.alpha, truth.alpha) < 0.15, "{fit:?}");
        assert!(rel(fit.a, truth.a) < 0.3, "{fit:?}");
        assert!(rel(fit.b, truth.b) < 0.35, "{fit:?}");
        // The fit's total likelihood is the sum of the per-customer ones.
        let direct = total_log_likelihood(&fit.params(), rows.iter().copied());
        assert!((direct - fit.log_likelihood).abs() < 1e-6 * direct.abs());
        assert_eq!(fit.customers, 40_000);
    }

    #[test]
    fn weights_equal_repeated_rows() {
        // Simulated customers with integer times, so that many repeat.
        let truth = BgNbdParams {
            r: 0.5,
            alpha: 10.0,
            a: 0.9,
            b: 3.0,
        };
        let mut rng = crate::testutil::Rng::new(9);
        let rows: Vec<(f64, f64, f64)> = (0..5000)
            .map(|_| {
                let t = f64::from(rng.below(60) + 20);
                let (x, tx, t) = crate::testutil::simulate_bgnbd(&mut rng, &truth, t);
                (x, tx.ceil(), t)
            })
            .collect();
        let mut counts = std::collections::BTreeMap::new();
        for &(x, tx, t) in &rows {
            *counts.entry((x as u64, tx as u64, t as u64)).or_insert(0.0) += 1.0;
        }
        assert!(counts.len() < rows.len() / 2, "{} distinct", counts.len());
        let weighted = |scale: f64| {
            counts
                .iter()
                .map(move |(&(x, tx, t), &w)| WeightedObservation {
                    frequency: x as f64,
                    recency: tx as f64,
                    t: t as f64,
                    weight: w * scale,
                })
        };
        let plain = fit(rows.iter().copied()).expect("fit");
        let same = fit_weighted(weighted(1.0)).expect("fit");
        let rel = |a: f64, b: f64| ((a - b) / b).abs();
        assert!(
            rel(plain.r, same.r) < 1e-6 && rel(plain.b, same.b) < 1e-5,
            "{plain:?} {same:?}"
        );
        assert!(rel(plain.log_likelihood, same.log_likelihood) < 1e-12);
        // Doubling every weight doubles the likelihood and moves nothing.
        let double = fit_weighted(weighted(2.0)).expect("fit");
        assert!(rel(double.r, plain.r) < 1e-6 && rel(double.alpha, plain.alpha) < 1e-6);
        assert!(rel(double.a, plain.a) < 1e-5 && rel(double.b, plain.b) < 1e-5);
        assert!(rel(double.log_likelihood, 2.0 * plain.log_likelihood) < 1e-9);
        assert_eq!(double.customers, 10_000);
    }

    #[test]
    fn a_dropout_probability_shared_by_all_is_a_boundary_solution() {
        // Four distinct histories cannot identify a Beta distribution: the
        // likelihood keeps rising as a and b grow with a/(a+b) fixed. The
        // fit stops on that ray instead of failing or running forever.
        let rows = [
            (0.0, 0.0, 30.0),
            (2.0, 10.0, 30.0),
            (1.0, 3.0, 20.0),
            (5.0, 25.0, 40.0),
        ];
        let f = fit(rows.iter().flat_map(|&r| std::iter::repeat_n(r, 3))).expect("fit");
        assert!(f.a > 100.0 && f.b > 100.0, "{f:?}");
        assert!(f.evaluations < 3000, "{f:?}");
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let rows = (0..200).map(|i| {
            let x = f64::from(i % 7);
            let t = f64::from(20 + i % 50);
            let tx = if x > 0.0 {
                t * f64::from(i % 10 + 1) / 11.0
            } else {
                0.0
            };
            WeightedObservation {
                frequency: x,
                recency: tx,
                t,
                weight: 1.0 + f64::from(i % 3),
            }
        });
        let data = Compressed::new(rows).expect("data");
        crate::testutil::assert_gradient(|p, g| data.log_likelihood(p, g), [0.7, 1.3, 0.9, 2.2]);
    }

    #[test]
    fn invalid_rows_are_reported() {
        let e = fit([(1.0, 5.0, 3.0)]).unwrap_err();
        assert!(matches!(e, FitError::InvalidRow { row: 0, .. }));
        let e = fit([(0.0, 0.0, 3.0), (1.5, 1.0, 3.0)]).unwrap_err();
        assert!(matches!(e, FitError::InvalidRow { row: 1, .. }));
        assert!(matches!(
            fit([(0.0, 0.0, 3.0)]),
            Err(FitError::Degenerate(_))
        ));
        assert!(matches!(fit(std::iter::empty()), Err(FitError::Empty)));
    }
}

#[cfg(test)]
mod stress {
    use super::*;

    /// From random true parameters, periods and sizes, the fit converges
    /// and its likelihood is at least the likelihood of the truth (it is
    /// the maximum). (Run with 3000 trials in release during development:
    /// all converged.)
    #[test]
    fn converges_from_the_default_start_on_varied_data() {
        let mut rng = crate::testutil::Rng::new(1234);
        for _ in 0..60 {
            let truth = BgNbdParams {
                r: 0.1 + 3.0 * rng.uniform(),
                alpha: (10f64).powf(-1.0 + 3.0 * rng.uniform()),
                a: 0.2 + 5.0 * rng.uniform(),
                b: 0.5 + 10.0 * rng.uniform(),
            };
            let tmax = (10f64).powf(1.0 + 2.5 * rng.uniform());
            let n = 200 + rng.below(3000);
            let rows: Vec<(f64, f64, f64)> = (0..n)
                .map(|_| {
                    let t = (tmax * rng.uniform()).ceil();
                    let (x, tx, t) = crate::testutil::simulate_bgnbd(&mut rng, &truth, t);
                    (x, tx.ceil().min(t), t)
                })
                .collect();
            let f = fit(rows.iter().copied())
                .unwrap_or_else(|e| panic!("{e} for {truth:?}, T up to {tmax}, n {n}"));
            let at_truth = total_log_likelihood(&truth, rows.iter().copied());
            assert!(
                f.log_likelihood >= at_truth - 1e-6,
                "{f:?} vs truth {at_truth}"
            );
            // Typically 20-30; a few hundred only when both mixing
            // distributions collapse at once (found once in 3000 trials).
            assert!(f.evaluations < 600, "{f:?}");
        }
    }
}
