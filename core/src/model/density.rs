//! Log-densities built from flows and targets, for MCMC kernels and annealing: the flow's
//! `log q`, FAB's `p^2/q`, and the geometric path between two densities.

use crate::Batch;
use crate::error::{Result, check_dim};
use crate::flow::Flow;
use crate::model::target::{LogDensity, Target};

/// `log q(x)` of a flow (gradient by one inverse pass and one backward pass).
pub struct FlowDensity<'a>(pub &'a Flow);

impl LogDensity for FlowDensity<'_> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        check_dim("output length", out.len(), x.ncols())?;
        let g = self.0.inverse_grads(x, None, grad.is_some())?;
        out.copy_from_slice(&g.log_q);
        if let (Some(dst), Some(src)) = (grad, g.grad_x) {
            dst.copy_from(&src);
        }
        Ok(())
    }
}

/// `2 log p~(x) - log q(x)`: the alpha = 2 optimal proposal that FAB anneals towards.
pub struct SquaredOverFlow<'a> {
    pub flow: &'a Flow,
    pub target: &'a dyn Target,
}

impl LogDensity for SquaredOverFlow<'_> {
    fn dim(&self) -> usize {
        self.flow.dim()
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let n = x.ncols();
        let mut lq = vec![0.0; n];
        match grad {
            Some(g) => {
                let mut gq = Batch::zeros(x.nrows(), n);
                FlowDensity(self.flow).eval(x, &mut lq, Some(&mut gq))?;
                self.target.log_prob_grad_batch(x, out, g)?;
                *g *= 2.0;
                *g -= &gq;
            }
            None => {
                FlowDensity(self.flow).eval(x, &mut lq, None)?;
                self.target.log_prob_batch(x, out)?;
            }
        }
        out.iter_mut().zip(&lq).for_each(|(o, q)| *o = 2.0 * *o - q);
        Ok(())
    }
}

/// Values (and gradients) of the two ends of a geometric path at the same points, so that every
/// intermediate density and every AIS weight increment comes from one evaluation of each end.
pub struct Ends {
    pub start: Vec<f64>,
    pub end: Vec<f64>,
    pub start_grad: Option<Batch>,
    pub end_grad: Option<Batch>,
}

impl Ends {
    /// Evaluates both ends at `x`.
    pub fn eval(start: &dyn LogDensity, end: &dyn LogDensity, x: &Batch, with_grad: bool) -> Result<Self> {
        let n = x.ncols();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        if with_grad {
            let (mut ga, mut gb) = (Batch::zeros(x.nrows(), n), Batch::zeros(x.nrows(), n));
            start.eval(x, &mut a, Some(&mut ga))?;
            end.eval(x, &mut b, Some(&mut gb))?;
            Ok(Self { start: a, end: b, start_grad: Some(ga), end_grad: Some(gb) })
        } else {
            start.eval(x, &mut a, None)?;
            end.eval(x, &mut b, None)?;
            Ok(Self { start: a, end: b, start_grad: None, end_grad: None })
        }
    }

    /// `(1 - beta) log f_start + beta log f_end` per point; at `beta = 0` and `1` exactly one end,
    /// so a `-inf` at the other end never meets a zero factor (which would give NaN).
    pub fn mix(&self, beta: f64) -> Vec<f64> {
        self.start.iter().zip(&self.end).map(|(&a, &b)| mix(a, b, beta)).collect()
    }

    /// Gradient of [`Ends::mix`], when both gradients were evaluated.
    pub fn mix_grad(&self, beta: f64) -> Option<Batch> {
        match (&self.start_grad, &self.end_grad) {
            (Some(a), Some(b)) => Some(a * (1.0 - beta) + b * beta),
            _ => None,
        }
    }
}

fn mix(a: f64, b: f64, beta: f64) -> f64 {
    if beta == 0.0 {
        a
    } else if beta == 1.0 {
        b
    } else {
        (1.0 - beta) * a + beta * b
    }
}

/// The intermediate density `f_beta = f_start^(1-beta) f_end^beta`.
pub struct Geometric<'a> {
    pub start: &'a dyn LogDensity,
    pub end: &'a dyn LogDensity,
    pub beta: f64,
}

impl LogDensity for Geometric<'_> {
    fn dim(&self) -> usize {
        self.start.dim()
    }
    fn eval(&self, x: &Batch, out: &mut [f64], grad: Option<&mut Batch>) -> Result<()> {
        let with_grad = grad.is_some();
        let ends = Ends::eval(self.start, self.end, x, with_grad)?;
        out.copy_from_slice(&ends.mix(self.beta));
        if let (Some(dst), Some(src)) = (grad, ends.mix_grad(self.beta)) {
            dst.copy_from(&src);
        }
        Ok(())
    }
}
