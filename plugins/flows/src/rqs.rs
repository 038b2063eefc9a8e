//! The monotone rational-quadratic spline of Durkan et al. (2019) on `[-B, B]`, identity
//! outside, with the partial derivatives its layer's backward pass needs.
//!
//! `K` bins. From `3K - 1` unconstrained numbers: widths and heights are
//! `2B (m + (1 - K m) softmax(.))` (minimum bin size `2Bm`), interior knot derivatives are
//! `m_d + (1 - m_d) softplus(.) / ln 2` (so 0 gives 1), the two boundary derivatives are 1 to
//! match the identity outside. All zeros give equal bins and unit derivatives: the identity.
//!
//! In bin `k` with `xi = (x - x_k) / w`, `s = h / w`, `t = xi (1 - xi)`,
//! `D = s + (d_k + d_k+1 - 2s) t`:
//! `f(x) = y_k + h (s xi^2 + d_k t) / D` and
//! `f'(x) = s^2 (d_k+1 xi^2 + 2 s t + d_k (1 - xi)^2) / D^2`.
//! The inverse is the root in `[0, 1]` of the quadratic `a xi^2 + b xi + c = 0`, taken in the
//! form `xi = 2c / (-b - sqrt(b^2 - 4ac))` that does not cancel.

/// Smallest bin width and height, as a fraction of `2B`.
const MIN_BIN: f64 = 1e-3;
/// Smallest interior derivative.
const MIN_DERIVATIVE: f64 = 1e-3;

/// Knot positions and derivatives of one spline (`K + 1` each) and the softmax weights behind
/// them (kept for the backward step).
#[derive(Clone, Debug, Default)]
pub struct Knots {
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub ds: Vec<f64>,
    pw: Vec<f64>,
    ph: Vec<f64>,
}

/// Indices of the local variables in [`Local`]'s gradients.
pub const X: usize = 0;
const XK: usize = 1;
const XK1: usize = 2;
const YK: usize = 3;
const YK1: usize = 4;
const DK: usize = 5;
const DK1: usize = 6;

/// Value, log-derivative and their gradients with respect to `(x, x_k, x_k+1, y_k, y_k+1, d_k,
/// d_k+1)` at one point; `bin` is `None` outside `[-B, B]` (identity, all knot gradients 0).
#[derive(Clone, Copy, Debug)]
pub struct Local {
    pub f: f64,
    pub log_df: f64,
    pub grad_f: [f64; 7],
    pub grad_log_df: [f64; 7],
    pub bin: Option<usize>,
}

fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 { 1.0 / (1.0 + (-v).exp()) } else { v.exp() / (1.0 + v.exp()) }
}

fn softmax_into(raw: &[f64], out: &mut Vec<f64>) {
    let m = raw.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    out.clear();
    out.extend(raw.iter().map(|v| (v - m).exp()));
    let s: f64 = out.iter().sum();
    out.iter_mut().for_each(|v| *v /= s);
}

/// Cumulative knots `-B, ..., B` from softmax weights `p`.
fn cumulate(p: &[f64], bound: f64, out: &mut Vec<f64>) {
    let k = p.len();
    let scale = 2.0 * bound * (1.0 - k as f64 * MIN_BIN);
    out.clear();
    out.push(-bound);
    let mut acc = -bound;
    for &pi in &p[..k - 1] {
        acc += 2.0 * bound * MIN_BIN + scale * pi;
        out.push(acc);
    }
    out.push(bound);
}

impl Knots {
    /// Knots from the `3K - 1` unconstrained numbers `[widths K, heights K, derivatives K-1]`.
    pub fn set(&mut self, raw: &[f64], bins: usize, bound: f64) {
        softmax_into(&raw[..bins], &mut self.pw);
        softmax_into(&raw[bins..2 * bins], &mut self.ph);
        cumulate(&self.pw, bound, &mut self.xs);
        cumulate(&self.ph, bound, &mut self.ys);
        self.ds.clear();
        self.ds.push(1.0);
        let scale = (1.0 - MIN_DERIVATIVE) / std::f64::consts::LN_2;
        self.ds.extend(raw[2 * bins..].iter().map(|&v| MIN_DERIVATIVE + scale * softplus(v)));
        self.ds.push(1.0);
    }

    fn bound(&self) -> f64 {
        self.xs[self.xs.len() - 1]
    }

    /// Bin of `v` among `knots` (`v` inside the range).
    fn bin(knots: &[f64], v: f64) -> usize {
        let k = knots.len() - 1;
        knots[1..k].iter().take_while(|&&q| q <= v).count()
    }

