//! Tests of whole flows built from `realnvp` entries.

use serde_json::json;

use bootflow_core::{Flow, rng, testing};
use bootflow_core::{FlowSpec, parse_config};

use super::*;

fn registry() -> Registry {
    let mut r = Registry::new();
    register(&mut r).unwrap();
    r
}

fn flow(dim: usize, layers: serde_json::Value, seed: u64) -> Result<Flow> {
    let spec: FlowSpec = parse_config("flow", &json!({ "layers": layers, "shard": 4 }))?;
    registry().flow(dim, &spec, seed)
}

#[test]
fn flow_gradients_match_finite_differences() {
    for (dim, mask) in [(2, "halves"), (16, "random")] {
        let cfg = json!([{"type": "realnvp", "couplings": 4, "hidden": [9, 6], "activation": "tanh", "mask": mask}]);
        let mut f = flow(dim, cfg, 21).unwrap();
        let mut r = rng::stream(22, 0);
        let mut p = f.params();
        rng::fill_normal(&mut r, &mut p);
        p.iter_mut().for_each(|v| *v *= 0.3);
        f.set_params(&p).unwrap();
        let x = testing::random_batch(dim, 7, &mut r);
        let w: Vec<f64> = (0..7).map(|i| 0.5 + 0.25 * i as f64).collect();
        let rep = testing::check_flow(&mut f, &x, &w, 1e-6).unwrap_or_else(|e| panic!("dim {dim}: {e}"));
        assert!(rep.grad_theta > 0.0 && rep.path > 0.0, "nothing measured: {rep:?}");
    }
}

#[test]
fn fresh_flow_is_the_identity_with_base_log_q() {
    let cfg = json!([{"type": "realnvp", "couplings": 5, "hidden": [16], "mask": "checkerboard", "lattice": 4}]);
    let f = flow(16, cfg, 3).unwrap();
    assert_eq!(f.layers().len(), 5);
    let mut r = rng::stream(4, 0);
    let x = testing::random_batch(16, 9, &mut r);
    assert_eq!(f.log_q(&x).unwrap(), f.base_log_prob(&x));
    let (y, lq) = f.push_forward(&x).unwrap();
    assert_eq!(y, x);
    assert_eq!(lq, f.base_log_prob(&x));
}

#[test]
fn same_config_and_seed_rebuild_the_same_flow() {
    let cfg = json!([{"type": "realnvp", "couplings": 4, "hidden": [8], "mask": "random", "init_scale": 0.5}]);
    let a = flow(10, cfg.clone(), 7).unwrap();
    let b = flow(10, cfg.clone(), 7).unwrap();
    let c = flow(10, cfg, 8).unwrap();
    assert_eq!(a.params(), b.params());
    assert_ne!(a.params(), c.params());
    let mut r = rng::stream(5, 0);
    let x = testing::random_batch(10, 6, &mut r);
    // init_scale > 0: the flow is not the identity, and the rebuilt one agrees on every value.
    assert_ne!(a.log_q(&x).unwrap(), a.base_log_prob(&x));
    assert_eq!(a.log_q(&x).unwrap(), b.log_q(&x).unwrap());
    // Couplings within an entry differ: each has its own stream.
    assert_ne!(a.layers()[0].params(), a.layers()[2].params());
}

#[test]
fn config_errors_are_reported() {
    let bad = [
        (json!([{"type": "realnvp", "width": 3}]), "width"),
        (json!([{"type": "realnvp", "mask": "checkerboard", "lattice": 3}]), "lattice 3 x 3"),
        (json!([{"type": "realnvp", "activation": "gelu"}]), "gelu"),
        (json!([{"type": "realnvp", "couplings": 0}]), "couplings"),
        (json!([{"type": "realnvp", "scale_bound": -1.0}]), "scale_bound"),
        (json!([{"type": "realnvp", "hidden": [4, 0]}]), "hidden"),
        (json!([{"type": "realnvp", "precision": "f32"}]), "precision"),
        (json!([{"type": "realnvp", "precision": 32}]), "precision"),
    ];
    for (cfg, needle) in bad {
        let msg = flow(16, cfg.clone(), 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(needle) && msg.contains("flow.layers[0]"), "{cfg}: '{msg}'");
    }
    assert!(flow(1, json!([{"type": "realnvp"}]), 1).is_err());
}

#[test]
fn parameter_count_matches_the_widths() {
    let cfg = json!([{"type": "realnvp", "couplings": 2, "hidden": [256, 256]}]);
    let f = flow(16, cfg, 1).unwrap();
    // 8 -> 256 -> 256 -> 16, weights and biases, per coupling.
    let per = 8 * 256 + 256 + 256 * 256 + 256 + 256 * 16 + 16;
    assert_eq!(f.n_params(), 2 * per);
}

fn layers() -> serde_json::Value {
    json!([{"type": "realnvp", "couplings": 3, "hidden": [16, 16], "init_scale": 0.5}])
}

/// A seeded run of reverse-KL and FAB steps through the `Trainer`, on a pool of `threads`.
fn trained_params(threads: usize, objective: serde_json::Value) -> Vec<f64> {
    use bootflow_core::Trainer;
    use bootflow_core::{Component, TrainConfig};
    let mut reg = Registry::with_builtins();
    register(&mut reg).unwrap();
    // Batch 64 in shards of 16: four shards whose gradients are summed across threads.
    let spec: FlowSpec = parse_config("flow", &json!({"layers": layers(), "shard": 16})).unwrap();
    let target = reg.target("gmm5", &json!({})).unwrap();
    let obj: Component = serde_json::from_value(objective).unwrap();
    let train = TrainConfig { lr: 1e-2, log_every: u64::MAX, ..Default::default() };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let mut t = Trainer::new(&reg, target, 5, &spec, &obj, &train).unwrap();
        t.run_for(4).unwrap();
        t.flow().params()
    })
}

#[test]
fn training_gives_the_same_bits_on_one_and_two_threads() {
    for objective in [
        json!({"name": "kl", "estimator": "g3", "batch": 64}),
        json!({"name": "kl", "estimator": "fast-path", "batch": 64}),
        json!({"name": "fab", "form": "p", "batch": 64, "kernel": "rwm"}),
        json!({"name": "fab", "form": "p2q", "batch": 64, "kernel": "rwm"}),
    ] {
        let one = trained_params(1, objective.clone());
        let two = trained_params(2, objective.clone());
        assert_eq!(one, two, "{objective}");
        let initial = flow(2, layers(), 5).unwrap().params();
        assert_ne!(one, initial, "{objective}: training changed nothing");
    }
}
