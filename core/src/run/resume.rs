//! Resuming a run: the run directory is the source of truth. Its `config.toml` rebuilds the
//! target, flow and objective; a config file or `--set` given now may only change keys that
//! extend the run or what it logs, and any other difference is refused, naming the key.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result, ResultExt};
use crate::run::sets::{parse_set, set_path};
use crate::run::spec::{RunSpec, load_table};
use crate::run::train::CONFIG_FILE;

/// Keys a resumed run may change: they extend it or change what it logs, not what it trains.
pub const EXTENDING_KEYS: [&str; 10] = [
    "train.steps",
    "train.max_seconds",
    "train.log_every",
    "train.checkpoint_every",
    "train.eval_every",
    "train.eval_samples",
    "train.max_skipped",
    "train.gradvar_every",
    "train.gradvar_batches",
    "train.gradvar_estimators",
];

/// Whether a resumed run may change `key` (the `[evaluate]` and `[sample]` of `bootflow run`
/// come after training and may change too).
fn may_change(key: &str) -> bool {
    EXTENDING_KEYS.contains(&key) || key.starts_with("evaluate.") || key.starts_with("sample.")
}

/// Every key of `spec` with its value (defaults filled in), by dotted path.
fn leaves(spec: &RunSpec) -> Result<Map<String, Value>> {
    let to = |v: std::result::Result<Value, serde_json::Error>| {
        v.map_err(|e| Error::Bug(format!("serialising a run spec: {e}")))
    };
    let mut out = Map::new();
    flatten("", &to(serde_json::to_value(&spec.train))?, &mut out);
    flatten("evaluate", &to(serde_json::to_value(&spec.evaluate))?, &mut out);
    flatten("sample", &to(serde_json::to_value(&spec.sample))?, &mut out);
    Ok(out)
}

fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The config a resumed run in `dir` runs with: `dir/config.toml`, or the config file given now
/// (`config`), with `sets` applied, checked against what the directory recorded. Returns the
/// spec (to write back as `config.toml` and run).
pub fn resumed_spec(dir: &Path, config: Option<&Path>, sets: &[String]) -> Result<RunSpec> {
    let recorded_path = dir.join(CONFIG_FILE);
    if !recorded_path.exists() {
        return Err(Error::Config(format!("--resume {}: no {CONFIG_FILE} there (not a run directory)", dir.display())));
    }
    let recorded_table = load_table(&recorded_path, &[])?;
    let mut recorded = RunSpec::from_table(recorded_table.clone(), &recorded_path.display().to_string())?;
    // A run recorded before scripts were pinned, and a config given now, are pinned to the
    // script as it is: a changed script then shows as a changed `target.script_sha256`.
    recorded.pin_script()?;
    let (given, origin) = match config {
        Some(path) => (load_table(path, &[])?, path.display().to_string()),
        None => (recorded_table, recorded_path.display().to_string()),
    };
    let mut table = given;
    for s in sets {
        let (key, value) = parse_set(s)?;
        set_path(&mut table, &key, value)?;
    }
    let mut now = RunSpec::from_table_set(table, &origin, sets).context("the resumed config")?;
    now.pin_script()?;
    let (before, after) = (leaves(&recorded)?, leaves(&now)?);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (old, new) = (before.get(key), after.get(key));
        if old != new && !may_change(key) {
            let show = |v: Option<&Value>| v.map(Value::to_string).unwrap_or_else(|| "absent".into());
            let by = crate::run::checks::source_of(key, sets, &origin);
            return Err(Error::Config(format!(
                "--resume {}: {by} changes {key} from {} to {}, which would change the run (a resumed run may change only {} and [evaluate], [sample])",
                dir.display(),
                show(old),
                show(new),
                EXTENDING_KEYS.join(", ")
            )));
        }
    }
    Ok(now)
}
