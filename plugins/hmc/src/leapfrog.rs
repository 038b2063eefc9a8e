//! Batched leapfrog integration of Hamiltonian dynamics with a diagonal or dense mass matrix:
//! `H(x, p) = -log p(x) + p^T M^-1 p / 2`, one step size per chain (column).
//!
//! A chain whose log-density or gradient turns non-finite (or whose momentum overflows) stops
//! moving and is marked dead: its trajectory has diverged and its proposal must be rejected.
//! Freezing it keeps its coordinates finite, so the density is never evaluated at NaN.

use bootflow_core::{Batch, LogDensity, Result};

use crate::metric::Metric;

/// Position, momentum and the cached log-density and gradient at the position.
#[derive(Clone, Debug)]
pub struct Phase {
    pub x: Batch,
    pub p: Batch,
    pub log_p: Vec<f64>,
    pub grad: Batch,
}

impl Phase {
    /// `H = -log p(x) + p^T M^-1 p / 2` of column `j` (`+inf` where `log p = -inf`).
    pub fn energy(&self, j: usize, metric: &Metric) -> f64 {
        -self.log_p[j] + 0.5 * metric.kinetic2(self.p.column(j).iter())
    }

    fn column_is_finite(&self, j: usize) -> bool {
        self.log_p[j].is_finite()
            && self.grad.column(j).iter().all(|g| g.is_finite())
            && self.p.column(j).iter().all(|p| p.is_finite())
    }
}

/// Runs `n_steps` leapfrog steps of size `eps[j]` on every live chain `j` (half momentum step,
/// then `n_steps` position steps with full momentum steps in between, then a half momentum step).
/// One density evaluation (with gradient) of the whole batch per step. `alive[j]` turns false
/// for chains that diverge; dead chains are left where they diverged.
pub fn integrate(
    density: &dyn LogDensity,
    ph: &mut Phase,
    eps: &[f64],
    metric: &Metric,
    n_steps: usize,
    alive: &mut [bool],
) -> Result<()> {
    let n = ph.x.ncols();
    mark_diverged(ph, alive);
    kick(ph, eps, 0.5, alive);
    for step in 0..n_steps {
        for j in (0..n).filter(|&j| alive[j]) {
            metric.drift(ph.x.column_mut(j).iter_mut(), ph.p.column(j).as_slice(), eps[j]);
        }
        density.eval(&ph.x, &mut ph.log_p, Some(&mut ph.grad))?;
        mark_diverged(ph, alive);
        kick(ph, eps, if step + 1 == n_steps { 0.5 } else { 1.0 }, alive);
        mark_diverged(ph, alive);
    }
    Ok(())
}

/// Marks chains whose log-density, gradient or momentum is no longer finite.
fn mark_diverged(ph: &Phase, alive: &mut [bool]) {
    for (j, a) in alive.iter_mut().enumerate() {
        *a = *a && ph.column_is_finite(j);
    }
}

