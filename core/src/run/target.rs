//! A target from a name or a script path with `--set key=value` parameters: a registered target
//! by name, or a Rhai script by path.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result, ResultExt};
use crate::run::sets::parse_set;
use crate::script::ScriptTarget;
use crate::targets::without_gradient::WithoutGradient;
use crate::{Registry, Target};

/// Parses `--set key=value` target parameters into a map.
pub fn parse_params(sets: &[String]) -> Result<BTreeMap<String, Value>> {
    sets.iter().map(|s| parse_set(s)).collect()
}

/// Whether `spec` names a script rather than a registered target.
pub fn is_script(spec: &str) -> bool {
    spec.ends_with(".rhai")
}

/// A registered target by name or a Rhai script by path, configured with `params`. The key
/// `gradient = false`, which every target takes, hides the target's gradient (for gradient-free
/// estimators and kernels on a target that has one).
pub fn build_target(reg: &Registry, spec: &str, params: &BTreeMap<String, Value>) -> Result<Box<dyn Target>> {
    let mut params = params.clone();
    let keep_gradient = match params.remove("gradient") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(Error::Other(format!("target key 'gradient' must be true or false, got {other}"))),
    };
    let target: Box<dyn Target> = if is_script(spec) {
        Box::new(ScriptTarget::from_file(Path::new(spec), &params)?)
    } else {
        let cfg = Value::Object(params.into_iter().collect());
        reg.target(spec, &cfg).with_context(|| format!("target '{spec}'"))?
    };
    Ok(if keep_gradient { target } else { Box::new(WithoutGradient(target)) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn gradient_false_hides_the_gradient_of_any_target() {
        let reg = Registry::with_builtins();
        let dim = ("dim", Value::from(2));
        assert!(build_target(&reg, "gaussian", &params(std::slice::from_ref(&dim))).unwrap().has_grad());
        let hidden = build_target(&reg, "gaussian", &params(&[dim.clone(), ("gradient", Value::Bool(false))])).unwrap();
        assert!(!hidden.has_grad() && hidden.dim() == 2);
        let kept = build_target(&reg, "gaussian", &params(&[dim.clone(), ("gradient", Value::Bool(true))])).unwrap();
        assert!(kept.has_grad());
        let err = build_target(&reg, "gaussian", &params(&[dim, ("gradient", Value::from("no"))])).err().unwrap();
        assert!(err.to_string().contains("'gradient' must be true or false"), "{err}");

        let script = std::env::temp_dir().join(format!("bootflow-nograd-{}.rhai", std::process::id()));
        std::fs::write(&script, "const DIM = 2; fn log_prob(x) { -0.5 * (x[0] * x[0] + x[1] * x[1]) }").unwrap();
        let spec = script.to_string_lossy().into_owned();
        assert!(build_target(&reg, &spec, &BTreeMap::new()).unwrap().has_grad());
        assert!(!build_target(&reg, &spec, &params(&[("gradient", Value::Bool(false))])).unwrap().has_grad());
        std::fs::remove_file(&script).unwrap();
    }
}
