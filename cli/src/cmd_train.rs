//! `bootflow train CONFIG.toml`: trains a flow as the run config says, writing into the output
//! directory the config it ran (`config.toml`), `metrics.csv`, `checkpoint.json` and `summary.json`.
//! `--resume` continues the run in the output directory exactly where its checkpoint stopped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use bootflow_core::CHECKPOINT_FILE;
use bootflow_core::run::outdir::prepare;
use bootflow_core::run::resume::resumed_spec;
use bootflow_core::run::spec::load_train_config;
use bootflow_core::run::{Start, build_target, holds_run, train};
use bootflow_core::{Registry, warnings};

use crate::Interrupted;
use crate::progress::Stderr;

/// Arguments of `bootflow train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Run config (TOML): seed, [target], [flow], [objective], [train]. With --resume it may be
    /// left out (the run directory's config.toml is the config).
    pub config: Option<PathBuf>,
    /// Output directory (default: runs/<config file stem>); must be new or empty unless --force.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Continue the run in DIR (default: the output directory) from its checkpoint, with the
    /// config it recorded; a config file or --set may change only train.steps, train.max_seconds,
    /// train.max_skipped and the logging, checkpoint and evaluation intervals.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    pub resume: Option<Option<PathBuf>>,
    /// Empty a used output directory first (only if everything in it was written by bootflow).
    #[arg(long)]
    pub force: bool,
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

/// The directory `--resume [DIR]` continues: DIR, else the output directory.
pub(crate) fn resume_dir(resume: Option<&Path>, out: Option<&Path>, config: Option<&Path>) -> Result<PathBuf> {
    let dir = match (resume, out, config) {
        (Some(r), Some(o), _) if o != r => {
            bail!("--resume {} and --out {} name different directories", r.display(), o.display())
        }
        (Some(r), _, _) => r.to_path_buf(),
        (None, Some(o), _) => o.to_path_buf(),
        (None, None, Some(c)) => out_dir(None, c),
        (None, None, None) => bail!("--resume needs the run directory: --resume DIR"),
    };
    if !holds_run(&dir) {
        bail!("--resume {}: no {CHECKPOINT_FILE} there", dir.display());
    }
    Ok(dir)
}

/// Runs `bootflow train` with the components in `registry`.
pub fn run(args: &TrainArgs, registry: &Registry) -> Result<()> {
    let (cfg, out, start) = match &args.resume {
        Some(resume) => {
            let dir = resume_dir(resume.as_deref(), args.out.as_deref(), args.config.as_deref())?;
            let cfg = resumed_spec(&dir, args.config.as_deref(), &args.sets)?.train;
            (cfg, dir, Start::Resume)
        }
        None => {
            let Some(config) = &args.config else { bail!("a run config is needed (or --resume DIR)") };
            let cfg = load_train_config(config, &args.sets)?;
            let out = out_dir(args.out.as_deref(), config);
            prepare(&out, args.force, "--out")?;
            (cfg, out, Start::Fresh)
        }
    };
    let params = cfg.target.params.clone().into_iter().collect();
    let target = build_target(registry, &cfg.target.name, &params).context("building the target")?;
    let summary = train(&cfg, target, &out, start, registry, &Stderr)?;
    crate::progress::print_warnings(&warnings::for_training(summary.steps, summary.skipped_steps));
    if crate::progress::interrupted() {
        return Err(Interrupted(format!(
            "interrupted at step {}: checkpoint in {} (continue with: bootflow train --resume {})",
            summary.steps,
            out.join(CHECKPOINT_FILE).display(),
            out.display()
        ))
        .into());
    }
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
            config: Some(config.clone()),
            out: Some(out.clone()),
            resume: resume.then_some(None),
            force: false,
            sets: vec![format!("train.steps={steps}")],
        };
        run(&args(false, 200), &reg).unwrap();
        for f in ["config.toml", "metrics.csv", "checkpoint.json", "summary.json"] {
            assert!(out.join(f).exists(), "{f} missing");
        }
        let again = run(&args(false, 200), &reg).unwrap_err().to_string();
        assert!(again.contains("already holds files") && again.contains("--force"), "{again}");
        run(&args(true, 300), &reg).unwrap();
        let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
        // The trained affine flow is N(3, 0.5^2): its shift is near 3.
        let c = bootflow_core::Checkpoint::read(&out).unwrap();
        assert!((c.params[1] - 3.0).abs() < 0.1, "{:?}", c.params);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
