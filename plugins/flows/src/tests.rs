//! Checks of every layer of this crate: VJPs against finite differences, log-determinants
//! against the determinant of a finite-difference Jacobian, autoregressive structure, and a
//! whole mixed flow.

use nalgebra::DMatrix;
use serde_json::json;

use bootflow_core::{Batch, Flow, Rng, rng, testing};
use bootflow_core::{FlowSpec, parse_config};

use super::*;

/// Above 5 columns, so the conditioners' backward products take the strided GEMM path.
const BATCH: usize = 7;

fn registry() -> Registry {
    let mut r = Registry::with_builtins();
    register(&mut r).unwrap();
    r
}

fn flow(dim: usize, layers: serde_json::Value, seed: u64) -> Result<Flow> {
    let spec: FlowSpec = parse_config("flow", &json!({ "layers": layers, "shard": 4 }))?;
    registry().flow(dim, &spec, seed)
}

/// The layers of one entry with random parameters of standard deviation `scale`.
fn layers(dim: usize, entry: serde_json::Value, scale: f64, r: &mut Rng) -> Vec<Box<dyn Bijection>> {
    let name = entry["type"].as_str().unwrap().to_string();
    let mut cfg = entry.clone();
    cfg.as_object_mut().unwrap().remove("type");
    let ctx = LayerContext { dim, index: 0, seed: 11 };
    let mut out = registry().bijection(&name, &ctx, &cfg).unwrap();
    for l in &mut out {
        testing::randomise_params(l.as_mut(), scale, r).unwrap();
    }
    out
}

/// Smooth activations only: finite differences never straddle a ReLU kink. Parameter scales
/// keep |raw log-scales| of order 1, in the curved part of tanh but not saturated.
fn entries() -> Vec<(usize, serde_json::Value, f64)> {
    vec![
        (1, json!({"type": "maf", "hidden": [5], "activation": "tanh"}), 0.5),
        (2, json!({"type": "maf", "hidden": [], "order": "reversed"}), 0.5),
        (5, json!({"type": "maf", "hidden": [9, 7], "activation": "tanh", "order": "random", "blocks": 2}), 0.4),
        (16, json!({"type": "maf", "hidden": [12], "activation": "silu", "order": "random"}), 0.25),
        (1, json!({"type": "iaf", "hidden": [5], "activation": "tanh"}), 0.5),
        (5, json!({"type": "iaf", "hidden": [9, 7], "activation": "elu", "order": "random", "blocks": 2}), 0.4),
        (16, json!({"type": "iaf", "hidden": [12], "activation": "tanh"}), 0.25),
        (3, json!({"type": "actnorm"}), 0.5),
        (6, json!({"type": "permute"}), 0.0),
        (6, json!({"type": "permute", "order": "reverse"}), 0.0),
    ]
}

#[test]
fn every_layer_passes_the_bijection_check() {
    let mut r = rng::stream(1, 0);
    for (dim, entry, scale) in entries() {
        for mut layer in layers(dim, entry.clone(), scale, &mut r) {
            let z = testing::random_batch(dim, BATCH, &mut r);
            let rep = testing::check_bijection(layer.as_mut(), &z, 1e-6, 1e-10)
                .unwrap_or_else(|e| panic!("{entry} dim {dim}: {e}"));
            if layer.n_params() > 0 {
                assert!(rep.forward_params > 0.0 && rep.inverse_params > 0.0, "{entry}: nothing measured {rep:?}");
            }
        }
    }
}

