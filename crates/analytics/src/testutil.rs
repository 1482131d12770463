//! Deterministic random numbers and model simulators for unit tests.

use crate::bgnbd::BgNbdParams;

/// SplitMix64: tiny, fast, good enough for simulations in tests.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    pub(crate) fn below(&mut self, n: u32) -> u32 {
        (self.next_u64() % u64::from(n)) as u32
    }

    pub(crate) fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    pub(crate) fn exponential(&mut self, rate: f64) -> f64 {
        -self.uniform().ln() / rate
    }

    /// Gamma(shape, scale 1) by Marsaglia & Tsang.
    pub(crate) fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    pub(crate) fn beta(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        x / (x + y)
    }
}

/// One BG/NBD customer observed for `t` periods: `(x, t_x, T)`.
pub(crate) fn simulate_bgnbd(rng: &mut Rng, p: &BgNbdParams, t: f64) -> (f64, f64, f64) {
    let lambda = rng.gamma(p.r) / p.alpha;
    let drop = rng.beta(p.a, p.b);
    let (mut now, mut x, mut tx) = (0.0, 0.0, 0.0);
    loop {
        now += rng.exponential(lambda);
        if now > t {
            break;
        }
        x += 1.0;
        tx = now;
        if rng.uniform() < drop {
            break;
        }
    }
    (x, tx, t)
}

/// Asserts that an analytic gradient matches central finite differences
/// (relative step 1e-6, tolerance 1e-5 relative). `f(p, Some(g))` returns
/// the value and fills the gradient; `f(p, None)` returns the value only.
pub fn assert_gradient<const N: usize>(
    f: impl Fn([f64; N], Option<&mut [f64; N]>) -> f64,
    p: [f64; N],
) {
    let mut g = [0.0; N];
    f(p, Some(&mut g));
    for i in 0..N {
        let h = 1e-6 * p[i];
        let (mut up, mut dn) = (p, p);
        up[i] += h;
        dn[i] -= h;
        let fd = (f(up, None) - f(dn, None)) / (2.0 * h);
        assert!(
            (fd - g[i]).abs() < 1e-5 * fd.abs().max(1.0),
            "param {i}: {fd} vs {}",
            g[i]
        );
    }
}
