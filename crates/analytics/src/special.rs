//! Special functions: log-gamma, digamma, erfc, the normal distribution and
//! the Gauss hypergeometric function.
//!
//! They are written here rather than pulled from a crate because the models
//! need only a handful of them, each accurate to a few units in the last
//! place over the ranges the models use, and a dependency would cost more
//! compile time than these few hundred lines. The methods are textbook ones:
//!
//! - `ln_gamma`, `digamma`: shift the argument above 12 with the recurrence,
//!   then the Stirling / de Moivre asymptotic series (Bernoulli numbers up to
//!   `B_12`), whose truncation error there is below `1e-16`.
//! - `erfc`: the Maclaurin series of `erf` for `x < 1` (no cancellation in
//!   `1 - erf` there) and the Laplace continued fraction, evaluated with the
//!   modified Lentz method, beyond; relative accuracy about `1e-15` in both
//!   tails, which is what two-sided p-values need.
//! - `norm_ppf`: Abramowitz & Stegun 26.2.23 as a start, refined by Halley
//!   steps on the accurate CDF.
//! - `hyp2f1`: the Gauss series, or its Euler transform when `c - a - b < 0`
//!   (the usual case in BG/NBD), which keeps every series absolutely
//!   convergent with a power-law tail even when `z` is close to 1.

use std::f64::consts::PI;

/// `ln(sqrt(2 pi))`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Natural logarithm of the gamma function for `x > 0` (NaN otherwise,
/// `+inf` at 0).
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    let mut x = x;
    let mut prod = 1.0;
    while x < 12.0 {
        prod *= x;
        x += 1.0;
    }
    // + 1/(12x) - 1/(360x^3) + 1/(1260x^5) - 1/(1680x^7) + 1/(1188x^9) - 691/(360360x^11)
    (x - 0.5) * x.ln() - x + LN_SQRT_2PI + stirling_tail(x) - prod.ln()
}

/// The digamma function `psi(x) = d/dx ln Gamma(x)` for `x > 0`.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut x = x;
    let mut acc = 0.0;
    while x < 12.0 {
        acc -= 1.0 / x;
        x += 1.0;
    }
    // ln x - 1/(2x) - 1/(12x^2) + 1/(120x^4) - 1/(252x^6) + 1/(240x^8) - 1/(132x^10) + 691/(32760x^12)
    acc + x.ln() - 0.5 / x + digamma_tail(x)
}

/// The Stirling series `ln Gamma(x) - [(x - 1/2) ln x - x + ln sqrt(2 pi)]`
/// for `x >= 12`.
fn stirling_tail(x: f64) -> f64 {
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    inv * (1.0 / 12.0
        + inv2
            * (-1.0 / 360.0
                + inv2
                    * (1.0 / 1260.0
                        + inv2
                            * (-1.0 / 1680.0
                                + inv2 * (1.0 / 1188.0 + inv2 * (-691.0 / 360_360.0))))))
}

/// The asymptotic series `psi(x) - [ln x - 1/(2x)]` for `x >= 12`.
fn digamma_tail(x: f64) -> f64 {
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    inv2 * (-1.0 / 12.0
        + inv2
            * (1.0 / 120.0
                + inv2
                    * (-1.0 / 252.0
                        + inv2
                            * (1.0 / 240.0 + inv2 * (-1.0 / 132.0 + inv2 * (691.0 / 32_760.0))))))
}

/// `ln Gamma(z + q) - ln Gamma(z)` for `z > 0`, `q >= 0`, accurate even
/// when `z` is huge (the plain difference of two enormous `ln_gamma`
/// values would lose every digit). For `z >= 12` the Stirling expansions
/// are subtracted term by term:
/// `(z - 1/2) ln(1 + q/z) + q ln(z + q) - q + tail(z + q) - tail(z)`.
pub fn ln_gamma_ratio(z: f64, q: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if z < 12.0 || q < 0.0 {
        return ln_gamma(z + q) - ln_gamma(z);
    }
    (z - 0.5) * (q / z).ln_1p() + q * (z + q).ln() - q + stirling_tail(z + q) - stirling_tail(z)
}

/// `psi(z + q) - psi(z)` for `z > 0`, `q >= 0`, accurate for huge `z`
/// (see [`ln_gamma_ratio`]).
pub fn digamma_diff(z: f64, q: f64) -> f64 {
    if q == 0.0 {
        return 0.0;
    }
    if z < 12.0 || q < 0.0 {
        return digamma(z + q) - digamma(z);
    }
    (q / z).ln_1p() - 0.5 / (z + q) + 0.5 / z + digamma_tail(z + q) - digamma_tail(z)
}

