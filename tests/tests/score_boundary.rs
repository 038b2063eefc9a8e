//! The fast path gradient through the real plugin libraries: every layer kind's
//! `pass_with_score`, loaded across the C boundary, against the opposite-pass reference
//! (`testing::check_bijection`, 1e-10 relative), and whole flows of those layers: the reverse-KL
//! fast path gradient against the standard one, the forward-KL one against its reference.

use bootflow_core::{Batch, FlowSpec, LayerContext, Registry, parse_config, rng, testing};
use bootflow_tests::built;
use serde_json::{Value, json};

fn registry() -> Registry {
    let mut reg = Registry::with_builtins();
    for lib in ["bootflow_flows", "bootflow_realnvp"] {
        let path = built::library(lib);
        let plugin = bootflow_core::plugin::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        plugin.register_into(&mut reg).unwrap();
    }
    reg
}

/// One entry of each kind the libraries define (dimension 6, smooth activations).
fn entries() -> Vec<Value> {
    vec![
        json!({"type": "maf", "hidden": [8], "activation": "tanh", "order": "random"}),
        json!({"type": "iaf", "hidden": [8, 6], "activation": "tanh"}),
        json!({"type": "spline", "couplings": 2, "bins": 5, "bound": 2.5, "hidden": [8], "activation": "tanh"}),
        json!({"type": "realnvp", "couplings": 2, "hidden": [8], "activation": "tanh"}),
        json!({"type": "permute"}),
        json!({"type": "actnorm"}),
    ]
}

const DIM: usize = 6;

#[test]
fn every_plugin_layer_carries_the_score_through_the_boundary() {
    let reg = registry();
    let mut r = rng::stream(31, 0);
    for entry in entries() {
        let name = entry["type"].as_str().unwrap().to_string();
        let mut cfg = entry.clone();
        cfg.as_object_mut().unwrap().remove("type");
        let layers = reg.bijection(&name, &LayerContext { dim: DIM, index: 0, seed: 4 }, &cfg).unwrap();
        for mut l in layers {
            assert!(format!("{:?}", reg.bijections[&name].source).contains("Plugin"), "{name} is not a plugin layer");
            testing::randomise_params(l.as_mut(), 0.3, &mut r).unwrap();
            let z = testing::random_batch(DIM, 7, &mut r);
            // Fails on a score more than testing::SCORE_TOL (1e-10) from the reference.
            testing::check_bijection(l.as_mut(), &z, 1e-6, 1e-10).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

#[test]
fn fast_path_gradients_of_a_plugin_flow_equal_the_standard_ones() {
    let reg = registry();
    let spec: FlowSpec = parse_config("flow", &json!({ "layers": entries(), "shard": 5 })).unwrap();
    let mut flow = reg.flow(DIM, &spec, 8).unwrap();
    let mut r = rng::stream(32, 0);
    let mut p = flow.params();
    rng::fill_normal(&mut r, &mut p);
    p.iter_mut().for_each(|v| *v *= 0.2);
    flow.set_params(&p).unwrap();
    let n = 12;

    // Reverse KL: (dx/dtheta)^T (grad log q - grad log p) with the score from the sampling pass
    // against the score from an inverse pass (the standard path gradient).
    let z = flow.sample_base(n, &mut r);
    let g_p = testing::random_batch(DIM, n, &mut r);
    let fast = flow.forward_scored(&z).unwrap();
    let fast_grad = flow.backprop_scored(&fast, &(&fast.score - &g_p)).unwrap();
    let path = flow.path_from_base(z).unwrap();
    let (_, g_x) = flow.grad_x_log_q(&path.x).unwrap();
    let standard = flow.backprop_path(&path, &(g_x - &g_p), &vec![0.0; n]).unwrap();
    let rev = testing::rel_error(&fast_grad, &standard);
    assert!(rev < 1e-10 && fast_grad.iter().any(|v| *v != 0.0), "reverse: {rev}");

    // Forward KL: the inverse scored pass against the reference with a second, forward pass.
    let x = testing::random_batch(DIM, n, &mut r);
    let score: Batch = x.map(|v| -v * v * v + 2.0 * v);
    let inv = flow.inverse_scored(&x, &score).unwrap();
    let g_z = (&inv.score - flow.base_grad(&inv.out)) / n as f64;
    let fwd_grad = flow.backprop_scored(&inv, &g_z).unwrap();
    let reference = testing::forward_kl_path_reference(&flow, &x, &score).unwrap();
    let fwd = testing::rel_error(&fwd_grad, &reference);
    assert!(fwd < 1e-10 && fwd_grad.iter().any(|v| *v != 0.0), "forward: {fwd}");
}
