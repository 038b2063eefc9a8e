//! The run spec of `bootflow run CONFIG.toml`: the train config ([`RunConfig`]: seed, target,
//! flow, objective, train) plus two optional tables, read from TOML with `--set` overrides:
//!
//! ```toml
//! [evaluate]
//! samples = 100000   # fresh flow samples for ESS and log Z
//! ais = 4            # AIS intermediate distributions (default: the FAB run's own, else none)
//!
//! [sample]
//! method = "mis"     # or "mis-ais"
//! chains = 4
//! draws = 1000
//! ais_steps = 8      # intermediate distributions of mis-ais
//! ```

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, Result, ResultExt};
use crate::run::checks;
use crate::run::sets::{parse_set, set_path};
use crate::train::config::RunConfig;

/// `[evaluate]`: how the trained flow is evaluated.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluateSection {
    /// Fresh flow samples for ESS and log Z.
    pub samples: usize,
    /// AIS intermediate distributions; `None`: the FAB run's own count, else no AIS.
    pub ais: Option<usize>,
}

impl Default for EvaluateSection {
    fn default() -> Self {
        Self { samples: 100_000, ais: None }
    }
}

/// `[sample]`: the MIS chains run with the trained flow.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SampleSection {
    /// `mis` or `mis-ais`.
    pub method: String,
    /// Number of chains.
    pub chains: usize,
    /// Kept draws per chain.
    pub draws: usize,
    /// Intermediate distributions of `mis-ais`.
    pub ais_steps: usize,
}

impl Default for SampleSection {
    fn default() -> Self {
        Self { method: "mis".into(), chains: 4, draws: 1000, ais_steps: 8 }
    }
}

/// A whole run config: what to train, how to evaluate, how to sample.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSpec {
    /// The train config (seed, target, flow, objective, train).
    pub train: RunConfig,
    /// `[evaluate]`.
    pub evaluate: EvaluateSection,
    /// `[sample]`.
    pub sample: SampleSection,
    /// The config as read (with overrides), written back as `config.toml`.
    pub table: Value,
}

impl RunSpec {
    /// Pins a script target (absolute path, SHA-256; see [`pin_script`]) in the typed config and
    /// in the table written back as `config.toml`.
    ///
    /// [`pin_script`]: crate::run::target::pin_script
    pub fn pin_script(&mut self) -> Result<()> {
        crate::run::target::pin_script(&mut self.train.target)?;
        if let Some(t) = self.table.get_mut("target").and_then(Value::as_object_mut) {
            t.insert("name".into(), Value::String(self.train.target.name.clone()));
            if let Some(h) = self.train.target.params.get(crate::run::target::SCRIPT_HASH_KEY) {
                t.insert(crate::run::target::SCRIPT_HASH_KEY.into(), h.clone());
            }
        }
        Ok(())
    }

    /// Reads a run spec from TOML text with `--set` overrides (`key.path=value`).
    pub fn from_toml_str(text: &str, sets: &[String]) -> Result<Self> {
        Self::from_table_set(parse_table(text, sets, "the run config")?, "the run config", sets)
    }

    /// Reads a run spec from a TOML file with `--set` overrides; errors name the file.
    pub fn from_file(path: &Path, sets: &[String]) -> Result<Self> {
        Self::from_table_set(load_table(path, sets)?, &path.display().to_string(), sets)
    }

    /// Reads a run spec from a config table (TOML read as JSON, overrides applied); `origin`
    /// names it in errors.
    pub fn from_table(table: Value, origin: &str) -> Result<Self> {
        Self::from_table_set(table, origin, &[])
    }

    /// As [`RunSpec::from_table`], where `sets` are the `--set` overrides already applied: an
    /// error about a key they set names the flag rather than `origin`.
    pub fn from_table_set(table: Value, origin: &str, sets: &[String]) -> Result<Self> {
        let mut rest = table.clone();
        let map = rest.as_object_mut().ok_or_else(|| Error::Other("a run config is a table".into()))?;
        let section = |v: Option<Value>, name: &str| -> Result<Value> {
            match v {
                None => Ok(json!({})),
                Some(v) if v.is_object() => Ok(v),
                Some(_) => Err(Error::Other(format!("[{name}] must be a table"))),
            }
        };
        let evaluate = section(map.remove("evaluate"), "evaluate")?;
        let sample = section(map.remove("sample"), "sample")?;
        let spec = RunSpec {
            train: checks::deserialize(rest, "", sets, origin)?,
            evaluate: checks::deserialize(evaluate, "evaluate", sets, origin)?,
            sample: checks::deserialize(sample, "sample", sets, origin)?,
            table,
        };
        checks::check(&spec.train).map_err(|b| checks::error(b, sets, origin))?;
        if !matches!(spec.sample.method.as_str(), "mis" | "mis-ais") {
            return Err(Error::Other(format!(
                "[sample] method = \"{}\": expected \"mis\" or \"mis-ais\"",
                spec.sample.method
            )));
        }
        for (key, value) in [
            ("sample.chains", spec.sample.chains),
            ("sample.draws", spec.sample.draws),
            ("evaluate.samples", spec.evaluate.samples),
        ] {
            if value == 0 {
                return Err(Error::Config(format!(
                    "{}: {key} must be at least 1",
                    checks::source_of(key, sets, origin)
                )));
            }
        }
        Ok(spec)
    }
}