    /// `f`, `log f'` and their gradients at `x`.
    pub fn eval(&self, x: f64) -> Local {
        let b = self.bound();
        if !(-b..=b).contains(&x) {
            let mut grad_f = [0.0; 7];
            grad_f[X] = 1.0;
            return Local { f: x, log_df: 0.0, grad_f, grad_log_df: [0.0; 7], bin: None };
        }
        let k = Self::bin(&self.xs, x);
        let (x0, x1, y0, y1, d0, d1) =
            (self.xs[k], self.xs[k + 1], self.ys[k], self.ys[k + 1], self.ds[k], self.ds[k + 1]);
        let (w, h) = (x1 - x0, y1 - y0);
        let s = h / w;
        let xi = (x - x0) / w;
        let t = xi * (1.0 - xi);
        let delta = d0 + d1 - 2.0 * s;
        let num = s * xi * xi + d0 * t;
        let den = s + delta * t;
        let f = y0 + h * num / den;
        let m = d1 * xi * xi + 2.0 * s * t + d0 * (1.0 - xi) * (1.0 - xi);
        let log_df = 2.0 * s.ln() + m.ln() - 2.0 * den.ln();

        // Partials in (xi, s, h, d0, d1, y0), h and s taken as independent here.
        let den2 = den * den;
        let (num_xi, den_xi) = (2.0 * s * xi + d0 * (1.0 - 2.0 * xi), delta * (1.0 - 2.0 * xi));
        let den_s = 1.0 - 2.0 * t;
        let f_p = [
            h * (num_xi * den - num * den_xi) / den2,
            h * (xi * xi * den - num * den_s) / den2,
            num / den,
            h * t * (den - num) / den2,
            -h * num * t / den2,
            1.0,
        ];
        let m_xi = 2.0 * d1 * xi + 2.0 * s * (1.0 - 2.0 * xi) - 2.0 * d0 * (1.0 - xi);
        let l_p = [
            m_xi / m - 2.0 * den_xi / den,
            2.0 / s + 2.0 * t / m - 2.0 * den_s / den,
            0.0,
            (1.0 - xi) * (1.0 - xi) / m - 2.0 * t / den,
            xi * xi / m - 2.0 * t / den,
            0.0,
        ];
        let chain = |g: [f64; 6]| {
            let [g_xi, g_s, g_h, g_d0, g_d1, g_y0] = g;
            // xi = (x - x0) / w, s = h / w, w = x1 - x0, h = y1 - y0.
            let g_w = -(g_xi * xi + g_s * s) / w;
            let g_x0 = -g_xi / w;
            let g_hh = g_h + g_s / w;
            let mut out = [0.0; 7];
            out[X] = g_xi / w;
            out[XK] = g_x0 - g_w;
            out[XK1] = g_w;
            out[YK] = g_y0 - g_hh;
            out[YK1] = g_hh;
            out[DK] = g_d0;
            out[DK1] = g_d1;
            out
        };
        Local { f, log_df, grad_f: chain(f_p), grad_log_df: chain(l_p), bin: Some(k) }
    }

    /// `f^-1(y)`.
    pub fn invert(&self, y: f64) -> f64 {
        let b = self.bound();
        if !(-b..=b).contains(&y) {
            return y;
        }
        let k = Self::bin(&self.ys, y);
        let (x0, x1, y0, y1, d0, d1) =
            (self.xs[k], self.xs[k + 1], self.ys[k], self.ys[k + 1], self.ds[k], self.ds[k + 1]);
        let (w, h) = (x1 - x0, y1 - y0);
        let s = h / w;
        let delta = d0 + d1 - 2.0 * s;
        let dy = y - y0;
        let a = h * (s - d0) + dy * delta;
        let bq = h * d0 - dy * delta;
        let c = -s * dy;
        let disc = (bq * bq - 4.0 * a * c).max(0.0);
        let xi = 2.0 * c / (-bq - disc.sqrt());
        x0 + xi.clamp(0.0, 1.0) * w
    }

