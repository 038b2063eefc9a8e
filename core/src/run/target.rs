//! A target from a name or a script path with `--set key=value` parameters: a registered target
//! by name, or a Rhai script by path.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result, ResultExt};
use crate::run::sets::parse_set;
use crate::script::ScriptTarget;
use crate::targets::no_positive_infinity::NoPositiveInfinity;
use crate::targets::without_gradient::WithoutGradient;
use crate::train::config::Component;
use crate::{Registry, Target};

/// Parses `--set key=value` target parameters into a map.
pub fn parse_params(sets: &[String]) -> Result<BTreeMap<String, Value>> {
    sets.iter().map(|s| parse_set(s)).collect()
}

/// Whether `spec` names a script rather than a registered target.
pub fn is_script(spec: &str) -> bool {
    spec.ends_with(".rhai")
}

/// The key of a script target's table that records the SHA-256 of the script a run used.
pub const SCRIPT_HASH_KEY: &str = "script_sha256";

/// The SHA-256 of the file at `path`, as lowercase hex (what `sha256sum` prints).
pub fn script_sha256(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|e| Error::io(format!("reading script {}", path.display()), e))?;
    Ok(sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// Pins a script target to the file it names now: its absolute path (so the run can be
/// evaluated and resumed from any directory) and the SHA-256 of its text (so a changed script is
/// refused, see [`build_target`]). Targets by name, and scripts already pinned, are left as they
/// are.
pub fn pin_script(target: &mut Component) -> Result<()> {
    if !is_script(&target.name) || target.params.contains_key(SCRIPT_HASH_KEY) {
        return Ok(());
    }
    let path = Path::new(&target.name);
    let abs = path.canonicalize().map_err(|e| Error::io(format!("script {}", path.display()), e))?;
    let hash = script_sha256(&abs)?;
    target.name = abs.to_string_lossy().into_owned();
    target.params.insert(SCRIPT_HASH_KEY.into(), Value::String(hash));
    Ok(())
}

/// Refuses a script whose text differs from the one a run recorded.
fn check_script_hash(path: &str, recorded: &Value) -> Result<()> {
    let Value::String(recorded) = recorded else {
        return Err(Error::Config(format!("target key '{SCRIPT_HASH_KEY}' must be a string, got {recorded}")));
    };
    let now = script_sha256(Path::new(path))?;
    if &now != recorded {
        return Err(Error::Config(format!(
            "script {path} has changed since the run recorded it (SHA-256 {recorded}, now {now}): restore it, or start a new run"
        )));
    }
    Ok(())
}

/// A registered target by name or a Rhai script by path, configured with `params`. The key
/// `gradient = false`, which every target takes, hides the target's gradient (for gradient-free
/// estimators and kernels on a target that has one). A script pinned by [`pin_script`] must
/// still have the text it had. A `+inf` log-density is an error naming the
/// point.
pub fn build_target(reg: &Registry, spec: &str, params: &BTreeMap<String, Value>) -> Result<Box<dyn Target>> {
    let mut params = params.clone();
    let keep_gradient = match params.remove("gradient") {
        None => true,
        Some(Value::Bool(b)) => b,
        Some(other) => return Err(Error::Other(format!("target key 'gradient' must be true or false, got {other}"))),
    };
    for (key, sites) in [("dim", 1), ("L", 2)] {
        if let Some(n) = params.get(key).and_then(Value::as_f64) {
            crate::run::budget::check_dimension(&format!("target.{key}"), n.powi(sites))?;
        }
    }
    let target: Box<dyn Target> = if is_script(spec) {
        if let Some(recorded) = params.remove(SCRIPT_HASH_KEY) {
            check_script_hash(spec, &recorded)?;
        }
        Box::new(ScriptTarget::from_file(Path::new(spec), &params)?)
    } else {
        let cfg = Value::Object(params.into_iter().collect());
        reg.target(spec, &cfg).with_context(|| format!("target '{spec}'"))?
    };
    let target = Box::new(NoPositiveInfinity { inner: target, name: spec.to_string() });
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

    #[test]
    fn a_pinned_script_is_found_by_absolute_path_and_refused_once_changed() {
        let dir = std::env::temp_dir().join(format!("bootflow-pin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("t.rhai");
        std::fs::write(&script, "const DIM = 1; fn log_prob(x) { -0.5 * x[0] * x[0] }").unwrap();
        let mut c = Component::named(&format!("{}/./t.rhai", dir.display()));
        pin_script(&mut c).unwrap();
        assert_eq!(Path::new(&c.name), script.canonicalize().unwrap());
        let hash = c.params[SCRIPT_HASH_KEY].as_str().unwrap().to_string();
        assert_eq!(hash.len(), 64);
        let pinned = c.clone();
        pin_script(&mut c).unwrap();
        assert_eq!(c, pinned, "pinning twice changes nothing");

        let reg = Registry::with_builtins();
        let params: BTreeMap<String, Value> = c.params.clone().into_iter().collect();
        assert_eq!(build_target(&reg, &c.name, &params).unwrap().dim(), 1);
        std::fs::write(&script, "const DIM = 1; fn log_prob(x) { -x[0] * x[0] }").unwrap();
        let err = build_target(&reg, &c.name, &params).err().unwrap().to_string();
        assert!(err.contains("has changed since the run recorded it") && err.contains(&hash), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