/// `ln(exp(a) + exp(b))` without overflow.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// Complementary error function `erfc(x) = 1 - erf(x)`, accurate in both
/// tails.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x < 1.0 {
        return 1.0 - erf_series(x);
    }
    if x > 27.3 {
        return 0.0;
    }
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))
    // written as Gamma(1/2, x^2)/sqrt(pi) with the even form of the continued
    // fraction of the upper incomplete gamma function (modified Lentz):
    // Gamma(a, y) = e^-y y^a / (y + 1 - a - 1(1-a)/(y + 3 - a - 2(2-a)/(y + 5 - a - ...)))
    let a = 0.5;
    let y = x * x;
    let tiny = 1e-300;
    let mut b = y + 1.0 - a;
    let mut c = 1.0 / tiny;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..10_000 {
        let fi = f64::from(i);
        let an = -fi * (fi - a);
        b += 2.0;
        d = an * d + b;
        if d.abs() < tiny {
            d = tiny;
        }
        c = b + an / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-16 {
            break;
        }
    }
    // e^-y * y^(1/2) * h / sqrt(pi)
    (-y).exp() * x * h / PI.sqrt()
}

/// `erf(x)` by its Maclaurin series; used for `|x| < 1` only.
fn erf_series(x: f64) -> f64 {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let x2 = x * x;
    let mut term = x; // (-1)^n x^(2n+1)/n!
    let mut sum = x;
    let mut n = 0.0;
    loop {
        n += 1.0;
        term *= -x2 / n;
        let add = term / (2.0 * n + 1.0);
        sum += add;
        if add.abs() <= 1e-17 * sum.abs() {
            break;
        }
    }
    sum * 2.0 / PI.sqrt()
}

/// Error function.
pub fn erf(x: f64) -> f64 {
    if x.abs() < 1.0 {
        erf_series(x)
    } else {
        1.0 - erfc(x)
    }
}

/// Standard normal cumulative distribution function.
pub fn norm_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal survival function `1 - norm_cdf(x)`, accurate in the upper
/// tail.
pub fn norm_sf(x: f64) -> f64 {
    0.5 * erfc(x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
pub fn norm_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * PI).sqrt()
}

/// Standard normal quantile (inverse CDF) for `0 < p < 1`; `-inf`/`+inf` at
/// 0 and 1, NaN outside.
pub fn norm_ppf(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    if p > 0.5 {
        // Work in the upper tail with the survival function so that p close
        // to 1 keeps the precision 1 - p has.
        return -lower_ppf(1.0 - p);
    }
    lower_ppf(p)
}

/// Quantile for a lower-tail probability `q < 0.5`.
fn lower_ppf(q: f64) -> f64 {
    // Abramowitz & Stegun 26.2.23, |error| < 4.5e-4.
    let t = (-2.0 * q.ln()).sqrt();
    let mut x = -(t
        - (2.515_517 + 0.802_853 * t + 0.010_328 * t * t)
            / (1.0 + 1.432_788 * t + 0.189_269 * t * t + 0.001_308 * t * t * t));
    // Halley iterations on F(x) = cdf(x) - q (cubic convergence).
    for _ in 0..4 {
        let e = norm_cdf(x) - q;
        let pdf = norm_pdf(x);
        if pdf == 0.0 {
            break;
        }
        let u = e / pdf;
        let step = u / (1.0 + 0.5 * x * u);
        x -= step;
        if step.abs() <= 1e-16 * x.abs().max(1e-300) {
            break;
        }
    }
    x
}

/// Gauss hypergeometric function `2F1(a, b; c; z)` for `0 <= z < 1` and
/// `c > 0`, with `a, b, c` real. Returns NaN when the series does not
/// converge within its iteration budget.
///
/// When `c - a - b < 0` the Euler transform
/// `2F1(a,b;c;z) = (1-z)^(c-a-b) 2F1(c-a, c-b; c; z)` is used: the
/// transformed series has terms decaying like `n^(a+b-c-1) z^n`, i.e. it
/// converges even at `z = 1`, while the direct one grows before it decays.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    ln_hyp2f1(a, b, c, z).exp()
}

/// Natural logarithm of [`hyp2f1`] (the function is positive for the
/// positive parameters BG/NBD uses).
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    if !(0.0..1.0).contains(&z) || c <= 0.0 {
        return f64::NAN;
    }
    if z == 0.0 {
        return 0.0;
    }
    let s = c - a - b;
    if s < 0.0 {
        let inner = series_2f1(c - a, c - b, c, z);
        inner.ln() + s * (-z).ln_1p()
    } else {
        series_2f1(a, b, c, z).ln()
    }
}

