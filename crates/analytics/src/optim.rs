//! A small unconstrained minimiser for the maximum-likelihood fits.
//!
//! The models have three or four parameters, all positive; the fits work on
//! their logarithms, so the problem is unconstrained and smooth. BFGS with
//! an Armijo backtracking line search converges in a few dozen gradient
//! evaluations from a neutral start. Non-finite objective values (a step
//! that overflows a gamma function) are treated as `+inf`, which the line
//! search simply backs away from. If BFGS stalls without meeting the
//! gradient tolerance, Nelder–Mead (which needs no gradient and cannot be
//! misled by a poor Hessian estimate) restarts from the best point, and BFGS
//! polishes again.

/// Options of [`minimize`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Converged when the largest absolute gradient component is below this.
    pub gtol: f64,
    /// When no step can decrease the objective any more (its rounding
    /// dominates), a gradient below this still counts as converged.
    pub gtol_stalled: f64,
    /// Maximum BFGS iterations per round.
    pub max_iter: usize,
    /// Largest step (infinity norm) taken in one line search, which keeps
    /// log-parameters from jumping to values where everything overflows.
    pub max_step: f64,
    /// When BFGS stalls with a coordinate beyond this magnitude, the optimum
    /// is taken to be at infinity (a boundary of the model, e.g. a Beta
    /// distribution collapsing to a point) and no restart is attempted.
    pub boundary: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            gtol: 1e-9,
            gtol_stalled: 1e-6,
            max_iter: 500,
            max_step: 4.0,
            boundary: 8.0,
        }
    }
}

/// Result of [`minimize`].
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub x: Vec<f64>,
    pub f: f64,
    /// Largest absolute gradient component at `x`.
    pub grad_max: f64,
    /// Objective evaluations used (each with its gradient).
    pub evaluations: usize,
    /// Whether the gradient tolerance was met.
    pub converged: bool,
}

impl Outcome {
    /// Whether the search ended far out on a ray along which the objective
    /// keeps decreasing ever more slowly (an optimum at infinity).
    pub fn at_boundary(&self, opts: &Options) -> bool {
        !self.converged
            && self.f.is_finite()
            && max_abs(&self.x) > opts.boundary
            && self.grad_max < 1e-3
    }
}