/// A spline's second derivative jumps at its knots, so a central difference whose step (in
/// the input, or in a knot moved by a parameter step) crosses a knot measures the jump, not the
/// derivative: spline checks redraw their points until every active coordinate is 1e-3 (100
/// steps) from every knot. Inputs are scaled by 1.5 so that some fall outside `[-bound, bound]`.
/// Parameter scales keep bins moderate: the inverse's third derivative grows like powers of
/// 1/f', and where f' ~ 0.02 the O(h^2) truncation error of the differences alone exceeds 1e-6
/// (seen at scale 0.4 on dim 5; the analytic value was confirmed by the h^2 convergence of the
/// differences, 9e-6 at h = 1e-4, 9e-8 at 1e-5).
#[test]
fn spline_couplings_pass_the_bijection_check() {
    let mut r = rng::stream(6, 0);
    for (dim, cfg, scale) in [
        (2, json!({"couplings": 2, "bins": 4, "bound": 2.0, "hidden": [6], "activation": "tanh"}), 0.5),
        (5, json!({"couplings": 2, "bins": 8, "bound": 2.5, "hidden": [8, 6], "activation": "tanh"}), 0.25),
        (16, json!({"couplings": 2, "bins": 6, "bound": 3.0, "hidden": [10], "activation": "silu"}), 0.15),
        (
            16,
            json!({"couplings": 2, "bins": 6, "bound": 3.0, "hidden": [10], "activation": "tanh",
                   "mask": "checkerboard", "lattice": 4}),
            0.15,
        ),
        (6, json!({"couplings": 1, "bins": 7, "bound": 2.5, "hidden": [], "mask": "none"}), 0.4),
    ] {
        let cfg = SplineConfig::parse(&cfg).unwrap();
        for mut layer in build_spline(dim, &cfg, 9).unwrap() {
            testing::randomise_params(&mut layer, scale, &mut r).unwrap();
            let z = (0..100)
                .map(|_| testing::random_batch(dim, BATCH, &mut r) * 1.5)
                .find(|z| crate::spline::knot_margin(&layer, z) > 1e-3)
                .expect("points away from the knots");
            let b = cfg.bound;
            assert!(z.iter().any(|v| v.abs() > b) && z.iter().any(|v| v.abs() < b));
            let rep =
                testing::check_bijection(&mut layer, &z, 1e-6, 1e-10).unwrap_or_else(|e| panic!("dim {dim}: {e}"));
            assert!(rep.forward_params > 0.0 && rep.inverse_params > 0.0, "nothing measured {rep:?}");
        }
    }
}

/// Central-difference Jacobian of the layer's pass at one point.
fn fd_jacobian(layer: &dyn Bijection, v: &[f64], inverse: bool) -> DMatrix<f64> {
    let d = v.len();
    let h = 1e-6;
    let eval = |p: &[f64]| {
        let b = Batch::from_column_slice(d, 1, p);
        let out = if inverse { layer.inverse(&b, false) } else { layer.forward(&b, false) };
        out.unwrap().out
    };
    let mut j = DMatrix::zeros(d, d);
    for c in 0..d {
        let (mut a, mut b) = (v.to_vec(), v.to_vec());
        a[c] += h;
        b[c] -= h;
        j.set_column(c, &((eval(&a) - eval(&b)) / (2.0 * h)).column(0));
    }
    j
}

/// log|det| of each pass equals that of its finite-difference Jacobian (dim 4). Central
/// differences with h = 1e-6 err by O(h^2) ~ 1e-12 plus rounding ~ 1e-16 / h = 1e-10 per entry,
/// so 1e-7 on the log-determinant is a margin of 1000.
#[test]
fn log_det_matches_the_finite_difference_jacobian() {
    let mut r = rng::stream(2, 0);
    let cases = [
        json!({"type": "maf", "hidden": [8], "activation": "tanh", "order": "random"}),
        json!({"type": "iaf", "hidden": [8, 8], "activation": "tanh"}),
        json!({"type": "spline", "couplings": 2, "bins": 5, "bound": 2.0, "hidden": [8], "activation": "tanh"}),
        json!({"type": "spline", "bins": 5, "bound": 2.0, "hidden": [], "mask": "none"}),
        json!({"type": "actnorm"}),
        json!({"type": "permute"}),
    ];
    for entry in cases {
        for layer in layers(4, entry.clone(), 0.5, &mut r) {
            let z = testing::random_batch(4, 3, &mut r);
            for inverse in [false, true] {
                let pass = if inverse { layer.inverse(&z, false) } else { layer.forward(&z, false) }.unwrap();
                for (c, ld) in pass.log_det.iter().enumerate() {
                    let jac = fd_jacobian(layer.as_ref(), z.column(c).as_slice(), inverse);
                    let fd = jac.determinant().abs().ln();
                    assert!((fd - ld).abs() < 1e-7, "{entry} inverse={inverse}: {fd} vs {ld}");
                }
            }
        }
    }
}

/// In the layer's order, output `k` does not move with input `m > k`: the finite-difference
/// Jacobian, permuted into that order, is exactly 0 above the diagonal, in both directions,
/// and is not diagonal (the conditioner is used).
#[test]
fn autoregressive_jacobians_are_triangular_in_their_order() {
    let mut r = rng::stream(3, 0);
    for kind in [Kind::Maf, Kind::Iaf] {
        let cfg: AutoregressiveConfig =
            parse_config("x", &json!({"order": "random", "hidden": [10, 10], "activation": "tanh"})).unwrap();
        let mut layer = build_autoregressive(kind, 6, &cfg, 5).unwrap().remove(0);
        testing::randomise_params(&mut layer, 0.5, &mut r).unwrap();
        let order = layer.order().to_vec();
        assert_ne!(order, (0..6).collect::<Vec<_>>());
        let z = testing::random_batch(6, 1, &mut r);
        for inverse in [false, true] {
            let j = fd_jacobian(&layer, z.as_slice(), inverse);
            let mut below = 0.0f64;
            for a in 0..6 {
                for b in 0..6 {
                    let v = j[(order[a], order[b])];
                    if b > a {
                        assert_eq!(v, 0.0, "{kind:?} inverse={inverse}: d out {} / d in {}", order[a], order[b]);
                    } else if b < a {
                        below = below.max(v.abs());
                    }
                }
            }
            assert!(below > 1e-3, "{kind:?}: no dependence below the diagonal");
        }
    }
}