    /// Adds into `g_raw` (length `3K - 1`) the cotangent of the unconstrained numbers given the
    /// cotangent `g` of one [`Local`]'s knot variables in bin `bin`.
    pub fn backward(&self, raw: &[f64], bin: usize, g: &[f64; 7], g_raw: &mut [f64]) {
        let bins = self.pw.len();
        let bound = self.bound();
        // Knot i (1..K-1) is -B + sum_{j<i} (2Bm + scale p_j); knots 0 and K are fixed.
        let scale = 2.0 * bound * (1.0 - bins as f64 * MIN_BIN);
        let knot_back = |p: &[f64], gk: f64, gk1: f64, out: &mut [f64]| {
            // Cotangent of p_j: the sum over the moving knots i > j among {bin, bin + 1}.
            let moving = |i: usize, gi: f64| if i >= 1 && i < bins { (i, gi) } else { (0, 0.0) };
            let ((i0, g0), (i1, g1)) = (moving(bin, gk), moving(bin + 1, gk1));
            let g_p = |j: usize| scale * (if j < i0 { g0 } else { 0.0 } + if j < i1 { g1 } else { 0.0 });
            let dot: f64 = p.iter().enumerate().map(|(j, pj)| pj * g_p(j)).sum();
            out.iter_mut().zip(p).enumerate().for_each(|(j, (o, pj))| *o += pj * (g_p(j) - dot));
        };
        knot_back(&self.pw, g[XK], g[XK1], &mut g_raw[..bins]);
        knot_back(&self.ph, g[YK], g[YK1], &mut g_raw[bins..2 * bins]);
        let scale_d = (1.0 - MIN_DERIVATIVE) / std::f64::consts::LN_2;
        for (i, gi) in [(bin, g[DK]), (bin + 1, g[DK1])] {
            if i >= 1 && i < bins {
                g_raw[2 * bins + i - 1] += gi * scale_d * sigmoid(raw[2 * bins + i - 1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::rng;
    use bootflow_core::testing::{fd_gradient, rel_error};

    fn random_knots(bins: usize, seed: u64) -> (Vec<f64>, Knots) {
        let mut r = rng::stream(seed, 0);
        let mut raw = vec![0.0; 3 * bins - 1];
        rng::fill_normal(&mut r, &mut raw);
        let mut k = Knots::default();
        k.set(&raw, bins, 3.0);
        (raw, k)
    }

    #[test]
    fn monotone_continuous_and_invertible() {
        let (_, k) = random_knots(6, 1);
        let mut prev = f64::NEG_INFINITY;
        for i in 0..=2000 {
            let x = -4.0 + 8.0 * i as f64 / 2000.0;
            let l = k.eval(x);
            assert!(l.f > prev, "not increasing at {x}");
            prev = l.f;
            assert!((k.invert(l.f) - x).abs() < 1e-12, "round trip at {x}");
        }
        // Continuous at the knots: both sides agree.
        for &q in &k.xs[1..6] {
            let (a, b) = (k.eval(q - 1e-12).f, k.eval(q).f);
            assert!((a - b).abs() < 1e-9, "jump at knot {q}");
        }
    }

    #[test]
    fn zeros_give_the_identity() {
        let mut k = Knots::default();
        k.set(&[0.0; 11], 4, 2.0);
        for x in [-2.5, -1.3, 0.0, 0.4, 1.99, 3.0] {
            let l = k.eval(x);
            assert!((l.f - x).abs() < 1e-14 && l.log_df.abs() < 1e-14, "{x}: {l:?}");
        }
    }

    /// Gradients of f and log f' with respect to x and to every unconstrained number.
    #[test]
    fn gradients_match_finite_differences() {
        let bins = 5;
        let (raw, k) = random_knots(bins, 2);
        for x in [-2.7, -0.9, 0.05, 1.3, 2.95] {
            let l = k.eval(x);
            let bin = l.bin.unwrap();
            for (which, grad) in [(0, &l.grad_f), (1, &l.grad_log_df)] {
                let val = |kk: &Knots, xx: f64| {
                    let e = kk.eval(xx);
                    if which == 0 { e.f } else { e.log_df }
                };
                let fd_x = fd_gradient(&mut |v| val(&k, v[0]), &[x], &[0], 1e-6);
                assert!(rel_error(&[grad[X]], &fd_x) < 1e-7, "x at {x}");
                let mut g_raw = vec![0.0; raw.len()];
                let mut unit = [0.0; 7];
                unit.copy_from_slice(grad);
                k.backward(&raw, bin, &unit, &mut g_raw);
                let idx: Vec<usize> = (0..raw.len()).collect();
                let fd = fd_gradient(
                    &mut |p| {
                        let mut kk = Knots::default();
                        kk.set(p, bins, 3.0);
                        val(&kk, x)
                    },
                    &raw,
                    &idx,
                    1e-6,
                );
                assert!(rel_error(&g_raw, &fd) < 1e-6, "raw at {x} ({which})");
            }
        }
    }
}