/// Minimises `f`, which returns the value and writes the gradient into its
/// second argument.
pub(crate) fn minimize<F>(mut f: F, x0: &[f64], opts: Options) -> Outcome
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let mut evals = 0usize;
    let mut eval = |x: &[f64], g: &mut [f64]| -> f64 {
        evals += 1;
        let v = f(x, g);
        if v.is_finite() && g.iter().all(|c| c.is_finite()) {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut best = bfgs(&mut eval, x0, opts);
    for _ in 0..3 {
        if best.converged
            || best.grad_max < opts.gtol_stalled
            || !best.f.is_finite()
            || max_abs(&best.x) > opts.boundary
        {
            break;
        }
        let x = nelder_mead(&mut eval, &best.x, 2000);
        let polished = bfgs(&mut eval, &x, opts);
        let improved = polished.f < best.f - 1e-15 * best.f.abs();
        if polished.f <= best.f {
            best = polished;
        }
        if !improved {
            break;
        }
    }
    best.evaluations = evals;
    if !best.converged && best.grad_max < opts.gtol_stalled {
        best.converged = true;
    }
    best
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn bfgs<F>(eval: &mut F, x0: &[f64], opts: Options) -> Outcome
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = eval(&x, &mut g);
    let identity = |h: &mut Vec<f64>| {
        h.iter_mut().for_each(|v| *v = 0.0);
        for i in 0..n {
            h[i * n + i] = 1.0;
        }
    };
    let mut h = vec![0.0; n * n];
    identity(&mut h);
    let mut first = true;
    let mut d = vec![0.0; n];
    let mut xn = vec![0.0; n];
    let mut gn = vec![0.0; n];
    let mut s = vec![0.0; n];
    let mut y = vec![0.0; n];
    let mut hy = vec![0.0; n];
    let mut flat = 0;
    let mut converged = false;
    if !fx.is_finite() {
        return Outcome {
            x,
            f: fx,
            grad_max: f64::INFINITY,
            evaluations: 0,
            converged: false,
        };
    }
    for _ in 0..opts.max_iter {
        if max_abs(&g) < opts.gtol {
            converged = true;
            break;
        }
        for i in 0..n {
            d[i] = -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>();
        }
        let mut slope = dot(&g, &d);
        if slope >= 0.0 || !slope.is_finite() {
            identity(&mut h);
            d.iter_mut().zip(&g).for_each(|(di, gi)| *di = -gi);
            slope = dot(&g, &d);
        }
        // Cap the step length in the infinity norm.
        let dmax = max_abs(&d);
        let mut step = if first { (1.0 / dmax).min(1.0) } else { 1.0 };
        if step * dmax > opts.max_step {
            step = opts.max_step / dmax;
        }
        // Armijo backtracking with quadratic interpolation.
        let mut accepted = false;
        let mut fnew = f64::INFINITY;
        for _ in 0..60 {
            for i in 0..n {
                xn[i] = x[i] + step * d[i];
            }
            fnew = eval(&xn, &mut gn);
            if fnew <= fx + 1e-4 * step * slope {
                accepted = true;
                break;
            }
            // Approximate Wolfe conditions (Hager & Zhang 2005): close to
            // the optimum the decrease falls below the rounding of f, but
            // the gradient still tells a good step; accept it when f has not
            // grown beyond rounding and the directional derivative has
            // shrunk as in a Wolfe step.
            let new_slope = dot(&gn, &d);
            if fnew <= fx + 1e-13 * fx.abs()
                && new_slope >= 0.9 * slope
                && new_slope <= -0.8 * slope
            {
                accepted = true;
                break;
            }
            let next = if fnew.is_finite() {
                // Minimiser of the quadratic through f(0), f'(0), f(step).
                let q = -slope * step * step / (2.0 * (fnew - fx - slope * step));
                q.clamp(0.1 * step, 0.5 * step)
            } else {
                0.25 * step
            };
            step = next;
        }
        if !accepted {
            // No decrease possible along d: at the precision limit.
            if !first {
                identity(&mut h);
                first = true;
                continue;
            }
            break;
        }
        for i in 0..n {
            s[i] = xn[i] - x[i];
            y[i] = gn[i] - g[i];
        }
        let sy = dot(&s, &y);
        if first && sy > 0.0 {
            // Scale the initial inverse Hessian (Nocedal & Wright 6.20).
            let scale = sy / dot(&y, &y);
            identity(&mut h);
            h.iter_mut().for_each(|v| *v *= scale);
        }
        first = false;
        if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() {
            // H+ = (I - rho s y') H (I - rho y s') + rho s s'
            let rho = 1.0 / sy;
            for i in 0..n {
                hy[i] = (0..n).map(|j| h[i * n + j] * y[j]).sum();
            }
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] += -rho * (hy[i] * s[j] + s[i] * hy[j])
                        + (rho * rho * yhy + rho) * s[i] * s[j];
                }
            }
        }
        let change = fx - fnew;
        let gmax_before = max_abs(&g);
        x.copy_from_slice(&xn);
        g.copy_from_slice(&gn);
        fx = fnew;
        // Stalled: neither the value nor the gradient improves any more, or
        // far out on a ray (an optimum at infinity) the value barely moves.
        let scale = fx.abs().max(1e-300);
        let stalled = change <= 1e-15 * scale && max_abs(&g) >= 0.9 * gmax_before;
        let drifting = max_abs(&x) > opts.boundary && change <= 1e-12 * scale;
        if stalled || drifting {
            flat += 1;
            if flat >= 4 {
                break;
            }
        } else {
            flat = 0;
        }
    }
    if max_abs(&g) < opts.gtol {
        converged = true;
    }
    Outcome {
        grad_max: max_abs(&g),
        x,
        f: fx,
        evaluations: 0,
        converged,
    }
}