/// Plain Gauss series, summed until the terms no longer change the sum.
fn series_2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 0.0;
    // The terms are eventually monotone in magnitude (ratio -> z < 1), so a
    // term below 1e-17 of the sum, once the ratio is below 1, ends the sum.
    for _ in 0..2_000_000 {
        let ratio = (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        n += 1.0;
        if term == 0.0 {
            return sum;
        }
        if ratio.abs() < 1.0 && (term.abs() <= 1e-17 * sum.abs()) {
            // Bound the remaining tail by a geometric series with ratio
            // max(|ratio|, z): the ratios tend to z from below in both
            // branches of `ln_hyp2f1`.
            let q = ratio.abs().max(z);
            let tail = term.abs() * q / (1.0 - q);
            if tail <= 1e-16 * sum.abs() {
                return sum;
            }
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(a: f64, b: f64) -> f64 {
        ((a - b) / b).abs()
    }

    // Reference values from mpmath at 30 digits (mp.loggamma, mp.digamma,
    // mp.erfc, mp.hyp2f1), an implementation independent of this one.
    #[test]
    fn ln_gamma_matches_mpmath() {
        let cases = [
            (0.242_592_928_279_822, 1.319_816_296_661_300_2),
            (1.0, 0.0),
            (2.0, 0.0),
            (0.5, 0.572_364_942_924_700_1),
            (3.7, 1.428_072_326_665_387_9),
            (10.0, 12.801_827_480_081_469),
            (123.456, 469.605_547_129_929_47),
            (1e-8, 18.420_680_738_180_21),
        ];
        for (x, want) in cases {
            let got = ln_gamma(x);
            assert!(
                (got - want).abs() <= 4e-15 * f64::max(want.abs(), 1.0),
                "ln_gamma({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn digamma_matches_mpmath() {
        let cases = [
            (1.0, -0.577_215_664_901_532_9),
            (0.5, -1.963_510_026_021_423_5),
            (0.242_592_928_279_822, -4.358_490_549_409_987),
            (7.25, 1.910_453_526_883_736),
            (250.0, 5.519_459_584_531_046),
        ];
        for (x, want) in cases {
            let got = digamma(x);
            assert!(
                (got - want).abs() <= 4e-15 * f64::max(want.abs(), 1.0),
                "digamma({x}) = {got}, want {want}"
            );
        }
    }

    #[test]
    fn gamma_ratios_match_mpmath() {
        // (z, q, lnG(z+q) - lnG(z), psi(z+q) - psi(z)) from mpmath.
        let cases = [
            (1e15, 0.7, 24.177_143_476_437_48, 7.000_000_000_000_001e-16),
            (50.0, 3.3, 12.984_196_331_560_922, 0.064_536_462_206_426_58),
            (5.0, 2.0, 3.401_197_381_662_155_4, 0.366_666_666_666_666_7),
            (12.5, 1e6, 12_815_658.528_753_95, 11.330_326_906_617_404),
            (3e8, 250.0, 4_879.823_361_905_09, 8.333_329_875_001_917e-7),
        ];
        for (z, q, lg, dg) in cases {
            assert!(
                rel(ln_gamma_ratio(z, q), lg) < 1e-14,
                "ln ratio {z} {q}: {}",
                ln_gamma_ratio(z, q)
            );
            assert!(
                rel(digamma_diff(z, q), dg) < 1e-13,
                "psi diff {z} {q}: {}",
                digamma_diff(z, q)
            );
        }
    }

    #[test]
    fn erfc_matches_mpmath_in_both_tails() {
        let cases = [
            (0.0, 1.0),
            (0.3, 0.671_373_240_540_872_6),
            (0.999, 0.157_714_729_793_503_06),
            (1.0, 0.157_299_207_050_285_13),
            (1.2, 0.089_686_021_770_364_62),
            (1.893_204_598_376_157, 0.007_419_696_737_847_594),
            (2.0, 0.004_677_734_981_047_266),
            (3.0, 2.209_049_699_858_544e-5),
            (4.5, 1.966_160_441_542_887_5e-10),
            (6.0, 2.151_973_671_249_891_3e-17),
            (10.0, 2.088_487_583_762_545e-45),
            (-1.5, 1.966_105_146_475_310_7),
        ];
        for (x, want) in cases {
            let got = erfc(x);
            assert!(rel(got, want) < 1e-14, "erfc({x}) = {got:e}, want {want:e}");
        }
    }

    #[test]
    fn normal_quantile_inverts_the_cdf() {
        for &p in &[1e-12, 1e-6, 0.0001, 0.025, 0.2, 0.5, 0.8, 0.975, 0.999_999] {
            let x = norm_ppf(p);
            let back = norm_cdf(x);
            assert!(rel(back, p) < 1e-13, "p={p} x={x} back={back}");
        }
        // mpmath: sqrt(2) * erfinv(0.95)
        assert!((norm_ppf(0.975) - 1.959_963_984_540_054_2).abs() < 2e-15);
        assert_eq!(norm_ppf(0.5), 0.0);
    }

    #[test]
    fn hyp2f1_matches_mpmath() {
        let cases = [
            // (a, b, c, z, mpmath)
            (
                2.242_592_928,
                4.425_752_382,
                5.218_638_349,
                0.476_861,
                3.330_035_845_899_032_2,
            ),
            (
                0.242_592_928,
                2.425_752_382,
                2.218_638_349,
                0.9,
                1.945_651_735_961_061,
            ),
            (1.5, 2.5, 6.0, 0.99, 3.001_299_816_903_512_4),
            (10.2, 12.4, 3.2, 0.3, 27_820.111_905_321_25),
            (30.24, 32.42, 32.21, 0.95, 4.081_675_648_680_09e39),
        ];
        for (a, b, c, z, want) in cases {
            let got = hyp2f1(a, b, c, z);
            assert!(
                rel(got, want) < 1e-12,
                "2F1({a},{b};{c};{z}) = {got}, want {want}"
            );
        }
    }
}