/// `p += fraction * eps * grad log p` on live chains.
fn kick(ph: &mut Phase, eps: &[f64], fraction: f64, alive: &[bool]) {
    for j in (0..ph.x.ncols()).filter(|&j| alive[j]) {
        let e = fraction * eps[j];
        let mut pc = ph.p.column_mut(j);
        for (p, g) in pc.iter_mut().zip(ph.grad.column(j).iter()) {
            *p += e * g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bootflow_core::rng::{fill_normal, stream};

    /// Anisotropic Gaussian `log p = -sum_i x_i^2 / (2 s_i^2)` with a quartic term, so the
    /// dynamics are non-linear.
    struct Anharmonic;
    const S: [f64; 3] = [0.5, 1.0, 2.0];
    impl LogDensity for Anharmonic {
        fn dim(&self) -> usize {
            3
        }
        fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
            for (j, c) in x.column_iter().enumerate() {
                out[j] = -c.iter().zip(S).map(|(v, s)| 0.5 * v * v / (s * s) + 0.05 * v.powi(4)).sum::<f64>();
            }
            if let Some(g) = grad {
                for (gc, c) in g.column_iter_mut().zip(x.column_iter()) {
                    for ((gv, v), s) in gc.into_iter().zip(c.iter()).zip(S) {
                        *gv = -v / (s * s) - 0.2 * v.powi(3);
                    }
                }
            }
            Ok(())
        }
    }

    fn start(n: usize, seed: u64) -> Phase {
        let mut rng = stream(seed, 0);
        let mut x = Batch::zeros(3, n);
        let mut p = Batch::zeros(3, n);
        fill_normal(&mut rng, x.as_mut_slice());
        fill_normal(&mut rng, p.as_mut_slice());
        let mut log_p = vec![0.0; n];
        let mut grad = Batch::zeros(3, n);
        Anharmonic.eval(&x, &mut log_p, Some(&mut grad)).unwrap();
        Phase { x, p, log_p, grad }
    }

    #[test]
    fn the_density_gradient_matches_central_differences() {
        let ph = start(1, 5);
        let x0: Vec<f64> = ph.x.column(0).iter().copied().collect();
        let mut f = |x: &[f64]| {
            let mut o = [0.0];
            Anharmonic.eval(&Batch::from_column_slice(3, 1, x), &mut o, None).unwrap();
            o[0]
        };
        let fd = bootflow_core::testing::fd_gradient(&mut f, &x0, &[0, 1, 2], 1e-5);
        let an: Vec<f64> = ph.grad.column(0).iter().copied().collect();
        assert!(bootflow_core::testing::rel_error(&an, &fd) < 1e-7, "{an:?} vs {fd:?}");
    }

    #[test]
    fn forward_then_flipped_momentum_returns_to_the_start() {
        let dense = nalgebra::DMatrix::from_row_slice(3, 3, &[1.0, 0.3, 0.1, 0.3, 0.5, -0.2, 0.1, -0.2, 2.0]);
        for inv_mass in [Metric::Diag(vec![1.0, 0.5, 2.0]), Metric::dense(dense).unwrap()] {
            reverses(&inv_mass);
        }
    }

    fn reverses(inv_mass: &Metric) {
        let ph0 = start(4, 1);
        let mut ph = ph0.clone();
        let eps = [0.05, 0.1, 0.2, 0.13];
        let mut alive = vec![true; 4];
        integrate(&Anharmonic, &mut ph, &eps, inv_mass, 25, &mut alive).unwrap();
        assert!((&ph.x - &ph0.x).norm() > 0.1, "the trajectory should move");
        ph.p *= -1.0;
        integrate(&Anharmonic, &mut ph, &eps, inv_mass, 25, &mut alive).unwrap();
        assert!(alive.iter().all(|a| *a));
        assert!((&ph.x - &ph0.x).amax() < 1e-10, "position error {}", (&ph.x - &ph0.x).amax());
        assert!((&ph.p + &ph0.p).amax() < 1e-10, "momentum error {}", (&ph.p + &ph0.p).amax());
    }

    /// Energy error over a fixed trajectory length `T = 1`; leapfrog is second order, so halving
    /// the step divides the error by about 4.
    #[test]
    fn energy_error_shrinks_as_step_size_squared() {
        let inv_mass = Metric::Diag(vec![1.0; 3]);
        let ph0 = start(8, 2);
        let err = |eps: f64| -> f64 {
            let mut ph = ph0.clone();
            let mut alive = vec![true; 8];
            integrate(&Anharmonic, &mut ph, &[eps; 8], &inv_mass, (1.0 / eps).round() as usize, &mut alive).unwrap();
            (0..8).map(|j| (ph.energy(j, &inv_mass) - ph0.energy(j, &inv_mass)).abs()).sum::<f64>()
        };
        let (e1, e2, e3) = (err(0.1), err(0.05), err(0.025));
        for ratio in [e1 / e2, e2 / e3] {
            assert!((3.6..4.4).contains(&ratio), "errors {e1} {e2} {e3}");
        }
    }

    /// A density that is `-inf` beyond `x_0 > 1` and has a NaN gradient beyond `x_0 < -1`.
    struct Walled;
    impl LogDensity for Walled {
        fn dim(&self) -> usize {
            1
        }
        fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
            let mut g = grad;
            for j in 0..x.ncols() {
                let v = x[(0, j)];
                assert!(v.is_finite(), "the density must never see a non-finite point");
                out[j] = if v > 1.0 { f64::NEG_INFINITY } else { -0.5 * v * v };
                if let Some(g) = g.as_deref_mut() {
                    g[(0, j)] = if v < -1.0 { f64::NAN } else { -v };
                }
            }
            Ok(())
        }
    }

    #[test]
    fn diverging_chains_are_frozen_and_marked() {
        let x = Batch::from_row_slice(1, 3, &[0.0, 0.0, 0.0]);
        let p = Batch::from_row_slice(1, 3, &[5.0, -5.0, 0.1]);
        let mut log_p = vec![0.0; 3];
        let mut grad = Batch::zeros(1, 3);
        Walled.eval(&x, &mut log_p, Some(&mut grad)).unwrap();
        let mut ph = Phase { x, p, log_p, grad };
        let mut alive = vec![true; 3];
        integrate(&Walled, &mut ph, &[0.1; 3], &Metric::Diag(vec![1.0]), 20, &mut alive).unwrap();
        assert_eq!(alive, vec![false, false, true]);
        assert!(ph.x.iter().all(|v| v.is_finite()));
    }
}