/// Nelder–Mead with the standard coefficients, started from a simplex of
/// unit steps around `x0` (the parameters are logarithms, so a unit step is
/// a factor e). Returns the best vertex.
fn nelder_mead<F>(eval: &mut F, x0: &[f64], max_evals: usize) -> Vec<f64>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let mut g = vec![0.0; n];
    let mut f = |x: &[f64]| eval(x, &mut g);
    let mut pts: Vec<Vec<f64>> = Vec::with_capacity(n + 1);
    pts.push(x0.to_vec());
    for i in 0..n {
        let mut p = x0.to_vec();
        p[i] += 0.5;
        pts.push(p);
    }
    let mut vals: Vec<f64> = pts.iter().map(|p| f(p)).collect();
    let mut used = n + 1;
    while used < max_evals {
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&a, &b| vals[a].total_cmp(&vals[b]));
        let pts_sorted: Vec<Vec<f64>> = order.iter().map(|&i| pts[i].clone()).collect();
        let vals_sorted: Vec<f64> = order.iter().map(|&i| vals[i]).collect();
        pts = pts_sorted;
        vals = vals_sorted;
        let spread = (vals[n] - vals[0]).abs();
        let size = pts[1..]
            .iter()
            .map(|p| {
                p.iter()
                    .zip(&pts[0])
                    .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()))
            })
            .fold(0.0f64, f64::max);
        if spread <= 1e-14 * vals[0].abs().max(1e-300) && size < 1e-9 {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| pts[..n].iter().map(|p| p[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (pts[n][j] - centroid[j]))
                .collect()
        };
        let xr = along(-1.0);
        let fr = f(&xr);
        used += 1;
        if fr < vals[0] {
            let xe = along(-2.0);
            let fe = f(&xe);
            used += 1;
            if fe < fr {
                pts[n] = xe;
                vals[n] = fe;
            } else {
                pts[n] = xr;
                vals[n] = fr;
            }
        } else if fr < vals[n - 1] {
            pts[n] = xr;
            vals[n] = fr;
        } else {
            let (xc, fc) = if fr < vals[n] {
                let xc = along(-0.5);
                let fc = f(&xc);
                (xc, fc)
            } else {
                let xc = along(0.5);
                let fc = f(&xc);
                (xc, fc)
            };
            used += 1;
            if fc < vals[n].min(fr) {
                pts[n] = xc;
                vals[n] = fc;
            } else {
                // Shrink towards the best vertex.
                for i in 1..=n {
                    let p: Vec<f64> = (0..n)
                        .map(|j| pts[0][j] + 0.5 * (pts[i][j] - pts[0][j]))
                        .collect();
                    vals[i] = f(&p);
                    pts[i] = p;
                }
                used += n;
            }
        }
    }
    let best = (0..=n)
        .min_by(|&a, &b| vals[a].total_cmp(&vals[b]))
        .unwrap_or(0);
    pts.swap(0, best);
    pts.swap_remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rosenbrock's banana, a classic hard valley for quasi-Newton methods.
    fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
        let (a, b) = (x[0], x[1]);
        g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
        g[1] = 200.0 * (b - a * a);
        (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
    }

    #[test]
    fn bfgs_finds_the_rosenbrock_minimum() {
        let out = minimize(rosenbrock, &[-1.2, 1.0], Options::default());
        assert!(out.converged, "{out:?}");
        assert!(
            (out.x[0] - 1.0).abs() < 1e-7 && (out.x[1] - 1.0).abs() < 1e-7,
            "{out:?}"
        );
    }

    #[test]
    fn nelder_mead_alone_gets_close() {
        let mut g = [0.0; 2];
        let mut f = |x: &[f64], gg: &mut [f64]| rosenbrock(x, gg);
        let x = nelder_mead(&mut f, &[-1.2, 1.0], 5000);
        let v = rosenbrock(&x, &mut g);
        assert!(v < 1e-10, "{x:?} {v}");
    }

    #[test]
    fn infinite_regions_are_avoided() {
        // f = x^2 but +inf for x > 3: the line search must back off.
        let f = |x: &[f64], g: &mut [f64]| {
            g[0] = 2.0 * (x[0] - 2.0);
            if x[0] > 3.0 {
                f64::INFINITY
            } else {
                (x[0] - 2.0).powi(2)
            }
        };
        let out = minimize(f, &[-30.0], Options::default());
        assert!(out.converged && (out.x[0] - 2.0).abs() < 1e-9, "{out:?}");
    }
}
