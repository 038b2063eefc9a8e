//! Evaluates the flow of a finished `bootflow train` run: flow ESS (Kish, as a fraction) over 20
//! batches of 1,000 samples (mean and standard deviation) and the mean `log q` on 10,000
//! target samples. Plugins are loaded from the given directory, as the CLI does.
//!
//! `cargo run --release -p bootflow-flows --example eval_run -- RUN_DIR PLUGIN_DIR`

use std::path::{Path, PathBuf};

use bootflow_core::Checkpoint;
use bootflow_core::RunConfig;
use bootflow_core::kish_ess;
use bootflow_core::plugin::{discover, search_path};
use bootflow_core::{Registry, Result, rng};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (run, plugins) = match args.as_slice() {
        [_, run, plugins] => (PathBuf::from(run), PathBuf::from(plugins)),
        _ => return Err(bootflow_core::Error::Config("usage: eval_run RUN_DIR PLUGIN_DIR".into())),
    };
    let mut reg = Registry::with_builtins();
    discover(&search_path(&[plugins])).register_all(&mut reg);
    let text = std::fs::read_to_string(run.join("config.toml")).map_err(|e| bootflow_core::Error::io("config", e))?;
    let cfg: RunConfig = toml::from_str(&text).map_err(|e| bootflow_core::Error::Config(e.to_string()))?;
    let ck = Checkpoint::read(Path::new(&run))?;
    let target = reg.target(&cfg.target.name, &cfg.target.config())?;
    let mut flow = reg.flow(ck.flow.dim, &ck.flow.spec, ck.flow.seed)?;
    flow.set_params(&ck.params)?;
    let mut r = rng::stream(12345, 0);
    let mut ess = Vec::new();
    for _ in 0..20 {
        let (x, log_q) = flow.sample_with_log_q(1000, &mut r)?;
        let mut log_p = vec![0.0; 1000];
        target.log_prob_batch(&x, &mut log_p)?;
        let log_w: Vec<f64> = log_p.iter().zip(&log_q).map(|(p, q)| p - q).collect();
        ess.push(kish_ess(&log_w).unwrap_or(f64::NAN));
    }
    let mean = ess.iter().sum::<f64>() / 20.0;
    let sd = (ess.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / 19.0).sqrt();
    let xs = target.sample(10_000, &mut r)?;
    let lq = flow.log_q(&xs)?;
    let mean_lq = lq.iter().sum::<f64>() / lq.len() as f64;
    println!(
        "{} ess {:.4} (sd {:.4}) mean_log_q {:.3} steps {} seconds {:.1}",
        run.display(),
        mean,
        sd,
        mean_lq,
        ck.step,
        ck.elapsed_seconds
    );
    Ok(())
}
