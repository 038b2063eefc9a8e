//! The one-dimensional double well `log f(x) = -(a x + b x^2 + c x^4)` with a = -0.5, b = -6,
//! c = 1, and an exact rejection sampler for its normalised density.

use rand::Rng as _;

use bootflow_core::Rng;

pub const A: f64 = -0.5;
pub const B: f64 = -6.0;
pub const C: f64 = 1.0;

/// `integral exp(-(a x + b x^2 + c x^4)) dx`, by high-precision quadrature (tests recompute it).
pub const WELL_Z: f64 = 11784.509265127827;

/// `log f(x)`; `-inf` where `x^4` overflows (there `b x^2` may overflow too, and `inf - inf` is
/// NaN).
pub fn log_f(x: f64) -> f64 {
    let x2 = x * x;
    let x4 = x2 * x2;
    if x4.is_infinite() {
        return f64::NEG_INFINITY;
    }
    -(A * x + B * x2 + C * x4)
}

/// `d log f / dx`; 0 where `x^3` overflows (there `log f` is `-inf` and `inf - inf` is NaN).
pub fn dlog_f(x: f64) -> f64 {
    let x3 = x * x * x;
    if x3.is_infinite() {
        return 0.0;
    }
    -(A + 2.0 * B * x + 4.0 * C * x3)
}

/// Envelope `0.2 N(-1.7, 0.5^2) + 0.8 N(1.7, 0.5^2)`: the wells sit near -+1.73 with widths
/// about 0.2, and the deeper well (+) holds about 85 % of the mass.
const MODES: [f64; 2] = [-1.7, 1.7];
const WEIGHTS: [f64; 2] = [0.2, 0.8];
const SCALE: f64 = 0.5;

/// Log density of the envelope.
pub fn log_envelope(x: f64) -> f64 {
    let norm = SCALE * (2.0 * std::f64::consts::PI).sqrt();
    let d = |m: f64| (-0.5 * ((x - m) / SCALE).powi(2)).exp();
    (WEIGHTS[0] * d(MODES[0]) + WEIGHTS[1] * d(MODES[1])).ln() - norm.ln()
}

/// Rejection sampler: accepts `x ~ envelope` with probability `f(x) / (M envelope(x))`.
#[derive(Clone, Debug)]
pub struct WellSampler {
    /// `log M >= max_x log f(x) - log envelope(x)`.
    log_bound: f64,
}

impl WellSampler {
    /// Finds the bound by a scan of [-6, 6] with step 1e-3. The log ratio is smooth, so the scan
    /// misses its maximum by at most h^2/8 * max|r''| (about 1e-4 here); a margin of 1e-3 covers
    /// that, and outside [-6, 6] the ratio is smaller by e^-800. The acceptance rate is about 0.39.
    pub fn new() -> Self {
        let log_bound = (-6000..=6000)
            .map(|i| i as f64 * 1e-3)
            .map(|x| log_f(x) - log_envelope(x))
            .fold(f64::NEG_INFINITY, f64::max);
        Self { log_bound: log_bound + 1e-3 }
    }

    /// `log M`.
    pub fn log_bound(&self) -> f64 {
        self.log_bound
    }

    /// One exact draw from `f / Z`.
    pub fn draw(&self, rng: &mut Rng) -> f64 {
        loop {
            let mode = if rng.random::<f64>() < WEIGHTS[0] { MODES[0] } else { MODES[1] };
            let z: f64 = rng.sample(rand_distr::StandardNormal);
            let x = mode + SCALE * z;
            let u: f64 = rng.random();
            if u.ln() < log_f(x) - log_envelope(x) - self.log_bound {
                return x;
            }
        }
    }
}

impl Default for WellSampler {
    fn default() -> Self {
        Self::new()
    }
}
