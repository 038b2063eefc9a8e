//! Neal's funnel (docs/targets.md §4.4): `v ~ N(0, s^2)` and, given `v`, `x_i ~ N(0, e^v)`
//! independently for the other `dim - 1` coordinates; the point is `(v, x_1, ..)`. Normalised
//! (log Z = 0), with the exact sampler that follows from the definition.

use std::f64::consts::PI;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::Batch;
use crate::error::{Error, Result, check_dim};
use crate::model::target::Target;
use crate::registry::{Registry, Source, parse_config};
use crate::rng::{Rng, fill_normal};

/// Dimension of the benchmark funnel of the FAB and annealed-flow-transport papers.
const DEFAULT_DIM: usize = 10;
/// Standard deviation of `v` in that benchmark.
const DEFAULT_SCALE: f64 = 3.0;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FunnelConfig {
    #[serde(default = "default_dim")]
    dim: usize,
    #[serde(default = "default_scale")]
    scale: f64,
}

fn default_dim() -> usize {
    DEFAULT_DIM
}
fn default_scale() -> f64 {
    DEFAULT_SCALE
}

/// Neal's funnel on R^dim (first coordinate `v`).
pub struct Funnel {
    dim: usize,
    scale: f64,
}

impl Funnel {
    /// The funnel with `dim >= 2` coordinates and `v`'s standard deviation `scale > 0`.
    pub fn new(dim: usize, scale: f64) -> Result<Self> {
        if dim < 2 {
            return Err(Error::Config(format!("funnel: dim must be at least 2, got {dim}")));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::Config(format!("funnel: scale must be positive and finite, got {scale}")));
        }
        Ok(Self { dim, scale })
    }

    /// `log p` at `x`, with the gradient written into `grad` when given.
    fn eval(&self, x: &[f64], grad: Option<&mut [f64]>) -> Result<f64> {
        check_dim("funnel point", x.len(), self.dim)?;
        let (v, rest) = (x[0], &x[1..]);
        let n = rest.len() as f64;
        let half_log_2pi = 0.5 * (2.0 * PI).ln();
        let inv_var = (-v).exp();
        let sq: f64 = rest.iter().map(|a| a * a).sum();
        let s2 = self.scale * self.scale;
        // log N(v; 0, s^2) + sum_i log N(x_i; 0, e^v).
        let lp =
            -0.5 * v * v / s2 - self.scale.ln() - half_log_2pi - 0.5 * n * v - n * half_log_2pi - 0.5 * sq * inv_var;
        if let Some(g) = grad {
            check_dim("funnel gradient", g.len(), self.dim)?;
            g[0] = -v / s2 - 0.5 * n + 0.5 * sq * inv_var;
            g[1..].iter_mut().zip(rest).for_each(|(g, a)| *g = -a * inv_var);
        }
        Ok(lp)
    }
}

impl Target for Funnel {
    fn dim(&self) -> usize {
        self.dim
    }

    fn log_prob(&self, x: &[f64]) -> Result<f64> {
        self.eval(x, None)
    }

    fn has_grad(&self) -> bool {
        true
    }

    fn log_prob_grad(&self, x: &[f64], grad: &mut [f64]) -> Result<f64> {
        self.eval(x, Some(grad))
    }

    fn has_sampler(&self) -> bool {
        true
    }

    fn sample(&self, n: usize, rng: &mut Rng) -> Result<Batch> {
        let mut x = Batch::zeros(self.dim, n);
        fill_normal(rng, x.as_mut_slice());
        for mut col in x.column_iter_mut() {
            let v = self.scale * col[0];
            col[0] = v;
            let sd = (0.5 * v).exp();
            col.iter_mut().skip(1).for_each(|a| *a *= sd);
        }
        Ok(x)
    }

    fn log_z(&self) -> Option<f64> {
        Some(0.0)
    }

    fn observable_names(&self) -> Vec<String> {
        vec!["v".into(), "v2".into()]
    }

    fn observables(&self, x: &[f64], out: &mut [f64]) -> Result<()> {
        check_dim("funnel point", x.len(), self.dim)?;
        out[0] = x[0];
        out[1] = x[0] * x[0];
        Ok(())
    }

    fn known_means(&self) -> Vec<(String, f64)> {
        vec![("v".into(), 0.0), ("v2".into(), self.scale * self.scale)]
    }
}

/// Registers `funnel`.
pub fn register(reg: &mut Registry) -> Result<()> {
    reg.add_target(
        "funnel",
        Source::Builtin,
        "Neal's funnel: v ~ N(0, scale^2), x_i | v ~ N(0, e^v) (keys: dim = 10, scale = 3); log Z = 0",
        Arc::new(|cfg: &Value| {
            let c: FunnelConfig = parse_config("funnel", cfg)?;
            Ok(Box::new(Funnel::new(c.dim, c.scale)?) as Box<dyn Target>)
        }),
    )
}

#[cfg(test)]
#[path = "funnel_tests.rs"]
mod tests;
