//! Targets built into core: Gaussians, Gaussian mixtures (including the 2-D mixtures of the FAB
//! papers) and Neal's funnel, with analytic gradients, exact samplers and known normalisers.

pub mod funnel;
pub mod gaussian;
pub mod gmm_builtins;
pub mod mixture;
pub mod mixture_csv;
pub mod no_positive_infinity;
pub mod test_function;
pub mod without_gradient;

use crate::error::Result;
use crate::registry::Registry;

/// Registers every built-in target.
pub fn register(reg: &mut Registry) -> Result<()> {
    gaussian::register(reg)?;
    funnel::register(reg)?;
    mixture::register(reg)?;
    gmm_builtins::register(reg)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::registry::{Registry, Source};

    #[test]
    fn builtin_registry_holds_every_target() {
        let r = Registry::with_builtins();
        for (name, cfg, dim) in [("gaussian", json!({"dim": 3}), 3), ("mixture", json!({"means": [[0.0, 1.0]]}), 2)] {
            assert_eq!(r.target(name, &cfg).unwrap().dim(), dim);
        }
        for name in ["gmm5", "gmm"] {
            let t = r.target(name, &serde_json::Value::Null).unwrap();
            assert_eq!((t.dim(), t.observable_names()), (2, vec!["f".to_string()]));
            assert!(t.has_grad() && t.has_sampler() && t.log_z() == Some(0.0));
        }
        assert!(r.targets.values().all(|e| e.source == Source::Builtin));
    }
}
