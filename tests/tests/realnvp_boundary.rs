//! RealNVP loaded from its real shared library: every vector–Jacobian product and every `Flow`
//! gradient checked against central finite differences through the C boundary.

use bootflow_core::{Bijection, Registry, rng, testing};
use bootflow_core::{FlowSpec, LayerContext, parse_config};
use bootflow_tests::built;
use serde_json::{Value, json};

fn registry() -> Registry {
    let path = built::library("bootflow_realnvp");
    let plugin = bootflow_core::plugin::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reg = Registry::with_builtins();
    plugin.register_into(&mut reg).unwrap();
    reg
}

/// Couplings with random non-zero parameters. A smooth activation keeps the finite differences
/// away from ReLU's kink; the scale keeps the tanh-bounded log-scales inside their bound.
fn layers(reg: &Registry, dim: usize, cfg: Value, seed: u64) -> Vec<Box<dyn Bijection>> {
    let mut ls = reg.bijection("realnvp", &LayerContext { dim, index: 0, seed }, &cfg).unwrap();
    let mut r = rng::stream(seed, 99);
    for l in &mut ls {
        testing::randomise_params(l.as_mut(), 0.15, &mut r).unwrap();
    }
    ls
}

fn check_layers(dim: usize, cfg: Value) {
    let reg = registry();
    let mut r = rng::stream(dim as u64, 1);
    for mut l in layers(&reg, dim, cfg, 5) {
        let z = testing::random_batch(dim, 7, &mut r);
        let rep = testing::check_bijection(l.as_mut(), &z, 1e-6, 1e-10).unwrap();
        assert!(rep.forward_params > 0.0 && rep.inverse_params > 0.0, "nothing measured: {rep:?}");
    }
}

#[test]
fn couplings_in_two_dimensions() {
    check_layers(2, json!({"couplings": 2, "hidden": [8, 8], "activation": "tanh"}));
}

#[test]
fn couplings_in_sixteen_dimensions_with_random_masks() {
    check_layers(16, json!({"couplings": 2, "hidden": [16, 16], "activation": "tanh", "mask": "random"}));
}

#[test]
fn checkerboard_couplings_on_an_8x8_lattice() {
    check_layers(
        64,
        json!({"couplings": 2, "hidden": [16], "activation": "tanh", "mask": "checkerboard", "lattice": 8}),
    );
}

#[test]
fn flow_gradients_through_the_boundary() {
    let reg = registry();
    for (dim, cfg) in [
        (2, json!({"type": "realnvp", "couplings": 4, "hidden": [8], "activation": "tanh"})),
        (16, json!({"type": "realnvp", "couplings": 3, "hidden": [16], "activation": "tanh", "mask": "random"})),
        (
            64,
            json!({"type": "realnvp", "couplings": 2, "hidden": [8], "activation": "tanh", "mask": "checkerboard", "lattice": 8}),
        ),
    ] {
        let spec: FlowSpec = parse_config("flow", &json!({ "layers": [{"type": "affine"}, cfg], "shard": 3 })).unwrap();
        let mut flow = reg.flow(dim, &spec, 3).unwrap();
        let mut r = rng::stream(4, 0);
        let mut p = flow.params();
        rng::fill_normal(&mut r, &mut p);
        p.iter_mut().for_each(|v| *v *= 0.15);
        flow.set_params(&p).unwrap();
        let x = testing::random_batch(dim, 5, &mut r);
        let w = [0.3, -1.0, 2.0, 0.7, 1.1];
        let rep = testing::check_flow(&mut flow, &x, &w, 1e-6).unwrap_or_else(|e| panic!("dim {dim}: {e}"));
        assert!(rep.grad_theta > 0.0 && rep.path > 0.0, "dim {dim}: nothing measured: {rep:?}");
    }
}

#[test]
fn fresh_flow_is_the_identity_and_log_q_is_the_base_density() {
    let reg = registry();
    let spec: FlowSpec =
        parse_config("flow", &json!({ "layers": [{"type": "realnvp", "couplings": 4, "hidden": [32, 32]}] })).unwrap();
    let flow = reg.flow(16, &spec, 9).unwrap();
    let mut r = rng::stream(6, 0);
    let z = testing::random_batch(16, 10, &mut r);
    let (x, log_q) = flow.push_forward(&z).unwrap();
    assert_eq!(x, z);
    assert_eq!(log_q, flow.base_log_prob(&z));
    assert_eq!(flow.log_q(&z).unwrap(), flow.base_log_prob(&z));
}
