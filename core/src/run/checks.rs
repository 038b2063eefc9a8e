//! Checks of a run config's numbers before anything runs: every numeric key of `[train]` and
//! `[flow]` must be finite and in range, and an error names the key and where its value came
//! from (the `--set` flag that gave it, or the config file).

use serde_json::Value;

use crate::error::{Error, Result};
use crate::train::config::RunConfig;

/// A bad key: its dotted name and what is wrong with its value.
pub struct BadKey {
    /// The dotted key, e.g. `train.lr`.
    pub key: String,
    /// What is wrong, e.g. `must be a positive number, got -1`.
    pub why: String,
}

fn bad(key: &str, why: String) -> BadKey {
    BadKey { key: key.into(), why }
}

fn positive(key: &str, v: f64) -> std::result::Result<(), BadKey> {
    if v.is_finite() && v > 0.0 { Ok(()) } else { Err(bad(key, format!("must be a positive number, got {v}"))) }
}

/// The first out-of-range key of `cfg`, if any.
pub fn check(cfg: &RunConfig) -> std::result::Result<(), BadKey> {
    let t = &cfg.train;
    positive("train.lr", t.lr)?;
    if let Some(l) = t.lr_final {
        positive("train.lr_final", l)?;
    }
    if let Some(c) = t.clip_norm {
        positive("train.clip_norm", c)?;
    }
    if let Some(m) = t.max_seconds {
        positive("train.max_seconds", m)?;
    }
    if !(t.weight_decay.is_finite() && t.weight_decay >= 0.0) {
        return Err(bad("train.weight_decay", format!("must be a number >= 0, got {}", t.weight_decay)));
    }
    if t.steps == 0 {
        return Err(bad("train.steps", "must be at least 1".into()));
    }
    if t.log_every == 0 {
        return Err(bad("train.log_every", "must be at least 1".into()));
    }
    if t.max_skipped == 0 {
        return Err(bad("train.max_skipped", "must be at least 1".into()));
    }
    if t.eval_every > 0 && t.eval_samples < 2 {
        return Err(bad("train.eval_samples", format!("must be at least 2, got {}", t.eval_samples)));
    }
    positive("flow.base_std", cfg.flow.base_std)?;
    if cfg.flow.layers.is_empty() {
        return Err(bad("flow.layers", "is empty: a flow needs at least one layer".into()));
    }
    if cfg.flow.shard == Some(0) {
        return Err(bad("flow.shard", "must be at least 1".into()));
    }
    Ok(())
}

/// Where `key` got its value: the `--set` flag that set it (or a table above it), else `origin`.
pub fn source_of(key: &str, sets: &[String], origin: &str) -> String {
    let set = sets.iter().rev().find(|s| {
        let k = s.split('=').next().unwrap_or("").trim();
        key == k || key.starts_with(&format!("{k}.")) || k.starts_with(&format!("{key}."))
    });
    match set {
        Some(s) => format!("--set {s}"),
        None => origin.to_string(),
    }
}

/// The error for a bad key, naming it and its source.
pub fn error(b: BadKey, sets: &[String], origin: &str) -> Error {
    Error::Config(format!("{}: {} {}", source_of(&b.key, sets, origin), b.key, b.why))
}

/// Deserialises a config section, naming the key a type error is at (and its source).
pub fn deserialize<T: serde::de::DeserializeOwned>(
    value: Value,
    prefix: &str,
    sets: &[String],
    origin: &str,
) -> Result<T> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = match (prefix.is_empty(), path.as_str()) {
            (_, ".") => prefix.to_string(),
            (true, p) => p.to_string(),
            (false, p) => format!("{prefix}.{p}"),
        };
        let inner = e.into_inner();
        if key.is_empty() {
            Error::Config(format!("{origin}: {inner}"))
        } else {
            Error::Config(format!("{}: {key}: {inner}", source_of(&key, sets, origin)))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::run::RunSpec;

    const BASE: &str = "[target]\nname = \"gaussian\"\ndim = 2\n[flow]\nlayers = [{ type = \"affine\" }]\n\
                        [objective]\nname = \"kl\"\n";

    fn msg(sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        RunSpec::from_toml_str(BASE, &sets).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn bad_numbers_name_the_key_and_the_flag_that_set_it() {
        for (set, want) in [
            ("train.lr=-1", "--set train.lr=-1: train.lr must be a positive number, got -1"),
            ("train.lr_final=0", "--set train.lr_final=0: train.lr_final must be a positive number"),
            ("train.clip_norm=-3", "train.clip_norm must be a positive number, got -3"),
            ("train.max_seconds=-1", "--set train.max_seconds=-1: train.max_seconds must be"),
            ("train.weight_decay=-0.1", "train.weight_decay must be a number >= 0"),
            ("train.log_every=0", "train.log_every must be at least 1"),
            ("train.max_skipped=0", "--set train.max_skipped=0: train.max_skipped must be at least 1"),
            ("flow.layers=[]", "--set flow.layers=[]: flow.layers is empty"),
            ("flow.base_std=0", "flow.base_std must be a positive number"),
            ("train.steps=-5", "--set train.steps=-5: train.steps: invalid value"),
            ("train.steps=\"many\"", "--set train.steps=\"many\": train.steps: invalid type"),
            ("train.lr=nan", "--set train.lr=nan: not a finite number"),
        ] {
            let m = msg(&[set]);
            assert!(m.contains(want), "{set}: {m}");
        }
        assert_eq!(msg(&["train.lr=0.01"]), "");
    }

    #[test]
    fn values_from_the_file_blame_the_file() {
        let text = BASE.replace("[objective]", "[train]\nlr = -2.0\n[objective]");
        let m = RunSpec::from_toml_str(&text, &[]).err().unwrap().to_string();
        assert!(m.contains("the run config: train.lr must be a positive number, got -2"), "{m}");
        let text = BASE.replace("dim = 2", "dim = 2\nscale = nan");
        let m = RunSpec::from_toml_str(&text, &[]).err().unwrap().to_string();
        assert!(m.contains("target.scale: not a finite number"), "{m}");
    }
}
