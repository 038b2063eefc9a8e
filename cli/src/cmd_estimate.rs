//! `bootflow estimate --flow RUN/checkpoint.json`: rebuilds the trained flow and its target from
//! a run directory and reports the flow's ESS, log Z, forward ESS, test-set and test-function
//! figures (with AIS towards p when the run trained with FAB or `--ais-steps` asks for it);
//! writes `estimate.json` next to the checkpoint.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bootflow_core::eval::{AisEvalConfig, BiasStats, EvalConfig, FlowEval, evaluate_flow};
use bootflow_core::registry::parse_config;
use bootflow_core::rng;
use bootflow_core::train::checkpoint::Checkpoint;
use bootflow_core::train::config::RunConfig;
use bootflow_core::train::fab::FabConfig;
use bootflow_core::{Registry, Target};
use serde_json::{Value, json};

use crate::target_arg::build_target;

/// Output file written next to the checkpoint.
pub const ESTIMATE_FILE: &str = "estimate.json";

/// Arguments of `bootflow estimate`.
#[derive(clap::Args)]
pub struct EstimateArgs {
    /// The run's checkpoint (`RUN/checkpoint.json`) or its run directory.
    #[arg(long, value_name = "FILE|DIR")]
    pub flow: PathBuf,
    /// Fresh flow samples (and exact target samples) per estimate.
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,
    /// Intermediate distributions of AIS towards p (0: no AIS; default: the FAB run's own count,
    /// none for other objectives).
    #[arg(long)]
    pub ais_steps: Option<usize>,
    /// Seed of the evaluation's random streams.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The run directory of `--flow`.
fn run_dir(flow: &Path) -> PathBuf {
    if flow.is_dir() {
        return flow.to_path_buf();
    }
    match flow.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// AIS settings: the FAB run's kernel, spacing and tuned step sizes; for other runs `hmc` (if
/// available, else `rwm`) with adaptation on.
pub(crate) fn ais_config(c: &Checkpoint, steps: Option<usize>, registry: &Registry) -> Result<Option<AisEvalConfig>> {
    let fab = if c.objective.name == "fab" {
        Some(parse_config::<FabConfig>("fab objective", &c.objective.config())?)
    } else {
        None
    };
    let k = match (steps, &fab) {
        (Some(k), _) => k,
        (None, Some(f)) => f.n_intermediate,
        (None, None) => 0,
    };
    if k == 0 {
        return Ok(None);
    }
    Ok(Some(match fab {
        Some(f) => {
            let tuned: Option<Vec<Vec<f64>>> =
                c.objective_state.get("kernels").and_then(|v| serde_json::from_value(v.clone()).ok());
            // With another number of transitions, each starts from the first tuned state.
            let kernel_state =
                tuned.filter(|t| !t.is_empty()).map(|t| if t.len() == k { t } else { vec![t[0].clone(); k] });
            AisEvalConfig {
                n_intermediate: k,
                spacing: f.spacing,
                kernel: f.kernel,
                kernel_config: f.kernel_config,
                kernel_state,
                adapt: f.adapt,
            }
        }
        None => {
            let hmc = registry.kernels.contains_key("hmc");
            AisEvalConfig {
                n_intermediate: k,
                spacing: Default::default(),
                kernel: if hmc { "hmc" } else { "rwm" }.into(),
                kernel_config: if hmc { json!({ "n_leapfrog": 5, "target_accept": 0.65 }) } else { Value::Null },
                kernel_state: None,
                adapt: true,
            }
        }
    }))
}

/// Runs `bootflow estimate` with the components in `registry`.
pub fn run(args: &EstimateArgs, registry: &Registry) -> Result<()> {
    let dir = run_dir(&args.flow);
    let c = Checkpoint::read(&dir).with_context(|| format!("reading the checkpoint in {}", dir.display()))?;
    // A `bootflow run` config adds [evaluate] and [sample] to the train config.
    let cfg = crate::cmd_run::load_run_config(&dir.join("config.toml"), &[])?.train;
    let target = build_run_target(registry, &cfg)?;
    let mut flow = registry.flow(c.flow.dim, &c.flow.spec, c.flow.seed).context("rebuilding the flow")?;
    flow.set_params(&c.params).context("loading the flow parameters")?;
    let eval_cfg =
        EvalConfig { samples: args.samples, ais: ais_config(&c, args.ais_steps, registry)?, ..Default::default() };
    let mut r = rng::stream(args.seed, 0);
    let e = evaluate_flow(&flow, target.as_ref(), &eval_cfg, registry, &mut r).context("evaluating the flow")?;
    let mut out = serde_json::to_value(&e)?;
    if let Value::Object(m) = &mut out {
        m.insert("target".into(), Value::from(cfg.target.name.clone()));
        m.insert("objective".into(), Value::from(c.objective.name.clone()));
        m.insert("step".into(), Value::from(c.step));
        m.insert("train_seconds".into(), Value::from(c.elapsed_seconds));
        m.insert("seed".into(), Value::from(args.seed));
    }
    let text = serde_json::to_string_pretty(&out)?;
    std::fs::write(dir.join(ESTIMATE_FILE), &text)
        .with_context(|| format!("writing {ESTIMATE_FILE} in {}", dir.display()))?;
    if args.json {
        println!("{text}");
    } else {
        print!("{}", table(&cfg.target.name, c.step, &e));
    }
    Ok(())
}

fn build_run_target(registry: &Registry, cfg: &RunConfig) -> Result<Box<dyn Target>> {
    build_target(registry, &cfg.target.name, &cfg.target.params.clone().into_iter().collect())
}

/// A plain two-column table; percentages for ESS and bias.
fn table(target: &str, step: u64, e: &FlowEval) -> String {
    let pct = |v: f64| format!("{:.2} %", 100.0 * v);
    let mut rows: Vec<(String, String)> = vec![
        ("target".into(), format!("{target} (flow after {step} steps)")),
        ("samples".into(), e.samples.to_string()),
        ("flow ESS".into(), pct(e.ess)),
        ("log Z (flow IS)".into(), format!("{:.4} +- {:.4}", e.log_z, e.log_z_se)),
    ];
    if let Some(z) = e.log_z_exact {
        rows.push(("log Z exact".into(), format!("{z:.4}")));
    }
    if let (Some(ess), Some(z), Some(se)) = (e.ess_ais, e.log_z_ais, e.log_z_ais_se) {
        rows.push(("flow+AIS ESS".into(), pct(ess)));
        rows.push(("log Z (flow+AIS)".into(), format!("{z:.4} +- {se:.4}")));
    }
    if let Some(a) = &e.ais_accept {
        rows.push(("AIS acceptance".into(), a.iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>().join(" ")));
    }
    if let Some(v) = e.forward_ess {
        rows.push(("forward ESS".into(), pct(v)));
    }
    if let (Some(v), Some(se)) = (e.mean_log_q_target_samples, e.mean_log_q_target_samples_se) {
        rows.push(("mean log q (target samples)".into(), format!("{v:.4} +- {se:.4}")));
    }
    if let Some(v) = e.test_mean_log_q {
        rows.push(("mean log q (test set)".into(), format!("{v:.4}")));
    }
    for b in &e.bias {
        let show = |s: &BiasStats| {
            let f = |v: f64| if b.relative { pct(v) } else { format!("{v:.4}") };
            format!("{} (std {}, {} runs)", f(s.bias), f(s.std), s.runs)
        };
        if let Some(s) = &b.flow {
            rows.push((format!("bias of {} (flow)", b.name), show(s)));
        }
        if let Some(s) = &b.ais {
            rows.push((format!("bias of {} (flow+AIS)", b.name), show(s)));
        }
    }
    rows.push(("seconds".into(), format!("{:.1}", e.seconds)));
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter().map(|(k, v)| format!("{k:<w$}  {v}\n")).collect()
}

#[cfg(test)]
mod tests {
    use bootflow_core::train::checkpoint::CHECKPOINT_FILE;

    use super::*;

    #[test]
    fn trains_then_estimates_and_writes_estimate_json() {
        let reg = Registry::with_builtins();
        let dir = std::env::temp_dir().join(format!("bootflow-cli-estimate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("run.toml");
        std::fs::write(
            &config,
            "seed = 1\n[target]\nname = \"gaussian\"\nmean = [1.0, -1.0]\nstd = [0.5, 2.0]\n\
             [flow]\nlayers = [{ type = \"affine\" }]\n[objective]\nname = \"fab\"\nform = \"p\"\n\
             kernel = \"rwm\"\nn_intermediate = 1\nbatch = 128\n[train]\nsteps = 300\nlr = 0.05\nlog_every = 100\n",
        )
        .unwrap();
        let out = dir.join("out");
        let targs = crate::cmd_train::TrainArgs { config, out: Some(out.clone()), resume: false, sets: vec![] };
        crate::cmd_train::run(&targs, &reg).unwrap();
        let args =
            EstimateArgs { flow: out.join(CHECKPOINT_FILE), samples: 4000, ais_steps: None, seed: 2, json: true };
        run(&args, &reg).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join(ESTIMATE_FILE)).unwrap()).unwrap();
        // An affine flow can equal this Gaussian exactly; 300 FAB steps bring it close.
        assert!(v["ess"].as_f64().unwrap() > 0.9, "{v:#}");
        assert!(v["ess_ais"].as_f64().unwrap() > 0.9, "{v:#}");
        assert_eq!(v["ais_accept"].as_array().unwrap().len(), 1);
        assert!(v["forward_ess"].as_f64().unwrap() > 0.9, "{v:#}");
        assert!(v["test_mean_log_q"].is_null() && v["step"] == 300 && v["target"] == "gaussian", "{v:#}");
        // No AIS when asked for none; the table names every figure it has.
        let args = EstimateArgs { flow: out.clone(), samples: 2000, ais_steps: Some(0), seed: 2, json: false };
        run(&args, &reg).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join(ESTIMATE_FILE)).unwrap()).unwrap();
        assert!(v["ess_ais"].is_null(), "{v:#}");
        let c = Checkpoint::read(&out).unwrap();
        let e: FlowEval = serde_json::from_value(v).unwrap();
        let t = table("gaussian", c.step, &e);
        for key in ["flow ESS", "log Z exact", "forward ESS", "mean log q (target samples)"] {
            assert!(t.contains(key), "{t}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_checkpoint_is_a_clear_error() {
        let reg = Registry::with_builtins();
        let args = EstimateArgs {
            flow: PathBuf::from("/nonexistent/run"),
            samples: 10,
            ais_steps: None,
            seed: 0,
            json: false,
        };
        let msg = format!("{:#}", run(&args, &reg).unwrap_err());
        assert!(msg.contains("checkpoint"), "{msg}");
    }
}
