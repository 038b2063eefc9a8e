//! `bootflow estimate --flow RUN/checkpoint.json`: rebuilds the trained flow and its target from
//! a run directory and reports the flow's ESS, log Z, forward ESS, test-set and test-function
//! figures (with AIS towards p when the run trained with FAB or `--ais-steps` asks for it);
//! writes `estimate.json` next to the checkpoint.

use std::path::PathBuf;

use anyhow::Result;
use bootflow_core::run::{EstimateRequest, estimate};
use bootflow_core::{BatchErrors, LogZBatches};
use bootflow_core::{BiasStats, FlowEval};
use bootflow_core::{Registry, warnings};

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
    /// The log Z accuracy protocol: K independent estimates of log Z from --batch-samples fresh
    /// samples each (with AIS when the estimate uses it), reported as the mean absolute error
    /// against the target's known log Z with its standard error.
    #[arg(long, value_name = "K")]
    pub log_z_batches: Option<usize>,
    /// Flow samples per estimate of --log-z-batches.
    #[arg(long, value_name = "M", default_value_t = 2000, requires = "log_z_batches")]
    pub batch_samples: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `bootflow estimate` with the components in `registry`.
pub fn run(args: &EstimateArgs, registry: &Registry) -> Result<()> {
    let req = EstimateRequest {
        flow: args.flow.clone(),
        samples: args.samples,
        ais_steps: args.ais_steps,
        seed: args.seed,
        log_z_batches: args.log_z_batches.map(|k| (k, args.batch_samples)),
    };
    let e = estimate(&req, registry)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e.to_json()?)?);
    } else {
        print!("{}", table(&e.target, e.step, &e.eval));
        if let Some(b) = &e.log_z_batches {
            print!("{}", batches_table(b));
        }
        crate::progress::print_warnings(&warnings::for_flow(&e.eval));
    }
    Ok(())
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
    if let Some(a) = e.mis_accept {
        rows.push(("MIS acceptance (expected)".into(), format!("{a:.3}")));
    }
    if let (Some(f), Some(sd)) = (e.f_q, e.signal_sd) {
        rows.push(("F_q = E_q[log q - log p~]".into(), format!("{f:.4}")));
        rows.push(("sd of log q - log p~".into(), format!("{sd:.4}")));
    }
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

/// The rows of the log Z protocol, in the layout of [`table`].
fn batches_table(b: &LogZBatches) -> String {
    let what = format!("{} estimates of {} samples", b.batches, b.batch_samples);
    let show = |e: &BatchErrors| format!("{:.5} +- {:.5} ({what})", e.mean_abs_error, e.se);
    let mut out = format!("{:<27}  {}\n", "mean |log Z error| (flow)", show(&b.flow));
    if let Some(a) = &b.ais {
        out += &format!("{:<27}  {}\n", "mean |log Z error| (+AIS)", show(a));
    }
    out
}

#[cfg(test)]
mod tests {
    use bootflow_core::run::estimate::ESTIMATE_FILE;
    use bootflow_core::{CHECKPOINT_FILE, Checkpoint};
    use serde_json::Value;

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
        let targs = crate::cmd_train::TrainArgs {
            config: Some(config),
            out: Some(out.clone()),
            resume: None,
            force: false,
            sets: vec![],
        };
        crate::cmd_train::run(&targs, &reg).unwrap();
        let args = EstimateArgs {
            flow: out.join(CHECKPOINT_FILE),
            samples: 4000,
            ais_steps: None,
            seed: 2,
            log_z_batches: Some(4),
            batch_samples: 500,
            json: true,
        };
        run(&args, &reg).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join(ESTIMATE_FILE)).unwrap()).unwrap();
        // An affine flow can equal this Gaussian exactly; 300 FAB steps bring it close.
        assert!(v["ess"].as_f64().unwrap() > 0.9, "{v:#}");
        assert!(v["ess_ais"].as_f64().unwrap() > 0.9, "{v:#}");
        assert_eq!(v["ais_accept"].as_array().unwrap().len(), 1);
        assert!(v["forward_ess"].as_f64().unwrap() > 0.9, "{v:#}");
        assert!(v["test_mean_log_q"].is_null() && v["step"] == 300 && v["target"] == "gaussian", "{v:#}");
        // Four estimates each, flow alone and with AIS, all close to the exact log Z = 0.
        let b: LogZBatches = serde_json::from_value(v["log_z_batches"].clone()).unwrap();
        let ais = b.ais.as_ref().unwrap();
        assert!(b.flow.estimates.len() == 4 && ais.estimates.len() == 4, "{b:?}");
        assert!(b.flow.mean_abs_error < 0.05 && ais.mean_abs_error < 0.05, "{b:?}");
        assert!(batches_table(&b).contains("mean |log Z error| (+AIS)"));
        // No AIS when asked for none; the table names every figure it has.
        let args = EstimateArgs {
            flow: out.clone(),
            samples: 2000,
            ais_steps: Some(0),
            seed: 2,
            log_z_batches: None,
            batch_samples: 2000,
            json: false,
        };
        run(&args, &reg).unwrap();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(out.join(ESTIMATE_FILE)).unwrap()).unwrap();
        assert!(v["ess_ais"].is_null() && v.get("log_z_batches").is_none(), "{v:#}");
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
            samples: 1000,
            ais_steps: None,
            seed: 0,
            log_z_batches: None,
            batch_samples: 2000,
            json: false,
        };
        let msg = format!("{:#}", run(&args, &reg).unwrap_err());
        assert!(msg.contains("--flow /nonexistent/run: no such file"), "{msg}");
    }
}
