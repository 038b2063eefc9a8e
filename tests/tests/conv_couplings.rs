//! Couplings with convolutional conditioners, loaded from the real plugin libraries: their VJPs
//! against central finite differences and their scores against the opposite-pass reference
//! (`testing::check_bijection`), and their equivariance under the lattice translations that keep
//! the checkerboard (a shift with even `dr + dc`): shifting the input shifts the output and
//! leaves the log-determinant unchanged.

use bootflow_core::{Batch, Bijection, LayerContext, Registry, rng, testing};
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

fn layers(reg: &Registry, entry: &Value, side: usize) -> Vec<Box<dyn Bijection>> {
    let name = entry["type"].as_str().unwrap();
    let mut cfg = entry.clone();
    cfg.as_object_mut().unwrap().remove("type");
    cfg["lattice"] = json!(side);
    assert!(format!("{:?}", reg.bijections[name].source).contains("Plugin"), "{name} is not a plugin layer");
    reg.bijection(name, &LayerContext { dim: side * side, index: 0, seed: 5 }, &cfg).unwrap()
}

fn entries(activation: &str) -> Vec<Value> {
    let conv = json!({"mask": "checkerboard", "conditioner": "conv", "channels": [4, 3], "activation": activation});
    let mut realnvp = conv.clone();
    realnvp["type"] = json!("realnvp");
    let mut spline = conv;
    spline["type"] = json!("spline");
    spline["bins"] = json!(4);
    spline["bound"] = json!(2.5);
    vec![realnvp, spline]
}

#[test]
fn conv_couplings_pass_the_layer_checks_through_the_boundary() {
    let reg = registry();
    let mut r = rng::stream(41, 0);
    // Smooth activations: a finite-difference step must not straddle a kink of the network
    // (leaky ReLU is checked in bootflow-nn, with a margin from its kink). Weights of 0.1: a
    // conv output sums 9 taps per channel over three layers, and at 0.3 some splines get slopes
    // near their floor, whose inverse curves so sharply that the differences' truncation error
    // passes 1e-6 (measured 5e-5 on one input component).
    for activation in ["tanh", "silu"] {
        for entry in entries(activation) {
            for (k, mut l) in layers(&reg, &entry, 4).into_iter().enumerate() {
                testing::randomise_params(l.as_mut(), 0.1, &mut r).unwrap();
                let z = testing::random_batch(16, 5, &mut r);
                testing::check_bijection(l.as_mut(), &z, 1e-6, 1e-10)
                    .unwrap_or_else(|e| panic!("{} {activation} coupling {k}: {e}", entry["type"]));
            }
        }
    }
}

/// The lattice `x` (one column per sample, site `(r, c)` at row `r L + c`) moved by `(dr, dc)`:
/// the value at `(r, c)` goes to `(r + dr, c + dc)`, periodically.
fn shift(x: &Batch, side: usize, dr: usize, dc: usize) -> Batch {
    let mut out = x.clone();
    for j in 0..x.ncols() {
        for s in 0..side * side {
            let (r, c) = (s / side, s % side);
            out[(((r + dr) % side) * side + (c + dc) % side, j)] = x[(s, j)];
        }
    }
    out
}

#[test]
fn conv_couplings_commute_with_checkerboard_translations() {
    let reg = registry();
    let side = 6;
    let mut r = rng::stream(42, 0);
    for entry in entries("leaky_relu") {
        for mut l in layers(&reg, &entry, side) {
            testing::randomise_params(l.as_mut(), 0.3, &mut r).unwrap();
            let x = testing::random_batch(side * side, 4, &mut r);
            for inverse in [false, true] {
                let run = |b: &Batch| if inverse { l.inverse(b, false) } else { l.forward(b, false) }.unwrap();
                let plain = run(&x);
                for (dr, dc) in [(1, 1), (2, 0), (0, 2), (1, 5), (3, 3)] {
                    let moved = run(&shift(&x, side, dr, dc));
                    let out_gap = (&moved.out - shift(&plain.out, side, dr, dc)).abs().max();
                    let ld_gap =
                        moved.log_det.iter().zip(&plain.log_det).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                    assert!(
                        out_gap < 1e-12 && ld_gap < 1e-12,
                        "{} shift ({dr}, {dc}): {out_gap} {ld_gap}",
                        entry["type"]
                    );
                }
                // A shift that swaps the colours is not a symmetry of one coupling: the check can fail.
                let odd = run(&shift(&x, side, 1, 0));
                assert!((&odd.out - shift(&plain.out, side, 1, 0)).abs().max() > 1e-6, "{}", entry["type"]);
            }
        }
    }
}

#[test]
fn conv_conditioner_keys_are_checked() {
    let reg = registry();
    let ctx = LayerContext { dim: 16, index: 0, seed: 1 };
    for (cfg, want) in [
        (json!({"conditioner": "conv", "mask": "halves"}), "needs mask = \"checkerboard\""),
        (json!({"conditioner": "conv", "mask": "checkerboard", "lattice": 4, "hidden": [8]}), "'hidden' is a key"),
        (json!({"conditioner": "conv", "mask": "checkerboard", "lattice": 4, "kernel": 2}), "kernel must be odd"),
        (json!({"conditioner": "conv", "mask": "checkerboard", "lattice": 4, "kernel": 5}), "at most the lattice side"),
        (json!({"conditioner": "conv", "mask": "checkerboard", "lattice": 4, "channels": [4, 0]}), "channels must be"),
        (json!({"channels": [4]}), "'channels' and 'kernel' are keys"),
        (json!({"conditioner": "dense"}), "conditioner"),
    ] {
        for name in ["realnvp", "spline"] {
            let err = reg.bijection(name, &ctx, &cfg).err().unwrap_or_else(|| panic!("{name} accepted {cfg}"));
            assert!(err.to_string().contains(want), "{name} {cfg}: {err}");
        }
    }
}
