//! Adam / AdamW with gradient-norm clipping (argmin has no stochastic optimiser).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_dim};

/// Adam hyper-parameters.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled weight decay (AdamW); 0 gives plain Adam.
    pub weight_decay: f64,
    /// Rescale the gradient to at most this Euclidean norm; none when absent.
    pub clip_norm: Option<f64>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, clip_norm: None }
    }
}

/// Adam state: moments and step count (serialisable for exact resume).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Adam {
    pub config: AdamConfig,
    m: Vec<f64>,
    v: Vec<f64>,
    t: u64,
}

impl Adam {
    pub fn new(config: AdamConfig, n_params: usize) -> Result<Self> {
        let c = &config;
        let valid = c.lr > 0.0
            && (0.0..1.0).contains(&c.beta1)
            && (0.0..1.0).contains(&c.beta2)
            && c.eps > 0.0
            && c.weight_decay >= 0.0
            && c.clip_norm.is_none_or(|n| n > 0.0);
        if !valid {
            return Err(Error::Config(format!("optimiser settings out of range: {c:?}")));
        }
        Ok(Self { config, m: vec![0.0; n_params], v: vec![0.0; n_params], t: 0 })
    }

    /// Number of updates applied.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// Applies one update to `params` and returns the gradient norm before clipping. A gradient
    /// with a non-finite entry is refused (error) and changes nothing.
    pub fn step(&mut self, params: &mut [f64], grad: &[f64]) -> Result<f64> {
        check_dim("gradient length", grad.len(), params.len())?;
        check_dim("optimiser state length", self.m.len(), params.len())?;
        let norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
        if !norm.is_finite() {
            return Err(Error::NonFinite("gradient".into()));
        }
        let scale = match self.config.clip_norm {
            Some(c) if norm > c => c / norm,
            _ => 1.0,
        };
        self.t += 1;
        let c = &self.config;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        // Zipped slices (no bounds checks) let the compiler vectorise the divisions and roots.
        for (((p, g), m), v) in params.iter_mut().zip(grad).zip(&mut self.m).zip(&mut self.v) {
            let g = g * scale;
            *m = c.beta1 * *m + (1.0 - c.beta1) * g;
            *v = c.beta2 * *v + (1.0 - c.beta2) * g * g;
            let update = (*m / bc1) / ((*v / bc2).sqrt() + c.eps);
            *p -= c.lr * (update + c.weight_decay * *p);
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_a_quadratic() {
        let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() }, 2).unwrap();
        let mut p = vec![3.0, -2.0];
        for _ in 0..500 {
            let g = vec![2.0 * (p[0] - 1.0), 2.0 * (p[1] + 0.5)];
            opt.step(&mut p, &g).unwrap();
        }
        assert!((p[0] - 1.0).abs() < 1e-3 && (p[1] + 0.5).abs() < 1e-3, "{p:?}");
    }

    #[test]
    fn first_step_moves_by_lr_and_clipping_reports_raw_norm() {
        let mut opt = Adam::new(AdamConfig { lr: 0.01, clip_norm: Some(1.0), ..Default::default() }, 2).unwrap();
        let mut p = vec![0.0, 0.0];
        let norm = opt.step(&mut p, &[30.0, 40.0]).unwrap();
        assert_eq!(norm, 50.0);
        // Adam's first step is lr * sign(g) whatever the scale.
        assert!((p[0] + 0.01).abs() < 1e-9 && (p[1] + 0.01).abs() < 1e-9);
    }

    #[test]
    fn refuses_non_finite_gradients() {
        let mut opt = Adam::new(AdamConfig::default(), 1).unwrap();
        let mut p = vec![1.0];
        assert!(opt.step(&mut p, &[f64::NAN]).is_err());
        assert_eq!(p, vec![1.0]);
        assert_eq!(opt.steps(), 0);
    }
}
