//! Training objectives (gradient estimators) for flows.

use crate::error::Result;
use crate::flow::Flow;
use crate::model::target::Target;
use crate::rng::Rng;

/// A loss estimate, its gradient with respect to the flow parameters, and named diagnostics
/// (batch ESS, AIS acceptance, step size, ...).
#[derive(Clone, Debug, Default)]
pub struct ObjectiveOutput {
    /// Estimate of the loss being minimised.
    pub loss: f64,
    /// Gradient of `loss` with respect to the flow parameters, in [`Flow`] parameter order.
    pub grad: Vec<f64>,
    /// Named diagnostics of this estimate, for logging.
    pub metrics: Vec<(String, f64)>,
}

/// A stochastic gradient estimator for the flow parameters.
pub trait Objective: Send + Sync {
    /// Estimates the loss and its gradient at the flow's current parameters.
    fn estimate(&mut self, flow: &Flow, target: &dyn Target, rng: &mut Rng) -> Result<ObjectiveOutput>;
    /// Refuses a target the objective cannot train on (wrong dimension of its data, a missing
    /// gradient or sampler), before a run writes anything.
    fn check_target(&self, _target: &dyn Target) -> Result<()> {
        Ok(())
    }
    /// Called after the optimiser changed the flow (e.g. to re-weight a replay buffer).
    fn after_update(&mut self, _flow: &Flow) -> Result<()> {
        Ok(())
    }
    /// Figures worth logging that cost more than a step's by-products (a held-out set's mean
    /// `log q`), computed only at logging steps, outside the training time.
    fn log_metrics(&mut self, _flow: &Flow) -> Result<Vec<(String, f64)>> {
        Ok(Vec::new())
    }
    /// Internal state for checkpoints (replay buffer, AIS step sizes).
    fn state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// Restores what [`Objective::state`] returned.
    fn set_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}