/// Parses TOML text into a JSON value and applies `--set` overrides; `origin` names it in errors.
fn parse_table(text: &str, sets: &[String], origin: &str) -> Result<Value> {
    let table: toml::Table = toml::from_str(text).with_context(|| format!("parsing {origin}"))?;
    if let Some(key) = crate::run::sets::first_non_finite(&toml::Value::Table(table.clone()), "") {
        return Err(Error::Config(format!("{origin}: {key}: not a finite number")));
    }
    let mut value = serde_json::to_value(table).map_err(|e| Error::Other(e.to_string()))?;
    for s in sets {
        let (key, v) = parse_set(s)?;
        set_path(&mut value, &key, v)?;
    }
    Ok(value)
}

/// Reads a TOML config file as a JSON value with `--set` overrides applied.
pub fn load_table(path: &Path, sets: &[String]) -> Result<Value> {
    let text = crate::run::input::read_text(path, "config", crate::run::input::TEXT_LIMIT)?;
    parse_table(&text, sets, &path.display().to_string())
}

/// Reads the train config of `bootflow train` (no `[evaluate]` or `[sample]`) with `--set`
/// overrides applied.
pub fn load_train_config(path: &Path, sets: &[String]) -> Result<RunConfig> {
    let origin = path.display().to_string();
    let cfg: RunConfig = checks::deserialize(load_table(path, sets)?, "", sets, &origin)?;
    checks::check(&cfg).map_err(|b| checks::error(b, sets, &origin))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("bootflow-core-run-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const TRAIN: &str = "seed = 4\n[target]\nname = \"gmm5\"\n[flow]\nlayers = [{ type = \"affine\" }]\n\
                         [objective]\nname = \"kl\"\n";

    #[test]
    fn run_configs_add_evaluate_and_sample_tables() {
        let plain = RunSpec::from_file(&write("plain.toml", TRAIN), &[]).unwrap();
        assert_eq!((plain.evaluate, plain.sample), (EvaluateSection::default(), SampleSection::default()));
        let text = format!("{TRAIN}[evaluate]\nsamples = 500\nais = 2\n[sample]\nmethod = \"mis-ais\"\nchains = 3\n");
        let path = write("full.toml", &text);
        let full = RunSpec::from_file(&path, &["sample.draws=50".into()]).unwrap();
        assert_eq!(full.train.seed, 4);
        assert_eq!(full.evaluate, EvaluateSection { samples: 500, ais: Some(2) });
        assert_eq!(full.sample, SampleSection { method: "mis-ais".into(), chains: 3, draws: 50, ais_steps: 8 });
        assert_eq!(RunSpec::from_toml_str(&text, &["sample.draws=50".into()]).unwrap(), full);
        // The table written back as config.toml reads the same.
        let again = write("again.toml", &toml::to_string(&full.table).unwrap());
        assert_eq!(RunSpec::from_file(&again, &[]).unwrap(), full);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        for (name, extra, want) in [
            ("typo.toml", "[sample]\nchain = 3\n", "chain"),
            ("method.toml", "[sample]\nmethod = \"hmc\"\n", "mis-ais"),
            ("zero.toml", "[sample]\ndraws = 0\n", "at least 1"),
            ("section.toml", "evaluate = 3\n", "[evaluate]"),
        ] {
            // A top-level key must come before the first table.
            let text = if extra.starts_with('[') { format!("{TRAIN}{extra}") } else { format!("{extra}{TRAIN}") };
            let err = RunSpec::from_file(&write(name, &text), &[]).unwrap_err();
            let mut msg = err.to_string();
            let mut cause = std::error::Error::source(&err);
            while let Some(c) = cause {
                msg += &format!(": {c}");
                cause = c.source();
            }
            assert!(msg.contains(want), "{name}: {msg}");
        }
    }
}
