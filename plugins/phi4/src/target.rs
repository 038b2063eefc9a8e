//! The phi^4 target `log p~(phi) = -S(phi)` with its observables.

use bootflow_core::check_dim;
use bootflow_core::parse_config;
use bootflow_core::{Error, Result, Target};
use serde::Deserialize;
use serde_json::Value;

use crate::action::{Couplings, Normalisation, action, action_grad, bond_sum};
use crate::free_field;

/// Names of the observables, in the order [`Target::observables`] writes them.
pub const OBSERVABLES: [&str; 5] = ["M", "abs_M", "chi2", "E", "phi2"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Phi4Config {
    #[serde(rename = "L", default = "default_l")]
    l: usize,
    #[serde(default = "default_m2")]
    m2: f64,
    #[serde(default = "default_lambda")]
    lambda: f64,
    #[serde(default)]
    normalisation: Normalisation,
}

fn default_l() -> usize {
    8
}
fn default_m2() -> f64 {
    -4.0
}
fn default_lambda() -> f64 {
    8.0
}

/// Lattice phi^4 on an L x L periodic lattice (V = L^2 coordinates, row-major).
pub struct Phi4 {
    l: usize,
    m2: f64,
    lambda: f64,
    norm: Normalisation,
    couplings: Couplings,
}

impl Phi4 {
    /// Checks `L >= 2`, finite couplings, `lambda >= 0`, and `m2 > 0` when `lambda = 0` (otherwise
    /// the density is not normalisable).
    pub fn new(l: usize, m2: f64, lambda: f64, norm: Normalisation) -> Result<Self> {
        if l < 2 {
            return Err(Error::Config(format!("phi4: L = {l} must be at least 2")));
        }
        if !m2.is_finite() || !lambda.is_finite() || lambda < 0.0 {
            return Err(Error::Config(format!(
                "phi4: need finite m2 and lambda >= 0 (got m2 = {m2}, lambda = {lambda})"
            )));
        }
        if lambda == 0.0 && m2 <= 0.0 {
            return Err(Error::Config(format!("phi4: the free field (lambda = 0) needs m2 > 0 (got {m2})")));
        }
        Ok(Self { l, m2, lambda, norm, couplings: Couplings::new(norm, m2, lambda) })
    }

    /// Builds the target from `L`, `m2`, `lambda`, `normalisation` (defaults 8, -4, 8, tutorial).
    pub fn from_config(cfg: &Value) -> Result<Self> {
        let c: Phi4Config = parse_config("phi4", cfg)?;
        Self::new(c.l, c.m2, c.lambda, c.normalisation)
    }

    /// Lattice extent L.
    pub fn extent(&self) -> usize {
        self.l
    }

    /// `(m2, lambda, normalisation)`.
    pub fn parameters(&self) -> (f64, f64, Normalisation) {
        (self.m2, self.lambda, self.norm)
    }

    fn volume(&self) -> usize {
        self.l * self.l
    }

    fn is_free(&self) -> bool {
        self.lambda == 0.0
    }
}

impl Target for Phi4 {
    fn dim(&self) -> usize {
        self.volume()
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        check_dim("phi4 configuration", x.len(), self.volume())?;
        Ok(-action(&self.couplings, self.l, x))
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        check_dim("phi4 configuration", x.len(), self.volume())?;
        check_dim("phi4 gradient", grad.len(), self.volume())?;
        let s = action_grad(&self.couplings, self.l, x, grad);
        grad.iter_mut().for_each(|g| *g = -*g);
        Ok(-s)
    }

    /// Known for the free field only.
    fn log_z(&self) -> Option<f64> {
        self.is_free().then(|| free_field::log_z(&self.couplings, self.l))
    }

    fn observable_names(&self) -> Vec<String> {
        OBSERVABLES.iter().map(|s| s.to_string()).collect()
    }

    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        check_dim("phi4 configuration", x.len(), self.volume())?;
        check_dim("phi4 observables", out.len(), OBSERVABLES.len())?;
        let v = self.volume() as f64;
        let m: f64 = x.iter().sum();
        out[0] = m;
        out[1] = m.abs() / v;
        out[2] = m * m / v;
        out[3] = bond_sum(self.l, x) / (2.0 * v);
        out[4] = x.iter().map(|p| p * p).sum::<f64>() / v;
        Ok(())
    }

    /// Exact for the free field only.
    fn known_means(&self) -> Vec<(String, f64)> {
        if self.is_free() { free_field::known_means(&self.couplings, self.l) } else { Vec::new() }
    }
}
