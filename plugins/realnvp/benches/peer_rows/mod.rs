//! The rows of the PyTorch peer timing (`benches/peer/torch_step_bench.py`) and the trainer of each: flow,
//! objective and Many Well target as the peer script builds them.

use serde_json::json;

use bootflow_core::Registry;
use bootflow_core::Trainer;
use bootflow_core::{Component, TrainConfig};
use bootflow_core::{FlowSpec, parse_config};

/// One row of the comparison: step kind, dimension, couplings, hidden width, batch.
pub struct Row {
    pub name: &'static str,
    pub fab: bool,
    pub dim: usize,
    pub couplings: usize,
    pub hidden: usize,
    pub batch: usize,
}

pub const ROWS: [Row; 6] = [
    Row { name: "kl-d16-b1024", fab: false, dim: 16, couplings: 8, hidden: 256, batch: 1024 },
    Row { name: "fab-d16-b1024", fab: true, dim: 16, couplings: 10, hidden: 160, batch: 1024 },
    Row { name: "kl-d16-b128", fab: false, dim: 16, couplings: 8, hidden: 256, batch: 128 },
    Row { name: "fab-d16-b128", fab: true, dim: 16, couplings: 10, hidden: 256, batch: 128 },
    Row { name: "kl-d2-b128", fab: false, dim: 2, couplings: 15, hidden: 80, batch: 128 },
    Row { name: "fab-d2-b128", fab: true, dim: 2, couplings: 15, hidden: 80, batch: 128 },
];

pub fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    bootflow_realnvp::register(&mut reg).expect("realnvp registers");
    bootflow_hmc::register(&mut reg).expect("hmc registers");
    bootflow_manywell::register(&mut reg).expect("manywell registers");
    reg
}

fn objective(row: &Row) -> Component {
    let cfg = if row.fab {
        json!({"form": "p", "batch": row.batch, "n_intermediate": 2, "kernel": "hmc", "adapt": false,
               "kernel_config": {"n_leapfrog": 5, "step_size": 0.1}})
    } else {
        json!({"estimator": "g3", "batch": row.batch})
    };
    let name = if row.fab { "fab" } else { "kl" };
    Component { name: name.into(), params: cfg.as_object().expect("an object").clone() }
}

/// A fresh trainer of `row` with conditioners in `precision` (`f64` or `mixed`), shards of
/// `shard` columns (the flow's default when `None`) and Adam's learning rate `lr` (the peer's
/// 1e-4 for timings).
pub fn trainer(reg: &Registry, row: &Row, shard: Option<usize>, precision: &str, lr: f64) -> Trainer {
    let target = reg.target("manywell", &json!({"dim": row.dim})).expect("manywell target");
    let layers = json!({"layers": [{"type": "realnvp", "couplings": row.couplings,
                                    "hidden": [row.hidden, row.hidden], "mask": "halves",
                                    "precision": precision}]});
    let mut spec: FlowSpec = parse_config("flow", &layers).expect("flow spec");
    spec.shard = shard;
    let train = TrainConfig { lr, log_every: u64::MAX, ..Default::default() };
    Trainer::new(reg, target, 0, &spec, &objective(row), &train).expect("trainer")
}
