//! `bootflow train CONFIG.toml`: trains a flow as the run config says, writing into the output
//! directory the config it ran (`config.toml`), `metrics.csv`, `checkpoint.json` and `summary.json`.
//! `--resume` continues the run in the output directory exactly where its checkpoint stopped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootflow_core::CHECKPOINT_FILE;
use bootflow_core::Registry;
use bootflow_core::run::spec::load_train_config;
use bootflow_core::run::{Start, build_target, holds_run, train};

use crate::progress::Stderr;

/// Arguments of `bootflow train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Run config (TOML): seed, [target], [flow], [objective], [train].
    pub config: PathBuf,
    /// Output directory (default: runs/<config file stem>).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Continue the run saved in the output directory (train.steps may be raised to extend it).
    #[arg(long)]
    pub resume: bool,
    /// Override a config value, e.g. --set train.steps=200 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// The output directory: `--out`, else `runs/<config file stem>`.
pub(crate) fn out_dir(out: Option<&Path>, config: &Path) -> PathBuf {
    match out {
        Some(o) => o.to_path_buf(),
        None => {
            let stem = config.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or("run".into());
            PathBuf::from("runs").join(stem)
        }
    }
}

/// Runs `bootflow train` with the components in `registry`.
pub fn run(args: &TrainArgs, registry: &Registry) -> Result<()> {
    let cfg = load_train_config(&args.config, &args.sets)?;
    let out = out_dir(args.out.as_deref(), &args.config);
    let params = cfg.target.params.clone().into_iter().collect();
    let target = build_target(registry, &cfg.target.name, &params).context("building the target")?;
    let start = if args.resume {
        if !holds_run(&out) {
            bail!("--resume: no {CHECKPOINT_FILE} in {}", out.display());
        }
        Start::Resume
    } else {
        if holds_run(&out) {
            bail!("{} already holds a run; pass --resume to continue it or choose another --out", out.display());
        }
        Start::Fresh
    };
    train(&cfg, target, &out, start, registry, &Stderr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bootflow_core::{Source, Target};

    use super::*;

    /// `N(3, 0.5^2)` in 1-D.
    struct Shifted;
    impl Target for Shifted {
        fn dim(&self) -> usize {
            1
        }
        fn log_prob(&self, x: &[f64]) -> bootflow_core::Result<f64> {
            Ok(-2.0 * (x[0] - 3.0).powi(2))
        }
    }

    #[test]
    fn trains_writes_its_files_and_resumes() {
        let mut reg = Registry::with_builtins();
        reg.add_target("shifted", Source::Builtin, "", Arc::new(|_| Ok(Box::new(Shifted) as Box<dyn Target>))).unwrap();
        let dir = std::env::temp_dir().join(format!("bootflow-cli-train-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("run.toml");
        std::fs::write(
            &config,
            "seed = 2\n[target]\nname = \"shifted\"\n[flow]\nlayers = [{ type = \"affine\" }]\n\
             [objective]\nname = \"kl\"\nestimator = \"g2\"\nbatch = 64\n[train]\nsteps = 200\nlr = 0.05\nlog_every = 50\n",
        )
        .unwrap();
        let out = dir.join("out");
        let args = |resume: bool, steps: u64| TrainArgs {
            config: config.clone(),
            out: Some(out.clone()),
            resume,
            sets: vec![format!("train.steps={steps}")],
        };
        run(&args(false, 200), &reg).unwrap();
        for f in ["config.toml", "metrics.csv", "checkpoint.json", "summary.json"] {
            assert!(out.join(f).exists(), "{f} missing");
        }
        let again = run(&args(false, 200), &reg).unwrap_err().to_string();
        assert!(again.contains("--resume"), "{again}");
        run(&args(true, 300), &reg).unwrap();
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
        // The trained affine flow is N(3, 0.5^2): its shift is near 3.
        let c = bootflow_core::Checkpoint::read(&out).unwrap();
        assert!((c.params[1] - 3.0).abs() < 0.1, "{:?}", c.params);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
