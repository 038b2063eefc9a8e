//! Reverse-KL training steps with the reparameterisation gradient (`g3`), the standard path
//! gradient (`path`: a second, inverse pass for `grad_x log q`) and the fast path gradient
//! (`fast-path`: the score carried through the sampling pass), back to back on the same flow.
//!
//! Rows: the phi^4 L = 8 spline flow of `scripts/phi4-l8-g3.toml` (batch 512); the Many Well
//! 16-D spline flow of `scripts/manywell16-fab.toml` (batch 512); RealNVP on Many Well 16-D,
//! 8 couplings x 2 x 256, batch 1024 (the peer timing's row).
//!
//! `cargo bench -p bootflow-flows --bench path_gradients [-- ROW ...] [--repeat N] [--threads T]`
//! prints the median milliseconds per step (training step: gradient and Adam update) of each
//! estimator and the ratios the README's performance table quotes (default 15 timed steps
//! after 3 warm-up steps, 2 threads).

use std::path::Path;
use std::time::Instant;

use serde_json::{Value, json};

use bootflow_core::run::spec::load_train_config;
use bootflow_core::{Component, FlowSpec, Registry, TrainConfig, Trainer, parse_config};

const WARMUP: usize = 3;
const ESTIMATORS: [&str; 3] = ["g3", "path", "fast-path"];

/// One row: its name, target, flow and batch.
struct Row {
    name: &'static str,
    target: Component,
    flow: FlowSpec,
    batch: usize,
}

fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    bootflow_flows::register(&mut reg).expect("flows registers");
    bootflow_realnvp::register(&mut reg).expect("realnvp registers");
    bootflow_manywell::register(&mut reg).expect("manywell registers");
    bootflow_phi4::register(&mut reg).expect("phi4 registers");
    reg
}

/// The target and flow of a shipped config.
fn from_script(name: &'static str, file: &str, batch: usize) -> Row {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts").join(file);
    let cfg = load_train_config(&path, &[]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Row { name, target: cfg.target, flow: cfg.flow, batch }
}

fn rows() -> Vec<Row> {
    let realnvp = json!({"layers": [{"type": "realnvp", "couplings": 8, "hidden": [256, 256], "mask": "halves"}]});
    vec![
        from_script("phi4-l8-spline", "phi4-l8-g3.toml", 512),
        from_script("manywell16-spline", "manywell16-fab.toml", 512),
        Row {
            name: "realnvp-d16-b1024",
            target: Component { name: "manywell".into(), params: json!({"dim": 16}).as_object().unwrap().clone() },
            flow: parse_config("flow", &realnvp).expect("flow spec"),
            batch: 1024,
        },
    ]
}

/// Median milliseconds of `repeat` reverse-KL steps with `estimator` after the warm-up.
fn time(reg: &Registry, row: &Row, estimator: &str, repeat: usize) -> f64 {
    let target = reg.target(&row.target.name, &Value::Object(row.target.params.clone())).expect("target");
    let objective = Component {
        name: "kl".into(),
        params: json!({"estimator": estimator, "batch": row.batch}).as_object().unwrap().clone(),
    };
    let train = TrainConfig { lr: 1e-4, log_every: u64::MAX, ..Default::default() };
    let mut t = Trainer::new(reg, target, 0, &row.flow, &objective, &train).expect("trainer");
    for _ in 0..WARMUP {
        t.step_once().expect("step");
    }
    let mut ms: Vec<f64> = (0..repeat.max(1))
        .map(|_| {
            let start = Instant::now();
            t.step_once().expect("step");
            1e3 * start.elapsed().as_secs_f64()
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

fn main() {
    bootflow_core::keep_freed_memory();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let (mut names, mut threads, mut repeat) = (Vec::new(), 2, 15);
    while let Some(a) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok()).expect("a positive number after the flag");
        match a.as_str() {
            "--repeat" => repeat = value(),
            "--threads" => threads = value(),
            _ => names.push(a),
        }
    }
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("thread pool");
    let reg = registry();
    println!("median ms per step ({threads} threads, {repeat} timed steps)");
    println!("| row | g3 | path | fast-path | fast-path / path | fast-path / g3 |");
    println!("|---|---|---|---|---|---|");
    for row in rows().iter().filter(|r| names.is_empty() || names.iter().any(|n| r.name.contains(n.as_str()))) {
        let ms: Vec<f64> = ESTIMATORS.iter().map(|e| pool.install(|| time(&reg, row, e, repeat))).collect();
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} |",
            row.name,
            ms[0],
            ms[1],
            ms[2],
            ms[2] / ms[1],
            ms[2] / ms[0]
        );
    }
}