#[test]
fn fresh_layers_are_the_identity() {
    let mut r = rng::stream(4, 0);
    let z = testing::random_batch(5, 6, &mut r) * 2.0;
    for entry in [json!({"type": "maf", "blocks": 2}), json!({"type": "iaf"}), json!({"type": "spline", "bins": 6})] {
        let f = flow(5, json!([entry.clone()]), 3).unwrap();
        let (x, lq) = f.push_forward(&z).unwrap();
        assert!((&x - &z).amax() < 1e-14, "{entry}");
        let base = f.base_log_prob(&z);
        assert!(lq.iter().zip(&base).all(|(a, b)| (a - b).abs() < 1e-13), "{entry}");
    }
}

/// A flow mixing every layer of this crate with core's affine layer, random parameters:
/// `check_flow` compares its parameter, input and pathwise gradients with finite differences.
#[test]
fn mixed_flow_gradients_match_finite_differences() {
    let cfg = json!([
        {"type": "actnorm"},
        {"type": "maf", "hidden": [8], "activation": "tanh", "order": "random"},
        {"type": "permute"},
        {"type": "spline", "couplings": 2, "bins": 5, "bound": 2.5, "hidden": [7], "activation": "tanh"},
        {"type": "iaf", "hidden": [8], "activation": "tanh"},
        {"type": "spline", "couplings": 1, "bins": 4, "bound": 2.5, "hidden": [], "mask": "none"},
        {"type": "affine"},
    ]);
    let mut f = flow(4, cfg, 21).unwrap();
    let mut r = rng::stream(22, 0);
    let x = testing::random_batch(4, 7, &mut r);
    // The first pass initialises actnorm from x (one shard of 4 columns arrives first; the
    // parameters are then overwritten below, and set_params keeps them).
    f.log_q(&x).unwrap();
    let mut p = f.params();
    rng::fill_normal(&mut r, &mut p);
    p.iter_mut().for_each(|v| *v *= 0.3);
    f.set_params(&p).unwrap();
    let w: Vec<f64> = (0..7).map(|i| 0.5 + 0.25 * i as f64).collect();
    let rep = testing::check_flow(&mut f, &x, &w, 1e-6).unwrap();
    assert!(rep.grad_theta > 0.0 && rep.path > 0.0, "nothing measured: {rep:?}");
}

#[test]
fn config_errors_are_reported() {
    let bad = [
        (json!([{"type": "maf", "width": 3}]), "width"),
        (json!([{"type": "iaf", "order": "sideways"}]), "sideways"),
        (json!([{"type": "maf", "blocks": 0}]), "blocks"),
        (json!([{"type": "maf", "scale_bound": 0.0}]), "scale_bound"),
        (json!([{"type": "spline", "bins": 1}]), "bins"),
        (json!([{"type": "spline", "bound": -1.0}]), "bound"),
        (json!([{"type": "spline", "hidden": [0]}]), "hidden"),
        (json!([{"type": "spline", "mask": "none"}]), "hidden = []"),
        (json!([{"type": "actnorm", "scale": 1}]), "scale"),
        (json!([{"type": "permute", "order": "shuffle"}]), "shuffle"),
    ];
    for (cfg, needle) in bad {
        let msg = flow(4, cfg.clone(), 1).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains(needle) && msg.contains("flow.layers[0]"), "{cfg}: '{msg}'");
    }
    assert!(flow(1, json!([{"type": "spline"}]), 1).is_err());
}

#[test]
fn same_config_and_seed_rebuild_the_same_flow() {
    let cfg = json!([{"type": "maf", "order": "random", "blocks": 2}, {"type": "permute"}, {"type": "spline"}]);
    let (a, b, c) = (flow(6, cfg.clone(), 7).unwrap(), flow(6, cfg.clone(), 7).unwrap(), flow(6, cfg, 8).unwrap());
    assert_eq!(a.params(), b.params());
    assert_ne!(a.params(), c.params());
    let mut r = rng::stream(5, 0);
    let x = testing::random_batch(6, 3, &mut r);
    let (pa, pc) = (a.layers()[2].forward(&x, false).unwrap().out, c.layers()[2].forward(&x, false).unwrap().out);
    assert_eq!(pa, b.layers()[2].forward(&x, false).unwrap().out);
    assert_ne!(pa, pc);
}
